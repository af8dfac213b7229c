package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// demo opens a migrated, seeded database and returns it with the demo
// clinic of clinic name and that clinic's rooms by slug.
func demo(t *testing.T, dsn, clinicName string) (*store.DB, store.Queries, store.Clinic, map[string]store.Room) {
	t.Helper()
	db := testdb.Open(t, dsn)
	_, err := db.SeedDemo(context.Background())
	require.NoError(t, err)
	found, rooms := demoClinic(t, db, clinicName)
	return db, db.With(context.Background()), found, rooms
}

func demoClinic(t *testing.T, db *store.DB, clinicName string) (store.Clinic, map[string]store.Room) {
	t.Helper()
	q := db.With(context.Background())
	var found store.Clinic
	require.NoError(t, db.Gorm().Where("name = ?", clinicName).Take(&found).Error)
	rooms, err := q.Rooms.OfClinic(found.ID)
	require.NoError(t, err)
	bySlug := map[string]store.Room{}
	for _, r := range rooms {
		bySlug[r.Slug] = r
	}
	require.NotEmpty(t, bySlug, clinicName)
	return found, bySlug
}

func TestTheQueriesAnswerWhatTheirNamesSay(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		db, q, c, rooms := demo(t, dsn, "Riverside Family Health")
		ctx := context.Background()
		now := time.Now().UTC()

		// One row by id, and a clear not-found for a missing one.
		got, err := q.Clinics.Get(c.ID)
		require.NoError(t, err)
		require.Equal(t, c.Name, got.Name)
		_, err = q.Clinics.Get(uuid.NewString())
		require.True(t, errors.Is(err, store.ErrNotFound), "a missing row is store.ErrNotFound, got %v", err)

		// Tenancy: a room of another clinic is not found in this one.
		other, otherRooms := demoClinic(t, db, "Hillside Therapy")
		for _, r := range otherRooms {
			_, err := q.Rooms.LiveInClinic(r.ID, c.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "room %s belongs to another clinic", r.Slug)
		}

		// Waiting counts, by room and by clinic, count waiting visits only.
		room := rooms["dr-lee"]
		require.NotEmpty(t, room.ID, "the demo has Dr. Lee's room")
		var last string
		for i := 0; i < 3; i++ {
			last = uuid.NewString()
			created, err := q.Visits.Create(store.Visit{ID: last, ClinicID: c.ID, RoomID: room.ID, State: store.VisitWaiting, PatientName: "Pat", TokenHash: uuid.NewString(), CheckedInAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now})
			require.NoError(t, err)
			require.True(t, created)
		}
		require.NoError(t, q.Visits.Ended(last, clinic.EndLeft, now))
		byRoom, err := q.Visits.WaitingByRoom(c.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]int{room.ID: 2}, byRoom)
		byClinic, err := q.Visits.WaitingByClinic()
		require.NoError(t, err)
		require.Equal(t, 2, byClinic[c.ID])

		// Creating a visit twice (an activity retried) writes it once.
		v := store.Visit{ID: uuid.NewString(), ClinicID: c.ID, RoomID: room.ID, State: store.VisitWaiting, PatientName: "Pat", TokenHash: uuid.NewString(), CheckedInAt: now, UpdatedAt: now}
		created, err := q.Visits.Create(v)
		require.NoError(t, err)
		require.True(t, created)
		created, err = q.Visits.Create(v)
		require.NoError(t, err)
		require.False(t, created, "a second create of the same visit is a no-op")

		// Departures count up from zero; this visit hears of its patient's
		// page by a signal.
		n, inRow, err := q.Visits.Arrival(v.ID)
		require.NoError(t, err)
		require.Zero(t, n)
		require.False(t, inRow)

		// A visit created to read its patient's arrival from its row does
		// so from its first statement on.
		expecting := store.Visit{ID: uuid.NewString(), ClinicID: c.ID, RoomID: room.ID, State: store.VisitWaiting, PatientName: "Pia", TokenHash: uuid.NewString(), CheckedInAt: now, UpdatedAt: now, ArrivalInRow: store.ArrivalExpected}
		created, err = q.Visits.Create(expecting)
		require.NoError(t, err)
		require.True(t, created)
		_, inRow, err = q.Visits.Arrival(expecting.ID)
		require.NoError(t, err)
		require.True(t, inRow)
		arrived, err := q.Visits.Arrived(expecting.ID)
		require.NoError(t, err)
		require.False(t, arrived)
		require.NoError(t, q.Visits.RecordArrival(expecting.ID))
		arrived, err = q.Visits.Arrived(expecting.ID)
		require.NoError(t, err)
		require.True(t, arrived)
		readBack, err := q.Visits.Get(expecting.ID)
		require.NoError(t, err)
		require.Equal(t, "Pia", string(readBack.PatientName))
		n, err = q.Visits.CountDeparture(v.ID)
		require.NoError(t, err)
		require.Equal(t, 1, n)

		// A transfer is completed once recorded, for its visit only.
		done, err := q.Transfers.Completed(v.ID, "t-1")
		require.NoError(t, err)
		require.False(t, done)
		require.NoError(t, db.InTx(ctx, func(q store.Queries) error { return q.Transfers.Complete(v.ID, "t-1", now) }))
		done, err = q.Transfers.Completed(v.ID, "t-1")
		require.NoError(t, err)
		require.True(t, done)
		done, err = q.Transfers.Completed(v.ID, "t-2")
		require.NoError(t, err)
		require.False(t, done, "another transfer of the same visit is not")

		// The audit trail pages newest first and keeps to its clinic.
		for i := 0; i < 5; i++ {
			require.NoError(t, q.Audit.Append(store.AuditEvent{ClinicID: c.ID, At: now, ActorKind: clinic.ActorSystem, Action: clinic.AuditTransferFailed, VisitID: &v.ID, Detail: "transfer x: gone"}))
		}
		page, err := q.Audit.Page(c.ID, -1, 3, store.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, page, 3)
		require.Greater(t, page[0].ID, page[1].ID, "newest first")
		next, err := q.Audit.Page(c.ID, page[2].ID, 3, store.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, next, 2, "the rest")
		otherPage, err := q.Audit.Page(other.ID, -1, 10, store.AuditFilter{})
		require.NoError(t, err)
		require.Empty(t, otherPage, "another clinic sees none of these rows")
		failed, err := q.Audit.TransfersSince(now.Add(-time.Minute), true)
		require.NoError(t, err)
		require.Len(t, failed, 5)
	})
}

// A patient's view of their visit is one read: the visit, its place in
// line among the waiting patients of its room (by check-in time, then id),
// and the name of its room's owner, the one a personal room goes by.
func TestAPatientsViewOfTheirVisitIsOneRead(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		db, q, c, rooms := demo(t, dsn, "Riverside Family Health")
		lee, reception := rooms["dr-lee"], rooms["riverside-reception"]
		require.NotNil(t, lee.OwnerID)
		var owner store.User
		require.NoError(t, db.Gorm().Take(&owner, "id = ?", *lee.OwnerID).Error)
		at := time.Now().UTC().Truncate(time.Microsecond)
		visit := func(room store.Room, checkedIn time.Time, id string) string {
			created, err := q.Visits.Create(store.Visit{ID: id, ClinicID: c.ID, RoomID: room.ID, State: store.VisitWaiting,
				PatientName: store.Sealed("Pat " + id[:4]), TokenHash: uuid.NewString(), CheckedInAt: checkedIn, UpdatedAt: at})
			require.NoError(t, err)
			require.True(t, created)
			return id
		}
		gone := visit(lee, at.Add(-3*time.Second), uuid.NewString())
		require.NoError(t, q.Visits.Ended(gone, clinic.EndLeft, at)) // ended: not in line
		visit(reception, at.Add(-2*time.Second), uuid.NewString())   // another room's line
		first := visit(lee, at.Add(-time.Second), uuid.NewString())
		// Two at the same instant: the smaller id is ahead.
		tiedA, tiedB := visit(lee, at, "aaaaaaaa-0000-0000-0000-000000000000"), visit(lee, at, "bbbbbbbb-0000-0000-0000-000000000000")
		for id, ahead := range map[string]int64{first: 0, tiedA: 1, tiedB: 2} {
			pv, err := q.Visits.ForPatient(id)
			require.NoError(t, err)
			require.Equal(t, id, pv.ID)
			require.Equal(t, ahead, pv.Ahead, "patients ahead of %s", id)
			require.Equal(t, owner.DisplayName, pv.OwnerName)
			require.Equal(t, store.Sealed("Pat "+id[:4]), pv.PatientName, "the sealed name reads back")
			v, err := q.Visits.Get(id)
			require.NoError(t, err)
			require.Equal(t, v, pv.Visit, "the same row as Get")
		}
		shared := visit(reception, at, uuid.NewString())
		pv, err := q.Visits.ForPatient(shared)
		require.NoError(t, err)
		require.Equal(t, int64(1), pv.Ahead)
		require.Empty(t, pv.OwnerName, "a shared room has no owner")
		_, err = q.Visits.ForPatient(uuid.NewString())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// A room found by its link comes with its clinic in one read, every
// column of both as their own reads give them.
func TestARoomByItsLinkComesWithItsClinic(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		db, q, c, rooms := demo(t, dsn, "Riverside Family Health")
		require.NoError(t, db.Gorm().Model(&store.Clinic{}).Where("id = ?", c.ID).Updates(map[string]any{"wait_alert_minutes": 7, "require_mfa": true}).Error)
		for _, slug := range []string{"dr-lee", "riverside-reception"} {
			r, cl, err := q.Rooms.BySlugWithClinic(slug)
			require.NoError(t, err)
			alone, err := q.Rooms.BySlug(slug)
			require.NoError(t, err)
			require.Equal(t, alone, r)
			clinicAlone, err := q.Clinics.Get(c.ID)
			require.NoError(t, err)
			require.Equal(t, clinicAlone, cl)
			// No column left at its zero value (a column the read missed).
			require.Equal(t, 7, cl.WaitAlertMinutes)
			require.True(t, cl.RequireMFA)
			require.True(t, cl.PatientChat)
			require.NotEmpty(t, cl.Plan)
			require.NotEmpty(t, cl.Name)
			require.False(t, cl.CreatedAt.IsZero())
		}
		require.NoError(t, db.Gorm().Model(&store.Room{}).Where("id = ?", rooms["dr-lee"].ID).Update("deleted_at", time.Now().UTC()).Error)
		_, _, err := q.Rooms.BySlugWithClinic("dr-lee")
		require.ErrorIs(t, err, store.ErrNotFound, "an archived room's link finds nothing")
		_, _, err = q.Rooms.BySlugWithClinic("no-such-room")
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// An outbox write outside a transaction is refused: an event must commit
// with the change it announces, or not at all.
func TestEventsAreWrittenOnlyInsideATransaction(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		db, q, c, rooms := demo(t, dsn, "Riverside Family Health")
		ctx := context.Background()
		now := time.Now().UTC()
		require.Error(t, q.Outbox.ToRoom(c.ID, "", rooms["dr-lee"].ID, "visit.waiting", map[string]string{}, now))
		before, err := q.Outbox.NewestID()
		require.NoError(t, err)

		boom := errors.New("boom")
		err = db.InTx(ctx, func(q store.Queries) error {
			if err := q.Outbox.ToRoom(c.ID, "", rooms["dr-lee"].ID, "visit.waiting", map[string]string{}, now); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		after, err := q.Outbox.NewestID()
		require.NoError(t, err)
		require.Equal(t, before, after, "a rolled-back transaction leaves no event")

		require.NoError(t, db.InTx(ctx, func(q store.Queries) error {
			return q.Outbox.ToRoom(c.ID, "", rooms["dr-lee"].ID, "visit.waiting", map[string]string{}, now)
		}))
		events, err := q.Outbox.ForRooms(c.ID, []string{rooms["dr-lee"].ID}, before, 10)
		require.NoError(t, err)
		require.Len(t, events, 1)
	})
}

// Migration 5 moves "has this transfer moved its patient" out of the audit
// rows' text: transfers completed before it stay completed after it.
func TestCompletedTransfersAreBackfilledFromTheAuditTrail(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, dsn)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.MigrateTo(ctx, 4)
		require.NoError(t, err)
		// Rows as a version-4 database held them (the models are newer).
		now := time.Now().UTC()
		c, room, visit := uuid.NewString(), uuid.NewString(), uuid.NewString()
		g := db.Gorm()
		require.NoError(t, g.Exec(`INSERT INTO clinics (id, name, plan, created_at) VALUES (?, 'Backfill Clinic', 'premium', ?)`, c, now).Error)
		require.NoError(t, g.Exec(`INSERT INTO rooms (id, clinic_id, kind, name, slug, created_at) VALUES (?, ?, 'shared', 'Room', 'backfill-room', ?)`, room, c, now).Error)
		require.NoError(t, g.Exec(`INSERT INTO visits (id, clinic_id, room_id, state, patient_name, token_hash, checked_in_at, updated_at)
			VALUES (?, ?, ?, 'waiting', 'Pat', 'h', ?, ?)`, visit, c, room, now, now).Error)
		for _, row := range [][2]string{
			{clinic.AuditTransferCompleted, "transfer 0b5e-done"},
			{clinic.AuditTransferCompleted, "transfer 0b5e-done"}, // a retried step wrote it twice
			{"transfer.started", "transfer 0b5e-started"},
			{clinic.AuditTransferFailed, "transfer 0b5e-failed: gone"},
		} {
			require.NoError(t, g.Exec(`INSERT INTO audit_events (clinic_id, at, actor_kind, actor_id, action, visit_id, detail) VALUES (?, ?, 'user', 'u', ?, ?, ?)`,
				c, now, row[0], visit, row[1]).Error)
		}

		applied, err := db.MigrateTo(ctx, 5)
		require.NoError(t, err)
		require.Equal(t, []int{5}, applied)
		q := db.With(ctx)
		for id, want := range map[string]bool{"0b5e-done": true, "0b5e-started": false, "0b5e-failed": false, "0b5e-failed: gone": false} {
			done, err := q.Transfers.Completed(visit, id)
			require.NoError(t, err)
			require.Equal(t, want, done, id)
		}
	})
}

// Migration 6 gives every existing user a full name (their display name
// until they change it) and leaves them active.
func TestMigration6KeepsPeopleAsTheyWere(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, dsn)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.MigrateTo(ctx, 5)
		require.NoError(t, err)
		now := time.Now().UTC()
		c, u := uuid.NewString(), uuid.NewString()
		require.NoError(t, db.Gorm().Exec(`INSERT INTO clinics (id, name, plan, created_at) VALUES (?, 'Old Clinic', 'free', ?)`, c, now).Error)
		require.NoError(t, db.Gorm().Exec(`INSERT INTO users (id, clinic_id, email, display_name, role, password_hash, created_at)
			VALUES (?, ?, 'old@clinic.example', 'Dr. Old Timer', 'owner', 'x', ?)`, u, c, now).Error)
		applied, err := db.MigrateTo(ctx, 6)
		require.NoError(t, err)
		require.Equal(t, []int{6}, applied)
		got, err := db.With(ctx).Users.Get(u)
		require.NoError(t, err)
		require.Equal(t, "Dr. Old Timer", got.FullName)
		require.True(t, got.Active())
		owners, err := db.With(ctx).Users.ActiveOwners(c)
		require.NoError(t, err)
		require.Equal(t, 1, owners)
	})
}

// Migration 7 makes the providers who admitted patients into calls live at
// the upgrade those calls' participants, so they can still rejoin them.
func TestMigration7KnowsWhoIsInLiveCalls(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, dsn)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.MigrateTo(ctx, 6)
		require.NoError(t, err)
		now := time.Now().UTC()
		c, u, room, call := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
		g := db.Gorm()
		require.NoError(t, g.Exec(`INSERT INTO clinics (id, name, plan, created_at) VALUES (?, 'Call Clinic', 'premium', ?)`, c, now).Error)
		require.NoError(t, g.Exec(`INSERT INTO users (id, clinic_id, email, display_name, role, password_hash, created_at) VALUES (?, ?, 'doc@call.example', 'Doc', 'member', 'x', ?)`, u, c, now).Error)
		require.NoError(t, g.Exec(`INSERT INTO rooms (id, clinic_id, kind, name, slug, created_at) VALUES (?, ?, 'shared', 'Room', 'call-room', ?)`, room, c, now).Error)
		require.NoError(t, g.Exec(`INSERT INTO calls (id, clinic_id, room_id, kind, started_at) VALUES (?, ?, ?, 'one_to_one', ?)`, call, c, room, now).Error)
		for _, row := range []struct{ actor, detail string }{{u, "call " + call}, {u, "call " + call}, {u, "call no-such-call"}} {
			require.NoError(t, g.Exec(`INSERT INTO audit_events (clinic_id, at, actor_kind, actor_id, action, detail) VALUES (?, ?, 'user', ?, 'visit.admitted', ?)`, c, now, row.actor, row.detail).Error)
		}
		applied, err := db.MigrateTo(ctx, 7)
		require.NoError(t, err)
		require.Equal(t, []int{7}, applied)
		in, err := db.With(ctx).Calls.IsParticipant(call, u)
		require.NoError(t, err)
		require.True(t, in)
	})
}

// Migration 11 lets guests write and act; on SQLite it builds messages and
// the audit trail again: every row stays, ids go on from where they stood,
// and the trail is still append-only.
func TestMigration11KeepsTheTrailAndTheConversations(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, dsn)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.MigrateTo(ctx, 10)
		require.NoError(t, err)
		now := time.Now().UTC()
		c, visit := uuid.NewString(), uuid.NewString()
		g := db.Gorm()
		require.NoError(t, g.Exec(`INSERT INTO clinics (id, name, plan, created_at) VALUES (?, 'Trail Clinic', 'premium', ?)`, c, now).Error)
		for i := 0; i < 3; i++ {
			require.NoError(t, g.Exec(`INSERT INTO audit_events (clinic_id, at, actor_kind, actor_id, action, detail) VALUES (?, ?, 'user', 'u', 'visit.viewed', ?)`, c, now, fmt.Sprint(i)).Error)
		}
		require.NoError(t, g.Exec(`INSERT INTO messages (clinic_id, visit_id, sender_kind, sender_id, sender_name, body, created_at) VALUES (?, ?, 'patient', ?, 'x', 'y', ?)`, c, visit, visit, now).Error)
		var lastAudit int64
		require.NoError(t, g.Raw(`SELECT MAX(id) FROM audit_events`).Scan(&lastAudit).Error)

		applied, err := db.MigrateTo(ctx, 11)
		require.NoError(t, err)
		require.Equal(t, []int{11}, applied)
		var rows, msgs int64
		require.NoError(t, g.Raw(`SELECT COUNT(*) FROM audit_events WHERE clinic_id = ?`, c).Scan(&rows).Error)
		require.NoError(t, g.Raw(`SELECT COUNT(*) FROM messages WHERE visit_id = ?`, visit).Scan(&msgs).Error)
		require.EqualValues(t, 3, rows)
		require.EqualValues(t, 1, msgs)
		require.NoError(t, g.Exec(`INSERT INTO audit_events (clinic_id, at, actor_kind, actor_id, action) VALUES (?, ?, 'guest', 'g', 'guest.arrived')`, c, now).Error)
		var next int64
		require.NoError(t, g.Raw(`SELECT MAX(id) FROM audit_events`).Scan(&next).Error)
		require.Greater(t, next, lastAudit)
		require.ErrorContains(t, g.Exec(`UPDATE audit_events SET action = 'x' WHERE clinic_id = ?`, c).Error, "append-only")
		require.ErrorContains(t, g.Exec(`DELETE FROM audit_events WHERE clinic_id = ?`, c).Error, "append-only")
		require.Error(t, g.Exec(`INSERT INTO audit_events (clinic_id, at, actor_kind, actor_id, action) VALUES (?, ?, 'nobody', 'g', 'x')`, c, now).Error)
	})
}

// Event ids commit in the order they are handed out (the feed relies on
// it), and the commit of an event wakes the streams of other processes. On
// PostgreSQL the database does both for every insert into the outbox
// (migration 15): a transaction writing events waits for an earlier one
// still open, and a process listening hears of the commit.
func TestEventsCommitInOrderAndWakeOtherProcesses(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	db, _, c, rooms := demo(t, dsn, "Riverside Family Health")
	other := testdb.Open(t, dsn) // another process's handle on the same database
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = other.ListenForEvents(ctx) }()
	woken, stop := other.WatchEvents()
	defer stop()
	select { // the listener says it listens by waking once
	case <-woken:
	case <-ctx.Done():
		t.Fatal("the other process never listened")
	}

	room := rooms["dr-lee"].ID
	write := func(q store.Queries) error {
		return q.Outbox.ToRoom(c.ID, "", room, "visit.waiting", map[string]string{}, time.Now().UTC())
	}
	firstWrote, releaseFirst := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- db.InTx(ctx, func(q store.Queries) error {
			if err := write(q); err != nil {
				return err
			}
			close(firstWrote)
			<-releaseFirst
			return nil
		})
	}()
	<-firstWrote
	secondDone := make(chan error, 1)
	go func() { secondDone <- db.InTx(ctx, write) }()
	select {
	case err := <-secondDone:
		t.Fatalf("a second transaction wrote its event while the first was open (%v): its id could commit first", err)
	case <-time.After(500 * time.Millisecond):
	}
	select {
	case <-woken:
		t.Fatal("the other process was woken before any event committed")
	default:
	}
	close(releaseFirst)
	require.NoError(t, <-firstDone)
	require.NoError(t, <-secondDone)

	select {
	case <-woken:
	case <-ctx.Done():
		t.Fatal("the other process never heard of the commit")
	}
	events, err := db.With(ctx).Outbox.ForRooms(c.ID, []string{room}, 0, 1000)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(events), 2)
	require.Less(t, events[len(events)-2].ID, events[len(events)-1].ID)
}
