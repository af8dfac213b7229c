package bench_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/handoff-telehealth/handoff/bench"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/workflows"
)

var transfers = flag.Int("transfers", 200, "transfers to time (and as many bare updates)")

const floorQueue = "bench-floor"

// measure times n transfers through the Temporal client, each beside a
// bare update on the same server, and returns both series.
func measure(t testing.TB, n int) (transfer, floor bench.Stats) {
	e := startBenchEnv(t)
	ctx := context.Background()

	const visits = 20
	rooms := []string{e.Room("dr-lee").ID, e.Room("dr-patel").ID}
	actor := map[string]string{rooms[0]: e.User("dr.lee@riverside.example").ID, rooms[1]: e.User("dr.patel@riverside.example").ID}
	ids := make([]string, visits)
	where := make([]int, visits)
	for i := range ids {
		ids[i] = uuid.NewString()
		err := workflows.CheckIn(ctx, e.Client, workflows.VisitInput{VisitID: ids[i], ClinicID: e.Room("dr-lee").ClinicID,
			RoomID: rooms[0], PatientName: "Bench Patient", TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC()}, workflows.AskVisit(e.Client, ids[i]))
		require.NoError(t, err)
	}
	floorSamples, err := bench.FloorUpdates(ctx, e.Client, floorQueue, n)
	require.NoError(t, err)

	samples := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		v := i % visits
		from, to := rooms[where[v]], rooms[1-where[v]]
		start := time.Now()
		_, err := workflows.Transfer(ctx, e.Client, ids[v], uuid.NewString(), workflows.TransferRequest{ActorID: actor[from], TargetRoomID: to})
		require.NoError(t, err)
		samples = append(samples, time.Since(start))
		where[v] = 1 - where[v]
	}
	return bench.Summarize(samples), bench.Summarize(floorSamples)
}

// startBenchEnv runs the back end, the visit worker and a floor worker.
func startBenchEnv(t testing.TB) *testenv.Env {
	e := testenv.Start(t)
	e.StartWorker(nil)
	fw := sdkworker.New(e.Client, floorQueue, sdkworker.Options{})
	fw.RegisterWorkflow(bench.FloorWorkflow)
	require.NoError(t, fw.Start())
	t.Cleanup(fw.Stop)
	return e
}

// BenchmarkTransferLatency: `make bench` reports transfer and floor
// percentiles and their ratio.
func BenchmarkTransferLatency(b *testing.B) {
	for i := 0; i < b.N; i++ {
		tr, fl := measure(b, *transfers)
		b.Logf("transfer: %s", tr)
		b.Logf("floor (bare update): %s", fl)
		b.ReportMetric(float64(tr.P50.Microseconds())/1000, "transfer-p50-ms")
		b.ReportMetric(float64(tr.P99.Microseconds())/1000, "transfer-p99-ms")
		b.ReportMetric(float64(fl.P50.Microseconds())/1000, "floor-p50-ms")
		b.ReportMetric(float64(fl.P99.Microseconds())/1000, "floor-p99-ms")
		b.ReportMetric(float64(tr.P50)/float64(fl.P50), "p50-ratio")
	}
}

// TestHarnessRuns keeps the harness from rotting: a few transfers, numbers
// produced; no timing is asserted here.
func TestHarnessRuns(t *testing.T) {
	tr, fl := measure(t, 5)
	require.Equal(t, 5, tr.N)
	require.Equal(t, 5, fl.N)
	require.Positive(t, tr.P50)
	require.GreaterOrEqual(t, tr.Max, tr.P99)
}
