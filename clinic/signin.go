package clinic

import "time"

// FreeSignInFailures is how many wrong passwords in a row an account takes
// before its sign-in has to wait.
const FreeSignInFailures = 5

// Sign-in back-off bounds: the first wait, and the longest.
const (
	FirstSignInWait = 30 * time.Second
	MaxSignInWait   = 15 * time.Minute
)

// SignInBackoff is how long an account's sign-in waits after failures wrong
// passwords in a row: nothing for the first FreeSignInFailures, then 30 s,
// doubling with each further failure, at most 15 minutes. Long enough to
// stop guessing; never a lock that anyone who knows an email address can
// keep a person out with for good.
func SignInBackoff(failures int) time.Duration {
	if failures < FreeSignInFailures {
		return 0
	}
	wait := FirstSignInWait
	for i := FreeSignInFailures; i < failures && wait < MaxSignInWait; i++ {
		wait *= 2
	}
	return min(wait, MaxSignInWait)
}

// Audit actions of access: what a person reached, or was refused.
const (
	AuditAccessDenied      = "access.denied"
	AuditWaitingRoomViewed = "access.waiting_room_viewed"
	AuditStreamOpened      = "access.stream_opened"
	AuditAppOpened         = "app.opened"
	// AuditPayloadsDecoded: the codec server showed an operator a visit's
	// Temporal payloads in plain text.
	AuditPayloadsDecoded = "access.payloads_decoded"
)

// Audit actions of signing in and out.
const (
	AuditSignedIn     = "auth.signed_in"
	AuditSignInFailed = "auth.sign_in_failed"
	AuditSignedOut    = "auth.signed_out"
)
