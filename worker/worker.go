// Package worker runs the Temporal worker that executes visit workflows and
// their activities.
package worker

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

// Deps are what the activities need.
type Deps struct {
	DB *store.DB
	// Nodes are the media nodes calls go on; nil: Media, the one node.
	Nodes   activities.MediaNodes
	Media   activities.Media
	Logger  *slog.Logger
	Metrics *metrics.Registry
	// WorkflowCache is how many visits the worker keeps in memory between
	// their tasks (0: DefaultWorkflowCache). A visit not in it is rebuilt
	// from its history when something next happens to it.
	WorkflowCache int
}

// DefaultWorkflowCache is the SDK's own default. Measured with 10,000
// visits waiting (BENCHMARKS.md, capacity): a cache of 2,000 saved 30 MiB of
// 2.1 GiB, while every transfer of an evicted visit replays its history, so
// the default stays; the flag is there for workers with many more visits.
const DefaultWorkflowCache = 10000

const workflowTaskPollers = 8

// New makes a worker for the visit task queue with everything registered.
func New(c client.Client, d Deps) sdkworker.Worker {
	// On SIGTERM the worker stops polling and gives running activities this
	// long to finish, so a deploy does not cut a transfer step in half.
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{
		WorkerStopTimeout: drainTimeout,
		// The SDK's two pollers, shared between the sticky and the normal
		// queue, left new visits' first workflow tasks without a poll
		// waiting at 50 check-ins/s; they were written to the database and
		// matched later (BENCHMARKS.md).
		MaxConcurrentWorkflowTaskPollers: workflowTaskPollers,
	})
	w.RegisterWorkflow(workflows.Visit)
	w.RegisterActivity(&activities.Activities{DB: d.DB, Nodes: d.Nodes, Media: d.Media, Metrics: d.Metrics})
	return w
}

// drainTimeout bounds a graceful stop; steps take milliseconds, but a
// dependency may be slow to answer.
const drainTimeout = 30 * time.Second

// Run polls the visit task queue until ctx ends, then stops, letting running
// activities finish.
func Run(ctx context.Context, c client.Client, d Deps) error {
	// The SDK's cache is per process, so it is sized here, before the worker.
	sdkworker.SetStickyWorkflowCacheSize(cmp.Or(d.WorkflowCache, DefaultWorkflowCache))
	w := New(c, d)
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
