// Package testdb gives tests a fresh, empty app database on each engine.
package testdb

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/store"
)

// DataKeys are the keys tests seal patient data with, and give to a
// handoff process they start (--data-keys).
const DataKeys = "test1:dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTMyYnk="

// Every test that reaches a database holds patient data, so it has the
// data keys as a process would.
func init() {
	keys, err := codec.ParseKeys(DataKeys)
	if err != nil {
		panic(err)
	}
	store.UseDataKeys(keys)
}

// PostgresAdminEnv names the variable holding a DSN with the right to create
// databases; the default is the machine's local PostgreSQL.
const PostgresAdminEnv = "HANDOFF_TEST_POSTGRES"

const defaultAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminDSN is the DSN tests use to create their databases.
func AdminDSN() string {
	if v := os.Getenv(PostgresAdminEnv); v != "" {
		return v
	}
	return defaultAdminDSN
}

// PostgresDSN creates an empty database for this test and drops it after.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, AdminDSN())
	if err != nil {
		t.Fatalf("PostgreSQL for tests is not reachable (set %s): %v", PostgresAdminEnv, err)
	}
	name := "handoff_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	if err := admin.Gorm().Exec(`CREATE DATABASE ` + name).Error; err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.Gorm().Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`).Error
		_ = admin.Close()
	})
	u, err := url.Parse(AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// SQLiteDSN is a SQLite file in the test's temporary directory.
func SQLiteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "handoff.db")
}

// Engines runs fn once per engine, as subtests named after it.
func Engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, e := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"postgres", PostgresDSN}, {"sqlite", SQLiteDSN}} {
		t.Run(e.name, func(t *testing.T) { fn(t, e.dsn(t)) })
	}
}

// Open opens and migrates a fresh database on the given DSN.
func Open(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(fmt.Errorf("migrate: %w", err))
	}
	return db
}

// Index reads the rooms by slug and the users by email, for tests that
// name demo rows.
func Index(t testing.TB, db *store.DB) (map[string]store.Room, map[string]store.User) {
	t.Helper()
	rooms, users := map[string]store.Room{}, map[string]store.User{}
	var rs []store.Room
	if err := db.Gorm().Find(&rs).Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		rooms[r.Slug] = r
	}
	var us []store.User
	if err := db.Gorm().Find(&us).Error; err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		users[u.Email] = u
	}
	return rooms, users
}
