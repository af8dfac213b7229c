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
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
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
}

// Server is a running embedded Temporal with its UI.
type Server struct {
	opts     Options
	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}
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
	dbPath := filepath.Join(opts.DataDir, "temporal.db")
	sqlCfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		// Keys are pragma names as the plugin passes them on: it turns each
		// into _pragma=key=value, so "_journal_mode" was an unknown pragma
		// SQLite ignored, leaving the rollback journal and an fsync per
		// commit (found by profiling the transfer ceiling: BENCHMARKS.md).
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
			"busy_timeout": "10000",
		},
	}
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			_ = os.Remove(dbPath) // a half-made schema would fail every later start
			return nil, fmt.Errorf("creating the Temporal database %s: %w", dbPath, err)
		}
	}
	if err := forgetPreviousMembers(dbPath); err != nil {
		return nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", opts.Namespace, false, workflows.SearchAttributes())
	if err != nil {
		return nil, err
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %q: %w", opts.Namespace, err)
	}

	cfg, err := serverConfig(opts, sqlCfg)
	if err != nil {
		return nil, err
	}
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
		temporal.WithDynamicConfigClient(dynamicConfig),
	)
	if err != nil {
		return nil, fmt.Errorf("configuring the embedded Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting the embedded Temporal server (log: %s): %w", logFile, err)
	}
	s := &Server{opts: opts, temporal: srv}
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

// dynamicConfig tunes the one-machine server.
var dynamicConfig = dynamicconfig.StaticClient{
	// Search attributes registered while running are usable at once.
	dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
	// The transfer queue, which hands a workflow task to matching after an
	// activity completes, is read at most 20 times a second per shard by
	// default. With the single shard of a dev server every visit shares that
	// budget, and each activity of a transfer waited 30-50 ms for its next
	// workflow task (measured: a 2-activity transfer took 100 ms against a
	// 5 ms bare update). Reading on every notification removes the wait.
	dynamicconfig.TransferProcessorMaxPollRPS.Key():     10000,
	dynamicconfig.TransferProcessorMaxPollHostRPS.Key(): 10000,
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

func serverConfig(opts Options, sqlCfg *config.SQL) (*config.Config, error) {
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
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
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

// FreePorts finds n distinct ports free on host right now.
func FreePorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("finding a free port on %s: %w", host, err)
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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
