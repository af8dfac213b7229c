package api_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/medianodes"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/worker"
)

// registered is a media node in the registry: the test heartbeats its row
// (with the node's real participant count) until it kills it, which stops
// the beats without removing the row, as a crashed node would.
type registered struct {
	*mediaNode
	id    string
	alive atomic.Bool
	// busy is load the test adds to the node's own, to steer placement.
	busy atomic.Int64
}

func (r *registered) url() string { return "ws://" + r.addr + "/ws" }

func register(t *testing.T, e *testenv.Env, id string) *registered {
	r := &registered{mediaNode: startMediaNode(t, ""), id: id}
	r.alive.Store(true)
	if id != "node-a" {
		r.busy.Store(50) // everything starts on node A
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	beat := func() error {
		return e.DB.With(ctx).MediaNodes.Heartbeat(store.MediaNode{ID: id, PublicURL: r.url(), ControlURL: "http://" + r.addr,
			Capacity: 100, Participants: int(r.srv.SFU.Metrics.Participants.Load() + r.busy.Load()), StartedAt: time.Now().UTC(), HeartbeatAt: time.Now().UTC()})
	}
	require.NoError(t, beat())
	go func() {
		for ctx.Err() == nil && r.alive.Load() {
			_ = beat()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return r
}

// kill stops the node and its heartbeat; its row stays, going stale.
func (r *registered) kill() {
	r.alive.Store(false)
	r.stop()
}

// twoNodes is the API and a worker placing calls on two registered nodes,
// the second one busy at first; a node is taken out of placement one
// second after its last beat.
func twoNodes(t *testing.T) (*service, *registered, *registered) {
	e := testenv.Start(t)
	a, b := register(t, e, "node-a"), register(t, e, "node-b")
	reg := &medianodes.Registry{Placement: medianodes.Placement{StaleAfter: time.Second}, ControlToken: mediaControlToken,
		NewControl: func(url, token string) activities.Media { return media.NewControlClient(url, token) }}
	e.StartWorkerWith(worker.Deps{Nodes: reg})
	s := startAPI(t, e, func(d *api.Deps) { d.MediaNodes, d.MediaOrigins = reg, reg.Origins(e.DB) })
	return s, a, b
}

func (s *service) callNode(callID string) string {
	var call store.Call
	require.NoError(s.t, s.db.Gorm().Take(&call, "id = ?", callID).Error)
	return call.MediaNode
}

// callOnA has Dr. Lee admit the visit into a 1:1 call, placed on node A,
// and both join it.
func (s *service) callOnA(t *testing.T, visit, leeTok, patientTok string, patient, leeMedia *mediatest.Peer) string {
	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	callID := ad.str("call", "id")
	require.Equal(t, "node-a", s.callNode(callID))
	leeMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, callID)
	patient.ReceivesFrom(t, leeMedia)
	leeMedia.ReceivesFrom(t, patient)
	return callID
}

// A transfer whose receiving call lives on another node: the patient's
// page opens a session on that node beside its old one (no reload), the
// old call's media stops reaching the patient at the detach, and the
// receiving provider gets the patient's media starting with a keyframe.
func TestATransferAcrossNodes(t *testing.T) {
	s, a, b := twoNodes(t)
	leeTok, patelTok := s.login(lee), s.login(patel)
	visit, patientTok := s.checkIn("dr-lee", "Pat Across")

	// Node B busy: A takes the waiting patient, the provider and the call.
	patient := s.dialMedia(t, patientTok, 'P', "")
	leeMedia := s.dialMedia(t, leeTok, 'L', "")
	require.Equal(t, a.url(), s.do("GET", "/media/session", patientTok, nil).str("url"))
	s.callOnA(t, visit, leeTok, patientTok, patient, leeMedia)

	// Now A is the busier one: Dr. Patel's session goes to B.
	a.busy.Store(80)
	b.busy.Store(0)
	require.Eventually(t, func() bool {
		return s.do("GET", "/media/session", patelTok, nil).str("url") == b.url()
	}, 5*time.Second, 50*time.Millisecond)
	patelMedia := s.dialMedia(t, patelTok, 'T', "")

	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	time.Sleep(150 * time.Millisecond)
	heard := patient.Total('L')
	ad := s.do("POST", "/visits/"+visit+"/admit", patelTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	newCall := ad.str("call", "id")
	require.Equal(t, "node-b", s.callNode(newCall), "the clinic's only call ended with the transfer: the new one goes on the least loaded node")
	require.Equal(t, b.url(), ad.Body["media"].(map[string]any)["url"])
	patelMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))

	// The patient's page: the receiving call's session is on another node,
	// so it opens one there and closes the old one once media flows.
	r := s.do("GET", "/media/session?callId="+newCall, patientTok, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.Equal(t, b.url(), r.str("url"))
	moved := s.dialMedia(t, patientTok, 'Q', newCall)
	patelMedia.ReceivesFrom(t, moved)
	moved.ReceivesFrom(t, patelMedia)
	require.Eventually(t, func() bool { return len(patelMedia.KeyframesFrom('Q')) > 0 }, 5*time.Second, 10*time.Millisecond)
	key, seen := patelMedia.FirstVideoWasKeyframe('Q')
	require.True(t, seen && key, "the first video Dr. Patel's decoder gets from the patient is a keyframe")
	patient.Close()

	require.Equal(t, heard, patient.Total('L'), "nothing of the old call reached the patient after the detach")
	require.Zero(t, moved.Total('L'))
	require.Zero(t, patient.Total('T'), "Dr. Patel's call is not on the old node")
	for _, p := range []*mediatest.Peer{moved, leeMedia, patelMedia} {
		p.NoErrors(t)
	}
}

// A node dies mid-call: after its heartbeat goes stale, the call's
// participants are offered the other node, and their rejoin puts them back
// into the same call there.
func TestADeadNodesCallMovesToAnotherNode(t *testing.T) {
	s, a, b := twoNodes(t)
	leeTok := s.login(lee)
	visit, patientTok := s.checkIn("dr-lee", "Pat Survivor")
	patient := s.dialMedia(t, patientTok, 'P', "")
	leeMedia := s.dialMedia(t, leeTok, 'L', "")
	callID := s.callOnA(t, visit, leeTok, patientTok, patient, leeMedia)

	a.kill()
	// Within the stale window the call is still A's; after it, B's.
	r := s.do("GET", "/media/session?callId="+callID, patientTok, nil)
	require.Equal(t, a.url(), r.str("url"), "a node is not given up on before its heartbeat is stale")
	require.Eventually(t, func() bool {
		return s.do("GET", "/media/session?callId="+callID, patientTok, nil).str("url") == b.url()
	}, 5*time.Second, 100*time.Millisecond, "the call's participants are offered the other node")
	require.Equal(t, "node-b", s.callNode(callID))

	patient2, r := s.rejoin(t, patientTok, "", 'p')
	require.Equal(t, callID, r.str("callId"))
	require.Equal(t, b.url(), r.str("url"))
	lee2, r := s.rejoin(t, leeTok, callID, 'l')
	require.Equal(t, b.url(), r.str("url"))
	lee2.ReceivesFrom(t, patient2)
	patient2.ReceivesFrom(t, lee2)
	members, ok := b.srv.SFU.Members(callID)
	require.True(t, ok)
	require.ElementsMatch(t, []string{"visit:" + visit, "user:" + s.env.User(lee).ID}, members)
	require.Equal(t, store.VisitInCall, s.env.Visit(visit).State, "the visit never left its call")
}
