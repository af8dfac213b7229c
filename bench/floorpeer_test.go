package bench_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
)

// floorPeer is a pion client of the floor relay. It publishes what a
// mediatest.Peer publishes with the same Options — the same codecs, payload
// types, packet sizes and pace — and counts the packets it receives.
type floorPeer struct {
	pc       *webrtc.PeerConnection
	received atomic.Int64
	full     atomic.Int64 // video packets of a simulcast camera's full layer
	stop     chan struct{}
}

// dialFloor joins call on the floor relay at base and starts publishing.
func dialFloor(t testing.TB, base, call string, tag byte, load mediatest.Options) *floorPeer {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	p := &floorPeer{pc: pc, stop: make(chan struct{})}
	t.Cleanup(p.close)
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", call)
	require.NoError(t, err)
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", call)
	require.NoError(t, err)
	tracks := []*webrtc.TrackLocalStaticRTP{audio, video}
	// Simulcast: the full layer first, then the half and the quarter, each
	// on its own m-line, as mediatest.Peer sends them.
	layers := [3]*webrtc.TrackLocalStaticRTP{video}
	if load.Simulcast {
		for i := 1; i < 3; i++ {
			layers[i], err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video-"+string(mediatest.Layers[i].Letter), call)
			require.NoError(t, err)
			tracks = append(tracks, layers[i])
		}
	}
	for _, track := range tracks {
		sender, err := pc.AddTrack(track)
		require.NoError(t, err)
		go drainSenderRTCP(sender)
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { p.receive(remote) })
	require.NoError(t, p.negotiate(base, call))
	if load.Simulcast {
		go mediatest.PublishSimulcast(audio, layers, tag, p.stop, [3]chan struct{}{})
	} else {
		go mediatest.Publish(audio, video, tag, load, p.stop, nil)
	}
	return p
}

// negotiate is non-trickle: the offer goes out with every candidate in it.
func (p *floorPeer) negotiate(base, call string) error {
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	resp, err := http.Post(base+"/offer?call="+url.QueryEscape(call), "application/sdp", bytes.NewReader([]byte(p.pc.LocalDescription().SDP)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("floor relay: %s: %s", resp.Status, answer)
	}
	return p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)})
}

// receive counts what arrives, parsing each packet as a mediatest.Peer does
// so that the peers cost the machine about the same on either relay.
func (p *floorPeer) receive(remote *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) == nil && len(pkt.Payload) > 0 {
			p.received.Add(1)
			if remote.Kind() == webrtc.RTPCodecTypeVideo && len(pkt.Payload) > 3 && pkt.Payload[3] == 'f' {
				p.full.Add(1)
			}
		}
	}
}

func (p *floorPeer) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		_ = p.pc.Close()
	}
}

// drainSenderRTCP reads a sender's RTCP so that its interceptors see it.
func drainSenderRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// floorRelay is bench/floorrelay as its own process.
type floorRelay struct {
	*relayProcess
	load mediatest.Options // what each party sends
}

func startFloorRelay(t testing.TB) *floorRelay {
	bin := buildBinary(t, "./floorrelay")
	return &floorRelay{startRelayProcess(t, "floorrelay_forwarded_packets_total", bin, nil), forwardingLoad}
}

// dialCalls is mediaProcess.dialCalls for the floor relay.
func (f *floorRelay) dialCalls(t testing.TB, calls int, round string) (hangUp func()) {
	if f.load.Simulcast {
		round = "sim-" + round // apart from the single-layer rounds' calls
	}
	var all []*floorPeer
	for i := 0; i < calls; i++ {
		call := fmt.Sprintf("call-%s%d", round, i)
		a := dialFloor(t, f.base, call, 'a', f.load)
		b := dialFloor(t, f.base, call, 'b', f.load)
		require.Eventually(t, func() bool { return a.received.Load() > 0 && b.received.Load() > 0 }, 10*time.Second, 10*time.Millisecond)
		if f.load.Simulcast {
			require.Eventually(t, func() bool { return a.full.Load() > 0 && b.full.Load() > 0 }, 10*time.Second, 10*time.Millisecond,
				"the floor relay does not forward the full layer")
		}
		all = append(all, a, b)
	}
	return func() {
		for _, p := range all {
			p.close()
		}
	}
}
