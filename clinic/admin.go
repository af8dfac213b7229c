package clinic

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Power is something that changes how the clinic is run, as opposed to
// seeing patients (which every role does).
type Power string

const (
	ManagePeople Power = "people" // invite, change roles, deactivate, issue reset links
	ManageOwners Power = "owners" // make, unmake or deactivate an owner
	ManageRooms  Power = "rooms"  // shared rooms, anyone's room's link and name
	ManagePlan   Power = "plan"   // the clinic's plan
	ReadAudit    Power = "audit"  // the audit trail
	// ManageSecurity: the clinic's security settings (two-factor sign-in
	// required of everyone).
	ManageSecurity Power = "security"
)

// AllPowers in the order the README's table lists them.
var AllPowers = []Power{ManagePeople, ManageOwners, ManageRooms, ManagePlan, ReadAudit, ManageSecurity}

// powers is who may do what: owners everything; admins everything but
// owners and the plan; members and staff only their own profile (which
// needs no power). The README's permission table is this table.
var powers = map[Role][]Power{
	RoleOwner:  AllPowers,
	RoleAdmin:  {ManagePeople, ManageRooms, ReadAudit},
	RoleMember: nil,
	RoleStaff:  nil,
}

// Roles in order of how much they may do.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleStaff}

// Has tells whether role has power p.
func Has(role Role, p Power) bool { return slices.Contains(powers[role], p) }

// PowersOf is the set of role's powers, for the dashboard to show what the
// user may reach.
func PowersOf(role Role) map[Power]bool {
	out := map[Power]bool{}
	for _, p := range AllPowers {
		out[p] = Has(role, p)
	}
	return out
}

var powerNeeds = map[Power]string{
	ManagePeople: "only the clinic's owners and admins can manage people",
	ManageOwners: "only an owner can make, change or deactivate an owner",
	ManageRooms:  "only the clinic's owners and admins can manage rooms",
	ManagePlan:   "only an owner can change the clinic's plan",
	ReadAudit:    "only the clinic's admins and owners can read the audit trail",
}

// Require refuses an actor whose role lacks power p.
func Require(role Role, p Power) error {
	if !Has(role, p) {
		return reject(Forbidden, powerNeeds[p])
	}
	return nil
}

// ParseRole refuses what is not a role.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", reject(Invalid, "role must be one of owner, admin, member, staff")
	}
	return r, nil
}

// SeesPatients tells the roles that have a personal room of their own:
// providers. Staff work from shared rooms.
func SeesPatients(role Role) bool { return role != RoleStaff }

// ErrLastOwner: a clinic always keeps an owner.
var ErrLastOwner = rejectWith(Conflict, "last_owner", "the clinic's last owner cannot be demoted or deactivated; make someone else an owner first")

// MayManage says whether actor may change the account of someone whose
// role is target (issue them a reset link, change or deactivate them).
func MayManage(actor, target Role) error {
	if err := Require(actor, ManagePeople); err != nil {
		return err
	}
	if target == RoleOwner {
		return Require(actor, ManageOwners)
	}
	return nil
}

// MayAssignRole says whether actor may give role to someone whose role is
// now current ("" for someone being invited); owners is how many active
// owners the clinic has.
func MayAssignRole(actor Role, current, role Role, owners int) error {
	if err := MayManage(actor, current); err != nil {
		return err
	}
	if err := MayManage(actor, role); err != nil {
		return err
	}
	if current == RoleOwner && role != RoleOwner && owners <= 1 {
		return ErrLastOwner
	}
	return nil
}

// MayDeactivate says whether actor may take target's access away.
func MayDeactivate(actor Actor, targetID string, target Role, owners int) error {
	if err := MayManage(actor.Role, target); err != nil {
		return err
	}
	if actor.ID == targetID {
		return reject(Conflict, "you cannot deactivate yourself; ask another owner or admin")
	}
	if target == RoleOwner && owners <= 1 {
		return ErrLastOwner
	}
	return nil
}

// MayEditRoom says whether actor may rename a room or change its link: the
// provider whose personal room it is, or whoever manages rooms.
func MayEditRoom(actor Actor, room Room) error {
	if room.Kind == RoomPersonal && room.OwnerID == actor.ID {
		return nil
	}
	return Require(actor.Role, ManageRooms)
}

// MayManageSharedRooms says whether actor may create, change, archive or
// staff shared rooms: who manages rooms, on a plan with shared rooms.
func MayManageSharedRooms(actor Role, plan Plan) error {
	if err := Require(actor, ManageRooms); err != nil {
		return err
	}
	if !HasSharedRooms(plan) {
		return reject(PlanRequired, "shared rooms need the Premium plan")
	}
	return nil
}

// MayArchive refuses to archive a personal room (it goes with its
// provider), or a room with patients waiting unless they are moved
// (moveTo, a room id).
func MayArchive(room Room, waiting int, moveTo string) error {
	if room.Kind == RoomPersonal {
		return reject(Conflict, "a personal room goes with its provider: deactivate the person instead")
	}
	if waiting > 0 && moveTo == "" {
		return rejectWith(Conflict, "patients_waiting", fmt.Sprintf("%d %s waiting in this room: name a room to move them to first", waiting, plural(waiting, "patient is", "patients are")))
	}
	if moveTo == room.ID {
		return reject(Invalid, "moveToRoomId must be another room")
	}
	return nil
}

// MayChangePlan refuses a downgrade that hides shared rooms in use unless
// the owner confirmed it, saying what stops working. Transfers already in
// flight finish: the plan is checked when a transfer starts.
func MayChangePlan(from, to Plan, sharedRoomsInUse int, confirmed bool) error {
	if HasSharedRooms(from) && !HasSharedRooms(to) && sharedRoomsInUse > 0 && !confirmed {
		return rejectWith(Conflict, "confirm_required", fmt.Sprintf(
			"on the %s plan, transfers stop and %d shared %s hidden and stop taking check-ins (patients waiting there stay until seen); transfers already under way finish. Confirm to change the plan.",
			to, sharedRoomsInUse, plural(sharedRoomsInUse, "room is", "rooms are")))
	}
	return nil
}

// ParsePlan refuses what is not a plan.
func ParsePlan(s string) (Plan, error) {
	p := Plan(s)
	if p != PlanFree && p != PlanPro && p != PlanPremium {
		return "", reject(Invalid, "plan must be one of free, pro, premium")
	}
	return p, nil
}

// RoomClosed is what a patient reads at the link of a room that no longer
// takes check-ins (its provider left the clinic).
func RoomClosed(displayName string) *Rejection {
	return rejectWith(Conflict, "room_closed", fmt.Sprintf("%s is no longer seeing patients at this link. Please contact the clinic for another way to be seen.", displayName))
}

// Lifetimes of the links people are sent, and of an old room link.
const (
	InvitationLifetime = 7 * 24 * time.Hour
	ResetLinkLifetime  = time.Hour
	OldSlugRedirects   = 90 * 24 * time.Hour
)

// ErrLinkInvalid: an invitation or reset link that is unknown, used,
// revoked or expired (all read the same).
var ErrLinkInvalid = rejectWith(NotFound, "link_invalid", "this link is no longer valid: it was used, withdrawn or has expired; ask for a new one")

// Rejections of administration that more than one route gives.
var (
	ErrAlreadyInvited   = rejectWith(Conflict, "already_invited", "that email already has a pending invitation; resend it instead")
	ErrInvitationClosed = reject(Conflict, "that invitation was already accepted or withdrawn")
	ErrDeactivated      = reject(Conflict, "that person is deactivated")
	ErrNotShared        = reject(Conflict, "only a shared room has members")
	ErrMoveNeedsMember  = reject(Forbidden, "to move this room's patients, add yourself to its members first (a transfer is sent by someone who acts for the room)")
	ErrPatientsInCall   = rejectWith(Conflict, "patients_waiting", "patients of this room are in a call; end or transfer those calls first")
)

// ErrTaken is the rejection for a unique value someone else holds.
func ErrTaken(field string) *Rejection {
	return rejectWith(Conflict, "taken", field+" is already taken")
}

// Slugs: the patient link /c/<slug>.
var (
	slugPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)
	// reservedSlugs could be read as the product's own pages or APIs.
	reservedSlugs = []string{"admin", "api", "app", "assets", "c", "clinic", "codec", "handoff", "healthz", "help",
		"invite", "login", "logout", "me", "metrics", "readyz", "reset", "rooms", "settings", "signup", "static", "support", "www"}
)

// MinSlug and MaxSlug bound a slug's length.
const MinSlug, MaxSlug = 3, 60

// CheckSlug normalises a slug (trimmed, lower case) and refuses a malformed
// or reserved one.
func CheckSlug(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case len(s) < MinSlug || len(s) > MaxSlug:
		return "", reject(Invalid, fmt.Sprintf("slug must be %d to %d characters", MinSlug, MaxSlug))
	case !slugPattern.MatchString(s) || strings.Contains(s, "--"):
		return "", reject(Invalid, "slug may hold only letters a-z, digits and single hyphens, and cannot start or end with a hyphen")
	case slices.Contains(reservedSlugs, s):
		return "", reject(Invalid, fmt.Sprintf("slug %q is reserved", s))
	}
	return s, nil
}

// SlugFrom suggests a slug for a name ("Dr. Ada Rivers" → "dr-ada-rivers").
func SlugFrom(name string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			hyphen = false
		case !hyphen && b.Len() > 0:
			b.WriteByte('-')
			hyphen = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > MaxSlug-4 {
		s = strings.TrimRight(s[:MaxSlug-4], "-")
	}
	if _, err := CheckSlug(s); err != nil {
		s = "room-" + s
		if _, err := CheckSlug(s); err != nil {
			s = "room"
		}
	}
	return s
}

// checkName trims a name and refuses an empty one, one longer than max
// characters, or one with control characters; field names it in the
// message.
func checkName(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", reject(Invalid, field+" is required")
	case len([]rune(s)) > max:
		return "", reject(Invalid, fmt.Sprintf("%s is longer than %d characters", field, max))
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", reject(Invalid, field+" contains control characters")
	case strings.IndexFunc(s, isFormat) >= 0:
		// Right-to-left overrides and zero-width characters would let a
		// name show something other than what it is on a dashboard.
		return "", reject(Invalid, field+" contains invisible formatting characters")
	}
	return s, nil
}

// isFormat tells Unicode's format characters (Cf): bidirectional
// overrides, zero-width joiners and spaces, the byte-order mark.
func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

// MaxPersonName bounds a person's, a room's and a clinic's names.
const MaxPersonName = 100

// PersonName checks a user's full or display name (field names which).
func PersonName(field, s string) (string, error) { return checkName(field, s, MaxPersonName) }

// RoomName checks a shared room's name.
func RoomName(s string) (string, error) { return checkName("name", s, MaxPersonName) }

// ClinicName checks a clinic's name.
func ClinicName(s string) (string, error) { return checkName("clinicName", s, 200) }

// Email normalises an email address (trimmed, lower case) and refuses what
// is not one.
func Email(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 320 || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", reject(Invalid, "email is not a valid address")
	}
	return s, nil
}

// Password bounds: bcrypt reads at most 72 bytes.
const MinPassword, MaxPasswordBytes = 10, 72

// CheckPassword refuses a password that is short, too long for the hash,
// or common (see common-passwords.txt).
func CheckPassword(field, pw string) error {
	switch {
	case len([]rune(pw)) < MinPassword:
		return reject(Invalid, fmt.Sprintf("%s must be at least %d characters", field, MinPassword))
	case len(pw) > MaxPasswordBytes:
		return reject(Invalid, fmt.Sprintf("%s is longer than %d bytes", field, MaxPasswordBytes))
	case isCommonPassword(pw):
		return reject(Invalid, field+" is too common and easy to guess; choose another")
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
