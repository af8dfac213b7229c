package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

const maxNameLength = 100

// publicRoom is the face of a room on its check-in link.
func (h *handlers) publicRoom(c *gin.Context) {
	r, owner, err := h.roomBySlug(c, c.Param("slug"))
	if err != nil {
		fail(c, err)
		return
	}
	name, err := store.DisplayName(h.DB.WithContext(c), r)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"slug": r.Slug, "kind": r.Kind, "displayName": name, "clinic": owner.Name})
}

func (h *handlers) roomBySlug(c *gin.Context, slug string) (store.Room, store.Clinic, error) {
	var r store.Room
	var cl store.Clinic
	if len(slug) > 80 || h.DB.WithContext(c).Take(&r, "slug = ? AND deleted_at IS NULL", slug).Error != nil {
		return r, cl, errNotFound("room")
	}
	if err := h.DB.WithContext(c).Take(&cl, "id = ?", r.ClinicID).Error; err != nil {
		return r, cl, err
	}
	if r.Kind == store.RoomShared && !clinic.HasSharedRooms(cl.Plan) {
		return r, cl, errNotFound("room") // shared rooms exist only on Premium
	}
	return r, cl, nil
}

type checkInRequest struct {
	Name    string `json:"name"`
	Consent bool   `json:"consent"`
}

// cleanName trims a patient's name and refuses what cannot be a name.
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errBadRequest("name is required")
	case len([]rune(s)) > maxNameLength:
		return "", errBadRequest("name is longer than 100 characters")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) }) >= 0:
		return "", errBadRequest("name contains control characters")
	}
	return s, nil
}

// checkIn puts a patient in a room's waiting room and gives them the
// visit's token: a reload with it resumes the visit, nothing is re-entered.
func (h *handlers) checkIn(c *gin.Context) {
	var req checkInRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	name, err := cleanName(req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	if !req.Consent {
		fail(c, errBadRequest("consent to the virtual visit is required"))
		return
	}
	r, _, err := h.roomBySlug(c, c.Param("slug"))
	if err != nil {
		fail(c, err)
		return
	}
	token, tokenHash := newToken(visitPrefix)
	in := workflows.VisitInput{VisitID: uuid.NewString(), ClinicID: r.ClinicID, RoomID: r.ID, PatientName: name,
		TokenHash: tokenHash, CheckedInAt: time.Now().UTC(), AbandonAfter: h.AbandonAfter}
	ctx, cancel := context.WithTimeout(c, 20*time.Second)
	defer cancel()
	if _, err := workflows.CheckIn(ctx, h.Temporal, in); err != nil {
		fail(c, err)
		return
	}
	view, err := h.patientView(c, in.VisitID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"visit": view, "token": token})
}

// patientView is what a patient may see of their visit.
func (h *handlers) patientView(c *gin.Context, visitID string) (gin.H, error) {
	var v store.Visit
	if err := h.DB.WithContext(c).Take(&v, "id = ?", visitID).Error; err != nil {
		return nil, err
	}
	var r store.Room
	if err := h.DB.WithContext(c).Take(&r, "id = ?", v.RoomID).Error; err != nil {
		return nil, err
	}
	name, err := store.DisplayName(h.DB.WithContext(c), r)
	if err != nil {
		return nil, err
	}
	view := gin.H{"id": v.ID, "state": v.State, "checkedInAt": v.CheckedInAt, "waitingFor": name,
		"room": gin.H{"id": r.ID, "displayName": name, "kind": r.Kind}}
	if v.CallID != nil {
		view["callId"] = *v.CallID
	}
	if v.TransferredByID != nil {
		view["message"] = "You have been transferred to " + name + "'s room"
	}
	return view, nil
}

// visitForProvider loads a visit in a room the provider acts for.
func (h *handlers) visitForProvider(c *gin.Context) (store.Visit, *clinicIndex, error) {
	cl := callerOf(c)
	var v store.Visit
	if _, err := uuid.Parse(c.Param("id")); err != nil {
		return v, nil, errNotFound("visit")
	}
	if err := h.DB.WithContext(c).Take(&v, "id = ? AND clinic_id = ?", c.Param("id"), cl.Clinic.ID).Error; err != nil {
		return v, nil, errNotFound("visit")
	}
	idx, err := h.loadClinic(c, v.ClinicID)
	if err != nil {
		return v, nil, err
	}
	ok, err := store.CanActFor(h.DB.WithContext(c), *cl.User, idx.rooms[v.RoomID])
	if err != nil {
		return v, nil, err
	}
	if !ok {
		return v, nil, errForbidden("you do not have access to this patient's room")
	}
	return v, idx, nil
}

// getVisit: the card for a provider, the patient's own view for its patient.
func (h *handlers) getVisit(c *gin.Context) {
	cl := callerOf(c)
	if cl.Visit != nil {
		if cl.Visit.ID != c.Param("id") {
			fail(c, errNotFound("visit"))
			return
		}
		view, err := h.patientView(c, cl.Visit.ID)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"visit": view})
		return
	}
	v, idx, err := h.visitForProvider(c)
	if err != nil {
		fail(c, err)
		return
	}
	if err := h.audit(c, v, "visit.viewed", ""); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"visit": card(idx, v)})
}

type admitRequest struct {
	CallID string `json:"callId"`
}

func (h *handlers) admit(c *gin.Context) {
	var req admitRequest
	if c.Request.ContentLength != 0 {
		if err := decode(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	v, _, err := h.visitForProvider(c)
	if err != nil {
		fail(c, err)
		return
	}
	res, err := workflows.Admit(c, h.Temporal, v.ID, idempotencyKey(c), workflows.AdmitRequest{ActorID: callerOf(c).User.ID, CallID: req.CallID})
	if err != nil {
		fail(c, err)
		return
	}
	body := gin.H{"call": gin.H{"id": res.CallID, "kind": res.Kind}}
	if h.MediaTokens != nil {
		subject := activities.ProviderParticipant(callerOf(c).User.ID)
		body["media"] = h.mediaTokens(subject, res.CallID)
	}
	c.JSON(http.StatusOK, body)
}

type transferRequest struct {
	TargetRoomID string `json:"targetRoomId"`
	Note         string `json:"note"`
	// FromRoomID is the room the sender saw the patient in (optional): if
	// the patient has been moved since, the sender is told so (409) rather
	// than that it cannot act for the room the patient is in now.
	FromRoomID string `json:"fromRoomId"`
}

var errMovedAway = newError(http.StatusConflict, "conflict", "the patient has just been moved to another room")

// idempotencyKey is the client's Idempotency-Key, the update id of the
// operation: a retried request gets the first one's answer.
func idempotencyKey(c *gin.Context) string {
	if k := strings.TrimSpace(c.GetHeader("Idempotency-Key")); k != "" {
		return k
	}
	return uuid.NewString()
}

func (h *handlers) transfer(c *gin.Context) {
	var req transferRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if key := c.GetHeader("Idempotency-Key"); len(key) > 200 {
		fail(c, errBadRequest("Idempotency-Key is longer than 200 characters"))
		return
	}
	if req.TargetRoomID == "" {
		fail(c, errBadRequest("targetRoomId is required"))
		return
	}
	if err := clinic.CheckNote(req.Note); err != nil {
		fail(c, err)
		return
	}
	cl := callerOf(c)
	key := idempotencyKey(c)
	v, idx, err := h.visitForProvider(c)
	if err != nil {
		// A retry of a transfer that went through: the patient is no longer
		// in the sender's room, but the sender gets the first answer again.
		if done, ok := h.finishedTransfer(c, key); ok {
			h.respondTransfer(c, done)
			return
		}
		if h.movedAwayFrom(c, req.FromRoomID, err) {
			err = errMovedAway
		}
		fail(c, err)
		return
	}
	if req.FromRoomID != "" && req.FromRoomID != v.RoomID {
		if _, known := idx.rooms[req.FromRoomID]; !known {
			fail(c, errNotFound("room the patient was seen in"))
			return
		}
		fail(c, errMovedAway)
		return
	}
	if err := clinic.MayTransfer(cl.Clinic.Plan); err != nil {
		fail(c, err)
		return
	}
	target, ok := idx.rooms[req.TargetRoomID]
	if !ok || target.DeletedAt != nil {
		fail(c, errNotFound("target room"))
		return
	}
	res, err := workflows.Transfer(c, h.Temporal, v.ID, key,
		workflows.TransferRequest{ActorID: cl.User.ID, TargetRoomID: target.ID, Note: strings.TrimSpace(req.Note), FromRoomID: v.RoomID})
	if err != nil {
		fail(c, err)
		return
	}
	h.respondTransfer(c, res)
}

// movedAwayFrom tells whether a refusal is because the patient left the room
// the sender saw them in, and the sender may act for that room (so no one
// learns where patients of rooms they cannot see are).
func (h *handlers) movedAwayFrom(c *gin.Context, fromRoomID string, refusal error) bool {
	var ae *apiError
	if fromRoomID == "" || !errors.As(refusal, &ae) || ae.Status != http.StatusForbidden {
		return false
	}
	cl := callerOf(c)
	var v store.Visit
	var from store.Room
	if h.DB.WithContext(c).Take(&v, "id = ? AND clinic_id = ?", c.Param("id"), cl.Clinic.ID).Error != nil ||
		h.DB.WithContext(c).Take(&from, "id = ? AND clinic_id = ?", fromRoomID, cl.Clinic.ID).Error != nil {
		return false
	}
	ok, err := store.CanActFor(h.DB.WithContext(c), *cl.User, from)
	return err == nil && ok && v.RoomID != fromRoomID
}

// finishedTransfer finds the caller's finished transfer with this key.
func (h *handlers) finishedTransfer(c *gin.Context, key string) (workflows.TransferResult, bool) {
	if c.GetHeader("Idempotency-Key") == "" {
		return workflows.TransferResult{}, false
	}
	if _, err := uuid.Parse(c.Param("id")); err != nil {
		return workflows.TransferResult{}, false
	}
	st, err := workflows.Status(c, h.Temporal, c.Param("id"))
	if err != nil || st.ClinicID != callerOf(c).Clinic.ID {
		return workflows.TransferResult{}, false
	}
	done, ok := st.DoneTransfers[key]
	return done, ok && done.ActorID == callerOf(c).User.ID
}

func (h *handlers) respondTransfer(c *gin.Context, res workflows.TransferResult) {
	idx, err := h.loadClinic(c, callerOf(c).Clinic.ID)
	if err != nil {
		fail(c, err)
		return
	}
	target := idx.rooms[res.ToRoomID]
	var moved store.Visit
	if err := h.DB.WithContext(c).Take(&moved, "id = ?", res.VisitID).Error; err != nil {
		fail(c, err)
		return
	}
	providers, err := h.providersOf(c, idx, target)
	if err != nil {
		fail(c, err)
		return
	}
	online := false
	for _, p := range providers {
		online = online || idx.online[p.ID]
	}
	body := gin.H{"visit": card(idx, moved), "message": res.SenderMessage, "callEnded": res.CallEnded, "targetOnline": online}
	if !online {
		body["warning"] = "Nobody is online in " + target.Name + " right now; the patient waits there until someone is"
	}
	c.JSON(http.StatusOK, body)
}

func (h *handlers) leave(c *gin.Context) {
	cl := callerOf(c)
	if cl.Visit.ID != c.Param("id") {
		fail(c, errNotFound("visit"))
		return
	}
	if _, err := workflows.Leave(c, h.Temporal, cl.Visit.ID, idempotencyKey(c)); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *handlers) end(c *gin.Context) {
	v, _, err := h.visitForProvider(c)
	if err != nil {
		fail(c, err)
		return
	}
	if _, err := workflows.End(c, h.Temporal, v.ID, idempotencyKey(c), callerOf(c).User.ID); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// audit appends a row for something the API itself observed.
func (h *handlers) audit(c *gin.Context, v store.Visit, action, detail string) error {
	cl := callerOf(c)
	return h.DB.WithContext(c).Create(&store.AuditEvent{ClinicID: v.ClinicID, At: time.Now().UTC(), ActorKind: "user",
		ActorID: cl.User.ID, Action: action, VisitID: &v.ID, RoomID: &v.RoomID, Detail: detail}).Error
}
