// Package replay runs recorded visit histories against the current workflow
// code, the way an engineer checks that a change is safe for the visits
// already running, or reproduces a failed transfer.
package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/workflows"
)

// NewReplayer replays visit histories with the same codec the workers use.
func NewReplayer(c *codec.Codec) sdkworker.WorkflowReplayer {
	r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{
		DataConverter: c.DataConverter(), FailureConverter: c.FailureConverter(),
	})
	if err != nil {
		panic(err) // only fails on invalid options, which are fixed here
	}
	r.RegisterWorkflow(workflows.Visit)
	return r
}

// HistoryDir is where the recorded histories of every path of a visit live
// (workflows/testdata/histories), relative to the module root.
func HistoryDir(moduleRoot string) string {
	return filepath.Join(moduleRoot, "workflows", "testdata", "histories")
}

// Verdict is the outcome of one replay.
type Verdict struct {
	// Events is the length of the replayed history.
	Events int
	// Err is nil when the code reproduces the history.
	Err error
	// Nondeterministic is true when the code takes another path than the one
	// recorded, as opposed to failing for another reason.
	Nondeterministic bool
	// EventID is the history event the replay stopped at, when known.
	EventID int64
}

// OK reports whether the history replayed cleanly.
func (v Verdict) OK() bool { return v.Err == nil }

// String is the line `handoff replay` prints.
func (v Verdict) String() string {
	switch {
	case v.OK():
		return fmt.Sprintf("OK: %d events replayed, the current code reproduces the history", v.Events)
	case v.Nondeterministic && v.EventID > 0:
		return fmt.Sprintf("NON-DETERMINISM at event %d of %d: %v", v.EventID, v.Events, v.Err)
	case v.Nondeterministic:
		return fmt.Sprintf("NON-DETERMINISM (of %d events): %v", v.Events, v.Err)
	case v.EventID > 0:
		return fmt.Sprintf("FAILED at event %d of %d: %v", v.EventID, v.Events, v.Err)
	default:
		return fmt.Sprintf("FAILED (of %d events): %v", v.Events, v.Err)
	}
}

// nondeterminism matches the SDK's wording for a history the code no longer
// produces ("nondeterministic workflow definition", "[TMPRL1100]").
var (
	nondeterminism = regexp.MustCompile(`(?i)nondeterministic|non-deterministic|TMPRL1100`)
	eventIDPattern = regexp.MustCompile(`(?i)event ?id[:= ]+(\d+)|EventID[:=](\d+)`)
)

// History replays h with r.
func History(r sdkworker.WorkflowReplayer, h *historypb.History) Verdict {
	err := r.ReplayWorkflowHistory(nil, h)
	return verdict(len(h.GetEvents()), err)
}

func verdict(events int, err error) Verdict {
	v := Verdict{Events: events, Err: err}
	if err == nil {
		return v
	}
	msg := err.Error()
	v.Nondeterministic = nondeterminism.MatchString(msg)
	if m := eventIDPattern.FindStringSubmatch(msg); m != nil {
		for _, g := range m[1:] {
			if id, convErr := strconv.ParseInt(g, 10, 64); convErr == nil {
				v.EventID = id
				break
			}
		}
	}
	return v
}

// File replays a history written by `temporal workflow show --output json`.
func File(r sdkworker.WorkflowReplayer, path string) (Verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return Verdict{}, err
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		return Verdict{}, fmt.Errorf("%s is not a workflow history in JSON: %w", path, err)
	}
	if len(h.GetEvents()) == 0 {
		return Verdict{}, errors.New(path + " holds no events")
	}
	return History(r, h), nil
}

// Fetch reads a workflow's history from the server.
func Fetch(ctx context.Context, c client.Client, workflowID, runID string) (*historypb.History, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("fetching the history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h, nil
}
