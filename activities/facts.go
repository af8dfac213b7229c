package activities

import (
	"errors"
	"time"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// found turns a missing row into the domain's "not found" rejection,
// non-retryably; other errors pass (they are retried).
func found[T any](row T, err error, what string) (T, error) {
	if errors.Is(err, store.ErrNotFound) {
		return row, AsApplicationError(clinic.NotFoundError(what))
	}
	return row, err
}

func loadVisit(q store.Queries, id string) (store.Visit, error) {
	v, err := q.Visits.Get(id)
	return found(v, err, "visit")
}

// loadUser finds a user of the clinic; users of other clinics are unknown.
func loadUser(q store.Queries, id, clinicID string) (store.User, error) {
	u, err := q.Users.InClinic(id, clinicID)
	return found(u, err, "user")
}

func loadRoom(q store.Queries, id string) (store.Room, error) {
	r, err := q.Rooms.Get(id)
	return found(r, err, "room")
}

// actsFor tells whether u may act for r (clinic.MayActFor).
func actsFor(q store.Queries, u store.User, r store.Room) (bool, error) {
	return q.Rooms.CanActFor(u, r)
}

// requireAccess rejects, non-retryably, an actor who may not act for r.
func requireAccess(q store.Queries, u store.User, r store.Room, refusal *clinic.Rejection) error {
	ok, err := actsFor(q, u, r)
	if err != nil {
		return err
	}
	if !ok {
		return AsApplicationError(refusal)
	}
	return nil
}

// providerForVisit loads the provider acting on visit v, who must be able to
// act for the room the visit is in.
func providerForVisit(q store.Queries, actorID string, v store.Visit) (store.User, error) {
	actor, err := loadUser(q, actorID, v.ClinicID)
	if err != nil {
		return store.User{}, err
	}
	room, err := loadRoom(q, v.RoomID)
	if err != nil {
		return store.User{}, err
	}
	return actor, requireAccess(q, actor, room, clinic.ErrNoAccessToRoom)
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

// writer appends a visit's outbox events and audit rows inside one
// transaction (store.DB.InTx).
type writer struct {
	q        store.Queries
	clinicID string
	visitID  string
	now      time.Time
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

func (w writer) toPatient(typ string, payload map[string]any) step {
	return func() error { return w.q.Outbox.ToPatient(w.clinicID, w.visitID, typ, payload, w.now) }
}

func (w writer) toRoom(roomID, typ string, payload map[string]any) step {
	return func() error { return w.q.Outbox.ToRoom(w.clinicID, w.visitID, roomID, typ, payload, w.now) }
}

func (w writer) audit(actorKind, actorID, action string, roomID, targetRoomID *string, detail string) step {
	return func() error {
		visitID := w.visitID
		return w.q.Audit.Append(store.AuditEvent{ClinicID: w.clinicID, At: w.now, ActorKind: actorKind, ActorID: actorID,
			Action: action, VisitID: &visitID, RoomID: roomID, TargetRoomID: targetRoomID, Detail: detail})
	}
}
