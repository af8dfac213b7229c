package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/replay"
	"github.com/handoff-telehealth/handoff/workflows"
)

func historyPath(name string) string {
	return filepath.Join(replay.HistoryDir("../.."), name+".json")
}

func TestReplayOfRecordedHistoriesIsOK(t *testing.T) {
	code, out, stderr := runHandoff(t, []string{"HANDOFF_CODEC_KEYS=" + testenv.CodecKeys}, "replay", historyPath("one-to-one-transfer"))
	require.Zero(t, code, stderr)
	require.True(t, strings.HasPrefix(out, "OK: "), out)
}

func TestReplayCatchesANonDeterministicChange(t *testing.T) {
	changed := filepath.Join(t.TempDir(), "handoff-changed")
	build := exec.Command("go", "build", "-tags", "handoff_nde_probe", "-o", changed, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	cmd := exec.Command(changed, "replay", historyPath("waiting-room-transfer"), "--codec-keys", testenv.CodecKeys)
	combined, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, string(combined))
	require.Equal(t, 1, exitErr.ExitCode())
	require.Contains(t, string(combined), "NON-DETERMINISM at event")
}

func TestReplayExplainsWhatItNeeds(t *testing.T) {
	code, _, stderr := runHandoff(t, nil, "replay", historyPath("one-to-one-transfer"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "HANDOFF_CODEC_KEYS")
	code, _, stderr = runHandoff(t, []string{"HANDOFF_CODEC_KEYS=" + testenv.CodecKeys}, "replay")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--workflow-id")
	code, _, stderr = runHandoff(t, []string{"HANDOFF_CODEC_KEYS=" + testenv.CodecKeys}, "replay", "no-such-file.json")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no-such-file.json")
}

func TestReplayFetchesAHistoryFromTheServer(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	room := e.Room("dr-lee")
	id := uuid.NewString()
	ctx := context.Background()
	err := workflows.CheckIn(ctx, e.Client, workflows.VisitInput{VisitID: id, ClinicID: room.ClinicID, RoomID: room.ID,
		PatientName: "Pat Server", TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC()}, workflows.AskVisit(e.Client, id))
	require.NoError(t, err)
	_, err = workflows.Transfer(ctx, e.Client, id, uuid.NewString(), workflows.TransferRequest{
		ActorID: e.User("dr.lee@riverside.example").ID, TargetRoomID: e.Room("dr-patel").ID})
	require.NoError(t, err)

	code, out, stderr := runHandoff(t, []string{"HANDOFF_CODEC_KEYS=" + testenv.CodecKeys},
		"replay", "--workflow-id", workflows.VisitWorkflowID(id), "--temporal-address", e.Server.Address())
	require.Zero(t, code, stderr)
	require.Contains(t, out, "OK: ")
}
