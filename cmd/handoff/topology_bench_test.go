package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/store"
)

// cpuSeconds is the CPU time (user + system) process pid has used.
func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ 100)
}

// postgresCPU sums the CPU time of every PostgreSQL process (the server is
// the machine's; nothing else uses it during a run).
func postgresCPU() float64 {
	out, _ := exec.Command("pgrep", "-x", "postgres").Output()
	total := 0.0
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			total += cpuSeconds(pid)
		}
	}
	return total
}

// cpuByRole reads the CPU time of the topology's processes by role.
func (top *topology) cpuByRole() map[string]float64 {
	sum := func(ps []*process) float64 {
		total := 0.0
		for _, p := range ps {
			if p.running() {
				total += cpuSeconds(p.cmd.Process.Pid)
			}
		}
		return total
	}
	return map[string]float64{"api": sum(top.apis), "worker": sum(top.workers), "temporal": sum([]*process{top.temporal}), "postgres": postgresCPU()}
}

// loadRun is one closed-loop run: its operations done, latencies and the
// CPU each role spent on them.
type loadRun struct {
	done      int
	seconds   float64
	latencies []time.Duration
	cpu       map[string]float64
}

func (r loadRun) rate() float64 { return float64(r.done) / r.seconds }

func (r loadRun) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// cpuPer is the CPU milliseconds role spent per operation.
func (r loadRun) cpuPer(role string) float64 { return 1000 * r.cpu[role] / float64(max(r.done, 1)) }

// closedLoop runs op from workers goroutines for d, round-robin over the
// apis, and measures.
func (top *topology) closedLoop(label string, workers int, d time.Duration, op func(api, worker, i int) bool) loadRun {
	stopPerf := top.perfRecord(label, d)
	defer stopPerf()
	before := top.cpuByRole()
	var mu sync.Mutex
	var lat []time.Duration
	var done atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && i < 100_000; i++ {
				t0 := time.Now()
				if op((w+i)%len(top.apis), w, i) {
					done.Add(1)
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	run := loadRun{done: int(done.Load()), seconds: time.Since(start).Seconds(), latencies: lat, cpu: map[string]float64{}}
	for role, v := range top.cpuByRole() {
		run.cpu[role] = v - before[role]
	}
	return run
}

// perfRecord samples the api and worker processes' call stacks with perf
// for d, into $HANDOFF_BENCH_PERF/<label>-<role>.perf, when that variable
// names a directory (read them with `perf report -i FILE`); the returned
// function waits for perf to finish writing.
func (top *topology) perfRecord(label string, d time.Duration) func() {
	dir := os.Getenv("HANDOFF_BENCH_PERF")
	if dir == "" {
		return func() {}
	}
	var runs []*exec.Cmd
	for role, ps := range map[string][]*process{"api": top.apis, "worker": top.workers} {
		var pids []string
		for _, p := range ps {
			pids = append(pids, strconv.Itoa(p.cmd.Process.Pid))
		}
		out := filepath.Join(dir, label+"-"+role+".perf")
		cmd := exec.Command("perf", "record", "-g", "-F", "499", "-o", out, "-p", strings.Join(pids, ","), "--", "sleep", strconv.Itoa(int(d.Seconds())))
		if err := cmd.Start(); err != nil {
			top.cluster.t.Logf("perf record: %v", err)
			continue
		}
		runs = append(runs, cmd)
	}
	return func() {
		for _, cmd := range runs {
			_ = cmd.Wait()
		}
	}
}

// BenchmarkTopologyScaling measures check-ins and waiting-room transfers
// per second, closed loop with 8 clients for 10 s each, and the CPU each
// process of the production topology spends per operation, with one api
// and one worker and then with two of each on the same machine.
func BenchmarkTopologyScaling(b *testing.B) {
	const clients, window = 8, 10 * time.Second
	results := map[int][2]loadRun{}
	for _, n := range []int{1, 2} {
		top := startTopology(b, n, n, []int{100})
		c := top.client
		var leeRoom, patelRoom store.Room
		require.NoError(b, top.db.Gorm().Take(&leeRoom, "slug = ?", "dr-lee").Error)
		require.NoError(b, top.db.Gorm().Take(&patelRoom, "slug = ?", "dr-patel").Error)
		lee, patel := c.login(0, "dr.lee@riverside.example"), c.login(0, "dr.patel@riverside.example")
		for i := range 20 { // warm every process up
			c.checkIn(i%n, "dr-lee", "Warm Up")
		}
		visits := make([][]string, clients)
		checkIns := top.closedLoop(fmt.Sprintf("%dx%d-checkins", n, n), clients, window, func(api, w, i int) bool {
			r := c.do(api, "POST", "/checkin/dr-lee", "", map[string]any{"name": fmt.Sprintf("Load %d-%d", w, i), "consent": true})
			if r.status != http.StatusCreated {
				return false
			}
			visits[w] = append(visits[w], r.str("visit", "id"))
			return true
		})
		// Each client moves its own patients between the two rooms.
		where := make([]map[string]bool, clients) // visit → in Dr. Patel's room
		for w := range where {
			where[w] = map[string]bool{}
		}
		transfers := top.closedLoop(fmt.Sprintf("%dx%d-transfers", n, n), clients, window, func(api, w, i int) bool {
			if len(visits[w]) == 0 {
				return false
			}
			v := visits[w][i%len(visits[w])]
			token, target := lee, patelRoom.ID
			if where[w][v] {
				token, target = patel, leeRoom.ID
			}
			r := c.do(api, "POST", "/visits/"+v+"/transfer", token, map[string]string{"targetRoomId": target})
			if r.status != http.StatusOK {
				return false
			}
			where[w][v] = !where[w][v]
			return true
		})
		results[n] = [2]loadRun{checkIns, transfers}
		for i, r := range results[n] {
			op := []string{"check-ins", "transfers"}[i]
			b.Logf("%d api + %d worker, %s: %.1f/s (%d in %.1f s), p50 %.1f ms, p99 %.1f ms; CPU ms per op: api %.2f, worker %.2f, api+worker %.2f, temporal %.2f, postgres %.2f",
				n, n, op, r.rate(), r.done, r.seconds, ms(r.pct(0.5)), ms(r.pct(0.99)),
				r.cpuPer("api"), r.cpuPer("worker"), r.cpuPer("api")+r.cpuPer("worker"), r.cpuPer("temporal"), r.cpuPer("postgres"))
		}
		for _, p := range top.cluster.procs { // the next topology gets the machine
			if p.running() {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	one, two := results[1], results[2]
	b.ReportMetric(one[0].rate(), "checkins/s-1x1")
	b.ReportMetric(two[0].rate(), "checkins/s-2x2")
	b.ReportMetric(one[1].rate(), "transfers/s-1x1")
	b.ReportMetric(two[1].rate(), "transfers/s-2x2")
	b.ReportMetric(one[0].cpuPer("api")+one[0].cpuPer("worker"), "api+worker-cpu-ms/checkin")
	b.Logf("scaling, 2+2 ÷ 1+1: check-ins ×%.2f, transfers ×%.2f", two[0].rate()/one[0].rate(), two[1].rate()/one[1].rate())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkCrossNodeTransfer times a transfer into a call, from the sending
// provider's POST to the receiving provider's first keyframe of the patient
// (the transfer, the receiving provider's admit into the call, the
// patient's page joining), in the production topology: 50 where the
// patient's session is on the call's node, 50 where it is on the other
// node and the page opens a session there.
func BenchmarkCrossNodeTransfer(b *testing.B) {
	const runs = 50
	top := startTopology(b, 1, 1, []int{1, 100})
	c := top.client
	nodeA, nodeB := top.nodes[0], top.nodes[1]
	var patelRoom store.Room
	require.NoError(b, top.db.Gorm().Take(&patelRoom, "slug = ?", "dr-patel").Error)
	lee, patel := c.login(0, "dr.lee@riverside.example"), c.login(0, "dr.patel@riverside.example")

	// A session on A fills it (capacity 1): Dr. Patel's call goes on B.
	_, fillTok := c.checkIn(0, "dr-lee", "Fills Node A")
	fill := c.session(0, fillTok, "")
	fill.body["url"] = nodeA.public
	dialSession(b, fill, 'F')
	require.Eventually(b, func() bool {
		n, err := top.db.With(b.Context()).MediaNodes.Get(nodeA.id)
		return err == nil && n.Participants == 1
	}, 10*time.Second, 100*time.Millisecond)
	quinn, quinnTok := c.checkIn(0, "dr-patel", "Quinn Standing")
	ad := c.ok(0, "POST", "/visits/"+quinn+"/admit", patel, nil)
	call := ad.str("call", "id")
	patelPeer := dialSession(b, reply{body: ad.body["media"].(map[string]any)}, 'T')
	s := c.session(0, quinnTok, call)
	require.Equal(b, nodeB.public, s.str("url"))
	dialSession(b, s, 'Q')
	require.Eventually(b, func() bool { return patelPeer.Count('Q', "video") > 2 }, 10*time.Second, 20*time.Millisecond)

	took, connect := map[bool][]time.Duration{}, map[bool][]time.Duration{}
	for i := range 2 * runs {
		cross := i%2 == 0
		tag := byte(100 + i)
		visit, tok := c.checkIn(0, "dr-lee", fmt.Sprintf("Patient %d", i))
		waiting := c.session(0, tok, "")
		waiting.body["url"] = map[bool]string{true: nodeA.public, false: nodeB.public}[cross]
		peer := dialSession(b, waiting, tag)
		dialed := time.Now()
		require.Eventually(b, func() bool { return peer.PC.ConnectionState() == webrtc.PeerConnectionStateConnected }, 15*time.Second, 5*time.Millisecond)
		connect[cross] = append(connect[cross], time.Since(dialed))

		t0 := time.Now()
		c.ok(0, "POST", "/visits/"+visit+"/transfer", lee, map[string]string{"targetRoomId": patelRoom.ID})
		tTransfer := time.Since(t0)
		c.ok(0, "POST", "/visits/"+visit+"/admit", patel, map[string]string{"callId": call})
		tAdmit := time.Since(t0)
		s := c.session(0, tok, call)
		moved := peer
		if s.str("url") != waiting.str("url") {
			moved = dialSession(b, s, tag)
		} else {
			peer.Join(s.str("joinToken"))
		}
		require.Equal(b, cross, moved != peer, "run %d: a session on the other node exactly when it was on A", i)
		joinedAt := time.Duration(-1)
		for deadline := time.After(10 * time.Second); joinedAt < 0; {
			select {
			case m := <-moved.Events:
				if m.Type == "joined" {
					joinedAt = time.Since(t0)
				}
			case <-deadline:
				joinedAt = 0
			}
		}
		require.Eventually(b, func() bool { return len(patelPeer.KeyframesFrom(tag)) > 0 }, 10*time.Second, 5*time.Millisecond)
		d := patelPeer.KeyframesFrom(tag)[0].Sub(t0)
		took[cross] = append(took[cross], d)
		if d > time.Second {
			b.Logf("run %d (across nodes %v) took %.0f ms: transfer answered at %.0f, admit at %.0f, the first video packet at %.0f", i, cross,
				ms(d), ms(tTransfer), ms(tAdmit), ms(patelPeer.FirstFrom(tag, "video").Sub(t0)))
			b.Logf("  the patient's first audio at Dr. Patel at %.0f", ms(patelPeer.FirstFrom(tag, "audio").Sub(t0)))
			b.Logf("  joined at %.0f, the patient's first video from Dr. Patel at %.0f, Dr. Patel's PLIs so far %d", ms(joinedAt), ms(moved.FirstFrom('T', "video").Sub(t0)), moved.PLIs.Load())
		}
		c.ok(0, "POST", "/visits/"+visit+"/end", patel, nil)
		peer.Close()
		moved.Close()
	}
	for _, cross := range []bool{false, true} {
		r := loadRun{latencies: took[cross]}
		name := map[bool]string{false: "same node", true: "across nodes"}[cross]
		b.Logf("%s, %d runs: p50 %.1f ms, p99 %.1f ms, max %.1f ms", name, len(took[cross]), ms(r.pct(0.5)), ms(r.pct(0.99)), ms(r.pct(1)))
		cr := loadRun{latencies: connect[cross]}
		b.Logf("  (the waiting patient's session connecting before: p50 %.1f ms, max %.1f ms)", ms(cr.pct(0.5)), ms(cr.pct(1)))
		b.ReportMetric(ms(r.pct(0.5)), strings.ReplaceAll(name, " ", "-")+"-p50-ms")
		b.ReportMetric(ms(r.pct(0.99)), strings.ReplaceAll(name, " ", "-")+"-p99-ms")
	}
}
