package media

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downTrack is one published track as one subscriber receives it: its own
// binding (SSRC, payload type), its own sequence numbers, and its own
// gates. Video starts at a keyframe and after every pause starts at one
// again; sequence numbers stay contiguous across what was held back, so
// the subscriber never asks for (NACKs) a packet it was never meant to
// get. Writes reuse the down-track's own header: no allocation per packet.
type downTrack struct {
	source       *publishedTrack
	subscriber   string
	kind         webrtc.RTPCodecType
	codec        webrtc.RTPCodecCapability
	id, streamID string

	// paused holds video back (audio first: the subscriber's link cannot
	// carry it); resuming waits for a keyframe.
	paused atomic.Bool

	mu          sync.Mutex // the forwarding goroutine and Bind/Unbind
	bound       bool
	boundAt     time.Time
	ssrc        webrtc.SSRC
	payloadType webrtc.PayloadType
	writer      webrtc.TrackLocalWriter
	header      rtp.Header
	// needKey: the next video packet forwarded must start a keyframe.
	needKey bool
	// Sequence rewriting: out = in - seqOffset; resync after a gap of our
	// own making (gating, pause) so that out continues at lastOut+1.
	started   bool
	resync    bool
	seqOffset uint16
	lastOut   uint16

	// What the subscriber's receiver reports say of this stream.
	stats downStats
}

// bindSettle is how long after its binding a down-track starts forwarding.
const bindSettle = 100 * time.Millisecond

// downStats are a subscriber's receiver-report figures for one stream.
type downStats struct {
	fractionLost atomic.Uint32 // of 256, from the last report
	jitter       atomic.Uint32 // in RTP clock units
	reported     atomic.Bool
	packets      atomic.Int64 // forwarded
	held         atomic.Int64 // held back by gating or a pause
}

func newDownTrack(source *publishedTrack, subscriber string) *downTrack {
	kind := source.remote.Kind()
	return &downTrack{source: source, subscriber: subscriber, kind: kind, codec: source.remote.Codec().RTPCodecCapability,
		id: kind.String() + "-" + source.owner.id, streamID: source.owner.id, needKey: kind == webrtc.RTPCodecTypeVideo}
}

// ID, StreamID, RID and Kind name the track as its publisher's: the
// subscriber's page shows it in the publisher's stream.
func (d *downTrack) ID() string                { return d.id }
func (d *downTrack) StreamID() string          { return d.streamID }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.kind }

// Bind takes the subscriber's negotiated SSRC and payload type for the
// publisher's codec.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, ok := matchCodec(d.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bound, d.ssrc, d.payloadType, d.writer, d.boundAt = true, ctx.SSRC(), codec.PayloadType, ctx.WriteStream(), time.Now()
	return codec, nil
}

// Unbind stops writing to the subscriber.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bound, d.writer = false, nil
	return nil
}

// matchCodec finds the subscriber's payload type for the publisher's
// codec: the same MIME type, and the same format parameters if any match.
func matchCodec(c webrtc.RTPCodecCapability, offered []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var found *webrtc.RTPCodecParameters
	for i := range offered {
		if !strings.EqualFold(offered[i].MimeType, c.MimeType) {
			continue
		}
		if offered[i].SDPFmtpLine == c.SDPFmtpLine {
			return offered[i], true
		}
		if found == nil {
			found = &offered[i]
		}
	}
	if found == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return *found, true
}

// setPaused pauses or resumes the video to this subscriber; a resume
// starts at the next keyframe, which it asks the publisher for.
func (d *downTrack) setPaused(on bool, m *Metrics) {
	if d.kind != webrtc.RTPCodecTypeVideo || d.paused.Swap(on) == on {
		return
	}
	if !on {
		d.mu.Lock()
		d.needKey = true
		d.mu.Unlock()
		d.source.requestKeyframe(m)
	}
}

// write forwards one packet of the source to the subscriber. It reports
// whether the subscriber needs a keyframe it has not got yet.
func (d *downTrack) write(pkt *rtp.Packet, size int, m *Metrics) (wantKey bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound {
		return false
	}
	if d.kind == webrtc.RTPCodecTypeVideo && d.paused.Load() {
		d.hold()
		return false
	}
	// The subscriber's receiver may still be starting the stream it just
	// answered for: what comes in the first moments can be lost there, and
	// a lost first keyframe leaves nothing to decode. Start a little later.
	if !d.started && time.Since(d.boundAt) < bindSettle {
		d.hold()
		return false
	}
	if d.needKey && !startsKeyframe(d.codec.MimeType, pkt.Payload) {
		d.hold()
		return true
	}
	if !d.started {
		d.started, d.seqOffset = true, pkt.SequenceNumber-d.lastOut-1
	} else if d.resync {
		d.seqOffset = pkt.SequenceNumber - d.lastOut - 1
	}
	d.resync = false
	d.header = pkt.Header
	d.header.SSRC, d.header.PayloadType = uint32(d.ssrc), uint8(d.payloadType)
	d.header.SequenceNumber = pkt.SequenceNumber - d.seqOffset
	if int16(d.header.SequenceNumber-d.lastOut) > 0 {
		d.lastOut = d.header.SequenceNumber
	}
	// A failed write reaches this subscriber only; the others go on. A
	// keyframe that did not go out (a sender not started yet) is waited
	// for again.
	if _, err := d.writer.WriteRTP(&d.header, pkt.Payload); err != nil {
		d.resync = true
		return d.needKey
	}
	d.needKey = false
	d.stats.packets.Add(1)
	m.Packets.Add(1)
	m.Bytes.Add(int64(size))
	return false
}

// hold skips a packet on purpose: the next one forwarded continues the
// subscriber's sequence numbers without a gap.
func (d *downTrack) hold() {
	d.resync = true
	d.stats.held.Add(1)
}

// report takes in one RTCP packet from the subscriber about this stream.
func (d *downTrack) report(p rtcp.Packet) {
	rr, ok := p.(*rtcp.ReceiverReport)
	if !ok {
		return
	}
	for _, r := range rr.Reports {
		if r.SSRC == uint32(d.ssrc) {
			d.stats.fractionLost.Store(uint32(r.FractionLost))
			d.stats.jitter.Store(r.Jitter)
			d.stats.reported.Store(true)
		}
	}
}

// startsKeyframe tells whether an RTP payload of the codec begins a
// keyframe. Codecs it cannot read count as always starting one: their
// video is never held back.
func startsKeyframe(mime string, payload []byte) bool {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return vp8Keyframe(payload)
	case strings.ToLower(webrtc.MimeTypeH264):
		return h264Keyframe(payload)
	}
	return true
}

// vp8Keyframe reads the VP8 payload descriptor (RFC 7741 §4.2) and the
// payload header's P bit (0: a keyframe) of a frame's first packet.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension bits follow
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX
			i++
		}
	}
	start, partition := p[0]&0x10 != 0, p[0]&0x0f
	return start && partition == 0 && len(p) > i && p[i]&0x01 == 0
}

// h264Keyframe finds an IDR slice or a sequence parameter set at the start
// of an H.264 payload (RFC 6184): single NAL units, STAP-A and FU-A starts.
func h264Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch nal := p[0] & 0x1f; {
	case nal == 5 || nal == 7:
		return true
	case nal == 24: // STAP-A: 16-bit sizes, each NAL unit's header
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if t := p[i+2] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += 2 + size
		}
	case nal == 28: // FU-A: the start of a fragmented IDR
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}
