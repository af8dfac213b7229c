package integration

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/workflows"
)

func guestOp(t *testing.T, e *testenv.Env, visitID, name string, req workflows.GuestRequest) error {
	return workflows.Guest(ctxT(t), e.Client, visitID, name, uuid.NewString(), req)
}

// guestStateIs reads guest id's state from the database.
func guestStateIs(t *testing.T, e *testenv.Env, id string, want clinic.GuestState) {
	t.Helper()
	g, err := e.DB.With(ctxT(t)).Guests.Get(id)
	require.NoError(t, err)
	require.Equal(t, want, g.State)
}

// A guest's whole path through the visit workflow: invited into the call,
// arrived (the API spends the link), let in, taken along on a transfer back
// to the lobby, let in again in the new room's call, removed; the visit
// ends. Its history is the recorded "guests" path.
func TestGuestsFollowTheVisit(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Guests")
	guest := uuid.NewString()
	invite := workflows.GuestRequest{ActorID: e.User(lee).ID, GuestID: guest, LinkHash: uuid.NewString()}
	require.Equal(t, clinic.Conflict, errType(guestOp(t, e, id, workflows.UpdateInviteGuest, invite)), "no call yet")

	call := admit(t, e, id, lee, "")
	require.NoError(t, guestOp(t, e, id, workflows.UpdateInviteGuest, invite))
	require.Equal(t, clinic.Forbidden, errType(guestOp(t, e, id, workflows.UpdateInviteGuest,
		workflows.GuestRequest{ActorID: e.User(patel).ID, GuestID: uuid.NewString(), LinkHash: uuid.NewString()})), "Dr. Patel is not in the call")
	guestStateIs(t, e, guest, clinic.GuestInvited)
	let := workflows.GuestRequest{ActorID: e.User(lee).ID, GuestID: guest}
	require.Equal(t, clinic.Conflict, errType(guestOp(t, e, id, workflows.UpdateAdmitGuest, let)), "not arrived yet")
	ok, err := e.DB.With(ctxT(t)).Guests.Arrived(guest, "Ana Interpreter", uuid.NewString(), time.Now().UTC())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, guestOp(t, e, id, workflows.UpdateAdmitGuest, let))
	guestStateIs(t, e, guest, clinic.GuestInCall)
	members, _ := e.Calls.Members(call.CallID)
	require.Contains(t, members, clinic.GuestParticipant(guest))

	_, err = workflows.Transfer(ctxT(t), e.Client, id, uuid.NewString(),
		workflows.TransferRequest{ActorID: e.User(lee).ID, TargetRoomID: e.Room("dr-patel").ID, KeepGuests: true})
	require.NoError(t, err)
	guestStateIs(t, e, guest, clinic.GuestWaiting)
	_, live := e.Calls.Members(call.CallID)
	require.False(t, live, "the 1:1 call ended, guest and all")

	again := admit(t, e, id, patel, "")
	require.NoError(t, guestOp(t, e, id, workflows.UpdateAdmitGuest, workflows.GuestRequest{ActorID: e.User(patel).ID, GuestID: guest}))
	members, _ = e.Calls.Members(again.CallID)
	require.Contains(t, members, clinic.GuestParticipant(guest))
	require.NoError(t, guestOp(t, e, id, workflows.UpdateRemoveGuest, workflows.GuestRequest{ActorID: e.User(patel).ID, GuestID: guest}))
	guestStateIs(t, e, guest, clinic.GuestGone)
	members, _ = e.Calls.Members(again.CallID)
	require.NotContains(t, members, clinic.GuestParticipant(guest))
	end(t, e, id, patel)
	record(t, e, id, "guests")
}
