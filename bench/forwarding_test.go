package bench_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/devserver"
	"github.com/handoff-telehealth/handoff/internal/mediatest"
	"github.com/handoff-telehealth/handoff/media"
)

var forwardingCalls = 30

// mediaProcess runs `handoff media` as its own process, so its CPU time can
// be read apart from the test's peers.
type mediaProcess struct {
	cmd     *exec.Cmd
	base    string
	control *media.ControlClient
	tokens  media.Tokens
}

func startMediaProcess(t testing.TB) *mediaProcess {
	bin := filepath.Join(t.TempDir(), "handoff")
	out, err := exec.Command("go", "build", "-tags", "production", "-o", bin, "../cmd/handoff").CombinedOutput()
	require.NoError(t, err, string(out))
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cmd := exec.Command(bin, "media", "--listen", addr)
	cmd.Env = append(os.Environ(), "HANDOFF_MEDIA_SECRET=bench-secret", "HANDOFF_MEDIA_CONTROL_TOKEN=bench-control")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	return &mediaProcess{cmd: cmd, base: base, control: media.NewControlClient(base, "bench-control"), tokens: media.NewTokens("bench-secret")}
}

// cpuSeconds is the process's user+system CPU time so far.
func (m *mediaProcess) cpuSeconds(t testing.TB) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
	require.NoError(t, err)
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ = 100)
}

func (m *mediaProcess) forwarded(t testing.TB) float64 {
	resp, err := http.Get(m.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "handoff_media_forwarded_packets_total "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	t.Fatal("no forwarded-packets metric")
	return 0
}

// measureForwarding runs calls 2-party calls, each side sending ≈1.5 Mbps of
// video (3 × 1,200 B every 20 ms) and 50 audio packets a second, and
// returns forwarded packets per second and per CPU-second of the media node.
func measureForwarding(t testing.TB, calls int, window time.Duration) (perSecond, perCPUSecond, cores float64) {
	m := startMediaProcess(t)
	ctx := t.Context()
	url := "ws" + strings.TrimPrefix(m.base, "http") + "/ws"
	load := mediatest.Options{VideoPacketsPerTick: 3, VideoPayloadBytes: 1200}
	for i := 0; i < calls; i++ {
		call := fmt.Sprintf("call-%d", i)
		require.NoError(t, m.control.CreateCall(ctx, call))
		var peers []*mediatest.Peer
		for j, who := range []string{"user:%d", "visit:%d"} {
			id := fmt.Sprintf(who, i)
			p := mediatest.DialWith(t, url, m.tokens.Mint(id, "", time.Minute), id, byte('a'+j), load)
			require.NoError(t, m.control.Attach(ctx, call, id))
			p.Join(m.tokens.Mint(id, call, time.Minute))
			peers = append(peers, p)
		}
		require.Eventually(t, func() bool { return peers[0].Total('b') > 0 && peers[1].Total('a') > 0 }, 10*time.Second, 10*time.Millisecond)
	}
	time.Sleep(time.Second) // settle
	p0, c0, t0 := m.forwarded(t), m.cpuSeconds(t), time.Now()
	time.Sleep(window)
	p1, c1, elapsed := m.forwarded(t), m.cpuSeconds(t), time.Since(t0).Seconds()
	return (p1 - p0) / elapsed, (p1 - p0) / (c1 - c0), (c1 - c0) / elapsed
}

// BenchmarkMediaForwarding: forwarded packets per second, and per core of
// the media node (its own process), with 2-party calls at ≈1.5 Mbps each way.
func BenchmarkMediaForwarding(b *testing.B) {
	for i := 0; i < b.N; i++ {
		pps, perCPU, cores := measureForwarding(b, forwardingCalls, 5*time.Second)
		b.Logf("%d calls: %.0f packets/s forwarded, media node busy %.2f cores, %.0f packets per CPU-second", forwardingCalls, pps, cores, perCPU)
		b.ReportMetric(pps, "pkts/s")
		b.ReportMetric(perCPU, "pkts/cpu-s")
		b.ReportMetric(cores, "media-cores")
	}
}

func TestForwardingHarnessRuns(t *testing.T) {
	pps, perCPU, _ := measureForwarding(t, 1, time.Second)
	require.Positive(t, pps)
	require.Positive(t, perCPU)
}
