package workflows_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

var a *activities.Activities

const (
	visitID  = "7f1c6a8e-0000-4000-8000-000000000001"
	clinicID = "clinic-1"
	leeRoom  = "room-lee"
	patel    = "room-patel"
	urgent   = "room-urgent"
	drLee    = "user-lee"
)

var plan = activities.TransferPlan{ClinicID: clinicID, ActorName: "Dr. Maya Lee", TargetDisplayName: "Dr. Arjun Patel", TargetRoomName: "Dr. Arjun Patel"}

type visitSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
}

func TestVisit(t *testing.T) { suite.Run(t, new(visitSuite)) }

func (s *visitSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterActivity(a)
	s.env.OnActivity(a.RecordCheckIn, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func input() workflows.VisitInput {
	return workflows.VisitInput{VisitID: visitID, ClinicID: clinicID, RoomID: leeRoom, PatientName: "Pat Example",
		TokenHash: "hash", CheckedInAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Revision: workflows.CurrentRevision}
}

// outcome collects what one update got back.
type outcome struct {
	rejected  error
	result    any
	err       error
	completed bool
}

func (o *outcome) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { o.rejected = err; o.completed = true },
		OnComplete: func(r any, err error) { o.result, o.err, o.completed = r, err, true },
	}
}

// at sends an update at a moment of workflow time after the start.
func (s *visitSuite) at(d time.Duration, name, id string, arg any) *outcome {
	o := &outcome{}
	s.env.RegisterDelayedCallback(func() { s.env.UpdateWorkflow(name, id, o.callbacks(), arg) }, d)
	return o
}

func (s *visitSuite) checkIn() *outcome {
	return s.at(0, workflows.UpdateCheckIn, "checkin", workflows.CheckInRequest{})
}

func (s *visitSuite) endAt(d time.Duration) {
	s.at(d, workflows.UpdateEnd, "end", workflows.EndRequest{ActorID: drLee})
	s.env.OnActivity(a.EndVisit, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func (s *visitSuite) status() workflows.VisitState {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.VisitState
	s.Require().NoError(v.Get(&st))
	return st
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func (s *visitSuite) TestCheckInThenWaits() {
	ci := s.checkIn()
	var mid workflows.VisitState
	s.env.RegisterDelayedCallback(func() { mid = s.status() }, time.Second)
	s.endAt(2 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.True(s.env.IsWorkflowCompleted())
	s.NoError(ci.err)
	s.Equal(store.VisitWaiting, mid.State)
	s.True(mid.CheckedIn)
	s.Equal(leeRoom, mid.RoomID)
	s.env.AssertActivityNumberOfCalls(s.T(), "RecordCheckIn", 1)
}

// A visit of the current revision records its own check-in, in its first
// workflow task, with no update sent; one of the revision before waits
// for the update.
func (s *visitSuite) TestTheVisitChecksItselfIn() {
	var mid workflows.VisitState
	s.env.RegisterDelayedCallback(func() { mid = s.status() }, time.Second)
	s.endAt(2 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.True(s.env.IsWorkflowCompleted())
	s.NoError(s.env.GetWorkflowError())
	s.True(mid.CheckedIn)
	s.env.AssertActivityNumberOfCalls(s.T(), "RecordCheckIn", 1)
}

func (s *visitSuite) TestAVisitOfTheRevisionBeforeWaitsForTheCheckInUpdate() {
	var mid workflows.VisitState
	s.env.RegisterDelayedCallback(func() { mid = s.status() }, time.Second)
	s.endAt(2 * time.Second)
	in := input()
	in.Revision = 2
	s.env.ExecuteWorkflow(workflows.Visit, in)
	s.False(mid.CheckedIn)
	s.env.AssertActivityNumberOfCalls(s.T(), "RecordCheckIn", 0)
}

// A check-in the database refuses (the room went away after the API
// looked) ends the visit with the refusal, for CheckIn to report.
func (s *visitSuite) TestARefusedCheckInEndsTheVisitWithTheRefusal() {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.RecordCheckIn, mock.Anything, mock.Anything).Return(activities.AsApplicationError(clinic.NotFoundError("room")))
	env.ExecuteWorkflow(workflows.Visit, input())
	s.True(env.IsWorkflowCompleted())
	s.Equal(string(clinic.NotFound), errType(env.GetWorkflowError()))
}

func (s *visitSuite) TestRepeatedCheckInResumesTheSameVisit() {
	s.checkIn()
	again := s.at(time.Second, workflows.UpdateCheckIn, "checkin-2", workflows.CheckInRequest{})
	s.endAt(2 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.NoError(again.err)
	s.env.AssertActivityNumberOfCalls(s.T(), "RecordCheckIn", 1)
}

func (s *visitSuite) TestTransferFromTheWaitingRoom() {
	s.checkIn()
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.MatchedBy(func(p activities.TransferParams) bool {
		return p.SourceRoomID == leeRoom && p.TargetRoomID == patel && p.ActorID == drLee && p.Note == "needs labs" && p.CallID == "" && p.TransferID == "idem-1"
	})).Return(plan, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, mock.Anything, plan).Return(nil).Once()
	tr := s.at(time.Second, workflows.UpdateTransfer, "idem-1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel, Note: "needs labs"})
	var after workflows.VisitState
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 2*time.Second)
	s.endAt(3 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())

	s.Require().NoError(tr.err)
	res := tr.result.(workflows.TransferResult)
	s.Equal("Transferred to Dr. Arjun Patel", res.SenderMessage)
	s.Equal(patel, res.ToRoomID)
	s.False(res.CallEnded)
	s.Equal(store.VisitWaiting, after.State)
	s.Equal(patel, after.RoomID)
	s.Equal(1, after.Transfers)
	s.env.AssertActivityNumberOfCalls(s.T(), "CloseApps", 0)
	s.env.AssertActivityNumberOfCalls(s.T(), "DetachMedia", 0)
}

func (s *visitSuite) admitAt(d time.Duration, kind store.CallKind) *outcome {
	s.env.OnActivity(a.Admit, mock.Anything, mock.Anything).Return(activities.AdmitResult{CallID: "call-1", Kind: kind}, nil).Once()
	return s.at(d, workflows.UpdateAdmit, "admit-1", workflows.AdmitRequest{ActorID: drLee})
}

func (s *visitSuite) TestTransferDuringOneToOneCallEndsTheSendersCall() {
	s.checkIn()
	s.admitAt(time.Second, store.CallOneToOne)
	withCall := mock.MatchedBy(func(p activities.TransferParams) bool { return p.CallID == "call-1" })
	s.env.OnActivity(a.BeginTransfer, mock.Anything, withCall).Return(plan, nil).Once()
	s.env.OnActivity(a.CloseApps, mock.Anything, withCall).Return(2, nil).Once()
	s.env.OnActivity(a.DetachMedia, mock.Anything, withCall).Return(activities.DetachResult{CallEnded: true}, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, withCall, plan).Return(nil).Once()
	tr := s.at(2*time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	var after workflows.VisitState
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 3*time.Second)
	s.endAt(4 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())

	s.Require().NoError(tr.err)
	s.True(tr.result.(workflows.TransferResult).CallEnded)
	s.Equal(store.VisitWaiting, after.State)
	s.Empty(after.CallID)
	s.Equal(patel, after.RoomID)
}

func (s *visitSuite) TestTransferDuringGroupCallLeavesTheOthersInIt() {
	s.checkIn()
	s.admitAt(time.Second, store.CallGroup)
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(a.CloseApps, mock.Anything, mock.Anything).Return(0, nil).Once()
	s.env.OnActivity(a.DetachMedia, mock.Anything, mock.Anything).Return(activities.DetachResult{CallEnded: false}, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, mock.Anything, plan).Return(nil).Once()
	tr := s.at(2*time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: urgent})
	s.endAt(3 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.Require().NoError(tr.err)
	s.False(tr.result.(workflows.TransferResult).CallEnded, "the sender stays in the group call")
}

// A rejoin is only for a visit in a call, and it holds the visit: a
// transfer sent while it runs is refused rather than racing its attach.
func (s *visitSuite) TestRejoinOnlyInACallAndNotDuringATransfer() {
	s.checkIn()
	waiting := s.at(time.Second, workflows.UpdateRejoin, "r0", workflows.RejoinRequest{ActorKind: "patient", ActorID: visitID})
	s.admitAt(2*time.Second, store.CallOneToOne)
	s.env.OnActivity(a.RejoinCall, mock.Anything, activities.RejoinParams{VisitID: visitID, CallID: "call-1", ActorKind: "user", ActorID: drLee}).
		After(time.Second).Return(nil).Once()
	rejoin := s.at(3*time.Second, workflows.UpdateRejoin, "r1", workflows.RejoinRequest{ActorKind: "user", ActorID: drLee})
	during := s.at(3*time.Second+100*time.Millisecond, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	bad := s.at(5*time.Second, workflows.UpdateRejoin, "r2", workflows.RejoinRequest{ActorKind: "stranger", ActorID: "x"})
	s.endAt(6 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())

	s.Equal(clinic.Conflict, errType(waiting.rejected), "a waiting patient has no call to rejoin")
	s.Require().NoError(rejoin.err)
	s.Nil(rejoin.rejected)
	s.Equal("call-1", rejoin.result)
	s.Equal(clinic.Conflict, errType(during.rejected), "a transfer waits for the rejoin to finish")
	s.Equal(clinic.Invalid, errType(bad.rejected))
	s.env.AssertActivityNumberOfCalls(s.T(), "RejoinCall", 1)
	s.env.AssertActivityNumberOfCalls(s.T(), "BeginTransfer", 0)
}

func (s *visitSuite) TestValidatorRejectionsChangeNothing() {
	s.checkIn()
	cases := map[string]workflows.TransferRequest{
		"same room":     {ActorID: drLee, TargetRoomID: leeRoom},
		"no target":     {ActorID: drLee},
		"no actor":      {TargetRoomID: patel},
		"note too long": {ActorID: drLee, TargetRoomID: patel, Note: strings.Repeat("x", clinic.MaxNoteLength+1)},
		"moved since":   {ActorID: drLee, TargetRoomID: urgent, FromRoomID: patel},
	}
	outs := map[string]*outcome{}
	i := 0
	for name, req := range cases {
		i++
		outs[name] = s.at(time.Duration(i)*time.Second, workflows.UpdateTransfer, name, req)
	}
	var after workflows.VisitState
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 10*time.Second)
	s.endAt(11 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.Equal(clinic.SameRoom, errType(outs["same room"].rejected))
	s.Equal(clinic.Conflict, errType(outs["moved since"].rejected), "a transfer of a patient seen in another room")
	for _, name := range []string{"no target", "no actor", "note too long"} {
		s.Equal(clinic.Invalid, errType(outs[name].rejected), name)
	}
	s.Equal(leeRoom, after.RoomID)
	s.Equal(0, after.Transfers)
	s.env.AssertActivityNumberOfCalls(s.T(), "BeginTransfer", 0)
}

func (s *visitSuite) TestTransferBeforeCheckInIsRefused() {
	o := s.at(0, workflows.UpdateTransfer, "early", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	s.checkIn()
	s.endAt(time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.Equal(clinic.Conflict, errType(o.rejected))
}

func (s *visitSuite) TestRuleBrokenInTheDatabaseChangesNothing() {
	s.checkIn()
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.Anything).
		Return(activities.TransferPlan{}, temporal.NewNonRetryableApplicationError("transferring patients requires the Premium plan", clinic.PlanRequired, nil)).Once()
	tr := s.at(time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	var after workflows.VisitState
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 2*time.Second)
	s.endAt(3 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.Equal(clinic.PlanRequired, errType(tr.err))
	s.Contains(tr.err.Error(), "requires the Premium plan")
	s.Equal(store.VisitWaiting, after.State)
	s.Equal(leeRoom, after.RoomID)
	s.env.AssertActivityNumberOfCalls(s.T(), "ReturnToSource", 0)
}

func (s *visitSuite) TestTargetRoomDeletedMidTransferIsCompensated() {
	s.checkIn()
	s.admitAt(time.Second, store.CallOneToOne)
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(a.CloseApps, mock.Anything, mock.Anything).Return(0, nil).Once()
	s.env.OnActivity(a.DetachMedia, mock.Anything, mock.Anything).Return(activities.DetachResult{CallEnded: true}, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, mock.Anything, plan).
		Return(temporal.NewNonRetryableApplicationError("the target room no longer exists", clinic.TargetRoomGone, nil)).Once()
	s.env.OnActivity(a.ReturnToSource, mock.Anything, mock.Anything, "the target room no longer exists").Return(nil).Once()
	tr := s.at(2*time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	var after workflows.VisitState
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 3*time.Second)
	s.endAt(4 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())

	s.Equal("TransferFailed", errType(tr.err))
	s.Contains(tr.err.Error(), "back in the waiting room")
	s.Equal(store.VisitWaiting, after.State, "the patient waits again")
	s.Equal(leeRoom, after.RoomID, "in the source room: never zero rooms, never two")
	s.Empty(after.CallID)
	s.Equal(0, after.Transfers)
}

// slowTransfer makes BeginTransfer take a while so others can race it.
func (s *visitSuite) slowTransfer() {
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.Anything).After(5*time.Second).Return(plan, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, mock.Anything, plan).Return(nil).Once()
}

func (s *visitSuite) TestTwoTransfersAtOnceOneWins() {
	s.checkIn()
	s.slowTransfer()
	first := s.at(time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	second := s.at(time.Second, workflows.UpdateTransfer, "t2", workflows.TransferRequest{ActorID: "user-ortiz", TargetRoomID: urgent})
	s.endAt(time.Minute)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.NoError(first.err)
	s.Require().True(second.completed)
	lost := second.rejected
	if lost == nil {
		lost = second.err
	}
	s.Equal(clinic.Conflict, errType(lost))
	s.Contains(lost.Error(), "being transferred")
	s.env.AssertActivityNumberOfCalls(s.T(), "BeginTransfer", 1)
}

func (s *visitSuite) TestLeaveDuringTransferLoses() {
	s.checkIn()
	s.slowTransfer()
	tr := s.at(time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	leave := s.at(2*time.Second, workflows.UpdateLeave, "leave", workflows.EndRequest{ActorID: "patient"})
	s.endAt(time.Minute)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.NoError(tr.err)
	s.Equal(clinic.Conflict, errType(leave.rejected))
}

func (s *visitSuite) TestAdmitDuringTransferLoses() {
	s.checkIn()
	s.slowTransfer()
	tr := s.at(time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	admit := s.at(2*time.Second, workflows.UpdateAdmit, "admit", workflows.AdmitRequest{ActorID: drLee})
	s.endAt(time.Minute)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.NoError(tr.err)
	s.Equal(clinic.Conflict, errType(admit.rejected))
	s.env.AssertActivityNumberOfCalls(s.T(), "Admit", 0)
}

func (s *visitSuite) TestTransferAfterLeaveIsRefused() {
	s.checkIn()
	s.env.OnActivity(a.EndVisit, mock.Anything, mock.Anything).Return(nil).Once()
	s.at(time.Second, workflows.UpdateLeave, "leave", workflows.EndRequest{ActorID: "patient"})
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.True(s.env.IsWorkflowCompleted(), "leaving ends the visit")
	s.NoError(s.env.GetWorkflowError())
	s.env.AssertActivityNumberOfCalls(s.T(), "BeginTransfer", 0)
}

func (s *visitSuite) TestSameIdempotencyKeyTransfersOnce() {
	s.checkIn()
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, mock.Anything, plan).Return(nil).Once()
	first := s.at(time.Second, workflows.UpdateTransfer, "same-key", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	again := s.at(2*time.Second, workflows.UpdateTransfer, "same-key", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	var after workflows.VisitState
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 3*time.Second)
	s.endAt(4 * time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	s.NoError(first.err)
	s.NoError(again.err)
	s.NoError(again.rejected, "the repeat is answered, not refused")
	s.Equal(1, after.Transfers)
	s.env.AssertActivityNumberOfCalls(s.T(), "BeginTransfer", 1)
}

func (s *visitSuite) TestAbandonedWaitingVisitEndsItself() {
	s.checkIn()
	s.env.OnActivity(a.EndVisit, mock.Anything, mock.MatchedBy(func(p activities.EndParams) bool {
		return p.Reason == "abandoned" && p.ActorKind == "system"
	})).Return(nil).Once()
	// The page opens at once (recorded in the row) and closes at one minute.
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 1})
	}, time.Minute)
	in := input()
	in.AbandonAfter = 10 * time.Minute
	start := s.env.Now()
	s.env.ExecuteWorkflow(workflows.Visit, in)
	s.True(s.env.IsWorkflowCompleted())
	s.NoError(s.env.GetWorkflowError())
	s.GreaterOrEqual(s.env.Now().Sub(start), 11*time.Minute, "not before the patient has been gone 10 minutes")
}

// abandonedAfter runs the visit, which must end itself as abandoned, and
// says when it did.
func (s *visitSuite) abandonedAfter(in workflows.VisitInput) time.Duration {
	s.env.OnActivity(a.EndVisit, mock.Anything, mock.MatchedBy(func(p activities.EndParams) bool {
		return p.Reason == "abandoned" && p.ActorKind == "system"
	})).Return(nil).Once()
	start := s.env.Now()
	s.env.ExecuteWorkflow(workflows.Visit, in)
	s.True(s.env.IsWorkflowCompleted())
	s.NoError(s.env.GetWorkflowError())
	return s.env.Now().Sub(start)
}

// A check-in whose page never says the patient is here is abandoned after
// the window, as if the patient had left at check-in.
func (s *visitSuite) TestUnconnectedCheckInIsAbandoned() {
	s.checkIn()
	s.env.OnActivity(a.PatientArrived, mock.Anything, visitID).Return(false, nil).Once()
	in := input()
	in.AbandonAfter = 10 * time.Minute
	s.InDelta(10*time.Minute, s.abandonedAfter(in), float64(time.Minute), "ten minutes after check-in")
}

// A visit hears nothing when its patient's first page opens: the API
// records it in the visit's row, and the visit reads the row only when it
// would abandon the patient. Found there, the patient counts as here; a
// departure later moves the deadline to ten minutes after it.
func (s *visitSuite) TestAnArrivalRecordedInTheRowKeepsTheVisit() {
	s.checkIn()
	s.env.OnActivity(a.PatientArrived, mock.Anything, visitID).Return(true, nil).Once()
	s.env.RegisterDelayedCallback(func() {
		s.True(s.status().PatientConnected, "the row said the page had opened")
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 1})
	}, 20*time.Minute)
	in := input()
	in.AbandonAfter = 10 * time.Minute
	s.InDelta(30*time.Minute, s.abandonedAfter(in), float64(time.Minute), "abandoned ten minutes after the departure")
	s.env.AssertActivityNumberOfCalls(s.T(), "PatientArrived", 1)
}

// A visit started before the arrival was recorded in its row (revision 0)
// never looks there: unheard of, its patient is abandoned at the deadline.
func (s *visitSuite) TestARevisionZeroVisitDoesNotReadTheRow() {
	s.checkIn()
	in := input()
	in.Revision, in.AbandonAfter = 0, 10*time.Minute
	s.InDelta(10*time.Minute, s.abandonedAfter(in), float64(time.Minute))
	s.env.AssertActivityNumberOfCalls(s.T(), "PatientArrived", 0)
}

// A departure the visit hears before it has looked at the row moves the
// deadline: the patient was here until then.
func (s *visitSuite) TestADepartureBeforeTheDeadlineMovesIt() {
	s.checkIn()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 1})
	}, 8*time.Minute)
	in := input()
	in.AbandonAfter = 10 * time.Minute
	s.InDelta(18*time.Minute, s.abandonedAfter(in), float64(time.Minute), "ten minutes after the departure, not at check-in + 10")
	s.env.AssertActivityNumberOfCalls(s.T(), "PatientArrived", 0)
}

// The page's first arrival keeps the visit; one that reaches the visit
// after a departure was counted is old news and does not.
func (s *visitSuite) TestFirstArrivalCountsOnlyWhileItIsNews() {
	s.checkIn()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: true, Seq: 0})
	}, time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.True(s.status().PatientConnected, "the first page said the patient is here")
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 1})
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: true, Seq: 0}) // a late copy
	}, 20*time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.False(s.status().PatientConnected, "the late first arrival does not undo the departure")
	}, 21*time.Minute)
	s.env.OnActivity(a.EndVisit, mock.Anything, mock.MatchedBy(func(p activities.EndParams) bool { return p.Reason == "abandoned" })).Return(nil).Once()
	in := input()
	in.AbandonAfter = 10 * time.Minute
	start := s.env.Now()
	s.env.ExecuteWorkflow(workflows.Visit, in)
	s.True(s.env.IsWorkflowCompleted())
	s.InDelta(30*time.Minute, s.env.Now().Sub(start), float64(time.Minute), "abandoned ten minutes after the departure, not at check-in + 10")
}

func (s *visitSuite) TestReconnectingPatientIsNotAbandoned() {
	s.checkIn()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false})
	}, time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: true})
	}, 5*time.Minute)
	s.endAt(time.Hour)
	in := input()
	in.AbandonAfter = 10 * time.Minute
	s.env.ExecuteWorkflow(workflows.Visit, in)
	s.env.AssertActivityNumberOfCalls(s.T(), "EndVisit", 1) // the provider's end at one hour
	s.env.AssertActivityCalled(s.T(), "EndVisit", mock.Anything, mock.MatchedBy(func(p activities.EndParams) bool { return p.Reason == "ended" }))
}

// Two API processes signal on their own: the departure counted first can
// arrive after the arrival that followed it, and must not win.
func (s *visitSuite) TestLateDepartureDoesNotOutrankTheArrivalAfterIt() {
	s.checkIn()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 1})
	}, time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: true, Seq: 2})
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 2})
		s.env.SignalWorkflow(workflows.SignalPresence, workflows.PresenceSignal{Connected: false, Seq: 1})
	}, 2*time.Minute)
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.PatientConnected, "the arrival after departure 2 stands")
		s.Equal(2, st.PresenceSeq)
	}, 3*time.Minute)
	s.endAt(time.Hour)
	in := input()
	in.AbandonAfter = 10 * time.Minute
	s.env.ExecuteWorkflow(workflows.Visit, in)
	s.env.AssertActivityNumberOfCalls(s.T(), "EndVisit", 1)
	s.env.AssertActivityCalled(s.T(), "EndVisit", mock.Anything, mock.MatchedBy(func(p activities.EndParams) bool { return p.Reason == "ended" }))
}

func (s *visitSuite) TestContinuesAsNewWithItsState() {
	s.checkIn()
	s.env.OnActivity(a.BeginTransfer, mock.Anything, mock.Anything).Return(plan, nil).Once()
	s.env.OnActivity(a.RetargetRoom, mock.Anything, mock.Anything, plan).Return(nil).Once()
	s.at(time.Second, workflows.UpdateTransfer, "t1", workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	s.env.RegisterDelayedCallback(func() { s.env.SetContinueAsNewSuggested(true) }, 2*time.Second)
	s.env.ExecuteWorkflow(workflows.Visit, input())
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can))
	var next workflows.VisitInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Require().NotNil(next.Resume)
	s.Equal(patel, next.Resume.RoomID)
	s.Equal(1, next.Resume.Transfers)
	s.True(next.Resume.CheckedIn)
	s.Contains(next.Resume.DoneTransfers, "t1", "idempotency keys survive continue-as-new")
}

func TestResumedVisitAnswersARepeatedKey(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	in := input()
	done := workflows.TransferResult{VisitID: visitID, FromRoomID: leeRoom, ToRoomID: patel, SenderMessage: "Transferred to Dr. Arjun Patel"}
	in.Resume = &workflows.VisitState{VisitID: visitID, ClinicID: clinicID, RoomID: patel, State: store.VisitWaiting,
		CheckedIn: true, Transfers: 1, PatientConnected: true, DoneTransfers: map[string]workflows.TransferResult{"t1": done}}
	o := &outcome{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateTransfer, "t1", o.callbacks(), workflows.TransferRequest{ActorID: drLee, TargetRoomID: patel})
	}, time.Second)
	env.OnActivity(a.EndVisit, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateEnd, "end", (&outcome{}).callbacks(), workflows.EndRequest{ActorID: drLee})
	}, 2*time.Second)
	env.ExecuteWorkflow(workflows.Visit, in)
	require.NoError(t, o.rejected)
	require.NoError(t, o.err)
	require.Equal(t, done.SenderMessage, o.result.(workflows.TransferResult).SenderMessage)
	env.AssertActivityNumberOfCalls(t, "BeginTransfer", 0)
}
