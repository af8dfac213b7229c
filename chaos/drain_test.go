package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

// A worker told to stop (SIGTERM, as a deploy does) finishes the step it is
// running before it exits: the transfer does not wait for a retry.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	e := testenv.Start(t)
	mediaSrv, err := media.NewServer(testenv.MediaSecret, "drain-control-token-0123456789abcdef")
	require.NoError(t, err)
	var detaching atomic.Bool
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && filepath.Dir(r.URL.Path) != "/control/calls" { // a detach
			detaching.Store(true)
			time.Sleep(2 * time.Second) // the step is in flight when SIGTERM arrives
		}
		mediaSrv.Handler().ServeHTTP(w, r)
	})
	hs := httptest.NewServer(slow)
	t.Cleanup(hs.Close)

	bin := buildHandoff(t)
	cmd := exec.Command(bin, "worker")
	cmd.Env = append(os.Environ(), fmt.Sprintf("HANDOFF_LISTEN=127.0.0.1:%d", freePort(t)),
		"HANDOFF_DB="+e.DSN, "HANDOFF_DATA_KEYS="+testdb.DataKeys, "HANDOFF_TEMPORAL_ADDRESS="+e.Server.Address(), "HANDOFF_CODEC_KEYS="+testenv.CodecKeys,
		"HANDOFF_MEDIA_URL="+hs.URL, "HANDOFF_MEDIA_CONTROL_TOKEN=drain-control-token-0123456789abcdef")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	ctx := context.Background()
	room := e.Room("dr-lee")
	id := uuid.NewString()
	err = workflows.CheckIn(ctx, e.Client, workflows.VisitInput{VisitID: id, ClinicID: room.ClinicID, RoomID: room.ID,
		PatientName: "Pat Drain", TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC()}, workflows.AskVisit(e.Client, id))
	require.NoError(t, err)
	lee := e.User("dr.lee@riverside.example").ID
	_, err = workflows.Admit(ctx, e.Client, id, uuid.NewString(), workflows.AdmitRequest{ActorID: lee})
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := workflows.Transfer(ctx, e.Client, id, uuid.NewString(), workflows.TransferRequest{ActorID: lee, TargetRoomID: e.Room("dr-patel").ID})
		done <- err
	}()
	require.Eventually(t, detaching.Load, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "the worker exits cleanly after draining")
	case <-time.After(40 * time.Second):
		t.Fatal("the worker did not exit after SIGTERM")
	}
	// The detach step finished on the stopping worker; a new worker only has
	// the last step left and no activity had to time out and retry.
	cmd2 := exec.Command(bin, "worker")
	cmd2.Env = cmd.Env
	require.NoError(t, cmd2.Start())
	t.Cleanup(func() { _ = cmd2.Process.Kill() })
	require.NoError(t, <-done)
	require.Equal(t, store.VisitWaiting, e.Visit(id).State)
	require.Equal(t, e.Room("dr-patel").ID, e.Visit(id).RoomID)
	h := history(t, e, id)
	for _, ev := range h {
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			require.EqualValues(t, 1, a.GetAttempt(), "no step was cut off and retried")
		}
	}
}
