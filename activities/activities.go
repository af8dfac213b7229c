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
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

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

// Activities are the visit's activities with what they depend on.
type Activities struct {
	DB    *store.DB
	Media Media
	// Metrics counts transfer outcomes; nil counts nothing.
	Metrics *metrics.Registry
	// Now is the clock; tests may set it.
	Now func() time.Time
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// tx runs fn in a transaction and, once it commits, wakes the live-event
// streams of this process (other processes hear PostgreSQL's NOTIFY).
func (a *Activities) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if err := a.DB.WithContext(ctx).Transaction(fn); err != nil {
		return err
	}
	a.DB.EventsCommitted()
	return nil
}

func (a *Activities) writer(tx *gorm.DB, clinicID, visitID string, now time.Time) writer {
	return writer{db: a.DB, tx: tx, clinicID: clinicID, visitID: visitID, now: now, began: new(bool)}
}

// PatientParticipant is the media participant id of a visit's patient.
func PatientParticipant(visitID string) string { return "visit:" + visitID }

// ProviderParticipant is the media participant id of a user.
func ProviderParticipant(userID string) string { return "user:" + userID }

// RecordCheckIn writes the visit's projection row, its event and audit row.
func (a *Activities) RecordCheckIn(ctx context.Context, p CheckInParams) error {
	return a.tx(ctx, func(tx *gorm.DB) error {
		room, err := loadRoom(tx, p.RoomID)
		if err != nil {
			return err
		}
		if room.ClinicID != p.ClinicID || room.DeletedAt != nil {
			return reject(ErrNotFound, "room not found")
		}
		now := a.now()
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&store.Visit{
			ID: p.VisitID, ClinicID: p.ClinicID, RoomID: p.RoomID, State: store.VisitWaiting,
			PatientName: p.PatientName, TokenHash: p.TokenHash, CheckedInAt: p.CheckedInAt.UTC(), UpdatedAt: now,
		})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error // 0 rows: an earlier attempt did it all
		}
		var v store.Visit
		if err := tx.Take(&v, "id = ?", p.VisitID).Error; err != nil {
			return err
		}
		w := a.writer(tx, p.ClinicID, p.VisitID, now)
		return w.all(
			w.toRoom(p.RoomID, "visit.checked_in", cardPayload(v, "")),
			w.audit("patient", p.VisitID, "visit.checked_in", &p.RoomID, nil, ""),
		)
	})
}

// Admit puts a waiting patient into a call: a new 1:1 call with the actor, or
// an existing call of the room, which becomes a group call.
func (a *Activities) Admit(ctx context.Context, p AdmitParams) (AdmitResult, error) {
	var res AdmitResult
	err := a.tx(ctx, func(tx *gorm.DB) error {
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		if v.State == store.VisitInCall && v.CallID != nil {
			// Done by an earlier attempt.
			var call store.Call
			if err := tx.Take(&call, "id = ?", *v.CallID).Error; err != nil {
				return err
			}
			res = AdmitResult{CallID: call.ID, Kind: call.Kind}
			return nil
		}
		if v.State != store.VisitWaiting {
			return reject(ErrConflict, "the patient is not waiting")
		}
		actor, err := loadUser(tx, p.ActorID, v.ClinicID)
		if err != nil {
			return err
		}
		room, err := loadRoom(tx, v.RoomID)
		if err != nil {
			return err
		}
		if err := requireAccess(tx, actor, room, "you do not have access to this room"); err != nil {
			return err
		}
		now := a.now()
		var call store.Call
		if p.CallID == "" {
			call = store.Call{ID: uuid.NewString(), ClinicID: v.ClinicID, RoomID: v.RoomID, Kind: store.CallOneToOne, MediaNode: "local", StartedAt: now}
			if err := tx.Create(&call).Error; err != nil {
				return err
			}
		} else {
			err := tx.Take(&call, "id = ? AND clinic_id = ?", p.CallID, v.ClinicID).Error
			if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && call.RoomID != v.RoomID) {
				return reject(ErrNotFound, "call not found in this room")
			} else if err != nil {
				return err
			}
			if call.EndedAt != nil {
				return reject(ErrConflict, "that call has ended")
			}
			if call.Kind != store.CallGroup {
				if err := tx.Model(&call).Update("kind", store.CallGroup).Error; err != nil {
					return err
				}
				call.Kind = store.CallGroup
			}
		}
		if err := tx.Model(&store.Visit{}).Where("id = ?", v.ID).
			Updates(map[string]any{"state": store.VisitInCall, "call_id": call.ID, "updated_at": now}).Error; err != nil {
			return err
		}
		res = AdmitResult{CallID: call.ID, Kind: call.Kind}
		w := a.writer(tx, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient("visit.admitted", map[string]any{"visitId": v.ID, "callId": call.ID, "message": actor.DisplayName + " is ready to see you"}),
			w.toRoom(v.RoomID, "visit.admitted", map[string]any{"visitId": v.ID, "callId": call.ID, "kind": call.Kind, "admittedBy": actor.DisplayName}),
			w.audit("user", actor.ID, "visit.admitted", &v.RoomID, nil, "call "+call.ID),
		)
	})
	if err != nil {
		return AdmitResult{}, err
	}
	// Media after the commit: the call exists in the database before anyone
	// can be bound into it. Every step is idempotent, and the call is
	// (re)created each time: a media node that restarted has forgotten it.
	if err := a.Media.CreateCall(ctx, res.CallID); err != nil {
		return AdmitResult{}, err
	}
	if err := a.Media.Attach(ctx, res.CallID, ProviderParticipant(p.ActorID)); err != nil {
		return AdmitResult{}, err
	}
	if err := a.Media.Attach(ctx, res.CallID, PatientParticipant(p.VisitID)); err != nil {
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
	err := a.tx(ctx, func(tx *gorm.DB) error {
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		if v.State != store.VisitInCall || v.CallID == nil || *v.CallID != p.CallID {
			return reject(ErrConflict, "the patient is not in that call")
		}
		switch p.ActorKind {
		case "patient":
			participant = PatientParticipant(v.ID)
		case "user":
			actor, err := loadUser(tx, p.ActorID, v.ClinicID)
			if err != nil {
				return err
			}
			room, err := loadRoom(tx, v.RoomID)
			if err != nil {
				return err
			}
			if err := requireAccess(tx, actor, room, "you do not have access to this room"); err != nil {
				return err
			}
			participant = ProviderParticipant(actor.ID)
		default:
			return reject(ErrInvalid, "a rejoin is by the patient or a provider")
		}
		w := a.writer(tx, v.ClinicID, v.ID, a.now())
		return w.audit(p.ActorKind, p.ActorID, "call.rejoined", &v.RoomID, nil, "call "+p.CallID)()
	})
	if err != nil {
		return err
	}
	if err := a.Media.CreateCall(ctx, p.CallID); err != nil {
		return err
	}
	return a.Media.Attach(ctx, p.CallID, participant)
}

// BeginTransfer checks every rule that a database fact decides, then marks
// the visit as transferring and tells the patient where they are going.
// It changes nothing when a rule is broken.
func (a *Activities) BeginTransfer(ctx context.Context, p TransferParams) (TransferPlan, error) {
	var plan TransferPlan
	err := a.tx(ctx, func(tx *gorm.DB) error {
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		done, err := transferCompleted(tx, p)
		if err != nil {
			return err
		}
		if done {
			// Run again after this transfer finished: a local activity
			// whose workflow task was lost with its worker. Plan it as it
			// was, from the source room, and change nothing.
			v.RoomID, v.State = p.SourceRoomID, store.VisitTransferring
		}
		plan, err = planTransfer(tx, v, p)
		if err != nil || done {
			return err
		}
		switch v.State {
		case store.VisitTransferring:
			return nil // an earlier attempt of this transfer got here
		case store.VisitWaiting, store.VisitInCall:
		default:
			return reject(ErrConflict, "the visit has ended")
		}
		now := a.now()
		if err := tx.Model(&store.Visit{}).Where("id = ? AND state = ?", v.ID, v.State).
			Updates(map[string]any{"state": store.VisitTransferring, "updated_at": now}).Error; err != nil {
			return err
		}
		w := a.writer(tx, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient("visit.transfer_started", map[string]any{"visitId": v.ID, "message": plan.PatientMessageStarting()}),
			w.toRoom(v.RoomID, "visit.transfer_started", map[string]any{"visitId": v.ID, "targetRoomId": p.TargetRoomID}),
			w.audit("user", p.ActorID, "transfer.started", &p.SourceRoomID, &p.TargetRoomID, "transfer "+p.TransferID),
		)
	})
	return plan, err
}

// planTransfer applies the spec's rules to the database's facts.
// transferCompleted reports whether transfer p already moved the patient.
func transferCompleted(tx *gorm.DB, p TransferParams) (bool, error) {
	var n int64
	err := tx.Model(&store.AuditEvent{}).
		Where("visit_id = ? AND action = ? AND detail = ?", p.VisitID, "transfer.completed", "transfer "+p.TransferID).
		Count(&n).Error
	return n > 0, err
}

func planTransfer(tx *gorm.DB, v store.Visit, p TransferParams) (TransferPlan, error) {
	var cl store.Clinic
	if err := tx.Take(&cl, "id = ?", v.ClinicID).Error; err != nil {
		return TransferPlan{}, err
	}
	actor, err := loadUser(tx, p.ActorID, v.ClinicID)
	if err != nil {
		return TransferPlan{}, err
	}
	if err := clinic.MayTransfer(cl.Plan); err != nil {
		return TransferPlan{}, AsApplicationError(err)
	}
	source, err := loadRoom(tx, p.SourceRoomID)
	if err != nil {
		return TransferPlan{}, err
	}
	if err := requireAccess(tx, actor, source, "you do not have access to the patient's room"); err != nil {
		return TransferPlan{}, err
	}
	target, err := loadRoom(tx, p.TargetRoomID)
	if err != nil {
		return TransferPlan{}, err
	}
	if target.ClinicID != v.ClinicID || target.DeletedAt != nil {
		return TransferPlan{}, reject(ErrNotFound, "target room not found")
	}
	if v.State != store.VisitTransferring { // a re-run of its own BeginTransfer is not a same-room transfer
		if err := clinic.CheckTarget(v.RoomID, target.ID); err != nil {
			return TransferPlan{}, AsApplicationError(err)
		}
	}
	display, err := store.DisplayName(tx, target)
	if err != nil {
		return TransferPlan{}, err
	}
	plan := TransferPlan{ClinicID: v.ClinicID, ActorName: actor.DisplayName, TargetDisplayName: display, TargetRoomName: target.Name}
	if p.CallID != "" {
		var call store.Call
		if err := tx.Take(&call, "id = ?", p.CallID).Error; err != nil {
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
	err := a.tx(ctx, func(tx *gorm.DB) error {
		var apps []store.AppSession
		if err := tx.Where("call_id = ? AND closed_at IS NULL", p.CallID).Find(&apps).Error; err != nil {
			return err
		}
		if len(apps) == 0 {
			return nil
		}
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		now := a.now()
		ids := make([]string, len(apps))
		for i, app := range apps {
			ids[i] = app.ID
		}
		if err := tx.Model(&store.AppSession{}).Where("id IN ?", ids).
			Updates(map[string]any{"closed_at": now, "data": nil}).Error; err != nil {
			return err
		}
		w := a.writer(tx, v.ClinicID, v.ID, now)
		for _, app := range apps {
			if err := w.all(
				w.toRoom(p.SourceRoomID, "app.closed", map[string]any{"callId": p.CallID, "appId": app.ID, "app": app.App, "reason": "transfer"}),
				w.audit("system", "transfer", "app.closed", &p.SourceRoomID, nil, app.App+" "+app.ID),
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
	var call store.Call
	if err := a.DB.WithContext(ctx).Take(&call, "id = ?", p.CallID).Error; err != nil {
		return DetachResult{}, err
	}
	if err := a.Media.Detach(ctx, p.CallID, PatientParticipant(p.VisitID)); err != nil {
		return DetachResult{}, err
	}
	oneToOne := call.Kind == store.CallOneToOne
	if oneToOne {
		if err := a.Media.EndCall(ctx, p.CallID); err != nil {
			return DetachResult{}, err
		}
	}
	err := a.tx(ctx, func(tx *gorm.DB) error {
		now := a.now()
		// A visit still in_call keeps its call id until the step that moves
		// it on (EndVisit) clears both together.
		if err := tx.Model(&store.Visit{}).Where("id = ? AND call_id = ? AND state <> ?", p.VisitID, p.CallID, store.VisitInCall).
			Updates(map[string]any{"call_id": nil, "updated_at": now}).Error; err != nil {
			return err
		}
		if !oneToOne {
			return nil
		}
		res := tx.Model(&store.Call{}).Where("id = ? AND ended_at IS NULL", p.CallID).Update("ended_at", now)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		w := a.writer(tx, call.ClinicID, p.VisitID, now)
		return w.toRoom(call.RoomID, "call.ended", map[string]any{"callId": call.ID, "reason": "transfer"})()
	})
	return DetachResult{CallEnded: oneToOne}, err
}

// RetargetRoom moves the patient into the target waiting room and, in the
// same transaction, writes the three sides' events and the audit row: the
// move and its notification commit together or not at all.
func (a *Activities) RetargetRoom(ctx context.Context, p TransferParams, plan TransferPlan) error {
	counted := false // counted once, not again by a retry that finds it done
	err := a.tx(ctx, func(tx *gorm.DB) error {
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		if v.RoomID == p.TargetRoomID && v.State == store.VisitWaiting {
			return nil // an earlier attempt did it
		}
		if v.State != store.VisitTransferring || v.RoomID != p.SourceRoomID {
			return reject(ErrConflict, "the visit is not being transferred")
		}
		target, err := loadRoom(tx, p.TargetRoomID)
		if err != nil && !isRejection(err, ErrNotFound) {
			return err
		}
		if err != nil || target.DeletedAt != nil {
			return reject(ErrTargetRoomGone, "the target room no longer exists")
		}
		now := a.now()
		if err := tx.Model(&store.Visit{}).Where("id = ? AND state = ?", v.ID, store.VisitTransferring).Updates(map[string]any{
			"room_id": p.TargetRoomID, "state": store.VisitWaiting, "call_id": nil,
			"transferred_by_id": p.ActorID, "transferred_from_room_id": p.SourceRoomID,
			"transfer_note": p.Note, "transfers": gorm.Expr("transfers + 1"), "updated_at": now,
		}).Error; err != nil {
			return err
		}
		counted = true
		moved := v
		moved.RoomID, moved.TransferNote = p.TargetRoomID, p.Note
		card := cardPayload(moved, plan.ReceiverMessage())
		card["transferredFromRoomId"] = p.SourceRoomID
		w := a.writer(tx, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient("visit.transferred", map[string]any{"visitId": v.ID, "roomId": p.TargetRoomID, "message": plan.PatientMessageDone()}),
			w.toRoom(p.SourceRoomID, "visit.transferred", map[string]any{"visitId": v.ID, "targetRoomId": p.TargetRoomID, "message": plan.SenderMessage()}),
			w.toRoom(p.TargetRoomID, "visit.transferred", card),
			w.audit("user", p.ActorID, "transfer.completed", &p.SourceRoomID, &p.TargetRoomID, "transfer "+p.TransferID),
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
	err := a.tx(ctx, func(tx *gorm.DB) error {
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		if v.State != store.VisitTransferring {
			return nil // done by an earlier attempt
		}
		source, err := loadRoom(tx, v.RoomID)
		if err != nil {
			return err
		}
		display, err := store.DisplayName(tx, source)
		if err != nil {
			return err
		}
		now := a.now()
		if err := tx.Model(&store.Visit{}).Where("id = ? AND state = ?", v.ID, store.VisitTransferring).
			Updates(map[string]any{"state": store.VisitWaiting, "call_id": nil, "updated_at": now}).Error; err != nil {
			return err
		}
		counted = true
		w := a.writer(tx, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient("visit.transfer_failed", map[string]any{"visitId": v.ID, "roomId": v.RoomID,
				"message": "We could not transfer you. You are back in " + display + "'s waiting room"}),
			w.toRoom(v.RoomID, "visit.transfer_failed", map[string]any{"visitId": v.ID, "targetRoomId": p.TargetRoomID,
				"message": "Transfer failed: " + reason + ". The patient is back in your waiting room"}),
			w.audit("user", p.ActorID, "transfer.failed", &p.SourceRoomID, &p.TargetRoomID, "transfer "+p.TransferID+": "+reason),
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
	return a.tx(ctx, func(tx *gorm.DB) error {
		v, err := loadVisit(tx, p.VisitID)
		if err != nil {
			return err
		}
		if v.State == store.VisitEnded {
			return nil
		}
		now := a.now()
		if err := tx.Model(&store.Visit{}).Where("id = ? AND state <> ?", v.ID, store.VisitEnded).Updates(map[string]any{
			"state": store.VisitEnded, "call_id": nil, "ended_at": now, "end_reason": p.Reason, "updated_at": now,
		}).Error; err != nil {
			return err
		}
		typ := "visit.ended"
		if p.Reason == "left" {
			typ = "visit.left"
		}
		w := a.writer(tx, v.ClinicID, v.ID, now)
		return w.all(
			w.toPatient(typ, map[string]any{"visitId": v.ID, "reason": p.Reason}),
			w.toRoom(v.RoomID, typ, map[string]any{"visitId": v.ID, "reason": p.Reason}),
			w.audit(p.ActorKind, p.ActorID, typ, &v.RoomID, nil, p.Reason),
		)
	})
}

func isRejection(err error, errType string) bool {
	var appErr interface{ Type() string }
	return errors.As(err, &appErr) && appErr.Type() == errType
}
