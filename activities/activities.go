// Package activities holds the durable steps of a visit: check-in, admit,
// the transfer's steps and their compensation, and ending. Each runs as one
// database transaction guarded by the visit's current state, so running it
// twice (a retry, a worker restarted mid-step) has the effect of running it
// once.
package activities

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
)

// Media is the media server's control API as the activities use it. Every
// method is idempotent: attaching an attached participant, detaching a
// detached one or ending an ended call succeeds and changes nothing.
type Media interface {
	CreateCall(ctx context.Context, callID string) error
	Attach(ctx context.Context, callID, participantID string) error
	Detach(ctx context.Context, callID, participantID string) error
	EndCall(ctx context.Context, callID string) error
}

// MediaNodes says on which media node a call lives and reaches each
// node's control API: the registry's nodes (medianodes.Registry), or one
// node (OneNode).
type MediaNodes interface {
	// ForNewCall is the node a clinic's new call goes on.
	ForNewCall(q store.Queries, clinicID string) (store.MediaNode, error)
	// ForCall is the node call lives on, the call moved to a live node
	// first when its own is gone.
	ForCall(q store.Queries, call store.Call) (store.MediaNode, error)
	// Control is a node's control API.
	Control(n store.MediaNode) Media
}

// OneNode is a single media node, not registered (`handoff dev`, a
// deployment with one node): every call lives on it, whatever node its row
// names.
type OneNode struct {
	Node  store.MediaNode // ID and PublicURL
	Media Media
}

// ForNewCall implements MediaNodes.
func (o OneNode) ForNewCall(store.Queries, string) (store.MediaNode, error) { return o.Node, nil }

// ForCall implements MediaNodes.
func (o OneNode) ForCall(store.Queries, store.Call) (store.MediaNode, error) { return o.Node, nil }

// Control implements MediaNodes.
func (o OneNode) Control(store.MediaNode) Media { return o.Media }

// LocalNode is the id a single node's calls record.
const LocalNode = "local"

// Activities are the visit's activities with what they depend on.
type Activities struct {
	DB *store.DB
	// Nodes are the media nodes calls are placed on; nil: every call on
	// Media, the one node.
	Nodes MediaNodes
	Media Media
	// Metrics counts transfer outcomes; nil counts nothing.
	Metrics *metrics.Registry
	// Now is the clock; tests may set it.
	Now func() time.Time
}

func (a *Activities) nodes() MediaNodes {
	if a.Nodes != nil {
		return a.Nodes
	}
	return OneNode{Node: store.MediaNode{ID: LocalNode}, Media: a.Media}
}

// callMedia is the control API of the node call lives on.
func (a *Activities) callMedia(ctx context.Context, callID string) (Media, error) {
	call, err := a.DB.With(ctx).Calls.Get(callID)
	if err != nil {
		return nil, err
	}
	return a.mediaOf(ctx, call)
}

// mediaOf is callMedia for a call already read.
func (a *Activities) mediaOf(ctx context.Context, call store.Call) (Media, error) {
	n, err := a.nodes().ForCall(a.DB.With(ctx), call)
	if err != nil {
		return nil, err
	}
	return a.nodes().Control(n), nil
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// tx runs fn in one transaction; the events it writes wake the live-event
// streams once it commits.
func (a *Activities) tx(ctx context.Context, fn func(q store.Queries) error) error {
	return a.DB.InTx(ctx, fn)
}

func (a *Activities) writer(q store.Queries, clinicID, visitID string, now time.Time) writer {
	return writer{q: q, clinicID: clinicID, visitID: visitID, now: now}
}

// RecordCheckIn writes the visit's projection row, its event and audit row.
func (a *Activities) RecordCheckIn(ctx context.Context, p CheckInParams) error {
	return a.tx(ctx, func(q store.Queries) error {
		now := a.now()
		// The card is made from the row as written, not read back; the time
		// to the microsecond, as both databases keep it.
		v := store.Visit{
			ID: p.VisitID, ClinicID: p.ClinicID, RoomID: p.RoomID, State: store.VisitWaiting,
			PatientName: store.Sealed(p.PatientName), TokenHash: p.TokenHash,
			CheckedInAt: p.CheckedInAt.UTC().Truncate(time.Microsecond), UpdatedAt: now,
		}
		if p.ArrivalRecorded {
			v.ArrivalInRow = store.ArrivalExpected
		}
		// The room is checked in the insert: it may have gone since the
		// API looked.
		created, err := q.Visits.CreateInLiveRoom(v)
		if _, err := found(v, err, "room"); err != nil || !created {
			return err // not created: an earlier attempt did it all
		}
		w := a.writer(q, p.ClinicID, p.VisitID, now)
		return w.all(
			w.toRoom(p.RoomID, clinic.EventCheckedIn, cardPayload(v, "")),
			w.audit(clinic.ActorPatient, p.VisitID, clinic.EventCheckedIn, &p.RoomID, nil, ""),
		)
	})
}

// PatientArrived says whether the patient's page has opened since check-in,
// as the API recorded it in the visit's row.
func (a *Activities) PatientArrived(ctx context.Context, visitID string) (bool, error) {
	return a.DB.With(ctx).Visits.Arrived(visitID)
}

// Admit puts a waiting patient into a call: a new 1:1 call with the actor, or
// an existing call of the room, which becomes a group call.
func (a *Activities) Admit(ctx context.Context, p AdmitParams) (AdmitResult, error) {
	var res AdmitResult
	err := a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		if v.State == store.VisitInCall && v.CallID != nil {
			// Done by an earlier attempt.
			call, err := q.Calls.Get(*v.CallID)
			if err != nil {
				return err
			}
			res = AdmitResult{CallID: call.ID, Kind: call.Kind}
			return nil
		}
		if v.State != store.VisitWaiting {
			return AsApplicationError(clinic.ErrNotWaiting)
		}
		actor, err := providerForVisit(q, p.ActorID, v)
		if err != nil {
			return err
		}
		now := a.now()
		var call store.Call
		if p.CallID == "" {
			node, err := a.nodes().ForNewCall(q, v.ClinicID)
			if err != nil {
				return err
			}
			call = store.Call{ID: uuid.NewString(), ClinicID: v.ClinicID, RoomID: v.RoomID, Kind: store.CallOneToOne, MediaNode: node.ID, StartedAt: now}
			if err := q.Calls.Create(call); err != nil {
				return err
			}
		} else {
			call, err = q.Calls.InClinic(p.CallID, v.ClinicID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && call.RoomID != v.RoomID) {
				return reject(clinic.NotFound, "call not found in this room")
			} else if err != nil {
				return err
			}
			if call.EndedAt != nil {
				return reject(clinic.Conflict, "that call has ended")
			}
			if err := a.roomInCall(q, call.ID, actor.ID); err != nil {
				return err
			}
			if call.Kind != store.CallGroup {
				if err := q.Calls.BecameGroup(call.ID); err != nil {
					return err
				}
				call.Kind = store.CallGroup
			}
		}
		if err := q.Visits.Admitted(v.ID, call.ID, now); err != nil {
			return err
		}
		if err := q.Calls.AddParticipant(call.ID, actor.ID, now); err != nil {
			return err
		}
		res = AdmitResult{CallID: call.ID, Kind: call.Kind}
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(clinic.EventAdmitted, map[string]any{"visitId": v.ID, "callId": call.ID, "message": actor.DisplayName + " is ready to see you", "name": actor.DisplayName}),
			w.toRoom(v.RoomID, clinic.EventAdmitted, map[string]any{"visitId": v.ID, "callId": call.ID, "kind": call.Kind, "admittedBy": actor.DisplayName}),
			w.audit(clinic.ActorUser, actor.ID, clinic.EventAdmitted, &v.RoomID, nil, "call "+call.ID),
		)
	})
	if err != nil {
		return AdmitResult{}, err
	}
	// Media after the commit: the call exists in the database before anyone
	// can be bound into it. Every step is idempotent, and the call is
	// (re)created each time: a media node that restarted has forgotten it.
	m, err := a.callMedia(ctx, res.CallID)
	if err != nil {
		return AdmitResult{}, err
	}
	if err := m.CreateCall(ctx, res.CallID); err != nil {
		return AdmitResult{}, err
	}
	if err := m.Attach(ctx, res.CallID, clinic.ProviderParticipant(p.ActorID)); err != nil {
		return AdmitResult{}, err
	}
	if err := m.Attach(ctx, res.CallID, clinic.PatientParticipant(p.VisitID)); err != nil {
		return AdmitResult{}, err
	}
	return res, nil
}

// RejoinCall binds a member of the visit's call into it again after its media
// session was lost (a media node restart forgets every call). It only
// restores what the database already says: the visit is in that call, and a
// provider may act for its room.
func (a *Activities) RejoinCall(ctx context.Context, p RejoinParams) error {
	var participant string
	err := a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		if v.State != store.VisitInCall || v.CallID == nil || *v.CallID != p.CallID {
			return reject(clinic.Conflict, "the patient is not in that call")
		}
		switch p.ActorKind {
		case clinic.ActorPatient:
			participant = clinic.PatientParticipant(v.ID)
		case clinic.ActorUser:
			actor, err := providerForVisit(q, p.ActorID, v)
			if err != nil {
				return err
			}
			participant = clinic.ProviderParticipant(actor.ID)
			if p.Join {
				return a.joinCall(q, actor, v, p.CallID)
			}
			in, err := q.Calls.IsParticipant(p.CallID, actor.ID)
			if err != nil {
				return err
			}
			if !in {
				return AsApplicationError(clinic.ErrNotInCall)
			}
		case clinic.ActorGuest:
			g, err := q.Guests.OfVisit(p.ActorID, v.ID)
			if _, err := found(g, err, "guest"); err != nil {
				return err
			}
			if g.State != clinic.GuestInCall || g.CallID == nil || *g.CallID != p.CallID {
				return reject(clinic.Conflict, "the guest is not in that call")
			}
			participant = clinic.GuestParticipant(g.ID)
		default:
			return reject(clinic.Invalid, "a rejoin is by the patient, a provider or a guest")
		}
		w := a.writer(q, v.ClinicID, v.ID, a.now())
		return w.audit(p.ActorKind, p.ActorID, clinic.AuditCallRejoined, &v.RoomID, nil, "call "+p.CallID)()
	})
	if err != nil {
		return err
	}
	// The call's node, or, when that node is gone, the one it moves to now:
	// this rejoin is how a call's participants come back on another node.
	m, err := a.callMedia(ctx, p.CallID)
	if err != nil {
		return err
	}
	if err := m.CreateCall(ctx, p.CallID); err != nil {
		return err
	}
	return m.Attach(ctx, p.CallID, participant)
}

// joinCall adds a provider of the room to a call they are not in, in the
// open: every patient in the call and the room are told, and it is audited.
func (a *Activities) joinCall(q store.Queries, actor store.User, v store.Visit, callID string) error {
	now := a.now()
	in, err := q.Calls.IsParticipant(callID, actor.ID)
	if err != nil || in {
		return err // already in it: a retried step, or a join that was a rejoin
	}
	if err := a.roomInCall(q, callID, ""); err != nil {
		return err
	}
	if err := q.Calls.AddParticipant(callID, actor.ID, now); err != nil {
		return err
	}
	patients, err := q.Visits.AllInCall(callID)
	if err != nil {
		return err
	}
	msg := actor.DisplayName + " joined the call"
	var steps []step
	for _, other := range patients {
		steps = append(steps, a.writer(q, other.ClinicID, other.ID, now).toPatient(clinic.EventCallJoined, map[string]any{"callId": callID, "message": msg, "name": actor.DisplayName}))
	}
	w := a.writer(q, v.ClinicID, v.ID, now)
	steps = append(steps, w.toRoom(v.RoomID, clinic.EventCallJoined, map[string]any{"callId": callID, "joinedBy": actor.DisplayName}),
		w.audit(clinic.ActorUser, actor.ID, clinic.AuditCallJoined, &v.RoomID, nil, "call "+callID))
	return w.all(steps...)
}

// BeginTransfer checks every rule that a database fact decides, then marks
// the visit as transferring and tells the patient where they are going.
// It changes nothing when a rule is broken.
func (a *Activities) BeginTransfer(ctx context.Context, p TransferParams) (TransferPlan, error) {
	var plan TransferPlan
	err := a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		done, err := q.Transfers.Completed(p.VisitID, p.TransferID)
		if err != nil {
			return err
		}
		if done {
			// Run again after this transfer finished: a local activity
			// whose workflow task was lost with its worker. Plan it as it
			// was, from the source room, and change nothing.
			v.RoomID, v.State = p.SourceRoomID, store.VisitTransferring
		}
		plan, err = planTransfer(q, v, p)
		if err != nil || done {
			return err
		}
		switch v.State {
		case store.VisitTransferring:
			return nil // an earlier attempt of this transfer got here
		case store.VisitWaiting, store.VisitInCall:
		default:
			return AsApplicationError(clinic.ErrVisitEnded)
		}
		now := a.now()
		if err := q.Visits.Transferring(v.ID, v.State, now); err != nil {
			return err
		}
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(clinic.EventTransferStarted, map[string]any{"visitId": v.ID, "message": plan.PatientMessageStarting(), "name": plan.TargetDisplayName}),
			w.toRoom(v.RoomID, clinic.EventTransferStarted, map[string]any{"visitId": v.ID, "targetRoomId": p.TargetRoomID}),
			w.audit(clinic.ActorUser, p.ActorID, clinic.AuditTransferStarted, &p.SourceRoomID, &p.TargetRoomID, "transfer "+p.TransferID),
		)
	})
	return plan, err
}

// planTransfer applies the domain's transfer rules to the database's facts.
func planTransfer(q store.Queries, v store.Visit, p TransferParams) (TransferPlan, error) {
	cl, err := q.Clinics.Get(v.ClinicID)
	if err != nil {
		return TransferPlan{}, err
	}
	actor, err := loadUser(q, p.ActorID, v.ClinicID)
	if err != nil {
		return TransferPlan{}, err
	}
	source, err := loadRoom(q, p.SourceRoomID)
	if err != nil {
		return TransferPlan{}, err
	}
	actsForSource, err := actsFor(q, actor, source)
	if err != nil {
		return TransferPlan{}, err
	}
	if err := clinic.MayTransfer(actor.Actor(), cl.Plan, actsForSource); err != nil {
		return TransferPlan{}, AsApplicationError(err)
	}
	target, err := q.Rooms.Get(p.TargetRoomID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return TransferPlan{}, err
	}
	var targetFacts *clinic.Room
	if err == nil {
		f := target.Facts()
		targetFacts = &f
	}
	current := v.RoomID
	if v.State == store.VisitTransferring {
		current = "" // a re-run of its own BeginTransfer is not a same-room transfer
	}
	if err := clinic.TransferTarget(v.ClinicID, current, targetFacts); err != nil {
		return TransferPlan{}, AsApplicationError(err)
	}
	display, err := q.Rooms.DisplayName(target)
	if err != nil {
		return TransferPlan{}, err
	}
	plan := TransferPlan{ClinicID: v.ClinicID, ActorName: actor.DisplayName, TargetDisplayName: display, TargetRoomName: target.Name}
	if p.CallID != "" {
		call, err := q.Calls.Get(p.CallID)
		if err != nil {
			return TransferPlan{}, err
		}
		plan.CallKind = call.Kind
	}
	return plan, nil
}

// CloseApps closes every app open in the patient's call and discards its
// session data, so none of it reaches the receiving provider.
func (a *Activities) CloseApps(ctx context.Context, p TransferParams) (int, error) {
	var closed int
	err := a.tx(ctx, func(q store.Queries) error {
		apps, err := q.Apps.OpenIn(p.CallID)
		if err != nil || len(apps) == 0 {
			return err
		}
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		now := a.now()
		ids := make([]string, len(apps))
		for i, app := range apps {
			ids[i] = app.ID
		}
		if _, err := q.Apps.Close(p.CallID, ids, now); err != nil {
			return err
		}
		w := a.writer(q, v.ClinicID, v.ID, now)
		for _, app := range apps {
			if err := w.all(
				w.toRoom(p.SourceRoomID, clinic.EventAppClosed, map[string]any{"callId": p.CallID, "appId": app.ID, "app": app.App, "reason": p.LeaveReason()}),
				w.audit(clinic.ActorSystem, p.LeaveReason(), clinic.EventAppClosed, &p.SourceRoomID, nil, app.App+" "+app.ID),
			); err != nil {
				return err
			}
		}
		closed = len(apps)
		return nil
	})
	return closed, err
}

// DetachMedia takes the patient out of the call. A 1:1 call ends, for the
// sender too; in a group call only the patient leaves.
func (a *Activities) DetachMedia(ctx context.Context, p TransferParams) (DetachResult, error) {
	call, err := a.DB.With(ctx).Calls.Get(p.CallID)
	if err != nil {
		return DetachResult{}, err
	}
	m, err := a.mediaOf(ctx, call)
	if err != nil {
		return DetachResult{}, err
	}
	if err := m.Detach(ctx, p.CallID, clinic.PatientParticipant(p.VisitID)); err != nil {
		return DetachResult{}, err
	}
	guests, err := detachGuests(ctx, m, a.DB.With(ctx), p.VisitID, p.CallID)
	if err != nil {
		return DetachResult{}, err
	}
	oneToOne := call.Kind == store.CallOneToOne
	if oneToOne {
		if err := m.EndCall(ctx, p.CallID); err != nil {
			return DetachResult{}, err
		}
	}
	err = a.tx(ctx, func(q store.Queries) error {
		now := a.now()
		if err := q.Visits.LeftCall(p.VisitID, p.CallID, now); err != nil {
			return err
		}
		if err := settleGuests(q, guests, p.GuestsStay(), now); err != nil {
			return err
		}
		if !oneToOne {
			return nil
		}
		ended, err := q.Calls.Ended(p.CallID, now)
		if err != nil || !ended {
			return err
		}
		w := a.writer(q, call.ClinicID, p.VisitID, now)
		return w.toRoom(call.RoomID, clinic.EventCallEnded, map[string]any{"callId": call.ID, "reason": p.LeaveReason()})()
	})
	return DetachResult{CallEnded: oneToOne}, err
}

// RetargetRoom moves the patient into the target waiting room and, in the
// same transaction, records the transfer as done and writes the three
// sides' events and the audit row: the move and its notification commit
// together or not at all.
func (a *Activities) RetargetRoom(ctx context.Context, p TransferParams, plan TransferPlan) error {
	counted := false // counted once, not again by a retry that finds it done
	err := a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		if v.RoomID == p.TargetRoomID && v.State == store.VisitWaiting {
			return nil // an earlier attempt did it
		}
		if v.State != store.VisitTransferring || v.RoomID != p.SourceRoomID {
			return reject(clinic.Conflict, "the visit is not being transferred")
		}
		target, err := q.Rooms.Get(p.TargetRoomID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err != nil || target.DeletedAt != nil {
			return reject(clinic.TargetRoomGone, "the target room no longer exists")
		}
		now := a.now()
		if err := q.Visits.MovedTo(store.Move{VisitID: v.ID, ActorID: p.ActorID, FromRoomID: p.SourceRoomID,
			ToRoomID: p.TargetRoomID, Note: p.Note, At: now}); err != nil {
			return err
		}
		if err := q.Transfers.Complete(v.ID, p.TransferID, now); err != nil {
			return err
		}
		counted = true
		moved := v
		moved.RoomID, moved.TransferNote = p.TargetRoomID, store.Sealed(p.Note)
		card := cardPayload(moved, plan.ReceiverMessage())
		card["transferredFromRoomId"] = p.SourceRoomID
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(clinic.EventTransferred, map[string]any{"visitId": v.ID, "roomId": p.TargetRoomID, "message": plan.PatientMessageDone(), "name": plan.TargetDisplayName}),
			w.toRoom(p.SourceRoomID, clinic.EventTransferred, map[string]any{"visitId": v.ID, "targetRoomId": p.TargetRoomID, "message": plan.SenderMessage()}),
			w.toRoom(p.TargetRoomID, clinic.EventTransferred, card),
			w.audit(clinic.ActorUser, p.ActorID, clinic.AuditTransferCompleted, &p.SourceRoomID, &p.TargetRoomID, "transfer "+p.TransferID),
		)
	})
	if err == nil && counted {
		a.Metrics.Transfer("completed")
	}
	return err
}

// ReturnToSource is the transfer's compensation: the patient waits in the
// source room again, and both sides are told why.
func (a *Activities) ReturnToSource(ctx context.Context, p TransferParams, reason string) error {
	counted := false
	err := a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		if v.State != store.VisitTransferring {
			return nil // done by an earlier attempt
		}
		source, err := loadRoom(q, v.RoomID)
		if err != nil {
			return err
		}
		display, err := q.Rooms.DisplayName(source)
		if err != nil {
			return err
		}
		now := a.now()
		if err := q.Visits.BackToWaiting(v.ID, now); err != nil {
			return err
		}
		counted = true
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(clinic.EventTransferFailed, map[string]any{"visitId": v.ID, "roomId": v.RoomID, "name": display,
				"message": "We could not transfer you. You are back in " + display + "'s waiting room"}),
			w.toRoom(v.RoomID, clinic.EventTransferFailed, map[string]any{"visitId": v.ID, "targetRoomId": p.TargetRoomID,
				"message": "Transfer failed: " + reason + ". The patient is back in your waiting room"}),
			w.audit(clinic.ActorUser, p.ActorID, clinic.AuditTransferFailed, &p.SourceRoomID, &p.TargetRoomID, "transfer "+p.TransferID+": "+reason),
		)
	})
	if err == nil && counted {
		a.Metrics.Transfer("compensated")
	}
	return err
}

// EndVisit ends the visit: out of any call, projection ended, events, audit.
func (a *Activities) EndVisit(ctx context.Context, p EndParams) error {
	if p.CallID != "" {
		if _, err := a.DetachMedia(ctx, TransferParams{VisitID: p.VisitID, CallID: p.CallID}); err != nil {
			return err
		}
	}
	return a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		if v.State == store.VisitEnded {
			return nil
		}
		now := a.now()
		if err := q.Visits.Ended(v.ID, p.Reason, now); err != nil {
			return err
		}
		// Guests invited or waiting have nothing to wait for any more.
		guests, err := q.Guests.Present(v.ID)
		if err != nil {
			return err
		}
		if err := settleGuests(q, guests, false, now); err != nil {
			return err
		}
		typ := clinic.EndEvent(p.Reason)
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(typ, map[string]any{"visitId": v.ID, "reason": p.Reason}),
			w.toRoom(v.RoomID, typ, map[string]any{"visitId": v.ID, "reason": p.Reason}),
			w.audit(p.ActorKind, p.ActorID, typ, &v.RoomID, nil, p.Reason),
		)
	})
}

// BeginHold checks that the provider may put the visit's patient back into
// its waiting room: the provider acts for the room, and the patient is in
// the call. It changes nothing.
func (a *Activities) BeginHold(ctx context.Context, p HoldParams) (HoldPlan, error) {
	var plan HoldPlan
	err := a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		actor, err := providerForVisit(q, p.ActorID, v)
		if err != nil {
			return err
		}
		plan = HoldPlan{ActorName: actor.DisplayName}
		switch {
		case v.State == store.VisitWaiting && v.CallID == nil:
			return nil // an earlier attempt of this hold got through
		case v.State != store.VisitInCall || v.CallID == nil || *v.CallID != p.CallID:
			return AsApplicationError(clinic.ErrPatientNotInCall)
		}
		return nil
	})
	return plan, err
}

// Held puts the visit back into its waiting room once its media left the
// call, and tells both sides; run again, it changes nothing.
func (a *Activities) Held(ctx context.Context, p HoldParams, plan HoldPlan) error {
	return a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		if v.State != store.VisitInCall {
			return nil // done by an earlier attempt
		}
		now := a.now()
		if err := q.Visits.BackFromCall(v.ID, p.CallID, now); err != nil {
			return err
		}
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(clinic.EventHeld, map[string]any{"visitId": v.ID, "message": clinic.HeldMessage(plan.ActorName), "name": plan.ActorName}),
			w.toRoom(v.RoomID, clinic.EventHeld, map[string]any{"visitId": v.ID, "callId": p.CallID}),
			w.audit(clinic.ActorUser, p.ActorID, clinic.AuditHeld, &v.RoomID, nil, "call "+p.CallID),
		)
	})
}

// roomInCall refuses one more person in call callID when it is full
// (clinic.CheckCallRoom); a provider actorID who is not in it yet comes in
// too and needs a place as well.
func (a *Activities) roomInCall(q store.Queries, callID, actorID string) error {
	people, err := q.Calls.People(callID)
	if err != nil {
		return err
	}
	if actorID != "" {
		in, err := q.Calls.IsParticipant(callID, actorID)
		if err != nil {
			return err
		}
		if !in {
			people++
		}
	}
	return AsApplicationError(clinic.CheckCallRoom(people))
}
