// Package clinic holds Handoff's business rules as plain functions: who may
// act for a room, who may transfer a patient and where to, what a clinic's
// plan allows, what a patient's name, a hand-off note or an app may hold,
// and the kinds of rejection with the message a person reads. The API, the
// visit workflow and its activities all ask these, so each rule and each
// message exists once. It imports nothing of Temporal, GORM or Gin: callers
// load the facts and pass them in.
package clinic

import (
	"fmt"
	"slices"
	"strings"
)

// Plan is a clinic's subscription.
type Plan string

const (
	PlanFree    Plan = "free"
	PlanPro     Plan = "pro"
	PlanPremium Plan = "premium"
)

// Role is what a user is in its clinic. Every role may transfer.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleStaff  Role = "staff"
)

// Actor is a signed-in user as the rules see them.
type Actor struct {
	ID       string
	ClinicID string
	Role     Role
}

// Room is a room as the rules see it. OwnerID is "" for a shared room.
type Room struct {
	ID       string
	ClinicID string
	Kind     RoomKind
	OwnerID  string
	Deleted  bool
	// Closed: a personal room whose provider was deactivated. It takes no
	// check-ins or transfers; whoever manages people acts for it, so the
	// patients left waiting there are seen or moved.
	Closed bool
}

// MayActFor tells whether actor may act for room (see its waiting room,
// admit, transfer out of it): its own personal room, or a shared room it is
// a member of (member: the actor is on the room's member list), whatever
// its role. A deleted room or another clinic's has nobody acting for it.
func MayActFor(actor Actor, room Room, member bool) bool {
	if room.ClinicID != actor.ClinicID || room.Deleted {
		return false
	}
	if room.Kind == RoomPersonal {
		if room.Closed {
			return Has(actor.Role, ManagePeople)
		}
		return room.OwnerID != "" && room.OwnerID == actor.ID
	}
	return member
}

// MayTransfer says who may transfer a patient: anyone who may act for the
// room the patient is in (actsForSource, see MayActFor), whatever their
// role, in a clinic on the Premium plan. It is the one place that decides:
// the API, the workflow's transfer step and the provider's feature list
// (actsForSource true) all ask it.
func MayTransfer(actor Actor, plan Plan, actsForSource bool) error {
	if !actsForSource {
		return ErrNoAccessToPatientRoom
	}
	if !TransfersOn(plan) {
		return reject(PlanRequired, "transferring patients requires the Premium plan")
	}
	return nil
}

// TransfersOn says whether a clinic's plan includes transfers (Premium).
func TransfersOn(plan Plan) bool { return plan == PlanPremium }

// HasSharedRooms says whether a clinic on plan has shared rooms (a free
// clinic's shared rooms, kept from an earlier plan, are hidden).
func HasSharedRooms(plan Plan) bool { return plan == PlanPremium }

// TransferTarget refuses a target room that is not a live room of the
// patient's clinic (target nil: no such room), then the room the patient
// is already in.
func TransferTarget(clinicID, currentRoomID string, target *Room) error {
	if target == nil || target.ClinicID != clinicID || target.Deleted {
		return reject(NotFound, "target room not found")
	}
	if target.Closed {
		return reject(Conflict, "that room is closed: its provider no longer works at the clinic")
	}
	return CheckTarget(currentRoomID, target.ID)
}

// CheckTarget refuses a transfer to the room the patient is already in.
func CheckTarget(currentRoomID, targetRoomID string) error {
	if targetRoomID == currentRoomID {
		return reject(SameRoom, "the patient is already in that room")
	}
	return nil
}

// MaxNoteLength bounds the optional hand-off note, in characters.
const MaxNoteLength = 500

// CheckNote refuses a hand-off note longer than MaxNoteLength characters.
func CheckNote(note string) error {
	if len([]rune(note)) > MaxNoteLength {
		return reject(Invalid, fmt.Sprintf("the note is longer than %d characters", MaxNoteLength))
	}
	return nil
}

// MaxPatientNameLength bounds a patient's name, in characters.
const MaxPatientNameLength = 100

// PatientName trims the name a patient checks in with and refuses what
// cannot be a name.
func PatientName(s string) (string, error) { return checkName("name", s, MaxPatientNameLength) }

// CheckConsent refuses a check-in without the patient's consent.
func CheckConsent(given bool) error {
	if !given {
		return reject(Invalid, "consent to the virtual visit is required")
	}
	return nil
}

// Apps a provider can open in a call, and how much session data one holds.
var Apps = []string{"notes", "payment"}

const MaxAppData = 8000

// CheckApp refuses an unknown app or too much session data.
func CheckApp(app, data string) error {
	if !slices.Contains(Apps, app) {
		return reject(Invalid, "app must be one of "+strings.Join(Apps, ", "))
	}
	if len(data) > MaxAppData {
		return reject(Invalid, fmt.Sprintf("app data is longer than %d characters", MaxAppData))
	}
	return nil
}
