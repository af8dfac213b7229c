package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

type waitingSettingsRequest struct {
	WaitAlertMinutes *int  `json:"waitAlertMinutes"`
	PatientChat      *bool `json:"patientChat"`
}

func (r *waitingSettingsRequest) check() error {
	if r.WaitAlertMinutes == nil && r.PatientChat == nil {
		return errBadRequest("send waitAlertMinutes, patientChat or both")
	}
	if r.WaitAlertMinutes != nil {
		return clinic.CheckWaitAlert(*r.WaitAlertMinutes)
	}
	return nil
}

func (h *handlers) changeWaiting(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setWaiting)
}

// setWaiting sets after how long a waiting patient's card stands out, and
// whether patients may send messages.
func (h *handlers) setWaiting(c *gin.Context, req waitingSettingsRequest) (gin.H, error) {
	cl := *callerOf(c).Clinic
	err := h.DB.InTx(c, func(q store.Queries) error {
		if m := req.WaitAlertMinutes; m != nil && *m != cl.WaitAlertMinutes {
			if err := q.Clinics.SetWaitAlert(cl.ID, *m); err != nil {
				return err
			}
			row := auditRow(c, clinic.AuditWaitAlertChanged)
			row.Detail = fmt.Sprintf("%d → %d minutes", cl.WaitAlertMinutes, *m)
			cl.WaitAlertMinutes = *m
			if err := q.Audit.Append(row); err != nil {
				return err
			}
		}
		if on := req.PatientChat; on != nil && *on != cl.PatientChat {
			if err := q.Clinics.SetPatientChat(cl.ID, *on); err != nil {
				return err
			}
			row := auditRow(c, clinic.AuditPatientChatChanged)
			row.Detail = map[bool]string{true: "patients may send messages", false: "patients may not send messages"}[*on]
			cl.PatientChat = *on
			if err := q.Audit.Append(row); err != nil {
				return err
			}
		}
		return nil
	})
	return gin.H{"clinic": clinicView(cl)}, err
}
