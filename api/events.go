package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/httpx"
	"github.com/handoff-telehealth/handoff/store"
)

const (
	heartbeatEvery    = 15 * time.Second
	sessionCheckEvery = 3 * time.Second
	replayWindow      = 10 * time.Minute
	batchSize         = 500
)

// events streams what the caller may see as Server-Sent Events. Each event's
// id is its outbox id: a client that reconnects with Last-Event-ID gets
// every event after it, in order, once. Live events come from the process's
// feed (one outbox read for all streams); the backlog, and what a stream
// missed while it lagged, from the outbox.
func (h *handlers) events(c *gin.Context) {
	cl := callerOf(c)
	release, err := h.streams.take(c, cl.principal())
	if err != nil {
		fail(c, err)
		return
	}
	defer release()
	last, err := h.resumeFrom(c)
	if err != nil {
		fail(c, err)
		return
	}
	scope, err := h.eventScope(c, cl)
	if err != nil {
		fail(c, err)
		return
	}
	// Subscribe before reading the backlog, so nothing falls between them.
	sub, err := scope.subscribe()
	if err != nil {
		fail(c, err)
		return
	}
	defer sub.Close()

	ctx := c.Request.Context()
	if err := h.auditStream(c, cl); err != nil {
		fail(c, err)
		return
	}
	connID, leave := h.arrive(ctx, cl)
	defer leave()
	h.Metrics.SSEClient(1)
	defer h.Metrics.SSEClient(-1)

	w := c.Writer
	httpx.KeepReading(w) // a stream outlives the server's read timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	w.Flush()

	send := func(e store.Event) {
		if e.ID > last { // the backlog may have sent it already
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, e.Payload)
			last = e.ID
		}
	}
	catchUp := func() bool {
		for {
			batch, err := scope.read(h.DB.With(ctx).Outbox, last, batchSize)
			if err != nil {
				return false // the client reconnects and resumes from its last id
			}
			for _, e := range batch {
				send(e)
			}
			w.Flush()
			if len(batch) < batchSize {
				return true
			}
		}
	}
	if !catchUp() {
		return
	}

	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	// A provider's stream ends with its session: signed out elsewhere,
	// expired, idle or deactivated, the dashboard is told why.
	var sessionCheck <-chan time.Time
	if cl.User != nil {
		t := time.NewTicker(sessionCheckEvery)
		defer t.Stop()
		sessionCheck = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sessionCheck:
			if reason := h.sessionEnded(ctx, cl.SessionID); reason != "" {
				fmt.Fprintf(w, "event: %s\ndata: {\"reason\":%q}\n\n", clinic.SessionEnded, reason)
				w.Flush()
				return
			}
		case e := <-sub.C:
			send(*e)
			for more := true; more; { // write what else is queued, then flush once
				select {
				case e := <-sub.C:
					send(*e)
				default:
					more = false
				}
			}
			w.Flush()
		case <-sub.Lagged:
			if !catchUp() {
				return
			}
		case <-heartbeat.C:
			fmt.Fprintf(w, ": heartbeat\n\n")
			w.Flush()
			h.stillHere(ctx, connID)
		}
	}
}

// auditStream records that a live stream opened (a patient's, or a
// provider's: what they could watch from then on).
func (h *handlers) auditStream(c *gin.Context, cl *caller) error {
	row := store.AuditEvent{At: time.Now().UTC(), Action: clinic.AuditStreamOpened, Address: c.ClientIP()}
	if cl.User != nil {
		row.ClinicID, row.ActorKind, row.ActorID = cl.Clinic.ID, clinic.ActorUser, cl.User.ID
	} else {
		row.ClinicID, row.ActorKind, row.ActorID, row.VisitID = cl.Visit.ClinicID, clinic.ActorPatient, cl.Visit.ID, &cl.Visit.ID
	}
	return h.DB.With(c).Audit.Append(row)
}

// sessionEnded says why a provider's session no longer holds ("" while it
// does): "deactivated", "signed_out", "expired" or "idle". A database that does not
// answer ends nothing.
func (h *handlers) sessionEnded(ctx context.Context, sessionID string) string {
	q := h.DB.With(ctx)
	s, err := q.Sessions.Get(sessionID)
	if err != nil {
		return ""
	}
	u, err := q.Users.Get(s.UserID)
	now := time.Now().UTC()
	switch {
	case err == nil && !u.Active():
		return "deactivated"
	case s.RevokedAt != nil:
		return "signed_out"
	case now.After(s.ExpiresAt):
		return "expired"
	case now.Sub(s.LastSeenAt) > h.sessionIdle():
		// Automatic logoff: an open dashboard nobody used (the stream
		// itself is not use) signs out like any idle session.
		return "idle"
	}
	return ""
}

// resumeFrom is the id after which to send: Last-Event-ID, or the newest
// event for a fresh stream (it starts with what happens next).
func (h *handlers) resumeFrom(c *gin.Context) (int64, error) {
	newest, err := h.DB.With(c).Outbox.NewestID()
	if err != nil {
		return 0, err
	}
	raw := c.GetHeader("Last-Event-ID")
	if raw == "" {
		raw = c.Query("lastEventId")
	}
	if raw == "" {
		return newest, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 0 {
		return 0, errBadRequest("Last-Event-ID must be an event id")
	}
	// A provider resumes no further back than replayWindow: a dropped
	// connection is back in seconds, and an old id (or 0) must not replay
	// a room's history, ended visits' names and all.
	if cl := callerOf(c); cl.User != nil {
		first, err := h.DB.With(c).Outbox.FirstSince(time.Now().UTC().Add(-replayWindow))
		if err != nil {
			return 0, err
		}
		id = max(id, first-1)
	}
	return min(id, newest), nil
}

// eventScope is what the caller may see: a patient its own visit's patient
// events; a provider the events of the rooms it acts for. read takes them
// from the outbox; subscribe from the feed.
type eventScope struct {
	read      func(o store.Outbox, after int64, limit int) ([]store.Event, error)
	subscribe func() (*store.Subscription, error)
}

func (h *handlers) eventScope(c *gin.Context, cl *caller) (eventScope, error) {
	if cl.Visit != nil {
		v := *cl.Visit
		return eventScope{
			read: func(o store.Outbox, after int64, limit int) ([]store.Event, error) {
				return o.ForPatient(v.ClinicID, v.ID, after, limit)
			},
			subscribe: func() (*store.Subscription, error) { return h.DB.Feed().ForVisit(v.ClinicID, v.ID) },
		}, nil
	}
	rooms, err := h.DB.With(c).Rooms.ForActor(*cl.User)
	if err != nil {
		return eventScope{}, err
	}
	clinicID := cl.Clinic.ID
	return eventScope{
		read: func(o store.Outbox, after int64, limit int) ([]store.Event, error) {
			return o.ForRooms(clinicID, rooms, after, limit)
		},
		subscribe: func() (*store.Subscription, error) { return h.DB.Feed().ForRooms(clinicID, rooms) },
	}, nil
}

// arrive records the caller as present: a provider becomes "online" for its
// rooms; a patient's visit learns its patient is connected. It returns the
// provider's presence row (empty for a patient) and a func that records the
// departure.
func (h *handlers) arrive(ctx context.Context, cl *caller) (string, func()) {
	if cl.Visit != nil {
		h.patientArrived(cl.Visit.ID)
		return "", func() { h.patientLeft(cl.Visit.ID) }
	}
	conn := store.Presence{ConnectionID: uuid.NewString(), UserID: cl.User.ID, LastSeenAt: time.Now().UTC()}
	_ = h.DB.With(ctx).Presence.Arrived(conn)
	return conn.ConnectionID, func() {
		_ = h.DB.With(context.Background()).Presence.Left(conn.ConnectionID)
	}
}

func (h *handlers) stillHere(ctx context.Context, connID string) {
	if connID == "" {
		return
	}
	_ = h.DB.With(ctx).Presence.StillHere(connID, time.Now().UTC())
}
