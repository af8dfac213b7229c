package media

import (
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

// discardContext binds a local track to nowhere, so that the forwarding
// step can be measured on its own.
type discardContext struct{ ws *discardWriter }

type discardWriter struct{ writes int }

func (w *discardWriter) WriteRTP(_ *rtp.Header, p []byte) (int, error) {
	w.writes++
	return len(p), nil
}
func (w *discardWriter) Write(b []byte) (int, error) { w.writes++; return len(b), nil }

func (c discardContext) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}}
}
func (c discardContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c discardContext) SSRC() webrtc.SSRC                                      { return 1234 }
func (c discardContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c discardContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c discardContext) WriteStream() webrtc.TrackLocalWriter                   { return c.ws }
func (c discardContext) ID() string                                             { return "discard" }
func (c discardContext) RTCPReader() interceptor.RTCPReader                     { return nil }

func TestForwardingStepDoesNotAllocate(t *testing.T) {
	sinks := []*discardWriter{{}, {}}
	var downs []*downTrack
	for _, sink := range sinks { // two subscribers, each with its own down-track
		d := &downTrack{kind: webrtc.RTPCodecTypeVideo, codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}
		d.current.Store(-1)
		d.target.Store(layerFull)
		_, err := d.Bind(discardContext{ws: sink})
		require.NoError(t, err)
		d.boundAt = time.Now().Add(-bindSettle) // past its settling moment
		downs = append(downs, d)
	}
	payload := make([]byte, 1200)
	payload[0] = 0x10 // a VP8 frame's start, partition 0; payload[1]'s P bit 0: a keyframe
	orig := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 1, SSRC: 9}, Payload: payload}
	require.NoError(t, orig.Header.SetExtension(3, []byte{1, 2})) // as browsers send (ids differ per connection)
	raw, err := orig.Marshal()
	require.NoError(t, err)
	buf := make([]byte, 1500)
	n := copy(buf, raw)
	var pkt rtp.Packet
	var m Metrics
	allocs := testing.AllocsPerRun(1000, func() {
		if pkt.Unmarshal(buf[:n]) == nil {
			forwardParsed(&pkt, n, &downs, layerFull, &m)
		}
	})
	require.Zero(t, allocs, "the forwarding step allocates per packet")
	require.EqualValues(t, 2*1001, m.Packets.Load())
	for _, sink := range sinks {
		require.Equal(t, 1001, sink.writes, "every packet reached each bound subscriber")
	}
}
