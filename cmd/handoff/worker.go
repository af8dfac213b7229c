package main

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/worker"
)

func runVisitWorker(ctx context.Context, c client.Client, d *store.DB, m activities.Media, reg *metrics.Registry, logger *slog.Logger, cache int) error {
	return worker.Run(ctx, c, worker.Deps{DB: d, Media: m, Metrics: reg, Logger: logger, WorkflowCache: cache})
}

func registerWorkflowCache(fs *config.FlagSet) *int {
	return fs.Int("workflow-cache", worker.DefaultWorkflowCache, "visits the worker keeps in memory between their tasks; others are rebuilt from their history when next needed")
}

func checkWorkflowCache(n int) error {
	if n < 1 {
		return errors.New("--workflow-cache must be at least 1")
	}
	return nil
}
