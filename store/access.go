package store

import (
	"gorm.io/gorm"

	"github.com/handoff-telehealth/handoff/clinic"
)

// CanActFor tells whether u may act for room r: its own personal room, or a
// shared room it is a member of, whatever its role.
func CanActFor(tx *gorm.DB, u User, r Room) (bool, error) {
	if r.ClinicID != u.ClinicID || r.DeletedAt != nil {
		return false, nil
	}
	if r.Kind == RoomPersonal {
		return r.OwnerID != nil && *r.OwnerID == u.ID, nil
	}
	var n int64
	err := tx.Model(&RoomMember{}).Where("room_id = ? AND user_id = ?", r.ID, u.ID).Count(&n).Error
	return n > 0, err
}

// RoomsOf lists the ids of the rooms u may act for.
func RoomsOf(tx *gorm.DB, u User) ([]string, error) {
	var ids []string
	err := tx.Model(&Room{}).Where(`clinic_id = ? AND deleted_at IS NULL AND
		((kind = 'personal' AND owner_id = ?) OR (kind = 'shared' AND id IN (SELECT room_id FROM room_members WHERE user_id = ?)))`,
		u.ClinicID, u.ID, u.ID).Pluck("id", &ids).Error
	return ids, err
}

// DisplayName is the <name> patients read (clinic.DisplayName), with the
// owner read from the database.
func DisplayName(tx *gorm.DB, r Room) (string, error) {
	owner := ""
	if r.Kind == RoomPersonal && r.OwnerID != nil {
		var u User
		if err := tx.Take(&u, "id = ?", *r.OwnerID).Error; err != nil {
			return "", err
		}
		owner = u.DisplayName
	}
	return clinic.DisplayName(r.Kind, r.Name, owner), nil
}
