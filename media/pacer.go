package media

import (
	"errors"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Each subscriber's video leaves the node paced: a keyframe of the top
// layer (tens of packets read from the publisher in one burst) would
// otherwise go out at the speed of the node's network and fill the queue
// of the subscriber's slowest hop at once, where a weak link drops its
// tail and the subscriber waits for retransmissions or the next keyframe.
// The pacer lets video out at pacingFactor times the allocator's rate for
// the subscriber (libwebrtc paces at 2.5× its target too), in bursts of at
// most pacingBurst. Audio is never held: it goes out the moment it comes,
// ahead of any video waiting. Retransmissions (the NACK responder sits
// below the pacer) are not held either: they are late already.
//
// Packets that go out at once are not copied; only a packet that has to
// wait is (the caller's header and payload are reused after it returns).
// No packet waits longer than pacingMaxDelay: a queue that would hold more
// is sent regardless, so a stale rate cannot grow it without bound.
const (
	pacingFactor   = 2.5
	pacingBurst    = 20 * time.Millisecond
	pacingMaxDelay = 300 * time.Millisecond
	// pacingTick is the least a queue waits between sends.
	pacingTick = 5 * time.Millisecond
	// pacingMinBurst: two full packets, so a low rate still sends a
	// packet's worth at a time.
	pacingMinBurst = 2 * 1500
)

// pacers makes each new PeerConnection's pacer and carries it to the
// session.
type pacers struct{ byConnection[*pacer] }

// NewInterceptor makes the pacer of one PeerConnection.
func (f *pacers) NewInterceptor(id string) (interceptor.Interceptor, error) {
	p := newPacer(int(pacingFactor * initialEstimate))
	f.add(id, p)
	return p, nil
}

// pacer is one subscriber's: one budget for all the video it receives.
type pacer struct {
	interceptor.NoOp

	mu     sync.Mutex
	rate   int     // bits per second video may leave at
	tokens float64 // bytes that may leave now (negative: owed)
	filled time.Time
	queue  []pacedPacket
	timer  *time.Timer
	closed bool
}

type pacedPacket struct {
	header  rtp.Header
	payload []byte
	writer  interceptor.RTPWriter
	at      time.Time
}

var pacedBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1500); return &b }}

func newPacer(rate int) *pacer {
	return &pacer{rate: rate, tokens: float64(pacingMinBurst)}
}

// setRate sets the rate video may leave at (the allocator's, times
// pacingFactor), in bits per second.
func (p *pacer) setRate(bps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fillLocked(time.Now())
	p.rate = max(bps, minEstimate)
}

// BindLocalStream paces video streams and lets audio through.
func (p *pacer) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if strings.HasPrefix(strings.ToLower(info.MimeType), "audio/") {
		return writer
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
		return p.write(h, payload, writer)
	})
}

// Close drops what waits: the PeerConnection is going away.
func (p *pacer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	for i := range p.queue {
		p.release(&p.queue[i])
	}
	p.queue = nil
	return nil
}

// write sends a video packet now if the budget allows and nothing waits
// before it, and otherwise queues a copy. It holds the lock while writing
// so that the subscriber's packets leave in the order they came.
func (p *pacer) write(h *rtp.Header, payload []byte, w interceptor.RTPWriter) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errPacerClosed
	}
	now := time.Now()
	p.fillLocked(now)
	size := h.MarshalSize() + len(payload)
	if len(p.queue) == 0 && p.tokens >= 0 {
		p.tokens -= float64(size)
		return w.Write(h, payload, nil)
	}
	buf := *(pacedBuffers.Get().(*[]byte))
	p.queue = append(p.queue, pacedPacket{header: h.Clone(), payload: append(buf[:0], payload...), writer: w, at: now})
	p.scheduleLocked()
	return size, nil
}

var errPacerClosed = errors.New("media: pacer closed")

// fillLocked adds the budget the time since the last fill earned, up to a
// burst's worth.
func (p *pacer) fillLocked(now time.Time) {
	bytesPerSecond := float64(p.rate) / 8
	burst := max(bytesPerSecond*pacingBurst.Seconds(), pacingMinBurst)
	if !p.filled.IsZero() {
		p.tokens += bytesPerSecond * now.Sub(p.filled).Seconds()
	}
	p.tokens = min(p.tokens, burst)
	p.filled = now
}

// scheduleLocked arms the timer for when the packet at the head of the
// queue may leave.
func (p *pacer) scheduleLocked() {
	if p.timer != nil || len(p.queue) == 0 {
		return
	}
	// At least a tick: each wake-up sends a few packets, not one.
	wait := pacingTick
	if p.tokens < 0 {
		wait = max(wait, time.Duration(math.Ceil(-p.tokens/(float64(p.rate)/8)*float64(time.Second))))
	}
	if late := p.queue[0].at.Add(pacingMaxDelay).Sub(time.Now()); late < wait {
		wait = max(late, 0)
	}
	p.timer = time.AfterFunc(wait, p.drain)
}

// drain sends what the budget allows (and whatever has waited too long),
// then waits again.
func (p *pacer) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed {
		return
	}
	now := time.Now()
	p.fillLocked(now)
	sent := 0
	for sent < len(p.queue) {
		q := &p.queue[sent]
		if p.tokens < 0 && now.Sub(q.at) < pacingMaxDelay {
			break
		}
		p.tokens -= float64(q.header.MarshalSize() + len(q.payload))
		// A failed write is the subscriber's transport closing: nothing
		// to retry, and the packet is gone either way.
		_, _ = q.writer.Write(&q.header, q.payload, nil)
		p.release(q)
		sent++
	}
	n := copy(p.queue, p.queue[sent:])
	clear(p.queue[n:])
	p.queue = p.queue[:n]
	p.scheduleLocked()
}

func (p *pacer) release(q *pacedPacket) {
	b := q.payload[:0]
	pacedBuffers.Put(&b)
	q.payload, q.writer = nil, nil
}
