package bench_test

import (
	"bufio"
	"cmp"
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

	"github.com/handoff-telehealth/handoff/bench"
	"github.com/handoff-telehealth/handoff/devserver"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/media"
)

var forwardingCalls = 30

// forwardingLoad is what each party of a benchmark call sends: ≈1.5 Mbps of
// video (3 × 1,200 B every 20 ms) and 50 audio packets a second.
var forwardingLoad = mediatest.Options{VideoPacketsPerTick: 3, VideoPayloadBytes: 1200}

// handoffLoad is the same load to Handoff's node, whose peers report what
// arrives (TWCC, receiver reports, NACKs) as browsers do: the node runs a
// congestion controller and the allocator per subscriber on that feedback,
// and the figure includes them. (The floor relay negotiates no feedback.)
var handoffLoad = func() mediatest.Options { o := forwardingLoad; o.Feedback = true; return o }()

// simulcastLoad is what each party sends when its camera goes out as three
// layers, as the pages send it (mediatest.Layers: ≈960 / 300 / 100 kbit/s,
// 200 video packets a second in all) and audio; each subscriber is sent
// the full layer (100 packets a second) and the audio.
var simulcastLoad = mediatest.Options{Simulcast: true}

// handoffSimulcastLoad is simulcastLoad with a browser's feedback.
var handoffSimulcastLoad = func() mediatest.Options { o := simulcastLoad; o.Feedback = true; return o }()

// settle is how long calls run before a window opens, so that connection
// setup (ICE, DTLS) is not counted as forwarding work.
const settle = time.Second

// relayProcess is a forwarder under test run as its own process, so that its
// CPU time can be read apart from the test's peers.
type relayProcess struct {
	cmd     *exec.Cmd
	base    string // http://host:port
	counter string // the metric line of its forwarded-packets counter
	// internal is where its metrics (and a media node's control API) are
	// served, when not at base.
	internal string
}

// buildBinary builds pkg (relative to ./bench) into a temporary file.
func buildBinary(t testing.TB, pkg string, flags ...string) string {
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	require.NoError(t, goBuild(bin, pkg, flags...))
	return bin
}

// goBuild builds pkg into bin.
func goBuild(bin, pkg string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, out)
	}
	return nil
}

// startRelayProcess runs bin with args plus "--listen <free port>", and waits
// until it serves /healthz.
func startRelayProcess(t testing.TB, counter, bin string, env []string, args ...string) *relayProcess {
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cmd := exec.Command(bin, append(args, "--listen", addr)...)
	cmd.Env = append(os.Environ(), env...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	p := &relayProcess{cmd: cmd, base: "http://" + addr, counter: counter}
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	return p
}

// cpuSeconds is the process's user+system CPU time so far.
func (p *relayProcess) cpuSeconds(t testing.TB) float64 {
	u, err := bench.ProcessUsage(p.cmd.Process.Pid)
	require.NoError(t, err)
	return u.CPUSeconds
}

// forwarded reads the process's forwarded-packets counter.
func (p *relayProcess) forwarded(t testing.TB) float64 {
	resp, err := http.Get(cmp.Or(p.internal, p.base) + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), p.counter+" "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	t.Fatalf("no %s metric", p.counter)
	return 0
}

// window is one measuring window of a forwarder.
type window struct {
	pps    float64 // packets forwarded per second
	cores  float64 // CPU-seconds per second
	perCPU float64 // packets forwarded per CPU-second
}

// measure reads the counter and the CPU time before and after d.
func (p *relayProcess) measure(t testing.TB, d time.Duration) window {
	p0, c0, t0 := p.forwarded(t), p.cpuSeconds(t), time.Now()
	time.Sleep(d)
	p1, c1, elapsed := p.forwarded(t), p.cpuSeconds(t), time.Since(t0).Seconds()
	return window{pps: (p1 - p0) / elapsed, cores: (c1 - c0) / elapsed, perCPU: (p1 - p0) / (c1 - c0)}
}

// mediaProcess is `handoff media` as its own process.
type mediaProcess struct {
	load mediatest.Options // what each party sends
	*relayProcess
	control *media.ControlClient
	tokens  media.Tokens
}

func startMediaProcess(t testing.TB) *mediaProcess {
	bin := buildBinary(t, "../cmd/handoff", "-tags", "production")
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	internal := fmt.Sprintf("127.0.0.1:%d", ports[0])
	p := startRelayProcess(t, "handoff_media_forwarded_packets_total", bin,
		[]string{"HANDOFF_MEDIA_SECRET=bench-media-secret-0123456789abcdef", "HANDOFF_MEDIA_CONTROL_TOKEN=bench-control-token-0123456789abcdef"},
		"media", "--internal-listen", internal)
	p.internal = "http://" + internal
	return &mediaProcess{load: handoffLoad, relayProcess: p, control: media.NewControlClient(p.internal, "bench-control-token-0123456789abcdef"), tokens: media.NewTokens("bench-media-secret-0123456789abcdef")}
}

// dialCalls sets up calls 2-party calls carrying forwardingLoad, and returns
// once media flows both ways in each. round keeps call and participant ids
// apart from earlier rounds on the same node. hangUp ends the calls.
func (m *mediaProcess) dialCalls(t testing.TB, calls int, round string) (hangUp func()) {
	if m.load.Simulcast {
		round = "sim-" + round // apart from the single-layer rounds' calls
	}
	ctx := t.Context()
	url := "ws" + strings.TrimPrefix(m.base, "http") + "/ws"
	var all []*mediatest.Peer
	var ids []string
	for i := 0; i < calls; i++ {
		call := fmt.Sprintf("call-%s%d", round, i)
		ids = append(ids, call)
		require.NoError(t, m.control.CreateCall(ctx, call))
		var peers []*mediatest.Peer
		for j, who := range []string{"user:%s%d", "visit:%s%d"} {
			id := fmt.Sprintf(who, round, i)
			p := mediatest.DialWith(t, url, m.tokens.Mint(id, "", time.Minute), id, byte('a'+j), m.load)
			require.NoError(t, m.control.Attach(ctx, call, id))
			p.Join(m.tokens.Mint(id, call, time.Minute))
			peers = append(peers, p)
		}
		require.Eventually(t, func() bool { return peers[0].Total('b') > 0 && peers[1].Total('a') > 0 }, 30*time.Second, 10*time.Millisecond)
		if m.load.Simulcast {
			// A subscriber starts on the lowest layer; the allocator's
			// probes move it up to the full one, which the window counts.
			require.Eventually(t, func() bool { return peers[0].Layer('b') == 'f' && peers[1].Layer('a') == 'f' }, 30*time.Second, 50*time.Millisecond,
				"the node never sends the full layer on loopback")
		}
		all = append(all, peers...)
	}
	return func() {
		for _, p := range all {
			p.Close()
		}
		for _, call := range ids {
			_ = m.control.EndCall(ctx, call)
		}
	}
}

// measureForwarding runs calls 2-party calls, each side sending ≈1.5 Mbps of
// video (3 × 1,200 B every 20 ms) and 50 audio packets a second, and
// returns forwarded packets per second and per CPU-second of the media node.
func measureForwarding(t testing.TB, calls int, d time.Duration) (perSecond, perCPUSecond, cores float64) {
	m := startMediaProcess(t)
	hangUp := m.dialCalls(t, calls, "")
	defer hangUp()
	time.Sleep(settle)
	w := m.measure(t, d)
	return w.pps, w.perCPU, w.cores
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
