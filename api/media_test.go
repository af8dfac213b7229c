package api_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
)

// dialMedia opens a media session with the tokens the API hands out.
func (s *service) dialMedia(t *testing.T, token string, tag byte, callID string) *mediatest.Peer {
	path := "/media/session"
	if callID != "" {
		path += "?callId=" + callID
	}
	r := s.do("GET", path, token, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	p := mediatest.Dial(t, r.str("url"), r.str("sessionToken"), r.str("participant"), tag)
	if j := r.str("joinToken"); j != "" {
		p.Join(j)
	}
	return p
}

func (s *service) joinMedia(t *testing.T, p *mediatest.Peer, token, callID string) {
	r := s.do("GET", "/media/session?callId="+callID, token, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	p.Join(r.str("joinToken"))
}

func TestAdmitAndTransferMoveTheMedia(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	mediaSrv := httptest.NewServer(http.HandlerFunc(e.Calls.ServeSignaling))
	t.Cleanup(mediaSrv.Close)
	s := startAPI(t, e, func(d *api.Deps) { d.MediaURL = "ws" + strings.TrimPrefix(mediaSrv.URL, "http") })
	leeTok, patelTok := s.login(lee), s.login(patel)
	visit, patientTok := s.checkIn("dr-lee", "Pat Media")

	// The patient connects from the waiting room: connected, nothing flows.
	patient := s.dialMedia(t, patientTok, 'P', "")
	leeMedia := s.dialMedia(t, leeTok, 'L', "")
	patelMedia := s.dialMedia(t, patelTok, 'T', "")

	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	callID := ad.str("call", "id")
	leeMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, callID)
	leeMedia.ReceivesFrom(t, patient)
	patient.ReceivesFrom(t, leeMedia)

	// Transfer during the 1:1 call: the call ends for Dr. Lee, the patient's
	// media stops reaching her, and nothing of the old call reaches the patient.
	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	time.Sleep(150 * time.Millisecond)
	heardByLee, heardByPatient := leeMedia.Total('P'), patient.Total('L')
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, heardByLee, leeMedia.Total('P'))
	require.Equal(t, heardByPatient, patient.Total('L'))
	// An old join token for the old call is refused.
	r := s.do("GET", "/media/session?callId="+callID, patientTok, nil)
	require.Equal(t, http.StatusForbidden, r.Status, "the API will not mint a token for a call the patient left")

	// Dr. Patel admits: the patient's same session joins his call, no reload.
	ad = s.do("POST", "/visits/"+visit+"/admit", patelTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	newCall := ad.str("call", "id")
	patelMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, newCall)
	patelMedia.ReceivesFrom(t, patient)
	patient.ReceivesFrom(t, patelMedia)
	require.Eventually(t, func() bool { return len(patelMedia.KeyframesFrom('P')) > 0 }, 5*time.Second, 10*time.Millisecond,
		"Dr. Patel gets a keyframe from the patient")
	for _, p := range []*mediatest.Peer{patient, leeMedia, patelMedia} {
		p.NoErrors(t)
	}
}

// mediaNode is a media node on a fixed address that the test can restart:
// the worker reaches it through its control API, the peers through /ws.
type mediaNode struct {
	t    *testing.T
	addr string
	srv  *media.Server
	http *http.Server
}

const mediaControlToken = "test-control-token"

func startMediaNode(t *testing.T, addr string) *mediaNode {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	require.Eventually(t, func() bool { // the old node's port may take a moment to free
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	srv, err := media.NewServer(testenv.MediaSecret, mediaControlToken)
	require.NoError(t, err)
	n := &mediaNode{t: t, addr: l.Addr().String(), srv: srv, http: &http.Server{Handler: srv.Handler()}}
	go func() { _ = n.http.Serve(l) }()
	t.Cleanup(n.stop)
	return n
}

// stop is what SIGTERM does to `handoff media`: tell everyone, then go.
func (n *mediaNode) stop() {
	n.srv.SFU.Shutdown()
	_ = n.http.Close()
}

func (s *service) rejoin(t *testing.T, token, callID string, tag byte) (*mediatest.Peer, response) {
	var body any
	if callID != "" {
		body = map[string]string{"callId": callID}
	}
	r := s.do("POST", "/media/rejoin", token, body)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	p := mediatest.Dial(t, r.str("url"), r.str("sessionToken"), r.str("participant"), tag)
	if j := r.str("joinToken"); j != "" {
		p.Join(j)
	}
	return p, r
}

// After the media node restarts mid-call, the patient and the provider get
// back into the same call through /media/rejoin — no re-admit, no reload —
// and nobody is put back into a call the database says they left.
func TestMediaRestartMidCallEveryoneRejoins(t *testing.T) {
	e := testenv.Start(t)
	node := startMediaNode(t, "")
	e.StartWorker(media.NewControlClient("http://"+node.addr, mediaControlToken))
	s := startAPI(t, e, func(d *api.Deps) { d.MediaURL = "ws://" + node.addr + "/ws" })
	leeTok, patelTok := s.login(lee), s.login(patel)
	visit, patientTok := s.checkIn("dr-lee", "Pat Restart")
	_, otherTok := s.checkIn("dr-patel", "Pat Elsewhere")

	patient := s.dialMedia(t, patientTok, 'P', "")
	leeMedia := s.dialMedia(t, leeTok, 'L', "")
	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	callID := ad.str("call", "id")
	leeMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, callID)
	leeMedia.ReceivesFrom(t, patient)

	node.stop()
	for _, p := range []*mediatest.Peer{patient, leeMedia} {
		told := false
		for m := range p.Events {
			told = told || m.Type == "media_restarting"
		}
		require.True(t, told, "%s was told the media server is restarting", p.ID)
	}
	node = startMediaNode(t, node.addr) // the replacement knows no call

	// Patient first, then the provider: either order must work.
	patient2, r := s.rejoin(t, patientTok, "", 'p')
	require.Equal(t, callID, r.str("callId"), "the patient goes back into the same call")
	lee2, _ := s.rejoin(t, leeTok, callID, 'l')
	lee2.ReceivesFrom(t, patient2)
	patient2.ReceivesFrom(t, lee2)
	members, ok := node.srv.SFU.Members(callID)
	require.True(t, ok)
	require.ElementsMatch(t, []string{"visit:" + visit, "user:" + e.User(lee).ID}, members)

	var rejoined int64
	s.db.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", visit, "call.rejoined").Count(&rejoined)
	require.EqualValues(t, 2, rejoined, "each rejoin leaves an audit row")

	// Who may not rejoin: a provider without access to the room, a call of
	// another visit, a provider naming a call no patient is in, no token.
	r = s.do("POST", "/media/rejoin", patelTok, map[string]string{"callId": callID})
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
	r = s.do("POST", "/media/rejoin", otherTok, map[string]string{"callId": callID})
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
	r = s.do("POST", "/media/rejoin", leeTok, map[string]string{"callId": "not-a-call"})
	require.Equal(t, http.StatusNotFound, r.Status, r.Raw)
	r = s.do("POST", "/media/rejoin", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Raw)
	r = s.do("POST", "/media/rejoin", leeTok, map[string]any{"callId": 7})
	require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
	members, _ = node.srv.SFU.Members(callID)
	require.Len(t, members, 2, "refused rejoins change nothing")

	// Transferred away, the patient's rejoin gives a session and no call:
	// the old call is not restored.
	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	patient2.Close()
	require.Eventually(t, func() bool {
		r = s.do("POST", "/media/rejoin", patientTok, nil)
		return r.Status == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond, r.Raw)
	require.Empty(t, r.str("callId"))
	require.Empty(t, r.str("joinToken"))
	r = s.do("POST", "/media/rejoin", leeTok, map[string]string{"callId": callID})
	require.NotEqual(t, http.StatusOK, r.Status, "no patient is in the old call any more: %s", r.Raw)
	for _, p := range []*mediatest.Peer{patient2, lee2} {
		p.NoErrors(t)
	}
}

// Every media answer a page gets (its session, a rejoin, the provider's
// admit) carries the ICE servers with a TURN credential minted for that
// participant alone.
func TestMediaAnswersCarryICEServersWithPerParticipantTURNCredentials(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	servers := &media.ICEServers{STUN: []string{"stun:turn.example.test:3478"},
		TURN: []string{"turn:turn.example.test:3478?transport=udp", "turns:turn.example.test:443?transport=tcp"}, TURNSecret: "api-turn-secret", TTL: time.Hour}
	s := startAPI(t, e, func(d *api.Deps) { d.ICEServers = servers })
	leeTok := s.login(lee)
	visit, patientTok := s.checkIn("dr-lee", "Ice Servers")

	turnOf := func(body map[string]any) (urls []any, user, cred string) {
		t.Helper()
		list, ok := body["iceServers"].([]any)
		require.True(t, ok, "iceServers in %v", body)
		require.Len(t, list, 2, "STUN, then TURN")
		require.Equal(t, []any{"stun:turn.example.test:3478"}, list[0].(map[string]any)["urls"])
		tu := list[1].(map[string]any)
		return tu["urls"].([]any), tu["username"].(string), tu["credential"].(string)
	}
	check := func(body map[string]any, participant string) {
		t.Helper()
		urls, user, cred := turnOf(body)
		require.Len(t, urls, 2)
		expiry, who, ok := strings.Cut(user, ":")
		require.True(t, ok, user)
		require.Equal(t, participant, who)
		exp, err := strconv.ParseInt(expiry, 10, 64)
		require.NoError(t, err)
		left := time.Until(time.Unix(exp, 0))
		require.InDelta(t, time.Hour.Seconds(), left.Seconds(), 60, "valid for the configured TTL")
		// The password is what coturn's use-auth-secret computes.
		mac := hmac.New(sha1.New, []byte("api-turn-secret"))
		mac.Write([]byte(user))
		require.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), cred)
	}

	sess := s.do("GET", "/media/session", patientTok, nil)
	require.Equal(t, http.StatusOK, sess.Status, sess.Raw)
	check(sess.Body, "visit:"+visit)
	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	provider := ad.Body["media"].(map[string]any)
	check(provider, provider["participant"].(string))
	rj := s.do("POST", "/media/rejoin", patientTok, nil)
	require.Equal(t, http.StatusOK, rj.Status, rj.Raw)
	check(rj.Body, "visit:"+visit)
	_, leeUser, _ := turnOf(provider)
	require.NotContains(t, leeUser, visit, "the provider's credential is its own")
	require.True(t, strings.HasPrefix(provider["participant"].(string), "user:"))
}

// Only a call's providers rejoin it or get its join token; another provider
// of the room joins it in the open: its patients are told, and it is
// audited. After that they are in it like the others.
func TestOnlyTheCallsProvidersRejoinOthersJoinVisibly(t *testing.T) {
	s := newService(t)
	leeTok, deskTok := s.login(lee), s.login(frontDsk)
	visit, patientTok := s.checkIn("riverside-reception", "Pat Private")
	patient := s.stream(patientTok, "")
	call := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil).str("call", "id")
	require.NotEmpty(t, call)

	r := s.do("POST", "/media/rejoin", deskTok, map[string]string{"callId": call})
	require.Equal(t, http.StatusForbidden, r.Status, "a room member who is not in the call cannot slip in: %s", r.Raw)
	r = s.do("GET", "/media/session?callId="+call, deskTok, nil)
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
	require.Equal(t, http.StatusOK, s.do("POST", "/media/rejoin", leeTok, map[string]string{"callId": call}).Status, "the admitting provider rejoins")

	j := s.do("POST", "/calls/"+call+"/join", deskTok, nil)
	require.Equal(t, http.StatusOK, j.Status, j.Raw)
	require.NotEmpty(t, j.str("joinToken"))
	require.Equal(t, "Sam Ortiz joined the call", patient.next(t, "call.joined").Data["message"], "the patient is told")
	require.Equal(t, http.StatusOK, s.do("POST", "/media/rejoin", deskTok, map[string]string{"callId": call}).Status, "now in it, they rejoin like the others")

	audit := s.do("GET", "/audit?action=call.joined", s.login(admin), nil)
	rows := audit.Body["audit"].([]any)
	require.Len(t, rows, 1, audit.Raw)
	require.Equal(t, s.env.User(frontDsk).ID, rows[0].(map[string]any)["actorId"])

	// Someone who does not act for the room cannot join at all.
	r = s.do("POST", "/calls/"+call+"/join", s.login(patel), nil)
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
}
