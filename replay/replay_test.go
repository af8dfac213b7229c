package replay_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/replay"
	"github.com/handoff-telehealth/handoff/workflows"
)

// Every path of a visit has a recorded history; `HANDOFF_RECORD_HISTORIES=1
// go test ./integration` records them again.
var paths = []string{
	"waiting-room-transfer", "one-to-one-transfer", "group-transfer",
	"rejected-transfer", "compensated-transfer", "left-during-transfer", "hold-and-admit-again", "guests",
}

func testCodec(t *testing.T) *codec.Codec {
	c, err := codec.ParseKeys(testenv.CodecKeys)
	require.NoError(t, err)
	return c
}

func historyFile(name string) string {
	return filepath.Join(replay.HistoryDir(".."), name+".json")
}

func TestRecordedHistoriesReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(replay.HistoryDir(".."), "*.json"))
	require.NoError(t, err)
	for _, p := range paths {
		require.Contains(t, files, historyFile(p), "a history of the %s path is recorded", p)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			v, err := replay.File(replay.NewReplayer(testCodec(t)), f)
			require.NoError(t, err)
			require.True(t, v.OK(), v.String())
			require.Greater(t, v.Events, 10)
		})
	}
}

// A workflow that sleeps before doing what the visit did: the commands no
// longer match the history.
func changedVisit(ctx workflow.Context, in workflows.VisitInput) error {
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return err
	}
	return workflows.Visit(ctx, in)
}

func TestANonDeterministicChangeIsCaught(t *testing.T) {
	r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{
		DataConverter: testCodec(t).DataConverter(), FailureConverter: testCodec(t).FailureConverter(),
	})
	require.NoError(t, err)
	r.RegisterWorkflowWithOptions(changedVisit, workflow.RegisterOptions{Name: "Visit"})
	v, err := replay.File(r, historyFile("waiting-room-transfer"))
	require.NoError(t, err)
	require.False(t, v.OK())
	require.True(t, v.Nondeterministic, v.String())
	require.Contains(t, v.String(), "NON-DETERMINISM")
	t.Log(v.String())
}

func TestAWrongKeyCannotReplay(t *testing.T) {
	spec, err := codec.NewKeySpec("test1")
	require.NoError(t, err)
	other, err := codec.ParseKeys(spec)
	require.NoError(t, err)
	v, err := replay.File(replay.NewReplayer(other), historyFile("waiting-room-transfer"))
	require.NoError(t, err)
	require.False(t, v.OK(), "a history sealed with another key does not replay")
}
