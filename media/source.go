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

// Layers of a published camera, lowest first. A page sends its camera
// three times (simulcast): a quarter, a half and the full resolution, each
// on its own m-line, so that each subscriber can be sent the best its link
// carries. A page that sends one video sends it as the full layer.
const (
	layerQuarter = iota
	layerHalf
	layerFull
	maxLayers
)

var layerNames = [maxLayers]string{"quarter", "half", "full"}

// keyframeInterval is the least time between two keyframe requests to the
// lowest layer of one publisher's camera, however many subscribers ask (a
// PLI storm from one misbehaving page, or many new subscribers at once):
// every keyframe costs the publisher's uplink a burst. Higher layers, whose
// keyframes cost more, are asked at most once a second. Requests meanwhile
// are merged into one sent when the interval ends, so none is lost.
const keyframeInterval = 500 * time.Millisecond

// publishedTrack is one source a participant sends (its microphone or its
// camera), in one or more layers, fed to each subscriber through its own
// down-track.
type publishedTrack struct {
	owner *session
	kind  webrtc.RTPCodecType
	// screen: a shared screen, its own source beside the camera (its
	// subscribers get it as a stream of its own, and before the cameras
	// when their links are short).
	screen bool
	// idle: the screen is not shared now (nothing came for a while); the
	// others are not sent it until it comes again.
	idle  atomic.Bool
	codec webrtc.RTPCodecCapability
	// layers by quality; a slot is empty until the publisher sends it.
	layers [maxLayers]atomic.Pointer[layer]
	live   atomic.Bool
	// downs are the subscribers' down-tracks: the forwarding goroutines
	// read the slice without a lock; changes replace it whole.
	downs  atomic.Pointer[[]*downTrack]
	downMu sync.Mutex
}

// layer is one encoding of a source: what one of the publisher's m-lines
// carries.
type layer struct {
	source *publishedTrack
	index  int
	remote *webrtc.TrackRemote
	// keyframe wakes the layer's RTCP writer: a request is made on the
	// forwarding path or under sfu.mu, where a network write could stall.
	keyframe chan struct{}
	// bytes received so far; rate is the bit rate the allocator measured
	// over its last interval (0: the publisher sends nothing on it now).
	bytes       atomic.Int64
	rate        atomic.Int64
	lastBytes   int64     // the allocator's, under sfu.mu
	lastBytesAt time.Time // when lastBytes last grew, under sfu.mu
}

func (t *publishedTrack) addDown(d *downTrack) {
	t.downMu.Lock()
	defer t.downMu.Unlock()
	var next []*downTrack
	if cur := t.downs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, d)
	t.downs.Store(&next)
}

func (t *publishedTrack) removeDown(d *downTrack) {
	t.downMu.Lock()
	defer t.downMu.Unlock()
	cur := t.downs.Load()
	if cur == nil {
		return
	}
	next := make([]*downTrack, 0, len(*cur))
	for _, x := range *cur {
		if x != d {
			next = append(next, x)
		}
	}
	t.downs.Store(&next)
}

// layer returns the source's layer i (nil: not sent).
func (t *publishedTrack) layer(i int) *layer {
	if i < 0 || i >= maxLayers {
		return nil
	}
	return t.layers[i].Load()
}

// activeLayers lists the layers the publisher is sending now, lowest first.
func (t *publishedTrack) activeLayers() []*layer {
	var out []*layer
	for i := range maxLayers {
		if l := t.layer(i); l != nil && l.rate.Load() > 0 {
			out = append(out, l)
		}
	}
	return out
}

// requestKeyframe asks for a keyframe on layer i of a camera.
func (t *publishedTrack) requestKeyframe(i int) {
	if t.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	if l := t.layer(i); l != nil {
		l.requestKeyframe()
	}
}

func (l *layer) requestKeyframe() {
	select {
	case l.keyframe <- struct{}{}:
	default: // one is already on its way
	}
}

// writeKeyframeRequests sends the publisher a PLI per request, at most one
// per interval, until done.
func (l *layer) writeKeyframeRequests(done <-chan struct{}, m *Metrics) {
	var last time.Time
	for {
		select {
		case <-done:
			return
		case <-l.keyframe:
		}
		if wait := l.requestInterval() - time.Since(last); wait > 0 {
			select {
			case <-done:
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		m.PLIs.Add(1)
		_ = l.source.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(l.remote.SSRC())}})
	}
}

// requestInterval is the least time between two keyframe requests to this
// layer: the lowest layer the publisher sends (a camera sent without
// simulcast has only one) is asked more often than the costlier ones above.
func (l *layer) requestInterval() time.Duration {
	for i := range l.index {
		if l.source.layer(i) != nil {
			return 2 * keyframeInterval
		}
	}
	return keyframeInterval
}

// mediaCodecWithin bounds how many packets mediaCodec reads past while it
// waits for one that names a codec of the track's kind.
const mediaCodecWithin = 1000

// mediaCodec is the codec of remote's media: that of the first packet whose
// payload type names a codec of the track's kind. pion takes a track's codec
// from the packet that opened it, which can name none: a camera's first
// packet, under load, once had payload type 0, which pion reads as
// audio/PCMU on a video m-line. Published with that codec, the camera could
// be bound by no subscriber (each of the provider's answers failed "codec is
// not supported by remote", and the provider's page reconnected for good
// without ever seeing the patient). Packets read past are dropped: they
// carry none of the track's media. Reports false if the track ends first.
func mediaCodec(remote *webrtc.TrackRemote) (webrtc.RTPCodecCapability, bool) {
	buf := make([]byte, 1500)
	for range mediaCodecWithin {
		if c := remote.Codec().RTPCodecCapability; isMediaCodec(c.MimeType, remote.Kind()) {
			return c, true
		}
		if _, _, err := remote.Read(buf); err != nil {
			return webrtc.RTPCodecCapability{}, false
		}
	}
	return webrtc.RTPCodecCapability{}, false
}

// isMediaCodec tells whether mime names a codec that carries media of
// kind (not a retransmission format).
func isMediaCodec(mime string, kind webrtc.RTPCodecType) bool {
	kindPrefix, _, ok := strings.Cut(strings.ToLower(mime), "/")
	return ok && kindPrefix == kind.String() && !strings.EqualFold(mime, webrtc.MimeTypeRTX)
}

// forward copies the layer's packets to the source's down-tracks while the
// publisher is bound into a call. One buffer and one packet are reused: no
// allocation per packet.
func (l *layer) forward(m *Metrics) {
	stopped := make(chan struct{})
	defer close(stopped)
	if l.source.kind == webrtc.RTPCodecTypeVideo {
		go l.writeKeyframeRequests(stopped, m)
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		// The layer's rate is what a subscriber would be sent: the
		// publisher's padding (its browser probing its own uplink, often on
		// the lowest layer) is not forwarded, and counted it made a small
		// layer look as costly as a large one.
		if len(pkt.Payload) > 0 {
			l.bytes.Add(int64(n - int(pkt.Header.PaddingSize)))
		}
		if l.source.idle.Load() && l.source.idle.CompareAndSwap(true, false) {
			go l.source.owner.sfu.reconcile() // shared again: the others get it again
		}
		if l.source.live.Load() {
			forwardParsed(&pkt, n, l.source.downs.Load(), l.index, m)
		}
	}
}

// forwardParsed sends one parsed packet (size bytes as received) to each
// down-track.
func forwardParsed(pkt *rtp.Packet, size int, downs *[]*downTrack, layer int, m *Metrics) {
	if downs == nil {
		return
	}
	// Header extension ids are negotiated per PeerConnection.
	pkt.Extension, pkt.Extensions = false, pkt.Extensions[:0]
	// Padding is the publisher's probing of its own uplink: it is not
	// forwarded (a subscriber's link is probed by the node for itself).
	pkt.Padding, pkt.Header.PaddingSize = false, 0
	if len(pkt.Payload) == 0 {
		for _, d := range *downs {
			d.skip(layer)
		}
		return
	}
	for _, d := range *downs {
		d.write(pkt, size, layer, m)
	}
}
