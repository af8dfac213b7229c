package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

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
		var v store.Visit
		err := h.DB.WithContext(c).Take(&v, "token_hash = ?", hashToken(token)).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && v.State == store.VisitEnded) {
			fail(c, newError(http.StatusUnauthorized, "unauthorized", "this visit link is no longer valid"))
			return
		} else if err != nil {
			fail(c, err)
			return
		}
		c.Set(callerKey, &caller{Visit: &v})
	default:
		fail(c, errUnauthorized)
		return
	}
	c.Next()
}

func (h *handlers) sessionCaller(c *gin.Context, token string) (*caller, error) {
	var s store.Session
	err := h.DB.WithContext(c).Take(&s, "token_hash = ?", hashToken(token)).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errUnauthorized
	} else if err != nil {
		return nil, err
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
		if err := h.DB.WithContext(c).Model(&store.Session{}).Where("id = ?", s.ID).Update("last_seen_at", now).Error; err != nil {
			return nil, err
		}
	}
	cl := &caller{User: &store.User{}, Clinic: &store.Clinic{}, SessionID: s.ID}
	if err := h.DB.WithContext(c).Take(cl.User, "id = ?", s.UserID).Error; err != nil {
		return nil, err
	}
	if err := h.DB.WithContext(c).Take(cl.Clinic, "id = ?", cl.User.ClinicID).Error; err != nil {
		return nil, err
	}
	return cl, nil
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

func requireAnyone(c *gin.Context) {
	if callerOf(c) == nil {
		fail(c, errUnauthorized)
		return
	}
	c.Next()
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, and so is text that is not valid UTF-8.
func decode(c *gin.Context, dst any) error {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return newError(http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		}
		return errBadRequest("cannot read the request body")
	}
	if !utf8.Valid(body) {
		return errBadRequest("the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errBadRequest("malformed JSON: " + err.Error())
	}
	if dec.More() {
		return errBadRequest("malformed JSON: more than one value")
	}
	return nil
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// dummyHash keeps a login for an unknown email as slow as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no-such-user"), bcrypt.DefaultCost)

func (h *handlers) login(c *gin.Context) {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Email == "" || req.Password == "" || len(req.Email) > 320 || len(req.Password) > 200 {
		fail(c, errBadRequest("email and password are required"))
		return
	}
	var u store.User
	err := h.DB.WithContext(c).Take(&u, "email = ?", strings.ToLower(strings.TrimSpace(req.Email))).Error
	hash := dummyHash
	if err == nil {
		hash = []byte(u.PasswordHash)
	} else if !errors.Is(err, gorm.ErrRecordNotFound) {
		fail(c, err)
		return
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || err != nil {
		fail(c, newError(http.StatusUnauthorized, "bad_credentials", "wrong email or password"))
		return
	}
	token, tokenHash := newToken(sessionPrefix)
	now := time.Now().UTC()
	s := store.Session{ID: uuid.NewString(), TokenHash: tokenHash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(h.sessionTTL()), LastSeenAt: now}
	if err := h.DB.WithContext(c).Create(&s).Error; err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": token, "expiresAt": s.ExpiresAt, "idleTimeoutSeconds": int(h.sessionIdle().Seconds()), "user": userView(u)})
}

func (h *handlers) logout(c *gin.Context) {
	cl := callerOf(c)
	if err := h.DB.WithContext(c).Model(&store.Session{}).Where("id = ? AND revoked_at IS NULL", cl.SessionID).
		Update("revoked_at", time.Now().UTC()).Error; err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func userView(u store.User) gin.H {
	return gin.H{"id": u.ID, "email": u.Email, "name": u.DisplayName, "role": u.Role, "clinicId": u.ClinicID}
}
