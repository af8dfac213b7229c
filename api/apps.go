package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

func (h *handlers) openApp(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, h.openAppIn)
}

// closeApp closes an app and discards its session data.
func (h *handlers) closeApp(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.closeAppIn(c, c.Param("appId")))
}

// callForProvider loads a live call in a room the provider acts for.
func (h *handlers) callForProvider(c *gin.Context, callID string) (store.Call, error) {
	if _, err := uuid.Parse(callID); err != nil {
		return store.Call{}, errNotFound("call")
	}
	call, err := h.DB.With(c).Calls.InClinic(callID, callerOf(c).Clinic.ID)
	if err != nil {
		return call, errNotFound("call")
	}
	if _, err := h.roomForCaller(c, call.RoomID); err != nil {
		return call, err
	}
	if call.EndedAt != nil {
		return call, newError(http.StatusConflict, "conflict", "the call has ended")
	}
	return call, nil
}

func (h *handlers) openAppIn(c *gin.Context, req openAppRequest) (gin.H, error) {
	call, err := h.callForProvider(c, c.Param("id"))
	if err != nil {
		return nil, err
	}
	data := store.Sealed(req.Data)
	app := store.AppSession{ID: uuid.NewString(), CallID: call.ID, App: req.App, Data: &data, OpenedByID: callerOf(c).User.ID, OpenedAt: time.Now().UTC()}
	err = h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Apps.Open(app); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditAppOpened)
		row.RoomID, row.Detail = &call.RoomID, app.App
		return q.Audit.Append(row)
	})
	if err != nil {
		return nil, err
	}
	return gin.H{"app": gin.H{"id": app.ID, "app": app.App, "callId": call.ID}}, nil
}

func (h *handlers) closeAppIn(c *gin.Context, appID string) error {
	call, err := h.callForProvider(c, c.Param("id"))
	if err != nil {
		return err
	}
	return h.DB.InTx(c, func(q store.Queries) error {
		closed, err := q.Apps.Close(call.ID, []string{appID}, time.Now().UTC())
		if err != nil {
			return err
		}
		if closed == 0 {
			return errNotFound("open app")
		}
		row := auditRow(c, clinic.EventAppClosed)
		row.RoomID, row.Detail = &call.RoomID, "closed by a provider"
		return q.Audit.Append(row)
	})
}
