package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// auditPage is how many rows one page of the audit trail holds.
const auditPage = 200

// listAudit is the clinic's audit trail, newest first, for those the domain
// lets read it; `before` pages back.
// `actorId` keeps the rows by or about a person, `action` the rows whose
// action starts with it ("room.").
func (h *handlers) listAudit(c *gin.Context) {
	body, err := h.auditTrail(c, c.Query("before"), store.AuditFilter{PersonID: c.Query("actorId"), ActionPrefix: c.Query("action")})
	reply(c, http.StatusOK, body, err)
}

func (h *handlers) auditTrail(c *gin.Context, beforeParam string, filter store.AuditFilter) (gin.H, error) {
	cl := callerOf(c)
	if err := clinic.Require(cl.User.Role, clinic.ReadAudit); err != nil {
		return nil, err
	}
	if len(filter.PersonID) > 64 || len(filter.ActionPrefix) > 64 {
		return nil, errBadRequest("actorId and action are at most 64 characters")
	}
	before := int64(-1) // from the newest
	if beforeParam != "" {
		b, err := strconv.ParseInt(beforeParam, 10, 64)
		if err != nil || b < 0 {
			return nil, errBadRequest("before must be an audit row id")
		}
		before = b
	}
	rows, err := h.DB.With(c).Audit.Page(cl.Clinic.ID, before, auditPage, filter)
	if err != nil {
		return nil, err
	}
	people, err := h.DB.With(c).Users.OfClinic(cl.Clinic.ID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, u := range people {
		names[u.ID] = u.FullName
	}
	out := make([]gin.H, len(rows))
	for i, r := range rows {
		out[i] = gin.H{"id": r.ID, "at": r.At, "actorKind": r.ActorKind, "actorId": r.ActorID, "action": r.Action,
			"actorName": names[r.ActorID], "address": r.Address, "targetUserId": r.TargetUserID, "visitId": r.VisitID, "roomId": r.RoomID, "targetRoomId": r.TargetRoomID, "detail": r.Detail}
	}
	return gin.H{"audit": out}, nil
}
