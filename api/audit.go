package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
)

// auditPage is how many rows one page of the audit trail holds.
const auditPage = 200

// listAudit is the clinic's audit trail, newest first, for those the domain
// lets read it; `before` pages back.
func (h *handlers) listAudit(c *gin.Context) {
	body, err := h.auditTrail(c, c.Query("before"))
	reply(c, http.StatusOK, body, err)
}

func (h *handlers) auditTrail(c *gin.Context, beforeParam string) (gin.H, error) {
	cl := callerOf(c)
	if err := clinic.MayReadAudit(cl.User.Role); err != nil {
		return nil, err
	}
	before := int64(-1) // from the newest
	if beforeParam != "" {
		b, err := strconv.ParseInt(beforeParam, 10, 64)
		if err != nil || b < 0 {
			return nil, errBadRequest("before must be an audit row id")
		}
		before = b
	}
	rows, err := h.DB.With(c).Audit.Page(cl.Clinic.ID, before, auditPage)
	if err != nil {
		return nil, err
	}
	out := make([]gin.H, len(rows))
	for i, r := range rows {
		out[i] = gin.H{"id": r.ID, "at": r.At, "actorKind": r.ActorKind, "actorId": r.ActorID, "action": r.Action,
			"visitId": r.VisitID, "roomId": r.RoomID, "targetRoomId": r.TargetRoomID, "detail": r.Detail}
	}
	return gin.H{"audit": out}, nil
}
