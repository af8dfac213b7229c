// Package bench measures Handoff against its floors, in the same process and
// on the same Temporal server, so that a noisy machine moves both alike.
package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// FloorWorkflow is the floor of every visit operation: a workflow whose
// update handler returns at once.
func FloorWorkflow(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandler(ctx, "noop", func(ctx workflow.Context) error { return nil }); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// Stats summarizes one series of latencies.
type Stats struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// Summarize sorts the samples and reads off the percentiles.
func Summarize(samples []time.Duration) Stats {
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Stats{N: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

func (s Stats) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// FloorUpdates times n bare update round trips, spread over a few running
// floor workflows.
func FloorUpdates(ctx context.Context, c client.Client, taskQueue string, n int) ([]time.Duration, error) {
	const workflows = 10
	ids := make([]string, workflows)
	for i := range ids {
		ids[i] = fmt.Sprintf("floor-%d-%d", time.Now().UnixNano(), i)
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: taskQueue}, FloorWorkflow); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, id := range ids {
			_ = c.TerminateWorkflow(context.Background(), id, "", "benchmark done")
		}
	}()
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: ids[i%workflows], UpdateName: "noop", WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// FloorLoop times n bare update round trips sent open loop at rate per
// second (the same schedule as the load it is the floor of), spread over a
// few floor workflows.
func FloorLoop(ctx context.Context, c client.Client, taskQueue string, rate float64, n int) (Stats, error) {
	const workflows = 10
	ids := make([]string, workflows)
	for i := range ids {
		ids[i] = fmt.Sprintf("floor-%d-%d", time.Now().UnixNano(), i)
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: taskQueue}, FloorWorkflow); err != nil {
			return Stats{}, err
		}
	}
	defer func() {
		for _, id := range ids {
			_ = c.TerminateWorkflow(context.Background(), id, "", "benchmark done")
		}
	}()
	var (
		mu      sync.Mutex
		out     []time.Duration
		lastErr error
	)
	OpenLoop(ctx, rate, n, func(i int, scheduled time.Time) {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: ids[i%workflows], UpdateName: "noop", WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			lastErr = err
			return
		}
		out = append(out, time.Since(scheduled))
	})
	return Summarize(out), lastErr
}

// Median is each percentile's median over runs.
func Median(runs []Stats) Stats {
	field := func(f func(Stats) time.Duration) time.Duration {
		v := make([]time.Duration, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	if len(runs) == 0 {
		return Stats{}
	}
	return Stats{N: runs[0].N,
		P50: field(func(s Stats) time.Duration { return s.P50 }), P90: field(func(s Stats) time.Duration { return s.P90 }),
		P99: field(func(s Stats) time.Duration { return s.P99 }), Max: field(func(s Stats) time.Duration { return s.Max })}
}
