package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/medianodes"
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
	body, err := h.mediaTokens(c, subject, callID)
	reply(c, http.StatusOK, body, err)
}

// rejoinMedia is what a page calls when its media session was lost (the media
// node restarted, or the network dropped): a fresh session, and if the caller
// is in a call, its place in that call restored on the media node first, so
// the join token it gets is one the node will accept.
func (h *handlers) rejoinMedia(c *gin.Context) {
	serveRequest(c, bindOptional, http.StatusOK, func(c *gin.Context, req rejoinRequest) (gin.H, error) {
		return h.rejoin(c, req.CallID)
	})
}

func (h *handlers) rejoin(c *gin.Context, callID string) (gin.H, error) {
	subject, callID, visitID, err := h.mediaCall(c, callID)
	if err != nil {
		return nil, err
	}
	if callID != "" && visitID == "" {
		return nil, newError(http.StatusConflict, "conflict", "no patient is in that call any more")
	}
	if callID != "" {
		cl := callerOf(c)
		rq := workflows.RejoinRequest{ActorKind: clinic.ActorPatient, ActorID: visitID}
		if cl.User != nil {
			rq = workflows.RejoinRequest{ActorKind: clinic.ActorUser, ActorID: cl.User.ID}
		} else if cl.Guest != nil {
			rq = workflows.RejoinRequest{ActorKind: clinic.ActorGuest, ActorID: cl.Guest.ID}
		}
		if _, err := workflows.Rejoin(c, h.Temporal, visitID, idempotencyKey(c), rq); err != nil {
			return nil, err
		}
	}
	return h.mediaTokens(c, subject, callID)
}

// mediaCall names the caller's media participant and the call it may join
// (callID, or a patient's current call), with a visit in that call through
// which a rejoin is ordered with the visit's other operations.
func (h *handlers) mediaCall(c *gin.Context, callID string) (subject, call, visitID string, err error) {
	if h.MediaTokens == nil {
		return "", "", "", newError(http.StatusServiceUnavailable, "unavailable", "no media node is configured")
	}
	cl := callerOf(c)
	q := h.DB.With(c)
	if g := cl.Guest; g != nil {
		current := ""
		if g.State == clinic.GuestInCall && g.CallID != nil {
			current = *g.CallID
		}
		if callID != "" && callID != current {
			return "", "", "", newError(http.StatusForbidden, clinic.Code(clinic.Forbidden), "you are not in that call")
		}
		return clinic.GuestParticipant(g.ID), current, g.VisitID, nil
	}
	if cl.Visit != nil {
		v, err := q.Visits.Get(cl.Visit.ID)
		if err != nil {
			return "", "", "", err
		}
		current := ""
		if v.CallID != nil && v.State == store.VisitInCall {
			current = *v.CallID
		}
		if callID != "" && callID != current {
			return "", "", "", newError(http.StatusForbidden, clinic.Code(clinic.Forbidden), "you are not in that call")
		}
		return clinic.PatientParticipant(v.ID), current, v.ID, nil
	}
	subject = clinic.ProviderParticipant(cl.User.ID)
	if callID == "" {
		return subject, "", "", nil
	}
	if _, err := h.callForProvider(c, callID); err != nil {
		return "", "", "", err
	}
	if !joining(c) {
		in, err := q.Calls.IsParticipant(callID, cl.User.ID)
		if err != nil {
			return "", "", "", err
		}
		if !in {
			return "", "", "", clinic.ErrNotInCall
		}
	}
	v, _, err := q.Visits.InCall(callID)
	if err != nil {
		return "", "", "", err
	}
	return subject, callID, v.ID, nil
}

// joining tells a request to join a call (POST /calls/:id/join) from one
// that only a participant may make.
func joining(c *gin.Context) bool { return c.FullPath() == "/api/v1/calls/:id/join" }

// joinCall adds the caller, a provider of the call's room, to a call they
// are not in: its patients are told, it is audited, and the caller gets
// what it needs to connect.
func (h *handlers) joinCall(c *gin.Context) {
	body, err := h.joinCallAs(c, c.Param("id"))
	reply(c, http.StatusOK, body, err)
}

func (h *handlers) joinCallAs(c *gin.Context, callID string) (gin.H, error) {
	subject, callID, visitID, err := h.mediaCall(c, callID)
	if err != nil {
		return nil, err
	}
	if visitID == "" {
		return nil, newError(http.StatusConflict, "conflict", "no patient is in that call any more")
	}
	rq := workflows.RejoinRequest{ActorKind: clinic.ActorUser, ActorID: callerOf(c).User.ID, Join: true}
	if _, err := workflows.Rejoin(c, h.Temporal, visitID, idempotencyKey(c), rq); err != nil {
		return nil, err
	}
	return h.mediaTokens(c, subject, callID)
}

// mediaTokens is what a participant needs to reach the media node of its
// call (callID), or, outside a call, the node a new call of its clinic
// would go on: the node's signaling URL and tokens.
func (h *handlers) mediaTokens(c *gin.Context, subject, callID string) (gin.H, error) {
	node, err := h.mediaNode(c, callID)
	if errors.Is(err, medianodes.ErrNoNode) {
		return nil, newError(http.StatusServiceUnavailable, "unavailable", "no media node can take a call now; try again in a moment")
	} else if err != nil {
		return nil, err
	}
	out := gin.H{"url": node.PublicURL, "participant": subject, "sessionToken": h.MediaTokens.Mint(subject, "", sessionTokenTTL),
		"iceServers": []media.ICEServer{}}
	if h.ICEServers != nil {
		out["iceServers"] = h.ICEServers.For(subject)
	}
	if callID != "" {
		out["callId"] = callID
		out["joinToken"] = h.MediaTokens.Mint(subject, callID, joinTokenTTL)
	}
	return out, nil
}

// mediaNode is the node of callID (moved to a live node first when its
// own is gone: how a dead node's participants are offered another), or for
// "" the node the caller's clinic's next call goes on.
func (h *handlers) mediaNode(c *gin.Context, callID string) (store.MediaNode, error) {
	q := h.DB.With(c)
	if callID != "" {
		call, err := q.Calls.Get(callID)
		if err != nil {
			return store.MediaNode{}, err
		}
		return h.nodes().ForCall(q, call)
	}
	clinicID := ""
	switch cl := callerOf(c); {
	case cl.Clinic != nil:
		clinicID = cl.Clinic.ID
	case cl.Visit != nil:
		clinicID = cl.Visit.ClinicID
	case cl.Guest != nil:
		v, err := q.Visits.Get(cl.Guest.VisitID)
		if err != nil {
			return store.MediaNode{}, err
		}
		clinicID = v.ClinicID
	}
	return h.nodes().ForNewCall(q, clinicID)
}

// nodes are the media nodes: the registry's, or the one at MediaURL.
func (h *handlers) nodes() activities.MediaNodes {
	if h.MediaNodes != nil {
		return h.MediaNodes
	}
	return activities.OneNode{Node: store.MediaNode{ID: activities.LocalNode, PublicURL: h.MediaURL}}
}
