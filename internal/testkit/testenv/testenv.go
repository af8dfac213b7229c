// Package testenv runs Handoff's real parts for integration tests: the
// embedded Temporal server, a fresh PostgreSQL database with the demo data,
// a client and a worker, all with the payload codec on.
package testenv

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/devserver"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/namespace"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/temporalclient"
	"github.com/handoff-telehealth/handoff/worker"
)

// CodecKeys is the fixed, non-secret key of test runs; the recorded
// histories in workflows/testdata are sealed with it.
const CodecKeys = "test1:aGFuZG9mZi10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE="

// MediaSecret signs the media tokens of test runs.
const MediaSecret = "test-media-secret"

// Env is one running Handoff back end.
type Env struct {
	t      testing.TB
	DSN    string
	DB     *store.DB
	Client client.Client
	Server *devserver.Server
	Calls  *media.SFU
	Codec  *codec.Codec
	rooms  map[string]store.Room
	users  map[string]store.User
}

// Start boots a Temporal server, a seeded Postgres database and a client.
// Call StartWorker to run the worker.
func Start(t testing.TB) *Env { return StartOn(t, testdb.PostgresDSN(t)) }

// StartOn is Start with the app database at dsn (an empty database).
func StartOn(t testing.TB, dsn string) *Env {
	t.Helper()
	ctx := context.Background()
	db := testdb.Open(t, dsn)
	_, err := db.SeedDemo(ctx)
	require.NoError(t, err)

	ports, err := devserver.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	srv, err := devserver.Start(ctx, devserver.Options{DataDir: t.TempDir(), Host: "127.0.0.1", Port: ports[0], Namespace: "default"})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)

	keys, err := codec.ParseKeys(CodecKeys)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.Dial(temporalclient.Options(config.Temporal{Address: srv.Address(), Namespace: "default"}, keys, logger))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	added, err := namespace.EnsureSearchAttributes(ctx, c, "default")
	require.NoError(t, err)
	srv.SearchAttributesRegistered(len(added) > 0)

	sfu, err := media.NewSFU(MediaSecret)
	require.NoError(t, err)
	e := &Env{t: t, DSN: dsn, DB: db, Client: c, Server: srv, Calls: sfu, Codec: keys}
	e.rooms, e.users = testdb.Index(t, db)
	return e
}

// StartWorker runs a worker whose activities use m for media (the env's
// Calls when nil). The returned func stops it.
func (e *Env) StartWorker(m activities.Media) (stop func()) {
	if m == nil {
		m = e.Calls
	}
	return e.StartWorkerWith(worker.Deps{Media: m})
}

// StartWorkerWith runs a worker with d (its DB the env's).
func (e *Env) StartWorkerWith(d worker.Deps) (stop func()) {
	d.DB = e.DB
	w := worker.New(e.Client, d)
	require.NoError(e.t, w.Start())
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			w.Stop()
		}
	}
	e.t.Cleanup(stop)
	return stop
}

// Room is a demo room by slug; User a demo user by email.
func (e *Env) Room(slug string) store.Room  { return e.rooms[slug] }
func (e *Env) User(email string) store.User { return e.users[email] }

// Visit reads a visit's projection row.
func (e *Env) Visit(id string) store.Visit {
	var v store.Visit
	require.NoError(e.t, e.DB.Gorm().Take(&v, "id = ?", id).Error)
	return v
}
