package media

import (
	"encoding/json"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

const testSecret = "media-test-secret"

// node is a media node on loopback for the tests.
type node struct {
	sfu *SFU
	url string
}

func newNode(t *testing.T) *node {
	srv, err := NewServer(testSecret, "control-token")
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &node{sfu: srv.SFU, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"}
}

// peer is a pion client: it publishes tagged audio and video (the first
// payload byte names the sender) and counts what it receives by tag.
type peer struct {
	t    *testing.T
	id   string
	tag  byte
	ws   *websocket.Conn
	pc   *webrtc.PeerConnection
	wsMu sync.Mutex

	mu       sync.Mutex
	received map[string]int // "tag/kind" → packets
	lastAt   map[byte]time.Time

	plis   atomic.Int64
	errors chan string
	events chan message
	stop   chan struct{}
}

func (n *node) connect(t *testing.T, id string, tag byte) *peer {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(n.url+"?token="+n.sfu.Tokens().Mint(id, "", time.Minute), nil)
	require.NoError(t, err)
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	p := &peer{t: t, id: id, tag: tag, ws: ws, pc: pc, received: map[string]int{}, lastAt: map[byte]time.Time{},
		errors: make(chan string, 10), events: make(chan message, 100), stop: make(chan struct{})}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", id)
	require.NoError(t, err)
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", id)
	require.NoError(t, err)
	_, err = pc.AddTrack(audio)
	require.NoError(t, err)
	vs, err := pc.AddTrack(video)
	require.NoError(t, err)
	go func() {
		for {
			pkts, _, err := vs.ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				if _, ok := pk.(*rtcp.PictureLossIndication); ok {
					p.plis.Add(1)
				}
			}
		}
	}()
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			p.send(message{Type: "candidate", Candidate: &init})
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
			p.received[string([]byte{pkt.Payload[0]})+"/"+remote.Kind().String()]++
			p.lastAt[pkt.Payload[0]] = time.Now()
			p.mu.Unlock()
		}
	})
	go p.readSignals()
	go p.publish(audio, video)
	t.Cleanup(p.close)
	return p
}

func (p *peer) send(m message) {
	p.wsMu.Lock()
	defer p.wsMu.Unlock()
	_ = p.ws.WriteJSON(m)
}

func (p *peer) readSignals() {
	for {
		_, raw, err := p.ws.ReadMessage()
		if err != nil {
			close(p.events)
			return
		}
		var m message
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		switch m.Type {
		case "offer":
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				p.errors <- "set offer: " + err.Error()
				continue
			}
			answer, err := p.pc.CreateAnswer(nil)
			if err != nil {
				p.errors <- "answer: " + err.Error()
				continue
			}
			if err := p.pc.SetLocalDescription(answer); err != nil {
				p.errors <- "set answer: " + err.Error()
				continue
			}
			p.send(message{Type: "answer", SDP: answer.SDP})
		case "candidate":
			if m.Candidate != nil {
				_ = p.pc.AddICECandidate(*m.Candidate)
			}
		case "error":
			p.errors <- m.Message
		default:
			select { // keep reading signals even if nobody reads the events
			case p.events <- m:
			default:
			}
		}
	}
}

// publish sends 50 audio and 30 video packets a second, tagged.
func (p *peer) publish(audio, video *webrtc.TrackLocalStaticRTP) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	payload := []byte{p.tag, 0x10, 0, 0, 0, 0, 0, 0}
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 960
		_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
		if i%3 == 0 {
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts * 2, Marker: true}, Payload: payload})
		}
	}
}

func (p *peer) join(n *node, callID string) {
	p.send(message{Type: "join", Token: n.sfu.Tokens().Mint(p.id, callID, time.Minute)})
}

func (p *peer) count(from byte, kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received[string([]byte{from})+"/"+kind]
}

func (p *peer) total(from byte) int { return p.count(from, "audio") + p.count(from, "video") }

func (p *peer) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		_ = p.pc.Close()
		_ = p.ws.Close()
	}
}

// receivesFrom waits until p gets audio and video from each of the others.
func (p *peer) receivesFrom(t *testing.T, others ...*peer) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, o := range others {
			if p.count(o.tag, "audio") < 5 || p.count(o.tag, "video") < 2 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "%s should receive from %d others", p.id, len(others))
}

func (p *peer) noErrors(t *testing.T) {
	select {
	case e := <-p.errors:
		t.Fatalf("%s got an error: %s", p.id, e)
	default:
	}
}

func admit(t *testing.T, n *node, callID string, peers ...*peer) {
	ctx := t.Context()
	require.NoError(t, n.sfu.CreateCall(ctx, callID))
	for _, p := range peers {
		require.NoError(t, n.sfu.Attach(ctx, callID, p.id))
		p.join(n, callID)
	}
}

func TestOneToOneCallBothWays(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	doctor.receivesFrom(t, patient)
	patient.receivesFrom(t, doctor)
	require.Zero(t, doctor.total('D'), "nobody receives their own media")
	doctor.noErrors(t)
	patient.noErrors(t)
}

func TestWaitingPatientGetsAndGivesNothing(t *testing.T) {
	n := newNode(t)
	doctor, other, waiting := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P'), n.connect(t, "visit:2", 'W')
	admit(t, n, "call-1", doctor, other)
	doctor.receivesFrom(t, other)
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, waiting.total('D')+waiting.total('P'), "a waiting patient receives nothing")
	require.Zero(t, doctor.total('W')+other.total('W'), "and sends nothing into the call")
}

func TestGroupDetachSilencesBothWaysWithin100ms(t *testing.T) {
	n := newNode(t)
	doc, a, b, c := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:a", 'A'), n.connect(t, "visit:b", 'B'), n.connect(t, "visit:c", 'C')
	admit(t, n, "group", doc, a, b, c)
	all := []*peer{doc, a, b, c}
	for _, p := range all {
		var others []*peer
		for _, o := range all {
			if o != p {
				others = append(others, o)
			}
		}
		p.receivesFrom(t, others...)
	}

	require.NoError(t, n.sfu.Detach(t.Context(), "group", a.id))
	time.Sleep(100 * time.Millisecond)
	fromOthers := a.total('D') + a.total('B') + a.total('C')
	toOthers := doc.total('A') + b.total('A') + c.total('A')
	stayed := doc.total('B') + b.total('C') + c.total('D')
	time.Sleep(600 * time.Millisecond)
	require.Equal(t, fromOthers, a.total('D')+a.total('B')+a.total('C'), "100 ms after detach the patient receives nothing from the call")
	require.Equal(t, toOthers, doc.total('A')+b.total('A')+c.total('A'), "and the call receives nothing from the patient")
	require.Greater(t, doc.total('B')+b.total('C')+c.total('D'), stayed+30, "the others keep flowing")
	for _, p := range all {
		p.noErrors(t)
	}
}

func TestAdmitAfterTransferReusesTheSession(t *testing.T) {
	n := newNode(t)
	lee, patel, patient := n.connect(t, "user:lee", 'L'), n.connect(t, "user:patel", 'T'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", lee, patient)
	lee.receivesFrom(t, patient)
	require.NoError(t, n.sfu.EndCall(t.Context(), "call-1")) // a 1:1 transfer ends the call

	admit(t, n, "call-2", patel)
	before := patient.plis.Load()
	admit(t, n, "call-2", patient)
	patel.receivesFrom(t, patient)
	patient.receivesFrom(t, patel)
	require.Eventually(t, func() bool { return patient.plis.Load() > before }, 5*time.Second, 10*time.Millisecond,
		"the receiving provider asked the patient for a keyframe")
	lTotal := lee.total('P')
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, lTotal, lee.total('P'), "the old call hears nothing more")
	for _, p := range []*peer{lee, patel, patient} {
		p.noErrors(t) // no renegotiation failure, no glare
	}
}

func TestTokensAndAdmission(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	doctor.receivesFrom(t, patient)
	old := n.sfu.Tokens().Mint(patient.id, "call-1", time.Minute)
	require.NoError(t, n.sfu.Detach(t.Context(), "call-1", patient.id))

	patient.send(message{Type: "join", Token: old})
	require.Equal(t, errNotAdmitted.Error(), <-patient.errors, "an old token after detach is refused")
	require.NoError(t, n.sfu.CreateCall(t.Context(), "call-2"))
	patient.send(message{Type: "join", Token: n.sfu.Tokens().Mint(patient.id, "call-2", time.Minute)})
	require.Equal(t, errNotAdmitted.Error(), <-patient.errors, "a call it was not admitted to is refused")
	patient.send(message{Type: "join", Token: n.sfu.Tokens().Mint("visit:someone-else", "call-1", time.Minute)})
	require.Equal(t, errNotAdmitted.Error(), <-patient.errors, "another participant's token is refused")
	patient.send(message{Type: "join", Token: NewTokens("wrong-secret").Mint(patient.id, "call-1", time.Minute)})
	require.Equal(t, errBadToken.Error(), <-patient.errors)
	patient.send(message{Type: "join", Token: n.sfu.Tokens().Mint(patient.id, "call-1", -time.Second)})
	require.Equal(t, errExpiredToken.Error(), <-patient.errors)

	_, _, err := websocket.DefaultDialer.Dial(n.url+"?token="+old, nil)
	require.Error(t, err, "a join token cannot open a session")
	dup, _, err := websocket.DefaultDialer.Dial(n.url+"?token="+n.sfu.Tokens().Mint(doctor.id, "", time.Minute), nil)
	require.NoError(t, err)
	var refusal message
	require.NoError(t, dup.ReadJSON(&refusal))
	require.Equal(t, errDuplicate.Error(), refusal.Message, "a second session for a participant is refused, not allowed to hijack")
	_, _, err = dup.ReadMessage()
	require.Error(t, err, "and closed")
	doctor.noErrors(t)
}

func TestMalformedSignalingClosesOnlyThatSession(t *testing.T) {
	n := newNode(t)
	doctor, patient, rogue := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P'), n.connect(t, "visit:2", 'R')
	admit(t, n, "call-1", doctor, patient)
	doctor.receivesFrom(t, patient)
	rogue.wsMu.Lock()
	require.NoError(t, rogue.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":`)))
	rogue.wsMu.Unlock()
	require.Equal(t, "malformed signaling message", <-rogue.errors)
	require.Eventually(t, func() bool {
		_, open := <-rogue.events
		return !open
	}, 5*time.Second, 10*time.Millisecond, "the rogue session is closed")
	before := doctor.total('P')
	time.Sleep(300 * time.Millisecond)
	require.Greater(t, doctor.total('P'), before, "the others are untouched")
	doctor.noErrors(t)
}

func TestNoLeaksOverAttachDetachCycles(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call", doctor)
	ctx := t.Context()
	cycle := func() {
		require.NoError(t, n.sfu.Attach(ctx, "call", patient.id))
		patient.join(n, "call")
		require.Eventually(t, func() bool { return n.sfu.bindingOf(patient.id) == "call" }, 5*time.Second, time.Millisecond)
		require.NoError(t, n.sfu.Detach(ctx, "call", patient.id))
	}
	for i := 0; i < 10; i++ { // warm up: first transceivers, interceptors
		cycle()
	}
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	goroutines := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		cycle()
	}
	time.Sleep(time.Second) // let renegotiations and stopped senders settle
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines+10, "no goroutine per cycle is left behind")
	require.Less(t, after.HeapAlloc, before.HeapAlloc+8<<20, "heap stays flat over 100 cycles (%d → %d)", before.HeapAlloc, after.HeapAlloc)
	// And the session still works.
	require.NoError(t, n.sfu.Attach(ctx, "call", patient.id))
	patient.join(n, "call")
	base := doctor.total('P')
	require.Eventually(t, func() bool { return doctor.total('P') > base+10 }, 10*time.Second, 20*time.Millisecond)
	patient.noErrors(t)
	doctor.noErrors(t)
}
