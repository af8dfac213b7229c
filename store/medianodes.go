package store

import (
	"time"

	"gorm.io/gorm/clause"
)

// MediaNode is a media node as it registers itself: where pages
// (PublicURL, its signaling WebSocket) and the workers (ControlURL) reach
// it, how many participants it takes and has, and whether it is draining.
type MediaNode struct {
	ID           string `gorm:"primaryKey"`
	PublicURL    string
	ControlURL   string
	Capacity     int
	Participants int
	Draining     bool
	StartedAt    time.Time
	HeartbeatAt  time.Time
}

// MediaNodes is the registry of media nodes.
type MediaNodes struct{ c conn }

// Heartbeat records n as alive at n.HeartbeatAt, registering it on its
// first beat (its StartedAt is kept from then on).
func (q MediaNodes) Heartbeat(n MediaNode) error {
	return q.c.g.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"public_url", "control_url", "capacity", "participants", "draining", "heartbeat_at"}),
	}).Create(&n).Error
}

// All lists every registered node, live or not, by id.
func (q MediaNodes) All() ([]MediaNode, error) {
	var out []MediaNode
	return out, q.c.g.Order("id").Find(&out).Error
}

// Get is one node's row.
func (q MediaNodes) Get(id string) (MediaNode, error) { return take[MediaNode](q.c, "id = ?", id) }

// Remove takes a node that stopped cleanly out of the registry.
func (q MediaNodes) Remove(id string) error {
	return q.c.g.Where("id = ?", id).Delete(&MediaNode{}).Error
}

// OpenCallsByNode counts a clinic's calls that have not ended, by the node
// each lives on.
func (q Calls) OpenCallsByNode(clinicID string) (map[string]int, error) {
	var rows []struct {
		MediaNode string
		N         int
	}
	if err := q.c.g.Model(&Call{}).Select("media_node, COUNT(*) AS n").
		Where("clinic_id = ? AND ended_at IS NULL", clinicID).Group("media_node").Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.MediaNode] = r.N
	}
	return out, nil
}

// MovedToNode records that a call now lives on node `to`, if it still lived
// on `from` (the node found gone): of two callers that move the same call
// at once, the first one's choice stands and the other reads it back.
func (q Calls) MovedToNode(callID, from, to string) (Call, error) {
	if err := q.c.g.Model(&Call{}).Where("id = ? AND media_node = ?", callID, from).Update("media_node", to).Error; err != nil {
		return Call{}, err
	}
	return q.Get(callID)
}
