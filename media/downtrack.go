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

// downTrack is one published source as one subscriber receives it: its
// own binding (SSRC, payload type), its own sequence numbers and
// timestamps, its own layer and its own gates. Video starts at a keyframe,
// after every pause starts at one again, and changes layer only at a
// keyframe of the new layer; sequence numbers stay contiguous across what
// was held back or switched, so the subscriber never asks for (NACKs) a
// packet it was never meant to get. Writes reuse the down-track's own
// header: no allocation per packet.
type downTrack struct {
	source       *publishedTrack
	subscriber   string
	kind         webrtc.RTPCodecType
	codec        webrtc.RTPCodecCapability
	id, streamID string

	// paused holds video back (audio first: the subscriber's link cannot
	// carry it); resuming waits for a keyframe.
	paused atomic.Bool
	// target is the layer the allocator chose for this subscriber; the
	// down-track moves to it at the target layer's next keyframe.
	target atomic.Int32

	mu          sync.Mutex // the forwarding goroutines, Bind/Unbind, padding
	bound       bool
	boundAt     time.Time
	ssrc        webrtc.SSRC
	payloadType webrtc.PayloadType
	writer      webrtc.TrackLocalWriter
	header      rtp.Header
	// current is the layer being forwarded (-1: none yet); written under
	// mu, read without it by the other layers' forwarding goroutines.
	current atomic.Int32
	// needKey: the next video packet forwarded must start a keyframe.
	needKey bool
	// Sequence rewriting: out = in - seqOffset; resync after a gap of our
	// own making (gating, pause, a layer switch, padding) so that out
	// continues at lastOut+1. Timestamps: out = in - tsOffset, rebased on a
	// layer switch (each layer has its own clock origin) so that time runs
	// on from the last packet sent.
	started   bool
	resync    bool
	rebase    bool
	seqOffset uint16
	lastOut   uint16
	tsOffset  uint32
	lastTS    uint32
	lastAt    time.Time

	// What the subscriber's receiver reports say of this stream.
	stats downStats
}

// bindSettle is how long after its binding a down-track starts forwarding.
const bindSettle = 100 * time.Millisecond

// downStats are a subscriber's receiver-report figures for one stream.
type downStats struct {
	fractionLost atomic.Uint32 // of 256, from the last report
	jitter       atomic.Uint32 // in RTP clock units
	rtt          atomic.Int64  // round trip in µs from the last report (0: unknown)
	reported     atomic.Bool
	packets      atomic.Int64 // forwarded
	held         atomic.Int64 // held back by gating or a pause
}

func newDownTrack(source *publishedTrack, subscriber string) *downTrack {
	kind := source.kind
	d := &downTrack{source: source, subscriber: subscriber, kind: kind, codec: source.codec,
		id: kind.String() + "-" + source.owner.id, streamID: source.owner.id, needKey: kind == webrtc.RTPCodecTypeVideo}
	if source.screen {
		// Its own stream: the page shows it in an element of its own.
		d.id, d.streamID = "screen-"+source.owner.id, "screen-"+source.owner.id
	}
	d.current.Store(-1)
	// Audio has one layer. Video starts on the lowest the publisher sends:
	// the allocator moves it up as the subscriber's link shows it can.
	first := 0
	for i := range maxLayers {
		if source.layer(i) != nil {
			first = i
			break
		}
	}
	d.target.Store(int32(first))
	return d
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
func (d *downTrack) setPaused(on bool) {
	if d.kind != webrtc.RTPCodecTypeVideo || d.paused.Swap(on) == on {
		return
	}
	if !on {
		d.mu.Lock()
		d.needKey = true
		d.mu.Unlock()
		d.source.requestKeyframe(int(d.target.Load()))
	}
}

// setTarget chooses the layer this subscriber is to get; the switch
// happens at that layer's next keyframe, which it asks for.
func (d *downTrack) setTarget(layer int) {
	if int(d.target.Swap(int32(layer))) == layer {
		return
	}
	if layer != int(d.current.Load()) && !d.paused.Load() {
		d.source.requestKeyframe(layer)
	}
}

// layers reports the layer forwarded now and the one chosen.
func (d *downTrack) layers() (current, target int) {
	return int(d.current.Load()), int(d.target.Load())
}

// write forwards one packet of the source's layer to the subscriber, if
// it is the subscriber's layer (or the one it is moving to, at a keyframe).
func (d *downTrack) write(pkt *rtp.Packet, size, layer int, m *Metrics) {
	target := int(d.target.Load())
	if layer != target && layer != int(d.current.Load()) {
		return // a layer this subscriber does not get
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound {
		return
	}
	video := d.kind == webrtc.RTPCodecTypeVideo
	if video && d.paused.Load() {
		d.hold()
		return
	}
	// The subscriber's receiver may still be starting the stream it just
	// answered for: what comes in the first moments can be lost there, and
	// a lost first keyframe leaves nothing to decode. Start a little later.
	if !d.started && time.Since(d.boundAt) < bindSettle {
		d.hold()
		return
	}
	switching := layer != int(d.current.Load())
	if (d.needKey || switching) && video && !startsKeyframe(d.codec.MimeType, pkt.Payload) {
		if layer == target {
			d.source.requestKeyframe(layer)
		}
		if !switching {
			d.hold()
		}
		return
	}
	now := time.Now()
	if switching {
		if d.started {
			d.resync, d.rebase = true, true
			m.LayerSwitches.Add(1)
		}
		d.current.Store(int32(layer))
	}
	if !d.started {
		d.started, d.seqOffset, d.tsOffset = true, pkt.SequenceNumber-d.lastOut-1, 0
	} else if d.resync {
		d.seqOffset = pkt.SequenceNumber - d.lastOut - 1
	}
	if d.rebase {
		// The new layer's clock has its own origin: go on from the last
		// timestamp sent by the time that passed since (at least a tick).
		elapsed := uint32(now.Sub(d.lastAt).Seconds() * float64(d.codec.ClockRate))
		d.tsOffset = pkt.Timestamp - (d.lastTS + max(elapsed, 1))
	}
	d.resync, d.rebase = false, false
	d.header = pkt.Header
	d.header.SSRC, d.header.PayloadType = uint32(d.ssrc), uint8(d.payloadType)
	d.header.SequenceNumber = pkt.SequenceNumber - d.seqOffset
	d.header.Timestamp = pkt.Timestamp - d.tsOffset
	if int16(d.header.SequenceNumber-d.lastOut) > 0 {
		d.lastOut = d.header.SequenceNumber
	}
	// A failed write reaches this subscriber only; the others go on. A
	// keyframe that did not go out (a sender not started yet) is waited
	// for again.
	if _, err := d.writer.WriteRTP(&d.header, pkt.Payload); err != nil {
		d.resync = true
		return
	}
	d.lastTS, d.lastAt = d.header.Timestamp, now
	d.needKey = false
	d.stats.packets.Add(1)
	m.Packets.Add(1)
	m.Bytes.Add(int64(size))
}

// skip notes a packet of the layer that is not forwarded (the publisher's
// own padding): the next one continues the sequence without a gap.
func (d *downTrack) skip(layer int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if layer == int(d.current.Load()) {
		d.resync = true
	}
}

// hold skips a packet on purpose: the next one forwarded continues the
// subscriber's sequence numbers without a gap.
func (d *downTrack) hold() {
	d.resync = true
	d.stats.held.Add(1)
}

// paddingPayload is an RTP payload made only of padding (RFC 3550 §5.1:
// the last octet counts the padding octets, itself included).
var paddingPayload = func() []byte {
	p := make([]byte, 255)
	p[254] = 255
	return p
}()

// pad sends one padding-only packet on the stream (the node probing the
// subscriber's link): the next sequence number, the last timestamp. It
// reports whether it could (the stream is bound and settled).
func (d *downTrack) pad() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound || time.Since(d.boundAt) < bindSettle {
		return false
	}
	h := rtp.Header{Version: 2, Padding: true, PayloadType: uint8(d.payloadType), SequenceNumber: d.lastOut + 1, Timestamp: d.lastTS, SSRC: uint32(d.ssrc)}
	if _, err := d.writer.WriteRTP(&h, paddingPayload); err != nil {
		return false
	}
	d.lastOut++
	d.resync = true
	return true
}

// report takes in one RTCP packet from the subscriber about this stream.
func (d *downTrack) report(p rtcp.Packet) {
	rr, ok := p.(*rtcp.ReceiverReport)
	if !ok {
		return
	}
	for _, r := range rr.Reports {
		if r.SSRC != uint32(d.ssrc) {
			continue
		}
		d.stats.fractionLost.Store(uint32(r.FractionLost))
		d.stats.jitter.Store(r.Jitter)
		d.stats.reported.Store(true)
		// RFC 3550 §6.4.1: the round trip is now − LSR − DLSR, in the
		// middle 32 bits of NTP time (1/65536 s).
		if r.LastSenderReport != 0 {
			if rtt := ntpMiddle(time.Now()) - r.LastSenderReport - r.Delay; rtt < 65536*10 {
				d.stats.rtt.Store(int64(rtt) * 1_000_000 / 65536)
			}
		}
	}
}

// ntpMiddle is the middle 32 bits of the NTP timestamp of t.
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800 // 1900 → 1970, in seconds
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1_000_000_000
	return uint32((secs<<32 | frac) >> 16)
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

// sending reports whether any packet has gone out to the subscriber yet.
func (d *downTrack) sending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}
