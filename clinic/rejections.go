package clinic

// Kind is a kind of rejection. The values are the error types recorded in
// visit histories and mapped to HTTP statuses by the API: never rename one.
type Kind = string

const (
	Invalid        Kind = "Invalid"        // the request itself is malformed
	NotFound       Kind = "NotFound"       // unknown, or of another clinic
	Forbidden      Kind = "Forbidden"      // the actor lacks access to the room
	PlanRequired   Kind = "PlanRequired"   // the clinic's plan lacks the feature
	Conflict       Kind = "Conflict"       // the visit's state does not allow it now
	SameRoom       Kind = "SameRoom"       // transfer to the room the patient is in
	TargetRoomGone Kind = "TargetRoomGone" // the target room disappeared mid-transfer
	TransferFailed Kind = "TransferFailed" // a transfer failed and was put back
)

// Code is the stable code clients read for a kind (the API's error code).
func Code(k Kind) string {
	switch k {
	case Invalid:
		return "bad_request"
	case NotFound:
		return "not_found"
	case Forbidden:
		return "forbidden"
	case PlanRequired:
		return "plan_required"
	case Conflict:
		return "conflict"
	case SameRoom:
		return "same_room"
	case TargetRoomGone, TransferFailed:
		return "transfer_failed"
	}
	return ""
}

// IsRuleBreak tells a rule's "no" (nothing changed, retrying gets the same
// answer) from a failure to carry an operation out.
func IsRuleBreak(k Kind) bool {
	switch k {
	case Invalid, NotFound, Forbidden, PlanRequired, Conflict, SameRoom:
		return true
	}
	return false
}

// Rejection is a rule's no: its kind and the message for the person.
// code, when set, is a more precise error code than the kind's.
type Rejection struct {
	Kind    Kind
	Message string
	code    string
}

// ErrCode is the error code clients read: the rejection's own, or its kind's.
func (r *Rejection) ErrCode() string {
	if r.code != "" {
		return r.code
	}
	return Code(r.Kind)
}

// rejectWith is a rejection with a code of its own.
func rejectWith(kind Kind, code, msg string) *Rejection {
	return &Rejection{Kind: kind, Message: msg, code: code}
}

func (r *Rejection) Error() string { return r.Message }

func reject(kind Kind, msg string) *Rejection { return &Rejection{Kind: kind, Message: msg} }

// Rejections more than one caller gives, each with its one message.
var (
	// ErrNoAccessToPatientRoom: the actor may not act for the patient's room.
	ErrNoAccessToPatientRoom = reject(Forbidden, "you do not have access to this patient's room")
	// ErrNoAccessToRoom: the actor may not act for the room it named.
	ErrNoAccessToRoom = reject(Forbidden, "you do not have access to this room")
	// ErrMovedAway: the patient left the room the sender saw them in.
	ErrMovedAway = reject(Conflict, "the patient has just been moved to another room")
	// ErrVisitEnded: the visit is over.
	ErrVisitEnded = reject(Conflict, "the visit has ended")
	// ErrNotInCall: only the call's providers rejoin it; others join it.
	ErrNotInCall = reject(Forbidden, "you are not in that call; join it to be added (its patients are told)")
	// ErrPatientNotInCall: a hold for a patient who is not in a call.
	ErrPatientNotInCall = reject(Conflict, "the patient is not in a call")
	// ErrNotWaiting: only a waiting patient can be admitted.
	ErrNotWaiting = reject(Conflict, "the patient is not waiting")
)

// NotFoundError is the rejection for an unknown thing ("visit", "room",
// "target room"): unknown and of another clinic read the same.
func NotFoundError(what string) *Rejection { return reject(NotFound, what+" not found") }
