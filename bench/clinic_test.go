package bench_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/handoff-telehealth/handoff/bench"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
)

// short is `make bench-short`: the same figures from fewer samples.
var short = os.Getenv("HANDOFF_BENCH") == "short"

// scale picks the full or the short value.
func scale(full, shortValue int) int {
	if short {
		return shortValue
	}
	return full
}

// artifacts is where profiles and the sites' logs go.
const artifacts = "../artifacts/bench"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// handoffBin is the binary under test: $HANDOFF_BIN, or one built once.
func handoffBin(t testing.TB) string {
	binOnce.Do(func() {
		if binPath = os.Getenv("HANDOFF_BIN"); binPath != "" {
			return
		}
		dir, err := os.MkdirTemp("", "handoff-bench-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "handoff")
		binErr = goBuild(binPath, "../cmd/handoff")
	})
	require.NoError(t, binErr)
	return binPath
}

// engines are the app databases a clinic runs on: dev's embedded SQLite
// file and PostgreSQL (a fresh database on the machine's server).
var engines = []struct {
	name string
	dsn  func(testing.TB) string
}{
	{"sqlite", func(testing.TB) string { return "" }},
	{"postgres", testdb.PostgresDSN},
}

// enginesFor are the engines a figure is measured on: the short mode
// measures the heavier figures on dev's default (SQLite) only.
func enginesFor(both bool) []struct {
	name string
	dsn  func(testing.TB) string
} {
	if short && !both {
		return engines[:1]
	}
	return engines
}

// loadedSite is a running `handoff dev`, its clinic with providers signed
// in, and a floor worker on the same Temporal server.
type loadedSite struct {
	site   *bench.Site
	clinic *bench.Clinic
	floor  client.Client
}

func startLoadedSite(t testing.TB, name, dsn string) *loadedSite {
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, os.MkdirAll(artifacts, 0o755))
	logFile, err := os.Create(filepath.Join(artifacts, name+".log"))
	require.NoError(t, err)
	site, err := bench.StartSite(ctx, bench.SiteOptions{Bin: handoffBin(t), DataDir: t.TempDir(), DSN: dsn, Log: logFile})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); site.Stop(); _ = logFile.Close() })
	clinic, err := bench.OpenClinic(ctx, bench.NewClient(site.APIURL))
	require.NoError(t, err)
	fc, err := client.Dial(client.Options{HostPort: site.TemporalAddr, Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	require.NoError(t, err)
	t.Cleanup(fc.Close)
	w := sdkworker.New(fc, floorQueue, sdkworker.Options{})
	w.RegisterWorkflow(bench.FloorWorkflow)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &loadedSite{site: site, clinic: clinic, floor: fc}
}

// transfersBesideFloor runs n transfers at rate and, at the same time and
// rate, n bare updates: the floor under the same load.
func (s *loadedSite) transfersBesideFloor(t testing.TB, rate float64, n int) (bench.Result, bench.Stats) {
	ctx := context.Background()
	var floor bench.Stats
	var floorErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		floor, floorErr = bench.FloorLoop(ctx, s.floor, floorQueue, rate, n)
	}()
	r := s.clinic.Transfers(ctx, rate, n)
	<-done
	require.NoError(t, floorErr)
	return r, floor
}

// usage is the site's processes' memory and CPU.
type usage struct{ handoff, postgres bench.Usage }

func (s *loadedSite) usage(t testing.TB) usage {
	h, err := bench.ProcessUsage(s.site.PID())
	require.NoError(t, err)
	var pg bench.Usage
	if s.site.DSN != "" {
		pg, err = bench.PostgresUsage()
		require.NoError(t, err)
	}
	return usage{h, pg}
}

// idle measures the CPU the site uses while nothing happens, over d.
func (s *loadedSite) idle(t testing.TB, d time.Duration) (handoffCores, postgresCores float64) {
	before := s.usage(t)
	time.Sleep(d)
	after := s.usage(t)
	return (after.handoff.CPUSeconds - before.handoff.CPUSeconds) / d.Seconds(),
		(after.postgres.CPUSeconds - before.postgres.CPUSeconds) / d.Seconds()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }

// BenchmarkTransfer is figures 1 and 2: with 1,000 patients waiting, each
// with the page open, transfers at 20/s (provider's POST → the patient's
// "You have been transferred…" and the receiving room's card) beside bare
// updates at the same rate; then check-ins at 50/s (POST → the provider's
// card), each run adding 1,000 waiting patients. Medians of three runs.
func BenchmarkTransfer(b *testing.B) {
	for _, eng := range engines {
		b.Run(eng.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := startLoadedSite(b, "transfer-"+eng.name, eng.dsn(b))
				require.NoError(b, s.clinic.Grow(context.Background(), 1000, 16))
				var patient, card, floor []bench.Stats
				runs, n := scale(3, 1), scale(500, 500)
				for r := 0; r < runs; r++ {
					res, fl := s.transfersBesideFloor(b, 20, n)
					require.Zero(b, res.Errors, res.FirstOf)
					b.Logf("run %d: transfer → patient %s; → receiving card %s; floor %s", r+1, res.Seen, res.Seen2, fl)
					patient, card, floor = append(patient, res.Seen), append(card, res.Seen2), append(floor, fl)
				}
				p, c, f := bench.Median(patient), bench.Median(card), bench.Median(floor)
				b.Logf("%s, 1,000 waiting, 20 transfers/s, median of %d runs of %d:", eng.name, runs, n)
				b.Logf("  provider's POST → patient's event: %s", p)
				b.Logf("  provider's POST → receiving room's card: %s", c)
				b.Logf("  floor, bare update at the same rate: %s", f)
				b.Logf("  ratio to floor: p50 ×%.2f, p99 ×%.2f (patient); p50 ×%.2f, p99 ×%.2f (card)",
					ratio(p.P50, f.P50), ratio(p.P99, f.P99), ratio(c.P50, f.P50), ratio(c.P99, f.P99))
				b.ReportMetric(float64(p.P50.Microseconds())/1000, "transfer-p50-ms")
				b.ReportMetric(float64(p.P99.Microseconds())/1000, "transfer-p99-ms")
				b.ReportMetric(ratio(p.P50, f.P50), "p50-ratio")

				var seen, answer []bench.Stats
				for r := 0; r < runs; r++ {
					ci := s.clinic.CheckIns(context.Background(), 50, scale(1000, 250))
					require.Zero(b, ci.Errors, ci.FirstOf)
					b.Logf("  check-in run %d at 50/s: POST → provider's card %s (answer %s)", r+1, ci.Seen, ci.Answer)
					seen, answer = append(seen, ci.Seen), append(answer, ci.Answer)
				}
				ci := bench.Median(seen)
				b.Logf("  check-in at 50/s, median of %d runs: POST → provider's card %s (answer %s)", runs, ci, bench.Median(answer))
				b.ReportMetric(float64(ci.P99.Microseconds())/1000, "checkin-p99-ms")
			}
		})
	}
}

// ceilingStep is one rate of a ramp.
type ceilingStep struct {
	rate       float64
	result     bench.Result
	handoffCPU float64 // cores
	pgCPU      float64
}

func (c ceilingStep) holds() bool {
	return c.result.Errors == 0 && c.result.Seen.P99 <= 500*time.Millisecond && c.result.Throughput() >= 0.9*c.rate
}

// ramp runs op at each rate for step, profiling the site meanwhile, until a
// rate no longer holds (p99 over 500 ms, errors, or falling behind). It
// returns the steps and keeps the profile of the first that failed.
func (s *loadedSite) ramp(t testing.TB, name string, rates []float64, step time.Duration,
	op func(rate float64, n int) bench.Result) []ceilingStep {
	var steps []ceilingStep
	for _, rate := range rates {
		profilePath := filepath.Join(artifacts, name+".pprof")
		profiled := make(chan error, 1)
		go func() { profiled <- s.site.Profile(context.Background(), step-time.Second, profilePath+".tmp") }()
		before := s.usage(t)
		res := op(rate, int(rate*step.Seconds()))
		after := s.usage(t)
		require.NoError(t, <-profiled)
		st := ceilingStep{rate: rate, result: res,
			handoffCPU: (after.handoff.CPUSeconds - before.handoff.CPUSeconds) / res.Elapsed.Seconds(),
			pgCPU:      (after.postgres.CPUSeconds - before.postgres.CPUSeconds) / res.Elapsed.Seconds()}
		steps = append(steps, st)
		t.Logf("  %s at %.0f/s: done %.1f/s, seen %s, errors %d, handoff %.2f cores, postgres %.2f cores",
			name, rate, res.Throughput(), res.Seen, res.Errors, st.handoffCPU, st.pgCPU)
		require.NoError(t, os.Rename(profilePath+".tmp", profilePath))
		if !st.holds() {
			if res.FirstOf != "" {
				t.Logf("  first error: %s", res.FirstOf)
			}
			break
		}
	}
	return steps
}

// reportCeiling logs the highest rate that held and what the profile of the
// first that did not shows.
func reportCeiling(t testing.TB, name string, steps []ceilingStep) float64 {
	best := 0.0
	for _, st := range steps {
		if st.holds() {
			best = max(best, st.result.Throughput())
		}
	}
	shares, err := bench.Components(filepath.Join(artifacts, name+".pprof"))
	require.NoError(t, err)
	var top []string
	for _, sh := range shares[:min(6, len(shares))] {
		top = append(top, sh.String())
	}
	t.Logf("%s ceiling: %.0f/s sustained with p99 ≤ 500 ms; CPU of handoff dev at the failing step by component: %s",
		name, best, strings.Join(top, ", "))
	return best
}

// BenchmarkCeiling is figure 3: transfers/s and check-ins/s ramped until
// p99 passes 500 ms, with 1,000 patients waiting; the CPU profile of the
// step that failed is in artifacts/bench/.
func BenchmarkCeiling(b *testing.B) {
	for _, eng := range enginesFor(false) {
		b.Run(eng.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := startLoadedSite(b, "ceiling-"+eng.name, eng.dsn(b))
				ctx := context.Background()
				require.NoError(b, s.clinic.Grow(ctx, 1000, 16))
				step := time.Duration(scale(10, 5)) * time.Second
				rates := []float64{20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400}
				tr := s.ramp(b, "ceiling-transfers-"+eng.name, rates, step, func(rate float64, n int) bench.Result {
					return s.clinic.Transfers(ctx, rate, n)
				})
				b.ReportMetric(reportCeiling(b, "ceiling-transfers-"+eng.name, tr), "transfers/s")
				ci := s.ramp(b, "ceiling-checkins-"+eng.name, rates, step, func(rate float64, n int) bench.Result {
					return s.clinic.CheckIns(ctx, rate, n)
				})
				b.ReportMetric(reportCeiling(b, "ceiling-checkins-"+eng.name, ci), "checkins/s")
			}
		})
	}
}

// BenchmarkCapacity is figures 4 and 6: the clinic grows to 100, 1,000 and
// 10,000 waiting patients (each with the page open); at each size the
// memory of every process, CPU at idle, and transfer latency at 20/s.
func BenchmarkCapacity(b *testing.B) {
	sizes := []int{100, 1000, scale(10000, 2000)}
	for _, eng := range enginesFor(false) {
		b.Run(eng.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := startLoadedSite(b, "capacity-"+eng.name, eng.dsn(b))
				for _, size := range sizes {
					require.NoError(b, s.clinic.Grow(context.Background(), size, 16))
					time.Sleep(5 * time.Second) // let check-in work drain
					hIdle, pgIdle := s.idle(b, 10*time.Second)
					u := s.usage(b)
					res, fl := s.transfersBesideFloor(b, 20, scale(400, 200))
					require.Zero(b, res.Errors, res.FirstOf)
					b.Logf("%s, %d waiting: handoff dev RSS %.0f MiB, postgres PSS %.0f MiB, total %.0f MiB; idle CPU handoff %.3f cores, postgres %.3f; transfer p50 %s p99 %s (floor p99 %s)",
						eng.name, size, mib(u.handoff.RSS), mib(u.postgres.RSS), mib(u.handoff.RSS+u.postgres.RSS), hIdle, pgIdle,
						fmtMS(res.Seen.P50), fmtMS(res.Seen.P99), fmtMS(fl.P99))
					b.ReportMetric(mib(u.handoff.RSS+u.postgres.RSS), fmt.Sprintf("MiB@%d", size))
				}
			}
		})
	}
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// TestClinicHarnessRuns keeps the harness from rotting: a real `handoff
// dev`, a few patients, transfers, check-ins, one ramp step with its profile,
// and the process figures. Nothing is timed here.
func TestClinicHarnessRuns(t *testing.T) {
	s := startLoadedSite(t, "sanity", "")
	ctx := context.Background()
	require.NoError(t, s.clinic.Grow(ctx, 12, 4))
	require.Equal(t, 12, s.clinic.Waiting())

	res, fl := s.transfersBesideFloor(t, 10, 8)
	require.Zero(t, res.Errors, res.FirstOf)
	require.Equal(t, 8, res.Seen.N, "every patient saw the transfer")
	require.Equal(t, 8, res.Seen2.N, "every receiving room saw the card")
	require.Equal(t, 8, fl.N)

	ci := s.clinic.CheckIns(ctx, 10, 5)
	require.Zero(t, ci.Errors, ci.FirstOf)
	require.Equal(t, 5, ci.Seen.N)
	require.Equal(t, 17, s.clinic.Waiting())

	steps := s.ramp(t, "sanity-ramp", []float64{5}, 2*time.Second, func(rate float64, n int) bench.Result {
		return s.clinic.Transfers(ctx, rate, n)
	})
	require.Len(t, steps, 1)
	shares, err := bench.Components(filepath.Join(artifacts, "sanity-ramp.pprof"))
	require.NoError(t, err)
	require.NotEmpty(t, shares)

	u := s.usage(t)
	require.Greater(t, u.handoff.RSS, int64(10<<20), "handoff dev holds at least its binary")
	require.Positive(t, u.handoff.CPUSeconds)
}
