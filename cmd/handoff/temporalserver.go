//go:build !production

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/devserver"
)

const temporalServerSummary = "run a Temporal server persisting to PostgreSQL, as a process of its own (tests of the production topology; not in production builds)"

// runTemporalServer is the Temporal server `handoff dev` embeds, on
// PostgreSQL and alone in its process: the production topology's Temporal
// on a machine without Temporal's own packaging.
func runTemporalServer(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("temporal-server", temporalServerSummary, stdout)
	dsn := fs.String("db", "postgres://postgres@127.0.0.1:5432/temporal", "PostgreSQL database of the server's history (made, and its schema brought up to date, at start)")
	visibility := fs.String("visibility-db", "", "database of its visibility on the same server (default: <db>_visibility)")
	host := fs.String("host", "127.0.0.1", "address the server binds to")
	port := fs.Int("port", 7233, "frontend gRPC port")
	uiPort := fs.Int("ui-port", 0, "port of the Temporal UI (0: none)")
	namespace := fs.String("namespace", "default", "namespace registered at start if missing")
	logDir := fs.String("log-dir", os.TempDir(), "directory of temporal.log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pg, err := devserver.ParsePostgres(*dsn, *visibility)
	if err != nil {
		return fmt.Errorf("--db: %w", err)
	}
	srv, err := devserver.Start(ctx, devserver.Options{DataDir: *logDir, Host: *host, Port: *port, UIPort: *uiPort, Namespace: *namespace, Postgres: pg})
	if err != nil {
		return err
	}
	defer srv.Stop()
	// Search attributes come from `handoff temporal-setup`; until then, and
	// for two cache periods after, every read of them goes to the database.
	srv.SearchAttributesRegistered(true)
	logger.Info("temporal server listening", "addr", srv.Address(), "ui", srv.UIURL())
	fmt.Fprintf(stdout, "Temporal server ready at %s (namespace %s)\n", srv.Address(), *namespace)
	<-ctx.Done()
	return nil
}
