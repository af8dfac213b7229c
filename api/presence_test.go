package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

// presence is what the visit's workflow believes of its patient.
func (s *service) presence(visit string) workflows.VisitState {
	s.t.Helper()
	st, err := workflows.Status(context.Background(), s.env.Client, visit)
	require.NoError(s.t, err)
	return st
}

// presenceSignals counts the presence signals in the visit's history.
func (s *service) presenceSignals(visit string) int {
	s.t.Helper()
	it := s.env.Client.GetWorkflowHistory(context.Background(), workflows.VisitWorkflowID(visit), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(s.t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalPresence {
			n++
		}
	}
	return n
}

// The first page a patient opens is recorded in the visit's row, which the
// visit reads only if it would abandon the patient (no signal, no workflow
// task per check-in); a second tab, and a tab closed while another stays
// open, tell it nothing; closing the last page is a departure, and coming
// back an arrival after it, both signalled.
func TestPatientPagesTellTheVisitOfArrivalsDeparturesAndReturns(t *testing.T) {
	s := newService(t)
	visit, token := s.checkIn("dr-lee", "Pat Pages")
	visits := s.db.With(context.Background()).Visits
	arrived := func() bool {
		ok, err := visits.Arrived(visit)
		require.NoError(t, err)
		return ok
	}
	require.False(t, arrived(), "away until the page opens")

	first := s.stream(token, "")
	require.Eventually(t, arrived, 10*time.Second, 50*time.Millisecond, "the first page is recorded as an arrival")
	second := s.stream(token, "")
	first.cancel()
	time.Sleep(500 * time.Millisecond) // the server notices the first page is gone
	require.Zero(t, s.presenceSignals(visit), "one page is still open, and the first arrival was not signalled")

	second.cancel()
	require.Eventually(t, func() bool { return s.presence(visit).PresenceSeq == 1 }, 10*time.Second, 50*time.Millisecond,
		"closing the last page is a departure")
	require.False(t, s.presence(visit).PatientConnected)
	departures, _, err := visits.Arrival(visit)
	require.NoError(t, err)
	require.Equal(t, 1, departures)

	s.stream(token, "")
	require.Eventually(t, func() bool { return s.presence(visit).PatientConnected }, 10*time.Second, 50*time.Millisecond,
		"coming back is an arrival")
	st := s.presence(visit)
	require.Equal(t, 1, st.PresenceSeq, "the arrival is ordered after the one departure")
	require.Equal(t, 2, s.presenceSignals(visit), "one departure and one return: nothing for the first page, the second tab or the closed tab")
}

// A visit started before the API recorded arrivals in the row (its row
// says so: patient_arrival 0) is still told of the first page by a signal.
func TestAVisitFromBeforeHearsTheFirstPageBySignal(t *testing.T) {
	s := newService(t)
	visit, token := s.checkIn("dr-lee", "Pat Before")
	require.NoError(t, s.db.Gorm().Exec(`UPDATE visits SET patient_arrival = 0 WHERE id = ?`, visit).Error)
	s.stream(token, "")
	require.Eventually(t, func() bool { return s.presence(visit).PatientConnected }, 10*time.Second, 50*time.Millisecond,
		"the first page is signalled")
	require.Equal(t, 1, s.presenceSignals(visit))
}

// A check-in whose page never opens is abandoned after the abandon window,
// like a patient who left; one whose page is open is not.
func TestACheckInNobodyOpensIsAbandoned(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	s := startAPI(t, e, func(d *api.Deps) { d.AbandonAfter = 2 * time.Second })
	gone, _ := s.checkIn("dr-lee", "Pat Never Opened")
	here, token := s.checkIn("dr-lee", "Pat Watching")
	s.stream(token, "")
	require.Eventually(t, func() bool { return s.env.Visit(gone).State == store.VisitEnded }, 20*time.Second, 100*time.Millisecond)
	require.Equal(t, "abandoned", s.env.Visit(gone).EndReason)
	time.Sleep(2 * time.Second)
	require.Equal(t, store.VisitWaiting, s.env.Visit(here).State, "the patient with the page open still waits")
}
