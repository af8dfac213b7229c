package media

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// sentLog records what leaves a pacer and when.
type sentLog struct {
	mu    sync.Mutex
	seqs  []uint16
	first []byte // each payload's first byte
	at    []time.Time
	size  int
}

func (l *sentLog) writer() interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seqs = append(l.seqs, h.SequenceNumber)
		if len(payload) > 0 {
			l.first = append(l.first, payload[0])
		}
		l.at = append(l.at, time.Now())
		l.size += len(payload)
		return len(payload), nil
	})
}

func (l *sentLog) snapshot() ([]uint16, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint16(nil), l.seqs...), append([]time.Time(nil), l.at...)
}

// waitSent waits (bounded) until n packets have left.
func (l *sentLog) waitSent(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if seqs, _ := l.snapshot(); len(seqs) >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	seqs, _ := l.snapshot()
	t.Fatalf("%d of %d packets left within %v", len(seqs), n, within)
}

func bindPacer(t *testing.T, p *pacer, mime string, out *sentLog) interceptor.RTPWriter {
	t.Helper()
	t.Cleanup(func() { _ = p.Close() })
	return p.BindLocalStream(&interceptor.StreamInfo{MimeType: mime}, out.writer())
}

// A keyframe's burst leaves spread at the pacing rate, in order, while
// audio written in the middle of it leaves at once.
func TestThePacerSpreadsAKeyframeAndLetsAudioAhead(t *testing.T) {
	p := newPacer(4_000_000) // 500 kB/s
	var video, audio sentLog
	v := bindPacer(t, p, "video/VP8", &video)
	a := p.BindLocalStream(&interceptor.StreamInfo{MimeType: "audio/opus"}, audio.writer())

	payload := make([]byte, 1200)
	const packets = 40 // 48 kB: about 90 ms at 500 kB/s
	start := time.Now()
	for i := range packets {
		h := &rtp.Header{Version: 2, SequenceNumber: uint16(i), SSRC: 1}
		payload[0] = byte(i)
		if _, err := v.Write(h, payload, nil); err != nil {
			t.Fatal(err)
		}
		// The caller reuses its header and payload: the pacer must have
		// copied what it keeps.
		h.SequenceNumber, payload[0] = 9999, 0xff
	}
	if _, err := a.Write(&rtp.Header{Version: 2, SequenceNumber: 7, SSRC: 2}, make([]byte, 100), nil); err != nil {
		t.Fatal(err)
	}
	audioAt := time.Since(start)
	if _, at := audio.snapshot(); len(at) != 1 {
		t.Fatalf("audio held behind video: %d audio packets out", len(at))
	}
	video.waitSent(t, packets, 2*time.Second)
	seqs, at := video.snapshot()
	video.mu.Lock()
	first := append([]byte(nil), video.first...)
	video.mu.Unlock()
	for i, s := range seqs {
		if s != uint16(i) || first[i] != byte(i) {
			t.Fatalf("packet %d left as %d: order or copy broken (%v)", i, s, seqs)
		}
	}
	spread := at[len(at)-1].Sub(start)
	t.Logf("40 packets of 1,200 B at 4 Mbit/s: first out at %v, last at %v; audio out at %v", at[0].Sub(start), spread, audioAt)
	// 48.5 kB less the 3 kB it may send at once, at 500 kB/s: 91 ms.
	if spread < 60*time.Millisecond || spread > 250*time.Millisecond {
		t.Fatalf("the burst left over %v, want about 91 ms", spread)
	}
	if audioAt > 20*time.Millisecond {
		t.Fatalf("audio left after %v", audioAt)
	}
}

// No packet waits longer than pacingMaxDelay, whatever the rate says.
func TestThePacerHoldsNothingLongerThanItsMaxDelay(t *testing.T) {
	p := newPacer(minEstimate) // 3.75 kB/s: 40 kB would take 10 s
	var video sentLog
	v := bindPacer(t, p, "video/VP8", &video)
	start := time.Now()
	for i := range 40 {
		if _, err := v.Write(&rtp.Header{Version: 2, SequenceNumber: uint16(i)}, make([]byte, 1000), nil); err != nil {
			t.Fatal(err)
		}
	}
	video.waitSent(t, 40, 2*time.Second)
	_, at := video.snapshot()
	if last := at[len(at)-1].Sub(start); last > pacingMaxDelay+100*time.Millisecond {
		t.Fatalf("the last packet waited %v", last)
	}
}

// A pacer that is closed drops what waits and sends nothing more.
func TestAClosedPacerSendsNothing(t *testing.T) {
	p := newPacer(minEstimate)
	var video sentLog
	v := bindPacer(t, p, "video/VP8", &video)
	for i := range 10 {
		_, _ = v.Write(&rtp.Header{Version: 2, SequenceNumber: uint16(i)}, make([]byte, 1000), nil)
	}
	before, _ := video.snapshot()
	_ = p.Close()
	if _, err := v.Write(&rtp.Header{Version: 2}, make([]byte, 10), nil); err == nil {
		t.Fatal("a closed pacer took a packet")
	}
	time.Sleep(pacingMaxDelay + 100*time.Millisecond)
	if after, _ := video.snapshot(); len(after) != len(before) {
		t.Fatalf("%d packets left after close (%d before)", len(after)-len(before), len(before))
	}
}
