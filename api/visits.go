package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

// publicRoom is the face of a room on its check-in link.
func (h *handlers) publicRoom(c *gin.Context) {
	face, err := h.roomFace(c, c.Param("slug"))
	reply(c, http.StatusOK, face, err)
}

// checkIn puts a patient in a room's waiting room and gives them the
// visit's token: a reload with it resumes the visit, nothing is re-entered.
func (h *handlers) checkIn(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, func(c *gin.Context, req checkInRequest) (gin.H, error) {
		return h.checkInPatient(c, c.Param("slug"), req)
	})
}

// getVisit: the card for a provider, the patient's own view for its patient.
func (h *handlers) getVisit(c *gin.Context) {
	body, err := h.visitFor(c)
	reply(c, http.StatusOK, body, err)
}

func (h *handlers) admit(c *gin.Context) {
	serveRequest(c, bindOptional, http.StatusOK, h.admitPatient)
}

func (h *handlers) transfer(c *gin.Context) {
	var req transferRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if err := req.check(); err != nil {
		fail(c, err)
		return
	}
	body, err := h.transferPatient(c, req)
	reply(c, http.StatusOK, body, err)
}

func (h *handlers) leave(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.patientLeaves(c))
}

func (h *handlers) end(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.endVisit(c))
}

// roomFace is what anyone with a room's link may see of it.
func (h *handlers) roomFace(c *gin.Context, slug string) (gin.H, error) {
	r, owner, err := h.roomBySlug(c, slug)
	if err != nil {
		return nil, err
	}
	name, err := h.DB.With(c).Rooms.DisplayName(r)
	if err != nil {
		return nil, err
	}
	face := gin.H{"slug": r.Slug, "kind": r.Kind, "displayName": name, "clinic": owner.Name, "open": r.ClosedAt == nil}
	if r.ClosedAt != nil {
		face["closedMessage"] = clinic.RoomClosed(name).Message
	}
	return face, nil
}

func (h *handlers) roomBySlug(c *gin.Context, slug string) (store.Room, store.Clinic, error) {
	if len(slug) > 80 {
		return store.Room{}, store.Clinic{}, errNotFound("room")
	}
	q := h.DB.With(c)
	r, cl, err := q.Rooms.BySlugWithClinic(slug)
	if errors.Is(err, store.ErrNotFound) { // a room's earlier link still leads to it
		if r, err = q.Rooms.ByOldSlug(slug, time.Now().UTC()); err != nil {
			return r, cl, errNotFound("room")
		}
		cl, err = q.Clinics.Get(r.ClinicID)
	}
	if err != nil {
		return r, cl, err
	}
	if r.Kind == store.RoomShared && !clinic.HasSharedRooms(cl.Plan) {
		return r, cl, errNotFound("room") // shared rooms exist only on Premium
	}
	return r, cl, nil
}

// checkInPatient starts the visit's workflow with its check-in.
func (h *handlers) checkInPatient(c *gin.Context, slug string, req checkInRequest) (gin.H, error) {
	r, cl, err := h.roomBySlug(c, slug)
	if err != nil {
		return nil, err
	}
	if r.ClosedAt != nil {
		name, err := h.DB.With(c).Rooms.DisplayName(r)
		if err != nil {
			return nil, err
		}
		return nil, clinic.RoomClosed(name)
	}
	token, tokenHash := newToken(visitPrefix)
	// Microseconds: what both databases keep, so the row the visit writes
	// holds exactly the time it was given.
	in := workflows.VisitInput{VisitID: uuid.NewString(), ClinicID: r.ClinicID, RoomID: r.ID, PatientName: req.Name,
		TokenHash: tokenHash, CheckedInAt: time.Now().UTC().Truncate(time.Microsecond), AbandonAfter: h.AbandonAfter}
	ctx, cancel := context.WithTimeout(c, 20*time.Second)
	defer cancel()
	// The room's events say when the visit has recorded its check-in (the
	// row and the card's event commit together), in whichever process its
	// first workflow task ran.
	events, err := h.DB.Feed().ForRooms(r.ClinicID, []string{r.ID})
	if err != nil {
		return nil, err
	}
	defer events.Close()
	if err := workflows.CheckIn(ctx, h.Temporal, in, h.checkInRecorded(events, in.VisitID)); err != nil {
		return nil, err
	}
	q := h.DB.With(c)
	v, err := q.Visits.ForPatient(in.VisitID)
	if err != nil {
		return nil, err
	}
	if v.RoomID != r.ID { // moved already: the room looked up is not the visit's
		r, err = q.Rooms.Get(v.RoomID)
		if err != nil {
			return nil, err
		}
	}
	return gin.H{"visit": patientViewOf(v, r, cl), "token": token}, nil
}

// checkInRowEvery is how often a check-in's wait reads the visit's row
// while its event has not come. The event comes to a stream subscribed
// before the start unless the stream falls behind (then the row is read at
// once) or the feed cannot read the outbox; reading the row at each of
// CheckIn's short early waits cost a query per wait, five per check-in
// when the workers are busy (BENCHMARKS.md).
const checkInRowEvery = 250 * time.Millisecond

// checkInRecorded waits on a room's events for the check-in of visitID,
// and reads the visit's row when the stream fell behind, when asked to
// look without waiting, and every checkInRowEvery otherwise. It returns at
// the event or a read of the row, so a wait shorter than checkInRowEvery
// lasts until the next read.
func (h *handlers) checkInRecorded(events *store.Subscription, visitID string) workflows.Recorded {
	lastRead := time.Now()
	return func(ctx context.Context, wait time.Duration) (bool, error) {
		timeout := time.NewTimer(wait)
		defer timeout.Stop()
		for {
			select {
			case e := <-events.C:
				if e.VisitID != nil && *e.VisitID == visitID && e.Type == clinic.EventCheckedIn {
					return true, nil
				}
				continue
			case <-ctx.Done():
			case <-events.Lagged:
			case <-timeout.C:
				// CheckIn's first waits are short (they suit a Recorded that
				// polls); the event wakes this one, so a short wait runs on
				// to the next read of the row rather than waking the process
				// once per wait for nothing.
				if left := checkInRowEvery - time.Since(lastRead); wait > 0 && left > 0 {
					timeout.Reset(left)
					continue
				}
			}
			lastRead = time.Now()
			_, err := h.DB.With(ctx).Visits.Get(visitID)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}
	}
}

// patientView is what a patient may see of their visit.
func (h *handlers) patientView(c *gin.Context, visitID string) (gin.H, error) {
	q := h.DB.With(c)
	v, err := q.Visits.ForPatient(visitID)
	if err != nil {
		return nil, err
	}
	r, err := q.Rooms.Get(v.RoomID)
	if err != nil {
		return nil, err
	}
	cl, err := q.Clinics.Get(v.ClinicID)
	if err != nil {
		return nil, err
	}
	return patientViewOf(v, r, cl), nil
}

// patientViewOf is patientView of visit v, waiting in or called from room r
// of clinic cl.
func patientViewOf(v store.PatientVisit, r store.Room, cl store.Clinic) gin.H {
	name := clinic.DisplayName(r.Kind, r.Name, v.OwnerName)
	view := gin.H{"id": v.ID, "state": v.State, "checkedInAt": v.CheckedInAt, "waitingFor": name, "chatOpen": cl.PatientChat,
		"room": gin.H{"id": r.ID, "displayName": name, "kind": r.Kind}}
	if v.CallID != nil {
		view["callId"] = *v.CallID
	}
	if v.TransferredByID != nil {
		view["message"] = clinic.TransferredMessage(name)
	}
	if v.State == store.VisitWaiting {
		view["position"] = v.Ahead + 1 // in line, by check-in time
	}
	return view
}

// visitForProvider loads the path's visit in a room the provider acts for.
func (h *handlers) visitForProvider(c *gin.Context) (store.Visit, *clinicIndex, error) {
	cl := callerOf(c)
	id, err := pathID(c, "visit")
	if err != nil {
		return store.Visit{}, nil, err
	}
	v, err := h.DB.With(c).Visits.InClinic(id, cl.Clinic.ID)
	if err != nil {
		return v, nil, errNotFound("visit")
	}
	idx, err := h.loadClinic(c, v.ClinicID)
	if err != nil {
		return v, nil, err
	}
	ok, err := h.DB.With(c).Rooms.CanActFor(*cl.User, idx.rooms[v.RoomID])
	if err != nil {
		return v, nil, err
	}
	if !ok {
		return v, nil, clinic.ErrNoAccessToPatientRoom
	}
	return v, idx, nil
}

// visitFor is the path's visit as the caller may see it: its own view for
// the patient, the card for a provider of its room (audited).
func (h *handlers) visitFor(c *gin.Context) (gin.H, error) {
	cl := callerOf(c)
	if cl.Visit != nil {
		if cl.Visit.ID != c.Param("id") {
			return nil, errNotFound("visit")
		}
		view, err := h.patientView(c, cl.Visit.ID)
		return gin.H{"visit": view}, err
	}
	v, idx, err := h.visitForProvider(c)
	if err != nil {
		return nil, err
	}
	if err := h.audit(c, v, clinic.AuditVisitViewed, ""); err != nil {
		return nil, err
	}
	guests, err := h.DB.With(c).Guests.Present(v.ID)
	if err != nil {
		return nil, err
	}
	cv := card(idx, v)
	cv["guests"] = guestViews(guests)
	return gin.H{"visit": cv}, nil
}

// admitPatient brings the path's waiting patient into a call with the
// caller, and hands the caller its media tokens for that call.
func (h *handlers) admitPatient(c *gin.Context, req admitRequest) (gin.H, error) {
	v, _, err := h.visitForProvider(c)
	if err != nil {
		return nil, err
	}
	user := callerOf(c).User
	res, err := workflows.Admit(c, h.Temporal, v.ID, idempotencyKey(c), workflows.AdmitRequest{ActorID: user.ID, CallID: req.CallID})
	if err != nil {
		return nil, err
	}
	body := gin.H{"call": gin.H{"id": res.CallID, "kind": res.Kind}}
	if h.MediaTokens != nil {
		if body["media"], err = h.mediaTokens(c, clinic.ProviderParticipant(user.ID), res.CallID); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// transferPatient moves the path's patient to another room of the clinic:
// the domain's rules first (who may transfer, where to), then the visit's
// transfer update, which runs the durable steps.
func (h *handlers) transferPatient(c *gin.Context, req transferRequest) (gin.H, error) {
	cl := callerOf(c)
	key := idempotencyKey(c)
	v, idx, err := h.visitForProvider(c)
	if err != nil {
		// A retry of a transfer that went through: the patient is no longer
		// in the sender's room, but the sender gets the first answer again.
		if done, ok := h.finishedTransfer(c, key); ok {
			return h.transferAnswer(c, done)
		}
		if h.movedAwayFrom(c, req.FromRoomID, err) {
			err = clinic.ErrMovedAway
		}
		return nil, err
	}
	if req.FromRoomID != "" && req.FromRoomID != v.RoomID {
		if _, known := idx.rooms[req.FromRoomID]; !known {
			return nil, errNotFound("room the patient was seen in")
		}
		return nil, clinic.ErrMovedAway
	}
	if err := clinic.MayTransfer(cl.User.Actor(), cl.Clinic.Plan, true); err != nil { // visitForProvider: the caller acts for the room
		return nil, err
	}
	var target *clinic.Room
	if r, ok := idx.rooms[req.TargetRoomID]; ok {
		facts := r.Facts()
		target = &facts
	}
	if err := clinic.TransferTarget(v.ClinicID, v.RoomID, target); err != nil {
		// A retry of a transfer that went through into a room the sender
		// acts for too: the patient is "already there", by that transfer.
		if done, ok := h.finishedTransfer(c, key); ok {
			return h.transferAnswer(c, done)
		}
		return nil, err
	}
	res, err := workflows.Transfer(c, h.Temporal, v.ID, key,
		workflows.TransferRequest{ActorID: cl.User.ID, TargetRoomID: req.TargetRoomID, Note: req.Note, FromRoomID: v.RoomID, KeepGuests: req.KeepGuests})
	if err != nil {
		return nil, err
	}
	return h.transferAnswer(c, res)
}

// movedAwayFrom tells whether a refusal is because the patient left the room
// the sender saw them in, and the sender may act for that room (so no one
// learns where patients of rooms they cannot see are).
func (h *handlers) movedAwayFrom(c *gin.Context, fromRoomID string, refusal error) bool {
	if fromRoomID == "" || toAPIError(refusal).Status != http.StatusForbidden {
		return false
	}
	cl := callerOf(c)
	q := h.DB.With(c)
	v, err := q.Visits.InClinic(c.Param("id"), cl.Clinic.ID)
	if err != nil {
		return false
	}
	from, err := q.Rooms.LiveInClinic(fromRoomID, cl.Clinic.ID)
	if err != nil {
		return false
	}
	ok, err := q.Rooms.CanActFor(*cl.User, from)
	return err == nil && ok && v.RoomID != fromRoomID
}

// finishedTransfer finds the caller's finished transfer with this key.
func (h *handlers) finishedTransfer(c *gin.Context, key string) (workflows.TransferResult, bool) {
	if c.GetHeader("Idempotency-Key") == "" {
		return workflows.TransferResult{}, false
	}
	id, err := pathID(c, "visit")
	if err != nil {
		return workflows.TransferResult{}, false
	}
	st, err := workflows.Status(c, h.Temporal, id)
	if err != nil || st.ClinicID != callerOf(c).Clinic.ID {
		return workflows.TransferResult{}, false
	}
	done, ok := st.DoneTransfers[key]
	return done, ok && done.ActorID == callerOf(c).User.ID
}

// transferAnswer is what the sender reads: the card in its new room, the
// "Transferred to" text, and whether anyone is there to receive the patient.
func (h *handlers) transferAnswer(c *gin.Context, res workflows.TransferResult) (gin.H, error) {
	idx, err := h.loadClinic(c, callerOf(c).Clinic.ID)
	if err != nil {
		return nil, err
	}
	target := idx.rooms[res.ToRoomID]
	moved, err := h.DB.With(c).Visits.Get(res.VisitID)
	if err != nil {
		return nil, err
	}
	providers, err := h.providersOf(c, idx, target)
	if err != nil {
		return nil, err
	}
	online := false
	for _, p := range providers {
		online = online || idx.online[p.ID]
	}
	body := gin.H{"visit": card(idx, moved), "message": res.SenderMessage, "callEnded": res.CallEnded, "targetOnline": online}
	if !online {
		body["warning"] = "Nobody is online in " + target.Name + " right now; the patient waits there until someone is"
	}
	return body, nil
}

// patientLeaves ends the caller's own visit.
func (h *handlers) patientLeaves(c *gin.Context) error {
	cl := callerOf(c)
	if cl.Visit.ID != c.Param("id") {
		return errNotFound("visit")
	}
	_, err := workflows.Leave(c, h.Temporal, cl.Visit.ID, idempotencyKey(c))
	return err
}

// endVisit ends the path's visit, for a provider of its room.
func (h *handlers) endVisit(c *gin.Context) error {
	v, _, err := h.visitForProvider(c)
	if err != nil {
		return err
	}
	_, err = workflows.End(c, h.Temporal, v.ID, idempotencyKey(c), callerOf(c).User.ID)
	return err
}

func (h *handlers) hold(c *gin.Context) {
	body, err := h.holdPatient(c)
	reply(c, http.StatusOK, body, err)
}

// holdPatient puts the path's admitted patient back into their waiting
// room (the visit's hold update), to be admitted again later.
func (h *handlers) holdPatient(c *gin.Context) (gin.H, error) {
	v, _, err := h.visitForProvider(c)
	if err != nil {
		return nil, err
	}
	res, err := workflows.Hold(c, h.Temporal, v.ID, idempotencyKey(c), workflows.HoldRequest{ActorID: callerOf(c).User.ID})
	if err != nil {
		return nil, err
	}
	return gin.H{"message": clinic.HeldSenderMessage(v.PatientName.String()), "callEnded": res.CallEnded}, nil
}

// audit appends a row for something the API itself observed.
func (h *handlers) audit(c *gin.Context, v store.Visit, action, detail string) error {
	cl := callerOf(c)
	return h.DB.With(c).Audit.Append(store.AuditEvent{ClinicID: v.ClinicID, At: time.Now().UTC(), ActorKind: clinic.ActorUser,
		ActorID: cl.User.ID, Action: action, VisitID: &v.ID, RoomID: &v.RoomID, Detail: detail})
}
