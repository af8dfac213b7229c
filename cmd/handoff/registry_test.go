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

	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
)

// startRegisteredNode runs `handoff media --db` as its own process.
func startRegisteredNode(t *testing.T, dsn, id string, extra ...string) (cmd *exec.Cmd, publicURL, controlURL string) {
	ports := freePorts(t, 2)
	publicURL, controlURL = "ws://127.0.0.1:"+strconv.Itoa(ports[0])+"/ws", "http://127.0.0.1:"+strconv.Itoa(ports[1])
	cmd = exec.Command(binary, append([]string{"media", "--listen", "127.0.0.1:" + strconv.Itoa(ports[0]), "--internal-listen", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--ice-udp-port", "0", "--ice-tcp-port", "0", "--db", dsn, "--node-id", id,
		"--public-url", publicURL, "--control-url", controlURL, "--capacity", "250"}, extra...)...)
	cmd.Env = append(os.Environ(), "HANDOFF_MEDIA_SECRET="+registrySecret, "HANDOFF_MEDIA_CONTROL_TOKEN="+registryControlToken)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, publicURL, controlURL
}

const (
	registrySecret       = "registry-test-secret-0123456789abcdef"
	registryControlToken = "registry-test-control-token-0123456789"
)

// exited waits for cmd to exit, within limit.
func exited(t *testing.T, cmd *exec.Cmd, limit time.Duration) time.Duration {
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the node exits cleanly")
	case <-time.After(limit):
		t.Fatalf("the node did not exit within %s", limit)
	}
	return time.Since(start)
}

// A draining node (SIGTERM) takes no new calls, keeps serving its call
// until the drain timeout, then leaves the registry before it tells its
// participants to move, and exits.
func TestADrainingNodeMovesItsCallsAfterTheTimeout(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	db := testdb.Open(t, dsn)
	cmd, publicURL, controlURL := startRegisteredNode(t, dsn, "media-drain-1", "--drain-timeout", "3s")
	waitRegistered(t, db, "media-drain-1")
	control, tokens := media.NewControlClient(controlURL, registryControlToken), media.NewTokens(registrySecret)
	require.NoError(t, control.CreateCall(t.Context(), "call-1"))
	require.NoError(t, control.Attach(t.Context(), "call-1", "user:one"))
	peer := mediatest.Dial(t, publicURL, tokens.Mint("user:one", "", time.Minute), "user:one", 'O')
	peer.Join(tokens.Mint("user:one", "call-1", time.Minute))
	waitEvent(t, peer, "joined", 10*time.Second)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		n, err := db.With(t.Context()).MediaNodes.Get("media-drain-1")
		return err == nil && n.Draining
	}, 2*time.Second, 50*time.Millisecond, "placement is told at once that the node takes no new calls")
	require.NoError(t, control.Attach(t.Context(), "call-1", "user:two"), "the draining node still serves its calls")

	m := waitEvent(t, peer, "media_moving", 10*time.Second)
	_, err := db.With(t.Context()).MediaNodes.Get("media-drain-1")
	require.True(t, errors.Is(err, store.ErrNotFound), "the node left the registry before it moved anyone: %v", err)
	require.NotEmpty(t, m.Message)
	exited(t, cmd, 10*time.Second)
}

// A drain whose calls end before the timeout exits then, not at the timeout.
func TestADrainEndsWhenTheLastCallDoes(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	db := testdb.Open(t, dsn)
	cmd, _, controlURL := startRegisteredNode(t, dsn, "media-drain-2", "--drain-timeout", "60s")
	waitRegistered(t, db, "media-drain-2")
	control := media.NewControlClient(controlURL, registryControlToken)
	require.NoError(t, control.CreateCall(t.Context(), "call-1"))
	require.NoError(t, control.Attach(t.Context(), "call-1", "user:one"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(time.Second)
	require.NoError(t, cmd.Process.Signal(syscall.Signal(0)), "the node waits for its call")
	require.NoError(t, control.EndCall(t.Context(), "call-1"))
	took := exited(t, cmd, 10*time.Second)
	require.Less(t, took, 5*time.Second)
}

// waitRegistered waits for node id's first heartbeat.
func waitRegistered(t *testing.T, db *store.DB, id string) {
	require.Eventually(t, func() bool {
		_, err := db.With(t.Context()).MediaNodes.Get(id)
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "%s registers itself", id)
}

// waitEvent waits for a signaling message of type typ.
func waitEvent(t *testing.T, p *mediatest.Peer, typ string, limit time.Duration) mediatest.Message {
	deadline := time.After(limit)
	for {
		select {
		case m, ok := <-p.Events:
			require.True(t, ok, "the session closed before %q", typ)
			if m.Type == typ {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q within %s", typ, limit)
		}
	}
}

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
