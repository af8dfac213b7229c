package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	dbschema "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Postgres is a Temporal server's PostgreSQL: its history and its
// visibility, each in a database of its own on one server.
type Postgres struct {
	Host                 string
	Port                 int
	User, Password       string
	Database, Visibility string
}

// ParsePostgres reads postgres://user:password@host:port/database; the
// visibility database is visibility, or "<database>_visibility".
func ParsePostgres(dsn, visibility string) (*Postgres, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("%q is not postgres://user@host:port/database", dsn)
	}
	p := &Postgres{Host: u.Hostname(), Port: 5432, User: u.User.Username(), Database: strings.Trim(u.Path, "/"), Visibility: visibility}
	p.Password, _ = u.User.Password()
	if port := u.Port(); port != "" {
		if p.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("%q: bad port", dsn)
		}
	}
	if p.Visibility == "" {
		p.Visibility = p.Database + "_visibility"
	}
	return p, nil
}

func (p Postgres) sqlConfig(database string) *config.SQL {
	return &config.SQL{PluginName: postgresql.PluginName, DatabaseName: database, ConnectAddr: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		ConnectProtocol: "tcp", User: p.User, Password: p.Password, MaxConns: 20, MaxIdleConns: 20, MaxConnLifetime: time.Hour}
}

// prepare makes both databases if missing and brings their schemas to this
// server's version (Temporal's own schema tool, its files embedded), and
// forgets the cluster members of earlier runs (see forgetPreviousMembers).
func (p Postgres) prepare() error {
	logger := log.NewNoopLogger()
	for _, db := range []struct{ name, schema string }{{p.Database, "postgresql/v12/temporal"}, {p.Visibility, "postgresql/v12/visibility"}} {
		if err := sqltool.DoCreateDatabase(p.sqlConfig(db.name), "postgres", logger); err != nil && !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("creating the Temporal database %s: %w", db.name, err)
		}
		conn, err := sqltool.NewConnection(p.sqlConfig(db.name), logger)
		if err != nil {
			return fmt.Errorf("connecting to the Temporal database %s: %w", db.name, err)
		}
		err = dbschema.NewSetupSchemaTask(conn, &dbschema.SetupConfig{InitialVersion: "0.0"}, logger).Run()
		if err == nil {
			err = dbschema.NewUpdateSchemaTask(conn, &dbschema.UpdateConfig{DBName: db.name, SchemaName: db.schema}, logger).Run()
		}
		if err == nil && db.name == p.Database {
			err = conn.Exec("DELETE FROM cluster_membership")
		}
		conn.Close()
		if err != nil {
			return fmt.Errorf("the Temporal schema of %s: %w", db.name, err)
		}
	}
	return nil
}

// startOnPostgres runs the server on PostgreSQL, with four history shards as
// a small cluster has, and registers the namespace through the frontend.
func startOnPostgres(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.Postgres.prepare(); err != nil {
		return nil, err
	}
	dc, forceRefresh := devConfig(1, opts.CachedWorkflows)
	store := func(db string) config.DataStore { return config.DataStore{SQL: opts.Postgres.sqlConfig(db)} }
	cfg, err := serverConfig(opts, config.Persistence{
		DefaultStore: "default", VisibilityStore: "visibility", NumHistoryShards: 4,
		DataStores: map[string]config.DataStore{"default": store(opts.Postgres.Database), "visibility": store(opts.Postgres.Visibility)},
	})
	if err != nil {
		return nil, err
	}
	s, err := start(ctx, opts, cfg, dc, forceRefresh)
	if err != nil {
		return nil, err
	}
	if err := registerNamespace(ctx, s.Address(), opts.Namespace); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// registerNamespace creates the namespace, if missing, with a 3-day
// retention (closed visits' histories, for replays).
func registerNamespace(ctx context.Context, address, namespace string) error {
	nc, err := sdkclient.NewNamespaceClient(sdkclient.Options{HostPort: address, Logger: quietSDK{}})
	if err != nil {
		return err
	}
	defer nc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: namespace, WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour)})
		var exists *serviceerror.NamespaceAlreadyExists
		if err == nil || errors.As(err, &exists) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("registering namespace %q: %w", namespace, err)
		}
		time.Sleep(200 * time.Millisecond) // the frontend is still joining its cluster
	}
}

// quietSDK drops the SDK client's own log lines.
type quietSDK struct{}

func (quietSDK) Debug(string, ...any) {}
func (quietSDK) Info(string, ...any)  {}
func (quietSDK) Warn(string, ...any)  {}
func (quietSDK) Error(string, ...any) {}
