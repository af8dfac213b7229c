package workflows

import (
	"cmp"
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
)

// CheckIn starts the visit's workflow, which records the check-in in its
// first workflow task, and returns once recorded says the check-in is in
// the database. The start asks for eager execution: where a worker of the
// visit task queue runs in this process (`handoff dev`), the server hands
// it the first workflow task in its reply to the start, with no trip
// through matching and one write of the visit fewer (BENCHMARKS.md);
// elsewhere it is an ordinary start. Calling it again for the same visit
// finds the running visit instead of creating another. A visit that ends
// without recording its check-in (its room went away meanwhile) returns
// the reason it ended.
func CheckIn(ctx context.Context, c client.Client, in VisitInput, recorded Recorded) error {
	in.Revision = CurrentRevision
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       VisitWorkflowID(in.VisitID),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		EnableEagerStart:         true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			ClinicIDAttr.ValueSet(in.ClinicID), RoomIDAttr.ValueSet(in.RoomID),
			VisitStateAttr.ValueSet(string(clinic.VisitWaiting)), TransfersAttr.ValueSet(0),
		),
	}, Visit, in)
	if err != nil {
		return err
	}
	nextLook := time.Now().Add(checkInLook)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		if ok, err := recorded(ctx, wait); ok {
			return nil
		} else if ctx.Err() != nil {
			return cmp.Or(err, ctx.Err())
		}
		if time.Now().Before(nextLook) {
			continue
		}
		// Slow: has the visit ended without recording its check-in?
		nextLook = time.Now().Add(checkInLook)
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		if ok, _ := recorded(ctx, 0); ok {
			return nil // recorded, then ended at once
		}
		return cmp.Or(run.Get(ctx, nil), errVisitEndedUnrecorded)
	}
}

// Recorded waits for the check-in of a visit CheckIn started to be in the
// database, and says whether it is: at most wait when it polls, until its
// next look when an event would wake it sooner (CheckIn asks again either
// way).
type Recorded func(ctx context.Context, wait time.Duration) (bool, error)

// AskVisit is a Recorded for callers without the database (tests, tools):
// it asks the visit itself, with a query, whether it has checked in.
func AskVisit(c client.Client, visitID string) Recorded {
	return func(ctx context.Context, wait time.Duration) (bool, error) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(wait):
		}
		v, err := c.QueryWorkflow(ctx, VisitWorkflowID(visitID), "", QueryStatus)
		if err != nil {
			return false, err
		}
		var st VisitState
		err = v.Get(&st)
		return err == nil && st.CheckedIn, err
	}
}

// checkInLook is how long CheckIn waits for a check-in before it asks
// whether the visit is still running, and again between two askings. A
// check-in is recorded in milliseconds; this only bounds how long a
// refused one keeps its patient waiting for the answer.
const checkInLook = time.Second

var errVisitEndedUnrecorded = errors.New("the visit ended before its check-in was recorded")

// maxUpdateAttempts bounds how often one update is sent again after a
// transient refusal (the context's deadline bounds it in time).
const maxUpdateAttempts = 40

// retryTransient runs send until it passes, fails for good, or the context
// ends. A visit's workflow that is not ready (its workflow task was just
// rejected and is being retried) or a server that is briefly out of
// resources refuses an update without running it; the same update, with
// its id, sent again is safe.
func retryTransient(ctx context.Context, send func() error) error {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := send()
		if err == nil || !transient(err) || attempt == maxUpdateAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// transient tells a refusal that sending the same update again may pass.
func transient(err error) bool {
	var notReady *serviceerror.WorkflowNotReady
	var exhausted *serviceerror.ResourceExhausted
	return errors.As(err, &notReady) || errors.As(err, &exhausted)
}

// update sends one update and waits for its result. updateID makes it
// idempotent: the same id gets the first call's answer.
func update(ctx context.Context, c client.Client, visitID, name, updateID string, arg, out any) error {
	return retryTransient(ctx, func() error {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: VisitWorkflowID(visitID), UpdateID: updateID, UpdateName: name,
			Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return err
		}
		return h.Get(ctx, out)
	})
}

// Transfer moves the patient; idempotencyKey becomes the update id.
func Transfer(ctx context.Context, c client.Client, visitID, idempotencyKey string, req TransferRequest) (TransferResult, error) {
	var res TransferResult
	return res, update(ctx, c, visitID, UpdateTransfer, idempotencyKey, req, &res)
}

// Admit brings the patient into a call.
func Admit(ctx context.Context, c client.Client, visitID, updateID string, req AdmitRequest) (activities.AdmitResult, error) {
	var res activities.AdmitResult
	return res, update(ctx, c, visitID, UpdateAdmit, updateID, req, &res)
}

// Hold puts an admitted patient back into their waiting room.
func Hold(ctx context.Context, c client.Client, visitID, updateID string, req HoldRequest) (HoldResult, error) {
	var res HoldResult
	return res, update(ctx, c, visitID, UpdateHold, updateID, req, &res)
}

// Guest runs one guest operation (UpdateInviteGuest, UpdateAdmitGuest,
// UpdateRemoveGuest).
func Guest(ctx context.Context, c client.Client, visitID, name, updateID string, req GuestRequest) error {
	return update(ctx, c, visitID, name, updateID, req, nil)
}

// Rejoin puts a member of the visit's call back into it on the media node and
// returns the call's id.
func Rejoin(ctx context.Context, c client.Client, visitID, updateID string, req RejoinRequest) (string, error) {
	var callID string
	return callID, update(ctx, c, visitID, UpdateRejoin, updateID, req, &callID)
}

// Leave ends the visit for the patient.
func Leave(ctx context.Context, c client.Client, visitID, updateID string) (VisitState, error) {
	var st VisitState
	return st, update(ctx, c, visitID, UpdateLeave, updateID, EndRequest{ActorID: visitID}, &st)
}

// End ends the visit on a provider's word.
func End(ctx context.Context, c client.Client, visitID, updateID, actorID string) (VisitState, error) {
	var st VisitState
	return st, update(ctx, c, visitID, UpdateEnd, updateID, EndRequest{ActorID: actorID}, &st)
}

// Status asks the workflow for its state (for one visit's details; lists
// come from the database).
func Status(ctx context.Context, c client.Client, visitID string) (VisitState, error) {
	v, err := c.QueryWorkflow(ctx, VisitWorkflowID(visitID), "", QueryStatus)
	if err != nil {
		return VisitState{}, err
	}
	var st VisitState
	return st, v.Get(&st)
}
