package clinic

import "time"

// A sign-in whose password was right waits for its second factor this
// long, for at most this many codes; each wrong code also counts as a
// failed sign-in of the account (SignInBackoff), so guessing codes across
// many challenges slows down like guessing passwords.
const (
	MFAChallengeTTL   = 5 * time.Minute
	MFAChallengeTries = 5
)

// Audit actions of the second factor.
const (
	AuditMFAEnabled         = "auth.mfa_enabled"
	AuditMFADisabled        = "auth.mfa_disabled"
	AuditMFAFailed          = "auth.mfa_failed"
	AuditRecoveryCodeUsed   = "auth.recovery_code_used"
	AuditMFAReset           = "user.mfa_reset"
	AuditMFARequiredChanged = "clinic.mfa_requirement_changed"
)

var (
	// ErrMFAEnrolmentRequired: the clinic requires a second factor and the
	// person has none yet; only enrolling (and signing out) is open to them.
	ErrMFAEnrolmentRequired = rejectWith(Forbidden, "mfa_enrolment_required",
		"your clinic requires two-factor sign-in: set up an authenticator app first")
	// ErrMFARequiredByClinic: a person cannot turn off what the clinic requires.
	ErrMFARequiredByClinic = rejectWith(Conflict, "mfa_required",
		"your clinic requires two-factor sign-in, so it cannot be turned off; an admin can reset it if you lost your authenticator")
	ErrMFAAlreadyOn  = rejectWith(Conflict, "mfa_already_enabled", "two-factor sign-in is already on; turn it off first to use another authenticator")
	ErrMFANotStarted = rejectWith(Conflict, "mfa_not_started", "start the set-up first: no authenticator is being added")
	ErrMFAOff        = rejectWith(Conflict, "mfa_not_enabled", "two-factor sign-in is not on")
)

// MFAEnrolmentNeeded says whether a person must add a second factor before
// doing anything else: their clinic requires one and they have none.
func MFAEnrolmentNeeded(clinicRequires, enabled bool) bool { return clinicRequires && !enabled }

// MayDisableMFA says whether a person may turn their second factor off.
func MayDisableMFA(clinicRequires, enabled bool) error {
	switch {
	case !enabled:
		return ErrMFAOff
	case clinicRequires:
		return ErrMFARequiredByClinic
	}
	return nil
}
