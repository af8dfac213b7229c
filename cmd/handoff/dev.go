//go:build !production

package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/devserver"
	"github.com/handoff-telehealth/handoff/httpx"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/worker"
)

const devSummary = "run all of Handoff in one process: embedded Temporal + UI, API, worker, media, demo data"

type devSettings struct {
	noDemo                              bool
	dataDir, host, namespace, codecKeys string
	pprofAddr                           string
	apiPort, mediaPort, tPort, uiPort   int
	internalPort                        int
	db                                  config.Database
	// An external media node (`handoff media`) instead of the built-in one:
	// to work on media, or to restart it on its own. mediaPublicURL is its
	// signaling WebSocket (default: beside the control API).
	mediaURL, mediaPublicURL, mediaSecret, mediaControlToken string
	// mediaRegistry: no built-in node; calls go on the nodes registered in
	// the app database (`handoff media --db`), as in a cluster.
	mediaRegistry bool
	// The built-in node's network: none of it is needed on one machine.
	network nodeNetwork
}

func runDev(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	started := time.Now()
	fs := config.NewFlagSet("dev", devSummary, stdout)
	var s devSettings
	fs.StringVar(&s.dataDir, "data-dir", ".handoff", "directory for the Temporal and app SQLite files and logs; visits survive restarts")
	fs.StringVar(&s.host, "host", "127.0.0.1", "address every server binds to")
	fs.IntVar(&s.apiPort, "api-port", 8080, "port of the API and the web pages")
	fs.IntVar(&s.mediaPort, "media-port", 8081, "port of the media server")
	fs.IntVar(&s.tPort, "temporal-port", 7233, "port of the embedded Temporal frontend (gRPC)")
	fs.IntVar(&s.uiPort, "ui-port", 8233, "port of the Temporal UI")
	fs.IntVar(&s.internalPort, "internal-port", 8090, "port of /metrics (API and worker) and /media/metrics (the built-in media node): not for browsers")
	fs.StringVar(&s.namespace, "temporal-namespace", "default", "Temporal namespace of the visits")
	fs.StringVar(&s.mediaURL, "media-url", "", "control API of an external media node (handoff media); empty runs one in this process on --media-port")
	fs.StringVar(&s.mediaPublicURL, "media-public-url", "", "with --media-url: that node's signaling WebSocket (default: ws://<--media-url host>/ws)")
	fs.StringVar(&s.mediaSecret, "media-secret", "", "with --media-url or --media-registry: the secret that signs media tokens, as given to the nodes")
	fs.StringVar(&s.mediaControlToken, "media-control-token", "", "with --media-url or --media-registry: the nodes' control token")
	fs.BoolVar(&s.mediaRegistry, "media-registry", false, "no built-in media node: place calls on the nodes registered in the app database (handoff media --db, with the same --media-secret and --media-control-token)")
	fs.StringVar(&s.pprofAddr, "pprof-addr", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty: off")
	fs.StringVar(&s.codecKeys, "codec-keys", "", "payload encryption keys (id:base64[,…]); default: a key made once and kept in the data directory")
	s.db.Register(fs, "")
	s.network.register(fs, nodeDefaults{turn: 3478})
	var sess apiSettings
	sess.register(fs, true)
	var retain store.Retention
	registerRetention(fs, &retain)
	fs.BoolVar(&s.noDemo, "no-demo", false, "start without the demo clinics: the sign-in page offers to create a clinic")
	cache := registerWorkflowCache(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := sess.check(); err != nil {
		return err
	}
	if err := checkRetention(retain); err != nil {
		return err
	}
	if err := checkWorkflowCache(*cache); err != nil {
		return err
	}
	// The SDK's workflow cache is one per process, made by the first worker
	// that starts: here the embedded server's own, so it is sized before
	// the server starts (sized later, the setting was ignored).
	worker.SizeCache(*cache)
	if err := s.checkMediaURL(); err != nil {
		return err
	}
	// Everything the dev server writes (its databases, keys and tokens)
	// holds patient data or what opens it: only its owner reads it.
	syscall.Umask(0o077)
	dataDir, err := prepareDataDir(s.dataDir)
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if s.db.DSN == "" {
		s.db.DSN = "sqlite:" + filepath.Join(dataDir, "handoff.db")
	}

	// Take our own ports now, and check Temporal's, so that a port in use is
	// one clear message before anything starts.
	apiL, err := httpx.Listen(hostPort(s.host, s.apiPort), "--api-port / "+config.EnvName("api-port"))
	if err != nil {
		return err
	}
	defer apiL.Close()
	internalL, err := httpx.Listen(hostPort(s.host, s.internalPort), "--internal-port / "+config.EnvName("internal-port"))
	if err != nil {
		return err
	}
	defer internalL.Close()
	var mediaL net.Listener
	if s.mediaURL == "" {
		if mediaL, err = httpx.Listen(hostPort(s.host, s.mediaPort), "--media-port / "+config.EnvName("media-port")); err != nil {
			return err
		}
		defer mediaL.Close()
	}
	var pprofL net.Listener
	if s.pprofAddr != "" {
		if pprofL, err = httpx.Listen(s.pprofAddr, "--pprof-addr / "+config.EnvName("pprof-addr")); err != nil {
			return err
		}
		defer pprofL.Close()
	}
	for port, setting := range map[int]string{s.tPort: "temporal-port", s.uiPort: "ui-port"} {
		l, err := httpx.Listen(hostPort(s.host, port), "--"+setting+" / "+config.EnvName(setting))
		if err != nil {
			return err
		}
		_ = l.Close()
	}

	if s.codecKeys == "" {
		if s.codecKeys, err = devSecret(dataDir, "codec.keys", func() (string, error) { return codec.NewKeySpec("dev1") }); err != nil {
			return err
		}
	}
	if s.db.DataKeys == "" {
		if s.db.DataKeys, err = devSecret(dataDir, "data.keys", func() (string, error) { return codec.NewKeySpec("dev1") }); err != nil {
			return err
		}
	}
	// The app database first, then the embedded Temporal server: a database
	// that does not answer is reported before the server takes its time.
	apiURL := "http://" + hostPort(s.host, s.apiPort)
	var temporal *devserver.Server
	startTemporal := func(ctx context.Context) (config.Temporal, func(), error) {
		var err error
		temporal, err = devserver.Start(ctx, devserver.Options{
			DataDir: dataDir, Host: s.host, Port: s.tPort, UIPort: s.uiPort, Namespace: s.namespace,
			CodecEndpoint: apiURL + "/codec", CachedWorkflows: *cache,
		})
		if err != nil {
			return config.Temporal{}, nil, err
		}
		return config.Temporal{Address: temporal.Address(), Namespace: s.namespace, CodecKeys: s.codecKeys}, temporal.Stop, nil
	}
	b, err := connect(ctx, backendOptions{db: &s.db, schema: schemaMigrate, patientData: true, seedDemo: !s.noDemo,
		startTemporal: startTemporal, searchAttributes: true, metrics: true, watchWaiting: true}, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	temporal.SearchAttributesRegistered(len(b.searchAttributesAdded) > 0)

	codecToken, err := devSecret(dataDir, "codec.token", randomToken)
	if err != nil {
		return err
	}
	node, err := s.mediaNode(dataDir)
	if err != nil {
		return err
	}
	if s.mediaRegistry {
		b.useRegistry(s.mediaControlToken)
	} else {
		b.nodes = activities.OneNode{Node: store.MediaNode{ID: activities.LocalNode, PublicURL: node.publicURL}, Media: node.control}
	}
	printDevBanner(stdout, s, dataDir, apiURL, temporal, time.Since(started))
	services := []func(context.Context) error{
		func(ctx context.Context) error {
			deps := b.apiDeps(sess)
			deps.CodecServer = b.codec.CodecServer(codecToken, []string{temporal.UIURL()}, api.AuditDecodes(b.db, logger))
			deps.MediaTokens, deps.MediaURL, deps.ICEServers = &node.tokens, node.publicURL, node.iceServers
			return httpx.Serve(ctx, apiL, api.NewRouter(deps))
		},
		func(ctx context.Context) error {
			internal := http.NewServeMux()
			internal.Handle("/", api.NewInternalRouter(b.apiDeps(sess)))
			if node.server != nil {
				internal.Handle("GET /media/metrics", http.StripPrefix("/media", node.server.InternalHandler()))
			}
			return httpx.Serve(ctx, internalL, internal)
		},
		b.db.ListenForEvents,
		purgeEvery(time.Hour, b.db, retain, logger),
		func(ctx context.Context) error { return b.runWorker(ctx, *cache) },
	}
	if s.pprofAddr != "" {
		services = append(services, func(ctx context.Context) error { return httpx.Serve(ctx, pprofL, profiler()) })
	}
	if node.server != nil {
		defer node.server.SFU.Close()
		defer node.turn.Close()
		services = append(services, func(ctx context.Context) error {
			defer node.server.SFU.Shutdown()
			return httpx.Serve(ctx, mediaL, node.server.PublicHandler())
		})
	}
	err = runAll(ctx, services...)
	fmt.Fprintln(stdout, "Handoff stopped.")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// devMedia is the media node dev uses: its own, or one named by --media-url.
type devMedia struct {
	server     *media.Server // nil for an external node
	control    activities.Media
	tokens     media.Tokens
	publicURL  string
	turn       *media.TURNServer
	iceServers *media.ICEServers
}

func (s devSettings) checkMediaURL() error {
	if s.mediaRegistry {
		if s.mediaURL != "" {
			return errors.New("--media-registry and --media-url exclude each other: the registry names the nodes")
		}
		if s.mediaSecret == "" || s.mediaControlToken == "" {
			return errors.New("--media-registry needs --media-secret and --media-control-token (HANDOFF_MEDIA_SECRET, HANDOFF_MEDIA_CONTROL_TOKEN) of the nodes")
		}
		return nil
	}
	if s.mediaURL == "" {
		return nil
	}
	if s.mediaSecret == "" || s.mediaControlToken == "" {
		return errors.New("--media-url needs --media-secret and --media-control-token (HANDOFF_MEDIA_SECRET, HANDOFF_MEDIA_CONTROL_TOKEN) of that node")
	}
	if u, err := url.Parse(s.mediaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--media-url %q is not an http(s) URL of a media node", s.mediaURL)
	}
	return nil
}

func (s devSettings) mediaNode(dataDir string) (devMedia, error) {
	if s.mediaRegistry {
		return devMedia{tokens: media.NewTokens(s.mediaSecret)}, nil
	}
	if s.mediaURL != "" {
		u, _ := url.Parse(s.mediaURL) // checked by checkMediaURL
		ws := *u
		ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
		ws.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
		public := cmp.Or(s.mediaPublicURL, ws.String())
		return devMedia{control: media.NewControlClient(s.mediaURL, s.mediaControlToken), tokens: media.NewTokens(s.mediaSecret), publicURL: public}, nil
	}
	secret, err := devSecret(dataDir, "media.secret", randomToken)
	if err != nil {
		return devMedia{}, err
	}
	netw := s.network
	if ip := net.ParseIP(s.host); ip != nil && ip.IsLoopback() {
		netw.loopback = true // one machine, maybe with no other interface
	}
	relayHost := s.host
	if pub, _, _ := strings.Cut(strings.Split(netw.publicIPs, ",")[0], "/"); pub != "" {
		relayHost = strings.TrimSpace(pub)
	}
	srv, turnSrv, err := netw.startNode(secret, "", relayHost)
	if err != nil {
		return devMedia{}, err
	}
	ice := &media.ICEServers{TURN: embeddedTURNURLs(relayHost, netw), TURNSecret: netw.turnSecret}
	// In one process the worker drives the SFU directly.
	return devMedia{server: srv, control: srv.SFU, tokens: srv.SFU.Tokens(), publicURL: "ws://" + hostPort(s.host, s.mediaPort) + "/ws",
		turn: turnSrv, iceServers: ice}, nil
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// prepareDataDir makes the directory and proves it writable.
func prepareDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("data directory %s cannot be created: %w (choose another with --data-dir / %s)", abs, err, config.EnvName("data-dir"))
	}
	probe, err := os.CreateTemp(abs, ".write-check-*")
	if err != nil {
		return "", fmt.Errorf("data directory %s is not writable: %w (choose another with --data-dir / %s)", abs, err, config.EnvName("data-dir"))
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	return abs, nil
}

// devSecret reads a secret kept in the data directory, making it on first
// start: without the same payload key a restarted dev server could not read
// its own visits.
func devSecret(dir, name string, make func() (string, error)) (string, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	secret, err := make()
	if err != nil {
		return "", err
	}
	return secret, os.WriteFile(path, []byte(secret+"\n"), 0o600)
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// lockDataDir keeps a second `handoff dev` off the same SQLite files.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "handoff.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another handoff dev; stop it or choose another --data-dir", dir)
	}
	return func() { _ = f.Close() }, nil
}

func printDevBanner(w io.Writer, s devSettings, dataDir, apiURL string, t *devserver.Server, took time.Duration) {
	fmt.Fprintf(w, "\nHandoff is running (ready in %s; data in %s)\n\n", took.Round(10*time.Millisecond), dataDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Web pages\t%s/\n", apiURL)
	fmt.Fprintf(tw, "  API\t%s/api/v1\n", apiURL)
	internalURL := "http://" + hostPort(s.host, s.internalPort)
	fmt.Fprintf(tw, "  Health\t%s/healthz  %s/readyz\n", apiURL, apiURL)
	fmt.Fprintf(tw, "  Metrics\t%s/metrics  %s/media/metrics (internal: not for browsers)\n", internalURL, internalURL)
	switch {
	case s.mediaRegistry:
		fmt.Fprintf(tw, "  Media servers\tthose registered in the app database (handoff media --db)\n")
	case s.mediaURL != "":
		fmt.Fprintf(tw, "  Media server\t%s (external)\n", s.mediaURL)
	default:
		fmt.Fprintf(tw, "  Media server\thttp://%s\n", hostPort(s.host, s.mediaPort))
	}
	fmt.Fprintf(tw, "  Temporal UI\t%s\n", t.UIURL())
	fmt.Fprintf(tw, "  Temporal gRPC\t%s (namespace %s)\n", t.Address(), s.namespace)
	fmt.Fprintf(tw, "  Codec server\t%s/codec; to read payloads in the UI open %s/codec/unlock?token=<%s>\n", apiURL, apiURL, filepath.Join(dataDir, "codec.token"))
	fmt.Fprintf(tw, "  App database\t%s\n", store.Redact(s.db.DSN))
	_ = tw.Flush()
	if s.noDemo {
		fmt.Fprintf(w, "\nNo demo data: open %s/ and choose \"Create your clinic\".\n\nPress Ctrl-C to stop.\n", apiURL)
		return
	}
	fmt.Fprintf(w, "\nDemo logins (password %q):\n", store.DemoPassword)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range store.Demo {
		for _, u := range c.Users {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s (%s)\n", u.Email, u.Name, u.Role, c.Name, c.Plan)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
}

// profiler serves net/http/pprof on its own listener, never on the API's:
// profiles show memory that can hold patient data.
func profiler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
