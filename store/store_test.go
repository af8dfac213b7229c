package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

func TestMigrateIsVersionedAndRepeatable(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, dsn)
		require.NoError(t, err)
		defer db.Close()

		v, err := db.SchemaVersion(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, v)

		applied, err := db.Migrate(ctx)
		require.NoError(t, err)
		require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, applied)

		applied, err = db.Migrate(ctx)
		require.NoError(t, err)
		require.Empty(t, applied, "a second run applies nothing")

		v, err = db.SchemaVersion(ctx)
		require.NoError(t, err)
		require.Equal(t, store.LatestVersion(), v)

		for _, table := range []string{"clinics", "users", "rooms", "room_members", "visits", "calls", "app_sessions", "audit_events", "events", "sessions", "presence", "completed_transfers", "invitations", "password_resets", "old_slugs", "call_participants", "recovery_codes", "mfa_challenges", "messages"} {
			require.True(t, db.Gorm().Migrator().HasTable(table), table)
		}
	})
}

func TestSeedDemoIsIdempotent(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := testdb.Open(t, dsn)

		created, err := db.SeedDemo(ctx)
		require.NoError(t, err)
		require.Greater(t, created, 0)

		again, err := db.SeedDemo(ctx)
		require.NoError(t, err)
		require.Zero(t, again, "seeding twice creates nothing")

		var clinics, users, rooms, members int64
		db.Gorm().Model(&store.Clinic{}).Count(&clinics)
		db.Gorm().Model(&store.User{}).Count(&users)
		db.Gorm().Model(&store.Room{}).Count(&rooms)
		db.Gorm().Model(&store.RoomMember{}).Count(&members)
		require.EqualValues(t, 3, clinics)
		require.EqualValues(t, 7, users)
		require.EqualValues(t, 8, rooms, "6 personal rooms and 2 shared")
		require.EqualValues(t, 3, members)

		var lee store.User
		require.NoError(t, db.Gorm().Where("email = ?", "dr.lee@riverside.example").Take(&lee).Error)
		require.Equal(t, "Dr. Maya Lee", lee.DisplayName)
		require.Equal(t, store.RoleMember, lee.Role)
		require.NoError(t, bcrypt.CompareHashAndPassword([]byte(lee.PasswordHash), []byte(store.DemoPassword)))

		var reception store.Room
		require.NoError(t, db.Gorm().Where("slug = ?", "riverside-reception").Take(&reception).Error)
		require.Equal(t, store.RoomShared, reception.Kind)
		require.Nil(t, reception.OwnerID)
		var memberEmails []string
		db.Gorm().Raw(`SELECT u.email FROM room_members m JOIN users u ON u.id = m.user_id WHERE m.room_id = ? ORDER BY u.email`, reception.ID).Scan(&memberEmails)
		require.Equal(t, []string{"dr.lee@riverside.example", "frontdesk@riverside.example"}, memberEmails)

		var hillside store.Clinic
		require.NoError(t, db.Gorm().Where("name = ?", "Hillside Therapy").Take(&hillside).Error)
		require.Equal(t, store.PlanFree, hillside.Plan)
	})
}

// fixture is a seeded database with handles on the rows tests poke at.
type fixture struct {
	db                  *store.DB
	riverside, lakeview store.Clinic
	lee                 store.User
	leeRoom, grantRoom  store.Room
}

func newFixture(t *testing.T, dsn string) fixture {
	db := testdb.Open(t, dsn)
	_, err := db.SeedDemo(context.Background())
	require.NoError(t, err)
	f := fixture{db: db}
	require.NoError(t, db.Gorm().Where("name = ?", "Riverside Family Health").Take(&f.riverside).Error)
	require.NoError(t, db.Gorm().Where("name = ?", "Lakeview Pediatrics").Take(&f.lakeview).Error)
	require.NoError(t, db.Gorm().Where("email = ?", "dr.lee@riverside.example").Take(&f.lee).Error)
	require.NoError(t, db.Gorm().Where("slug = ?", "dr-lee").Take(&f.leeRoom).Error)
	require.NoError(t, db.Gorm().Where("slug = ?", "dr-grant").Take(&f.grantRoom).Error)
	return f
}

func (f fixture) visit(roomID, clinicID string) *store.Visit {
	now := time.Now().UTC()
	return &store.Visit{ID: uuid.NewString(), ClinicID: clinicID, RoomID: roomID, State: store.VisitWaiting,
		PatientName: "Pat Example", TokenHash: uuid.NewString(), CheckedInAt: now, UpdatedAt: now}
}

func TestEveryModelRoundTrips(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		db := f.db
		checkedIn := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

		v := f.visit(f.leeRoom.ID, f.riverside.ID)
		v.CheckedInAt = checkedIn
		require.NoError(t, db.Gorm().Create(v).Error)

		call := store.Call{ID: uuid.NewString(), ClinicID: f.riverside.ID, RoomID: f.leeRoom.ID, Kind: store.CallOneToOne, MediaNode: "media-1", StartedAt: time.Now().UTC()}
		require.NoError(t, db.Gorm().Create(&call).Error)
		require.NoError(t, db.Gorm().Model(v).Updates(map[string]any{"state": store.VisitInCall, "call_id": call.ID}).Error)

		notes := store.Sealed("blood pressure 120/80")
		app := store.AppSession{ID: uuid.NewString(), CallID: call.ID, App: "notes", Data: &notes, OpenedByID: f.lee.ID, OpenedAt: time.Now().UTC()}
		require.NoError(t, db.Gorm().Create(&app).Error)

		audit := store.AuditEvent{ClinicID: f.riverside.ID, At: time.Now().UTC(), ActorKind: "user", ActorID: f.lee.ID, Action: "visit.admitted", VisitID: &v.ID, RoomID: &f.leeRoom.ID}
		require.NoError(t, db.Gorm().Create(&audit).Error)
		require.NotZero(t, audit.ID)

		var got store.Visit
		require.NoError(t, db.Gorm().Take(&got, "id = ?", v.ID).Error)
		require.Equal(t, store.VisitInCall, got.State)
		require.Equal(t, call.ID, *got.CallID)
		require.True(t, checkedIn.Equal(got.CheckedInAt), "check-in time survives: %v", got.CheckedInAt)

		var gotApp store.AppSession
		require.NoError(t, db.Gorm().Take(&gotApp, "id = ?", app.ID).Error)
		require.Equal(t, notes, *gotApp.Data)

		var gotCall store.Call
		require.NoError(t, db.Gorm().Take(&gotCall, "id = ?", call.ID).Error)
		require.Equal(t, store.CallOneToOne, gotCall.Kind)

		var gotAudit store.AuditEvent
		require.NoError(t, db.Gorm().Take(&gotAudit, "id = ?", audit.ID).Error)
		require.Equal(t, "visit.admitted", gotAudit.Action)
	})
}

func TestOutboxIDsOnlyGrow(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		var last int64
		for i := 0; i < 5; i++ {
			e := store.Event{ClinicID: f.riverside.ID, Type: "visit.checked_in", Audience: store.AudienceRoom, RoomID: &f.leeRoom.ID, Payload: `{}`, CreatedAt: time.Now().UTC()}
			require.NoError(t, f.db.Gorm().Create(&e).Error)
			require.Greater(t, e.ID, last)
			last = e.ID
		}
		// Deleting the newest event must not let its id be handed out again.
		require.NoError(t, f.db.Gorm().Exec(`DELETE FROM events WHERE id = ?`, last).Error)
		e := store.Event{ClinicID: f.riverside.ID, Type: "visit.left", Audience: store.AudienceRoom, RoomID: &f.leeRoom.ID, Payload: `{}`, CreatedAt: time.Now().UTC()}
		require.NoError(t, f.db.Gorm().Create(&e).Error)
		require.Greater(t, e.ID, last)
	})
}

func TestConstraintsProtectTheData(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		db := f.db

		t.Run("slugs are unique", func(t *testing.T) {
			dup := store.Room{ID: uuid.NewString(), ClinicID: f.riverside.ID, Kind: store.RoomShared, Name: "Copy", Slug: "dr-lee", CreatedAt: time.Now().UTC()}
			require.Error(t, db.Gorm().Create(&dup).Error)
		})
		t.Run("a personal room needs an owner", func(t *testing.T) {
			r := store.Room{ID: uuid.NewString(), ClinicID: f.riverside.ID, Kind: store.RoomPersonal, Name: "Nobody", Slug: "nobody", CreatedAt: time.Now().UTC()}
			require.Error(t, db.Gorm().Create(&r).Error)
		})
		t.Run("a user has one personal room", func(t *testing.T) {
			r := store.Room{ID: uuid.NewString(), ClinicID: f.riverside.ID, Kind: store.RoomPersonal, Name: "Second", Slug: "dr-lee-2", OwnerID: &f.lee.ID, CreatedAt: time.Now().UTC()}
			require.Error(t, db.Gorm().Create(&r).Error)
		})
		t.Run("a visit cannot sit in another clinic's room", func(t *testing.T) {
			require.Error(t, db.Gorm().Create(f.visit(f.grantRoom.ID, f.riverside.ID)).Error)
		})
		t.Run("a visit cannot be moved into another clinic's room", func(t *testing.T) {
			v := f.visit(f.leeRoom.ID, f.riverside.ID)
			require.NoError(t, db.Gorm().Create(v).Error)
			require.Error(t, db.Gorm().Model(v).Update("room_id", f.grantRoom.ID).Error)
			var got store.Visit
			require.NoError(t, db.Gorm().Take(&got, "id = ?", v.ID).Error)
			require.Equal(t, f.leeRoom.ID, got.RoomID)
		})
		t.Run("a visit needs a room", func(t *testing.T) {
			require.Error(t, db.Gorm().Create(f.visit("", f.riverside.ID)).Error)
		})
		t.Run("a visit in a call names the call", func(t *testing.T) {
			v := f.visit(f.leeRoom.ID, f.riverside.ID)
			v.State = store.VisitInCall
			require.Error(t, db.Gorm().Create(v).Error)
		})
		t.Run("unknown states and plans are refused", func(t *testing.T) {
			v := f.visit(f.leeRoom.ID, f.riverside.ID)
			v.State = "lost"
			require.Error(t, db.Gorm().Create(v).Error)
			require.Error(t, db.Gorm().Create(&store.Clinic{ID: uuid.NewString(), Name: "X", Plan: "gold", CreatedAt: time.Now().UTC()}).Error)
		})
		t.Run("a closed app keeps no session data", func(t *testing.T) {
			call := store.Call{ID: uuid.NewString(), ClinicID: f.riverside.ID, RoomID: f.leeRoom.ID, Kind: store.CallGroup, StartedAt: time.Now().UTC()}
			require.NoError(t, db.Gorm().Create(&call).Error)
			data, closed := store.Sealed("secret"), time.Now().UTC()
			app := store.AppSession{ID: uuid.NewString(), CallID: call.ID, App: "payment", Data: &data, OpenedByID: f.lee.ID, OpenedAt: closed, ClosedAt: &closed}
			require.Error(t, db.Gorm().Create(&app).Error)
		})
		t.Run("the audit trail is append-only", func(t *testing.T) {
			a := store.AuditEvent{ClinicID: f.riverside.ID, At: time.Now().UTC(), ActorKind: "system", ActorID: "-", Action: "test"}
			require.NoError(t, db.Gorm().Create(&a).Error)
			err := db.Gorm().Exec(`UPDATE audit_events SET action = 'forged' WHERE id = ?`, a.ID).Error
			require.ErrorContains(t, err, "append-only")
			err = db.Gorm().Exec(`DELETE FROM audit_events WHERE id = ?`, a.ID).Error
			require.ErrorContains(t, err, "append-only")
			var got store.AuditEvent
			require.NoError(t, db.Gorm().Take(&got, "id = ?", a.ID).Error)
			require.Equal(t, "test", got.Action)
		})
	})
}

func TestOpenRejectsBadDSNs(t *testing.T) {
	ctx := context.Background()
	for dsn, want := range map[string]string{
		"":              "no database configured",
		"mysql://x@y/z": "neither postgres",
		"sqlite:":       "names no file",
		"postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2": "cannot connect",
	} {
		_, err := store.Open(ctx, dsn)
		require.ErrorContains(t, err, want, dsn)
		require.NotContains(t, err.Error(), "secret", "the password is not printed")
	}
}

// A PostgreSQL server on another host is reached over verified TLS unless
// the DSN says how; loopback and SQLite are left as they are.
func TestRemotePostgresNeedsTLS(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://handoff@db.internal:5432/handoff":            "postgres://handoff@db.internal:5432/handoff?sslmode=verify-full",
		"postgres://handoff@10.0.0.5/handoff?pool_max_conns=5":   "postgres://handoff@10.0.0.5/handoff?pool_max_conns=5&sslmode=verify-full",
		"postgres://handoff@db.internal/handoff?sslmode=disable": "postgres://handoff@db.internal/handoff?sslmode=disable",
		"postgres://handoff@127.0.0.1:5432/handoff":              "postgres://handoff@127.0.0.1:5432/handoff",
		"postgres://handoff@localhost/handoff":                   "postgres://handoff@localhost/handoff",
		"postgres://handoff@[::1]/handoff":                       "postgres://handoff@[::1]/handoff",
		"postgresql://handoff@/handoff?host=/var/run/postgresql": "postgresql://handoff@/handoff?host=/var/run/postgresql",
	} {
		_, got, err := store.ParseDSN(dsn)
		require.NoError(t, err)
		require.Equal(t, want, got, dsn)
	}
}

// SQLite connections run with the settings the service relies on: foreign
// keys enforced, WAL (readers beside the writer), NORMAL syncs, and
// statement journals in memory (temp_store 2), which saved five mmap and
// munmap calls per two-insert transaction (BENCHMARKS.md).
func TestSQLiteConnectionSettings(t *testing.T) {
	db := testdb.Open(t, testdb.SQLiteDSN(t))
	for pragma, want := range map[string]string{"foreign_keys": "1", "journal_mode": "wal", "synchronous": "1", "temp_store": "2"} {
		var got string
		require.NoError(t, db.Gorm().Raw("PRAGMA "+pragma).Scan(&got).Error)
		require.Equal(t, want, got, "PRAGMA %s", pragma)
	}
}
