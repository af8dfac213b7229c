package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/store"
)

const (
	sessionTokenTTL = 10 * time.Minute // enough to open the signaling socket
	joinTokenTTL    = 2 * time.Minute  // enough to join the call just admitted to
)

// mediaSession gives the caller what it needs to reach the media node: the
// signaling URL and a session token, and for ?callId= (or a patient's
// current call) a join token scoped to that call. The media node still
// checks its own admission state on every join.
func (h *handlers) mediaSession(c *gin.Context) {
	if h.MediaTokens == nil {
		fail(c, newError(http.StatusServiceUnavailable, "unavailable", "no media node is configured"))
		return
	}
	cl := callerOf(c)
	callID := c.Query("callId")
	var subject string
	if cl.Visit != nil {
		subject = activities.PatientParticipant(cl.Visit.ID)
		var v store.Visit
		if err := h.DB.WithContext(c).Take(&v, "id = ?", cl.Visit.ID).Error; err != nil {
			fail(c, err)
			return
		}
		current := ""
		if v.CallID != nil {
			current = *v.CallID
		}
		if callID == "" {
			callID = current
		} else if callID != current {
			fail(c, errForbidden("you are not in that call"))
			return
		}
	} else {
		subject = activities.ProviderParticipant(cl.User.ID)
		if callID != "" {
			c.Params = append(c.Params, gin.Param{Key: "id", Value: callID})
			if _, err := h.callForProvider(c); err != nil {
				fail(c, err)
				return
			}
		}
	}
	out := gin.H{"url": h.MediaURL, "participant": subject, "sessionToken": h.MediaTokens.Mint(subject, "", sessionTokenTTL)}
	if callID != "" {
		out["callId"] = callID
		out["joinToken"] = h.MediaTokens.Mint(subject, callID, joinTokenTTL)
	}
	c.JSON(http.StatusOK, out)
}
