package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/handoff-telehealth/handoff/store"
)

// Apps a provider can open in a call.
var knownApps = []string{"notes", "payment"}

type openAppRequest struct {
	App  string `json:"app"`
	Data string `json:"data"`
}

// callForProvider loads a live call in a room the provider acts for.
func (h *handlers) callForProvider(c *gin.Context) (store.Call, error) {
	cl := callerOf(c)
	var call store.Call
	if _, err := uuid.Parse(c.Param("id")); err != nil {
		return call, errNotFound("call")
	}
	if err := h.DB.WithContext(c).Take(&call, "id = ? AND clinic_id = ?", c.Param("id"), cl.Clinic.ID).Error; err != nil {
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

func (h *handlers) openApp(c *gin.Context) {
	var req openAppRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if !slices.Contains(knownApps, req.App) {
		fail(c, errBadRequest("app must be one of notes, payment"))
		return
	}
	if len(req.Data) > 8000 {
		fail(c, errBadRequest("app data is longer than 8000 characters"))
		return
	}
	call, err := h.callForProvider(c)
	if err != nil {
		fail(c, err)
		return
	}
	data := req.Data
	app := store.AppSession{ID: uuid.NewString(), CallID: call.ID, App: req.App, Data: &data, OpenedByID: callerOf(c).User.ID, OpenedAt: time.Now().UTC()}
	if err := h.DB.WithContext(c).Create(&app).Error; err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"app": gin.H{"id": app.ID, "app": app.App, "callId": call.ID}})
}

// closeApp closes an app and discards its session data.
func (h *handlers) closeApp(c *gin.Context) {
	call, err := h.callForProvider(c)
	if err != nil {
		fail(c, err)
		return
	}
	var closed int64
	err = h.DB.WithContext(c).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&store.AppSession{}).Where("id = ? AND call_id = ? AND closed_at IS NULL", c.Param("appId"), call.ID).
			Updates(map[string]any{"closed_at": time.Now().UTC(), "data": nil})
		closed = res.RowsAffected
		return res.Error
	})
	if err != nil {
		fail(c, err)
		return
	}
	if closed == 0 {
		fail(c, errNotFound("open app"))
		return
	}
	c.Status(http.StatusNoContent)
}
