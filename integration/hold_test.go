package integration

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

func hold(t *testing.T, e *testenv.Env, visitID, actor string) (workflows.HoldResult, error) {
	return workflows.Hold(ctxT(t), e.Client, visitID, uuid.NewString(), workflows.HoldRequest{ActorID: e.User(actor).ID})
}

// A provider puts an admitted patient back into the same waiting room: the
// patient's media leaves the call both ways (a 1:1 call ends), the visit
// waits in its room, both sides are told, it is audited, and the patient
// can be admitted again later. A hold of a waiting patient, or by a
// provider without access to the room, changes nothing.
func TestHoldPutsThePatientBackAndAdmitsAgain(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Held")
	_, err := hold(t, e, id, lee)
	require.Equal(t, clinic.Conflict, errType(err), "not in a call: %v", err)

	call := admit(t, e, id, lee, "")
	_, err = hold(t, e, id, patel)
	require.Equal(t, clinic.Forbidden, errType(err), "Dr. Patel does not act for Dr. Lee's room: %v", err)
	require.Equal(t, store.VisitInCall, e.Visit(id).State)

	res, err := hold(t, e, id, lee)
	require.NoError(t, err)
	require.True(t, res.CallEnded, "a 1:1 call ends")
	v := e.Visit(id)
	require.Equal(t, store.VisitWaiting, v.State)
	require.Nil(t, v.CallID)
	require.Equal(t, e.Room("dr-lee").ID, v.RoomID, "the same waiting room")
	_, live := e.Calls.Members(call.CallID)
	require.False(t, live, "no media of the old call is left")
	var told []string
	require.NoError(t, e.DB.Gorm().Model(&store.Event{}).Where("visit_id = ? AND type = ?", id, clinic.EventHeld).Pluck("audience", &told).Error)
	require.ElementsMatch(t, []string{"patient", "room"}, told)
	var audited int64
	require.NoError(t, e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, clinic.AuditHeld).Count(&audited).Error)
	require.EqualValues(t, 1, audited)

	var ended []store.Sealed
	require.NoError(t, e.DB.Gorm().Model(&store.Event{}).Where("type = ? AND room_id = ?", clinic.EventCallEnded, e.Room("dr-lee").ID).Pluck("payload", &ended).Error)
	require.Len(t, ended, 1)
	require.Contains(t, ended[0].String(), `"reason":"hold"`, "the call ended for a hold, not a transfer")

	again := admit(t, e, id, lee, "")
	require.NotEqual(t, call.CallID, again.CallID)
	require.Equal(t, store.VisitInCall, e.Visit(id).State)
	end(t, e, id, lee)
	record(t, e, id, "hold-and-admit-again")
}

// A hold and a transfer of the same admitted patient at once: exactly one
// wins, and the patient waits in exactly one room.
func TestHoldRacesATransfer(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	for range 3 {
		id := checkIn(t, e, "dr-lee", "Pat Raced")
		admit(t, e, id, lee, "")
		var holdErr, transferErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, holdErr = hold(t, e, id, lee) }()
		go func() { defer wg.Done(); _, transferErr = transfer(t, e, id, lee, "dr-patel") }()
		wg.Wait()
		require.True(t, (holdErr == nil) != (transferErr == nil), "exactly one wins: hold %v, transfer %v", holdErr, transferErr)
		v := e.Visit(id)
		require.Equal(t, store.VisitWaiting, v.State)
		require.Nil(t, v.CallID)
		if holdErr == nil {
			require.Equal(t, clinic.Conflict, errType(transferErr))
			require.Equal(t, e.Room("dr-lee").ID, v.RoomID)
		} else {
			require.Equal(t, clinic.Conflict, errType(holdErr))
			require.Equal(t, e.Room("dr-patel").ID, v.RoomID)
		}
	}
}
