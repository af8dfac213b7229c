package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/handoff-telehealth/handoff/clinic"
)

// The queries of clinic administration: founding a clinic, people and
// their invitations and reset links, rooms' names, links and members.

// isUniqueViolation recognises a write refused by a UNIQUE constraint on
// either engine.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Founding is a new clinic and its first owner.
type Founding struct {
	ClinicName, OwnerFullName, OwnerDisplayName, Email, PasswordHash string
	Plan                                                             Plan
	// Address is where the request came from, for the audit ("" from the
	// command line).
	Address string
}

// FoundClinic creates a clinic, its owner and the owner's personal room,
// and audits it. A clinic name or email already in use is clinic.ErrTaken.
// Run it in a transaction (DB.InTx).
func (q Queries) FoundClinic(f Founding, now time.Time) (Clinic, User, error) {
	c := Clinic{ID: uuid.NewString(), Name: f.ClinicName, Plan: f.Plan, CreatedAt: now}
	if c.Plan == "" {
		c.Plan = PlanFree
	}
	if err := q.Clinics.c.g.Create(&c).Error; err != nil {
		if isUniqueViolation(err) {
			return c, User{}, clinic.ErrTaken("clinicName")
		}
		return c, User{}, err
	}
	u := User{ID: uuid.NewString(), ClinicID: c.ID, Email: f.Email, FullName: f.OwnerFullName, DisplayName: f.OwnerDisplayName,
		Role: RoleOwner, PasswordHash: f.PasswordHash, CreatedAt: now}
	if _, err := q.AddUser(u, now); err != nil {
		return c, u, err
	}
	err := q.Audit.Append(AuditEvent{ClinicID: c.ID, At: now, ActorKind: clinic.ActorUser, ActorID: u.ID, Action: clinic.AuditClinicCreated,
		Address: f.Address, TargetUserID: &u.ID, Detail: fmt.Sprintf("plan %s", c.Plan)})
	return c, u, err
}

// AddUser creates a user and, for a role that sees patients, their personal
// room with a link made from their display name. An email in use is
// clinic.ErrTaken.
func (q Queries) AddUser(u User, now time.Time) (*Room, error) {
	if err := q.Users.c.g.Create(&u).Error; err != nil {
		if isUniqueViolation(err) {
			return nil, clinic.ErrTaken("email")
		}
		return nil, err
	}
	return q.Rooms.EnsurePersonal(u, now)
}

// SetPlan changes a clinic's plan.
func (q Clinics) SetPlan(id string, plan Plan) error {
	return q.c.g.Model(&Clinic{}).Where("id = ?", id).Update("plan", plan).Error
}

// Count is how many clinics exist.
func (q Clinics) Count() (int64, error) {
	var n int64
	return n, q.c.g.Model(&Clinic{}).Count(&n).Error
}

// ActiveOwners counts a clinic's owners who can still sign in.
func (q Users) ActiveOwners(clinicID string) (int, error) {
	var n int64
	err := q.c.g.Model(&User{}).Where("clinic_id = ? AND role = ? AND deactivated_at IS NULL", clinicID, RoleOwner).Count(&n).Error
	return int(n), err
}

// SetProfile changes a user's names.
func (q Users) SetProfile(id, fullName, displayName string) error {
	return q.c.g.Model(&User{}).Where("id = ?", id).Updates(map[string]any{"full_name": fullName, "display_name": displayName}).Error
}

// SetPassword changes a user's password hash.
func (q Users) SetPassword(id, hash string) error {
	return q.c.g.Model(&User{}).Where("id = ?", id).Update("password_hash", hash).Error
}

// SetRole changes a user's role.
func (q Users) SetRole(id string, role Role) error {
	return q.c.g.Model(&User{}).Where("id = ?", id).Update("role", role).Error
}

// Deactivate takes a user's access away: they cannot sign in, every session
// of theirs ends, and their personal room closes. False if already done.
func (q Users) Deactivate(id string, at time.Time) (bool, error) {
	res := q.c.g.Model(&User{}).Where("id = ? AND deactivated_at IS NULL", id).Update("deactivated_at", at)
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	if err := q.c.g.Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", id).Update("revoked_at", at).Error; err != nil {
		return false, err
	}
	return true, q.c.g.Model(&Room{}).Where("owner_id = ? AND kind = ? AND closed_at IS NULL", id, RoomPersonal).Update("closed_at", at).Error
}

// RevokeOthers ends every session of userID but keep.
func (q Sessions) RevokeOthers(userID, keep string, at time.Time) error {
	return q.c.g.Model(&Session{}).Where("user_id = ? AND id <> ? AND revoked_at IS NULL", userID, keep).Update("revoked_at", at).Error
}

// EnsurePersonal gives u a personal room if its role sees patients and it
// has none (a free link is made from the display name); nil for staff.
func (q Rooms) EnsurePersonal(u User, now time.Time) (*Room, error) {
	if !clinic.SeesPatients(u.Role) {
		return nil, nil
	}
	existing, err := take[Room](q.c, "owner_id = ? AND kind = ?", u.ID, RoomPersonal)
	if err == nil {
		return &existing, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	base := clinic.SlugFrom(u.DisplayName)
	for i := 1; i <= 20; i++ {
		slug := base
		if i > 1 {
			slug = fmt.Sprintf("%s-%d", base, i)
		}
		if i == 20 {
			slug = fmt.Sprintf("%s-%s", base, uuid.NewString()[:8])
		}
		if free, err := q.SlugFree(slug, "", now); err != nil {
			return nil, err
		} else if !free {
			continue
		}
		r := Room{ID: uuid.NewString(), ClinicID: u.ClinicID, Kind: RoomPersonal, Name: u.DisplayName, Slug: slug, OwnerID: &u.ID, CreatedAt: now}
		if err := q.c.g.Create(&r).Error; err != nil {
			return nil, err
		}
		return &r, nil
	}
	return nil, fmt.Errorf("no free link for a personal room")
}

// SlugFree tells whether slug may become room roomID's link ("" for a new
// room): no room has it, and no other room had it recently (its old links
// still lead to it).
func (q Rooms) SlugFree(slug, roomID string, now time.Time) (bool, error) {
	var n int64
	if err := q.c.g.Model(&Room{}).Where("slug = ?", slug).Count(&n).Error; err != nil || n > 0 {
		return false, err
	}
	err := q.c.g.Model(&OldSlug{}).Where("slug = ? AND room_id <> ? AND retired_at > ?", slug, roomID, now.Add(-clinic.OldSlugRedirects)).Count(&n).Error
	return n == 0, err
}

// Create adds a shared room; a link in use is clinic.ErrTaken.
func (q Rooms) Create(r Room, now time.Time) error {
	if free, err := q.SlugFree(r.Slug, "", now); err != nil {
		return err
	} else if !free {
		return clinic.ErrTaken("slug")
	}
	if err := q.c.g.Create(&r).Error; err != nil {
		if isUniqueViolation(err) {
			return clinic.ErrTaken("slug")
		}
		return err
	}
	return q.c.g.Where("slug = ?", r.Slug).Delete(&OldSlug{}).Error
}

// Rename changes a room's name.
func (q Rooms) Rename(id, name string) error {
	return q.c.g.Model(&Room{}).Where("id = ?", id).Update("name", name).Error
}

// ChangeSlug gives room r the link slug; its old link keeps leading to it
// for clinic.OldSlugRedirects. A link in use is clinic.ErrTaken.
func (q Rooms) ChangeSlug(r Room, slug string, now time.Time) error {
	if slug == r.Slug {
		return nil
	}
	if free, err := q.SlugFree(slug, r.ID, now); err != nil {
		return err
	} else if !free {
		return clinic.ErrTaken("slug")
	}
	if err := q.c.g.Where("slug = ?", slug).Delete(&OldSlug{}).Error; err != nil {
		return err
	}
	if err := q.c.g.Where("slug = ?", r.Slug).Delete(&OldSlug{}).Error; err != nil {
		return err
	}
	if err := q.c.g.Create(&OldSlug{Slug: r.Slug, RoomID: r.ID, RetiredAt: now}).Error; err != nil {
		return err
	}
	if err := q.c.g.Model(&Room{}).Where("id = ?", r.ID).Update("slug", slug).Error; err != nil {
		if isUniqueViolation(err) {
			return clinic.ErrTaken("slug")
		}
		return err
	}
	return nil
}

// ByOldSlug is the live room that had link slug until recently.
func (q Rooms) ByOldSlug(slug string, now time.Time) (Room, error) {
	old, err := take[OldSlug](q.c, "slug = ? AND retired_at > ?", slug, now.Add(-clinic.OldSlugRedirects))
	if err != nil {
		return Room{}, err
	}
	return take[Room](q.c, "id = ? AND deleted_at IS NULL", old.RoomID)
}

// Archive archives a room; false if it already was.
func (q Rooms) Archive(id string, at time.Time) (bool, error) {
	res := q.c.g.Model(&Room{}).Where("id = ? AND deleted_at IS NULL", id).Update("deleted_at", at)
	return res.RowsAffected > 0, res.Error
}

// AddMember puts a user on a shared room's member list (no-op if there).
func (q Rooms) AddMember(roomID, userID string) (bool, error) {
	var n int64
	if err := q.c.g.Model(&RoomMember{}).Where("room_id = ? AND user_id = ?", roomID, userID).Count(&n).Error; err != nil || n > 0 {
		return false, err
	}
	return true, q.c.g.Create(&RoomMember{RoomID: roomID, UserID: userID}).Error
}

// RemoveMember takes a user off a shared room's member list.
func (q Rooms) RemoveMember(roomID, userID string) (bool, error) {
	res := q.c.g.Where("room_id = ? AND user_id = ?", roomID, userID).Delete(&RoomMember{})
	return res.RowsAffected > 0, res.Error
}

// MembersOfClinic lists every shared-room membership of a clinic.
func (q Rooms) MembersOfClinic(clinicID string) ([]RoomMember, error) {
	var out []RoomMember
	return out, q.c.g.Joins("JOIN rooms ON rooms.id = room_members.room_id").Where("rooms.clinic_id = ?", clinicID).Find(&out).Error
}

// SharedInUse counts a clinic's live shared rooms.
func (q Rooms) SharedInUse(clinicID string) (int, error) {
	var n int64
	err := q.c.g.Model(&Room{}).Where("clinic_id = ? AND kind = ? AND deleted_at IS NULL", clinicID, RoomShared).Count(&n).Error
	return int(n), err
}

// Invitations are the pending, accepted and withdrawn invitations.
type Invitations struct{ c conn }

// Create adds an invitation.
func (q Invitations) Create(inv Invitation) error { return q.c.g.Create(&inv).Error }

// InClinic is invitation id of clinic clinicID.
func (q Invitations) InClinic(id, clinicID string) (Invitation, error) {
	return take[Invitation](q.c, "id = ? AND clinic_id = ?", id, clinicID)
}

// Usable is the invitation whose link holds the token hashed to hash, if it
// is neither used, withdrawn nor expired (else clinic.ErrLinkInvalid).
func (q Invitations) Usable(hash string, now time.Time) (Invitation, error) {
	inv, err := take[Invitation](q.c, "token_hash = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", hash, now)
	if errors.Is(err, ErrNotFound) {
		return inv, clinic.ErrLinkInvalid
	}
	return inv, err
}

// Pending lists a clinic's invitations not yet used, withdrawn or expired.
func (q Invitations) Pending(clinicID string, now time.Time) ([]Invitation, error) {
	var out []Invitation
	return out, q.c.g.Where("clinic_id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", clinicID, now).Order("created_at").Find(&out).Error
}

// PendingFor is the pending invitation of email in a clinic, if any.
func (q Invitations) PendingFor(clinicID, email string, now time.Time) (Invitation, error) {
	return take[Invitation](q.c, "clinic_id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", clinicID, email, now)
}

// Accept uses invitation id: exactly one of two racing accepts wins, the
// other gets clinic.ErrLinkInvalid (SetUser then records the account).
func (q Invitations) Accept(id string, now time.Time) error {
	res := q.c.g.Model(&Invitation{}).Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", id, now).
		Update("accepted_at", now)
	if res.Error == nil && res.RowsAffected == 0 {
		return clinic.ErrLinkInvalid
	}
	return res.Error
}

// Revoke withdraws a pending invitation; false if it was not pending.
func (q Invitations) Revoke(id string, now time.Time) (bool, error) {
	res := q.c.g.Model(&Invitation{}).Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL", id).Update("revoked_at", now)
	return res.RowsAffected > 0, res.Error
}

// Reissue gives a pending (or expired) invitation a new link and lifetime;
// the old link stops working. False if it was used or withdrawn.
func (q Invitations) Reissue(id, tokenHash string, expires time.Time) (bool, error) {
	res := q.c.g.Model(&Invitation{}).Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL", id).
		Updates(map[string]any{"token_hash": tokenHash, "expires_at": expires})
	return res.RowsAffected > 0, res.Error
}

// Resets are the password reset links.
type Resets struct{ c conn }

// Create adds a reset link; earlier unused links of the user stop working.
func (q Resets) Create(r PasswordReset) error {
	if err := q.c.g.Model(&PasswordReset{}).Where("user_id = ? AND used_at IS NULL", r.UserID).Update("used_at", r.CreatedAt).Error; err != nil {
		return err
	}
	return q.c.g.Create(&r).Error
}

// Use spends the reset link whose token hashes to hash and returns its
// user's id; one of two racing uses wins, the other (and an unknown, used
// or expired link) gets clinic.ErrLinkInvalid.
func (q Resets) Use(hash string, now time.Time) (string, error) {
	r, err := take[PasswordReset](q.c, "token_hash = ? AND used_at IS NULL AND expires_at > ?", hash, now)
	if errors.Is(err, ErrNotFound) {
		return "", clinic.ErrLinkInvalid
	} else if err != nil {
		return "", err
	}
	res := q.c.g.Model(&PasswordReset{}).Where("id = ? AND used_at IS NULL", r.ID).Update("used_at", now)
	if res.Error == nil && res.RowsAffected == 0 {
		return "", clinic.ErrLinkInvalid
	}
	return r.UserID, res.Error
}

// AuditFilter narrows the audit trail: rows by or about a person, and
// rows whose action starts with a prefix ("room.").
type AuditFilter struct {
	PersonID     string
	ActionPrefix string
}

func (f AuditFilter) apply(g *gorm.DB) *gorm.DB {
	if f.PersonID != "" {
		g = g.Where("(actor_id = ? OR target_user_id = ?)", f.PersonID, f.PersonID)
	}
	if f.ActionPrefix != "" {
		g = g.Where(`action LIKE ? ESCAPE '\'`, strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.ActionPrefix)+"%")
	}
	return g
}

// SetUser records who accepted invitation id.
func (q Invitations) SetUser(id, userID string) error {
	return q.c.g.Model(&Invitation{}).Where("id = ?", id).Update("user_id", userID).Error
}

// RenamePersonal gives userID's personal room (if any) the name name.
func (q Rooms) RenamePersonal(userID, name string) error {
	return q.c.g.Model(&Room{}).Where("owner_id = ? AND kind = ?", userID, RoomPersonal).Update("name", name).Error
}

// Get is session id.
func (q Sessions) Get(id string) (Session, error) { return take[Session](q.c, "id = ?", id) }

// SignInFailed counts a wrong password for user id and sets how long its
// sign-in now waits (clinic.SignInBackoff); it returns the count.
func (q Users) SignInFailed(id string, now time.Time) (int, error) {
	if err := q.c.g.Model(&User{}).Where("id = ?", id).Update("failed_sign_ins", gorm.Expr("failed_sign_ins + 1")).Error; err != nil {
		return 0, err
	}
	u, err := q.Get(id)
	if err != nil {
		return 0, err
	}
	if wait := clinic.SignInBackoff(u.FailedSignIns); wait > 0 {
		err = q.c.g.Model(&User{}).Where("id = ?", id).Update("sign_in_wait_until", now.Add(wait)).Error
	}
	return u.FailedSignIns, err
}

// SignedIn clears user id's failed sign-ins.
func (q Users) SignedIn(id string) error {
	return q.c.g.Model(&User{}).Where("id = ?", id).Updates(map[string]any{"failed_sign_ins": 0, "sign_in_wait_until": nil}).Error
}

// LiveOf lists userID's sessions not revoked or expired, newest first.
func (q Sessions) LiveOf(userID string, now time.Time) ([]Session, error) {
	var out []Session
	return out, q.c.g.Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, now).Order("created_at DESC").Find(&out).Error
}

// RevokeOf ends session id if it is userID's and live; false otherwise.
func (q Sessions) RevokeOf(userID, id string, at time.Time) (bool, error) {
	res := q.c.g.Model(&Session{}).Where("id = ? AND user_id = ? AND revoked_at IS NULL", id, userID).Update("revoked_at", at)
	return res.RowsAffected > 0, res.Error
}

// AddParticipant records that userID is in call callID (once).
func (q Calls) AddParticipant(callID, userID string, at time.Time) error {
	ok, err := q.IsParticipant(callID, userID)
	if err != nil || ok {
		return err
	}
	return q.c.g.Create(&CallParticipant{CallID: callID, UserID: userID, JoinedAt: at}).Error
}

// IsParticipant tells whether userID is in call callID.
func (q Calls) IsParticipant(callID, userID string) (bool, error) {
	var n int64
	err := q.c.g.Model(&CallParticipant{}).Where("call_id = ? AND user_id = ?", callID, userID).Count(&n).Error
	return n > 0, err
}

// AllInCall lists the visits in call callID.
func (q Visits) AllInCall(callID string) ([]Visit, error) {
	var out []Visit
	return out, q.c.g.Where("call_id = ? AND state = ?", callID, VisitInCall).Order("id").Find(&out).Error
}
