package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// The feed hands each stream exactly its events, in order; a stream that
// falls behind is told so, and the outbox still holds what it missed.
func TestFeedDeliversEachStreamItsOwnEvents(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		visit, otherVisit := uuid.NewString(), uuid.NewString()
		patient, err := f.db.Feed().ForVisit(f.riverside.ID, visit)
		require.NoError(t, err)
		defer patient.Close()
		room, err := f.db.Feed().ForRooms(f.riverside.ID, []string{f.leeRoom.ID})
		require.NoError(t, err)
		defer room.Close()
		otherClinic, err := f.db.Feed().ForVisit(uuid.NewString(), visit)
		require.NoError(t, err)
		defer otherClinic.Close()

		write := func(e store.Event) int64 {
			e.ClinicID, e.Payload, e.CreatedAt = f.riverside.ID, `{}`, time.Now().UTC()
			require.NoError(t, f.db.Gorm().Create(&e).Error)
			f.db.EventsCommitted()
			return e.ID
		}
		mine := write(store.Event{Type: "visit.transferred", Audience: store.AudiencePatient, VisitID: &visit})
		write(store.Event{Type: "visit.transferred", Audience: store.AudiencePatient, VisitID: &otherVisit})
		card := write(store.Event{Type: "visit.checked_in", Audience: store.AudienceRoom, RoomID: &f.leeRoom.ID})

		next := func(s *store.Subscription) store.Event {
			select {
			case e := <-s.C:
				return *e
			case <-time.After(5 * time.Second):
				t.Fatal("no event reached the stream")
				return store.Event{}
			}
		}
		require.Equal(t, mine, next(patient).ID)
		require.Equal(t, card, next(room).ID)
		for _, s := range []*store.Subscription{patient, room, otherClinic} {
			select {
			case e := <-s.C:
				t.Fatalf("a stream got an event that is not its own: %+v", e)
			case <-time.After(300 * time.Millisecond):
			}
		}

		// Nobody reads the room stream while more events than its buffer come.
		var last int64
		for i := 0; i < 300; i++ {
			last = write(store.Event{Type: "visit.checked_in", Audience: store.AudienceRoom, RoomID: &f.leeRoom.ID})
		}
		select {
		case <-room.Lagged:
		case <-time.After(5 * time.Second):
			t.Fatal("a stream that fell behind was not told")
		}
		var missed int64
		require.NoError(t, f.db.Gorm().Model(&store.Event{}).Where("id > ? AND room_id = ?", card, f.leeRoom.ID).Count(&missed).Error)
		require.EqualValues(t, 300, missed, "the outbox holds every event, for the stream to catch up")
		got := 0
		for drained := false; !drained; {
			select {
			case e := <-room.C:
				require.LessOrEqual(t, e.ID, last)
				got++
			default:
				drained = true
			}
		}
		require.Less(t, got, 300, "the buffer is bounded")
	})
}
