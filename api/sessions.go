package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// Sessions: a person sees where they are signed in and signs out the
// others; an admin signs a person out everywhere.

// mySessions lists the caller's live sessions, newest first.
func (h *handlers) mySessions(c *gin.Context) {
	cl := callerOf(c)
	live, err := h.DB.With(c).Sessions.LiveOf(cl.User.ID, time.Now().UTC())
	out := make([]gin.H, len(live))
	for i, s := range live {
		out[i] = gin.H{"id": s.ID, "createdAt": s.CreatedAt, "lastSeenAt": s.LastSeenAt, "expiresAt": s.ExpiresAt,
			"address": s.Address, "userAgent": s.UserAgent, "current": s.ID == cl.SessionID}
	}
	reply(c, http.StatusOK, gin.H{"sessions": out}, err)
}

// endMySession signs the caller out of one of their sessions.
func (h *handlers) endMySession(c *gin.Context) {
	cl := callerOf(c)
	id, err := pathID(c, "session")
	if err != nil {
		fail(c, err)
		return
	}
	reply(c, http.StatusNoContent, nil, h.DB.InTx(c, func(q store.Queries) error {
		ok, err := q.Sessions.RevokeOf(cl.User.ID, id, time.Now().UTC())
		if err != nil {
			return err
		}
		if !ok {
			return errNotFound("session")
		}
		return h.auditSignOut(c, q, cl.User.ID, "one session")
	}))
}

// endMyOtherSessions signs the caller out everywhere but here.
func (h *handlers) endMyOtherSessions(c *gin.Context) {
	cl := callerOf(c)
	reply(c, http.StatusNoContent, nil, h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Sessions.RevokeOthers(cl.User.ID, cl.SessionID, time.Now().UTC()); err != nil {
			return err
		}
		return h.auditSignOut(c, q, cl.User.ID, "every other session")
	}))
}

// signOutEverywhere ends every session of a person of the clinic (an
// admin's answer to a lost laptop).
func (h *handlers) signOutEverywhere(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.DB.InTx(c, func(q store.Queries) error {
		u, err := h.managedPerson(c, q)
		if err != nil {
			return err
		}
		if err := q.Sessions.RevokeOthers(u.ID, "", time.Now().UTC()); err != nil {
			return err
		}
		return h.auditSignOut(c, q, u.ID, "every session, by an admin")
	}))
}

// managedPerson is the path's person of the clinic, whom the caller's role
// may manage (clinic.MayManage: owners only for owners).
func (h *handlers) managedPerson(c *gin.Context, q store.Queries) (store.User, error) {
	u, err := h.person(c, q)
	if err != nil {
		return u, err
	}
	return u, clinic.MayManage(callerOf(c).User.Role, u.Role)
}

func (h *handlers) auditSignOut(c *gin.Context, q store.Queries, userID, detail string) error {
	row := auditRow(c, clinic.AuditSignedOut)
	row.TargetUserID, row.Detail = &userID, detail
	return q.Audit.Append(row)
}
