package api

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// A check-in's wait learns of the check-in from the room's event, reads the
// visit's row at once when its stream fell behind, and otherwise reads the
// row at most every checkInRowEvery, however short the waits CheckIn asks
// for: at every wait it cost a query each, five per check-in when the
// workers were busy. Nor does a short wait wake the process by itself.
func TestACheckInWaitReadsTheRowOnlyWhenItMustAsk(t *testing.T) {
	db := testdb.Open(t, testdb.SQLiteDSN(t))
	ctx := context.Background()
	_, err := db.SeedDemo(ctx)
	require.NoError(t, err)
	var room store.Room
	require.NoError(t, db.Gorm().Take(&room, "slug = ?", "dr-lee").Error)
	var reads atomic.Int64
	require.NoError(t, db.Gorm().Callback().Query().After("gorm:query").Register("count_reads", func(*gorm.DB) { reads.Add(1) }))
	h := &handlers{Deps: Deps{DB: db}}
	newSub := func() *store.Subscription {
		return &store.Subscription{C: make(chan *store.Event, 4), Lagged: make(chan struct{}, 1)}
	}
	checkIn := func(id string) {
		now := time.Now().UTC()
		created, err := db.With(ctx).Visits.Create(store.Visit{ID: id, ClinicID: room.ClinicID, RoomID: room.ID, State: store.VisitWaiting,
			PatientName: "Pat", TokenHash: uuid.NewString(), CheckedInAt: now, UpdatedAt: now})
		require.NoError(t, err)
		require.True(t, created)
	}

	t.Run("the event answers, with no row read", func(t *testing.T) {
		id, sub := uuid.NewString(), newSub()
		other := uuid.NewString()
		sub.C <- &store.Event{VisitID: &other, Type: clinic.EventCheckedIn} // another patient's
		sub.C <- &store.Event{VisitID: &id, Type: clinic.EventCheckedIn}
		before := reads.Load()
		ok, err := h.checkInRecorded(sub, id)(ctx, time.Second)
		require.NoError(t, err)
		require.True(t, ok, "the visit's checked_in event says it is recorded (its row was never written here)")
		require.Equal(t, before, reads.Load(), "no query")
	})

	t.Run("short waits read the row every checkInRowEvery at most", func(t *testing.T) {
		id, sub := uuid.NewString(), newSub()
		recorded := h.checkInRecorded(sub, id)
		checkIn(id) // written, but its event is lost
		before, start := reads.Load(), time.Now()
		var ok bool
		calls := 0
		for ; calls < 200 && !ok; calls++ {
			ok, err = recorded(ctx, 5*time.Millisecond)
			require.NoError(t, err)
		}
		took := time.Since(start)
		require.True(t, ok, "the row is read in the end")
		require.Equal(t, 1, calls, "a short wait lasts until the row is read: the process is not woken every 5 ms for nothing")
		require.GreaterOrEqual(t, took, checkInRowEvery-10*time.Millisecond, "not before checkInRowEvery")
		require.Less(t, took, 2*checkInRowEvery)
		require.EqualValues(t, 1, reads.Load()-before, "one read in %s of 5 ms waits", took)
	})

	t.Run("a stream that fell behind reads the row at once", func(t *testing.T) {
		id, sub := uuid.NewString(), newSub()
		recorded := h.checkInRecorded(sub, id)
		checkIn(id)
		sub.Lagged <- struct{}{}
		start := time.Now()
		ok, err := recorded(ctx, time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.Less(t, time.Since(start), 100*time.Millisecond)
	})

	t.Run("asked to look without waiting, it reads the row", func(t *testing.T) {
		id, sub := uuid.NewString(), newSub()
		recorded := h.checkInRecorded(sub, id)
		ok, err := recorded(ctx, 0)
		require.NoError(t, err)
		require.False(t, ok, "no row yet")
		checkIn(id)
		ok, err = recorded(ctx, 0)
		require.NoError(t, err)
		require.True(t, ok)
	})
}
