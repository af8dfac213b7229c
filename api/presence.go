package api

import (
	"context"
	"sync"
	"time"

	"github.com/handoff-telehealth/handoff/workflows"
)

// patientStreams counts each visit's open patient pages in this process, so
// the visit hears only of the first page opening and the last one closing:
// a reload or a second tab is not a departure.
type patientStreams struct {
	mu     sync.Mutex
	visits map[string]*visitStreams
}

type visitStreams struct {
	mu   sync.Mutex // held across the signal: one visit's changes go out in order
	open int
	busy int // calls in with(), guarded by patientStreams.mu
}

func newPatientStreams() *patientStreams {
	return &patientStreams{visits: map[string]*visitStreams{}}
}

// with runs fn on the visit's counter, one call per visit at a time.
func (p *patientStreams) with(visitID string, fn func(v *visitStreams)) {
	p.mu.Lock()
	v := p.visits[visitID]
	if v == nil {
		v = &visitStreams{}
		p.visits[visitID] = v
	}
	v.busy++
	p.mu.Unlock()

	v.mu.Lock()
	fn(v)
	v.mu.Unlock()

	p.mu.Lock()
	v.busy--
	if v.busy == 0 && v.open == 0 {
		delete(p.visits, visitID)
	}
	p.mu.Unlock()
}

// patientArrived records a patient's page opening; the first open page
// tells the visit, or the visit's row. A visit counts its patient away
// until then, so a check-in whose page never opens is abandoned
// (workflows.awaitArrival).
func (h *handlers) patientArrived(visitID string) {
	h.patients.with(visitID, func(v *visitStreams) {
		v.open++
		if v.open > 1 {
			return
		}
		departures, recorded := h.recordArrival(visitID)
		if recorded {
			return
		}
		// Unknown departures signal as a first arrival: the visit ignores
		// an arrival it knows. The signal has a deadline of its own, so a
		// slow database cannot leave the arrival neither recorded nor
		// signalled.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.signalPresence(ctx, visitID, workflows.PresenceSignal{Connected: true, Seq: departures})
	})
}

// recordArrival records a first arrival in the visit's row, for a visit that
// reads it there instead of being signalled (workflows.revisionArrivalRecorded)
// and whose patient has not left before; it returns the departures counted.
func (h *handlers) recordArrival(visitID string) (departures int, recorded bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := h.DB.With(ctx).Visits
	departures, inRow, err := q.Arrival(visitID)
	if err != nil || !inRow || departures > 0 {
		return departures, false
	}
	return 0, q.RecordArrival(visitID) == nil
}

// patientLeft records a patient's page closing; the last one tells the visit.
func (h *handlers) patientLeft(visitID string) {
	h.patients.with(visitID, func(v *visitStreams) {
		v.open--
		if v.open > 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		departures, err := h.DB.With(ctx).Visits.CountDeparture(visitID)
		if err != nil {
			h.Logger.Warn("counting a patient's departure", "visit", visitID, "error", err)
			return
		}
		h.signalPresence(ctx, visitID, workflows.PresenceSignal{Connected: false, Seq: departures})
	})
}

func (h *handlers) signalPresence(ctx context.Context, visitID string, s workflows.PresenceSignal) {
	// Best effort: a visit that has ended has nobody to tell.
	_ = h.Temporal.SignalWorkflow(ctx, workflows.VisitWorkflowID(visitID), "", workflows.SignalPresence, s)
}
