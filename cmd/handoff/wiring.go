package main

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/medianodes"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/namespace"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/temporalclient"
	"github.com/handoff-telehealth/handoff/worker"
)

// schemaPolicy is what a command does with the app database's schema.
type schemaPolicy int

const (
	schemaAsIs     schemaPolicy = iota // read it as it is (visits)
	schemaRequired                     // stop unless it is migrated (api, worker)
	schemaMigrate                      // migrate it (dev, migrate)
)

// backendOptions say which of the shared services a command needs. A
// command's flags write into them; connect makes what they name.
type backendOptions struct {
	// db, when set, opens the app database, whose schema is then treated as
	// schema says; seedDemo writes the demo data after it (dev).
	db       *config.Database
	schema   schemaPolicy
	seedDemo bool
	// patientData: the command reads or writes patient data, so it needs
	// the data keys (db.DataKeys) that seal it.
	patientData bool

	// temporal, when set, dials Temporal with the payload codec of its
	// CodecKeys; admin dials without the codec instead, for namespace
	// administration, which carries no payloads.
	temporal *config.Temporal
	admin    bool
	// startTemporal (dev) starts an embedded Temporal server once the
	// database is ready and says how to reach it; its stop runs after the
	// client is closed. It stands in for temporal.
	startTemporal func(ctx context.Context) (config.Temporal, func(), error)
	// searchAttributes registers Handoff's search attributes on the
	// namespace after the dial.
	searchAttributes bool

	// metrics makes a registry, which the Temporal client feeds with the
	// SDK's metrics; watchWaiting adds the gauge of waiting visits, read
	// from the app database.
	metrics, watchWaiting bool

	// mediaControlURL and mediaControlToken make a client of a media node's
	// control API (for the activities); mediaSecret the tokens that let
	// browsers into that node's calls.
	mediaControlURL, mediaControlToken string
	mediaSecret                        string
	// mediaRegistry: the media nodes are those registered in the app
	// database (handoff media --db), not the one mediaControlURL.
	mediaRegistry bool
}

// registerMediaRegistry adds --media-registry.
func (o *backendOptions) registerMediaRegistry(fs *config.FlagSet) {
	fs.BoolVar(&o.mediaRegistry, "media-registry", false, "place calls on the media nodes registered in the app database (handoff media --db) instead of the one media node flag")
}

// registerDatabase adds --db, with the production default, to a command's
// flags.
func (o *backendOptions) registerDatabase(fs *config.FlagSet) {
	o.db = &config.Database{}
	o.db.Register(fs, productionDBDefault)
}

// registerTemporal adds --temporal-address, --temporal-namespace and
// --codec-keys to a command's flags.
func (o *backendOptions) registerTemporal(fs *config.FlagSet) {
	o.temporal = &config.Temporal{}
	o.temporal.Register(fs)
}

// backends are the services a command shares with the others, made once by
// connect; Close releases them.
type backends struct {
	logger *slog.Logger
	db     *store.DB
	// migrated are the migrations applied now (schemaMigrate).
	migrated []int
	temporal client.Client
	codec    *codec.Codec
	// searchAttributesAdded are the search attributes registered now.
	searchAttributesAdded []string
	metrics               *metrics.Registry
	nodes                 activities.MediaNodes
	registry              *medianodes.Registry // with mediaRegistry
	mediaTokens           *media.Tokens
	closers               []func()
}

// connect makes the services o names, in this order: the metrics registry,
// the app database and its schema, Temporal (started, dialled, its namespace
// prepared), the media node's clients. On an error it releases what it made.
func connect(ctx context.Context, o backendOptions, logger *slog.Logger) (_ *backends, err error) {
	b := &backends{logger: logger}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if o.metrics {
		b.metrics = metrics.New()
	}
	if o.db != nil {
		if err := b.openStore(ctx, o); err != nil {
			return nil, err
		}
	}
	if o.temporal != nil || o.startTemporal != nil {
		if err := b.dialTemporal(ctx, o); err != nil {
			return nil, err
		}
	}
	if o.mediaRegistry {
		b.useRegistry(o.mediaControlToken)
	} else if o.mediaControlURL != "" {
		b.nodes = activities.OneNode{Node: store.MediaNode{ID: activities.LocalNode}, Media: media.NewControlClient(o.mediaControlURL, o.mediaControlToken)}
	}
	if o.mediaSecret != "" {
		tokens := media.NewTokens(o.mediaSecret)
		b.mediaTokens = &tokens
	}
	if o.watchWaiting {
		b.metrics.WatchWaiting(b.db)
	}
	return b, nil
}

func (b *backends) openStore(ctx context.Context, o backendOptions) error {
	if o.patientData {
		keys, err := codec.ParseKeys(o.db.DataKeys)
		if err != nil {
			return fmt.Errorf("data keys (--data-keys, %s): %w", config.EnvName("data-keys"), err)
		}
		store.UseDataKeys(keys)
	}
	d, err := store.Open(ctx, o.db.DSN)
	if err != nil {
		return err
	}
	b.db = d
	b.closers = append(b.closers, func() { _ = d.Close() })
	switch o.schema {
	case schemaRequired:
		if err := requireSchema(ctx, d); err != nil {
			return err
		}
	case schemaMigrate:
		if b.migrated, err = d.Migrate(ctx); err != nil {
			return err
		}
	}
	if o.seedDemo {
		if _, err := d.SeedDemo(ctx); err != nil {
			return fmt.Errorf("seeding demo data: %w", err)
		}
	}
	return nil
}

func (b *backends) dialTemporal(ctx context.Context, o backendOptions) error {
	var tc config.Temporal
	if o.startTemporal != nil {
		var stop func()
		var err error
		if tc, stop, err = o.startTemporal(ctx); err != nil {
			return err
		}
		b.closers = append(b.closers, stop)
	} else {
		tc = *o.temporal
	}
	var c client.Client
	var err error
	if o.admin {
		c, err = temporalclient.DialAdmin(ctx, tc, b.logger)
	} else {
		if b.codec, err = codec.ParseKeys(tc.CodecKeys); err != nil {
			return err
		}
		var sdkMetrics client.MetricsHandler
		if b.metrics != nil {
			sdkMetrics = b.metrics.TemporalHandler()
		}
		c, err = temporalclient.Dial(ctx, tc, b.codec, b.logger, sdkMetrics)
	}
	if err != nil {
		return err
	}
	b.temporal = c
	b.closers = append(b.closers, c.Close)
	if o.searchAttributes {
		if b.searchAttributesAdded, err = namespace.EnsureSearchAttributes(ctx, c, tc.Namespace); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the services in the reverse order of their making.
func (b *backends) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// requireSchema stops a process that would run against an unmigrated
// database, pointing at the command that fixes it.
func requireSchema(ctx context.Context, d *store.DB) error {
	v, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if v != store.LatestVersion() {
		return fmt.Errorf("database schema is at version %d, this build needs %d: run `handoff migrate` first", v, store.LatestVersion())
	}
	return nil
}

// useRegistry places calls on the registered media nodes, each reached at
// its control URL with token.
func (b *backends) useRegistry(token string) {
	b.registry = medianodes.NewRegistry(token, func(url, token string) activities.Media { return media.NewControlClient(url, token) })
	b.nodes = b.registry
}

// apiDeps are what the API serves with; the command adds its media URL, ICE
// servers and codec server.
func (b *backends) apiDeps(sess apiSettings) api.Deps {
	deps := api.Deps{DB: b.db, Temporal: b.temporal, Logger: b.logger, Metrics: b.metrics, MediaTokens: b.mediaTokens}
	if b.registry != nil {
		deps.MediaNodes, deps.MediaOrigins = b.registry, b.registry.Origins(b.db)
	}
	sess.apply(&deps)
	return deps
}

// runWorker polls the visit task queue until ctx ends; its activities drive
// calls through b.nodes.
func (b *backends) runWorker(ctx context.Context, cache int) error {
	return worker.Run(ctx, b.temporal, worker.Deps{DB: b.db, Nodes: b.nodes, Metrics: b.metrics, Logger: b.logger, WorkflowCache: cache})
}
