package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// The queries a check-in and every waiting page make of a room's visits
// read the partial indexes of the visits that have not ended, not every
// visit ever kept: asked with the state as a parameter, SQLite scanned the
// whole table on each (BENCHMARKS.md); the place in line is counted from
// index entries alone.
func TestRoomQueriesUseTheIndexOfLiveVisits(t *testing.T) {
	db := testdb.Open(t, testdb.SQLiteDSN(t))
	plans := db.Plans(t, func(q store.Queries) {
		_, _ = q.Visits.ForPatient("v")
		_, _ = q.Visits.InRoom("r")
	})
	require.Len(t, plans, 2)
	require.Contains(t, plans[0], "USING COVERING INDEX visits_in_line", "a place in line counted from index entries alone")
	require.Contains(t, plans[1], "USING INDEX visits_waiting_by_room")
}
