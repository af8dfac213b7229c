package store

import (
	"time"

	"github.com/handoff-telehealth/handoff/clinic"
)

// Guests are the people brought into visits' calls by a link. Every change
// of state is guarded by the state it expects, so two changes that race
// (a guest arriving as the visit moves on) resolve to one.
type Guests struct{ c conn }

// Create writes a new invitation.
func (q Guests) Create(g Guest) error { return q.c.g.Create(&g).Error }

// Get is guest id.
func (q Guests) Get(id string) (Guest, error) { return take[Guest](q.c, "id = ?", id) }

// OfVisit is guest id of visit visitID.
func (q Guests) OfVisit(id, visitID string) (Guest, error) {
	return take[Guest](q.c, "id = ? AND visit_id = ?", id, visitID)
}

// ByLinkHash is the guest whose link hashes to hash.
func (q Guests) ByLinkHash(hash string) (Guest, error) {
	return take[Guest](q.c, "link_hash = ?", hash)
}

// ByTokenHash is the guest whose token hashes to hash.
func (q Guests) ByTokenHash(hash string) (Guest, error) {
	return take[Guest](q.c, "token_hash = ?", hash)
}

// Present lists the guests of visitID that are not gone, oldest first.
func (q Guests) Present(visitID string) ([]Guest, error) {
	var out []Guest
	err := q.c.g.Where("visit_id = ? AND state <> ?", visitID, clinic.GuestGone).Order("created_at, id").Find(&out).Error
	return out, err
}

// PresentIn lists, for each of visitIDs, its guests that are not gone.
func (q Guests) PresentIn(visitIDs []string) (map[string][]Guest, error) {
	out := map[string][]Guest{}
	if len(visitIDs) == 0 {
		return out, nil
	}
	var rows []Guest
	err := q.c.g.Where("visit_id IN ? AND state <> ?", visitIDs, clinic.GuestGone).Order("created_at, id").Find(&rows).Error
	for _, g := range rows {
		out[g.VisitID] = append(out[g.VisitID], g)
	}
	return out, err
}

// InCall counts the guests in call callID.
func (q Guests) InCall(callID string) (int, error) {
	var n int64
	err := q.c.g.Model(&Guest{}).Where("call_id = ? AND state = ?", callID, clinic.GuestInCall).Count(&n).Error
	return int(n), err
}

// Arrived spends the link: the guest named themself and holds tokenHash
// now. False if the link was used already (or the guest is gone).
func (q Guests) Arrived(id, name, tokenHash string, at time.Time) (bool, error) {
	res := q.c.g.Model(&Guest{}).Where("id = ? AND state = ? AND token_hash IS NULL", id, clinic.GuestInvited).
		Updates(map[string]any{"state": clinic.GuestWaiting, "name": Sealed(name), "token_hash": tokenHash, "arrived_at": at})
	return res.RowsAffected > 0, res.Error
}

// NewLink gives an unused invitation a new link (the old one stops
// working); false once the link was used.
func (q Guests) NewLink(id, linkHash string) (bool, error) {
	res := q.c.g.Model(&Guest{}).Where("id = ? AND state = ? AND token_hash IS NULL", id, clinic.GuestInvited).Update("link_hash", linkHash)
	return res.RowsAffected > 0, res.Error
}

// Admitted lets a waiting guest into callID; false if it was not waiting.
func (q Guests) Admitted(id, callID string, at time.Time) (bool, error) {
	res := q.c.g.Model(&Guest{}).Where("id = ? AND state = ?", id, clinic.GuestWaiting).
		Updates(map[string]any{"state": clinic.GuestInCall, "call_id": callID, "admitted_at": at})
	return res.RowsAffected > 0, res.Error
}

// Gone ends guest id's place in the visit; false if it had ended already.
func (q Guests) Gone(id, reason string, at time.Time) (bool, error) {
	res := q.c.g.Model(&Guest{}).Where("id = ? AND state <> ?", id, clinic.GuestGone).
		Updates(map[string]any{"state": clinic.GuestGone, "gone_reason": reason, "gone_at": at, "call_id": nil})
	return res.RowsAffected > 0, res.Error
}

// BackToLobby puts the guest, in a call the patient left, back among those
// waiting to be let in; false if it was not in a call.
func (q Guests) BackToLobby(id string) (bool, error) {
	res := q.c.g.Model(&Guest{}).Where("id = ? AND state = ?", id, clinic.GuestInCall).
		Updates(map[string]any{"state": clinic.GuestWaiting, "call_id": nil})
	return res.RowsAffected > 0, res.Error
}

// People counts who is in call callID: its providers, its patients and
// its guests (clinic.CheckCallRoom).
func (q Calls) People(callID string) (int, error) {
	var providers, patients int64
	if err := q.c.g.Model(&CallParticipant{}).Where("call_id = ?", callID).Count(&providers).Error; err != nil {
		return 0, err
	}
	if err := q.c.g.Model(&Visit{}).Where("call_id = ? AND state = ?", callID, VisitInCall).Count(&patients).Error; err != nil {
		return 0, err
	}
	guests, err := Guests(q).InCall(callID)
	return int(providers+patients) + guests, err
}

// OfCall is call callID's chat, oldest first, at most limit: one of the
// copies of each message (every patient of the call holds one).
func (q Messages) OfCall(callID string, limit int) ([]Message, error) {
	var rows []Message
	if err := q.c.g.Where("call_id = ?", callID).Order("id").Limit(limit * MaxCallCopies).Find(&rows).Error; err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := rows[:0]
	for _, m := range rows {
		if m.SendID != "" && seen[m.SendID] {
			continue
		}
		seen[m.SendID] = true
		out = append(out, m)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// MaxCallCopies bounds the copies of one chat message: one per patient.
const MaxCallCopies = clinic.MaxCallParticipants
