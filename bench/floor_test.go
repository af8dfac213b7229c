package bench_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
)

// floorCalls is how many 2-party calls BenchmarkMediaVsFloor runs on each
// forwarder (HANDOFF_BENCH=short: fewer; HANDOFF_BENCH_CALLS: that many, for
// a machine whose cores the peers of 30 simulcast calls overload, which the
// node's allocator then reads as weak links).
var floorCalls = callsFromEnv(30)

// callsFromEnv is HANDOFF_BENCH_CALLS, or def when it is unset; any other
// value than a positive number stops the run rather than measure 30 calls
// under a label that says otherwise.
func callsFromEnv(def int) int {
	v := os.Getenv("HANDOFF_BENCH_CALLS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		panic(fmt.Sprintf("HANDOFF_BENCH_CALLS=%q: want a positive number of calls", v))
	}
	return n
}

// benchShort is HANDOFF_BENCH=short: a quick run, e.g. to check the
// harness, whose figures are rougher.
func benchShort() bool { return os.Getenv("HANDOFF_BENCH") == "short" }

// caller sets up calls on one forwarder.
type caller interface {
	dialCalls(t testing.TB, calls int, round string) (hangUp func())
	measure(t testing.TB, d time.Duration) window
}

// comparison is the median of each forwarder's windows.
type comparison struct {
	floor, handoff window
	windows        int
}

// ratio is Handoff's packets per CPU-second over the floor's.
func (c comparison) ratio() float64 { return c.handoff.perCPU / c.floor.perCPU }

// compareWithFloor alternates windows — floor, Handoff, floor, Handoff, … —
// rounds times each, with fresh calls for every window, so that a change in
// the machine's load between windows moves both forwarders alike. Only one
// forwarder carries calls at a time: on 2 cores the peers alone nearly fill
// the machine.
func compareWithFloor(t testing.TB, floor, handoff caller, calls, rounds int, d time.Duration) comparison {
	var fw, hw []window
	for r := 0; r < rounds; r++ {
		fw = append(fw, measureRound(t, "floor", floor, calls, r, d))
		hw = append(hw, measureRound(t, "handoff", handoff, calls, r, d))
	}
	return comparison{floor: medianWindow(fw), handoff: medianWindow(hw), windows: rounds}
}

// measureRound runs one window on one forwarder: dial, settle, measure,
// hang up.
func measureRound(t testing.TB, name string, c caller, calls, round int, d time.Duration) window {
	hangUp := c.dialCalls(t, calls, fmt.Sprintf("r%d-", round))
	defer hangUp()
	time.Sleep(settle)
	w := c.measure(t, d)
	t.Logf("  window %d %-7s %s", round+1, name, w)
	return w
}

func (w window) String() string {
	return fmt.Sprintf("%6.0f packets/s forwarded, %.2f cores, %6.0f packets per CPU-second", w.pps, w.cores, w.perCPU)
}

// medianWindow takes the median of each figure on its own.
func medianWindow(ws []window) window {
	pick := func(f func(window) float64) float64 {
		v := make([]float64, len(ws))
		for i, w := range ws {
			v[i] = f(w)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return window{
		pps:    pick(func(w window) float64 { return w.pps }),
		cores:  pick(func(w window) float64 { return w.cores }),
		perCPU: pick(func(w window) float64 { return w.perCPU }),
	}
}

// BenchmarkMediaVsFloor: Handoff's media node beside a minimal pion relay
// (bench/floorrelay), both their own processes, with the same 2-party calls
// at ≈1.5 Mbps video + audio each way. Goal: Handoff forwards ≥ 0.8 of the
// floor's packets per CPU-second, and ≥ 50,000.
func BenchmarkMediaVsFloor(b *testing.B) {
	benchVsFloor(b, forwardingLoad, handoffLoad, "1.5 Mbps video + audio each way", "goal ≥ 0.80; and ≥ 50,000 packets per CPU-second")
}

// BenchmarkSimulcastVsFloor: the same comparison with every party sending
// its camera as three layers (≈960 / 300 / 100 kbit/s) and audio: each
// forwarder reads all three and sends the other party the full layer.
// Handoff's node gets there by its allocator's probes (a subscriber starts
// on the lowest layer); the floor relay always forwards the full layer.
func BenchmarkSimulcastVsFloor(b *testing.B) {
	benchVsFloor(b, simulcastLoad, handoffSimulcastLoad, "three camera layers + audio each way, the full layer forwarded", "goal ≥ 0.80")
}

// benchVsFloor compares the two forwarders with floorLoad and handoffLoad
// (the same media; Handoff's peers also send a browser's feedback).
func benchVsFloor(b *testing.B, floorLoad, handoffLoad mediatest.Options, load, goal string) {
	calls, rounds, d := floorCalls, 3, 5*time.Second
	if benchShort() {
		calls, rounds, d = min(calls, 10), 3, 2*time.Second
	}
	floor, handoff := startFloorRelay(b), startMediaProcess(b)
	floor.load, handoff.load = floorLoad, handoffLoad
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := compareWithFloor(b, floor, handoff, calls, rounds, d)
		b.Logf("%d two-party calls (%s), median of %d alternating %s windows each:", calls, load, c.windows, d)
		b.Logf("  floor relay  : %s", c.floor)
		b.Logf("  handoff media: %s", c.handoff)
		b.Logf("  handoff/floor packets per CPU-second: %.2f (%s)", c.ratio(), goal)
		b.ReportMetric(c.floor.pps, "floor-pkts/s")
		b.ReportMetric(c.floor.cores, "floor-cores")
		b.ReportMetric(c.floor.perCPU, "floor-pkts/cpu-s")
		b.ReportMetric(c.handoff.pps, "handoff-pkts/s")
		b.ReportMetric(c.handoff.cores, "handoff-cores")
		b.ReportMetric(c.handoff.perCPU, "handoff-pkts/cpu-s")
		b.ReportMetric(c.ratio(), "handoff/floor")
	}
}

func TestFloorRelayHarnessRuns(t *testing.T) {
	floor, handoff := startFloorRelay(t), startMediaProcess(t)
	c := compareWithFloor(t, floor, handoff, 1, 1, time.Second)
	require.Positive(t, c.floor.pps)
	require.Positive(t, c.handoff.pps)
	require.Positive(t, c.ratio())

	// Simulcast: both forward the full layer (each dial waits for it).
	floor.load, handoff.load = simulcastLoad, handoffSimulcastLoad
	c = compareWithFloor(t, floor, handoff, 1, 1, time.Second)
	require.Positive(t, c.floor.pps)
	require.Positive(t, c.handoff.pps)
}
