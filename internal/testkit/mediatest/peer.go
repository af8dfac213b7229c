// Package mediatest is a pion WebRTC client for tests: it opens a signaling
// session on a Handoff media node, publishes tagged audio and video (the
// first payload byte names the sender), answers keyframe requests with a
// keyframe, and counts what it receives by sender.
package mediatest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

// traceGaps: with HANDOFF_MEDIA_TRACE set, each new longest audio gap
// over 100 ms is printed with the time it ended, to line it up with the
// media node's trace.
var traceGaps = os.Getenv("HANDOFF_MEDIA_TRACE") != ""

// Message is a signaling message (the media node's protocol).
type Message struct {
	Type        string                   `json:"type"`
	SDP         string                   `json:"sdp,omitempty"`
	Candidate   *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Token       string                   `json:"token,omitempty"`
	Call        string                   `json:"call,omitempty"`
	Participant string                   `json:"participant,omitempty"`
	Message     string                   `json:"message,omitempty"`
	Muted       *bool                    `json:"muted,omitempty"`
	CameraOff   *bool                    `json:"cameraOff,omitempty"`
	Poor        *bool                    `json:"poor,omitempty"`
	Estimate    int                      `json:"estimate,omitempty"`
	Layer       string                   `json:"layer,omitempty"`
}

// peer is a pion client: it publishes tagged audio and video (the first
// payload byte names the sender) and counts what it receives by tag.
type Peer struct {
	t    testing.TB
	ID   string
	Tag  byte
	WS   *websocket.Conn
	PC   *webrtc.PeerConnection
	WSMu sync.Mutex

	// Candidates wait for the answer they belong to, as the pages do.
	candMu   sync.Mutex
	answered bool
	held     []webrtc.ICECandidateInit

	mu        sync.Mutex
	received  map[string]int // "tag/kind" → packets
	lastAt    map[byte]time.Time
	firstAt   map[string]time.Time // "tag/kind" → first packet
	keyframes map[byte][]time.Time
	// firstVideoKey: whether the first video packet from each sender
	// started a keyframe (what a decoder needs to show anything).
	firstVideoKey map[byte]bool
	// layer: the camera layer (its letter) each sender's video last came
	// on; layerPackets counts video packets by "tag+letter".
	layer        map[byte]byte
	layerPackets map[string]int
	// The longest wait between two audio packets from each sender, since
	// ResetAudioGaps.
	lastAudioAt map[byte]time.Time
	maxAudioGap map[byte]time.Duration
	lastSeq     map[uint32]uint16
	gaps        int
	keyframe    chan struct{}

	ifaces               *stdnet.Net
	url, token, resumeID string
	resume               bool
	Resumes              atomic.Int64

	PLIs   atomic.Int64
	Errors chan string
	Events chan Message
	stop   chan struct{}
}

// Options shape what a peer publishes. The zero value sends 50 audio and
// about 17 video packets a second, small ones.
type Options struct {
	// VideoPacketsPerTick and VideoPayloadBytes, when set, send that many
	// video packets of that size every 20 ms (e.g. 3 × 1,200 B ≈ 1.5 Mbps).
	VideoPacketsPerTick, VideoPayloadBytes int
	// ICEServers are the STUN/TURN servers the API hands a page;
	// RelayOnly uses only TURN relays (ICE transport policy "relay").
	ICEServers []webrtc.ICEServer
	RelayOnly  bool
	// TCP also gathers (active) TCP candidates, as browsers do.
	TCP bool
	// Resume reconnects a dropped signaling socket to the same session
	// (?resume=), as the pages do when their network changes.
	Resume bool
	// Simulcast sends the camera as three layers, as the pages do: full
	// (about 960 kbit/s), half (300) and quarter (100), each on its own
	// m-line and each answering its own keyframe requests. The layer's
	// letter ('f', 'h', 'q') is the video payload's fourth byte.
	Simulcast bool
	// Screen (with Simulcast) also shares a screen: a fifth m-line, about
	// 100 kbit/s, its payload's fourth byte 's'. What a peer receives of
	// someone's screen it counts as kind "screen".
	Screen bool
	// Feedback reports what arrives as a browser does: transport-wide
	// congestion control feedback (TWCC), receiver reports and NACKs (pion's
	// default interceptors). Without it the node's estimate of this
	// peer's downlink never moves.
	Feedback bool
	// StrayVideoPackets goes before the camera's first packet: that many
	// packets without media, with payload type 0, which pion reads as
	// audio/PCMU. Chrome's camera once opened its stream so, under load.
	StrayVideoPackets int
}

// Layers is what a simulcast peer sends per 20 ms on each layer: packets
// and payload bytes per packet (full, half, quarter).
var Layers = [3]struct {
	Letter           byte
	Packets, Payload int
}{{'f', 2, 1200}, {'h', 1, 750}, {'q', 1, 250}}

// Dial opens a session with the session token and starts publishing.
func Dial(t testing.TB, url, sessionToken, id string, tag byte) *Peer {
	return DialWith(t, url, sessionToken, id, tag, Options{})
}

// DialWith is Dial with publishing options.
func DialWith(t testing.TB, url, sessionToken, id string, tag byte, opts Options) *Peer {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url+"?token="+sessionToken, nil)
	require.NoError(t, err)
	var se webrtc.SettingEngine
	// pion reads the host's interfaces once; a peer whose address changes
	// (a new network) reads them again before each answer, as browsers do.
	ifaces, err := stdnet.NewNet()
	require.NoError(t, err)
	se.SetNet(ifaces)
	if opts.TCP {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	}
	cfg := webrtc.Configuration{ICEServers: opts.ICEServers}
	if opts.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	apiOpts := []func(*webrtc.API){webrtc.WithSettingEngine(se)}
	if opts.Feedback {
		var m webrtc.MediaEngine
		require.NoError(t, m.RegisterDefaultCodecs())
		// pion's defaults, with a browser's NACK retry limit (libwebrtc
		// gives up on a packet after 10 requests).
		var ir interceptor.Registry
		require.NoError(t, webrtc.ConfigureNackWithOptions(&m, &ir, []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(10)}))
		require.NoError(t, webrtc.ConfigureRTCPReports(&ir))
		require.NoError(t, webrtc.ConfigureSimulcastExtensionHeaders(&m))
		require.NoError(t, webrtc.ConfigureTWCCSender(&m, &ir))
		apiOpts = append(apiOpts, webrtc.WithMediaEngine(&m), webrtc.WithInterceptorRegistry(&ir))
	}
	if opts.StrayVideoPackets > 0 {
		if opts.Feedback {
			t.Fatal("mediatest: StrayVideoPackets does not go with Feedback")
		}
		var m webrtc.MediaEngine
		require.NoError(t, m.RegisterDefaultCodecs())
		var ir interceptor.Registry
		ir.Add(strayPackets(opts.StrayVideoPackets))
		apiOpts = append(apiOpts, webrtc.WithMediaEngine(&m), webrtc.WithInterceptorRegistry(&ir))
	}
	pc, err := webrtc.NewAPI(apiOpts...).NewPeerConnection(cfg)
	require.NoError(t, err)
	p := &Peer{t: t, ID: id, Tag: tag, WS: ws, PC: pc, received: map[string]int{}, lastAt: map[byte]time.Time{}, firstAt: map[string]time.Time{},
		keyframes: map[byte][]time.Time{}, firstVideoKey: map[byte]bool{}, layer: map[byte]byte{}, layerPackets: map[string]int{}, lastAudioAt: map[byte]time.Time{}, maxAudioGap: map[byte]time.Duration{}, lastSeq: map[uint32]uint16{}, keyframe: make(chan struct{}, 1),
		Errors: make(chan string, 10), Events: make(chan Message, 100), stop: make(chan struct{}),
		url: url, token: sessionToken, resume: opts.Resume, ifaces: ifaces}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", id)
	require.NoError(t, err)
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", id)
	require.NoError(t, err)
	_, err = pc.AddTrack(audio)
	require.NoError(t, err)
	vs, err := pc.AddTrack(video)
	require.NoError(t, err)
	go p.readPLIs(vs, p.keyframe)
	var layers [3]*webrtc.TrackLocalStaticRTP
	var layerKeys [3]chan struct{}
	if opts.Simulcast {
		// The first video track is the full layer; the half and quarter
		// follow on the node's next two video m-lines.
		layers[0], layerKeys[0] = video, p.keyframe
		for i := 1; i < 3; i++ {
			layers[i], err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video-"+string(Layers[i].Letter), id)
			require.NoError(t, err)
			sender, err := pc.AddTrack(layers[i])
			require.NoError(t, err)
			layerKeys[i] = make(chan struct{}, 1)
			go p.readPLIs(sender, layerKeys[i])
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			p.candidate(c.ToJSON())
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := remote.Read(buf)
			if err != nil {
				return
			}
			var pkt rtp.Packet
			if pkt.Unmarshal(buf[:n]) != nil || len(pkt.Payload) == 0 {
				continue
			}
			p.mu.Lock()
			if last, seen := p.lastSeq[pkt.SSRC]; seen && pkt.SequenceNumber != last+1 {
				p.gaps++
			}
			p.lastSeq[pkt.SSRC] = pkt.SequenceNumber
			now := time.Now()
			tag, keyframe := pkt.Payload[0], false
			kind := remote.Kind().String()
			if remote.Kind() == webrtc.RTPCodecTypeVideo && strings.HasPrefix(remote.StreamID(), "screen-") {
				kind = "screen"
			}
			if remote.Kind() == webrtc.RTPCodecTypeVideo && len(pkt.Payload) > 2 {
				tag, keyframe = pkt.Payload[2], pkt.Payload[0]&vp8Start != 0 && pkt.Payload[1]&vp8Delta == 0
				if kind == "screen" {
					keyframe = false // the camera's keyframes are counted
				} else if len(pkt.Payload) > 3 && pkt.Payload[3] != 0 {
					p.layer[tag] = pkt.Payload[3]
					p.layerPackets[string([]byte{tag, pkt.Payload[3]})]++
				}
			}
			key := string([]byte{tag}) + "/" + kind
			if p.received[key] == 0 {
				p.firstAt[key] = now
				if remote.Kind() == webrtc.RTPCodecTypeVideo {
					p.firstVideoKey[tag] = keyframe
				}
			}
			p.received[key]++
			p.lastAt[tag] = now
			if remote.Kind() == webrtc.RTPCodecTypeAudio {
				if last, ok := p.lastAudioAt[tag]; ok && now.Sub(last) > p.maxAudioGap[tag] {
					p.maxAudioGap[tag] = now.Sub(last)
					if traceGaps && now.Sub(last) > 100*time.Millisecond {
						fmt.Fprintf(os.Stderr, "%s audio gap %v\n", now.Format("15:04:05.000"), now.Sub(last).Round(time.Millisecond))
					}
				}
				p.lastAudioAt[tag] = now
			}
			if keyframe {
				p.keyframes[tag] = append(p.keyframes[tag], now)
			}
			p.mu.Unlock()
		}
	})
	go p.readSignals()
	var screen *webrtc.TrackLocalStaticRTP
	screenKey := make(chan struct{}, 1)
	if opts.Simulcast && opts.Screen {
		screen, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", id)
		require.NoError(t, err)
		sender, err := pc.AddTrack(screen)
		require.NoError(t, err)
		go p.readPLIs(sender, screenKey)
	}
	if opts.Simulcast {
		go PublishSimulcast(audio, layers, tag, p.stop, layerKeys)
		if screen != nil {
			go publishScreen(screen, tag, p.stop, screenKey)
		}
	} else {
		go p.publish(audio, video, opts)
	}
	t.Cleanup(p.Close)
	return p
}

// readPLIs counts the node's keyframe requests on one video sender and
// asks for a keyframe on the next tick of that track.
func (p *Peer) readPLIs(sender *webrtc.RTPSender, keyframe chan struct{}) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			if _, ok := pk.(*rtcp.PictureLossIndication); ok {
				p.PLIs.Add(1)
				select { // answer with a keyframe on the next video tick
				case keyframe <- struct{}{}:
				default:
				}
			}
		}
	}
}

// PublishSimulcast sends, every 20 ms until stop closes, one audio packet
// and a frame on each camera layer (Layers: full, half, quarter), the
// layer's letter in the payload's fourth byte. A receive on keyframes[i]
// makes layer i's next frame a keyframe.
func PublishSimulcast(audio *webrtc.TrackLocalStaticRTP, layers [3]*webrtc.TrackLocalStaticRTP, tag byte, stop <-chan struct{}, keyframes [3]chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var vseq [3]uint16
	var ts uint32
	payload := []byte{tag, 0x10, 0, 0, 0, 0, 0, 0}
	var frames [3][]byte
	for i, l := range Layers {
		frames[i] = make([]byte, l.Payload)
		frames[i][2], frames[i][3] = tag, l.Letter
	}
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 960
		_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
		for i, l := range Layers {
			frame := frames[i]
			frame[1] = vp8Delta
			select {
			case <-keyframes[i]:
				frame[1] = 0
			default:
			}
			for j := 0; j < l.Packets; j++ {
				frame[0] = 0 // the frame's later packets: no start bit
				if j == 0 {
					frame[0] = vp8Start
				}
				vseq[i]++
				_ = layers[i].WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: vseq[i], Timestamp: ts * 2, Marker: j == l.Packets-1}, Payload: frame})
			}
		}
	}
}

// publishScreen sends a shared screen: one 250-byte frame every 20 ms
// (about 100 kbit/s), a keyframe when asked.
func publishScreen(screen *webrtc.TrackLocalStaticRTP, tag byte, stop <-chan struct{}, keyframe chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frame := make([]byte, 250)
	frame[0], frame[2], frame[3] = vp8Start, tag, 's'
	var seq uint16
	var ts uint32
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 1800
		frame[1] = vp8Delta
		select {
		case <-keyframe:
			frame[1] = 0
		default:
		}
		_ = screen.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: frame})
	}
}

// Layer is the letter of the camera layer last received from the sender
// tagged from (0: none, or not simulcast).
func (p *Peer) Layer(from byte) byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.layer[from]
}

// LayerPackets counts video packets of layer letter from the sender tagged from.
func (p *Peer) LayerPackets(from, letter byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.layerPackets[string([]byte{from, letter})]
}

func (p *Peer) candidate(c webrtc.ICECandidateInit) {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if !p.answered {
		p.held = append(p.held, c)
		return
	}
	p.Send(Message{Type: "candidate", Candidate: &c})
}

// reconnect dials the same session again (for up to 10 s) after its
// socket dropped.
func (p *Peer) reconnect() bool {
	for i := 0; i < 40; i++ {
		select {
		case <-p.stop:
			return false
		case <-time.After(250 * time.Millisecond):
		}
		ws, _, err := websocket.DefaultDialer.Dial(p.url+"?token="+p.token+"&resume="+p.resumeID, nil)
		if err != nil {
			continue
		}
		p.WSMu.Lock()
		_ = p.WS.Close()
		p.WS = ws
		p.WSMu.Unlock()
		p.Resumes.Add(1)
		return true
	}
	return false
}

// Send writes a signaling message.
func (p *Peer) Send(m Message) {
	p.WSMu.Lock()
	defer p.WSMu.Unlock()
	_ = p.WS.WriteJSON(m)
}

func (p *Peer) readSignals() {
	for {
		p.WSMu.Lock()
		ws := p.WS
		p.WSMu.Unlock()
		// The node pings every 5 s (or faster): a socket silent for 8 s is
		// dead, even if TCP has not noticed (the address it used is gone).
		_ = ws.SetReadDeadline(time.Now().Add(8 * time.Second))
		_, raw, err := ws.ReadMessage()
		if err != nil {
			if p.resume && p.resumeID != "" && p.reconnect() {
				continue
			}
			close(p.Events)
			return
		}
		var m Message
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		switch m.Type {
		case "offer":
			p.candMu.Lock()
			p.answered = false // an ICE restart's candidates follow its answer
			p.candMu.Unlock()
			_ = p.ifaces.UpdateInterfaces()
			if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				p.Errors <- "set offer: " + err.Error()
				continue
			}
			answer, err := p.PC.CreateAnswer(nil)
			if err != nil {
				p.Errors <- "answer: " + err.Error()
				continue
			}
			if err := p.PC.SetLocalDescription(answer); err != nil {
				p.Errors <- "set answer: " + err.Error()
				continue
			}
			p.candMu.Lock()
			p.Send(Message{Type: "answer", SDP: answer.SDP})
			p.answered = true
			for _, c := range p.held {
				p.Send(Message{Type: "candidate", Candidate: &c})
			}
			p.held = nil
			p.candMu.Unlock()
		case "candidate":
			if m.Candidate != nil {
				_ = p.PC.AddICECandidate(*m.Candidate)
			}
		case "ping":
			p.Send(Message{Type: "pong"})
		case "welcome":
			p.resumeID = m.Token
		case "error":
			p.Errors <- m.Message
		default:
			select { // keep reading signals even if nobody reads the events
			case p.Events <- m:
			default:
			}
		}
	}
}

// publish sends 50 audio and 30 video packets a second, tagged.
func (p *Peer) publish(audio, video *webrtc.TrackLocalStaticRTP, opts Options) {
	Publish(audio, video, p.Tag, opts, p.stop, p.keyframe)
}

// Publish sends, every 20 ms until stop closes, one audio packet and video:
// opts.VideoPacketsPerTick packets of opts.VideoPayloadBytes, or else one
// small packet every third tick. Audio's first payload byte is tag; video
// is VP8 as the media node reads it (RFC 7741: a descriptor that starts a
// frame, then the payload header whose P bit is 0 on keyframes) with tag
// third. A receive on keyframe makes the next video frame a keyframe (nil:
// never). Other pion clients (the benchmark's floor peers) send the same
// load with it.
func Publish(audio, video *webrtc.TrackLocalStaticRTP, tag byte, opts Options, stop, keyframe <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq, vseq uint16
	var ts uint32
	payload := []byte{tag, 0x10, 0, 0, 0, 0, 0, 0}
	small := []byte{vp8Start, vp8Delta, tag, 0, 0, 0, 0, 0}
	big := make([]byte, max(opts.VideoPayloadBytes, 3))
	big[0], big[2] = vp8Start, tag
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 960
		_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
		key := false
		select {
		case <-keyframe:
			key = true
		default:
		}
		if opts.VideoPacketsPerTick > 0 {
			big[1] = vp8Delta
			if key {
				big[1] = 0
			}
			for j := 0; j < opts.VideoPacketsPerTick; j++ {
				if j == 1 {
					big[0] = 0 // the frame's later packets: no start bit
				}
				vseq++
				_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: vseq, Timestamp: ts * 2, Marker: j == opts.VideoPacketsPerTick-1}, Payload: big})
			}
			big[0] = vp8Start
			continue
		}
		if i%3 == 0 || key {
			small[1] = vp8Delta
			if key {
				small[1] = 0
			}
			vseq++
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: vseq, Timestamp: ts * 2, Marker: true}, Payload: small})
		}
	}
}

// Join asks to join the call its join token names.
func (p *Peer) Join(joinToken string) { p.Send(Message{Type: "join", Token: joinToken}) }

// Count is how many packets of kind came from the sender tagged from.
func (p *Peer) Count(from byte, kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received[string([]byte{from})+"/"+kind]
}

// Total counts audio and video from the sender tagged from.
func (p *Peer) Total(from byte) int { return p.Count(from, "audio") + p.Count(from, "video") }

// Close ends the peer.
func (p *Peer) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		_ = p.PC.Close()
		_ = p.WS.Close()
	}
}

// ReceivesFrom waits until p gets audio and video from each of the others.
func (p *Peer) ReceivesFrom(t *testing.T, others ...*Peer) {
	t.Helper()
	p.ReceivesFromWithin(t, 10*time.Second, others...)
}

// ReceivesFromWithin is ReceivesFrom with its own time limit.
func (p *Peer) ReceivesFromWithin(t *testing.T, limit time.Duration, others ...*Peer) {
	t.Helper()
	receives := func() bool {
		for _, o := range others {
			if p.Count(o.Tag, "audio") < 5 || p.Count(o.Tag, "video") < 2 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(limit); !receives(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s should receive from %d others within %s (%s)", p.ID, len(others), limit, p.state())
		}
	}
}

// state says where the peer's connection stands, for a failing test: a
// rare failure to receive (seen under CI load) leaves this to go on.
func (p *Peer) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []string
	for len(p.Errors) > 0 {
		errs = append(errs, <-p.Errors)
	}
	return fmt.Sprintf("connection %s, signaling %s, ICE %s, received %v, signaling errors %q",
		p.PC.ConnectionState(), p.PC.SignalingState(), p.PC.ICEConnectionState(), p.received, errs)
}

// NoErrors fails the test if the media node reported an error to p.
func (p *Peer) NoErrors(t *testing.T) {
	select {
	case e := <-p.Errors:
		t.Fatalf("%s got an error: %s", p.ID, e)
	default:
	}
}

// A VP8 payload descriptor with S set (a frame's first packet, partition
// 0), and the payload header's P bit (set on a delta frame).
const (
	vp8Start = 0x10
	vp8Delta = 0x01
)

// FirstVideoWasKeyframe tells whether the first video packet received from
// the sender tagged from started a keyframe (false, false: none yet).
func (p *Peer) FirstVideoWasKeyframe(from byte) (key, seen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, seen = p.firstVideoKey[from]
	return key, seen
}

// MaxAudioGap is the longest wait between two audio packets from the
// sender tagged from since ResetAudioGaps (what a listener hears as a gap).
func (p *Peer) MaxAudioGap(from byte) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxAudioGap[from]
}

// ResetAudioGaps starts measuring audio gaps afresh.
func (p *Peer) ResetAudioGaps() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.maxAudioGap)
	clear(p.lastAudioAt)
}

// KeyframesFrom lists when keyframes from the sender tagged from arrived.
func (p *Peer) KeyframesFrom(from byte) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.keyframes[from]...)
}

// FirstFrom is when the first packet of kind from the sender tagged from
// arrived (zero: none yet).
func (p *Peer) FirstFrom(from byte, kind string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstAt[string([]byte{from})+"/"+kind]
}

// LastFrom is when the last packet from the sender tagged from arrived.
func (p *Peer) LastFrom(from byte) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastAt[from]
}

// SequenceGaps counts received packets whose sequence number did not follow
// the previous packet of the same stream (SSRC).
func (p *Peer) SequenceGaps() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gaps
}

// strayPackets is an interceptor factory: each video stream it binds sends,
// before its first packet, that many packets without media and with
// payload type 0 (Options.StrayVideoPackets).
type strayPackets int

func (n strayPackets) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &strayInterceptor{n: int(n)}, nil
}

type strayInterceptor struct {
	interceptor.NoOp
	n int
}

func (s *strayInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if !strings.HasPrefix(strings.ToLower(info.MimeType), "video/") {
		return w
	}
	var first sync.Once
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		first.Do(func() {
			for i := range s.n {
				stray := h.Clone()
				stray.PayloadType, stray.Marker = 0, false
				stray.SequenceNumber = h.SequenceNumber - uint16(s.n-i)
				_, _ = w.Write(&stray, nil, a)
			}
		})
		return w.Write(h, payload, a)
	})
}
