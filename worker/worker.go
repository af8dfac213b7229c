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

// DefaultWorkflowCache is how many visits a worker process keeps in memory
// by default (the SDK's own default is 10,000). A cached visit holds its
// workflow's state and two goroutines, ≈120 KiB with what the embedded
// server caches of it (`handoff dev` sizes the server's cache the same);
// a visit beyond it is rebuilt from its history (a waiting visit's is a
// dozen events) when something next happens to it. Measured with 3,000
// waiting: ≈88 KiB per waiting visit beyond the cache against ≈199 KiB
// cached, and a transfer's CPU unchanged within the noise (BENCHMARKS.md).
const DefaultWorkflowCache = 1000

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

// SizeCache sets how many visits the process's workflow cache holds (0:
// DefaultWorkflowCache). The SDK makes one cache per process, when the first
// worker of the process starts, and ignores the size from then on: call it
// before that, also before an embedded Temporal server starts its own
// workers.
func SizeCache(n int) {
	sdkworker.SetStickyWorkflowCacheSize(cmp.Or(n, DefaultWorkflowCache))
}

// drainTimeout bounds a graceful stop; steps take milliseconds, but a
// dependency may be slow to answer.
const drainTimeout = 30 * time.Second

// Run polls the visit task queue until ctx ends, then stops, letting running
// activities finish.
func Run(ctx context.Context, c client.Client, d Deps) error {
	SizeCache(d.WorkflowCache)
	w := New(c, d)
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
