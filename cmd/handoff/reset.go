package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/replay"
)

const resetSummary = "re-drive a stuck visit: reset its workflow to the last completed workflow task (steps are idempotent)"

// runReset does what `temporal workflow reset --type LastWorkflowTask` does,
// for clusters where the Temporal CLI is not at hand.
func runReset(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("reset", resetSummary, stdout)
	var tc config.Temporal
	tc.Register(fs)
	workflowID := fs.String("workflow-id", "", "the visit's workflow id, visit/<id>")
	reason := fs.String("reason", "", "why (a ticket); recorded in the history")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workflowID == "" || *reason == "" {
		return errors.New("give --workflow-id and --reason")
	}
	b, err := connect(ctx, backendOptions{temporal: &tc}, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	c := b.temporal
	h, err := replay.Fetch(ctx, c, *workflowID, "")
	if err != nil {
		return err
	}
	var last int64
	for _, ev := range h.GetEvents() {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			last = ev.GetEventId()
		}
	}
	if last == 0 {
		return errors.New("no completed workflow task to reset to")
	}
	desc, err := c.DescribeWorkflowExecution(ctx, *workflowID, "")
	if err != nil {
		return err
	}
	resp, err := c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 tc.Namespace,
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: *workflowID, RunId: desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()},
		Reason:                    *reason,
		WorkflowTaskFinishEventId: last,
		RequestId:                 uuid.NewString(),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reset %s to event %d: new run %s\n", *workflowID, last, resp.GetRunId())
	return nil
}
