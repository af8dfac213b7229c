package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/mailer"
	"github.com/handoff-telehealth/handoff/store"
)

// People and plan: what owners and admins change about their clinic. Who
// may do what is the domain's (clinic.Require, clinic.MayAssignRole, ...).

// requirePower lets through a caller whose role has power p.
func requirePower(p clinic.Power) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := clinic.Require(callerOf(c).User.Role, p); err != nil {
			fail(c, err)
			return
		}
		c.Next()
	}
}

func (h *handlers) clinicSettings(c *gin.Context) {
	cl := callerOf(c)
	n, err := h.DB.With(c).Rooms.SharedInUse(cl.Clinic.ID)
	reply(c, http.StatusOK, gin.H{"clinic": clinicView(*cl.Clinic), "sharedRoomsInUse": n}, err)
}

func clinicView(cl store.Clinic) gin.H {
	return gin.H{"id": cl.ID, "name": cl.Name, "plan": cl.Plan, "requireMfa": cl.RequireMFA, "waitAlertMinutes": cl.WaitAlertMinutes, "patientChat": cl.PatientChat}
}

func (h *handlers) changePlan(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setPlan)
}

// setPlan changes the clinic's plan; a downgrade that hides shared rooms in
// use needs confirming (clinic.MayChangePlan).
func (h *handlers) setPlan(c *gin.Context, req planRequest) (gin.H, error) {
	cl := *callerOf(c).Clinic
	err := h.DB.InTx(c, func(q store.Queries) error {
		n, err := q.Rooms.SharedInUse(cl.ID)
		if err != nil {
			return err
		}
		if err := clinic.MayChangePlan(cl.Plan, req.Plan, n, req.Confirm); err != nil {
			return err
		}
		if req.Plan == cl.Plan {
			return nil
		}
		if err := q.Clinics.SetPlan(cl.ID, req.Plan); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditPlanChanged)
		row.Detail = fmt.Sprintf("%s → %s", cl.Plan, req.Plan)
		cl.Plan = req.Plan
		return q.Audit.Append(row)
	})
	return gin.H{"clinic": clinicView(cl)}, err
}

// listPeople: the clinic's people, deactivated ones too, and the
// invitations still pending.
func (h *handlers) listPeople(c *gin.Context) {
	cl := callerOf(c)
	q := h.DB.With(c)
	idx, err := h.loadClinic(c, cl.Clinic.ID)
	if err != nil {
		fail(c, err)
		return
	}
	personal := map[string]string{}
	for _, r := range idx.rooms {
		if r.Kind == store.RoomPersonal && r.OwnerID != nil {
			personal[*r.OwnerID] = r.ID
		}
	}
	people := []gin.H{}
	for _, u := range sortedUsers(idx) {
		people = append(people, personView(u, personal[u.ID]))
	}
	pending, err := q.Invitations.Pending(cl.Clinic.ID, time.Now().UTC())
	invitations := make([]gin.H, len(pending))
	for i, inv := range pending {
		invitations[i] = invitationView(inv)
		invitations[i]["invitedBy"] = gin.H{"id": inv.InvitedByID, "name": idx.users[inv.InvitedByID].FullName}
	}
	reply(c, http.StatusOK, gin.H{"people": people, "invitations": invitations}, err)
}

func personView(u store.User, personalRoomID string) gin.H {
	v := gin.H{"id": u.ID, "email": u.Email, "fullName": u.FullName, "displayName": u.DisplayName, "role": u.Role, "active": u.Active(), "mfaEnabled": u.MFAEnabled(), "personalRoomId": nil}
	if personalRoomID != "" {
		v["personalRoomId"] = personalRoomID
	}
	return v
}

func invitationView(inv store.Invitation) gin.H {
	return gin.H{"id": inv.ID, "email": inv.Email, "role": inv.Role, "expiresAt": inv.ExpiresAt}
}

func (h *handlers) invite(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, h.invitePerson)
}

// invitePerson records an invitation and gives its link (and mails it when
// a mail server is configured). Someone with an account, or already
// invited, is refused: resend their invitation instead.
func (h *handlers) invitePerson(c *gin.Context, req inviteRequest) (gin.H, error) {
	cl := callerOf(c)
	if err := clinic.MayAssignRole(cl.User.Role, "", req.Role, 0); err != nil {
		return nil, err
	}
	token, tokenHash := newToken(invitePrefix)
	now := time.Now().UTC()
	inv := store.Invitation{ID: uuid.NewString(), ClinicID: cl.Clinic.ID, Email: req.Email, Role: req.Role, TokenHash: tokenHash,
		InvitedByID: cl.User.ID, CreatedAt: now, ExpiresAt: now.Add(clinic.InvitationLifetime)}
	err := h.DB.InTx(c, func(q store.Queries) error {
		if _, err := q.Users.ByEmail(req.Email); err == nil {
			return clinic.ErrTaken("email")
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := q.Invitations.PendingFor(cl.Clinic.ID, req.Email, now); err == nil {
			return clinic.ErrAlreadyInvited
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := q.Invitations.Create(inv); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditInvited)
		row.Detail = fmt.Sprintf("%s as %s", inv.Email, inv.Role)
		return q.Audit.Append(row)
	})
	if err != nil {
		return nil, err
	}
	return h.invitationSent(c, inv, token), nil
}

// invitationSent is the answer to an invitation made or resent: its link,
// and whether it was mailed.
func (h *handlers) invitationSent(c *gin.Context, inv store.Invitation, token string) gin.H {
	link := h.link(c, "invite", token)
	emailed := h.mail(c, mailer.Message{To: inv.Email, Subject: fmt.Sprintf("You are invited to %s on Handoff", callerOf(c).Clinic.Name),
		Body: fmt.Sprintf("%s invites you to join %s on Handoff as %s.\n\nTo set your name and password, open this link before %s:\n\n%s\n\nThe link works once.\n",
			callerOf(c).User.FullName, callerOf(c).Clinic.Name, inv.Role, inv.ExpiresAt.Format("2 January 2006 15:04 MST"), link)})
	return gin.H{"invitation": invitationView(inv), "link": link, "emailed": emailed}
}

// pendingInvitation is the :id invitation of the caller's clinic that the
// caller may manage.
func (h *handlers) pendingInvitation(c *gin.Context) (store.Invitation, error) {
	id, err := pathID(c, "invitation")
	if err != nil {
		return store.Invitation{}, err
	}
	inv, err := h.DB.With(c).Invitations.InClinic(id, callerOf(c).Clinic.ID)
	if err != nil {
		return inv, errNotFound("invitation")
	}
	return inv, clinic.MayManage(callerOf(c).User.Role, inv.Role)
}

// resendInvitation gives an invitation a new link and lifetime (the old
// link stops working) and sends it again.
func (h *handlers) resendInvitation(c *gin.Context) {
	inv, err := h.pendingInvitation(c)
	if err != nil {
		fail(c, err)
		return
	}
	token, tokenHash := newToken(invitePrefix)
	inv.ExpiresAt = time.Now().UTC().Add(clinic.InvitationLifetime)
	err = h.changePending(c, inv, clinic.AuditInvitationResent, func(q store.Queries) (bool, error) {
		return q.Invitations.Reissue(inv.ID, tokenHash, inv.ExpiresAt)
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.invitationSent(c, inv, token))
}

func (h *handlers) revokeInvitation(c *gin.Context) {
	inv, err := h.pendingInvitation(c)
	if err != nil {
		fail(c, err)
		return
	}
	reply(c, http.StatusNoContent, nil, h.changePending(c, inv, clinic.AuditInvitationRevoked, func(q store.Queries) (bool, error) {
		return q.Invitations.Revoke(inv.ID, time.Now().UTC())
	}))
}

// changePending applies change to a pending invitation (false: it was not
// pending any more) and audits it as action, in one transaction.
func (h *handlers) changePending(c *gin.Context, inv store.Invitation, action string, change func(store.Queries) (bool, error)) error {
	return h.DB.InTx(c, func(q store.Queries) error {
		ok, err := change(q)
		if err != nil {
			return err
		}
		if !ok {
			return clinic.ErrInvitationClosed
		}
		row := auditRow(c, action)
		row.Detail = inv.Email
		return q.Audit.Append(row)
	})
}

// person is the :id user of the caller's clinic.
func (h *handlers) person(c *gin.Context, q store.Queries) (store.User, error) {
	id, err := pathID(c, "person")
	if err != nil {
		return store.User{}, err
	}
	u, err := q.Users.InClinic(id, callerOf(c).Clinic.ID)
	if errors.Is(err, store.ErrNotFound) {
		return u, errNotFound("person")
	}
	return u, err
}

// activePerson is the :id person of the caller's clinic, who must still be
// active, and how many active owners the clinic has (for the last-owner
// rule).
func (h *handlers) activePerson(c *gin.Context, q store.Queries) (store.User, int, error) {
	u, err := h.person(c, q)
	if err != nil {
		return u, 0, err
	}
	if !u.Active() {
		return u, 0, clinic.ErrDeactivated
	}
	owners, err := q.Users.ActiveOwners(u.ClinicID)
	return u, owners, err
}

func (h *handlers) changeRole(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setRole)
}

// setRole gives a person another role; someone who comes to see patients
// gets a personal room.
func (h *handlers) setRole(c *gin.Context, req roleRequest) (gin.H, error) {
	cl := callerOf(c)
	var body gin.H
	err := h.DB.InTx(c, func(q store.Queries) error {
		u, owners, err := h.activePerson(c, q)
		if err != nil {
			return err
		}
		if err := clinic.MayAssignRole(cl.User.Role, u.Role, req.Role, owners); err != nil {
			return err
		}
		before := u.Role
		u.Role = req.Role
		room, err := q.Rooms.EnsurePersonal(u, time.Now().UTC())
		if err != nil {
			return err
		}
		body = gin.H{"person": personView(u, roomID(room))}
		if before == req.Role {
			return nil
		}
		if err := q.Users.SetRole(u.ID, req.Role); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditRoleChanged)
		row.TargetUserID, row.Detail = &u.ID, fmt.Sprintf("%s → %s", before, req.Role)
		return q.Audit.Append(row)
	})
	return body, err
}

func roomID(r *store.Room) string {
	if r == nil {
		return ""
	}
	return r.ID
}

// deactivate takes a person's access away at once: their sessions end
// (live dashboards are told within a few seconds), their personal room
// closes, and patients waiting there stay for admins to see or move.
func (h *handlers) deactivate(c *gin.Context) {
	cl := callerOf(c)
	var body gin.H
	err := h.DB.InTx(c, func(q store.Queries) error {
		u, owners, err := h.activePerson(c, q)
		if err != nil {
			return err
		}
		if err := clinic.MayDeactivate(cl.User.Actor(), u.ID, u.Role, owners); err != nil {
			return err
		}
		now := time.Now().UTC()
		if _, err := q.Users.Deactivate(u.ID, now); err != nil {
			return err
		}
		u.DeactivatedAt = &now
		body = gin.H{"person": personView(u, "")}
		row := auditRow(c, clinic.AuditDeactivated)
		row.TargetUserID = &u.ID
		return q.Audit.Append(row)
	})
	reply(c, http.StatusOK, body, err)
}

// issueResetLink gives an admin a reset link for a person (mailed to them
// too when mail is configured): how a password is reset without mail.
func (h *handlers) issueResetLink(c *gin.Context) {
	cl := callerOf(c)
	u, err := h.person(c, h.DB.With(c))
	if err == nil && !u.Active() {
		err = clinic.ErrDeactivated
	}
	if err == nil {
		err = clinic.MayManage(cl.User.Role, u.Role)
	}
	if err != nil {
		fail(c, err)
		return
	}
	link, expires, err := h.issueReset(c, u, clinic.AuditResetLinkIssued, cl.User.ID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"link": link, "expiresAt": expires, "emailed": h.mail(c, resetMail(u.Email, link))})
}
