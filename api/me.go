package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
)

// me is the signed-in provider, its clinic and plan, what the plan allows,
// and the rooms it acts for.
func (h *handlers) me(c *gin.Context) {
	cl := callerOf(c)
	rooms, err := h.DB.With(c).Rooms.ForActor(*cl.User)
	reply(c, http.StatusOK, gin.H{"user": userView(*cl.User),
		"clinic": gin.H{"id": cl.Clinic.ID, "name": cl.Clinic.Name, "plan": cl.Clinic.Plan, "requireMfa": cl.Clinic.RequireMFA,
			"waitAlertMinutes": cl.Clinic.WaitAlertMinutes, "patientChat": cl.Clinic.PatientChat},
		"mfa":      gin.H{"enabled": cl.User.MFAEnabled(), "enrolmentRequired": clinic.MFAEnrolmentNeeded(cl.Clinic.RequireMFA, cl.User.MFAEnabled())},
		"features": gin.H{"transfer": clinic.MayTransfer(cl.User.Actor(), cl.Clinic.Plan, true) == nil, "sharedRooms": clinic.HasSharedRooms(cl.Clinic.Plan)},
		"powers":   clinic.PowersOf(cl.User.Role),
		"roomIds":  rooms}, err)
}
