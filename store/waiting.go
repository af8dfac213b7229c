package store

import "time"

// SetWaitAlert sets after how many minutes a waiting patient's card stands out.
func (q Clinics) SetWaitAlert(id string, minutes int) error {
	return q.c.g.Model(&Clinic{}).Where("id = ?", id).Update("wait_alert_minutes", minutes).Error
}

// notEnded is the predicate of the partial indexes visits_waiting_by_room
// and visits_in_line,
// written out in the queries that should use it: a database uses a partial
// index only for a query whose WHERE clause contains (SQLite) or provably
// implies (PostgreSQL) the predicate, and neither can see that through a
// bound parameter. Asked with `state <> ?`, SQLite scanned every visit
// ever kept, on every check-in and every page's view of its visit
// (BENCHMARKS.md).
const notEnded = "state <> '" + string(VisitEnded) + "'"

// PatientVisit is a visit with what its patient's page shows beside it,
// read in one query: its place in line and its room's owner.
type PatientVisit struct {
	Visit `gorm:"embedded"`
	// Ahead counts the patients waiting in its room who checked in before
	// it (by check-in time, then id), whatever its own state: its place in
	// line is this plus one.
	Ahead int64
	// OwnerName is the display name of its room's owner ("" for a room
	// without one), for clinic.DisplayName.
	OwnerName string
}

// ForPatient is visit id with its place in line and its room's owner: the
// three reads of a patient's view of the visit in one (each read is a
// round trip, and a check-in's answer makes them).
func (q Visits) ForPatient(id string) (PatientVisit, error) {
	var pv PatientVisit
	err := q.c.g.Model(&Visit{}).Select("visits.*, "+
		"(SELECT COUNT(*) FROM visits AS ahead WHERE ahead.room_id = visits.room_id AND ahead."+notEnded+" AND ahead.state = ? "+
		"AND (ahead.checked_in_at < visits.checked_in_at OR (ahead.checked_in_at = visits.checked_in_at AND ahead.id < visits.id))) AS ahead, "+
		"COALESCE((SELECT users.display_name FROM rooms JOIN users ON users.id = rooms.owner_id WHERE rooms.id = visits.room_id), '') AS owner_name",
		VisitWaiting).Where("visits.id = ?", id).Take(&pv).Error
	return pv, err
}

// BackFromCall puts a visit in call callID back into its waiting room.
func (q Visits) BackFromCall(id, callID string, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND state = ? AND call_id = ?", id, VisitInCall, callID).
		Updates(map[string]any{"state": VisitWaiting, "call_id": nil, "updated_at": at}).Error
}
