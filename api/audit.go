package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// me is the signed-in provider, its clinic and plan, and its rooms.
func (h *handlers) me(c *gin.Context) {
	cl := callerOf(c)
	rooms, err := store.RoomsOf(h.DB.WithContext(c), *cl.User)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": userView(*cl.User),
		"clinic":   gin.H{"id": cl.Clinic.ID, "name": cl.Clinic.Name, "plan": cl.Clinic.Plan},
		"features": gin.H{"transfer": clinic.MayTransfer(cl.Clinic.Plan) == nil, "sharedRooms": clinic.HasSharedRooms(cl.Clinic.Plan)},
		"roomIds":  rooms})
}

// listAudit is the clinic's audit trail, newest first, for admins and
// owners; `before` pages back.
func (h *handlers) listAudit(c *gin.Context) {
	cl := callerOf(c)
	if cl.User.Role != store.RoleAdmin && cl.User.Role != store.RoleOwner {
		fail(c, errForbidden("only the clinic's admins and owners can read the audit trail"))
		return
	}
	q := h.DB.WithContext(c).Where("clinic_id = ?", cl.Clinic.ID).Order("id DESC").Limit(200)
	if b := c.Query("before"); b != "" {
		before, err := strconv.ParseInt(b, 10, 64)
		if err != nil || before < 0 {
			fail(c, errBadRequest("before must be an audit row id"))
			return
		}
		q = q.Where("id < ?", before)
	}
	var rows []store.AuditEvent
	if err := q.Find(&rows).Error; err != nil {
		fail(c, err)
		return
	}
	out := make([]gin.H, len(rows))
	for i, r := range rows {
		out[i] = gin.H{"id": r.ID, "at": r.At, "actorKind": r.ActorKind, "actorId": r.ActorID, "action": r.Action,
			"visitId": r.VisitID, "roomId": r.RoomID, "targetRoomId": r.TargetRoomID, "detail": r.Detail}
	}
	c.JSON(http.StatusOK, gin.H{"audit": out})
}
