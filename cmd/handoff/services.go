package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/httpx"
	"github.com/handoff-telehealth/handoff/mailer"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/medianodes"
	"github.com/handoff-telehealth/handoff/store"
)

const (
	apiSummary           = "serve the REST API and the web pages (needs Temporal and PostgreSQL)"
	workerSummary        = "run the Temporal worker: visit workflows and transfer activities"
	mediaSummary         = "run a media node (the pion SFU) with its control API"
	migrateSummary       = "apply the app database's migrations and exit"
	temporalSetupSummary = "register Handoff's search attributes on a Temporal namespace and exit"
	productionDBDefault  = "postgres://handoff@127.0.0.1:5432/handoff?sslmode=disable"
)

func runAPI(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("api", apiSummary, stdout)
	opts := backendOptions{schema: schemaRequired, patientData: true, metrics: true, watchWaiting: true}
	opts.registerDatabase(fs)
	opts.registerTemporal(fs)
	listen := fs.String("listen", "0.0.0.0:8080", "address the API and web pages listen on")
	internalListen := fs.String("internal-listen", "0.0.0.0:8090", "address of /metrics, /healthz and /readyz for the cluster only (do not publish it)")
	var tlsFiles httpx.TLSFiles
	registerTLS(fs, &tlsFiles)
	codecToken := fs.String("codec-token", "", "token an operator gives the Temporal UI to decode payloads at /codec; empty turns the codec server off")
	codecOrigins := fs.String("codec-origins", "", "comma-separated Temporal UI origins allowed to call /codec from a browser")
	var sess apiSettings
	sess.register(fs, false)
	var retain store.Retention
	registerRetention(fs, &retain)
	fs.StringVar(&opts.mediaSecret, "media-secret", "", "secret that signs media tokens; the media node needs the same")
	mediaURL := fs.String("media-public-url", "ws://127.0.0.1:8081/ws", "signaling WebSocket URL given to browsers (one media node; see --media-registry)")
	opts.registerMediaRegistry(fs)
	var ice iceServerSettings
	ice.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := sess.check(); err != nil {
		return err
	}
	if err := checkRetention(retain); err != nil {
		return err
	}
	if err := checkMediaSecret(opts.mediaSecret); err != nil {
		return err
	}
	if err := config.CheckSecrets(map[string]string{"--codec-token": *codecToken, "--turn-secret": ice.secret}); err != nil {
		return err
	}
	tlsConf, err := tlsConfig(tlsFiles)
	if err != nil {
		return err
	}
	if tlsConf != nil && strings.HasPrefix(*mediaURL, "ws://") {
		return errors.New("--media-public-url must be wss:// when the API serves HTTPS: browsers refuse plain WebSockets from an HTTPS page")
	}
	iceServers, err := ice.servers()
	if err != nil {
		return err
	}
	l, err := httpx.Listen(*listen, "--listen / "+config.EnvName("listen"))
	if err != nil {
		return err
	}
	defer l.Close()
	internalL, err := httpx.Listen(*internalListen, "--internal-listen / "+config.EnvName("internal-listen"))
	if err != nil {
		return err
	}
	defer internalL.Close()
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	deps := b.apiDeps(sess)
	deps.MediaURL, deps.ICEServers = *mediaURL, iceServers
	if *codecToken != "" {
		deps.CodecServer = b.codec.CodecServer(*codecToken, splitList(*codecOrigins), api.AuditDecodes(b.db, logger))
	}
	logger.Info("api listening", "addr", l.Addr().String(), "internal", internalL.Addr().String())
	return runAll(ctx,
		func(ctx context.Context) error { return httpx.ServeTLS(ctx, l, api.NewRouter(deps), tlsConf) },
		func(ctx context.Context) error { return httpx.Serve(ctx, internalL, api.NewInternalRouter(deps)) },
		b.db.ListenForEvents,
		purgeEvery(time.Hour, b.db, retain, logger),
	)
}

func runWorker(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("worker", workerSummary, stdout)
	opts := backendOptions{schema: schemaRequired, patientData: true, metrics: true}
	opts.registerDatabase(fs)
	opts.registerTemporal(fs)
	fs.StringVar(&opts.mediaControlURL, "media-url", "http://127.0.0.1:8083", "the media node's control API (its --internal-listen)")
	fs.StringVar(&opts.mediaControlToken, "media-control-token", "", "service token of the media node's control API")
	opts.registerMediaRegistry(fs)
	listen := fs.String("listen", "0.0.0.0:8082", "address of the worker's /healthz, /readyz and /metrics")
	cache := registerWorkflowCache(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkWorkflowCache(*cache); err != nil {
		return err
	}
	if opts.mediaControlToken == "" {
		return errors.New("set --media-control-token / HANDOFF_MEDIA_CONTROL_TOKEN to the media node's control token")
	}
	if err := config.CheckSecret("--media-control-token", opts.mediaControlToken); err != nil {
		return err
	}
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	l, err := httpx.Listen(*listen, "--listen / "+config.EnvName("listen"))
	if err != nil {
		return err
	}
	health := http.NewServeMux()
	health.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	health.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := b.temporal.CheckHealth(r.Context(), &client.CheckHealthRequest{}); err != nil || b.db.Ping(r.Context()) != nil {
			http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	health.Handle("GET /metrics", b.metrics.Handler())
	return runAll(ctx,
		func(ctx context.Context) error { return httpx.Serve(ctx, l, health) },
		func(ctx context.Context) error { return b.runWorker(ctx, *cache) },
	)
}

func runMedia(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("media", mediaSummary, stdout)
	listen := fs.String("listen", "0.0.0.0:8081", "address of the media node's signaling WebSocket (browsers reach it)")
	internalListen := fs.String("internal-listen", "0.0.0.0:8083", "address of the control API (workers) and /metrics, for the cluster only (do not publish it)")
	secret := fs.String("media-secret", "", "secret that signs media tokens; the API needs the same")
	controlToken := fs.String("media-control-token", "", "service token the workers present to the control API")
	var tlsFiles httpx.TLSFiles
	registerTLS(fs, &tlsFiles)
	var netw nodeNetwork
	netw.register(fs, nodeDefaults{udp: 7882, tcp: 7881, turn: 3478})
	// The registry: with --db the node registers itself in the app database
	// and heartbeats, for placement across several nodes.
	dsn := fs.String("db", "", "app database to register this node in (postgres://…; empty: a single node, not registered)")
	nodeID := fs.String("node-id", "", "this node's name in the registry (default: the host name)")
	publicURL := fs.String("public-url", "", "with --db: the signaling WebSocket pages reach this node at (wss://…/ws)")
	controlURL := fs.String("control-url", "", "with --db: the control API the workers reach this node at (http://…:8083)")
	capacity := fs.Int("capacity", 500, "with --db: the participants this node takes before placement sends new calls elsewhere")
	drainTimeout := fs.Duration("drain-timeout", time.Minute, "with --db: on SIGTERM, how long calls may go on here (no new ones come) before their participants are moved to another node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn != "" && (*publicURL == "" || *controlURL == "" || *capacity <= 0) {
		return errors.New("--db (the node registry) needs --public-url, --control-url and a positive --capacity")
	}
	if *secret == "" || *controlToken == "" {
		return errors.New("set --media-secret and --media-control-token (HANDOFF_MEDIA_SECRET, HANDOFF_MEDIA_CONTROL_TOKEN)")
	}
	if err := checkMediaSecret(*secret); err != nil {
		return err
	}
	if err := config.CheckSecrets(map[string]string{"--media-control-token": *controlToken, "--turn-secret": netw.turnSecret}); err != nil {
		return err
	}
	if netw.turnSecret != "" && netw.publicIPs == "" {
		return errors.New("the TURN server (--turn-secret) needs --public-ip: the address its relays are reached at")
	}
	tlsConf, err := tlsConfig(tlsFiles)
	if err != nil {
		return err
	}
	l, err := httpx.Listen(*listen, "--listen / "+config.EnvName("listen"))
	if err != nil {
		return err
	}
	defer l.Close()
	internalL, err := httpx.Listen(*internalListen, "--internal-listen / "+config.EnvName("internal-listen"))
	if err != nil {
		return err
	}
	defer internalL.Close()
	srv, turnSrv, err := netw.startNode(*secret, *controlToken, "")
	if err != nil {
		return err
	}
	defer srv.SFU.Close()
	defer turnSrv.Close()
	logger.Info("media listening", "addr", l.Addr().String(), "internal", internalL.Addr().String(), "ice_udp_port", netw.udpPort, "ice_tcp_port", netw.tcpPort, "turn", turnSrv != nil)
	defer srv.SFU.Shutdown()
	services := []func(context.Context) error{
		func(ctx context.Context) error { return httpx.ServeTLS(ctx, l, srv.PublicHandler(), tlsConf) },
		func(ctx context.Context) error { return httpx.Serve(ctx, internalL, srv.InternalHandler()) },
	}
	if *dsn != "" {
		db, err := store.Open(ctx, *dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := requireSchema(ctx, db); err != nil {
			return err
		}
		id := *nodeID
		if id == "" {
			if id, err = os.Hostname(); err != nil {
				return fmt.Errorf("--node-id: %w", err)
			}
		}
		reg := &medianodes.Registrar{DB: db, Participants: func() int { return int(srv.SFU.Metrics.Participants.Load()) },
			Node: store.MediaNode{ID: id, PublicURL: *publicURL, ControlURL: *controlURL, Capacity: *capacity}}
		logger.Info("media node registering", "node", id)
		return runDraining(ctx, reg, srv.SFU, *drainTimeout, logger, services)
	}
	return runAll(ctx, services...)
}

// runDraining runs a registered node's services and, when ctx ends (SIGTERM),
// drains it: no new calls come (the registry says draining), the calls here
// go on until they end or timeout passes, then the node leaves the registry
// (its calls are placed elsewhere from then on), tells its participants to
// move, and stops.
func runDraining(ctx context.Context, reg *medianodes.Registrar, sfu *media.SFU, timeout time.Duration, logger *slog.Logger, services []func(context.Context) error) error {
	serving, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	registered, unregister := context.WithCancel(context.WithoutCancel(ctx))
	defer unregister()
	regDone, served := make(chan error, 1), make(chan error, 1)
	go func() { regDone <- reg.Run(registered) }()
	go func() { served <- runAll(serving, services...) }()
	select {
	case err := <-served: // a listener failed
		unregister()
		<-regDone
		return err
	case err := <-regDone: // could not register
		stopServing()
		<-served
		return err
	case <-ctx.Done():
	}
	logger.Info("media node draining", "open_calls", sfu.OpenCalls(), "timeout", timeout)
	reg.Drain()
	deadline := time.Now().Add(timeout)
	for sfu.OpenCalls() > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	unregister()
	if err := <-regDone; err != nil {
		logger.Warn("media node: leaving the registry failed; its row goes stale instead", "err", err)
	}
	logger.Info("media node drained", "calls_left", sfu.OpenCalls(), "sessions_moved", sfu.MoveAway())
	stopServing()
	return <-served
}

// checkMediaSecret checks each secret of the media secret setting (one, or
// "id:secret,id:secret" during a rotation).
func checkMediaSecret(setting string) error {
	if setting == "" {
		return nil
	}
	for _, secret := range media.SecretValues(setting) {
		if err := config.CheckSecret("--media-secret", secret); err != nil {
			return err
		}
	}
	return nil
}

// registerTLS adds --tls-cert and --tls-key: HTTPS (and WSS) served by the
// process itself, instead of a TLS-terminating proxy in front of it.
func registerTLS(fs *config.FlagSet, f *httpx.TLSFiles) {
	fs.StringVar(&f.Cert, "tls-cert", "", "PEM certificate chain to serve HTTPS/WSS with (with --tls-key; empty: plain HTTP behind a TLS proxy)")
	fs.StringVar(&f.Key, "tls-key", "", "PEM private key of --tls-cert")
}

// tlsConfig loads the TLS files when set (nil: plain HTTP).
func tlsConfig(f httpx.TLSFiles) (*tls.Config, error) {
	if !f.On() {
		return nil, nil
	}
	return f.Config()
}

func runMigrate(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("migrate", migrateSummary, stdout)
	opts := backendOptions{schema: schemaMigrate}
	opts.registerDatabase(fs)
	seed := fs.Bool("seed-demo", false, "also write the demo clinics, users and rooms (idempotent)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "schema at version %d (applied now: %v)\n", store.LatestVersion(), b.migrated)
	if *seed {
		n, err := b.db.SeedDemo(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "demo data: %d rows created\n", n)
	}
	return nil
}

func runTemporalSetup(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("temporal-setup", temporalSetupSummary, stdout)
	var tc config.Temporal
	opts := backendOptions{temporal: &tc, admin: true, searchAttributes: true}
	fs.StringVar(&tc.Address, "temporal-address", "127.0.0.1:7233", "host:port of the Temporal frontend (gRPC)")
	fs.StringVar(&tc.Namespace, "temporal-namespace", "default", "Temporal namespace that holds the visits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "namespace %q: search attributes added %v, all present\n", tc.Namespace, b.searchAttributesAdded)
	return nil
}

// runAll runs fns until the first fails or ctx ends, then stops the rest.
func runAll(ctx context.Context, fns ...func(ctx context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, fn := range fns {
		g.Go(func() error { return fn(ctx) })
	}
	return g.Wait()
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// apiSettings are the API's timeouts and rate limits, shared by `api` and `dev`.
type apiSettings struct {
	ttl, idle, abandon                time.Duration
	loginRate, checkInRate, adminRate float64
	openSignup                        bool
	publicURL, trustedProxies         string
	smtp                              mailer.SMTP
}

// register adds the API's settings; dev opens sign-up by default (a first
// run on a laptop), production keeps it closed.
func (s *apiSettings) register(fs *config.FlagSet, dev bool) {
	fs.BoolVar(&s.openSignup, "open-signup", dev, "let anyone create a clinic from the sign-in page (a first run); operators use `handoff admin create-clinic` instead")
	fs.StringVar(&s.publicURL, "public-url", "", "the dashboard's address as people reach it, for links in invitation and reset mail (default: the request's host)")
	fs.StringVar(&s.trustedProxies, "trusted-proxies", "", "addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (comma-separated; empty: the connection's address is the client's)")
	fs.Float64Var(&s.adminRate, "admin-rate", 5, "administrative changes per second allowed from one client address (bursts of 20)")
	fs.StringVar(&s.smtp.Host, "smtp-host", "", "SMTP server that sends invitations and reset links (empty: links are only shown to the admin)")
	fs.IntVar(&s.smtp.Port, "smtp-port", 587, "SMTP port")
	fs.StringVar(&s.smtp.User, "smtp-user", "", "SMTP user (empty: no authentication)")
	fs.StringVar(&s.smtp.Password, "smtp-password", "", "SMTP password")
	fs.StringVar(&s.smtp.From, "smtp-from", "Handoff <no-reply@localhost>", "From address of Handoff's mail")
	fs.StringVar(&s.smtp.TLS, "smtp-tls", mailer.TLSStart, "starttls, tls (implicit, port 465) or none (a relay on this host only)")
	fs.DurationVar(&s.ttl, "session-ttl", 12*time.Hour, "a provider's session ends this long after sign-in")
	fs.DurationVar(&s.idle, "session-idle", 30*time.Minute, "a provider's session ends after this long without a request (automatic logoff)")
	fs.DurationVar(&s.abandon, "abandon-after", 30*time.Minute, "a visit whose patient has left the waiting room for this long ends itself (0: never)")
	// Behind a proxy every request comes from its address: raise these there
	// (and for load tests), or the limit is shared by all patients.
	fs.Float64Var(&s.loginRate, "login-rate", 1, "sign-ins per second allowed from one client address (bursts of 5)")
	fs.Float64Var(&s.checkInRate, "checkin-rate", 2, "check-ins per second allowed from one client address (bursts of 10, or of one second's worth when that is more)")
}

func (s apiSettings) check() error {
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--login-rate", s.loginRate}, {"--checkin-rate", s.checkInRate}, {"--admin-rate", s.adminRate}} {
		if r.v <= 0 {
			return fmt.Errorf("%s must be positive", r.flag)
		}
	}
	for _, p := range splitList(s.trustedProxies) {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return fmt.Errorf("--trusted-proxies: %q is neither an address nor a CIDR", p)
		}
	}
	if s.smtp.Host != "" {
		if err := s.smtp.Check(); err != nil {
			return fmt.Errorf("--smtp-*: %w", err)
		}
	}
	return nil
}

func (s apiSettings) apply(d *api.Deps) {
	d.SessionTTL, d.SessionIdle, d.AbandonAfter = s.ttl, s.idle, s.abandon
	d.LoginRate, d.CheckInRate, d.AdminRate = s.loginRate, s.checkInRate, s.adminRate
	d.OpenSignup, d.PublicURL, d.TrustedProxies = s.openSignup, s.publicURL, splitList(s.trustedProxies)
	if s.smtp.Host != "" {
		d.Mailer = s.smtp
	}
}
