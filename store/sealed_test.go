package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// seededVisit writes a visit of the demo clinic with a patient's name and a
// hand-off note, and an event quoting the name.
func seededVisit(t *testing.T, db *store.DB, name, note string, ended *time.Time) store.Visit {
	t.Helper()
	ctx := context.Background()
	_, err := db.SeedDemo(ctx)
	require.NoError(t, err)
	rooms, _ := testdb.Index(t, db)
	room := rooms["dr-lee"]
	now := time.Now().UTC()
	v := store.Visit{ID: uuid.NewString(), ClinicID: room.ClinicID, RoomID: room.ID, State: store.VisitWaiting,
		PatientName: store.Sealed(name), TransferNote: store.Sealed(note), TokenHash: uuid.NewString(),
		CheckedInAt: now, UpdatedAt: now}
	require.NoError(t, db.InTx(ctx, func(q store.Queries) error {
		if _, err := q.Visits.Create(v); err != nil {
			return err
		}
		if ended != nil {
			if err := q.Visits.Ended(v.ID, "completed", *ended); err != nil {
				return err
			}
		}
		return q.Outbox.ToRoom(v.ClinicID, v.ID, v.RoomID, "visit.waiting", map[string]string{"patientName": name}, now)
	}))
	return v
}

// rawColumn reads a column as the database holds it, past the Sealed type.
func rawColumn(t *testing.T, db *store.DB, table, column, id string) string {
	t.Helper()
	var out string
	require.NoError(t, db.Gorm().Raw("SELECT "+column+" FROM "+table+" WHERE id = ?", id).Scan(&out).Error)
	return out
}

func TestPatientDataIsSealedAtRest(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		db := testdb.Open(t, dsn)
		v := seededVisit(t, db, "Ana Ruiz", "allergic to penicillin", nil)

		// What a dump, a backup or a replica shows: ciphertext naming its key.
		for _, col := range []string{"patient_name", "transfer_note"} {
			raw := rawColumn(t, db, "visits", col, v.ID)
			require.True(t, strings.HasPrefix(raw, "hx1:test1:"), "%s at rest: %q", col, raw)
			require.NotContains(t, raw, "Ana")
			require.NotContains(t, raw, "penicillin")
		}
		var payloads []string
		require.NoError(t, db.Gorm().Raw("SELECT payload FROM events WHERE visit_id = ?", v.ID).Scan(&payloads).Error)
		require.Len(t, payloads, 1)
		require.NotContains(t, payloads[0], "Ana")

		// What the product reads: the plain text.
		got, err := db.With(context.Background()).Visits.Get(v.ID)
		require.NoError(t, err)
		require.Equal(t, "Ana Ruiz", got.PatientName.String())
		require.Equal(t, "allergic to penicillin", got.TransferNote.String())
		events, err := db.With(context.Background()).Outbox.ForRooms(v.ClinicID, []string{v.RoomID}, 0, 10)
		require.NoError(t, err)
		require.Len(t, events, 1)
		require.JSONEq(t, `{"patientName":"Ana Ruiz"}`, events[0].Payload.String())

		// A value the keys cannot open is an error, not someone else's text.
		require.NoError(t, db.Gorm().Exec("UPDATE visits SET patient_name = ? WHERE id = ?",
			"hx1:test1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", v.ID).Error)
		_, err = db.With(context.Background()).Visits.Get(v.ID)
		require.Error(t, err)

	})
}

// useKeys swaps the process's data keys for the test's length.
func useKeys(t *testing.T, spec string) {
	t.Helper()
	keys, err := codec.ParseKeys(spec)
	require.NoError(t, err)
	store.UseDataKeys(keys)
	t.Cleanup(func() {
		original, _ := codec.ParseKeys(testdb.DataKeys)
		store.UseDataKeys(original)
	})
}

func TestDataKeyRotationByReencryption(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := testdb.Open(t, dsn)
		v := seededVisit(t, db, "Ana Ruiz", "call her mother", nil)
		// A row written before encryption at rest holds plain text.
		old := seededVisit(t, db, "placeholder", "", nil)
		require.NoError(t, db.Gorm().Exec("UPDATE visits SET patient_name = 'Ben Okafor' WHERE id = ?", old.ID).Error)

		newKey, err := codec.NewKeySpec("k2")
		require.NoError(t, err)
		useKeys(t, newKey+","+testdb.DataKeys) // the new key seals, the old one still opens

		before, err := db.SealedWith(ctx)
		require.NoError(t, err)
		require.Positive(t, before["test1"])
		require.Positive(t, before[""], "the plain row")
		require.Zero(t, before["k2"])

		counts, err := db.Reencrypt(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, counts["visits.patient_name"], "both visits' names")
		require.Equal(t, 1, counts["visits.transfer_note"])
		require.Equal(t, 2, counts["events.payload"])

		after, err := db.SealedWith(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int{"k2": before["test1"] + before[""]}, after)
		again, err := db.Reencrypt(ctx)
		require.NoError(t, err)
		require.Empty(t, again, "a second run has nothing left to do")

		// The old key can go: everything opens with the new one alone.
		useKeys(t, newKey)
		for id, name := range map[string]string{v.ID: "Ana Ruiz", old.ID: "Ben Okafor"} {
			got, err := db.With(ctx).Visits.Get(id)
			require.NoError(t, err)
			require.Equal(t, name, got.PatientName.String())
		}
		require.True(t, strings.HasPrefix(rawColumn(t, db, "visits", "patient_name", old.ID), "hx1:k2:"))
	})
}

func TestRetentionPurgesPatientDataAndKeepsTheAuditTrail(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := testdb.Open(t, dsn)
		now := time.Now().UTC()
		longAgo, yesterday := now.Add(-100*24*time.Hour), now.Add(-24*time.Hour)
		expired := seededVisit(t, db, "Ana Ruiz", "call her mother", &longAgo)
		recent := seededVisit(t, db, "Ben Okafor", "", &yesterday)
		waiting := seededVisit(t, db, "Cara Diaz", "", nil)
		oldAudit := store.AuditEvent{ClinicID: expired.ClinicID, At: now.Add(-7 * 365 * 24 * time.Hour), ActorKind: "user",
			ActorID: "u1", Action: "visit.viewed", VisitID: &expired.ID, Detail: "Ana Ruiz", Address: "203.0.113.9"}
		require.NoError(t, db.With(ctx).Audit.Append(oldAudit))

		r := store.Retention{Visits: 90 * 24 * time.Hour, Events: 30 * 24 * time.Hour, Audit: 6 * 365 * 24 * time.Hour}
		purged, err := db.Purge(ctx, r, now)
		require.NoError(t, err)
		require.EqualValues(t, 1, purged.Visits)
		require.EqualValues(t, 1, purged.Events, "the purged visit's event")
		require.EqualValues(t, 1, purged.AuditRows)

		got, err := db.With(ctx).Visits.Get(expired.ID)
		require.NoError(t, err)
		require.Equal(t, store.PurgedName, got.PatientName.String())
		require.Empty(t, got.TransferNote.String())
		require.NotNil(t, got.PurgedAt)
		for _, keep := range []store.Visit{recent, waiting} {
			got, err := db.With(ctx).Visits.Get(keep.ID)
			require.NoError(t, err)
			require.Equal(t, keep.PatientName, got.PatientName, "within its retention")
		}

		var audit []store.AuditEvent
		require.NoError(t, db.Gorm().Where("clinic_id = ?", expired.ClinicID).Order("id").Find(&audit).Error)
		var blanked, purgeRow *store.AuditEvent
		for i := range audit {
			switch audit[i].Action {
			case "visit.viewed":
				blanked = &audit[i]
			case "retention.purged":
				purgeRow = &audit[i]
			}
		}
		require.NotNil(t, blanked, "the row stays")
		require.Equal(t, expired.ID, *blanked.VisitID, "with its ids and action")
		require.Empty(t, blanked.Detail)
		require.Empty(t, blanked.Address)
		require.NotNil(t, purgeRow, "the purge is itself audited")
		require.Contains(t, purgeRow.Detail, "1 ended visits")

		// The trail stays append-only for everything but that blanking.
		require.Error(t, db.Gorm().Exec("UPDATE audit_events SET action = 'x' WHERE id = ?", blanked.ID).Error)
		require.Error(t, db.Gorm().Exec("UPDATE audit_events SET detail = 'forged' WHERE id = ?", purgeRow.ID).Error)
		require.Error(t, db.Gorm().Exec("DELETE FROM audit_events WHERE id = ?", blanked.ID).Error)

		again, err := db.Purge(ctx, r, now)
		require.NoError(t, err)
		require.Zero(t, again.Visits+again.Events+again.AuditRows, "a second run removes nothing more")
	})
}

func TestSQLiteFileIsCreatedOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "handoff.db")
	db := testdb.Open(t, "sqlite:"+path)
	seededVisit(t, db, "Ana Ruiz", "", nil)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}
