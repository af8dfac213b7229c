package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/worker"
)

func runVisitWorker(ctx context.Context, c client.Client, d *store.DB, logger *slog.Logger) error {
	return worker.Run(ctx, c, worker.Deps{DB: d, Logger: logger})
}
