package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/handoff-telehealth/handoff/devserver"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/store"
)

// process is one process of the topology, its output kept for a failure.
type process struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// cluster starts each process of the production topology and reports the
// output of all of them when the test fails.
type cluster struct {
	t     testing.TB
	env   []string
	procs []*process
}

func (c *cluster) start(name, bin string, args ...string) *process {
	return c.startWith(nil, name, bin, args...)
}

// startWith starts a process with env added to the cluster's.
func (c *cluster) startWith(env []string, name, bin string, args ...string) *process {
	p := &process{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), c.env...), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(c.t, p.cmd.Start(), name)
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	c.t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (c *cluster) run(bin string, args ...string) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	require.NoError(c.t, err, "%v: %s", args, out)
	return string(out)
}

func (c *cluster) dumpOnFailure() {
	c.t.Cleanup(func() {
		if dir := os.Getenv("HANDOFF_TOPOLOGY_LOGS"); dir != "" { // every process's output, to read a run
			for _, p := range c.procs {
				_ = os.WriteFile(filepath.Join(dir, p.name+".log"), []byte(p.output()), 0o644)
			}
		}
		if !c.t.Failed() {
			return
		}
		for _, p := range c.procs {
			out := p.output()
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			c.t.Logf("--- %s (running %v) ---\n%s", p.name, p.running(), out)
		}
	})
}

// ready waits for url to answer 200.
func ready(t testing.TB, p *process, url string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !p.running() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
		}
		if r, err := http.Get(url); err == nil {
			_ = r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s within %s\n%s", p.name, url, limit, p.output())
}

// apiClient speaks to the api processes as the pages do.
type apiClient struct {
	t    testing.TB
	urls []string
}

type reply struct {
	status int
	body   map[string]any
	raw    string
}

func (r reply) str(path ...string) string {
	var v any = r.body
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

func (a apiClient) do(api int, method, path, token string, body any) reply {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(a.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.urls[api]+"/api/v1"+path, rd)
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (a apiClient) ok(api int, method, path, token string, body any) reply {
	a.t.Helper()
	r := a.do(api, method, path, token, body)
	require.Less(a.t, r.status, 300, "%s %s: %s", method, path, r.raw)
	return r
}

func (a apiClient) login(api int, email string) string {
	return a.ok(api, "POST", "/auth/login", "", map[string]string{"email": email, "password": store.DemoPassword}).str("token")
}

func (a apiClient) checkIn(api int, slug, name string) (visit, token string) {
	r := a.ok(api, "POST", "/checkin/"+slug, "", map[string]any{"name": name, "consent": true})
	return r.str("visit", "id"), r.str("token")
}

// session is a media session as a page opens it: the node the API names.
func (a apiClient) session(api int, token, callID string) reply {
	path := "/media/session"
	if callID != "" {
		path += "?callId=" + callID
	}
	return a.ok(api, "GET", path, token, nil)
}

func dialSession(t testing.TB, r reply, tag byte) *mediatest.Peer {
	p := mediatest.Dial(t, r.str("url"), r.str("sessionToken"), r.str("participant"), tag)
	if j := r.str("joinToken"); j != "" {
		p.Join(j)
	}
	return p
}

// node is a media node of the topology.
type node struct {
	id     string
	proc   *process
	public string
}

// topology is the production topology running: a Temporal server on
// PostgreSQL (the embedded server, its own process), the app database, and
// api, worker and media processes of the production build.
type topology struct {
	cluster       *cluster
	temporal      *process
	apis, workers []*process
	nodes         []node
	client        apiClient
	db            *store.DB
}

// startTopology starts nAPI api and nWorkers worker processes and up to two
// media nodes, one per capacity (ids topo-a, topo-b).
func startTopology(t testing.TB, nAPI, nWorkers int, capacities []int) *topology {
	require.LessOrEqual(t, len(capacities), 2)
	prod := filepath.Join(t.TempDir(), "handoff-production")
	build := exec.Command("go", "build", "-tags", "production", "-o", prod, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	appDSN := testdb.PostgresDSN(t)
	admin, err := url.Parse(testdb.AdminDSN())
	require.NoError(t, err)
	temporalDB := "topology_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	admin.Path = "/" + temporalDB
	t.Cleanup(func() {
		for _, db := range []string{temporalDB, temporalDB + "_visibility"} {
			_ = exec.Command("psql", testdb.AdminDSN(), "-qc", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)").Run()
		}
	})

	ports, err := devserver.FreePorts("127.0.0.1", 7+2*nAPI+nWorkers)
	require.NoError(t, err)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	c := &cluster{t: t, env: []string{
		"HANDOFF_DB=" + appDSN, "HANDOFF_TEMPORAL_ADDRESS=" + addr(0), "HANDOFF_TEMPORAL_NAMESPACE=default",
		"HANDOFF_CODEC_KEYS=" + testenv.CodecKeys, "HANDOFF_DATA_KEYS=" + testdb.DataKeys,
		"HANDOFF_MEDIA_SECRET=topology-media-secret-0123456789abcdef", "HANDOFF_MEDIA_CONTROL_TOKEN=topology-control-token-0123456789abcdef",
	}}
	c.dumpOnFailure()

	temporal := c.start("temporal", binary, "temporal-server", "--db", admin.String(), "--port", strconv.Itoa(ports[0]), "--log-dir", t.TempDir())
	require.Eventually(t, func() bool {
		return strings.Contains(temporal.output(), "Temporal server ready") || !temporal.running()
	},
		3*time.Minute, 200*time.Millisecond)
	require.True(t, temporal.running(), temporal.output())
	c.run(prod, "migrate", "--seed-demo")
	c.run(prod, "temporal-setup")

	// Media node A takes 4 participants before placement prefers B.
	startNode := func(id string, capacity, listen, internal, udp int) node {
		public := "ws://" + addr(listen) + "/ws"
		p := c.start(id, prod, "media", "--listen", addr(listen), "--internal-listen", addr(internal), "--db", appDSN, "--node-id", id,
			"--public-url", public, "--control-url", "http://"+addr(internal), "--capacity", strconv.Itoa(capacity), "--drain-timeout", "3s",
			"--public-ip", "127.0.0.1", "--ice-udp-port", strconv.Itoa(ports[udp]), "--ice-tcp-port", "0")
		ready(t, p, "http://"+addr(internal)+"/readyz", 30*time.Second)
		return node{id: id, proc: p, public: public}
	}
	top := &topology{cluster: c, temporal: temporal, client: apiClient{t: t}}
	for i, capacity := range capacities {
		top.nodes = append(top.nodes, startNode(fmt.Sprintf("topo-%c", 'a'+i), capacity, 1+3*i, 2+3*i, 3+3*i))
	}
	next := 7
	for i := range nWorkers {
		port := next + i
		w := c.startWith(composeRuntimeEnv(t, "worker"), fmt.Sprintf("worker-%d", i), prod, "worker", "--listen", addr(port), "--media-registry")
		ready(t, w, "http://"+addr(port)+"/readyz", 30*time.Second)
		top.workers = append(top.workers, w)
	}
	next += nWorkers
	for i := range nAPI {
		port := [2]int{next + 2*i, next + 2*i + 1}
		a := c.startWith(composeRuntimeEnv(t, "api"), fmt.Sprintf("api-%d", i), prod, "api", "--listen", addr(port[0]), "--internal-listen", addr(port[1]), "--media-registry",
			"--checkin-rate", "10000", "--login-rate", "100")
		ready(t, a, "http://"+addr(port[1])+"/readyz", 30*time.Second)
		top.apis = append(top.apis, a)
		top.client.urls = append(top.client.urls, "http://"+addr(port[0]))
	}
	top.db, err = store.Open(context.Background(), appDSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = top.db.Close() })
	return top
}

// composeRuntimeEnv is the Go runtime's settings (GOMAXPROCS, GODEBUG, GOGC,
// GOMEMLIMIT) docker-compose.yml gives service, so the topology runs its
// processes as a deployment does.
func composeRuntimeEnv(t testing.TB, service string) []string {
	raw, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	var env []string
	for _, k := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := compose.Services[service].Environment[k]; ok {
			env = append(env, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return env
}

// The production topology as separate processes: a Temporal server on
// PostgreSQL, PostgreSQL, two api, two worker and two media processes of
// the production build. Check-in, admit, a transfer whose receiving call
// is on another node, one on the same node, a drain of a media node under
// two live calls, and the kill of one api and one worker: every visit ends
// where it should, in one room, with its audit rows.
func TestTheProductionTopology(t *testing.T) {
	top := startTopology(t, 2, 2, []int{4, 100})
	client, apis, workers, temporal, db := top.client, top.apis, top.workers, top.temporal, top.db
	nodeA, nodeB := top.nodes[0], top.nodes[1]
	// The api and worker processes run with the runtime settings the
	// compose file gives them (one scheduler thread each, sysmon kept from
	// deep sleep).
	for _, p := range append(slices.Clone(apis), workers...) {
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
		require.NoError(t, err)
		require.Contains(t, strings.Split(string(environ), "\x00"), "GOMAXPROCS=1", p.name)
		require.Contains(t, strings.Split(string(environ), "\x00"), "GODEBUG=schedtrace=3600000", p.name)
	}
	q := db.With(context.Background())
	callNode := func(callID string) string {
		call, err := q.Calls.Get(callID)
		require.NoError(t, err)
		return call.MediaNode
	}
	// load waits until the registry shows node id with n participants.
	load := func(id string, n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			row, err := q.MediaNodes.Get(id)
			return err == nil && row.Participants == n
		}, 10*time.Second, 100*time.Millisecond, "%s carrying %d", id, n)
	}
	var patelRoom, leeRoom store.Room
	require.NoError(t, db.Gorm().Take(&patelRoom, "slug = ?", "dr-patel").Error)
	require.NoError(t, db.Gorm().Take(&leeRoom, "slug = ?", "dr-lee").Error)

	leeTok, patelTok := client.login(0, "dr.lee@riverside.example"), client.login(1, "dr.patel@riverside.example")

	// 1. Pat checks in (api 1) and waits on node A, both nodes idle; then
	// Quinn, on B (A now carries a quarter of its capacity).
	patVisit, patTok := client.checkIn(1, "dr-lee", "Pat Topology")
	s := client.session(0, patTok, "")
	require.Equal(t, nodeA.public, s.str("url"))
	pat := dialSession(t, s, 'P')
	load("topo-a", 1)
	quinnVisit, quinnTok := client.checkIn(0, "dr-patel", "Quinn Topology")
	s = client.session(1, quinnTok, "")
	require.Equal(t, nodeB.public, s.str("url"))
	quinnB := dialSession(t, s, 'q')
	load("topo-b", 1)

	// 2. Dr. Patel admits Quinn (api 1): the call goes on the least loaded
	// node, B, where Quinn's session already is.
	ad := client.ok(1, "POST", "/visits/"+quinnVisit+"/admit", patelTok, nil)
	patelCall := ad.str("call", "id")
	require.Equal(t, "topo-b", callNode(patelCall))
	patel := dialSession(t, reply{body: ad.body["media"].(map[string]any)}, 'T')
	s = client.session(0, quinnTok, patelCall)
	require.Equal(t, nodeB.public, s.str("url"))
	quinnB.Join(s.str("joinToken"))
	patel.ReceivesFrom(t, quinnB)
	quinnB.ReceivesFrom(t, patel)

	// A transfer whose receiving call is on another node: Dr. Lee sends
	// Pat from the waiting room to Dr. Patel, who brings Pat into the call
	// on B; Pat's page opens a session on B, then closes the one on A.
	client.ok(0, "POST", "/visits/"+patVisit+"/transfer", leeTok, map[string]string{"targetRoomId": patelRoom.ID})
	client.ok(1, "POST", "/visits/"+patVisit+"/admit", patelTok, map[string]string{"callId": patelCall})
	s = client.session(1, patTok, patelCall)
	require.Equal(t, nodeB.public, s.str("url"), "the receiving call is on the other node")
	patB := dialSession(t, s, 'p')
	patel.ReceivesFrom(t, patB)
	patB.ReceivesFrom(t, patel)
	require.Eventually(t, func() bool { return len(patel.KeyframesFrom('p')) > 0 }, 10*time.Second, 20*time.Millisecond)
	key, seen := patel.FirstVideoWasKeyframe('p')
	require.True(t, seen && key, "Dr. Patel's first video from Pat is a keyframe")
	pat.Close()
	require.Zero(t, pat.Total('T'), "nothing of Dr. Patel's call reached Pat's session on A")

	// 3. A transfer within a node: Dr. Patel sends Quinn (in the call on B)
	// to Dr. Lee, whose new call goes on B too (the clinic's node).
	client.ok(1, "POST", "/visits/"+quinnVisit+"/transfer", patelTok, map[string]string{"targetRoomId": leeRoom.ID})
	time.Sleep(200 * time.Millisecond)
	heard := quinnB.Total('T')
	ad = client.ok(0, "POST", "/visits/"+quinnVisit+"/admit", leeTok, nil)
	leeCall := ad.str("call", "id")
	require.Equal(t, "topo-b", callNode(leeCall), "the clinic's other call is on B")
	lee := dialSession(t, reply{body: ad.body["media"].(map[string]any)}, 'L')
	s = client.session(0, quinnTok, leeCall)
	require.Equal(t, nodeB.public, s.str("url"))
	quinnB.Join(s.str("joinToken")) // the same session: no new one
	lee.ReceivesFrom(t, quinnB)
	quinnB.ReceivesFrom(t, lee)
	require.Equal(t, heard, quinnB.Total('T'), "nothing of Dr. Patel's call reached Quinn after the transfer")

	// 4. Node B drains under both calls: it stops taking calls, keeps them
	// for its 3 s, leaves the registry, tells everyone to move; each
	// rejoins through the API onto A, into the same call.
	require.NoError(t, nodeB.proc.cmd.Process.Signal(syscall.SIGTERM))
	for _, p := range []*mediatest.Peer{patel, patB, lee, quinnB} {
		waitEvent(t, p, "media_moving", 15*time.Second)
	}
	<-nodeB.proc.done
	require.NoError(t, nodeB.proc.err, "the drained node exits cleanly")
	rejoin := func(api int, token, callID string, tag byte) *mediatest.Peer {
		var body any
		if callID != "" {
			body = map[string]string{"callId": callID}
		}
		r := client.ok(api, "POST", "/media/rejoin", token, body)
		require.Equal(t, nodeA.public, r.str("url"), "the call moved to the node still up")
		return dialSession(t, r, tag)
	}
	patel2, pat2 := rejoin(0, patelTok, patelCall, 'U'), rejoin(1, patTok, "", 'V')
	lee2, quinn2 := rejoin(1, leeTok, leeCall, 'W'), rejoin(0, quinnTok, "", 'X')
	patel2.ReceivesFrom(t, pat2)
	pat2.ReceivesFrom(t, patel2)
	lee2.ReceivesFrom(t, quinn2)
	quinn2.ReceivesFrom(t, lee2)
	require.Equal(t, "topo-a", callNode(patelCall))
	require.Equal(t, "topo-a", callNode(leeCall))

	// 5. One api and one worker die (SIGKILL); the others carry on: a
	// check-in, a transfer out of a call and an admit, through api 0.
	for _, p := range []*process{apis[1], workers[1]} {
		require.NoError(t, p.cmd.Process.Kill())
		<-p.done
	}
	rileyVisit, _ := client.checkIn(0, "dr-lee", "Riley Topology")
	client.ok(0, "POST", "/visits/"+patVisit+"/transfer", patelTok, map[string]string{"targetRoomId": leeRoom.ID})
	client.ok(0, "POST", "/visits/"+rileyVisit+"/admit", leeTok, map[string]string{"callId": leeCall})

	// Nothing lost: each visit in exactly the room and state it should be.
	want := map[string]struct {
		room  string
		state store.VisitState
	}{
		quinnVisit: {leeRoom.ID, store.VisitInCall},
		patVisit:   {leeRoom.ID, store.VisitWaiting},
		rileyVisit: {leeRoom.ID, store.VisitInCall},
	}
	for id, w := range want {
		v, err := q.Visits.Get(id)
		require.NoError(t, err)
		require.Equal(t, w.room, v.RoomID, id)
		require.Equal(t, w.state, v.State, id)
	}
	var transfers int64
	require.NoError(t, db.Gorm().Model(&store.AuditEvent{}).Where("action = ?", "transfer.completed").Count(&transfers).Error)
	require.EqualValues(t, 3, transfers, "three transfers, three audit rows")
	for _, p := range []*mediatest.Peer{patel2, lee2, quinn2} {
		p.NoErrors(t)
	}
	require.True(t, nodeA.proc.running() && apis[0].running() && workers[0].running() && temporal.running())
}
