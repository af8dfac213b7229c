package chaos

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/store"
)

// privatePostgres is a PostgreSQL server of the test's own, so that it can
// be stopped without touching the machine's.
type privatePostgres struct {
	bin, dir string
	port     int
	asUser   []string
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	require.NotEmpty(t, bins, "PostgreSQL server binaries (Debian's postgresql package) are needed")
	dir, err := os.MkdirTemp("", "handoff-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pg := &privatePostgres{bin: filepath.Dir(bins[len(bins)-1]), dir: dir, port: freePort(t)}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		pg.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	pg.run(t, "initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
	pg.start(t)
	t.Cleanup(func() { pg.stop(t) })
	return pg
}

func (pg *privatePostgres) run(t *testing.T, tool string, args ...string) {
	cmd := append(append([]string{}, pg.asUser...), append([]string{filepath.Join(pg.bin, tool)}, args...)...)
	out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", tool, out)
}

func (pg *privatePostgres) start(t *testing.T) {
	pg.run(t, "pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-l", filepath.Join(pg.dir, "log"), "-w",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, pg.dir), "start")
}

func (pg *privatePostgres) stop(t *testing.T) {
	cmd := append(append([]string{}, pg.asUser...), filepath.Join(pg.bin, "pg_ctl"), "-D", filepath.Join(pg.dir, "data"), "-m", "fast", "-w", "stop")
	_ = exec.Command(cmd[0], cmd[1:]...).Run()
}

func (pg *privatePostgres) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=3", pg.port, db)
}

func TestPostgresStoppedUnderLoad(t *testing.T) {
	outage := 8 * time.Second
	if long() {
		outage = 30 * time.Second
	}
	pg := startPrivatePostgres(t)
	admin, err := store.Open(t.Context(), pg.dsn("postgres"))
	require.NoError(t, err)
	require.NoError(t, admin.Gorm().Exec("CREATE DATABASE handoff").Error)
	require.NoError(t, admin.Close())
	e := testenv.StartOn(t, pg.dsn("handoff"))
	e.StartWorker(nil)
	srv := httptest.NewServer(api.NewRouter(api.Deps{DB: e.DB, Temporal: e.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoginRate: 100, CheckInRate: 100}))
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v1"

	_, login := call("POST", base+"/auth/login", "", map[string]string{"email": "dr.lee@riverside.example", "password": store.DemoPassword}, "")
	token := login["token"].(string)
	var ids []string
	for i := 0; i < 6; i++ {
		_, r := call("POST", base+"/checkin/dr-lee", "", map[string]any{"name": fmt.Sprintf("Pat Outage %d", i), "consent": true}, "")
		ids = append(ids, r["visit"].(map[string]any)["id"].(string))
	}

	// Clients keep transferring (retrying each key) while the database goes away.
	statuses := map[int]int{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	targets := []string{e.Room("riverside-reception").ID, e.Room("dr-lee").ID}
	done := make([]int, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("outage-%d-%d", i, k)
				for {
					status, _ := call("POST", base+"/visits/"+id+"/transfer", token, map[string]string{"targetRoomId": targets[k%2]}, key)
					mu.Lock()
					statuses[status]++
					mu.Unlock()
					if status == http.StatusOK {
						done[i]++
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	pg.stop(t)
	stopped := time.Now()
	// A provider opening a waiting room meanwhile is told to retry (503),
	// whatever the transfers in flight are doing.
	require.Eventually(t, func() bool {
		status, _ := call("GET", base+"/rooms", token, nil, "")
		mu.Lock()
		statuses[status]++
		mu.Unlock()
		return status == http.StatusServiceUnavailable
	}, outage, 200*time.Millisecond, "the API says 503 while the database is down")
	time.Sleep(outage - time.Since(stopped))
	ready, _ := http.Get(srv.URL + "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode, "readiness says the database is down")
	ready.Body.Close()
	pg.start(t)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("database down %s; answers: %v", outage, statuses)
	require.Zero(t, statuses[http.StatusInternalServerError], "no 500s: a database outage is a 503")

	for i, id := range ids {
		v := e.Visit(id)
		require.Equal(t, store.VisitWaiting, v.State, "every transfer finished after the database came back")
		require.Equal(t, done[i], v.Transfers, "one transfer per answered key")
		var completed, started, failed int64
		e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.completed").Count(&completed)
		e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.started").Count(&started)
		e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.failed").Count(&failed)
		require.EqualValues(t, v.Transfers, completed, "no audit row lost")
		require.Equal(t, started, completed+failed)
		var confirmations int64
		e.DB.Gorm().Model(&store.Event{}).Where("visit_id = ? AND type = ? AND audience = ?", id, "visit.transferred", store.AudiencePatient).Count(&confirmations)
		require.EqualValues(t, v.Transfers, confirmations, "no event lost")
	}
}
