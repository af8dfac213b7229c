package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/mfa"
	"github.com/handoff-telehealth/handoff/store"
)

// challengePrefix marks a sign-in challenge: a password that was right,
// waiting for its second factor.
const challengePrefix = "hm_"

var (
	errBadCode = newError(http.StatusUnauthorized, "bad_code", "that code is not right, or was already used; enter the current code from your authenticator app")
	// errWrongCode is errBadCode for someone signed in already: not a 401,
	// which would read as being signed out.
	errWrongCode     = newError(http.StatusBadRequest, "bad_code", "that code is not right, or was already used; enter the current code from your authenticator app")
	errChallengeOver = newError(http.StatusUnauthorized, "challenge_expired", "this sign-in has expired or had too many wrong codes; sign in again")
)

// errNoWay says that both ways of giving the second factor are missing.
var errNoWay = errBadRequest("send the code from your authenticator app as code, or a recovery code as recoveryCode")

type secondFactorRequest struct {
	Challenge    string `json:"challenge"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recoveryCode"`
}

func (r *secondFactorRequest) check() error {
	if r.Challenge == "" || len(r.Challenge) > 100 {
		return errBadRequest("challenge is required: the one sign-in answered with")
	}
	return checkFactor(r.Code, r.RecoveryCode)
}

func checkFactor(code, recovery string) error {
	if (code == "") == (recovery == "") || len(code) > 20 || len(recovery) > 40 {
		return errNoWay
	}
	return nil
}

// signInChallenge answers a right password of a person with a second
// factor: no session yet, a challenge to send the code with.
func (h *handlers) signInChallenge(c *gin.Context, u store.User, now time.Time) (gin.H, error) {
	token, hash := newToken(challengePrefix)
	ch := store.MFAChallenge{ID: uuid.NewString(), UserID: u.ID, TokenHash: hash, ExpiresAt: now.Add(clinic.MFAChallengeTTL)}
	if err := h.DB.With(c).MFA.NewChallenge(ch); err != nil {
		return nil, err
	}
	return gin.H{"mfaRequired": true, "challenge": token, "expiresAt": ch.ExpiresAt}, nil
}

func (h *handlers) secondFactor(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.passSecondFactor)
}

// passSecondFactor finishes a sign-in with the code of the person's
// authenticator (each time step's code is taken once) or one of their
// recovery codes. A wrong one counts against the challenge and, as a
// failed sign-in, against the account.
func (h *handlers) passSecondFactor(c *gin.Context, req secondFactorRequest) (gin.H, error) {
	now := time.Now().UTC()
	q := h.DB.With(c)
	ch, err := q.MFA.Challenge(hashToken(req.Challenge), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errChallengeOver
	} else if err != nil {
		return nil, err
	}
	u, err := q.Users.Get(ch.UserID)
	if err != nil {
		return nil, err
	}
	if err := signInWait(c, u, now); err != nil {
		return nil, err
	}
	if !u.Active() {
		return nil, errDeactivated
	}
	err = h.DB.InTx(c, func(q store.Queries) error {
		met, err := q.MFA.ChallengeMet(ch.ID, now)
		if err != nil || !met {
			return errors.Join(err, errChallengeOver)
		}
		if passed, err := takeFactor(c, q, u, req.Code, req.RecoveryCode, now); err != nil {
			return err
		} else if !passed {
			return errBadCode // rolls the challenge back to live
		}
		return nil
	})
	if errors.Is(err, errBadCode) {
		return nil, h.secondFactorFailed(c, u, ch, now)
	} else if err != nil {
		return nil, err
	}
	return h.completeSignIn(c, u, now)
}

// takeFactor checks and spends u's code or recovery code.
func takeFactor(c *gin.Context, q store.Queries, u store.User, code, recovery string, now time.Time) (bool, error) {
	if code != "" {
		step, ok := mfa.Check(u.TOTPSecret.String(), code, now)
		if !ok {
			return false, nil
		}
		return q.Users.TakeTOTPStep(u.ID, step)
	}
	used, err := q.MFA.UseRecoveryCode(u.ID, mfa.HashRecoveryCode(recovery), now)
	if err != nil || !used {
		return false, err
	}
	left, err := q.MFA.RecoveryCodesLeft(u.ID)
	if err != nil {
		return false, err
	}
	return true, q.Audit.Append(store.AuditEvent{ClinicID: u.ClinicID, At: now, ActorKind: clinic.ActorUser, ActorID: u.ID,
		Action: clinic.AuditRecoveryCodeUsed, Address: c.ClientIP(), TargetUserID: &u.ID, Detail: fmt.Sprintf("%d left", left)})
}

// secondFactorFailed counts a wrong code against the challenge and the
// account, and audits it.
func (h *handlers) secondFactorFailed(c *gin.Context, u store.User, ch store.MFAChallenge, now time.Time) error {
	live := true
	err := h.DB.InTx(c, func(q store.Queries) error {
		var err error
		if live, err = q.MFA.ChallengeTried(ch.ID, clinic.MFAChallengeTries, now); err != nil {
			return err
		}
		n, err := q.Users.SignInFailed(u.ID, now)
		if err != nil {
			return err
		}
		return q.Audit.Append(store.AuditEvent{ClinicID: u.ClinicID, At: now, ActorKind: clinic.ActorSystem, ActorID: "sign-in",
			Action: clinic.AuditMFAFailed, Address: c.ClientIP(), TargetUserID: &u.ID, Detail: fmt.Sprintf("%d failed sign-ins in a row", n)})
	})
	switch {
	case err != nil:
		return err
	case !live:
		return errChallengeOver
	}
	return errBadCode
}

// signInWait refuses a sign-in while the account's back-off runs.
func signInWait(c *gin.Context, u store.User, now time.Time) error {
	if u.SignInWaitUntil == nil || !now.Before(*u.SignInWaitUntil) {
		return nil
	}
	wait := int(math.Ceil(u.SignInWaitUntil.Sub(now).Seconds()))
	c.Header("Retry-After", strconv.Itoa(wait))
	return newError(http.StatusTooManyRequests, "sign_in_waiting",
		fmt.Sprintf("too many failed sign-ins for this account; try again in %d seconds", wait))
}

// completeSignIn opens the session of a person who passed every factor,
// clears their failed sign-ins and tells them how many there were.
func (h *handlers) completeSignIn(c *gin.Context, u store.User, now time.Time) (gin.H, error) {
	failed := u.FailedSignIns
	if err := h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Users.SignedIn(u.ID); err != nil {
			return err
		}
		return q.Audit.Append(store.AuditEvent{ClinicID: u.ClinicID, At: now, ActorKind: clinic.ActorUser, ActorID: u.ID,
			Action: clinic.AuditSignedIn, Address: c.ClientIP(), TargetUserID: &u.ID})
	}); err != nil {
		return nil, err
	}
	cl, err := h.DB.With(c).Clinics.Get(u.ClinicID)
	if err != nil {
		return nil, err
	}
	body, err := h.openSession(c, u)
	if body != nil {
		body["failedSignIns"] = failed
		body["mfaEnrolmentRequired"] = clinic.MFAEnrolmentNeeded(cl.RequireMFA, u.MFAEnabled())
	}
	return body, err
}

// mfaRoutes are what a person whose clinic requires a second factor they
// do not have yet may still reach: themselves, enrolling, signing out.
var mfaRoutes = map[string]bool{
	"GET /api/v1/me": true, "GET /api/v1/me/mfa": true, "POST /api/v1/me/mfa/enrol": true,
	"POST /api/v1/me/mfa/confirm": true, "POST /api/v1/auth/logout": true, "GET /api/v1/openapi.json": true,
}

// requireSecondFactor holds a signed-in person without the second factor
// their clinic requires to enrolling it.
func requireSecondFactor(c *gin.Context) {
	cl := callerOf(c)
	if cl != nil && cl.User != nil && clinic.MFAEnrolmentNeeded(cl.Clinic.RequireMFA, cl.User.MFAEnabled()) &&
		!mfaRoutes[c.Request.Method+" "+c.FullPath()] {
		fail(c, clinic.ErrMFAEnrolmentRequired)
		return
	}
	c.Next()
}

// mfaView is what a person sees of their second factor.
func (h *handlers) mfaView(c *gin.Context, u store.User, requires bool) (gin.H, error) {
	left, err := h.DB.With(c).MFA.RecoveryCodesLeft(u.ID)
	return gin.H{"enabled": u.MFAEnabled(), "enabledAt": u.TOTPEnabledAt, "requiredByClinic": requires, "recoveryCodesLeft": left}, err
}

func (h *handlers) myMFA(c *gin.Context) {
	cl := callerOf(c)
	body, err := h.mfaView(c, *cl.User, cl.Clinic.RequireMFA)
	reply(c, http.StatusOK, body, err)
}

// startMFA makes a new authenticator secret for the caller, shown once as
// a QR code and as text; it is on only once a code from it confirms it.
func (h *handlers) startMFA(c *gin.Context) {
	u := callerOf(c).User
	if u.MFAEnabled() {
		fail(c, clinic.ErrMFAAlreadyOn)
		return
	}
	e, err := mfa.NewEnrolment(u.Email)
	if err == nil {
		err = h.DB.With(c).Users.StartTOTP(u.ID, store.Sealed(e.Secret))
	}
	reply(c, http.StatusOK, e, err)
}

type codeRequest struct {
	Code string `json:"code"`
}

func (r *codeRequest) check() error {
	r.Code = strings.TrimSpace(r.Code)
	if r.Code == "" || len(r.Code) > 20 {
		return errBadRequest("code is required: the 6 digits your authenticator app shows")
	}
	return nil
}

func (h *handlers) confirmMFA(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.enableMFA)
}

// enableMFA turns the second factor on with the authenticator being
// enrolled, once a code from it proves it was added, and gives the
// recovery codes (shown this once; only their hashes are kept).
func (h *handlers) enableMFA(c *gin.Context, req codeRequest) (gin.H, error) {
	cl := callerOf(c)
	now := time.Now().UTC()
	codes, hashes := mfa.NewRecoveryCodes()
	err := h.DB.InTx(c, func(q store.Queries) error {
		u, err := q.Users.Get(cl.User.ID)
		if err != nil {
			return err
		}
		if u.MFAEnabled() {
			return clinic.ErrMFAAlreadyOn
		}
		if u.TOTPPendingSecret == "" {
			return clinic.ErrMFANotStarted
		}
		step, ok := mfa.Check(u.TOTPPendingSecret.String(), req.Code, now)
		if !ok {
			return errWrongCode
		}
		if on, err := q.Users.EnableTOTP(u.ID, u.TOTPPendingSecret, step, hashes, now); err != nil || !on {
			return errors.Join(err, clinic.ErrMFANotStarted)
		}
		row := auditRow(c, clinic.AuditMFAEnabled)
		row.TargetUserID = &u.ID
		return q.Audit.Append(row)
	})
	if err != nil {
		return nil, err
	}
	return gin.H{"enabled": true, "recoveryCodes": codes}, nil
}

type disableMFARequest struct {
	Password     string `json:"password"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recoveryCode"`
}

func (r *disableMFARequest) check() error {
	if r.Password == "" || len(r.Password) > 200 {
		return errBadRequest("password is required")
	}
	return checkFactor(r.Code, r.RecoveryCode)
}

func (h *handlers) disableMFA(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.turnOffMFA)
}

// turnOffMFA turns the caller's second factor off, given their password
// and a code, unless their clinic requires it.
func (h *handlers) turnOffMFA(c *gin.Context, req disableMFARequest) (gin.H, error) {
	cl := callerOf(c)
	now := time.Now().UTC()
	err := h.DB.InTx(c, func(q store.Queries) error {
		u, err := q.Users.Get(cl.User.ID)
		if err != nil {
			return err
		}
		if err := clinic.MayDisableMFA(cl.Clinic.RequireMFA, u.MFAEnabled()); err != nil {
			return err
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(req.Password)) != nil {
			return errWrongPassword
		}
		if ok, err := takeFactor(c, q, u, req.Code, req.RecoveryCode, now); err != nil {
			return err
		} else if !ok {
			return errWrongCode
		}
		if err := q.Users.DisableTOTP(u.ID); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditMFADisabled)
		row.TargetUserID = &u.ID
		return q.Audit.Append(row)
	})
	if err != nil {
		return nil, err
	}
	return gin.H{"enabled": false}, nil
}

// resetMFA is an admin turning a person's second factor off (a lost
// phone): their sessions end, and they sign in with their password alone,
// enrolling again first if the clinic requires it.
func (h *handlers) resetMFA(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.DB.InTx(c, func(q store.Queries) error {
		u, err := h.managedPerson(c, q)
		if err != nil {
			return err
		}
		if !u.MFAEnabled() && u.TOTPPendingSecret == "" {
			return clinic.ErrMFAOff
		}
		if err := q.Users.DisableTOTP(u.ID); err != nil {
			return err
		}
		if err := q.Sessions.RevokeOthers(u.ID, "", time.Now().UTC()); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditMFAReset)
		row.TargetUserID = &u.ID
		return q.Audit.Append(row)
	}))
}

type securityRequest struct {
	RequireMFA *bool `json:"requireMfa"`
}

func (r *securityRequest) check() error {
	if r.RequireMFA == nil {
		return errBadRequest("requireMfa (true or false) is required")
	}
	return nil
}

func (h *handlers) changeSecurity(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setSecurity)
}

// setSecurity turns the clinic's two-factor requirement on or off. On,
// everyone without a second factor is held to enrolling it at their next
// request, the owner who turned it on included.
func (h *handlers) setSecurity(c *gin.Context, req securityRequest) (gin.H, error) {
	cl := *callerOf(c).Clinic
	err := h.DB.InTx(c, func(q store.Queries) error {
		if cl.RequireMFA == *req.RequireMFA {
			return nil
		}
		if err := q.Clinics.SetRequireMFA(cl.ID, *req.RequireMFA); err != nil {
			return err
		}
		cl.RequireMFA = *req.RequireMFA
		row := auditRow(c, clinic.AuditMFARequiredChanged)
		row.Detail = map[bool]string{true: "two-factor sign-in required", false: "two-factor sign-in optional"}[cl.RequireMFA]
		return q.Audit.Append(row)
	})
	return gin.H{"clinic": clinicView(cl)}, err
}
