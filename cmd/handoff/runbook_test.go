package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/temporalproto"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/replay"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

// deletingMedia deletes the target room while the patient is detached,
// which makes the transfer fail and be compensated.
type deletingMedia struct {
	*testenv.Env
	roomID string
}

func (m deletingMedia) CreateCall(ctx context.Context, id string) error {
	return m.Calls.CreateCall(ctx, id)
}
func (m deletingMedia) Attach(ctx context.Context, c, p string) error {
	return m.Calls.Attach(ctx, c, p)
}
func (m deletingMedia) EndCall(ctx context.Context, id string) error { return m.Calls.EndCall(ctx, id) }
func (m deletingMedia) Detach(ctx context.Context, c, p string) error {
	if err := m.DB.Gorm().Model(&store.Room{}).Where("id = ?", m.roomID).Update("deleted_at", time.Now().UTC()).Error; err != nil {
		return err
	}
	return m.Calls.Detach(ctx, c, p)
}

// The steps of docs/operations.md "A transfer failed", as written there.
func TestRunbookForAFailedTransfer(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(deletingMedia{Env: e, roomID: e.Room("riverside-urgent").ID})
	ctx := context.Background()
	room := e.Room("dr-lee")
	id := uuid.NewString()
	err := workflows.CheckIn(ctx, e.Client, workflows.VisitInput{VisitID: id, ClinicID: room.ClinicID, RoomID: room.ID,
		PatientName: "Pat Runbook", TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC()}, workflows.AskVisit(e.Client, id))
	require.NoError(t, err)
	lee := e.User("dr.lee@riverside.example").ID
	_, err = workflows.Admit(ctx, e.Client, id, uuid.NewString(), workflows.AdmitRequest{ActorID: lee})
	require.NoError(t, err)
	_, err = workflows.Transfer(ctx, e.Client, id, uuid.NewString(), workflows.TransferRequest{ActorID: lee, TargetRoomID: e.Room("riverside-urgent").ID})
	require.Error(t, err)

	// 1. Find it.
	code, out, stderr := runHandoff(t, []string{"HANDOFF_DB=" + e.DSN, "HANDOFF_DATA_KEYS=" + testdb.DataKeys}, "visits", "--failed", "--since", "1h")
	require.Zero(t, code, stderr)
	require.Contains(t, out, workflows.VisitWorkflowID(id))
	require.Contains(t, out, "the target room no longer exists")
	require.NotContains(t, out, "Pat Runbook")

	// 2. Replay it from the server, and from an exported file.
	env := []string{"HANDOFF_CODEC_KEYS=" + testenv.CodecKeys, "HANDOFF_TEMPORAL_ADDRESS=" + e.Server.Address()}
	code, out, stderr = runHandoff(t, env, "replay", "--workflow-id", workflows.VisitWorkflowID(id))
	require.Zero(t, code, stderr)
	require.True(t, strings.HasPrefix(out, "OK: "), out)

	h, err := replay.Fetch(ctx, e.Client, workflows.VisitWorkflowID(id), "")
	require.NoError(t, err)
	raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "visit.json")
	require.NoError(t, os.WriteFile(file, raw, 0o600))
	code, out, stderr = runHandoff(t, env, "replay", file)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "OK: ")

	// The runbook's promise: the patient is already back, waiting.
	require.Equal(t, store.VisitWaiting, e.Visit(id).State)
	require.Equal(t, room.ID, e.Visit(id).RoomID)

	// 3. Re-drive: reset to the last completed workflow task. The visit goes
	// on in a new run, in the same room, and still takes transfers.
	code, out, stderr = runHandoff(t, env, "reset", "--workflow-id", workflows.VisitWorkflowID(id), "--reason", "runbook test")
	require.Zero(t, code, stderr)
	require.Contains(t, out, "new run")
	st, err := workflows.Status(ctx, e.Client, id)
	require.NoError(t, err)
	require.Equal(t, room.ID, st.RoomID)
	require.Equal(t, store.VisitWaiting, st.State)
	_, err = workflows.Transfer(ctx, e.Client, id, uuid.NewString(), workflows.TransferRequest{ActorID: lee, TargetRoomID: e.Room("dr-patel").ID})
	require.NoError(t, err)
	require.Equal(t, e.Room("dr-patel").ID, e.Visit(id).RoomID)
	require.Equal(t, 1, e.Visit(id).Transfers, "the reset re-ran nothing twice")
}
