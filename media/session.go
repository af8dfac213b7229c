package media

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
)

// message is one signaling message, in either direction.
type message struct {
	Type        string                   `json:"type"`
	SDP         string                   `json:"sdp,omitempty"`
	Candidate   *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Token       string                   `json:"token,omitempty"`
	Call        string                   `json:"call,omitempty"`
	Participant string                   `json:"participant,omitempty"`
	Message     string                   `json:"message,omitempty"`
	// Muted and CameraOff: a participant's own microphone and camera
	// switches ("state"), relayed to the others in its call ("peer_state").
	Muted     *bool `json:"muted,omitempty"`
	CameraOff *bool `json:"cameraOff,omitempty"`
	// Poor: the participant's page measures a poor connection (optional
	// in "state"); the others are told, so they know why it stutters.
	Poor *bool `json:"poor,omitempty"`
	// Estimate and Layer ("link", to a subscriber): the node's estimate of
	// its downlink in bit/s and the camera layer it sends it (the lowest,
	// when there are several cameras; "paused" when video is paused).
	Estimate int    `json:"estimate,omitempty"`
	Layer    string `json:"layer,omitempty"`
}

// session is one participant's signaling session and PeerConnection.
type session struct {
	id  string
	sfu *SFU
	pc  *webrtc.PeerConnection

	// The socket can change under a live session: a page whose network
	// changed reconnects with ?resume=<resumeID> and keeps its
	// PeerConnection and its place in the call (an ICE restart follows).
	resumeID    string
	connMu      sync.Mutex
	conn        *sockConn // nil while detached
	detachTimer *time.Timer

	// Guarded by sfu.mu.
	muted, cameraOff bool // the participant's own switches, told to the others
	poor             bool // its page measures a poor connection, told to the others
	videoPaused      bool // this subscriber gets audio only (its link cannot carry video)
	pauseForced      bool // … because SetVideoPaused said so
	camerasPaused    bool // its cameras only, to leave a shared screen room
	// link is what the subscriber's page was last told of its downlink.
	link message
	// downlink is this subscriber's estimate and probing state.
	downlink *downlink
	// videoRecv are the receivers of the camera's layers, full first;
	// screenRecv the receiver of a shared screen (its own source).
	videoRecv   [maxLayers]*webrtc.RTPReceiver
	screenRecv  *webrtc.RTPReceiver
	joined      string
	pendingJoin string // a join that came before its attach, held for JoinGrace
	published   []*publishedTrack
	senders     map[*publishedTrack]*downSender

	// trackMu keeps the PeerConnection's senders from changing while an
	// answer is applied: pion starts the answer's senders outside its own
	// lock, and one removed meanwhile (a detach) fails SetRemoteDescription,
	// which would close this session as a protocol violation. Taken under
	// sfu.mu; nothing holding it takes sfu.mu.
	trackMu sync.Mutex

	// Local candidates wait for the offer they belong to (a candidate the
	// client gets first is one it cannot add); remote ones for the answer.
	candMu        sync.Mutex
	holdLocal     bool
	heldLocal     []webrtc.ICECandidateInit
	heldRemote    []webrtc.ICECandidateInit
	restartTimer  *time.Timer
	lastRestartAt time.Time

	negMu       sync.Mutex
	negotiating bool // an offer awaits its answer
	again       bool // something changed meanwhile: offer again after it
	restart     bool // … and that offer restarts ICE
	done        chan struct{}
}

// sockConn is one WebSocket of a session, with its one writer's queue:
// nothing blocks on a slow client's socket, least of all under sfu.mu.
type sockConn struct {
	ws   *websocket.Conn
	out  chan message
	gone chan struct{} // closed when the session lets go of this socket
}

func newSockConn(ws *websocket.Conn) *sockConn {
	return &sockConn{ws: ws, out: make(chan message, outQueue), gone: make(chan struct{})}
}

// resumeGrace is how long a session whose socket dropped waits for its
// page to come back (a new network) before it ends.
const resumeGrace = 10 * time.Second

// outQueue bounds a session's unsent messages; a client that lets more pile
// up is not reading its socket, and its session is closed.
const outQueue = 256

// The pages are served by the API, on another origin than the media node,
// so every origin may open the socket: the session token in the URL, not the
// origin, is what authenticates it.
var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: func(*http.Request) bool { return true }}

// maxMessage bounds a signaling message; SDP offers are a few KB.
const maxMessage = 64 << 10

// ServeSignaling upgrades to a WebSocket for the participant named by the
// session token (?token=…), and runs its session until it closes.
func (s *SFU) ServeSignaling(w http.ResponseWriter, r *http.Request) {
	claims, err := s.tokens.Verify(r.URL.Query().Get("token"))
	if err != nil || claims.Call != "" {
		http.Error(w, "a session token is required", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if resume := r.URL.Query().Get("resume"); resume != "" {
		s.mu.Lock()
		sess := s.sessions[claims.Subject]
		s.mu.Unlock()
		if sess == nil || subtle.ConstantTimeCompare([]byte(sess.resumeID), []byte(resume)) != 1 {
			_ = ws.WriteJSON(message{Type: "error", Message: errNoResume.Error()})
			_ = ws.Close()
			return
		}
		sess.run(sess.attachSocket(ws))
		return
	}
	sess, err := s.open(claims.Subject, ws)
	if err != nil {
		_ = ws.WriteJSON(message{Type: "error", Message: err.Error()})
		_ = ws.Close()
		return
	}
	sess.run(sess.currentConn())
}

var errNoResume = errors.New("that media session is over; open a new one")

func (sess *session) currentConn() *sockConn {
	sess.connMu.Lock()
	defer sess.connMu.Unlock()
	return sess.conn
}

// attachSocket puts a resumed page's new socket under the session, drops
// the old one if it lingers, and restarts ICE: the page's network changed.
func (sess *session) attachSocket(ws *websocket.Conn) *sockConn {
	c := newSockConn(ws)
	sess.connMu.Lock()
	if sess.detachTimer != nil {
		sess.detachTimer.Stop()
		sess.detachTimer = nil
	}
	old := sess.conn
	sess.conn = c
	sess.connMu.Unlock()
	if old != nil {
		close(old.gone)
	}
	go sess.writeLoop(c)
	sess.sfu.Metrics.Resumed.Add(1)
	sess.send(message{Type: "welcome", Token: sess.resumeID})
	// An offer sent into the dead socket was never answered: send it again
	// (pion cannot roll a local offer back), and restart ICE after it.
	sess.sfu.Metrics.ICERestarts.Add(1)
	sess.negMu.Lock()
	if pending := sess.pc.PendingLocalDescription(); pending != nil && sess.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		sess.negotiating, sess.again, sess.restart = true, true, true
		sess.negMu.Unlock()
		sess.send(message{Type: "offer", SDP: pending.SDP})
		return c
	}
	sess.negotiating = false
	sess.negMu.Unlock()
	go sess.negotiate(true)
	return c
}

// detach lets go of a socket that dropped without a goodbye and gives the
// page resumeGrace to come back before the session ends.
func (sess *session) detach(c *sockConn) {
	sess.connMu.Lock()
	defer sess.connMu.Unlock()
	if sess.conn != c {
		return // already replaced by a resumed socket
	}
	sess.conn = nil
	close(c.gone)
	sess.detachTimer = time.AfterFunc(resumeGrace, func() {
		sess.connMu.Lock()
		resumed := sess.conn != nil
		sess.connMu.Unlock()
		if !resumed {
			sess.close()
		}
	})
}

// replacedMessage is what an older page is told when the same participant
// connects again (a reload, a second tab): the newest session wins.
const replacedMessage = "this visit is now open in another window or tab"

func (s *SFU) open(id string, ws *websocket.Conn) (*session, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	sess := &session{id: id, sfu: s, pc: pc, senders: map[*publishedTrack]*downSender{},
		conn: newSockConn(ws), resumeID: randomID(), done: make(chan struct{})}
	go sess.writeLoop(sess.conn)
	sess.send(message{Type: "welcome", Token: sess.resumeID})
	s.mu.Lock()
	old := s.sessions[id]
	s.sessions[id] = sess
	s.Metrics.Participants.Store(int64(len(s.sessions)))
	s.mu.Unlock()
	if old != nil {
		s.Metrics.Replaced.Add(1)
		old.send(message{Type: "replaced", Message: replacedMessage})
		old.close()
	}

	sess.downlink = newDownlink(sess.id, s.estimators.take(pc.ID()), s.pacers.take(pc.ID()))
	// One audio m-line, then one per camera layer: full, half, quarter,
	// then one for a shared screen. A page that sends one video sends it on
	// the first (the full layer).
	kinds := []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}
	for range maxLayers + 1 {
		kinds = append(kinds, webrtc.RTPCodecTypeVideo)
	}
	for i, kind := range kinds {
		tr, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			sess.close()
			return nil, err
		}
		switch {
		case i > maxLayers:
			sess.screenRecv = tr.Receiver()
		case i > 0:
			sess.videoRecv[i-1] = tr.Receiver()
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			sess.localCandidate(c.ToJSON())
		}
	})
	pc.OnTrack(sess.publish)
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		switch st {
		case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
			sess.restartSoon()
		case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
			sess.cancelRestart()
		}
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateClosed {
			sess.close()
		}
	})
	go sess.negotiate(false)
	return sess, nil
}

// restartSoon restarts ICE if the path stays down for a moment: the
// participant's network changed (a new address, Wi-Fi to cellular) while its
// signaling socket lives on. The session, and its place in a call, stay.
func (sess *session) restartSoon() {
	sess.candMu.Lock()
	defer sess.candMu.Unlock()
	if sess.restartTimer != nil {
		return
	}
	wait := time.Second
	if since := time.Since(sess.lastRestartAt); since < 5*time.Second {
		wait = 5*time.Second - since // at most one restart every 5 s
	}
	sess.restartTimer = time.AfterFunc(wait, func() {
		sess.candMu.Lock()
		sess.restartTimer = nil
		sess.lastRestartAt = time.Now()
		sess.candMu.Unlock()
		switch sess.pc.ICEConnectionState() {
		case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
			sess.sfu.Metrics.ICERestarts.Add(1)
			sess.negotiate(true)
		}
	})
}

func (sess *session) cancelRestart() {
	sess.candMu.Lock()
	defer sess.candMu.Unlock()
	if sess.restartTimer != nil {
		sess.restartTimer.Stop()
		sess.restartTimer = nil
	}
}

func (sess *session) localCandidate(c webrtc.ICECandidateInit) {
	sess.candMu.Lock()
	defer sess.candMu.Unlock()
	if sess.holdLocal {
		sess.heldLocal = append(sess.heldLocal, c)
		return
	}
	sess.send(message{Type: "candidate", Candidate: &c})
}

// publish takes in one of the participant's tracks: its microphone, or a
// layer of its camera (which layer, the m-line it came on says).
func (sess *session) publish(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	codec, ok := mediaCodec(remote)
	if !ok {
		return // the track ended before it carried media
	}
	index, screen := 0, receiver == sess.screenRecv
	if screen {
		index = layerFull // one layer, sent full size
	} else if remote.Kind() == webrtc.RTPCodecTypeVideo {
		for i, r := range sess.videoRecv {
			if r == receiver {
				index = layerFull - i
			}
		}
	}
	s := sess.sfu
	s.mu.Lock()
	var t *publishedTrack
	for _, p := range sess.published {
		if p.kind == remote.Kind() && p.screen == screen {
			t = p
		}
	}
	if t == nil {
		t = &publishedTrack{owner: sess, kind: remote.Kind(), screen: screen, codec: codec}
		t.live.Store(s.bound(sess.id) != "")
		sess.published = append(sess.published, t)
	}
	l := &layer{source: t, index: index, remote: remote, keyframe: make(chan struct{}, 1)}
	t.layers[index].Store(l)
	s.reconcileLocked()
	s.mu.Unlock()
	l.forward(&s.Metrics)
}

// run reads one socket's signaling messages until it closes or a message
// is malformed. A malformed message or a goodbye ends the session; a socket
// that just dropped leaves it waiting for its page to resume.
func (sess *session) run(c *sockConn) {
	c.ws.SetReadLimit(maxMessage)
	for {
		// A client answers every ping: one that is silent for three is gone
		// (a dead peer is noticed in seconds, not after ICE's timeout).
		_ = c.ws.SetReadDeadline(time.Now().Add(3 * sess.sfu.keepalive))
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				sess.close()
			} else {
				sess.detach(c)
			}
			return
		}
		m, err := parseMessage(raw)
		if err != nil {
			sess.send(message{Type: "error", Message: "malformed signaling message"})
			sess.close()
			return
		}
		if err := sess.handle(m); err != nil {
			sess.send(message{Type: "error", Message: err.Error()})
			if errors.Is(err, errProtocol) {
				sess.close()
				return
			}
		}
	}
}

// parseMessage reads one client message and refuses anything a client does
// not send: unknown types, missing fields, oversized values.
func parseMessage(raw []byte) (message, error) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, errProtocol
	}
	switch {
	case m.Type == "answer" && m.SDP != "" && len(m.SDP) < maxMessage:
	case m.Type == "candidate" && m.Candidate != nil && len(m.Candidate.Candidate) < 1024:
	case m.Type == "join" && m.Token != "" && len(m.Token) < 2048:
	case m.Type == "leave", m.Type == "pong", m.Type == "restart":
	case m.Type == "state" && m.Muted != nil && m.CameraOff != nil:
	default:
		return message{}, errProtocol
	}
	return m, nil
}

var (
	errProtocol    = errors.New("signaling protocol violation")
	errNotAdmitted = errors.New("not admitted to that call")
)

func (sess *session) handle(m message) error {
	switch m.Type {
	case "answer":
		sess.trackMu.Lock()
		err := sess.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
		sess.trackMu.Unlock()
		if err != nil {
			return errors.Join(errProtocol, err)
		}
		sess.applyHeldRemote()
		sess.answered()
		return nil
	case "candidate":
		if m.Candidate == nil {
			return errProtocol
		}
		sess.remoteCandidate(*m.Candidate)
		return nil
	case "pong":
		return nil
	case "restart":
		// The page saw its network change: offer again with new ICE
		// credentials on the same session.
		sess.sfu.Metrics.ICERestarts.Add(1)
		go sess.negotiate(true)
		return nil
	case "join":
		return sess.join(m.Token)
	case "state":
		s := sess.sfu
		s.mu.Lock()
		sess.muted, sess.cameraOff, sess.poor = *m.Muted, *m.CameraOff, m.Poor != nil && *m.Poor
		sess.tellCallLocked()
		s.mu.Unlock()
		return nil
	case "leave":
		s := sess.sfu
		s.mu.Lock()
		sess.joined, sess.pendingJoin = "", ""
		s.reconcileLocked()
		s.mu.Unlock()
		return nil
	default:
		return errProtocol
	}
}

// join binds the session into the call its token names, if the token is
// valid, for this participant, and the control API has admitted it: an old
// token after a transfer is refused.
func (sess *session) join(token string) error {
	s := sess.sfu
	claims, err := s.tokens.Verify(token)
	if err != nil {
		return err
	}
	if claims.Subject != sess.id || claims.Call == "" {
		return errNotAdmitted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.calls[claims.Call]
	if ok && cl.members[sess.id] {
		sess.bindLocked(claims.Call)
		return nil
	}
	// Not attached (yet): the page may have heard of its admit before the
	// control API's attach reached this node. Hold the join briefly.
	sess.pendingJoin = claims.Call
	callID := claims.Call
	time.AfterFunc(s.joinGrace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sess.pendingJoin == callID {
			sess.pendingJoin = ""
			sess.send(message{Type: "error", Message: errNotAdmitted.Error()})
		}
	})
	return nil
}

// bindLocked puts the session's media into callID and offers again, so the
// page (which sends nothing while it waits) adds its camera and microphone.
// Callers hold sess.sfu.mu.
func (sess *session) bindLocked(callID string) {
	sess.joined, sess.pendingJoin = callID, ""
	sess.sfu.reconcileLocked()
	sess.send(message{Type: "joined", Call: callID})
	// The newcomer learns who in the call is muted or has the camera off,
	// and they learn its switches.
	for _, other := range sess.sfu.sessions {
		if other != sess && other.joined == callID && (other.muted || other.cameraOff) {
			sess.send(other.stateMessage())
		}
	}
	sess.tellCallLocked()
	go sess.negotiate(false)
}

// stateMessage tells the others of the participant's switches.
func (sess *session) stateMessage() message {
	muted, off, poor := sess.muted, sess.cameraOff, sess.poor
	return message{Type: "peer_state", Participant: sess.id, Muted: &muted, CameraOff: &off, Poor: &poor}
}

// tellCallLocked sends the participant's switches to the others in its call.
func (sess *session) tellCallLocked() {
	if sess.joined == "" {
		return
	}
	m := sess.stateMessage()
	for _, other := range sess.sfu.sessions {
		if other != sess && other.joined == sess.joined {
			other.send(m)
		}
	}
}

// remoteCandidate adds a client's candidate, or keeps it until the answer
// it belongs to is set. A candidate that cannot be added (one of an ICE
// generation already restarted) is dropped: it is no protocol violation.
func (sess *session) remoteCandidate(c webrtc.ICECandidateInit) {
	sess.candMu.Lock()
	if sess.pc.RemoteDescription() == nil {
		if len(sess.heldRemote) < 64 {
			sess.heldRemote = append(sess.heldRemote, c)
		}
		sess.candMu.Unlock()
		return
	}
	sess.candMu.Unlock()
	_ = sess.pc.AddICECandidate(c)
}

func (sess *session) applyHeldRemote() {
	sess.candMu.Lock()
	held := sess.heldRemote
	sess.heldRemote = nil
	sess.candMu.Unlock()
	for _, c := range held {
		_ = sess.pc.AddICECandidate(c)
	}
}

// negotiate sends a server offer, or marks that another is due once the
// outstanding one is answered: the server always offers, so there is no
// glare. restart asks for new ICE credentials (a changed network).
func (sess *session) negotiate(restart bool) {
	sess.negMu.Lock()
	defer sess.negMu.Unlock()
	if sess.negotiating {
		sess.again = true
		sess.restart = sess.restart || restart
		return
	}
	if sess.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	// Candidates gathered from here on follow the offer, never precede it.
	sess.candMu.Lock()
	sess.holdLocal = true
	sess.candMu.Unlock()
	defer sess.releaseLocal()
	offer, err := sess.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		return
	}
	if err := sess.pc.SetLocalDescription(offer); err != nil {
		return
	}
	sess.negotiating = true
	sess.send(message{Type: "offer", SDP: offer.SDP})
}

func (sess *session) releaseLocal() {
	sess.candMu.Lock()
	defer sess.candMu.Unlock()
	sess.holdLocal = false
	for _, c := range sess.heldLocal {
		sess.send(message{Type: "candidate", Candidate: &c})
	}
	sess.heldLocal = nil
}

func (sess *session) answered() {
	sess.negMu.Lock()
	sess.negotiating = false
	again, restart := sess.again, sess.restart
	sess.again, sess.restart = false, false
	sess.negMu.Unlock()
	if again {
		sess.negotiate(restart)
	}
}

// send queues m for the session's writer; it never blocks. A client whose
// queue is full has stopped reading and is disconnected.
func (sess *session) send(m message) {
	select {
	case <-sess.done:
		return
	default:
	}
	c := sess.currentConn()
	if c == nil {
		return // detached: the resumed socket starts with a fresh offer
	}
	select {
	case c.out <- m:
	default:
		sess.sfu.Metrics.SlowClosed.Add(1)
		go sess.close()
	}
}

// writeLoop is the socket's only writer: queued messages and pings. When
// the session closes it sends what is still queued (the reason it closed),
// then closes the socket, which ends the reader.
func (sess *session) writeLoop(c *sockConn) {
	ping := time.NewTicker(sess.sfu.keepalive)
	defer ping.Stop()
	defer c.ws.Close()
	write := func(m message, within time.Duration) bool {
		_ = c.ws.SetWriteDeadline(time.Now().Add(within))
		return c.ws.WriteJSON(m) == nil
	}
	for {
		select {
		case <-c.gone:
			return
		case m := <-c.out:
			if !write(m, 5*time.Second) {
				go sess.detach(c)
				return
			}
		case <-ping.C:
			if !write(message{Type: "ping"}, 5*time.Second) {
				go sess.detach(c)
				return
			}
		case <-sess.done:
			for {
				select {
				case m := <-c.out:
					if !write(m, time.Second) {
						return
					}
				default:
					_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
					return
				}
			}
		}
	}
}

// close ends the session: its tracks stop reaching others, its
// PeerConnection closes, and its writer closes the socket after sending
// what was queued. Safe to call more than once.
func (sess *session) close() {
	s := sess.sfu
	s.mu.Lock()
	select {
	case <-sess.done:
		s.mu.Unlock()
		return
	default:
		close(sess.done)
	}
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	// Its down-tracks leave the publishers' lists: nothing more is
	// forwarded to a closed session.
	sess.trackMu.Lock()
	for t, out := range sess.senders {
		t.removeDown(out.down)
		delete(sess.senders, t)
	}
	sess.trackMu.Unlock()
	s.reconcileLocked()
	s.mu.Unlock()
	sess.cancelRestart()
	sess.connMu.Lock()
	if sess.detachTimer != nil {
		sess.detachTimer.Stop()
	}
	sess.connMu.Unlock()
	_ = sess.pc.Close()
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
