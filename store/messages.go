package store

// Messages is the visits' conversations.
type Messages struct{ c conn }

// Add stores a message.
func (q Messages) Add(m *Message) error { return q.c.g.Create(m).Error }

// OfVisit is visitID's conversation, oldest first, at most limit.
func (q Messages) OfVisit(visitID string, limit int) ([]Message, error) {
	var out []Message
	err := q.c.g.Where("visit_id = ?", visitID).Order("id").Limit(limit).Find(&out).Error
	return out, err
}

// CountByVisit counts the messages of each of visitIDs.
func (q Messages) CountByVisit(visitIDs []string) (map[string]int, error) {
	out := map[string]int{}
	if len(visitIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		VisitID string
		N       int
	}
	err := q.c.g.Model(&Message{}).Select("visit_id, COUNT(*) AS n").Where("visit_id IN ?", visitIDs).Group("visit_id").Scan(&rows).Error
	for _, r := range rows {
		out[r.VisitID] = r.N
	}
	return out, err
}

// SetPatientChat turns patients' messages on or off for the clinic.
func (q Clinics) SetPatientChat(id string, on bool) error {
	return q.c.g.Model(&Clinic{}).Where("id = ?", id).Update("patient_chat", on).Error
}
