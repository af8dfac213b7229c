package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// Token kinds are told apart by prefix, so a token is never looked up in
// the wrong table.
const (
	sessionPrefix = "hs_"
	visitPrefix   = "hv_"
)

// caller is who sent the request: a provider (User) or a patient (Visit).
type caller struct {
	User      *store.User
	Clinic    *store.Clinic
	SessionID string
	Visit     *store.Visit
	// Guest: someone a provider brought into a visit's call by a link.
	Guest *store.Guest
}

const callerKey = "caller"

func callerOf(c *gin.Context) *caller {
	v, _ := c.Get(callerKey)
	cl, _ := v.(*caller)
	return cl
}

func newToken(prefix string) (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func bearer(c *gin.Context) string {
	if h := c.GetHeader("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	}
	// EventSource cannot send headers: the live-event stream may take the
	// token as a query parameter (never logged).
	if c.FullPath() == "/api/v1/events" {
		return c.Query("access_token")
	}
	return ""
}

// authenticate resolves the caller, if any; routes then require a kind.
func (h *handlers) authenticate(c *gin.Context) {
	token := bearer(c)
	switch {
	case token == "":
	case strings.HasPrefix(token, sessionPrefix):
		cl, err := h.sessionCaller(c, token)
		if err != nil {
			fail(c, err)
			return
		}
		c.Set(callerKey, cl)
	case strings.HasPrefix(token, visitPrefix):
		v, err := h.DB.With(c).Visits.ByTokenHash(hashToken(token))
		if errors.Is(err, store.ErrNotFound) || (err == nil && v.State == store.VisitEnded) {
			fail(c, newError(http.StatusUnauthorized, "unauthorized", "this visit link is no longer valid"))
			return
		} else if err != nil {
			fail(c, err)
			return
		}
		c.Set(callerKey, &caller{Visit: &v})
	case strings.HasPrefix(token, guestPrefix):
		cl, err := h.guestCaller(c, token)
		if err != nil {
			fail(c, err)
			return
		}
		c.Set(callerKey, cl)
	default:
		fail(c, errUnauthorized)
		return
	}
	c.Next()
}

func (h *handlers) sessionCaller(c *gin.Context, token string) (*caller, error) {
	q := h.DB.With(c)
	s, err := q.Sessions.ByTokenHash(hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthorized
	} else if err != nil {
		return nil, err
	}
	user, err := q.Users.Get(s.UserID)
	if err != nil {
		return nil, err
	}
	if !user.Active() { // deactivation also revoked the session: say why
		return nil, errDeactivated
	}
	now := time.Now().UTC()
	switch {
	case s.RevokedAt != nil:
		return nil, newError(http.StatusUnauthorized, "signed_out", "you have signed out; sign in again")
	case now.After(s.ExpiresAt):
		return nil, newError(http.StatusUnauthorized, "session_expired", "your session has expired; sign in again")
	case now.Sub(s.LastSeenAt) > h.sessionIdle():
		return nil, newError(http.StatusUnauthorized, "session_idle", "you were signed out after a period of inactivity; sign in again")
	}
	if now.Sub(s.LastSeenAt) > time.Minute { // touch at most once a minute
		if err := q.Sessions.Touch(s.ID, now); err != nil {
			return nil, err
		}
	}
	cl, err := q.Clinics.Get(user.ClinicID)
	if err != nil {
		return nil, err
	}
	return &caller{User: &user, Clinic: &cl, SessionID: s.ID}, nil
}

func (h *handlers) sessionIdle() time.Duration {
	if h.SessionIdle > 0 {
		return h.SessionIdle
	}
	return 30 * time.Minute
}

func (h *handlers) sessionTTL() time.Duration {
	if h.SessionTTL > 0 {
		return h.SessionTTL
	}
	return 12 * time.Hour
}

func requireProvider(c *gin.Context) {
	if cl := callerOf(c); cl == nil || cl.User == nil {
		fail(c, errUnauthorized)
		return
	}
	c.Next()
}

func requirePatient(c *gin.Context) {
	if cl := callerOf(c); cl == nil || cl.Visit == nil {
		fail(c, newError(http.StatusUnauthorized, "unauthorized", "send the visit token as Authorization: Bearer <token>"))
		return
	}
	c.Next()
}

// requireAnyone lets in a provider or a patient; a guest sees only its
// own routes (requireGuest, requireInCall).
func requireAnyone(c *gin.Context) {
	if cl := callerOf(c); cl == nil || (cl.User == nil && cl.Visit == nil) {
		fail(c, errUnauthorized)
		return
	}
	c.Next()
}

// dummyHash keeps a login for an unknown email as slow as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no-such-user"), bcrypt.DefaultCost)

func (h *handlers) login(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.signIn)
}

func (h *handlers) logout(c *gin.Context) {
	cl := callerOf(c)
	reply(c, http.StatusNoContent, nil, h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Sessions.Revoke(cl.SessionID, time.Now().UTC()); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditSignedOut)
		row.TargetUserID = &cl.User.ID
		return q.Audit.Append(row)
	}))
}

var errBadCredentials = newError(http.StatusUnauthorized, "bad_credentials", "wrong email or password")

// signIn checks a provider's password and opens a session, or, for a
// person with a second factor, answers with a challenge to send its code
// with (POST /auth/mfa). An unknown email
// takes as long as a wrong password, and reads the same. Wrong passwords in
// a row make the account's sign-in wait (clinic.SignInBackoff), the right
// password too, and are audited; the next sign-in is told how many there
// were.
func (h *handlers) signIn(c *gin.Context, req loginRequest) (gin.H, error) {
	q := h.DB.With(c)
	u, err := q.Users.ByEmail(req.Email)
	hash := dummyHash
	if err == nil {
		hash = []byte(u.PasswordHash)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	right := bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) == nil
	if err != nil {
		return nil, errBadCredentials
	}
	now := time.Now().UTC()
	if err := signInWait(c, u, now); err != nil {
		return nil, err
	}
	if !right {
		return nil, h.signInFailed(c, u, now)
	}
	if !u.Active() { // told only to who knows the password
		return nil, errDeactivated
	}
	if u.MFAEnabled() {
		// The failed sign-ins are cleared only once the second factor
		// passes: a known password does not buy fresh guesses at codes.
		return h.signInChallenge(c, u, now)
	}
	return h.completeSignIn(c, u, now)
}

// signInFailed counts and audits a wrong password for u.
func (h *handlers) signInFailed(c *gin.Context, u store.User, now time.Time) error {
	err := h.DB.InTx(c, func(q store.Queries) error {
		n, err := q.Users.SignInFailed(u.ID, now)
		if err != nil {
			return err
		}
		// Whoever typed it is unknown: the row is about the account, from
		// an address.
		return q.Audit.Append(store.AuditEvent{ClinicID: u.ClinicID, At: now, ActorKind: clinic.ActorSystem, ActorID: "sign-in",
			Action: clinic.AuditSignInFailed, Address: c.ClientIP(), TargetUserID: &u.ID, Detail: fmt.Sprintf("%d in a row", n)})
	})
	if err != nil {
		return err
	}
	return errBadCredentials
}

// errDeactivated: the person's access to the clinic was taken away.
var errDeactivated = newError(http.StatusUnauthorized, "deactivated", "your access to this clinic was removed; ask its admins if this is a mistake")

// userView is a signed-in person; name is what patients see of them.
func userView(u store.User) gin.H {
	return gin.H{"id": u.ID, "email": u.Email, "name": u.DisplayName, "fullName": u.FullName, "displayName": u.DisplayName,
		"role": u.Role, "clinicId": u.ClinicID, "active": u.Active()}
}
