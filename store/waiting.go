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

// WaitingAhead counts the patients waiting in roomID who checked in before
// visit v: v's place in line is this plus one.
func (q Visits) WaitingAhead(v Visit) (int, error) {
	var n int64
	err := q.c.g.Model(&Visit{}).Where("room_id = ? AND "+notEnded+" AND state = ? AND (checked_in_at < ? OR (checked_in_at = ? AND id < ?))",
		v.RoomID, VisitWaiting, v.CheckedInAt, v.CheckedInAt, v.ID).Count(&n).Error
	return int(n), err
}

// BackFromCall puts a visit in call callID back into its waiting room.
func (q Visits) BackFromCall(id, callID string, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND state = ? AND call_id = ?", id, VisitInCall, callID).
		Updates(map[string]any{"state": VisitWaiting, "call_id": nil, "updated_at": at}).Error
}
