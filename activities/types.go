package activities

import (
	"time"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// CheckInParams create the visit's projection row.
type CheckInParams struct {
	VisitID, ClinicID, RoomID string
	PatientName               string
	TokenHash                 string
	CheckedInAt               time.Time
	// ArrivalRecorded: the API records the patient's first page in the
	// visit's row instead of signalling it, and the visit reads it there
	// when it would otherwise abandon the patient.
	ArrivalRecorded bool `json:",omitempty"`
}

// AdmitParams bring a waiting patient into a call: a new 1:1 call, or the
// group call CallID.
type AdmitParams struct {
	VisitID, ActorID string
	CallID           string
}

// AdmitResult is the call the patient is now in.
type AdmitResult struct {
	CallID string
	Kind   store.CallKind
}

// TransferParams describe one transfer; TransferID makes every step of it
// idempotent and ties its audit rows together.
type TransferParams struct {
	TransferID   string
	VisitID      string
	ActorID      string
	SourceRoomID string
	TargetRoomID string
	Note         string
	CallID       string
	// Why the patient leaves the call, as apps' and calls' events and audit
	// rows say: "transfer" (also when empty, as older histories recorded
	// it) or "hold".
	Reason string
	// KeepGuests: the visit's guests go along with a transfer, back to the
	// lobby, instead of leaving with the call.
	KeepGuests bool
}

// GuestsStay says whether the visit's guests stay with it as the patient
// leaves the call: on a hold, and on a transfer they go along with.
func (p TransferParams) GuestsStay() bool { return p.Reason == "hold" || p.KeepGuests }

// LeaveReason is why the patient leaves the call.
func (p TransferParams) LeaveReason() string {
	if p.Reason == "" {
		return "transfer"
	}
	return p.Reason
}

// TransferPlan is what BeginTransfer learned from the database and the
// later steps need: names for the messages, the call to leave.
type TransferPlan struct {
	ClinicID string
	// ActorName goes on the receiving card: "Transferred by <ActorName>".
	ActorName string
	// TargetDisplayName is the patient's "<name>": the owner's name for a
	// personal room, the room's name for a shared room.
	TargetDisplayName string
	// TargetRoomName is the sender's "Transferred to <TargetRoomName>".
	TargetRoomName string
	CallKind       store.CallKind
	// TargetOnline is false when no provider of the target room has been seen
	// recently; the transfer still happens.
	TargetOnline bool
}

// PatientMessageStarting is what the patient reads on the loading page.
func (p TransferPlan) PatientMessageStarting() string {
	return clinic.TransferringMessage(p.TargetDisplayName)
}

// PatientMessageDone is what the patient reads in the new waiting room.
func (p TransferPlan) PatientMessageDone() string {
	return clinic.TransferredMessage(p.TargetDisplayName)
}

// SenderMessage is shown on the sender's card for a few seconds.
func (p TransferPlan) SenderMessage() string { return clinic.TransferredToMessage(p.TargetRoomName) }

// ReceiverMessage is the note on the receiving card.
func (p TransferPlan) ReceiverMessage() string { return clinic.TransferredByMessage(p.ActorName) }

// DetachResult says what detaching did to the call.
type DetachResult struct {
	// CallEnded is true for a 1:1 call: it ends for the sender too.
	CallEnded bool
}

// EndParams end a visit: the patient left, a provider ended it, or it was
// abandoned in the waiting room.
type EndParams struct {
	VisitID   string
	ActorKind string // user, patient or system
	ActorID   string
	Reason    string // left, ended, abandoned
	CallID    string
}

// RejoinParams put one member of a visit's call back into it on the media
// node: the patient (ActorKind "patient") or a provider of the room.
type RejoinParams struct {
	VisitID   string
	CallID    string
	ActorKind string
	ActorID   string
	// Join: a provider of the room who is not in the call joins it, and
	// its patients are told; without it only a participant rejoins.
	Join bool
}

// HoldParams put an admitted patient back into their waiting room.
type HoldParams struct {
	VisitID string
	ActorID string
	CallID  string
}

// HoldPlan is what BeginHold learned: who puts the patient back.
type HoldPlan struct {
	ActorName string
}

// GuestParams are one guest operation on the visit's call CallID: a
// provider invites (LinkHash is the link's hash), lets in or removes a
// guest, or the guest leaves (ActorKind guest).
type GuestParams struct {
	VisitID   string
	CallID    string
	GuestID   string
	ActorKind string
	ActorID   string
	LinkHash  string
}
