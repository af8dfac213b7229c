package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/store"
)

// `handoff media --db` registers the node in the app database (PostgreSQL)
// with its URLs and capacity, heartbeats it, and takes it out again when
// it stops on SIGTERM.
func TestMediaNodeRegistersItselfAndLeavesOnSIGTERM(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	db := testdb.Open(t, dsn)
	ports := freePorts(t, 2)
	cmd := exec.Command(binary, "media", "--listen", "127.0.0.1:"+strconv.Itoa(ports[0]), "--internal-listen", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--ice-udp-port", "0", "--ice-tcp-port", "0", "--db", dsn, "--node-id", "media-test-1",
		"--public-url", "ws://127.0.0.1:"+strconv.Itoa(ports[0])+"/ws", "--control-url", "http://127.0.0.1:"+strconv.Itoa(ports[1]), "--capacity", "250")
	cmd.Env = append(os.Environ(), "HANDOFF_MEDIA_SECRET=registry-test-secret-0123456789abcdef", "HANDOFF_MEDIA_CONTROL_TOKEN=registry-test-control-token-0123456789")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var first store.MediaNode
	require.Eventually(t, func() bool {
		n, err := db.With(t.Context()).MediaNodes.Get("media-test-1")
		first = n
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "the node registers itself")
	require.Equal(t, "http://127.0.0.1:"+strconv.Itoa(ports[1]), first.ControlURL)
	require.Equal(t, 250, first.Capacity)
	require.False(t, first.Draining)
	require.Eventually(t, func() bool {
		n, err := db.With(t.Context()).MediaNodes.Get("media-test-1")
		return err == nil && n.HeartbeatAt.After(first.HeartbeatAt)
	}, 10*time.Second, 100*time.Millisecond, "the node heartbeats")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the node exits cleanly on SIGTERM")
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not exit within 20 s of SIGTERM")
	}
	_, err := db.With(t.Context()).MediaNodes.Get("media-test-1")
	require.True(t, errors.Is(err, store.ErrNotFound), "a node that stopped is still registered: %v", err)
}
