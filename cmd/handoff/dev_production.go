//go:build production

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

const devSummary = "not in this build: production builds do not embed the Temporal server"

func runDev(context.Context, []string, io.Writer, *slog.Logger) error {
	return errors.New("this binary was built with -tags production and has no embedded Temporal server; run `handoff api`, `handoff worker` and `handoff media` against a Temporal cluster, or build without the tag")
}

const temporalServerSummary = "not in this build: production builds do not embed the Temporal server"

func runTemporalServer(context.Context, []string, io.Writer, *slog.Logger) error {
	return errors.New("this binary was built with -tags production and has no Temporal server; use a Temporal cluster")
}
