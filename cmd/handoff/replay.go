package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/replay"
)

const replaySummary = "replay a visit's history (FILE, or --workflow-id from the server) against this build; exits 1 unless it reproduces"

// errReplayFailed makes the exit status non-zero after the verdict is printed.
var errReplayFailed = errors.New("the history does not replay on this build")

func runReplay(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("replay", replaySummary+"\n\n  handoff replay visit.json          (from `temporal workflow show --workflow-id visit/… --output json`)\n  handoff replay --workflow-id visit/…", stdout)
	var tc config.Temporal
	tc.Register(fs)
	workflowID := fs.String("workflow-id", "", "fetch this workflow's history from the server instead of reading a file")
	runID := fs.String("run-id", "", "with --workflow-id: the run to replay (default: the latest)")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (file == "") == (*workflowID == "") {
		return errors.New("give either a history FILE or --workflow-id")
	}
	if tc.CodecKeys == "" {
		return errors.New("histories are encrypted: set --codec-keys or HANDOFF_CODEC_KEYS to the keys that sealed them")
	}
	keys, err := codec.ParseKeys(tc.CodecKeys)
	if err != nil {
		return err
	}
	r := replay.NewReplayer(keys)
	var v replay.Verdict
	if file != "" {
		if v, err = replay.File(r, file); err != nil {
			return err
		}
	} else {
		b, err := connect(ctx, backendOptions{temporal: &tc}, logger)
		if err != nil {
			return err
		}
		defer b.Close()
		h, err := replay.Fetch(ctx, b.temporal, *workflowID, *runID)
		if err != nil {
			return err
		}
		v = replay.History(r, h)
	}
	fmt.Fprintln(stdout, v.String())
	if !v.OK() {
		return errReplayFailed
	}
	return nil
}
