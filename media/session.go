package media

import (
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
}

// session is one participant's signaling session and PeerConnection.
type session struct {
	id  string
	sfu *SFU
	ws  *websocket.Conn
	pc  *webrtc.PeerConnection

	// Guarded by sfu.mu.
	joined    string
	published []*publishedTrack
	senders   map[*publishedTrack]*webrtc.RTPSender

	sendMu sync.Mutex

	negMu       sync.Mutex
	negotiating bool // an offer awaits its answer
	again       bool // something changed meanwhile: offer again after it
	done        chan struct{}
}

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
	sess, err := s.open(claims.Subject, ws)
	if err != nil {
		_ = ws.WriteJSON(message{Type: "error", Message: err.Error()})
		_ = ws.Close()
		return
	}
	sess.run()
}

var errDuplicate = errors.New("this participant already has a media session")

func (s *SFU) open(id string, ws *websocket.Conn) (*session, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	sess := &session{id: id, sfu: s, ws: ws, pc: pc, senders: map[*publishedTrack]*webrtc.RTPSender{}, done: make(chan struct{})}
	s.mu.Lock()
	if _, dup := s.sessions[id]; dup {
		s.mu.Unlock()
		_ = pc.Close()
		return nil, errDuplicate // refuse a second session rather than let it hijack the first
	}
	s.sessions[id] = sess
	s.Metrics.Participants.Store(int64(len(s.sessions)))
	s.mu.Unlock()

	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			sess.close()
			return nil, err
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			sess.send(message{Type: "candidate", Candidate: &init})
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { sess.publish(remote) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			sess.close()
		}
	})
	go sess.negotiate()
	return sess, nil
}

func (sess *session) publish(remote *webrtc.TrackRemote) {
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, remote.Kind().String()+"-"+sess.id, sess.id)
	if err != nil {
		return
	}
	t := &publishedTrack{owner: sess, remote: remote, local: local}
	s := sess.sfu
	s.mu.Lock()
	sess.published = append(sess.published, t)
	s.reconcileLocked()
	s.mu.Unlock()
	t.forward(&s.Metrics)
}

// run reads signaling messages until the socket closes or a message is
// malformed; either ends only this session.
func (sess *session) run() {
	defer sess.close()
	sess.ws.SetReadLimit(maxMessage)
	for {
		_, raw, err := sess.ws.ReadMessage()
		if err != nil {
			return
		}
		m, err := parseMessage(raw)
		if err != nil {
			sess.send(message{Type: "error", Message: "malformed signaling message"})
			return
		}
		if err := sess.handle(m); err != nil {
			sess.send(message{Type: "error", Message: err.Error()})
			if errors.Is(err, errProtocol) {
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
	case m.Type == "leave":
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
		if err := sess.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return errors.Join(errProtocol, err)
		}
		sess.answered()
		return nil
	case "candidate":
		if m.Candidate == nil {
			return errProtocol
		}
		if err := sess.pc.AddICECandidate(*m.Candidate); err != nil {
			return errors.Join(errProtocol, err)
		}
		return nil
	case "join":
		return sess.join(m.Token)
	case "leave":
		s := sess.sfu
		s.mu.Lock()
		sess.joined = ""
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
	if !ok || !cl.members[sess.id] {
		return errNotAdmitted
	}
	sess.joined = claims.Call
	s.reconcileLocked()
	sess.send(message{Type: "joined", Call: claims.Call})
	return nil
}

// negotiate sends a server offer, or marks that another is due once the
// outstanding one is answered: the server always offers, so there is no glare.
func (sess *session) negotiate() {
	sess.negMu.Lock()
	defer sess.negMu.Unlock()
	if sess.negotiating {
		sess.again = true
		return
	}
	if sess.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	offer, err := sess.pc.CreateOffer(nil)
	if err != nil {
		return
	}
	if err := sess.pc.SetLocalDescription(offer); err != nil {
		return
	}
	sess.negotiating = true
	sess.send(message{Type: "offer", SDP: offer.SDP})
}

func (sess *session) answered() {
	sess.negMu.Lock()
	sess.negotiating = false
	again := sess.again
	sess.again = false
	sess.negMu.Unlock()
	if again {
		sess.negotiate()
	}
}

func (sess *session) send(m message) {
	sess.sendMu.Lock()
	defer sess.sendMu.Unlock()
	_ = sess.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = sess.ws.WriteJSON(m)
}

// close ends the session: its tracks stop reaching others, its
// PeerConnection and socket close. Safe to call more than once.
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
	s.reconcileLocked()
	s.mu.Unlock()
	_ = sess.pc.Close()
	_ = sess.ws.Close()
}
