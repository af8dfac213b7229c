package media

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// SFU forwards RTP between the members of a call. A participant's signaling
// session (one PeerConnection) outlives any call; call membership is a
// separate binding that the control API changes (attach on admit, detach on
// transfer). A participant's media flows only while it is both attached by
// the control API and joined with a valid token for that call.
type SFU struct {
	tokens    Tokens
	api       *webrtc.API
	listeners *iceListeners
	keepalive time.Duration
	joinGrace time.Duration

	mu       sync.Mutex
	calls    map[string]*call
	sessions map[string]*session

	// estimators and pacers carry each new PeerConnection's downlink
	// estimator and pacer to its session; done stops the allocator.
	estimators *estimators
	pacers     *pacers
	done       chan struct{}
	closeOnce  sync.Once

	Metrics Metrics
}

type call struct {
	members map[string]bool
}

// Options are a media node's settings beyond its token secret.
type Options struct {
	Network Network
	// Keepalive is how often the node pings each signaling session; a
	// session that sends nothing for 3 intervals is dead (default 5 s).
	Keepalive time.Duration
	// JoinGrace is how long a join that arrives before the control API's
	// attach is held (default 5 s): the page may hear of its admit first.
	JoinGrace time.Duration
}

// NewSFU makes a media node whose tokens are signed with secret, with the
// defaults of `handoff dev`.
func NewSFU(secret string) (*SFU, error) { return NewSFUWith(secret, Options{}) }

// NewSFUWith makes a media node with opts; Close releases its ICE ports.
func NewSFUWith(secret string, opts Options) (*SFU, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	est, pace := &estimators{}, &pacers{}
	if err := registerInterceptors(me, ir, est, pace); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	// AEAD-AES-GCM first: cheaper per packet than AES-CM + HMAC.
	se.SetSRTPProtectionProfiles(webrtcSRTPProfiles()...)
	listeners, err := opts.Network.apply(&se, logging.NewDefaultLoggerFactory())
	if err != nil {
		return nil, err
	}
	s := &SFU{
		tokens:     NewTokens(secret),
		api:        webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)),
		listeners:  listeners,
		keepalive:  orDefault(opts.Keepalive, 5*time.Second),
		joinGrace:  orDefault(opts.JoinGrace, 5*time.Second),
		calls:      map[string]*call{},
		sessions:   map[string]*session{},
		estimators: est,
		pacers:     pace,
		done:       make(chan struct{}),
	}
	s.Metrics.quality = s.downQuality
	go s.allocate(s.done)
	return s, nil
}

// Close releases the node's ICE ports (after Shutdown) and stops its
// allocator.
func (s *SFU) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return s.listeners.Close()
}

// Tokens is the SFU's token signer (the API mints with the same secret).
func (s *SFU) Tokens() Tokens { return s.tokens }

// bound reports whether participant p's media belongs to call c. Callers
// hold s.mu.
func (s *SFU) bound(p string) string {
	sess := s.sessions[p]
	if sess == nil || sess.joined == "" {
		return ""
	}
	if cl := s.calls[sess.joined]; cl != nil && cl.members[p] {
		return sess.joined
	}
	return ""
}

// Shutdown tells every participant the media node is going away, then
// closes their sessions: clients reconnect to the node that replaces it,
// and a re-admit recreates their call there.
func (s *SFU) Shutdown() {
	s.closeAll(message{Type: "media_restarting", Message: "the media server is restarting; reconnect"})
}

// MoveAway is the end of a drain: every participant is told this node is
// leaving and its session closed; pages ask the API where their call lives
// now (another node, once this one has left the registry) and reconnect
// there. It returns how many sessions it closed.
func (s *SFU) MoveAway() int {
	return s.closeAll(message{Type: "media_moving", Message: "this media node is leaving; reconnect where the API says"})
}

func (s *SFU) closeAll(m message) int {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.send(m)
		sess.close()
	}
	return len(sessions)
}

// OpenCalls counts the calls that still have members: what a draining node
// waits for.
func (s *SFU) OpenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if len(c.members) > 0 {
			n++
		}
	}
	return n
}

// bindingOf is the call a participant's media belongs to ("" for none).
func (s *SFU) bindingOf(participant string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound(participant)
}

// CreateCall opens a call; creating an existing call changes nothing.
func (s *SFU) CreateCall(_ context.Context, callID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.calls[callID]; !ok {
		s.calls[callID] = &call{members: map[string]bool{}}
		s.Metrics.ActiveCalls.Add(1)
	}
	return nil
}

// Attach admits a participant into a call: once its session joins with a
// token for the call, media flows.
func (s *SFU) Attach(_ context.Context, callID, participant string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.calls[callID]
	if !ok {
		return ErrNoSuchCall
	}
	cl.members[participant] = true
	if sess := s.sessions[participant]; sess != nil && sess.pendingJoin == callID {
		sess.bindLocked(callID) // its join came first, and was held
	}
	s.reconcileLocked()
	return nil
}

// Detach removes a participant from a call. Forwarding stops in both
// directions before this returns; renegotiation follows.
func (s *SFU) Detach(_ context.Context, callID, participant string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.calls[callID]
	if !ok || !cl.members[participant] {
		return nil
	}
	delete(cl.members, participant)
	if sess := s.sessions[participant]; sess != nil && sess.pendingJoin == callID {
		sess.pendingJoin = ""
	}
	if sess := s.sessions[participant]; sess != nil && sess.joined == callID {
		sess.joined = ""
		sess.send(message{Type: "left", Call: callID})
	}
	s.reconcileLocked()
	for p := range cl.members {
		if sess := s.sessions[p]; sess != nil {
			sess.send(message{Type: "member_left", Call: callID, Participant: participant})
		}
	}
	return nil
}

// EndCall detaches everyone and closes the call.
func (s *SFU) EndCall(_ context.Context, callID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.calls[callID]
	if !ok {
		return nil
	}
	delete(s.calls, callID)
	s.Metrics.ActiveCalls.Add(-1)
	for p := range cl.members {
		if sess := s.sessions[p]; sess != nil && sess.joined == callID {
			sess.joined = ""
			sess.send(message{Type: "call_ended", Call: callID})
		}
	}
	s.reconcileLocked()
	return nil
}

// SetVideoPaused holds back (on) or lets through again the video that
// subscriber receives, keeping its audio, whatever its estimate says (an
// operator's or a test's choice; the allocator pauses and resumes by the
// estimate on its own). Video comes back at the next keyframe, which the
// publishers are asked for. The subscriber's page is told either way.
func (s *SFU) SetVideoPaused(subscriber string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[subscriber]
	if sess == nil {
		return
	}
	sess.pauseForced = on
	s.setVideoPausedLocked(sess, on)
}

// setVideoPausedLocked pauses or resumes a subscriber's video and tells
// its page. Callers hold s.mu.
func (s *SFU) setVideoPausedLocked(sess *session, on bool) {
	if sess.videoPaused == on || (!on && sess.pauseForced) {
		return
	}
	sess.videoPaused, sess.camerasPaused = on, false
	for _, out := range sess.senders {
		out.down.setPaused(on)
	}
	typ := "video_resumed"
	if on {
		typ = "video_paused"
		s.Metrics.VideoPauses.Add(1)
	}
	sess.send(message{Type: typ})
}

// downQuality classes every stream sent to a subscriber by its last
// receiver report (Metrics' handoff_media_down_streams).
func (s *SFU) downQuality() DownQuality {
	s.mu.Lock()
	defer s.mu.Unlock()
	var q DownQuality
	for _, sess := range s.sessions {
		if sess.downlink != nil && sess.downlink.est != nil && len(sess.senders) > 0 {
			q.Estimates = append(q.Estimates, sess.downlink.available())
		}
		for t, out := range sess.senders {
			st := &out.down.stats
			if t.kind == webrtc.RTPCodecTypeVideo {
				if cur, _ := out.down.layers(); out.down.paused.Load() {
					q.VideoPaused++
				} else if cur >= 0 && cur < maxLayers && out.down.sending() {
					q.VideoByLayer[cur]++
				}
			}
			q.MaxRTT = max(q.MaxRTT, float64(st.rtt.Load())/1e6)
			if !st.reported.Load() {
				q.Unreported++
				continue
			}
			jitter := float64(st.jitter.Load()) / float64(max(out.down.codec.ClockRate, 1))
			q.MaxJitter = max(q.MaxJitter, jitter)
			switch qualityOf(float64(st.fractionLost.Load())*100/256, jitter) {
			case "good":
				q.Good++
			case "fair":
				q.Fair++
			default:
				q.Poor++
			}
		}
	}
	return q
}

// Members lists a call's attached participants.
func (s *SFU) Members(callID string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, ok := s.calls[callID]
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(cl.members))
	for p := range cl.members {
		out = append(out, p)
	}
	return out, true
}

// reconcileLocked makes every session forward exactly the tracks of the
// others bound to its call, and gates every publisher on its own binding.
// It unbinds first: RemoveTrack stops a sender at once, before the
// renegotiation that follows. Callers hold s.mu.
func (s *SFU) reconcileLocked() {
	for id, sess := range s.sessions {
		callID := s.bound(id)
		for _, t := range sess.published {
			t.live.Store(callID != "")
		}
		want := map[*publishedTrack]bool{}
		if callID != "" {
			for otherID, other := range s.sessions {
				if otherID != id && s.bound(otherID) == callID {
					for _, t := range other.published {
						want[t] = !t.idle.Load()
					}
				}
			}
		}
		changed := false
		sess.trackMu.Lock()
		for t, out := range sess.senders {
			if !want[t] {
				t.removeDown(out.down)
				_ = sess.pc.RemoveTrack(out.sender)
				delete(sess.senders, t)
				changed = true
			}
		}
		for t, ok := range want {
			if _, has := sess.senders[t]; has || !ok {
				continue
			}
			down := newDownTrack(t, id)
			if sess.videoPaused {
				down.paused.Store(down.kind == webrtc.RTPCodecTypeVideo)
			}
			sender, err := sess.pc.AddTrack(down)
			if err != nil {
				continue
			}
			sess.senders[t] = &downSender{sender: sender, down: down}
			t.addDown(down)
			// A new subscriber's video starts at a keyframe: the down-track
			// asks for one when it starts forwarding (downTrack.write), not
			// now, when it would arrive before the binding and be held.
			go s.readSenderRTCP(sender, down)
			changed = true
		}
		sess.trackMu.Unlock()
		if changed {
			go sess.negotiate(false)
		}
	}
	s.Metrics.Participants.Store(int64(len(s.sessions)))
}

// reconcile is reconcileLocked for callers that do not hold s.mu.
func (s *SFU) reconcile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reconcileLocked()
}

// downSender is a subscriber's sender of one published track.
type downSender struct {
	sender *webrtc.RTPSender
	down   *downTrack
}

// readSenderRTCP drains a subscriber's RTCP (interceptors need it): its
// keyframe requests go up to the publisher (throttled there), its receiver
// reports to the down-track's figures.
func (s *SFU) readSenderRTCP(sender *webrtc.RTPSender, d *downTrack) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				s.Metrics.KeyframeRequests.Add(1)
				current, target := d.layers()
				d.source.requestKeyframe(max(current, target))
			default:
				d.report(p)
			}
		}
	}
}

// nackHistory is how many sent packets per video stream the SFU keeps to
// answer NACKs: about 1.7 s at 1.5 Mbps (150 packets/s), 1 s at 2.5 Mbps —
// as long as libwebrtc keeps its own send history (max(1 s, 3·RTT)); a
// retransmission older than that arrives after the receiver gave up on it.
// pion's default, 1,024, holds 1.5 MB per subscriber stream, filled over
// its first 7 seconds.
const nackHistory = 256

// registerInterceptors is webrtc.RegisterDefaultInterceptors without what
// Handoff does not use, and with a bandwidth estimator per subscriber. It
// leaves out the stats interceptor (the SFU never calls GetStats, and it
// reads the clock, clones the header and takes a lock for every packet, in
// and out). It keeps NACK (retransmissions, and the PLI feedback that gets
// keyframes), RTCP sender and receiver reports (lip sync, loss reports to
// publishers) and TWCC feedback (publishers' bandwidth estimation), with a
// shorter NACK history; and it adds TWCC sequence numbers to what the node
// sends, read back by pion's GCC (one estimator per PeerConnection, handed
// to the session through est).
//
// The estimator paces nothing itself (gcc.NoOpPacer): pion's leaky-bucket
// pacer queues every packet in one FIFO without bound, audio behind video,
// and copies each packet into the queue. Handoff's own pacer (pacer.go)
// comes last, so it is the first a packet meets on its way out: video
// waits there, audio passes, and a packet gets its transport-wide
// sequence number and its send time in the estimator when it really
// leaves.
func registerInterceptors(me *webrtc.MediaEngine, ir *interceptor.Registry, est *estimators, pace *pacers) error {
	// The order is pion's: the estimator first, then the transport-wide
	// sequence numbers, then the NACK responder. On the way out a packet
	// passes them backwards: the responder keeps it before it has a
	// transport-wide number, so a retransmission gets a new one and the
	// estimator counts it as sent; on the way in the estimator reads RTCP
	// first and hands the responder its target, which bounds the
	// retransmissions (a subscriber's NACKs on a congested link would
	// otherwise flood it with resends of what it lost).
	bwe, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(initialEstimate), gcc.SendSideBWEMinBitrate(minEstimate),
			gcc.SendSideBWEMaxBitrate(maxEstimate), gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	})
	if err != nil {
		return err
	}
	bwe.OnNewPeerConnection(est.add)
	ir.Add(bwe)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
		return err
	}
	if err := webrtc.ConfigureNackWithOptions(me, ir, nil, nack.ResponderSize(nackHistory)); err != nil {
		return err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return err
	}
	if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
		return err
	}
	ir.Add(pace)
	return nil
}

func webrtcSRTPProfiles() []dtls.SRTPProtectionProfile {
	return []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}
}

// ErrNoSuchCall is returned when attaching to a call that is not open.
var ErrNoSuchCall = errors.New("no such live call")
