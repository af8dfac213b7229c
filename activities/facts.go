package activities

import (
	"encoding/json"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/handoff-telehealth/handoff/store"
)

func loadVisit(tx *gorm.DB, id string) (store.Visit, error) {
	var v store.Visit
	err := tx.Take(&v, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return v, reject(ErrNotFound, "visit not found")
	}
	return v, err
}

// loadUser finds a user of the clinic; users of other clinics are unknown.
func loadUser(tx *gorm.DB, id, clinicID string) (store.User, error) {
	var u store.User
	err := tx.Take(&u, "id = ? AND clinic_id = ?", id, clinicID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return u, reject(ErrNotFound, "user not found")
	}
	return u, err
}

func loadRoom(tx *gorm.DB, id string) (store.Room, error) {
	var r store.Room
	err := tx.Take(&r, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, reject(ErrNotFound, "room not found")
	}
	return r, err
}

// requireAccess rejects, non-retryably, an actor without access to r.
func requireAccess(tx *gorm.DB, u store.User, r store.Room, msg string) error {
	ok, err := store.CanActFor(tx, u, r)
	if err != nil {
		return err
	}
	if !ok {
		return reject(ErrForbidden, msg)
	}
	return nil
}

// cardPayload is the Patient Information Card as a room's providers see it.
func cardPayload(v store.Visit, transferredBy string) map[string]any {
	card := map[string]any{
		"visitId":     v.ID,
		"roomId":      v.RoomID,
		"patientName": v.PatientName,
		"checkedInAt": v.CheckedInAt.UTC().Format(time.RFC3339Nano),
	}
	if transferredBy != "" {
		card["message"] = transferredBy
	}
	if v.TransferNote != "" {
		card["note"] = v.TransferNote
	}
	return card
}

// writer appends outbox events and audit rows inside one transaction.
type writer struct {
	db       *store.DB
	tx       *gorm.DB
	clinicID string
	visitID  string
	now      time.Time
	began    *bool
}

type step func() error

func (w writer) all(steps ...step) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func (w writer) event(aud store.Audience, roomID *string, typ string, payload map[string]any) step {
	return func() error {
		if !*w.began {
			if err := w.db.BeginEvents(w.tx); err != nil {
				return err
			}
			*w.began = true
		}
		body, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		visitID := w.visitID
		return w.tx.Create(&store.Event{ClinicID: w.clinicID, Type: typ, Audience: aud, VisitID: &visitID,
			RoomID: roomID, Payload: string(body), CreatedAt: w.now}).Error
	}
}

func (w writer) toPatient(typ string, payload map[string]any) step {
	return w.event(store.AudiencePatient, nil, typ, payload)
}

func (w writer) toRoom(roomID, typ string, payload map[string]any) step {
	return w.event(store.AudienceRoom, &roomID, typ, payload)
}

func (w writer) audit(actorKind, actorID, action string, roomID, targetRoomID *string, detail string) step {
	return func() error {
		visitID := w.visitID
		return w.tx.Create(&store.AuditEvent{ClinicID: w.clinicID, At: w.now, ActorKind: actorKind, ActorID: actorID,
			Action: action, VisitID: &visitID, RoomID: roomID, TargetRoomID: targetRoomID, Detail: detail}).Error
	}
}
