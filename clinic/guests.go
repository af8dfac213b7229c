package clinic

import (
	"fmt"
	"time"
)

// GuestState is where a guest of a visit (an interpreter, a family member,
// another clinician) stands.
type GuestState = string

const (
	// GuestInvited: a link was made and not used yet.
	GuestInvited GuestState = "invited"
	// GuestWaiting: the guest gave a name and waits to be let in (the
	// lobby). A guest whose call ended under them (a hold, a transfer they
	// go along with) waits here again.
	GuestWaiting GuestState = "waiting"
	// GuestInCall: in the visit's call.
	GuestInCall GuestState = "in_call"
	// GuestGone: removed, left, or the call they were in went on without
	// them; their link and token are dead.
	GuestGone GuestState = "gone"
)

// MaxCallParticipants is how many people (providers, patients and guests)
// one call holds.
const MaxCallParticipants = 8

// GuestLinkTTL is how long an unused guest link works.
const GuestLinkTTL = 2 * time.Hour

// MaxGuestNameLength bounds the name a guest gives.
const MaxGuestNameLength = 80

// Why a guest is gone, in its row and in what its page says.
const (
	GuestRemoved     = "removed"      // a provider removed them
	GuestLeft        = "left"         // they left
	GuestCallEnded   = "call_ended"   // the visit ended or moved on without them
	GuestLinkExpired = "link_expired" // never used in time
)

// Events and audit actions of guests.
const (
	EventGuestInvited  = "guest.invited"
	EventGuestWaiting  = "guest.waiting"
	EventGuestJoined   = "guest.joined"
	EventGuestGone     = "guest.gone"
	AuditGuestInvited  = "guest.invited"
	AuditGuestArrived  = "guest.arrived"
	AuditGuestAdmitted = "guest.admitted"
	AuditGuestGone     = "guest.gone"
)

// ActorGuest names a guest in the audit trail.
const ActorGuest = "guest"

var (
	// ErrCallFull: the call already holds MaxCallParticipants people.
	ErrCallFull = rejectWith(Conflict, "call_full", fmt.Sprintf("a call holds at most %d people", MaxCallParticipants))
	// ErrGuestLinkUsed: a guest link works once.
	ErrGuestLinkUsed = rejectWith(Conflict, "link_used", "this guest link was already used; ask the provider for a new one")
	// ErrGuestLinkDead: the link expired, or the visit or the guest's place
	// in it is over.
	ErrGuestLinkDead = rejectWith(NotFound, "link_dead", "this guest link is no longer valid")
	// ErrGuestNotWaiting: only a guest in the lobby can be let in.
	ErrGuestNotWaiting = reject(Conflict, "the guest is not waiting to join")
	// ErrGuestGone: the guest already left or was removed.
	ErrGuestGone = reject(Conflict, "the guest is no longer in this visit")
)

// GuestName checks the name a guest gives.
func GuestName(s string) (string, error) { return checkName("name", s, MaxGuestNameLength) }

// CheckCallRoom refuses one more person in a call that holds present people.
func CheckCallRoom(present int) error {
	if present >= MaxCallParticipants {
		return ErrCallFull
	}
	return nil
}

// MayAdmitGuest says whether a guest in state may be let into the visit's
// call now: the guest waits, and the patient is in a call.
func MayAdmitGuest(state GuestState, patientInCall bool) error {
	switch {
	case state == GuestGone:
		return ErrGuestGone
	case state != GuestWaiting:
		return ErrGuestNotWaiting
	case !patientInCall:
		return ErrPatientNotInCall
	}
	return nil
}

// GuestsAfterLeaving is the state guests take when the patient leaves the
// call: a hold, or a transfer they go along with (keep), puts the guests in
// the call back in the lobby, to be let in again; a transfer without them
// sends them away, as does the end of the visit.
func GuestsAfterLeaving(keep bool) GuestState {
	if keep {
		return GuestWaiting
	}
	return GuestGone
}

// GuestParticipant is the media participant id of a guest.
func GuestParticipant(guestID string) string { return "guest:" + guestID }

// GuestJoinedMessage is what the call's patients read when a guest joins.
func GuestJoinedMessage(name string) string { return name + " (guest) joined the call" }

// GuestLeftMessage is what the call's patients read when a guest leaves.
func GuestLeftMessage(name string) string { return name + " (guest) left the call" }
