// Package chaos breaks real processes while visits are being transferred and
// checks that no patient is lost, duplicated or left half-moved. Short forms
// run in `make test`; `make chaos` runs the long forms (HANDOFF_CHAOS=long).
package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/replay"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

func long() bool { return os.Getenv("HANDOFF_CHAOS") == "long" }

// process is a `handoff` command as its own OS process, killed with
// SIGKILL: no deferred cleanup, no graceful stop.
type process struct {
	bin   string
	args  []string
	env   []string
	mu    sync.Mutex
	cmd   *exec.Cmd
	kills int
}

func (p *process) start(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Env = p.env
	require.NoError(t, p.cmd.Start())
}

func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = p.cmd.Process.Wait()
	p.kills++
}

func TestWorkerKilledDuringTransfers(t *testing.T) {
	// At least this many transfers, and on until the worker was killed
	// minKills times: a transfer takes tens of milliseconds, a kill comes
	// every 0.3–1.2 s.
	transfers, visits, minKills := 30, 10, int64(8)
	if long() {
		transfers, visits, minKills = 100, 20, 30
	}
	e := testenv.Start(t)
	control := media.NewServer
	mediaSrv, err := control(testenv.MediaSecret, "chaos-control-token-0123456789abcdef")
	require.NoError(t, err)
	hs := httptest.NewServer(mediaSrv.Handler())
	t.Cleanup(hs.Close)

	bin := buildHandoff(t)
	metricsPort := freePort(t)
	w := &process{bin: bin, args: []string{"worker"}, env: append(os.Environ(), fmt.Sprintf("HANDOFF_LISTEN=127.0.0.1:%d", metricsPort),
		"HANDOFF_DB="+e.DSN, "HANDOFF_DATA_KEYS="+testdb.DataKeys, "HANDOFF_TEMPORAL_ADDRESS="+e.Server.Address(), "HANDOFF_CODEC_KEYS="+testenv.CodecKeys,
		"HANDOFF_MEDIA_URL="+hs.URL, "HANDOFF_MEDIA_CONTROL_TOKEN=chaos-control-token-0123456789abcdef")}
	w.start(t)
	t.Cleanup(w.kill)

	ctx := context.Background()
	rooms := []store.Room{e.Room("dr-lee"), e.Room("dr-patel"), e.Room("riverside-reception"), e.Room("riverside-urgent")}
	// Dr. Lee acts for dr-lee and Reception, Dr. Patel for dr-patel and Urgent Care.
	actorFor := map[string]string{
		rooms[0].ID: e.User("dr.lee@riverside.example").ID, rooms[2].ID: e.User("dr.lee@riverside.example").ID,
		rooms[1].ID: e.User("dr.patel@riverside.example").ID, rooms[3].ID: e.User("dr.patel@riverside.example").ID,
	}
	ids := make([]string, visits)
	for i := range ids {
		ids[i] = uuid.NewString()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := workflows.CheckIn(cctx, e.Client, workflows.VisitInput{VisitID: ids[i], ClinicID: rooms[0].ClinicID, RoomID: rooms[0].ID,
			PatientName: fmt.Sprintf("Chaos Patient %d", i), TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC()}, workflows.AskVisit(e.Client, ids[i]))
		cancel()
		require.NoError(t, err)
	}

	// Kill the worker at random moments while transfers run; restart it.
	var kills atomic.Int64
	stopKilling := killRepeatedly(300*time.Millisecond, 900*time.Millisecond, func() {
		w.kill()
		kills.Add(1)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		w.start(t)
	})

	// Each visit's transfers run one after another (a clinic transfers one
	// patient at a time); visits run in parallel.
	var done, failedClean atomic.Int64
	var wg sync.WaitGroup
	per := transfers / visits
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < per || (kills.Load() < minKills && k < 50*per); k++ {
				st, err := statusWithRetry(ctx, e, id)
				require.NoError(t, err)
				target := rooms[rand.IntN(len(rooms))]
				for target.ID == st.RoomID {
					target = rooms[rand.IntN(len(rooms))]
				}
				tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
				_, err = workflows.Transfer(tctx, e.Client, id, uuid.NewString(),
					workflows.TransferRequest{ActorID: actorFor[st.RoomID], TargetRoomID: target.ID})
				cancel()
				if err != nil {
					failedClean.Add(1) // must be a clean refusal or a compensated failure: checked below
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	stopKilling()
	t.Logf("%d transfers completed, %d refused or compensated, worker killed %d times", done.Load(), failedClean.Load(), kills.Load())
	require.GreaterOrEqual(t, kills.Load(), minKills)

	// Every patient is in exactly one room, and the projection, the workflow
	// and the audit trail agree.
	for _, id := range ids {
		st, err := statusWithRetry(ctx, e, id)
		require.NoError(t, err)
		v := e.Visit(id)
		require.Equal(t, store.VisitWaiting, v.State, "visit %s settled in a waiting room", id)
		require.Equal(t, st.RoomID, v.RoomID, "projection and workflow agree on the room")
		require.Equal(t, st.Transfers, v.Transfers, "and on the number of transfers")
		var started, completed, failed int64
		e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.started").Count(&started)
		e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.completed").Count(&completed)
		e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ?", id, "transfer.failed").Count(&failed)
		require.EqualValues(t, v.Transfers, completed, "one completion row per transfer")
		require.Equal(t, started, completed+failed, "every started transfer completed or was compensated")
	}
	require.GreaterOrEqual(t, done.Load()+failedClean.Load(), int64(transfers/visits*visits), "every transfer sent got an answer")

	// The worker that is left counts what it completes on /metrics.
	st, err := statusWithRetry(ctx, e, ids[0])
	require.NoError(t, err)
	target := rooms[0]
	if target.ID == st.RoomID {
		target = rooms[1]
	}
	_, err = workflows.Transfer(ctx, e.Client, ids[0], uuid.NewString(), workflows.TransferRequest{ActorID: actorFor[st.RoomID], TargetRoomID: target.ID})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `handoff_transfers_total{outcome="completed"}`)
	}, 10*time.Second, 100*time.Millisecond, "the worker process counts transfers")
}

// buildHandoff builds the production binary the fault tests run as processes.
func buildHandoff(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "handoff")
	out, err := exec.Command("go", "build", "-tags", "production", "-o", bin, "../cmd/handoff").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// killRepeatedly runs fault every min..min+spread until the returned func
// is called (which waits for the last fault to finish).
func killRepeatedly(min, spread time.Duration, fault func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(min + time.Duration(rand.Int64N(int64(spread)))):
			}
			fault()
		}
	}()
	return func() { close(done); wg.Wait() }
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// statusWithRetry queries the visit, waiting out a worker that is down.
func statusWithRetry(ctx context.Context, e *testenv.Env, id string) (workflows.VisitState, error) {
	var last error
	// Up to two minutes: with the worker killed every second on a busy machine,
	// a visit's workflow task can wait out several task timeouts.
	for i := 0; i < 240; i++ {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := workflows.Status(qctx, e.Client, id)
		cancel()
		if err == nil {
			return st, nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return workflows.VisitState{}, last
}

func history(t *testing.T, e *testenv.Env, visitID string) []*historypb.HistoryEvent {
	h, err := replay.Fetch(context.Background(), e.Client, workflows.VisitWorkflowID(visitID), "")
	require.NoError(t, err)
	return h.GetEvents()
}
