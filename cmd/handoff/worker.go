package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/worker"
)

func runVisitWorker(ctx context.Context, c client.Client, d *store.DB, m activities.Media, reg *metrics.Registry, logger *slog.Logger) error {
	return worker.Run(ctx, c, worker.Deps{DB: d, Media: m, Metrics: reg, Logger: logger})
}
