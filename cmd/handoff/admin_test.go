package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// An operator makes a clinic with `handoff admin create-clinic` against a
// migrated database: the owner can sign in (their password hash is
// bcrypt's of the file's password), has a personal room, and the clinic's
// audit trail starts with its creation. Bad input and a taken name change
// nothing.
func TestAdminCreatesAClinic(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	code, _, stderr := runHandoff(t, nil, "migrate", "--db", dsn)
	require.Equal(t, 0, code, stderr)
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("Operator-Chosen-Pass-1\n"), 0o600))
	args := []string{"admin", "create-clinic", "--db", dsn, "--clinic-name", "Northside Clinic", "--owner-name", "Nora North",
		"--owner-email", "Nora@Northside.example", "--owner-password-file", pw, "--plan", "premium"}

	weak := filepath.Join(t.TempDir(), "weak")
	require.NoError(t, os.WriteFile(weak, []byte("password123"), 0o600))
	code, _, stderr = runHandoff(t, nil, append(args[:len(args)-4:len(args)-4], "--owner-password-file", weak)...)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "too common")
	require.Equal(t, int64(0), countRows(t, dsn)["clinics"], "a refused clinic leaves nothing")

	code, stdout, stderr := runHandoff(t, nil, args...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `clinic "Northside Clinic" created`)
	require.Contains(t, stdout, "nora@northside.example")

	db, err := store.Open(context.Background(), dsn)
	require.NoError(t, err)
	defer db.Close()
	q := db.With(context.Background())
	owner, err := q.Users.ByEmail("nora@northside.example")
	require.NoError(t, err)
	require.Equal(t, clinic.RoleOwner, owner.Role)
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(owner.PasswordHash), []byte("Operator-Chosen-Pass-1")))
	c, err := q.Clinics.Get(owner.ClinicID)
	require.NoError(t, err)
	require.Equal(t, clinic.PlanPremium, c.Plan)
	rooms, err := q.Rooms.ForActor(owner)
	require.NoError(t, err)
	require.Len(t, rooms, 1, "the owner's personal room")
	trail, err := q.Audit.Page(c.ID, -1, 10, store.AuditFilter{})
	require.NoError(t, err)
	require.Equal(t, clinic.AuditClinicCreated, trail[len(trail)-1].Action)

	code, _, stderr = runHandoff(t, nil, args...)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "already taken")
	require.Equal(t, int64(1), countRows(t, dsn)["clinics"])
}

// `handoff dev --no-demo` starts with no clinic and offers sign-up.
func TestDevWithoutDemoData(t *testing.T) {
	d := startDev(t, t.TempDir(), "--no-demo")
	require.Contains(t, d.out(), "Create your clinic")
	require.NotContains(t, d.out(), "dr.lee@riverside.example")
	code, body := get(t, d.url(d.apiPort, "/api/v1/signup"))
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"open": true}`, body)
	code, _ = get(t, d.url(d.apiPort, "/api/v1/checkin/dr-lee"))
	require.Equal(t, http.StatusNotFound, code, "no demo rooms")
	d.stop(t)
}

// Rotating the data key: the operator prepends a new key, runs `handoff
// admin reencrypt` (every value is sealed with it, and it says how many),
// drops the old key, and the data still reads. `handoff admin purge`
// removes an ended visit's patient data past its retention, once.
func TestAdminReencryptsAndPurges(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	code, _, stderr := runHandoff(t, nil, "migrate", "--seed-demo", "--db", dsn)
	require.Equal(t, 0, code, stderr)
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	require.NoError(t, err)
	defer db.Close()
	rooms, _ := testdb.Index(t, db)
	ended := time.Now().UTC().Add(-40 * 24 * time.Hour)
	id := uuid.NewString()
	require.NoError(t, db.InTx(ctx, func(q store.Queries) error {
		if _, err := q.Visits.Create(store.Visit{ID: id, ClinicID: rooms["dr-lee"].ClinicID, RoomID: rooms["dr-lee"].ID,
			State: store.VisitWaiting, PatientName: "Ana Ruiz", TokenHash: uuid.NewString(), CheckedInAt: ended, UpdatedAt: ended}); err != nil {
			return err
		}
		return q.Visits.Ended(id, "completed", ended)
	}))
	raw := func() string {
		var v string
		require.NoError(t, db.Gorm().Raw("SELECT patient_name FROM visits WHERE id = ?", id).Scan(&v).Error)
		return v
	}
	require.True(t, strings.HasPrefix(raw(), "hx1:test1:"))

	code, _, stderr = runHandoff(t, nil, "admin", "reencrypt", "--db", dsn)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "HANDOFF_DATA_KEYS", "no keys: it says which setting")

	newKey, err := codec.NewKeySpec("k2")
	require.NoError(t, err)
	code, stdout, stderr := runHandoff(t, []string{"HANDOFF_DATA_KEYS=" + newKey + "," + testdb.DataKeys}, "admin", "reencrypt", "--db", dsn)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "visits.patient_name: 1 sealed again")
	require.True(t, strings.HasPrefix(raw(), "hx1:k2:"), raw())

	// The old key dropped: the purge reads and writes with the new one.
	purge := []string{"HANDOFF_DATA_KEYS=" + newKey}
	code, stdout, stderr = runHandoff(t, purge, "admin", "purge", "--db", dsn, "--retain-visits", "720h")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "purged: 1 visits' patient data")
	code, stdout, stderr = runHandoff(t, purge, "admin", "purge", "--db", dsn, "--retain-visits", "720h")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "purged: 0 visits' patient data")
	require.Equal(t, store.PurgedName, raw())

	code, _, stderr = runHandoff(t, purge, "admin", "purge", "--db", dsn, "--retain-events", "5m")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "at least 1h")
}
