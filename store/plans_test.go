package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// The queries a check-in and every waiting page make of a room's visits
// read the partial index of the visits that have not ended, not every
// visit ever kept: asked with the state as a parameter, SQLite scanned the
// whole table on each (BENCHMARKS.md).
func TestRoomQueriesUseTheIndexOfLiveVisits(t *testing.T) {
	db := testdb.Open(t, testdb.SQLiteDSN(t))
	v := store.Visit{ID: "v", RoomID: "r", State: store.VisitWaiting, CheckedInAt: time.Now()}
	plans := db.Plans(t, func(q store.Queries) {
		_, _ = q.Visits.WaitingAhead(v)
		_, _ = q.Visits.InRoom("r")
	})
	require.Len(t, plans, 2)
	for _, p := range plans {
		require.Contains(t, p, "USING INDEX visits_waiting_by_room", p)
	}
}
