// Package clinic holds Handoff's business rules as plain functions: what a
// clinic's plan allows, what a transfer may carry and where it may go, and
// the kinds of rejection with the message a person reads. The API, the
// visit workflow and its activities all ask these, so each rule and each
// message exists once. It imports nothing of Temporal, GORM or Gin.
package clinic

import "fmt"

// Kind is a kind of rejection. The values are the error types recorded in
// visit histories and mapped to HTTP statuses by the API: never rename one.
type Kind = string

const (
	Invalid        Kind = "Invalid"        // 400: the request itself is malformed
	NotFound       Kind = "NotFound"       // 404: unknown, or of another clinic
	Forbidden      Kind = "Forbidden"      // 403: the actor lacks access to the room
	PlanRequired   Kind = "PlanRequired"   // 403: the clinic's plan lacks the feature
	Conflict       Kind = "Conflict"       // 409: the visit's state does not allow it now
	SameRoom       Kind = "SameRoom"       // 422: transfer to the room the patient is in
	TargetRoomGone Kind = "TargetRoomGone" // the target room disappeared mid-transfer
)

// Rejection is a rule's no: its kind and the message for the person.
type Rejection struct {
	Kind    Kind
	Message string
}

func (r *Rejection) Error() string { return r.Message }

func reject(kind Kind, msg string) error { return &Rejection{Kind: kind, Message: msg} }

// Plan is a clinic's subscription.
type Plan string

const (
	PlanFree    Plan = "free"
	PlanPro     Plan = "pro"
	PlanPremium Plan = "premium"
)

// MayTransfer says whether a clinic on plan may transfer patients.
func MayTransfer(plan Plan) error {
	if plan != PlanPremium {
		return reject(PlanRequired, "transferring patients requires the Premium plan")
	}
	return nil
}

// HasSharedRooms says whether a clinic on plan has shared rooms (a free
// clinic's shared rooms, kept from an earlier plan, are hidden).
func HasSharedRooms(plan Plan) bool { return plan == PlanPremium }

// MaxNoteLength bounds the optional hand-off note, in characters.
const MaxNoteLength = 500

// CheckNote refuses a hand-off note longer than MaxNoteLength characters.
func CheckNote(note string) error {
	if len([]rune(note)) > MaxNoteLength {
		return reject(Invalid, fmt.Sprintf("the note is longer than %d characters", MaxNoteLength))
	}
	return nil
}

// CheckTarget refuses a transfer to the room the patient is already in.
func CheckTarget(currentRoomID, targetRoomID string) error {
	if targetRoomID == currentRoomID {
		return reject(SameRoom, "the patient is already in that room")
	}
	return nil
}
