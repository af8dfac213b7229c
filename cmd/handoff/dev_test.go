package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/devserver"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/temporalclient"
	"github.com/handoff-telehealth/handoff/workflows"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "handoff-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "handoff")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic("building handoff: " + err.Error())
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// devProcess is `handoff dev` running as a real process.
type devProcess struct {
	cmd                               *exec.Cmd
	apiPort, mediaPort, tPort, uiPort int
	internalPort                      int
	mu                                sync.Mutex
	stdout, stderr                    strings.Builder
	exited                            chan error
}

func freePorts(t *testing.T, n int) []int {
	ports, err := devserver.FreePorts("127.0.0.1", n)
	require.NoError(t, err)
	return ports
}

// startDev runs `handoff dev` on free ports, passed through HANDOFF_*
// variables so that the environment path of the settings is exercised.
func startDev(t *testing.T, dataDir string, extraArgs ...string) *devProcess {
	t.Helper()
	p := freePorts(t, 5)
	d := &devProcess{apiPort: p[0], mediaPort: p[1], tPort: p[2], uiPort: p[3], internalPort: p[4], exited: make(chan error, 1)}
	d.cmd = exec.Command(binary, append([]string{"dev", "--data-dir", dataDir}, extraArgs...)...)
	d.cmd.Env = append(os.Environ(),
		"HANDOFF_API_PORT="+strconv.Itoa(d.apiPort),
		"HANDOFF_MEDIA_PORT="+strconv.Itoa(d.mediaPort),
		"HANDOFF_TEMPORAL_PORT="+strconv.Itoa(d.tPort),
		"HANDOFF_UI_PORT="+strconv.Itoa(d.uiPort),
		"HANDOFF_INTERNAL_PORT="+strconv.Itoa(d.internalPort),
	)
	stdout, err := d.cmd.StdoutPipe()
	require.NoError(t, err)
	d.cmd.Stderr = writerFunc(func(b []byte) { d.mu.Lock(); d.stderr.Write(b); d.mu.Unlock() })
	require.NoError(t, d.cmd.Start())
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			d.mu.Lock()
			d.stdout.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
				close(ready)
				signalled = true
			}
		}
		d.exited <- d.cmd.Wait()
	}()
	t.Cleanup(func() { _ = d.cmd.Process.Kill() })
	select {
	case <-ready:
	case err := <-d.exited:
		t.Fatalf("handoff dev exited before it was ready (%v):\n%s\n%s", err, d.out(), d.errOut())
	case <-time.After(2 * time.Minute):
		t.Fatalf("handoff dev not ready after 2 minutes:\n%s\n%s", d.out(), d.errOut())
	}
	return d
}

func (d *devProcess) out() string    { d.mu.Lock(); defer d.mu.Unlock(); return d.stdout.String() }
func (d *devProcess) errOut() string { d.mu.Lock(); defer d.mu.Unlock(); return d.stderr.String() }
func (d *devProcess) url(port int, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
}

// stop sends Ctrl-C and expects a clean exit.
func (d *devProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-d.exited:
		require.NoError(t, err, "exit status after Ctrl-C; stderr:\n%s", d.errOut())
	case <-time.After(30 * time.Second):
		t.Fatal("handoff dev did not stop within 30s of Ctrl-C")
	}
	require.Contains(t, d.out(), "Handoff stopped.")
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func countRows(t *testing.T, dsn string) map[string]int64 {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	require.NoError(t, err)
	defer db.Close()
	counts := map[string]int64{}
	for _, table := range []string{"clinics", "users", "rooms", "room_members"} {
		var n int64
		require.NoError(t, db.Gorm().Table(table).Count(&n).Error)
		counts[table] = n
	}
	return counts
}

var demoCounts = map[string]int64{"clinics": 3, "users": 7, "rooms": 8, "room_members": 3}

func TestDevRunsTheWholeServiceAndKeepsItsData(t *testing.T) {
	dataDir := t.TempDir()
	d := startDev(t, dataDir)

	out := d.out()
	for _, want := range []string{
		d.url(d.apiPort, "/"), d.url(d.apiPort, "/api/v1"), d.url(d.uiPort, ""),
		fmt.Sprintf("127.0.0.1:%d", d.tPort), d.url(d.mediaPort, ""),
		"dr.lee@riverside.example", "frontdesk@riverside.example", "dr.cho@hillside.example", "handoff-demo",
	} {
		require.Contains(t, out, want, "the banner lists it")
	}

	code, body := get(t, d.url(d.apiPort, "/healthz"))
	require.Equal(t, http.StatusOK, code, body)
	code, body = get(t, d.url(d.apiPort, "/readyz"))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"temporal":"ok"`)
	code, _ = get(t, d.url(d.mediaPort, "/healthz"))
	require.Equal(t, http.StatusOK, code)
	code, body = get(t, d.url(d.apiPort, "/"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "Handoff")

	code, body = get(t, d.url(d.uiPort, "/"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "/_app/immutable/", "the Temporal UI's page")
	code, body = get(t, d.url(d.uiPort, "/api/v1/namespaces"))
	require.Equal(t, http.StatusOK, code, "the UI reaches the embedded server")
	require.Contains(t, body, `"name": "default"`)
	require.Contains(t, body, `"HandoffVisitState"`)
	code, body = get(t, d.url(d.uiPort, "/api/v1/settings"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, d.url(d.apiPort, "/codec"), "the UI is pointed at Handoff's codec server")

	ctx := context.Background()
	c, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", d.tPort), Namespace: "default"})
	require.NoError(t, err)
	ns, err := c.WorkflowService().ListNamespaces(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, n := range ns.GetNamespaces() {
		names = append(names, n.GetNamespaceInfo().GetName())
	}
	require.Contains(t, names, "default")
	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	require.NoError(t, err)
	for name, typ := range workflows.SearchAttributes() {
		require.Equal(t, typ, sas.GetCustomAttributes()[name], name)
	}
	require.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sas.GetCustomAttributes()["HandoffVisitState"])

	// A workflow started now must still be there after a restart: Temporal
	// persists to the data directory. Nothing polls this type, so it waits.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "persistence-check", TaskQueue: "nobody-polls"}, "NoSuchWorkflow")
	require.NoError(t, err)
	c.Close()

	// The worker runs in the dev process: a visit checks in and is
	// transferred, through Temporal, into the SQLite app database.
	keys, err := os.ReadFile(filepath.Join(dataDir, "codec.keys"))
	require.NoError(t, err)
	keyring, err := codec.ParseKeys(strings.TrimSpace(string(keys)))
	require.NoError(t, err)
	vc, err := client.Dial(temporalclient.Options(config.Temporal{Address: fmt.Sprintf("127.0.0.1:%d", d.tPort), Namespace: "default"}, keyring, slog.Default()))
	require.NoError(t, err)
	appDSN := "sqlite:" + filepath.Join(dataDir, "handoff.db")
	demo, err := store.Open(ctx, appDSN)
	require.NoError(t, err)
	// Both SQLite files run with a write-ahead log (one fsync per checkpoint,
	// not per commit): the journal mode is kept in the file.
	for _, file := range []string{"handoff.db", "temporal.db"} {
		_, err := os.Stat(filepath.Join(dataDir, file+"-wal"))
		require.NoError(t, err, "%s has a write-ahead log", file)
	}
	var leeRoom, patelRoom store.Room
	var lee store.User
	require.NoError(t, demo.Gorm().Take(&leeRoom, "slug = ?", "dr-lee").Error)
	require.NoError(t, demo.Gorm().Take(&patelRoom, "slug = ?", "dr-patel").Error)
	require.NoError(t, demo.Gorm().Take(&lee, "email = ?", "dr.lee@riverside.example").Error)
	require.NoError(t, demo.Close())
	visitID := uuid.NewString()
	err = workflows.CheckIn(ctx, vc, workflows.VisitInput{VisitID: visitID, ClinicID: leeRoom.ClinicID, RoomID: leeRoom.ID,
		PatientName: "Pat Dev", TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC()}, workflows.AskVisit(vc, visitID))
	require.NoError(t, err)
	res, err := workflows.Transfer(ctx, vc, visitID, uuid.NewString(), workflows.TransferRequest{ActorID: lee.ID, TargetRoomID: patelRoom.ID})
	require.NoError(t, err)
	require.Equal(t, "Transferred to Dr. Arjun Patel", res.SenderMessage)
	vc.Close()

	// /metrics, on the internal port only, counts the transfer, by
	// outcome, with no patient data.
	code, _ = get(t, d.url(d.apiPort, "/metrics"))
	require.Equal(t, http.StatusNotFound, code, "no metrics where browsers reach")
	code, _ = get(t, d.url(d.mediaPort, "/metrics"))
	require.Equal(t, http.StatusNotFound, code, "no metrics on the media node's public port")
	code, body = get(t, d.url(d.internalPort, "/metrics"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `handoff_transfers_total{outcome="completed"} 1`)
	require.Contains(t, body, `handoff_waiting_visits{clinic_id="`+leeRoom.ClinicID+`"} 1`)
	require.Contains(t, body, `handoff_http_request_duration_seconds_bucket{method="GET",route="/readyz"`)
	require.Contains(t, body, `temporal_local_activity_execution_latency_seconds_bucket`, "the Temporal SDK's own metrics")
	require.Contains(t, body, `activity_type="RetargetRoom"`)
	require.NotContains(t, body, "Pat Dev")
	code, body = get(t, d.url(d.internalPort, "/media/metrics"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "handoff_media_active_calls")

	// The codec server decodes for the holder of the token only.
	token, err := os.ReadFile(filepath.Join(dataDir, "codec.token"))
	require.NoError(t, err)
	decode := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, d.url(d.apiPort, "/codec/decode"), strings.NewReader(`{"payloads":[]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, decode("guess"))
	require.Equal(t, http.StatusOK, decode(strings.TrimSpace(string(token))))

	d.stop(t)
	require.Equal(t, demoCounts, countRows(t, appDSN))
	db, err := store.Open(ctx, appDSN)
	require.NoError(t, err)
	// The patient's name is sealed at rest with the key dev keeps beside
	// its data, in a file only its owner reads.
	var rawName string
	require.NoError(t, db.Gorm().Raw("SELECT patient_name FROM visits WHERE id = ?", visitID).Scan(&rawName).Error)
	require.True(t, strings.HasPrefix(rawName, "hx1:dev1:"), rawName)
	keyFile := filepath.Join(dataDir, "data.keys")
	info, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	devKeys, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	devCodec, err := codec.ParseKeys(strings.TrimSpace(string(devKeys)))
	require.NoError(t, err)
	store.UseDataKeys(devCodec)
	var v store.Visit
	require.NoError(t, db.Gorm().Take(&v, "id = ?", visitID).Error)
	require.Equal(t, patelRoom.ID, v.RoomID)
	require.Equal(t, "Pat Dev", v.PatientName.String())
	testKeys, _ := codec.ParseKeys(testdb.DataKeys)
	store.UseDataKeys(testKeys)
	require.NoError(t, db.Close())

	// No patient name in anything the process wrote: its logs, Temporal's log.
	temporalLog, err := os.ReadFile(filepath.Join(dataDir, "temporal.log"))
	require.NoError(t, err)
	for _, out := range []string{d.out(), d.errOut(), string(temporalLog)} {
		require.NotContains(t, out, "Pat Dev")
	}

	d = startDev(t, dataDir)
	c, err = client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", d.tPort), Namespace: "default"})
	require.NoError(t, err)
	desc, err := c.DescribeWorkflowExecution(ctx, "persistence-check", run.GetRunID())
	require.NoError(t, err, "the workflow survived the restart")
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	c.Close()
	// The waiting visit is still there after the restart, and still works.
	vc, err = client.Dial(temporalclient.Options(config.Temporal{Address: fmt.Sprintf("127.0.0.1:%d", d.tPort), Namespace: "default"}, keyring, slog.Default()))
	require.NoError(t, err)
	// Stale cluster membership once held every task of a restarted server
	// for 30-50 s; the visit must answer promptly now.
	restarted := time.Now()
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, err := workflows.Status(qctx, vc, visitID)
	cancel()
	require.NoError(t, err, "the visit answers after the restart")
	t.Logf("first query after the restart answered in %s", time.Since(restarted).Round(time.Millisecond))
	require.Equal(t, patelRoom.ID, st.RoomID)
	require.Equal(t, store.VisitWaiting, st.State)
	_, err = workflows.Transfer(ctx, vc, visitID, uuid.NewString(), workflows.TransferRequest{ActorID: lee.ID, TargetRoomID: leeRoom.ID})
	require.Error(t, err, "Dr. Lee no longer has access to the patient's room")
	vc.Close()
	d.stop(t)
	require.Equal(t, demoCounts, countRows(t, appDSN), "demo data is not duplicated by a restart")
}

func TestDevUsesPostgresWhenGivenADSN(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	d := startDev(t, t.TempDir(), "--db", dsn)
	require.Contains(t, d.out(), "App database")
	code, body := get(t, d.url(d.apiPort, "/readyz"))
	require.Equal(t, http.StatusOK, code, body)
	d.stop(t)
	require.Equal(t, demoCounts, countRows(t, dsn))
}

// runHandoff runs the binary to completion.
func runHandoff(t *testing.T, env []string, args ...string) (exitCode int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return exitErr.ExitCode(), out.String(), errOut.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errOut.String()
}

func TestDevRefusesBadConfiguration(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenPort := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	p := freePorts(t, 5)
	ports := []string{"HANDOFF_API_PORT=" + strconv.Itoa(p[0]), "HANDOFF_MEDIA_PORT=" + strconv.Itoa(p[1]),
		"HANDOFF_TEMPORAL_PORT=" + strconv.Itoa(p[2]), "HANDOFF_UI_PORT=" + strconv.Itoa(p[3]), "HANDOFF_INTERNAL_PORT=" + strconv.Itoa(p[4])}
	notADir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notADir, []byte("x"), 0o600))

	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"api port in use", nil, []string{"--api-port", takenPort}, []string{"127.0.0.1:" + takenPort, "--api-port"}},
		{"temporal port in use", nil, []string{"--temporal-port", takenPort}, []string{"127.0.0.1:" + takenPort, "--temporal-port"}},
		{"ui port in use (from the environment)", []string{"HANDOFF_UI_PORT=" + takenPort}, nil, []string{"127.0.0.1:" + takenPort, "HANDOFF_UI_PORT"}},
		{"data dir cannot be created", nil, []string{"--data-dir", filepath.Join(notADir, "data")}, []string{"data directory", "cannot be created"}},
		{"unknown database kind", nil, []string{"--db", "mysql://root@127.0.0.1/handoff"}, []string{"neither postgres"}},
		{"database not answering", nil, []string{"--db", "postgres://handoff:secret@127.0.0.1:1/handoff?sslmode=disable"}, []string{"cannot connect to postgres database", "127.0.0.1:1"}},
		{"bad port value", []string{"HANDOFF_API_PORT=eighty"}, nil, []string{"HANDOFF_API_PORT"}},
		{"no check-ins allowed", nil, []string{"--checkin-rate", "0"}, []string{"--checkin-rate must be positive"}},
		{"mail with an unknown TLS mode", nil, []string{"--smtp-host", "127.0.0.1", "--smtp-tls", "ssl"}, []string{"--smtp-*", "SMTP TLS must be"}},
		{"a trusted proxy that is no address", nil, []string{"--trusted-proxies", "10.0.0.0/8,proxy.example"}, []string{"--trusted-proxies", "proxy.example"}},
		{"no workflow cache", nil, []string{"--workflow-cache", "0"}, []string{"--workflow-cache must be at least 1"}},
		{"external media node without its secrets", nil, []string{"--media-url", "http://127.0.0.1:9"}, []string{"--media-url needs", "HANDOFF_MEDIA_CONTROL_TOKEN"}},
		{"external media node not an http URL", []string{"HANDOFF_MEDIA_SECRET=s", "HANDOFF_MEDIA_CONTROL_TOKEN=t"}, []string{"--media-url", "ws://127.0.0.1:9/ws"}, []string{"--media-url", "not an http(s) URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"dev", "--data-dir", t.TempDir()}, tc.args...)
			code, _, stderr := runHandoff(t, append(ports, tc.env...), args...)
			require.NotZero(t, code)
			for _, w := range tc.want {
				require.Contains(t, stderr, w)
			}
			require.NotContains(t, stderr, "handoff:secret", "passwords are never printed")
			require.NotContains(t, stderr, "panic")
		})
	}
	if os.Geteuid() != 0 { // root writes anywhere; the read-only case needs a normal user
		t.Run("data dir read-only", func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.Chmod(dir, 0o500))
			code, _, stderr := runHandoff(t, ports, "dev", "--data-dir", dir)
			require.NotZero(t, code)
			require.Contains(t, stderr, "not writable")
		})
	}
}

func TestHelpNamesEverySetting(t *testing.T) {
	code, out, _ := runHandoff(t, nil, "--help")
	require.Zero(t, code)
	for _, c := range commands {
		require.Contains(t, out, c.name)
	}
	code, out, _ = runHandoff(t, nil, "dev", "--help")
	require.Zero(t, code)
	for _, s := range []string{"--data-dir", "HANDOFF_DATA_DIR", "HANDOFF_API_PORT", "HANDOFF_TEMPORAL_PORT", "HANDOFF_UI_PORT", "HANDOFF_DB"} {
		require.Contains(t, out, s)
	}
	code, out, _ = runHandoff(t, nil, "api", "--help")
	require.Zero(t, code)
	require.Contains(t, out, "HANDOFF_TEMPORAL_ADDRESS")
	code, _, stderr := runHandoff(t, nil, "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown command "frobnicate"`)
}

// The production build must not carry the Temporal server or its UI.
func TestProductionBuildDoesNotLinkTheTemporalServer(t *testing.T) {
	deps := func(tags ...string) string {
		args := append([]string{"list", "-deps"}, tags...)
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	dev := deps()
	require.Contains(t, dev, "go.temporal.io/server/temporal", "the dev build embeds the server")
	prod := deps("-tags", "production")
	require.NotContains(t, prod, "go.temporal.io/server")
	require.NotContains(t, prod, "github.com/temporalio/ui-server")
	require.Contains(t, prod, "go.temporal.io/sdk/client")
}
