package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
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
	subject, callID, _, err := h.mediaCall(c, c.Query("callId"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.mediaTokens(subject, callID))
}

type rejoinRequest struct {
	CallID string `json:"callId"`
}

// rejoinMedia is what a page calls when its media session was lost (the media
// node restarted, or the network dropped): a fresh session, and if the caller
// is in a call, its place in that call restored on the media node first, so
// the join token it gets is one the node will accept.
func (h *handlers) rejoinMedia(c *gin.Context) {
	var req rejoinRequest
	if c.Request.ContentLength != 0 {
		if err := decode(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	subject, callID, visitID, err := h.mediaCall(c, req.CallID)
	if err != nil {
		fail(c, err)
		return
	}
	if callID != "" && visitID == "" {
		fail(c, newError(http.StatusConflict, "conflict", "no patient is in that call any more"))
		return
	}
	if callID != "" {
		cl := callerOf(c)
		rq := workflows.RejoinRequest{ActorKind: "patient", ActorID: visitID}
		if cl.User != nil {
			rq = workflows.RejoinRequest{ActorKind: "user", ActorID: cl.User.ID}
		}
		if _, err := workflows.Rejoin(c, h.Temporal, visitID, idempotencyKey(c), rq); err != nil {
			fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, h.mediaTokens(subject, callID))
}

// mediaCall names the caller's media participant and the call it may join
// (callID, or a patient's current call), with a visit in that call through
// which a rejoin is ordered with the visit's other operations.
func (h *handlers) mediaCall(c *gin.Context, callID string) (subject, call, visitID string, err error) {
	if h.MediaTokens == nil {
		return "", "", "", newError(http.StatusServiceUnavailable, "unavailable", "no media node is configured")
	}
	cl := callerOf(c)
	if cl.Visit != nil {
		var v store.Visit
		if err := h.DB.WithContext(c).Take(&v, "id = ?", cl.Visit.ID).Error; err != nil {
			return "", "", "", err
		}
		current := ""
		if v.CallID != nil && v.State == store.VisitInCall {
			current = *v.CallID
		}
		if callID != "" && callID != current {
			return "", "", "", errForbidden("you are not in that call")
		}
		return activities.PatientParticipant(v.ID), current, v.ID, nil
	}
	subject = activities.ProviderParticipant(cl.User.ID)
	if callID == "" {
		return subject, "", "", nil
	}
	c.Params = append(c.Params, gin.Param{Key: "id", Value: callID})
	if _, err := h.callForProvider(c); err != nil {
		return "", "", "", err
	}
	var v store.Visit
	err = h.DB.WithContext(c).Where("call_id = ? AND state = ?", callID, store.VisitInCall).Order("id").Limit(1).Find(&v).Error
	if err != nil {
		return "", "", "", err
	}
	return subject, callID, v.ID, nil
}

func (h *handlers) mediaTokens(subject, callID string) gin.H {
	out := gin.H{"url": h.MediaURL, "participant": subject, "sessionToken": h.MediaTokens.Mint(subject, "", sessionTokenTTL),
		"iceServers": []media.ICEServer{}}
	if h.ICEServers != nil {
		out["iceServers"] = h.ICEServers.For(subject)
	}
	if callID != "" {
		out["callId"] = callID
		out["joinToken"] = h.MediaTokens.Mint(subject, callID, joinTokenTTL)
	}
	return out
}
