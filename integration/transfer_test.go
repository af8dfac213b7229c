// Package integration runs the visit workflow end to end: a real Temporal
// server (the embedded one of `handoff dev`), real PostgreSQL, the real
// worker and activities.
package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/replay"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

const (
	lee      = "dr.lee@riverside.example"
	patel    = "dr.patel@riverside.example"
	frontDsk = "frontdesk@riverside.example"
	cho      = "dr.cho@hillside.example"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkIn checks a patient into the room with the given slug.
func checkIn(t *testing.T, e *testenv.Env, slug, name string) string {
	room := e.Room(slug)
	id := uuid.NewString()
	err := workflows.CheckIn(ctxT(t), e.Client, workflows.VisitInput{
		VisitID: id, ClinicID: room.ClinicID, RoomID: room.ID, PatientName: name,
		TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC(),
	}, workflows.AskVisit(e.Client, id))
	require.NoError(t, err)
	require.Equal(t, store.VisitWaiting, e.Visit(id).State)
	return id
}

func transfer(t *testing.T, e *testenv.Env, visitID, actor, slug string) (workflows.TransferResult, error) {
	return workflows.Transfer(ctxT(t), e.Client, visitID, uuid.NewString(),
		workflows.TransferRequest{ActorID: e.User(actor).ID, TargetRoomID: e.Room(slug).ID})
}

func admit(t *testing.T, e *testenv.Env, visitID, actor, callID string) activities.AdmitResult {
	res, err := workflows.Admit(ctxT(t), e.Client, visitID, uuid.NewString(), workflows.AdmitRequest{ActorID: e.User(actor).ID, CallID: callID})
	require.NoError(t, err)
	return res
}

func end(t *testing.T, e *testenv.Env, visitID, actor string) {
	_, err := workflows.End(ctxT(t), e.Client, visitID, uuid.NewString(), e.User(actor).ID)
	require.NoError(t, err)
	waitClosed(t, e, visitID)
}

func waitClosed(t *testing.T, e *testenv.Env, visitID string) {
	run := e.Client.GetWorkflow(ctxT(t), workflows.VisitWorkflowID(visitID), "")
	require.NoError(t, run.Get(ctxT(t), nil))
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// record keeps the visit's history in workflows/testdata for the replay
// test when HANDOFF_RECORD_HISTORIES is set.
func record(t *testing.T, e *testenv.Env, visitID, name string) {
	if os.Getenv("HANDOFF_RECORD_HISTORIES") == "" {
		return
	}
	h := history(t, e, visitID)
	out, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	dir := replay.HistoryDir("..")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), out, 0o644))
}

func history(t *testing.T, e *testenv.Env, visitID string) *historypb.History {
	h, err := replay.Fetch(ctxT(t), e.Client, workflows.VisitWorkflowID(visitID), "")
	require.NoError(t, err)
	return h
}

func TestTransferFromTheWaitingRoom(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Waiting")
	checkedIn := e.Visit(id).CheckedInAt

	res, err := workflows.Transfer(ctxT(t), e.Client, id, uuid.NewString(), workflows.TransferRequest{
		ActorID: e.User(lee).ID, TargetRoomID: e.Room("dr-patel").ID, Note: "needs a refill",
	})
	require.NoError(t, err)
	require.Equal(t, "Transferred to Dr. Arjun Patel", res.SenderMessage)
	require.Equal(t, "You have been transferred to Dr. Arjun Patel's room", res.Plan.PatientMessageDone())

	v := e.Visit(id)
	require.Equal(t, e.Room("dr-patel").ID, v.RoomID)
	require.Equal(t, store.VisitWaiting, v.State)
	require.True(t, checkedIn.Equal(v.CheckedInAt))
	require.Equal(t, "needs a refill", v.TransferNote.String())

	// The receiver admits when ready.
	call := admit(t, e, id, patel, "")
	require.Equal(t, store.CallOneToOne, call.Kind)
	require.Equal(t, store.VisitInCall, e.Visit(id).State)

	// Ops find the visit by its search attributes.
	query := fmt.Sprintf(`HandoffRoomID = '%s' AND HandoffTransfers = 1 AND HandoffVisitState = 'in_call'`, e.Room("dr-patel").ID)
	require.Eventually(t, func() bool {
		n, err := e.Client.CountWorkflow(ctxT(t), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		return err == nil && n.GetCount() == 1
	}, 10*time.Second, 200*time.Millisecond, "visible to `%s`", query)

	end(t, e, id, patel)
	require.Equal(t, store.VisitEnded, e.Visit(id).State)
	record(t, e, id, "waiting-room-transfer")
}

// A check-in is one workflow task that writes nothing to visibility: the
// search attributes ops filter on are set when the visit starts, and the
// task neither upserts them nor records a GetVersion marker, each of which
// was a visibility write of its own (BENCHMARKS.md).
func TestACheckInIsFoundWithoutAnUpsert(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Found")
	room := e.Room("dr-lee")
	query := fmt.Sprintf(`HandoffClinicID = '%s' AND HandoffRoomID = '%s' AND HandoffVisitState = 'waiting' AND HandoffTransfers = 0`,
		room.ClinicID, room.ID)
	require.Eventually(t, func() bool {
		n, err := e.Client.CountWorkflow(ctxT(t), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		return err == nil && n.GetCount() == 1
	}, 10*time.Second, 200*time.Millisecond, "visible to `%s`", query)
	tasks := 0
	events := history(t, e, id).GetEvents()
	// Taken eagerly: the first task started in the start's own write
	// (0.2 ms after the start event here), not after a trip through
	// matching (12 ms here without eager start).
	require.NotNil(t, events[2].GetWorkflowTaskStartedEventAttributes(), "event 3 starts the first workflow task")
	require.Less(t, events[2].GetEventTime().AsTime().Sub(events[0].GetEventTime().AsTime()), 5*time.Millisecond,
		"the first task started with the visit")
	for _, ev := range events {
		require.Nil(t, ev.GetUpsertWorkflowSearchAttributesEventAttributes(), "event %d upserts search attributes", ev.GetEventId())
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil {
			require.NotEqual(t, "Version", m.GetMarkerName(), "event %d is a GetVersion marker", ev.GetEventId())
		}
		if ev.GetWorkflowTaskCompletedEventAttributes() != nil {
			tasks++
		}
	}
	require.Equal(t, 1, tasks, "one workflow task")
}

// A check-in the database refuses after the API looked (the room went
// away) is reported to CheckIn's caller with the refusal, not waited on
// until the request's deadline; the visit ends and records nothing.
func TestARefusedCheckInIsReported(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id, begun := uuid.NewString(), time.Now()
	err := workflows.CheckIn(ctxT(t), e.Client, workflows.VisitInput{
		VisitID: id, ClinicID: e.Room("dr-lee").ClinicID, RoomID: uuid.NewString(), PatientName: "Pat Nowhere",
		TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC(),
	}, workflows.AskVisit(e.Client, id))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, string(clinic.NotFound), appErr.Type(), err.Error())
	require.Less(t, time.Since(begun), 10*time.Second)
	var n int64
	require.NoError(t, e.DB.Gorm().Model(&store.Visit{}).Where("id = ?", id).Count(&n).Error)
	require.Zero(t, n)
}

func TestTransferDuringAOneToOneCall(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Call")
	call := admit(t, e, id, lee, "")
	data := store.Sealed("exam notes")
	app := store.AppSession{ID: uuid.NewString(), CallID: call.CallID, App: "notes", Data: &data, OpenedByID: e.User(lee).ID, OpenedAt: time.Now().UTC()}
	require.NoError(t, e.DB.Gorm().Create(&app).Error)

	res, err := transfer(t, e, id, lee, "riverside-urgent")
	require.NoError(t, err)
	require.True(t, res.CallEnded, "the sender's 1:1 call ends")
	_, live := e.Calls.Members(call.CallID)
	require.False(t, live)
	var closed store.AppSession
	require.NoError(t, e.DB.Gorm().Take(&closed, "id = ?", app.ID).Error)
	require.Nil(t, closed.Data)
	require.Equal(t, e.Room("riverside-urgent").ID, e.Visit(id).RoomID)

	_, err = workflows.Leave(ctxT(t), e.Client, id, uuid.NewString())
	require.NoError(t, err)
	waitClosed(t, e, id)
	record(t, e, id, "one-to-one-transfer")
}

func TestTransferDuringAGroupCall(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	first := checkIn(t, e, "riverside-reception", "Pat First")
	second := checkIn(t, e, "riverside-reception", "Pat Second")
	call := admit(t, e, first, frontDsk, "")
	group := admit(t, e, second, frontDsk, call.CallID)
	require.Equal(t, store.CallGroup, group.Kind)

	res, err := transfer(t, e, first, frontDsk, "dr-lee")
	require.NoError(t, err)
	require.False(t, res.CallEnded, "the sender stays in the group call")
	members, live := e.Calls.Members(call.CallID)
	require.True(t, live)
	require.ElementsMatch(t, []string{clinic.ProviderParticipant(e.User(frontDsk).ID), clinic.PatientParticipant(second)}, members)
	require.Equal(t, store.VisitInCall, e.Visit(second).State)
	require.Equal(t, e.Room("dr-lee").ID, e.Visit(first).RoomID)

	end(t, e, first, lee)
	end(t, e, second, frontDsk)
	record(t, e, first, "group-transfer")
}

func TestRejectedTransfersChangeNothing(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	free := checkIn(t, e, "dr-cho", "Pat Free")
	_, err := transfer(t, e, free, cho, "dr-park")
	require.Equal(t, clinic.PlanRequired, errType(err))
	require.ErrorContains(t, err, "requires the Premium plan")

	id := checkIn(t, e, "dr-lee", "Pat Stays")
	_, err = transfer(t, e, id, lee, "dr-lee")
	require.Equal(t, clinic.SameRoom, errType(err))
	_, err = transfer(t, e, id, patel, "riverside-urgent")
	require.Equal(t, clinic.Forbidden, errType(err))
	_, err = transfer(t, e, id, lee, "dr-grant")
	require.Equal(t, clinic.NotFound, errType(err), "another clinic's room is unknown")
	v := e.Visit(id)
	require.Equal(t, e.Room("dr-lee").ID, v.RoomID)
	require.Equal(t, store.VisitWaiting, v.State)
	require.Zero(t, v.Transfers)
	st, err := workflows.Status(ctxT(t), e.Client, id)
	require.NoError(t, err)
	require.Equal(t, store.VisitWaiting, st.State)

	end(t, e, free, cho)
	end(t, e, id, lee)
	record(t, e, id, "rejected-transfer")
}

// hookedMedia runs a hook inside Detach: to fail a step, block it, or change
// the world at the worst moment.
type hookedMedia struct {
	activities.Media
	onDetach func(ctx context.Context) error
}

func (h hookedMedia) Detach(ctx context.Context, callID, participant string) error {
	if err := h.onDetach(ctx); err != nil {
		return err
	}
	return h.Media.Detach(ctx, callID, participant)
}

func TestTargetRoomDeletedMidTransferIsCompensated(t *testing.T) {
	e := testenv.Start(t)
	target := e.Room("riverside-urgent")
	e.StartWorker(hookedMedia{Media: e.Calls, onDetach: func(context.Context) error {
		return e.DB.Gorm().Model(&store.Room{}).Where("id = ?", target.ID).Update("deleted_at", time.Now().UTC()).Error
	}})
	id := checkIn(t, e, "dr-lee", "Pat Bounce")
	admit(t, e, id, lee, "")
	_, err := transfer(t, e, id, lee, "riverside-urgent")
	require.Equal(t, "TransferFailed", errType(err))
	require.ErrorContains(t, err, "back in the waiting room")

	v := e.Visit(id)
	require.Equal(t, store.VisitWaiting, v.State, "never in zero rooms")
	require.Equal(t, e.Room("dr-lee").ID, v.RoomID)
	var n int64
	e.DB.Gorm().Model(&store.Event{}).Where("visit_id = ? AND type = ?", id, "visit.transfer_failed").Count(&n)
	require.EqualValues(t, 2, n, "both sides are told")
	end(t, e, id, lee)
	record(t, e, id, "compensated-transfer")
}

func TestLeaveRacingATransferGetsAConflict(t *testing.T) {
	e := testenv.Start(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.StartWorker(hookedMedia{Media: e.Calls, onDetach: func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	id := checkIn(t, e, "dr-lee", "Pat Racer")
	admit(t, e, id, lee, "")
	done := make(chan error, 1)
	go func() { _, err := transfer(t, e, id, lee, "dr-patel"); done <- err }()
	<-entered
	_, err := workflows.Leave(ctxT(t), e.Client, id, uuid.NewString())
	require.Equal(t, clinic.Conflict, errType(err))
	require.ErrorContains(t, err, "being transferred")
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, e.Room("dr-patel").ID, e.Visit(id).RoomID)

	_, err = workflows.Leave(ctxT(t), e.Client, id, uuid.NewString())
	require.NoError(t, err)
	waitClosed(t, e, id)
	require.Equal(t, store.VisitEnded, e.Visit(id).State)
	record(t, e, id, "left-during-transfer")
}

// Presence signals from API processes that each count their own pages: a
// departure, the return after it, then the same departure arriving late. The
// visit keeps the patient present, and its history is kept for replay.
func TestLateDepartureSignalDoesNotOutrankTheReturn(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Returning")
	for _, s := range []workflows.PresenceSignal{{Connected: false, Seq: 1}, {Connected: true, Seq: 1}, {Connected: false, Seq: 1}} {
		require.NoError(t, e.Client.SignalWorkflow(ctxT(t), workflows.VisitWorkflowID(id), "", workflows.SignalPresence, s))
	}
	require.Eventually(t, func() bool {
		st, err := workflows.Status(ctxT(t), e.Client, id)
		return err == nil && st.PresenceSeq == 1 && st.PatientConnected
	}, 10*time.Second, 50*time.Millisecond, "the return after departure 1 stands")
	end(t, e, id, lee)
	record(t, e, id, "presence-late-departure")
}

func TestConcurrentTransfersOneWins(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "riverside-reception", "Pat Contested")
	targets := []struct{ actor, slug string }{{lee, "dr-lee"}, {frontDsk, "riverside-urgent"}, {lee, "dr-patel"}, {frontDsk, "dr-patel"}}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	// Each sender saw the patient in Reception, as the API tells the workflow:
	// a transfer that lands after the winner has moved the patient is refused,
	// however quickly the winner finished.
	from := e.Room("riverside-reception").ID
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = workflows.Transfer(ctxT(t), e.Client, id, uuid.NewString(),
				workflows.TransferRequest{ActorID: e.User(tg.actor).ID, TargetRoomID: e.Room(tg.slug).ID, FromRoomID: from})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.Equal(t, clinic.Conflict, errType(err), "the losers are told what happened: %v", err)
	}
	require.Equal(t, 1, wins)
	require.Equal(t, 1, e.Visit(id).Transfers)
	var started int64
	e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.started").Count(&started)
	require.EqualValues(t, 1, started)
}

func TestSameIdempotencyKeyIsOneTransfer(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	id := checkIn(t, e, "dr-lee", "Pat Repeat")
	key := uuid.NewString()
	req := workflows.TransferRequest{ActorID: e.User(lee).ID, TargetRoomID: e.Room("dr-patel").ID}
	first, err := workflows.Transfer(ctxT(t), e.Client, id, key, req)
	require.NoError(t, err)
	again, err := workflows.Transfer(ctxT(t), e.Client, id, key, req)
	require.NoError(t, err)
	require.Equal(t, first.SenderMessage, again.SenderMessage)
	require.Equal(t, 1, e.Visit(id).Transfers)
}

func TestWorkerStoppedMidTransferFinishesAfterRestart(t *testing.T) {
	e := testenv.Start(t)
	entered := make(chan struct{})
	var once sync.Once
	stop := e.StartWorker(hookedMedia{Media: e.Calls, onDetach: func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		<-ctx.Done() // the worker goes away in the middle of this step
		return ctx.Err()
	}})
	id := checkIn(t, e, "dr-lee", "Pat Restart")
	call := admit(t, e, id, lee, "")
	done := make(chan error, 1)
	go func() { _, err := transfer(t, e, id, lee, "dr-patel"); done <- err }()
	<-entered
	stop()
	require.Equal(t, store.VisitTransferring, e.Visit(id).State, "mid-transfer: still in exactly one room")
	require.Equal(t, e.Room("dr-lee").ID, e.Visit(id).RoomID)

	e.StartWorker(nil)
	require.NoError(t, <-done, "the transfer completes on the new worker")
	v := e.Visit(id)
	require.Equal(t, store.VisitWaiting, v.State)
	require.Equal(t, e.Room("dr-patel").ID, v.RoomID)
	require.Equal(t, 1, v.Transfers)
	_, live := e.Calls.Members(call.CallID)
	require.False(t, live)
	var completed int64
	e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.completed").Count(&completed)
	require.EqualValues(t, 1, completed)
}

func TestHistoriesHoldNoPlaintextPatientData(t *testing.T) {
	e := testenv.Start(t)
	target := e.Room("riverside-urgent")
	var deleteTarget bool
	e.StartWorker(hookedMedia{Media: e.Calls, onDetach: func(context.Context) error {
		if deleteTarget {
			return e.DB.Gorm().Model(&store.Room{}).Where("id = ?", target.ID).Update("deleted_at", time.Now().UTC()).Error
		}
		return nil
	}})
	const name = "Zebediah Quillfeather"
	id := checkIn(t, e, "dr-lee", name)
	admit(t, e, id, lee, "")
	_, err := transfer(t, e, id, lee, "dr-patel")
	require.NoError(t, err)
	admit(t, e, id, patel, "")
	deleteTarget = true
	_, err = transfer(t, e, id, patel, "riverside-urgent")
	require.Error(t, err, "a failed transfer puts failure text into the history too")
	end(t, e, id, patel)

	raw, err := proto.Marshal(history(t, e, id))
	require.NoError(t, err)
	for _, needle := range []string{name, "Zebediah", "Quillfeather"} {
		require.NotContains(t, string(raw), needle, "history holds the patient's name in plaintext")
	}
	desc, err := e.Client.DescribeWorkflowExecution(ctxT(t), workflows.VisitWorkflowID(id), "")
	require.NoError(t, err)
	descRaw, err := proto.Marshal(desc)
	require.NoError(t, err)
	require.NotContains(t, string(descRaw), "Zebediah")
	require.False(t, strings.Contains(workflows.VisitWorkflowID(id), "Zebediah"))

	// With the codec, the same history decodes: the data is there, sealed.
	var in workflows.VisitInput
	h := history(t, e, id)
	attrs := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
	require.NoError(t, e.Codec.DataConverter().FromPayloads(attrs.GetInput(), &in))
	require.Equal(t, name, in.PatientName)
}
