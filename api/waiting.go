package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

type waitingSettingsRequest struct {
	WaitAlertMinutes int `json:"waitAlertMinutes"`
}

func (r *waitingSettingsRequest) check() error { return clinic.CheckWaitAlert(r.WaitAlertMinutes) }

func (h *handlers) changeWaiting(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.setWaiting)
}

// setWaiting sets after how long a waiting patient's card stands out.
func (h *handlers) setWaiting(c *gin.Context, req waitingSettingsRequest) (gin.H, error) {
	cl := *callerOf(c).Clinic
	err := h.DB.InTx(c, func(q store.Queries) error {
		if cl.WaitAlertMinutes == req.WaitAlertMinutes {
			return nil
		}
		if err := q.Clinics.SetWaitAlert(cl.ID, req.WaitAlertMinutes); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditWaitAlertChanged)
		row.Detail = fmt.Sprintf("%d → %d minutes", cl.WaitAlertMinutes, req.WaitAlertMinutes)
		cl.WaitAlertMinutes = req.WaitAlertMinutes
		return q.Audit.Append(row)
	})
	return gin.H{"clinic": clinicView(cl)}, err
}
