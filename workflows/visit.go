package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
)

// a names the activities for ExecuteActivity and ExecuteLocalActivity; the
// worker's registered instance runs them, never this nil receiver.
var a *activities.Activities

// Visit is the workflow of one patient visit, from check-in to its end.
func Visit(ctx workflow.Context, in VisitInput) error {
	v := &visit{in: in}
	if err := v.setup(ctx); err != nil {
		return err
	}
	return v.run(ctx)
}

type visit struct {
	in VisitInput
	st VisitState
	// busy names the handler running (checkin, admit, transfer, leave, end):
	// one at a time, the others are refused with a reason.
	busy string
}

// setup registers every handler before the workflow blocks on anything, so
// the Update-with-Start check-in always finds its handler.
func (v *visit) setup(ctx workflow.Context) error {
	if v.in.Resume != nil {
		v.st = *v.in.Resume
	} else {
		v.st = VisitState{VisitID: v.in.VisitID, ClinicID: v.in.ClinicID, RoomID: v.in.RoomID,
			State: clinic.VisitWaiting, PatientConnected: true}
		if v.in.Revision >= revisionWithoutMarkers || workflow.GetVersion(ctx, arrivalChange, workflow.DefaultVersion, awaitArrival) >= awaitArrival {
			// The patient counts as away until their page says they are
			// here: a check-in whose page never opens is abandoned like a
			// patient who left.
			v.st.PatientConnected, v.st.DisconnectedAt, v.st.AwaitsArrival = false, workflow.Now(ctx), true
		}
	}
	if v.st.DoneTransfers == nil {
		v.st.DoneTransfers = map[string]TransferResult{}
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (VisitState, error) { return v.st, nil }); err != nil {
		return err
	}
	handlers := []struct {
		name      string
		fn        any
		validator any
	}{
		{UpdateCheckIn, v.checkIn, func(workflow.Context, CheckInRequest) error { return nil }},
		{UpdateAdmit, v.admit, v.validateAdmit},
		{UpdateTransfer, v.transfer, v.validateTransfer},
		{UpdateLeave, v.leave, v.validateEnd},
		{UpdateEnd, v.end, v.validateEnd},
		{UpdateRejoin, v.rejoin, v.validateRejoin},
		{UpdateHold, v.hold, v.validateHold},
		{UpdateInviteGuest, v.inviteGuest, v.validateGuestInCall},
		{UpdateAdmitGuest, v.admitGuest, v.validateGuestInCall},
		{UpdateRemoveGuest, v.removeGuest, v.validateRemoveGuest},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.fn, workflow.UpdateHandlerOptions{Validator: h.validator}); err != nil {
			return err
		}
	}
	presence := workflow.GetSignalChannel(ctx, SignalPresence)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var s PresenceSignal
			presence.Receive(ctx, &s)
			v.setPresence(ctx, s)
		}
	})
	if v.in.Revision >= revisionWithoutMarkers && v.in.Resume == nil {
		return nil // CheckIn started the visit with its search attributes
	}
	return v.publish(ctx)
}

// ndeProbe is only ever set by a test build (see nde_probe.go).
var ndeProbe = false

func (v *visit) run(ctx workflow.Context) error {
	if ndeProbe {
		_ = workflow.Sleep(ctx, time.Second)
	}
	if v.in.Revision >= revisionEagerCheckIn {
		// A check-in update, which this revision's CheckIn no longer sends,
		// may be recording it already: wait for that one.
		if err := workflow.Await(ctx, func() bool { return v.busy == "" }); err != nil {
			return err
		}
		// A check-in the room refuses (it went away since the API looked)
		// ends the visit with the refusal, which CheckIn reports.
		if !v.st.CheckedIn {
			if _, err := v.checkIn(ctx, CheckInRequest{}); err != nil {
				return err
			}
		}
	}
	for v.st.State != clinic.VisitEnded {
		if v.abandonable() {
			since := v.st.DisconnectedAt
			wait := since.Add(v.in.AbandonAfter).Sub(workflow.Now(ctx))
			changed, err := workflow.AwaitWithTimeout(ctx, max(wait, 0), func() bool {
				// Since revisionArrivalRecorded a departure can move the
				// deadline while the patient counts as away.
				moved := v.in.Revision >= revisionArrivalRecorded && !v.st.DisconnectedAt.Equal(since)
				return !v.abandonable() || moved || v.shouldContinueAsNew(ctx)
			})
			if err != nil {
				return err
			}
			if !changed && v.abandonable() {
				heard := v.st.PresenceSeq
				if arrived, err := v.arrivedUnannounced(ctx); err != nil {
					return err
				} else if arrived || !v.abandonable() || v.st.PresenceSeq != heard {
					continue // here, or something happened during the look
				}
				v.busy = "end"
				err := v.finish(ctx, activities.EndParams{VisitID: v.st.VisitID, ActorKind: "system", ActorID: "handoff", Reason: "abandoned", CallID: v.st.CallID})
				v.busy = ""
				if err != nil {
					return err
				}
				continue
			}
		} else if err := workflow.Await(ctx, func() bool {
			return v.st.State == clinic.VisitEnded || v.abandonable() || v.shouldContinueAsNew(ctx)
		}); err != nil {
			return err
		}
		if v.shouldContinueAsNew(ctx) {
			return v.continueAsNew(ctx)
		}
	}
	// Let handlers that are finishing reply before the workflow closes.
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// arrivedUnannounced asks the visit's row, for a visit that reads its
// patient's arrival there (revisionArrivalRecorded) and has heard nothing of
// the patient since check-in, whether the page has opened; if so the
// patient counts as here from now on.
func (v *visit) arrivedUnannounced(ctx workflow.Context) (bool, error) {
	if v.in.Revision < revisionArrivalRecorded || !v.st.AwaitsArrival || v.st.PresenceSeq > 0 {
		return false, nil
	}
	// Retried until the database answers, like the abandonment it decides:
	// a visit that gave up here would fail with its patient still waiting.
	var arrived bool
	if err := v.mustStep(ctx, a.PatientArrived, v.st.VisitID).Get(ctx, &arrived); err != nil {
		return false, err
	}
	if arrived && v.st.PresenceSeq == 0 { // no departure came in meanwhile
		v.st.PatientConnected = true
	}
	return arrived, nil
}

func (v *visit) abandonable() bool {
	return v.in.AbandonAfter > 0 && v.busy == "" && v.st.CheckedIn &&
		v.st.State == clinic.VisitWaiting && !v.st.PatientConnected
}

func (v *visit) shouldContinueAsNew(ctx workflow.Context) bool {
	return v.busy == "" && v.st.State != clinic.VisitEnded && workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// continueAsNew carries the state into a fresh run once no handler runs and
// every pending presence signal is applied, so nothing is dropped.
func (v *visit) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	presence := workflow.GetSignalChannel(ctx, SignalPresence)
	for {
		var s PresenceSignal
		if !presence.ReceiveAsync(&s) {
			break
		}
		v.setPresence(ctx, s)
	}
	next := v.in
	st := v.st
	next.Resume = &st
	return workflow.NewContinueAsNewError(ctx, Visit, next)
}

func (v *visit) setPresence(ctx workflow.Context, s PresenceSignal) {
	// A first arrival (Seq 0) that reaches the visit after a departure was
	// counted is old news; so is any signal older than the last applied.
	if s.Seq > 0 || (v.st.AwaitsArrival && v.st.PresenceSeq > 0) {
		if s.Seq < v.st.PresenceSeq || (s.Seq == v.st.PresenceSeq && !s.Connected) {
			return // older than what the visit knows
		}
		v.st.PresenceSeq = s.Seq
	}
	if s.Connected == v.st.PatientConnected {
		if !s.Connected && s.Seq > 0 && v.in.Revision >= revisionArrivalRecorded {
			// A departure the visit had not heard the arrival of: the
			// arrival was recorded in the row, so the patient was here
			// until now.
			v.st.DisconnectedAt = workflow.Now(ctx)
		}
		return
	}
	v.st.PatientConnected = s.Connected
	if !s.Connected {
		v.st.DisconnectedAt = workflow.Now(ctx)
	}
}

// publish keeps the search attributes ops filter on current. They hold
// opaque ids, the state and a count: never patient data.
func (v *visit) publish(ctx workflow.Context) error {
	return workflow.UpsertTypedSearchAttributes(ctx,
		ClinicIDAttr.ValueSet(v.st.ClinicID),
		RoomIDAttr.ValueSet(v.st.RoomID),
		VisitStateAttr.ValueSet(string(v.st.State)),
		TransfersAttr.ValueSet(int64(v.st.Transfers)),
	)
}

func (v *visit) setState(ctx workflow.Context, s clinic.VisitState) error {
	v.st.State = s
	return v.publish(ctx)
}

// Steps that only touch the database run as local activities since version
// localSteps: in the worker that runs the workflow task, recorded as markers,
// so a transfer from the waiting room is one workflow task instead of three
// (BENCHMARKS.md). Steps that call the media node stay regular activities:
// a slow media node then holds only that step, not the workflow task, so
// other operations on the visit are still answered at once. Histories from
// before the change replay with the regular activities they recorded. Every
// step is idempotent either way: a worker lost mid-step runs it again.
const (
	localStepsChange = "local-steps"
	localSteps       = 1
)

// Visits started since version awaitArrival count their patient away until
// the first presence signal says the page is open (the API sends one for a
// visit's first page); before, a check-in whose page never opened was never
// abandoned. Histories from before replay as they ran.
const (
	arrivalChange = "await-arrival"
	awaitArrival  = 1
)

// Revisions of the visit's code, carried in its input. Since
// revisionWithoutMarkers a new visit takes its changes from its revision, not
// from GetVersion: each marker upserts a search attribute, and that upsert
// was a visibility write of its own on every check-in (the search
// attributes are set when CheckIn starts the visit). Since
// revisionArrivalRecorded the API records the patient's first page in the
// visit's row instead of signalling it, and the visit reads the row only
// when it would abandon a patient it has heard nothing of: a signal and a
// workflow task fewer per check-in (BENCHMARKS.md).
const (
	revisionWithoutMarkers  = 1
	revisionArrivalRecorded = 2
	// Since revisionEagerCheckIn the visit records its check-in itself, in
	// its first workflow task, instead of in an update sent with its start:
	// CheckIn can then ask for eager execution, which an update cannot have
	// (BENCHMARKS.md).
	revisionEagerCheckIn = 3
	// CurrentRevision is what CheckIn starts new visits on.
	CurrentRevision = revisionEagerCheckIn
)

var stepRetry = &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second}

// dbStep runs a database step. Business rejections are non-retryable errors;
// anything else (database down, a worker lost) is retried.
func (v *visit) dbStep(ctx workflow.Context, fn any, args ...any) workflow.Future {
	if v.local(ctx) {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second, ScheduleToCloseTimeout: 2 * time.Minute, RetryPolicy: stepRetry,
		}), fn, args...)
	}
	return v.mediaStep(ctx, fn, args...)
}

// mediaStep runs a step that calls the media node, as a regular activity.
func (v *visit) mediaStep(ctx workflow.Context, fn any, args ...any) workflow.Future {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second, ScheduleToCloseTimeout: 2 * time.Minute, RetryPolicy: stepRetry,
	}), fn, args...)
}

// mustStep runs a database step that must finish however the handler ends:
// detached from cancellation, retried without a deadline.
func (v *visit) mustStep(ctx workflow.Context, fn any, args ...any) workflow.Future {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second}
	if v.local(ctx) {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry,
		}), fn, args...)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry,
	}), fn, args...)
}

func (v *visit) local(ctx workflow.Context) bool {
	return v.in.Revision >= revisionWithoutMarkers || workflow.GetVersion(ctx, localStepsChange, workflow.DefaultVersion, localSteps) >= localSteps
}

// conflict refuses an operation the visit's state does not allow now.
func conflict(msg string) error {
	return temporal.NewApplicationError(msg, clinic.Conflict)
}

// busyError says what the visit is doing instead.
func (v *visit) busyError() error {
	switch v.busy {
	case "transfer":
		return conflict("the patient is being transferred right now")
	case "admit":
		return conflict("the patient is being admitted right now")
	case "checkin":
		return conflict("the patient is still checking in")
	case "rejoin":
		return conflict("the call's video is reconnecting")
	case "hold":
		return conflict("the patient is being put back in the waiting room")
	case "guest":
		return conflict("a guest is being let in or out right now")
	default:
		return conflict("the visit is ending")
	}
}

func (v *visit) ready() error {
	switch {
	case v.busy != "":
		return v.busyError()
	case !v.st.CheckedIn:
		return conflict("the patient has not checked in")
	case v.st.State == clinic.VisitEnded:
		return conflict(clinic.ErrVisitEnded.Message)
	}
	return nil
}

func (v *visit) checkIn(ctx workflow.Context, _ CheckInRequest) (VisitState, error) {
	if v.st.CheckedIn {
		return v.st, nil // a repeated check-in resumes the same visit
	}
	if v.busy != "" {
		return VisitState{}, v.busyError()
	}
	v.busy = "checkin"
	defer func() { v.busy = "" }()
	err := v.dbStep(ctx, a.RecordCheckIn, activities.CheckInParams{
		VisitID: v.in.VisitID, ClinicID: v.in.ClinicID, RoomID: v.in.RoomID,
		PatientName: v.in.PatientName, TokenHash: v.in.TokenHash, CheckedInAt: v.in.CheckedInAt,
		ArrivalRecorded: v.in.Revision >= revisionArrivalRecorded,
	}).Get(ctx, nil)
	if err != nil {
		return VisitState{}, err
	}
	v.st.CheckedIn = true
	return v.st, nil
}

func (v *visit) validateAdmit(_ workflow.Context, req AdmitRequest) error {
	if req.ActorID == "" {
		return temporal.NewApplicationError("an admit needs the provider's id", clinic.Invalid)
	}
	if err := v.ready(); err != nil {
		return err
	}
	if v.st.State != clinic.VisitWaiting {
		return conflict("the patient is not in the waiting room")
	}
	return nil
}

func (v *visit) admit(ctx workflow.Context, req AdmitRequest) (activities.AdmitResult, error) {
	// Validators and handlers of updates delivered together may interleave:
	// check again now that this handler runs.
	if err := v.validateAdmit(ctx, req); err != nil {
		return activities.AdmitResult{}, err
	}
	v.busy = "admit"
	defer func() { v.busy = "" }()
	var res activities.AdmitResult
	if err := v.mediaStep(ctx, a.Admit, activities.AdmitParams{
		VisitID: v.st.VisitID, ActorID: req.ActorID, CallID: req.CallID,
	}).Get(ctx, &res); err != nil {
		return activities.AdmitResult{}, err
	}
	v.st.CallID = res.CallID
	return res, v.setState(ctx, clinic.VisitInCall)
}

func (v *visit) validateTransfer(ctx workflow.Context, req TransferRequest) error {
	if _, done := v.st.DoneTransfers[updateID(ctx)]; done {
		return nil // a repeat of a finished transfer: the handler answers it
	}
	if req.ActorID == "" || req.TargetRoomID == "" {
		return temporal.NewApplicationError("a transfer needs the provider's id and a target room", clinic.Invalid)
	}
	if err := clinic.CheckNote(req.Note); err != nil {
		return activities.AsApplicationError(err)
	}
	if err := v.ready(); err != nil {
		return err
	}
	if req.FromRoomID != "" && req.FromRoomID != v.st.RoomID {
		return conflict(clinic.ErrMovedAway.Message)
	}
	if err := clinic.CheckTarget(v.st.RoomID, req.TargetRoomID); err != nil {
		return activities.AsApplicationError(err)
	}
	return nil
}

// transfer runs the transfer's steps. Up to BeginTransfer nothing has
// changed if a rule says no; after it the patient is leaving the source room,
// so any failure puts them back there (ReturnToSource) and says so.
func (v *visit) transfer(ctx workflow.Context, req TransferRequest) (TransferResult, error) {
	id := updateID(ctx)
	if done, ok := v.st.DoneTransfers[id]; ok {
		return done, nil
	}
	if err := v.validateTransfer(ctx, req); err != nil {
		return TransferResult{}, err
	}
	v.busy = "transfer"
	defer func() { v.busy = "" }()

	p := activities.TransferParams{TransferID: id, VisitID: v.st.VisitID, ActorID: req.ActorID,
		SourceRoomID: v.st.RoomID, TargetRoomID: req.TargetRoomID, Note: req.Note, CallID: v.st.CallID, KeepGuests: req.KeepGuests}
	from := v.st.State
	var plan activities.TransferPlan
	if err := v.dbStep(ctx, a.BeginTransfer, p).Get(ctx, &plan); err != nil {
		if isRejection(err) {
			return TransferResult{}, err // a rule said no; nothing changed
		}
		// It may have committed before failing: make sure the patient waits.
		return TransferResult{}, v.compensate(ctx, p, err)
	}
	if err := v.setState(ctx, clinic.VisitTransferring); err != nil {
		return TransferResult{}, err
	}

	res := TransferResult{VisitID: v.st.VisitID, ActorID: req.ActorID, FromRoomID: p.SourceRoomID, ToRoomID: p.TargetRoomID, SenderMessage: plan.SenderMessage(), Plan: plan}
	err := v.leaveCall(ctx, p, from, &res)
	if err == nil {
		err = v.dbStep(ctx, a.RetargetRoom, p, plan).Get(ctx, nil)
	}
	if err != nil {
		return TransferResult{}, v.compensate(ctx, p, err)
	}
	v.st.RoomID = p.TargetRoomID
	v.st.CallID = ""
	v.st.Transfers++
	v.st.DoneTransfers[id] = res
	return res, v.setState(ctx, clinic.VisitWaiting)
}

func (v *visit) validateHold(_ workflow.Context, req HoldRequest) error {
	if req.ActorID == "" {
		return temporal.NewApplicationError("a hold needs the provider's id", clinic.Invalid)
	}
	if err := v.ready(); err != nil {
		return err
	}
	if v.st.State != clinic.VisitInCall || v.st.CallID == "" {
		return activities.AsApplicationError(clinic.ErrPatientNotInCall)
	}
	return nil
}

// hold puts an admitted patient back into the same waiting room: the
// provider's rule checked (BeginHold), the call's apps closed and the
// patient's media detached both ways as on a transfer, then the visit
// waits again (Held), to be admitted again later.
func (v *visit) hold(ctx workflow.Context, req HoldRequest) (HoldResult, error) {
	if err := v.validateHold(ctx, req); err != nil {
		return HoldResult{}, err
	}
	v.busy = "hold"
	defer func() { v.busy = "" }()
	p := activities.HoldParams{VisitID: v.st.VisitID, ActorID: req.ActorID, CallID: v.st.CallID}
	var plan activities.HoldPlan
	if err := v.dbStep(ctx, a.BeginHold, p).Get(ctx, &plan); err != nil {
		return HoldResult{}, err // a rule said no, or the database: nothing changed
	}
	var res TransferResult
	leave := activities.TransferParams{VisitID: v.st.VisitID, ActorID: req.ActorID, SourceRoomID: v.st.RoomID, CallID: v.st.CallID, Reason: "hold"}
	if err := v.leaveCall(ctx, leave, clinic.VisitInCall, &res); err != nil {
		return HoldResult{}, err
	}
	// The media has left the call: from here the visit must wait again.
	if err := v.mustStep(ctx, a.Held, p, plan).Get(ctx, nil); err != nil {
		return HoldResult{}, err
	}
	v.st.CallID = ""
	return HoldResult{CallEnded: res.CallEnded}, v.setState(ctx, clinic.VisitWaiting)
}

// leaveCall closes the session's apps and detaches the patient's media.
func (v *visit) leaveCall(ctx workflow.Context, p activities.TransferParams, from clinic.VisitState, res *TransferResult) error {
	if from != clinic.VisitInCall || p.CallID == "" {
		return nil
	}
	if err := v.dbStep(ctx, a.CloseApps, p).Get(ctx, nil); err != nil {
		return err
	}
	var d activities.DetachResult
	if err := v.mediaStep(ctx, a.DetachMedia, p).Get(ctx, &d); err != nil {
		return err
	}
	v.st.CallID = ""
	res.CallEnded = d.CallEnded
	return nil
}

func (v *visit) compensate(ctx workflow.Context, p activities.TransferParams, cause error) error {
	reason := "the transfer could not complete"
	var appErr *temporal.ApplicationError
	if errors.As(cause, &appErr) && appErr.Type() == clinic.TargetRoomGone {
		reason = "the target room no longer exists"
	}
	if err := v.mustStep(ctx, a.ReturnToSource, p, reason).Get(ctx, nil); err != nil {
		return err
	}
	v.st.CallID = ""
	if err := v.setState(ctx, clinic.VisitWaiting); err != nil {
		return err
	}
	return temporal.NewNonRetryableApplicationError("transfer failed: "+reason+"; the patient is back in the waiting room", clinic.TransferFailed, cause)
}

func (v *visit) validateRejoin(_ workflow.Context, req RejoinRequest) error {
	if req.ActorID == "" || (req.ActorKind != clinic.ActorPatient && req.ActorKind != clinic.ActorUser && req.ActorKind != clinic.ActorGuest) {
		return temporal.NewApplicationError("a rejoin needs the patient, a provider or a guest", clinic.Invalid)
	}
	if err := v.ready(); err != nil {
		return err
	}
	if v.st.State != clinic.VisitInCall || v.st.CallID == "" {
		return conflict("the patient is not in a call")
	}
	return nil
}

// rejoin restores one member's place in the call on the media node. It holds
// the visit like any other operation, so a transfer cannot detach the
// patient while an older rejoin attaches them again.
func (v *visit) rejoin(ctx workflow.Context, req RejoinRequest) (string, error) {
	if err := v.validateRejoin(ctx, req); err != nil {
		return "", err
	}
	v.busy = "rejoin"
	defer func() { v.busy = "" }()
	err := v.mediaStep(ctx, a.RejoinCall, activities.RejoinParams{
		VisitID: v.st.VisitID, CallID: v.st.CallID, ActorKind: req.ActorKind, ActorID: req.ActorID, Join: req.Join,
	}).Get(ctx, nil)
	return v.st.CallID, err
}

func (v *visit) validateGuest(req GuestRequest) error {
	if req.GuestID == "" || req.ActorID == "" {
		return temporal.NewApplicationError("a guest operation needs the guest's and the actor's ids", clinic.Invalid)
	}
	return v.ready()
}

// validateGuestInCall: guests are invited and let in while the patient is
// in a call.
func (v *visit) validateGuestInCall(_ workflow.Context, req GuestRequest) error {
	if err := v.validateGuest(req); err != nil {
		return err
	}
	if v.st.State != clinic.VisitInCall || v.st.CallID == "" {
		return activities.AsApplicationError(clinic.ErrPatientNotInCall)
	}
	return nil
}

// validateRemoveGuest: a guest can be removed (or leave) whatever the
// patient is doing, but not in the middle of another operation.
func (v *visit) validateRemoveGuest(_ workflow.Context, req GuestRequest) error {
	return v.validateGuest(req)
}

// inviteGuest makes a guest's single-use link for the patient's call.
func (v *visit) inviteGuest(ctx workflow.Context, req GuestRequest) error {
	return v.guestStep(ctx, req, v.validateGuestInCall, v.dbStep, a.InviteGuest)
}

// admitGuest lets a waiting guest into the patient's call.
func (v *visit) admitGuest(ctx workflow.Context, req GuestRequest) error {
	return v.guestStep(ctx, req, v.validateGuestInCall, v.mediaStep, a.AdmitGuest)
}

// removeGuest takes a guest out of the visit: removed by a provider, or
// leaving by themself.
func (v *visit) removeGuest(ctx workflow.Context, req GuestRequest) error {
	return v.guestStep(ctx, req, v.validateRemoveGuest, v.mediaStep, a.RemoveGuest)
}

// guestStep runs one guest operation as its own step, holding the visit
// like any other operation: a guest is never let into a call the patient
// is leaving.
func (v *visit) guestStep(ctx workflow.Context, req GuestRequest, validate func(workflow.Context, GuestRequest) error,
	run func(workflow.Context, any, ...any) workflow.Future, step any) error {
	if err := validate(ctx, req); err != nil {
		return err
	}
	v.busy = "guest"
	defer func() { v.busy = "" }()
	actorKind := req.ActorKind
	if actorKind == "" {
		actorKind = clinic.ActorUser
	}
	return run(ctx, step, activities.GuestParams{VisitID: v.st.VisitID, CallID: v.st.CallID, GuestID: req.GuestID,
		ActorKind: actorKind, ActorID: req.ActorID, LinkHash: req.LinkHash}).Get(ctx, nil)
}

func (v *visit) validateEnd(_ workflow.Context, req EndRequest) error {
	if req.ActorID == "" {
		return temporal.NewApplicationError("ending a visit needs the actor's id", clinic.Invalid)
	}
	return v.ready()
}

func (v *visit) leave(ctx workflow.Context, req EndRequest) (VisitState, error) {
	return v.endWith(ctx, req, activities.EndParams{ActorKind: "patient", Reason: "left"})
}

func (v *visit) end(ctx workflow.Context, req EndRequest) (VisitState, error) {
	return v.endWith(ctx, req, activities.EndParams{ActorKind: "user", Reason: "ended"})
}

func (v *visit) endWith(ctx workflow.Context, req EndRequest, p activities.EndParams) (VisitState, error) {
	if err := v.validateEnd(ctx, req); err != nil {
		return VisitState{}, err
	}
	v.busy = p.Reason
	defer func() { v.busy = "" }()
	p.VisitID, p.ActorID, p.CallID = v.st.VisitID, req.ActorID, v.st.CallID
	if err := v.finish(ctx, p); err != nil {
		return VisitState{}, err
	}
	return v.st, nil
}

func (v *visit) finish(ctx workflow.Context, p activities.EndParams) error {
	if err := v.mustStep(ctx, a.EndVisit, p).Get(ctx, nil); err != nil {
		return err
	}
	v.st.CallID = ""
	v.st.EndReason = p.Reason
	return v.setState(ctx, clinic.VisitEnded)
}

func updateID(ctx workflow.Context) string {
	if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
		return info.ID
	}
	return ""
}

// isRejection tells a business rule's "no" from a failure to carry it out.
func isRejection(err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return false
	}
	return clinic.IsRuleBreak(appErr.Type())
}
