package api_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/store"
)

// Random transfers, admits, leaves and ends on many visits from several
// clients at once: every answer is a success or a clear 4xx, and afterwards
// every visit is in one place, its events in order, nothing duplicated.
func TestRandomInterleavings(t *testing.T) {
	ops, visits, clients := 200, 20, 6
	if os.Getenv("HANDOFF_CHAOS") == "long" {
		ops, visits = 1000, 50
	}
	s := newService(t)
	tokens := map[string]string{lee: s.login(lee), patel: s.login(patel), frontDsk: s.login(frontDsk)}
	providers := []string{lee, patel, frontDsk}
	rooms := []string{"dr-lee", "dr-patel", "riverside-reception", "riverside-urgent"}
	ids := make([]string, visits)
	patients := make([]string, visits)
	for i := range ids {
		ids[i], patients[i] = s.checkIn(rooms[i%len(rooms)], fmt.Sprintf("Pat Interleave %d", i))
	}

	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < ops/clients; k++ {
				v := rand.IntN(visits)
				who := tokens[providers[rand.IntN(len(providers))]]
				var r response
				switch rand.IntN(10) {
				case 0, 1, 2, 3, 4:
					r = s.do("POST", "/visits/"+ids[v]+"/transfer", who, map[string]string{"targetRoomId": s.roomID(rooms[rand.IntN(len(rooms))])})
				case 5, 6, 7:
					r = s.do("POST", "/visits/"+ids[v]+"/admit", who, nil)
				case 8:
					r = s.do("POST", "/visits/"+ids[v]+"/leave", patients[v], nil)
				default:
					r = s.do("POST", "/visits/"+ids[v]+"/end", who, nil)
				}
				mu.Lock()
				statuses[r.Status]++
				mu.Unlock()
				if r.Status >= 500 || (r.Status >= 400 && r.str("error", "message") == "") {
					t.Errorf("unclear answer %d: %s", r.Status, r.Raw)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d operations on %d visits: %v", ops/clients*clients, visits, statuses)

	for _, id := range ids {
		var v store.Visit
		require.NoError(t, s.db.Gorm().Take(&v, "id = ?", id).Error)
		require.Contains(t, []store.VisitState{store.VisitWaiting, store.VisitInCall, store.VisitEnded}, v.State, "settled, never stuck in transferring")
		if v.State == store.VisitInCall {
			require.NotNil(t, v.CallID)
		}
		var started, completed, failed int64
		s.db.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.started").Count(&started)
		s.db.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.completed").Count(&completed)
		s.db.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.failed").Count(&failed)
		require.Equal(t, started, completed+failed, "every transfer finished once")
		require.EqualValues(t, v.Transfers, completed)
		// Events: ids strictly increasing, one "transferred" for the patient per transfer.
		var evs []store.Event
		require.NoError(t, s.db.Gorm().Where("visit_id = ?", id).Order("id").Find(&evs).Error)
		var patientTransferred int64
		for i, e := range evs {
			if i > 0 {
				require.Greater(t, e.ID, evs[i-1].ID)
			}
			if e.Type == "visit.transferred" && e.Audience == store.AudiencePatient {
				patientTransferred++
			}
		}
		require.Equal(t, completed, patientTransferred, "no duplicate and no missing confirmation")
	}
	require.Positive(t, statuses[http.StatusOK])
}
