// Package devserver runs a Temporal server and its web UI inside the
// `handoff dev` process, persisting to a SQLite file so visits survive a
// restart. Only `handoff dev` links it; production binaries talk to a real
// cluster.
package devserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence/serialization"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/handoff-telehealth/handoff/workflows"
)

// Options place the embedded server.
type Options struct {
	// DataDir holds temporal.db and temporal.log.
	DataDir string
	// Host is the address everything binds to, e.g. 127.0.0.1.
	Host string
	// Port is the frontend gRPC port clients dial.
	Port int
	// UIPort serves the Temporal UI; 0 disables it.
	UIPort int
	// Namespace is created at start if missing.
	Namespace string
	// CodecEndpoint, when set, is offered to the UI to decode payloads.
	CodecEndpoint string
	// CachedWorkflows is how many workflows' state the history service
	// keeps in memory (0: Temporal's default, 128,000). Beyond it a
	// workflow's state is read from the database when next needed.
	CachedWorkflows int
	// Postgres, when set, is where the server persists instead of
	// DataDir's SQLite file: a Temporal server as a cluster runs it, in a
	// process of its own (`handoff temporal-server`).
	Postgres *Postgres
}

// Server is a running embedded Temporal with its UI.
type Server struct {
	opts     Options
	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}

	forceRefresh func()
	refreshOnce  sync.Once
}

// SearchAttributesRegistered tells the server handoff's search attributes
// are in place. When some were just added, every service keeps re-reading
// them for two of its cache periods (60 s each) so none holds a list from
// before; otherwise the cached list is used from now on.
func (s *Server) SearchAttributesRegistered(added bool) {
	s.refreshOnce.Do(func() {
		if !added {
			s.forceRefresh()
			return
		}
		time.AfterFunc(2*time.Minute, s.forceRefresh)
	})
}

// Address is host:port of the frontend.
func (s *Server) Address() string { return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)) }

// UIURL is the Temporal UI's address, or "" when it is off.
func (s *Server) UIURL() string {
	if s.ui == nil {
		return ""
	}
	return "http://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.UIPort))
}

// Start boots the server and, when asked, the UI. It returns once the
// frontend accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Postgres != nil {
		return startOnPostgres(ctx, opts)
	}
	dbPath := filepath.Join(opts.DataDir, "temporal.db")
	sqlCfg := sqliteConfig(dbPath)
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			_ = os.Remove(dbPath) // a half-made schema would fail every later start
			return nil, fmt.Errorf("creating the Temporal database %s: %w", dbPath, err)
		}
	}
	if err := forgetPreviousMembers(dbPath); err != nil {
		return nil, err
	}
	partitions, err := taskPartitions(dbPath)
	if err != nil {
		return nil, err
	}
	dc, forceRefresh := devConfig(partitions, opts.CachedWorkflows)
	ns, err := sqliteschema.NewNamespaceConfig("active", opts.Namespace, false, workflows.SearchAttributes())
	if err != nil {
		return nil, err
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %q: %w", opts.Namespace, err)
	}
	if err := trimVisibilityIndexes(dbPath, opts.Namespace); err != nil {
		return nil, err
	}

	cfg, err := serverConfig(opts, config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
	})
	if err != nil {
		return nil, err
	}
	// The one-machine server's own metrics went to a port nobody was told
	// of, and recording them was 3.7% of `handoff dev`'s CPU at 50
	// check-ins/s; Handoff's metrics are served by the API (BENCHMARKS.md).
	cfg.Global.Metrics = nil
	return start(ctx, opts, cfg, dc, forceRefresh)
}

// start runs the configured server and, when asked, the UI.
func start(ctx context.Context, opts Options, cfg *config.Config, dc *dynamicconfig.MemoryClient, forceRefresh func()) (*Server, error) {
	logFile := filepath.Join(opts.DataDir, "temporal.log")
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "warn", OutputFile: logFile, Format: "json"}))
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dc),
	)
	if err != nil {
		return nil, fmt.Errorf("configuring the embedded Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting the embedded Temporal server (log: %s): %w", logFile, err)
	}
	s := &Server{opts: opts, temporal: srv, forceRefresh: forceRefresh}
	if err := waitForPort(ctx, s.Address()); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	if opts.UIPort != 0 {
		s.startUI()
		if err := waitForPort(ctx, net.JoinHostPort(opts.Host, strconv.Itoa(opts.UIPort))); err != nil {
			s.Stop()
			return nil, fmt.Errorf("the Temporal UI did not start: %w", err)
		}
	}
	return s, nil
}

func (s *Server) startUI() {
	cfg := &uiconfig.Config{
		Host:                s.opts.Host,
		Port:                s.opts.UIPort,
		TemporalGRPCAddress: s.Address(),
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		HideLogs:            true,
		DisableNewsFetch:    true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		// The browser sends the operator's codec cookie (see /codec/unlock).
		Codec: uiconfig.Codec{Endpoint: s.opts.CodecEndpoint, IncludeCredentials: true},
	}
	s.ui = uiserver.NewServer(server_options.WithConfigProvider(cfg))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()
}

// Stop shuts the UI and the server down.
func (s *Server) Stop() {
	if s.ui != nil {
		s.ui.Stop()
		<-s.uiDone
	}
	_ = s.temporal.Stop()
}

// devConfig tunes the one-machine server. It is a memory client so the
// search-attribute refresh can be switched off once handoff's attributes
// are registered.
func devConfig(readPartitions, cachedWorkflows int) (*dynamicconfig.MemoryClient, func()) {
	c := dynamicconfig.NewMemoryClient()
	if cachedWorkflows > 0 {
		// Each cached workflow's mutable state is kilobytes the server holds
		// for as long as the visit waits; `handoff dev` sizes this cache
		// like its worker's (--workflow-cache), so a waiting visit beyond
		// both costs neither (BENCHMARKS.md, memory per waiting visit).
		c.OverrideSetting(dynamicconfig.HistoryCacheHostLevelMaxSize, cachedWorkflows)
	}
	// The transfer queue, which hands a workflow task to matching after an
	// activity completes, is read at most 20 times a second per shard by
	// default. With the single shard of a dev server every visit shares that
	// budget, and each activity of a transfer waited 30-50 ms for its next
	// workflow task (measured: a 2-activity transfer took 100 ms against a
	// 5 ms bare update). Reading on every notification removes the wait.
	c.OverrideSetting(dynamicconfig.TransferProcessorMaxPollRPS, 10000)
	c.OverrideSetting(dynamicconfig.TransferProcessorMaxPollHostRPS, 10000)
	// One partition per task queue instead of four: one worker polls, and
	// with four a new visit's first workflow task often landed on a
	// partition with no poll waiting, went to the database and waited for
	// a poll (check-ins at 50/s: p99 118 → 45 ms, BENCHMARKS.md). Tasks are
	// written to partition 0 only; the others are still read while a data
	// directory from before holds tasks in them (see taskPartitions).
	c.OverrideSetting(dynamicconfig.MatchingNumTaskqueueWritePartitions, 1)
	c.OverrideSetting(dynamicconfig.MatchingNumTaskqueueReadPartitions, readPartitions)
	// Until handoff's search attributes are known to be registered, every
	// read of them goes to the database, so attributes added at start are
	// usable at once. Left on, that was ten database reads per check-in on
	// the server's one SQLite connection (BENCHMARKS.md).
	forceRefresh := c.OverrideSetting(dynamicconfig.ForceSearchAttributesCacheRefreshOnRead, true)
	return c, forceRefresh
}

// forgetPreviousMembers drops the cluster membership rows of earlier runs.
// Every run picks new internal ports, and the server would otherwise spend
// its first 30-50 s trying to join those dead hosts, holding up every task
// of the visits that survived the restart (measured: the first transfer
// after a restart took 48 s).
func forgetPreviousMembers(dbPath string) error {
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM cluster_membership`); err != nil {
		return fmt.Errorf("clearing stale cluster membership in %s: %w", dbPath, err)
	}
	return nil
}

// unusedVisibilityIndexes are the visibility table's indexes on attributes
// no visit sets and the UI's list does not sort by. Temporal's SQLite schema
// indexes every predefined attribute and every pre-allocated slot for custom
// ones (58 indexes), and each visibility write updated them all and
// prepared a statement that maintains them: a check-in's two visibility
// writes took 5.3 ms with all of them, 2.0 ms without (BENCHMARKS.md). Kept:
// the UI's list (default_idx, execution time, workflow id and type,
// status), schedules (namespace division), and the slots the namespace's
// custom search attributes are mapped to (customSlotIndexes). A query on an
// attribute without an index still answers, by a scan.
var unusedVisibilityIndexes = []string{
	"by_history_length", "by_history_size_bytes", "by_execution_duration", "by_state_transition_count", "by_task_queue",
	"by_parent_workflow_id", "by_parent_run_id", "by_root_workflow_id", "by_root_run_id",
	"by_batcher_user", "by_temporal_scheduled_start_time", "by_temporal_scheduled_by_id", "by_temporal_schedule_paused",
	"by_temporal_pause_info", "by_temporal_worker_deployment_version", "by_temporal_workflow_versioning_behavior",
	"by_temporal_worker_deployment",
	"by_temporal_bool_01", "by_temporal_bool_02", "by_temporal_datetime_01", "by_temporal_datetime_02",
	"by_temporal_double_01", "by_temporal_double_02", "by_temporal_int_01", "by_temporal_int_02",
	"by_temporal_keyword_01", "by_temporal_keyword_02", "by_temporal_keyword_03", "by_temporal_keyword_04",
	"by_temporal_low_cardinality_keyword_01",
}

// customSlotIndexes are the pre-allocated custom attribute columns that
// have an index, by column: by_keyword_01 indexes Keyword01.
func customSlotIndexes() map[string]string {
	slots := map[string]string{}
	for kind, n := range map[string]int{"Bool": 3, "Datetime": 3, "Double": 3, "Int": 3, "Keyword": 10} {
		for i := 1; i <= n; i++ {
			slots[fmt.Sprintf("%s%02d", kind, i)] = fmt.Sprintf("by_%s_%02d", strings.ToLower(kind), i)
		}
	}
	return slots
}

// trimVisibilityIndexes drops unusedVisibilityIndexes and the indexes of
// custom slots no attribute of the namespace is mapped to, and makes sure
// the mapped slots have theirs; at every start, so a data directory from
// before is trimmed too, and a slot mapped since the last start is indexed.
func trimVisibilityIndexes(dbPath, namespace string) error {
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	mapped, err := mappedSlots(db, namespace)
	if err != nil {
		return err
	}
	statements := make([]string, 0, len(unusedVisibilityIndexes)+25)
	for _, name := range unusedVisibilityIndexes {
		statements = append(statements, `DROP INDEX IF EXISTS `+name)
	}
	for column, index := range customSlotIndexes() {
		if mapped[column] {
			// As Temporal's schema defines it.
			statements = append(statements, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON executions_visibility `+
				`(namespace_id, %s, (COALESCE(close_time, '9999-12-31 23:59:59+00:00')) DESC, start_time DESC, run_id)`, index, column))
		} else {
			statements = append(statements, `DROP INDEX IF EXISTS `+index)
		}
	}
	for _, stmt := range statements {
		if _, err := db.Exec(stmt); err != nil {
			return fmt.Errorf("trimming the visibility indexes of %s: %s: %w", dbPath, stmt, err)
		}
	}
	return nil
}

// mappedSlots are the custom attribute columns the namespace's search
// attributes are stored in.
func mappedSlots(db *sql.DB, namespace string) (map[string]bool, error) {
	var data []byte
	var encoding string
	if err := db.QueryRow(`SELECT data, data_encoding FROM namespaces WHERE name = ?`, namespace).Scan(&data, &encoding); err != nil {
		return nil, fmt.Errorf("reading namespace %q: %w", namespace, err)
	}
	encodingType, err := enumspb.EncodingTypeFromString(encoding)
	if err != nil {
		return nil, fmt.Errorf("reading namespace %q: %w", namespace, err)
	}
	detail, err := serialization.NewSerializer().NamespaceDetailFromBlob(&commonpb.DataBlob{Data: data, EncodingType: encodingType})
	if err != nil {
		return nil, fmt.Errorf("reading namespace %q: %w", namespace, err)
	}
	mapped := map[string]bool{}
	for column := range detail.GetConfig().GetCustomSearchAttributeAliases() {
		mapped[column] = true
	}
	return mapped, nil
}

// taskPartitions is how many partitions of each task queue to read: 1,
// unless tasks of an earlier run wait in the other partitions, written
// when every queue had four. Those are read until they are gone, so no
// visit's task is stranded.
func taskPartitions(dbPath string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	// A partition other than the first is named /_sys/<queue>/<n>.
	err = db.QueryRow(`SELECT (SELECT COUNT(*) FROM tasks WHERE instr(task_queue_id, CAST('/_sys/' AS BLOB)) > 0)
		+ (SELECT COUNT(*) FROM tasks_v2 WHERE instr(task_queue_id, CAST('/_sys/' AS BLOB)) > 0)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("looking for tasks in %s: %w", dbPath, err)
	}
	if n > 0 {
		return 4, nil
	}
	return 1, nil
}

func serverConfig(opts Options, persistence config.Persistence) (*config.Config, error) {
	// The frontend gets the asked-for port; history, matching and the
	// internal worker, and every membership port, take free ones.
	ports, err := FreePorts(opts.Host, 9)
	if err != nil {
		return nil, err
	}
	service := func(grpc, membership int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpc, MembershipPort: membership, BindOnIP: opts.Host}}
	}
	frontend := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: opts.Host},
			Metrics: &metrics.Config{Prometheus: &metrics.PrometheusConfig{
				ListenAddress: net.JoinHostPort(opts.Host, strconv.Itoa(ports[0])), HandlerPath: "/metrics",
			}},
		},
		Persistence: persistence,
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": service(opts.Port, ports[1]),
			"history":  service(ports[2], ports[3]),
			"matching": service(ports[4], ports[5]),
			"worker":   service(ports[6], ports[7]),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}, nil
}

// FreePorts finds n distinct ports free on host right now. They are drawn
// below Linux's ephemeral range (32768-60999), from which the kernel picks
// both ":0" listeners and the local ports of outgoing connections: a port
// handed out from there could be taken by a connection before the server
// bound it, and Temporal's services exit the process when a bind fails
// (seen in CI: "bind: address already in use" for the frontend). A cursor
// walks the range from a random start, so one process never hands out the
// same port twice (it did when ports were drawn at random: a test's second
// server got a port the first was about to bind).
func FreePorts(host string, n int) ([]int, error) {
	portCursor.Lock()
	defer portCursor.Unlock()
	if portCursor.next == 0 {
		portCursor.next = lowPortStart + rand.IntN(lowPortEnd-lowPortStart)
	}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == lowPortEnd-lowPortStart {
			return nil, fmt.Errorf("no free port on %s between %d and %d", host, lowPortStart, lowPortEnd)
		}
		port := portCursor.next
		portCursor.next++
		if portCursor.next == lowPortEnd {
			portCursor.next = lowPortStart
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		_ = l.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

const lowPortStart, lowPortEnd = 20000, 32768

// portCursor is the next port FreePorts tries.
var portCursor struct {
	sync.Mutex
	next int
}

func waitForPort(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing answers on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sqliteConfig is the server's SQLite database at path.
func sqliteConfig(path string) *config.SQL {
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: path,
		// Keys are pragma names as the plugin passes them on: it turns each
		// into _pragma=key=value, so "_journal_mode" was an unknown pragma
		// SQLite ignored, leaving the rollback journal and an fsync per
		// commit (found by profiling the transfer ceiling: BENCHMARKS.md).
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
			"busy_timeout": "10000",
			// Statement journals in small in-memory chunks, not a 64 KiB
			// chunk mapped and unmapped per statement (store.Open says more).
			"temp_store": "memory",
		},
	}
}
