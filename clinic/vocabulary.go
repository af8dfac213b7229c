package clinic

// VisitState is where a visit stands in the visit workflow's state machine
// (and in its projection row).
type VisitState string

const (
	VisitWaiting      VisitState = "waiting"
	VisitInCall       VisitState = "in_call"
	VisitTransferring VisitState = "transferring"
	VisitEnded        VisitState = "ended"
)

// CallKind is 1:1 or group.
type CallKind string

const (
	CallOneToOne CallKind = "one_to_one"
	CallGroup    CallKind = "group"
)

// RoomKind tells a provider's own room from a room shared by its members.
type RoomKind string

const (
	RoomPersonal RoomKind = "personal"
	RoomShared   RoomKind = "shared"
)

// DisplayName is the <name> patients read for a room: its owner's name for
// a personal room (ownerName, "" if it has none), the room's name otherwise.
func DisplayName(kind RoomKind, roomName, ownerName string) string {
	if kind == RoomPersonal && ownerName != "" {
		return ownerName
	}
	return roomName
}

// Event types of the outbox: what the patient's page and the rooms'
// dashboards hear. The audit trail names what happened to a visit with the
// same words, plus the Audit* actions below.
const (
	EventCheckedIn       = "visit.checked_in"
	EventAdmitted        = "visit.admitted"
	EventTransferStarted = "visit.transfer_started"
	EventTransferred     = "visit.transferred"
	EventTransferFailed  = "visit.transfer_failed"
	EventLeft            = "visit.left"
	EventEnded           = "visit.ended"
	EventCallEnded       = "call.ended"
	EventAppClosed       = "app.closed"
	EventCallJoined      = "call.joined"
	EventHeld            = "visit.held"
)

// Audit actions that are not event types.
const (
	AuditVisitViewed       = "visit.viewed"
	AuditTransferStarted   = "transfer.started"
	AuditTransferCompleted = "transfer.completed"
	AuditTransferFailed    = "transfer.failed"
	AuditCallRejoined      = "call.rejoined"
	AuditCallJoined        = "call.joined"
	AuditHeld              = "visit.held"
)

// Audit actions of running the clinic: who changed people, rooms and the
// plan. Their prefixes (clinic., user., invitation., room.) are the kinds
// the Audit tab filters by.
const (
	AuditClinicCreated      = "clinic.created"
	AuditPlanChanged        = "clinic.plan_changed"
	AuditWaitAlertChanged   = "clinic.wait_alert_changed"
	AuditPatientChatChanged = "clinic.patient_chat_changed"
	AuditInvited            = "invitation.created"
	AuditInvitationResent   = "invitation.resent"
	AuditInvitationRevoked  = "invitation.revoked"
	AuditInvitationUsed     = "invitation.accepted"
	AuditRoleChanged        = "user.role_changed"
	AuditDeactivated        = "user.deactivated"
	AuditProfileChanged     = "user.profile_changed"
	AuditPasswordChanged    = "user.password_changed"
	AuditResetRequested     = "user.password_reset_requested"
	AuditResetLinkIssued    = "user.reset_link_issued"
	AuditPasswordReset      = "user.password_reset"
	AuditRoomCreated        = "room.created"
	AuditRoomRenamed        = "room.renamed"
	AuditRoomLinkChanged    = "room.link_changed"
	AuditRoomArchived       = "room.archived"
	AuditMemberAdded        = "room.member_added"
	AuditMemberRemoved      = "room.member_removed"
)

// SessionEnded is the live event that tells a dashboard its session ended
// (signed out elsewhere, expired, or the person was deactivated).
const SessionEnded = "session.ended"

// Who did something, in the audit trail.
const (
	ActorUser    = "user"
	ActorPatient = "patient"
	ActorSystem  = "system"
)

// EndReason says why a visit ended; EndEvent is the event that tells it.
const (
	EndLeft      = "left"
	EndEnded     = "ended"
	EndAbandoned = "abandoned"
)

// EndEvent is the event type of a visit that ended for reason.
func EndEvent(reason string) string {
	if reason == EndLeft {
		return EventLeft
	}
	return EventEnded
}

// PatientParticipant is the media participant id of a visit's patient: the
// API mints its tokens and the activities bind it into calls.
func PatientParticipant(visitID string) string { return "visit:" + visitID }

// ProviderParticipant is the media participant id of a user.
func ProviderParticipant(userID string) string { return "user:" + userID }

// Messages people read about a transfer. name is a room's DisplayName.
func TransferringMessage(name string) string { return "Taking you to " + name + "'s room now" }

// TransferredMessage is what the patient reads in the new waiting room.
func TransferredMessage(name string) string {
	return "You have been transferred to " + name + "'s room"
}

// TransferredToMessage is shown on the sender's card for a few seconds.
func TransferredToMessage(roomName string) string { return "Transferred to " + roomName }

// TransferredByMessage is the note on the receiving card.
func TransferredByMessage(actorName string) string { return "Transferred by " + actorName }

// HeldMessage tells the patient a provider put them back in the waiting room.
func HeldMessage(actorName string) string {
	return actorName + " has put you back in the waiting room. Please wait here."
}

// HeldSenderMessage tells the provider where the patient went.
func HeldSenderMessage(patientName string) string {
	return patientName + " is back in the waiting room"
}
