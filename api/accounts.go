package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/mailer"
	"github.com/handoff-telehealth/handoff/store"
)

// Accounts: a clinic's first sign-up, invitations' and reset links' pages,
// and each person's own profile and password.

// Link tokens are told apart from sessions' and visits' by prefix.
const (
	invitePrefix = "hi_"
	resetPrefix  = "hr_"
)

var errSignupClosed = newError(http.StatusForbidden, "signup_closed", "creating a clinic here is turned off; ask the operator of this Handoff")

func hashPassword(pw string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(b), err
}

// openSession signs u in: a new session and the sign-in answer.
func (h *handlers) openSession(ctx context.Context, u store.User) (gin.H, error) {
	token, tokenHash := newToken(sessionPrefix)
	now := time.Now().UTC()
	s := store.Session{ID: uuid.NewString(), TokenHash: tokenHash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(h.sessionTTL()), LastSeenAt: now}
	if c, ok := ctx.(*gin.Context); ok {
		s.Address, s.UserAgent = c.ClientIP(), truncate(c.Request.UserAgent(), 200)
	}
	if err := h.DB.With(ctx).Sessions.Create(s); err != nil {
		return nil, err
	}
	return gin.H{"token": token, "expiresAt": s.ExpiresAt, "idleTimeoutSeconds": int(h.sessionIdle().Seconds()), "user": userView(u)}, nil
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// auditRow is an audit row of something the caller did to its clinic, from
// the request's address.
func auditRow(c *gin.Context, action string) store.AuditEvent {
	cl := callerOf(c)
	return store.AuditEvent{ClinicID: cl.Clinic.ID, At: time.Now().UTC(), ActorKind: clinic.ActorUser, ActorID: cl.User.ID, Action: action, Address: c.ClientIP()}
}

// link is the address of a page of the dashboard carrying token in its
// fragment (never sent to a server, so never in a log).
func (h *handlers) link(c *gin.Context, kind, token string) string {
	return h.publicBase(c) + "/#" + kind + "=" + token
}

// publicBase is where people reach Handoff: the configured public URL, or
// the request's own scheme and host.
func (h *handlers) publicBase(c *gin.Context) string {
	if base := strings.TrimRight(h.PublicURL, "/"); base != "" {
		return base
	}
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

// mail sends m if a mail server is configured; it tells whether it went.
// A failure is logged (without the address) and the link is still shown.
func (h *handlers) mail(ctx context.Context, m mailer.Message) bool {
	if h.Mailer == nil {
		return false
	}
	if err := h.Mailer.Send(ctx, m); err != nil {
		h.Logger.Warn("mail not sent", "subject", m.Subject, "error", err)
		return false
	}
	return true
}

// signupOpen tells the sign-in page whether to offer "Create your clinic".
func (h *handlers) signupOpen(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"open": h.OpenSignup})
}

func (h *handlers) signup(c *gin.Context) {
	if !h.OpenSignup {
		fail(c, errSignupClosed)
		return
	}
	serveRequest(c, bind, http.StatusCreated, h.foundClinic)
}

// foundClinic creates a clinic with its owner, and signs the owner in.
func (h *handlers) foundClinic(c *gin.Context, req signupRequest) (gin.H, error) {
	hash, err := hashPassword(req.Password)
	if err != nil {
		return nil, err
	}
	var owner store.User
	err = h.DB.InTx(c, func(q store.Queries) error {
		_, owner, err = q.FoundClinic(store.Founding{ClinicName: req.ClinicName, OwnerFullName: req.OwnerName, OwnerDisplayName: req.DisplayName,
			Email: req.Email, PasswordHash: hash, Address: c.ClientIP()}, time.Now().UTC())
		return err
	})
	if err != nil {
		return nil, err
	}
	return h.openSession(c, owner)
}

// invitation is the usable invitation of the :token in the path.
func (h *handlers) invitation(c *gin.Context) (store.Invitation, error) {
	token := c.Param("token")
	if !strings.HasPrefix(token, invitePrefix) || len(token) > 100 {
		return store.Invitation{}, clinic.ErrLinkInvalid
	}
	return h.DB.With(c).Invitations.Usable(hashToken(token), time.Now().UTC())
}

// showInvitation is what the invitation's page shows before it is accepted.
func (h *handlers) showInvitation(c *gin.Context) {
	inv, err := h.invitation(c)
	if err != nil {
		fail(c, err)
		return
	}
	cl, err := h.DB.With(c).Clinics.Get(inv.ClinicID)
	reply(c, http.StatusOK, gin.H{"clinic": gin.H{"name": cl.Name}, "email": inv.Email, "role": inv.Role, "expiresAt": inv.ExpiresAt}, err)
}

func (h *handlers) acceptInvitation(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, h.joinClinic)
}

// joinClinic makes the invited person's account (and personal room) and
// spends the invitation, in one transaction: of two racing accepts one wins.
func (h *handlers) joinClinic(c *gin.Context, req newAccount) (gin.H, error) {
	inv, err := h.invitation(c)
	if err != nil {
		return nil, err
	}
	hash, err := hashPassword(req.Password)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	u := store.User{ID: uuid.NewString(), ClinicID: inv.ClinicID, Email: inv.Email, FullName: req.Name, DisplayName: req.DisplayName,
		Role: inv.Role, PasswordHash: hash, CreatedAt: now}
	err = h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Invitations.Accept(inv.ID, now); err != nil {
			return err
		}
		if _, err := q.AddUser(u, now); err != nil {
			return err
		}
		if err := q.Invitations.SetUser(inv.ID, u.ID); err != nil {
			return err
		}
		return q.Audit.Append(store.AuditEvent{ClinicID: inv.ClinicID, At: now, ActorKind: clinic.ActorUser, ActorID: u.ID,
			Action: clinic.AuditInvitationUsed, Address: c.ClientIP(), TargetUserID: &u.ID, Detail: "role " + string(u.Role)})
	})
	if err != nil {
		return nil, err
	}
	return h.openSession(c, u)
}

func (h *handlers) forgotPassword(c *gin.Context) {
	serveRequest(c, bind, http.StatusAccepted, h.sendResetLink)
}

// sendResetLink mails a reset link to an active account's address. The
// answer is the same whether the account exists or not.
func (h *handlers) sendResetLink(c *gin.Context, req forgotRequest) (gin.H, error) {
	answer := gin.H{}
	if h.Mailer == nil {
		return answer, nil
	}
	u, err := h.DB.With(c).Users.ByEmail(req.Email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Active()) {
		return answer, nil
	} else if err != nil {
		return nil, err
	}
	link, _, err := h.issueReset(c, u, clinic.AuditResetRequested, u.ID)
	if err != nil {
		return nil, err
	}
	h.mail(c, resetMail(u.Email, link))
	return answer, nil
}

// issueReset makes a reset link for u (earlier ones stop working), audited
// as action by actorID.
func (h *handlers) issueReset(c *gin.Context, u store.User, action, actorID string) (string, time.Time, error) {
	token, tokenHash := newToken(resetPrefix)
	now := time.Now().UTC()
	expires := now.Add(clinic.ResetLinkLifetime)
	err := h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Resets.Create(store.PasswordReset{ID: uuid.NewString(), UserID: u.ID, TokenHash: tokenHash, CreatedAt: now, ExpiresAt: expires}); err != nil {
			return err
		}
		return q.Audit.Append(store.AuditEvent{ClinicID: u.ClinicID, At: now, ActorKind: clinic.ActorUser, ActorID: actorID, Action: action,
			Address: c.ClientIP(), TargetUserID: &u.ID})
	})
	return h.link(c, "reset", token), expires, err
}

func resetMail(to, link string) mailer.Message {
	return mailer.Message{To: to, Subject: "Reset your Handoff password", Body: fmt.Sprintf(
		"Someone asked to reset the password of your Handoff account.\n\nTo choose a new password, open this link within %s:\n\n%s\n\nIf it was not you, ignore this mail: your password stays as it is.\n",
		clinic.ResetLinkLifetime, link)}
}

func (h *handlers) resetPassword(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setPasswordByLink)
}

// setPasswordByLink spends a reset link: the new password, every session of
// the person ended, and a new one opened.
func (h *handlers) setPasswordByLink(c *gin.Context, req resetRequest) (gin.H, error) {
	if !strings.HasPrefix(req.Token, resetPrefix) {
		return nil, clinic.ErrLinkInvalid
	}
	hash, err := hashPassword(req.Password)
	if err != nil {
		return nil, err
	}
	var u store.User
	now := time.Now().UTC()
	err = h.DB.InTx(c, func(q store.Queries) error {
		userID, err := q.Resets.Use(hashToken(req.Token), now)
		if err != nil {
			return err
		}
		if u, err = q.Users.Get(userID); err != nil {
			return err
		}
		if !u.Active() {
			return clinic.ErrLinkInvalid
		}
		if err := q.Users.SetPassword(u.ID, hash); err != nil {
			return err
		}
		if err := q.Sessions.RevokeOthers(u.ID, "", now); err != nil {
			return err
		}
		return q.Audit.Append(store.AuditEvent{ClinicID: u.ClinicID, At: now, ActorKind: clinic.ActorUser, ActorID: u.ID,
			Action: clinic.AuditPasswordReset, Address: c.ClientIP(), TargetUserID: &u.ID})
	})
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled() { // a mailed link stands in for the password only
		return h.signInChallenge(c, u, now)
	}
	return h.openSession(c, u)
}

func (h *handlers) changeProfile(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setProfile)
}

// setProfile changes the caller's names; a provider's personal room takes
// the new display name.
func (h *handlers) setProfile(c *gin.Context, req profileRequest) (gin.H, error) {
	u := *callerOf(c).User
	if req.Name != nil {
		u.FullName = *req.Name
	}
	if req.DisplayName != nil {
		u.DisplayName = *req.DisplayName
	}
	err := h.DB.InTx(c, func(q store.Queries) error { return h.saveProfile(c, q, u) })
	return gin.H{"user": userView(u)}, err
}

// saveProfile writes u's names, renames its personal room, and audits it.
func (h *handlers) saveProfile(c *gin.Context, q store.Queries, u store.User) error {
	if err := q.Users.SetProfile(u.ID, u.FullName, u.DisplayName); err != nil {
		return err
	}
	if err := q.Rooms.RenamePersonal(u.ID, u.DisplayName); err != nil {
		return err
	}
	row := auditRow(c, clinic.AuditProfileChanged)
	row.TargetUserID = &u.ID
	return q.Audit.Append(row)
}

func (h *handlers) changePassword(c *gin.Context) {
	serveRequest(c, bind, http.StatusNoContent, h.setPassword)
}

var errWrongPassword = newError(http.StatusBadRequest, "wrong_password", "the current password is wrong")

// setPassword changes the caller's password; every other session of theirs
// ends.
func (h *handlers) setPassword(c *gin.Context, req passwordRequest) (any, error) {
	cl := callerOf(c)
	if bcrypt.CompareHashAndPassword([]byte(cl.User.PasswordHash), []byte(req.CurrentPassword)) != nil {
		return nil, errWrongPassword
	}
	hash, err := hashPassword(req.NewPassword)
	if err != nil {
		return nil, err
	}
	return nil, h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Users.SetPassword(cl.User.ID, hash); err != nil {
			return err
		}
		if err := q.Sessions.RevokeOthers(cl.User.ID, cl.SessionID, time.Now().UTC()); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditPasswordChanged)
		row.TargetUserID = &cl.User.ID
		return q.Audit.Append(row)
	})
}
