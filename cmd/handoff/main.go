// Command handoff runs Handoff: `handoff dev` for everything in one process,
// or `handoff api|worker|media` as separate processes of a real cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/tracing"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error
}

var commands = []command{
	{"dev", devSummary, runDev},
	{"api", apiSummary, runAPI},
	{"worker", workerSummary, runWorker},
	{"media", mediaSummary, runMedia},
	{"migrate", migrateSummary, runMigrate},
	{"temporal-setup", temporalSetupSummary, runTemporalSetup},
	{"temporal-server", temporalServerSummary, runTemporalServer},
	{"replay", replaySummary, runReplay},
	{"visits", visitsSummary, runVisits},
	{"reset", resetSummary, runReset},
	{"admin", adminSummary, runAdmin},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Handoff: virtual visits with live transfer of patients between providers.\n\nUsage: handoff <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `handoff <command> --help` for the settings of a command.\n")
	fmt.Fprintf(w, "Every command exports OpenTelemetry traces when %s is host:port of an OTLP/gRPC collector (off by default).\n", config.EnvName("otlp-endpoint"))
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// Text for a person at a terminal (dev), JSON for a log pipeline.
		var handler slog.Handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
		if c.name == "dev" {
			handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
		}
		logger := slog.New(handler)
		// Tracing is configured before any client exists: the Temporal
		// interceptor is chosen when a client is made.
		shutdown, err := tracing.Setup(ctx, os.Getenv(config.EnvName("otlp-endpoint")), "handoff-"+c.name)
		if err != nil {
			fmt.Fprintf(stderr, "handoff %s: tracing: %v\n", c.name, err)
			return 1
		}
		defer func() { _ = shutdown(context.Background()) }()
		err = c.run(ctx, args[1:], stdout, logger)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0
		case err != nil:
			fmt.Fprintf(stderr, "handoff %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "handoff: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
