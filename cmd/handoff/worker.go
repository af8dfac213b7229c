package main

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/worker"
)

func runVisitWorker(ctx context.Context, c client.Client, d *store.DB, logger *slog.Logger) error {
	// Until the SFU's control API lands, the worker keeps call membership in
	// its own process (media.Calls), which is only right for `handoff dev`.
	return worker.Run(ctx, c, worker.Deps{DB: d, Media: media.NewCalls(), Logger: logger})
}
