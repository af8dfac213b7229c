package workflows

import (
	"time"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
)

// VisitInput starts a visit. Patient data in it (the name) is encrypted by
// the payload codec before it reaches Temporal.
type VisitInput struct {
	VisitID     string
	ClinicID    string
	RoomID      string
	PatientName string
	TokenHash   string
	CheckedInAt time.Time
	// AbandonAfter ends a visit whose patient has been disconnected from the
	// waiting room this long; zero never does.
	AbandonAfter time.Duration
	// Resume carries the state across continue-as-new.
	Resume *VisitState
	// Revision is the revision of the visit's code it started on (see
	// CurrentRevision); it is kept across continue-as-new. Zero: a visit
	// started before revisions, which chose with GetVersion markers.
	Revision int `json:",omitempty"`
}

// VisitState is everything the workflow knows of its visit.
type VisitState struct {
	VisitID   string
	ClinicID  string
	RoomID    string
	State     clinic.VisitState
	CallID    string
	CheckedIn bool
	Transfers int
	EndReason string
	// PatientConnected and DisconnectedAt drive the abandonment timer.
	PatientConnected bool
	DisconnectedAt   time.Time
	// AwaitsArrival: the visit started away and waits for the page's first
	// presence signal (arrivalChange).
	AwaitsArrival bool
	// PresenceSeq is the Seq of the last presence signal applied.
	PresenceSeq int
	// Transfers already done, by update id, so a repeated Idempotency-Key
	// gets the same answer even after continue-as-new.
	DoneTransfers map[string]TransferResult
}

// CheckInRequest is the check-in update (sent with Update-with-Start).
type CheckInRequest struct{}

// AdmitRequest admits the patient: into a new 1:1 call, or into CallID.
type AdmitRequest struct {
	ActorID string
	CallID  string
}

// HoldRequest puts an admitted patient back into their waiting room.
type HoldRequest struct {
	ActorID string
}

// HoldResult says what a hold did.
type HoldResult struct {
	// CallEnded is true when the hold ended the provider's 1:1 call.
	CallEnded bool
}

// TransferRequest moves the patient to another room of the clinic.
type TransferRequest struct {
	ActorID      string
	TargetRoomID string
	Note         string
	// FromRoomID is the room the sender saw the patient in. A transfer sent
	// while another one moved the patient is refused rather than run from
	// the new room; empty skips the check.
	FromRoomID string
	// KeepGuests: the call's guests go along, to the new room's lobby.
	KeepGuests bool
}

// GuestRequest is one guest operation: a provider (ActorKind "user", or
// empty) invites, lets in or removes guest GuestID, or the guest leaves
// (ActorKind "guest", ActorID its id). LinkHash is the new link's hash.
type GuestRequest struct {
	ActorKind string
	ActorID   string
	GuestID   string
	LinkHash  string
}

// TransferResult is the transfer's outcome as the sender sees it.
type TransferResult struct {
	VisitID       string
	ActorID       string
	FromRoomID    string
	ToRoomID      string
	SenderMessage string
	// CallEnded is true when the transfer ended the sender's 1:1 call.
	CallEnded bool
	Plan      activities.TransferPlan
}

// RejoinRequest puts the patient (ActorKind "patient"), a provider
// ("user") or a guest ("guest") back into the visit's call after a media node forgot it.
type RejoinRequest struct {
	ActorKind string
	ActorID   string
	// Join: a provider of the room joins a call they are not in.
	Join bool
}

// EndRequest ends the visit: the patient leaves, or a provider ends it.
type EndRequest struct {
	ActorID string
}

// PresenceSignal reports the patient's connection to the waiting room.
type PresenceSignal struct {
	Connected bool
	// Seq is the visit's count of patient departures when the signal was
	// sent (store.CountPatientDeparture): API processes signal on their
	// own, so signals can arrive out of order, and the later one wins. A
	// departure and an arrival with the same Seq: the arrival came after.
	// Zero (signals from before Seq existed) is applied as it comes.
	Seq int
}
