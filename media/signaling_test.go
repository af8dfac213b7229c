package media

import (
	"encoding/json"
	"net"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
)

// rawSession opens a signaling socket with no WebRTC behind it.
func (n *node) rawSession(t *testing.T, id string, dialer *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if dialer == nil {
		dialer = websocket.DefaultDialer
	}
	ws, _, err := dialer.Dial(n.url+"?token="+n.sfu.Tokens().Mint(id, "", time.Minute), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func readUntil(t *testing.T, ws *websocket.Conn, within time.Duration, want string) []message {
	t.Helper()
	var seen []message
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		var m message
		_, raw, err := ws.ReadMessage()
		require.NoError(t, err, "waiting for %q, saw %v", want, seen)
		require.NoError(t, json.Unmarshal(raw, &m))
		seen = append(seen, m)
		if m.Type == want {
			return seen
		}
	}
}

func TestNewestSessionOfAParticipantWins(t *testing.T) {
	n := newNode(t)
	doctor, first := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, first)
	doctor.ReceivesFrom(t, first)

	// The patient reloads before the old socket died: the new page takes over.
	second := n.connect(t, "visit:1", 'Q')
	var told string
	for m := range first.Events { // closes when the old session ends
		if m.Type == "replaced" {
			told = m.Message
		}
	}
	require.Equal(t, replacedMessage, told, "the old page is told why it was closed")
	n.join(second, "call-1")
	doctor.ReceivesFrom(t, second)
	second.ReceivesFrom(t, doctor)
	second.NoErrors(t)
	require.Equal(t, int64(1), n.sfu.Metrics.Replaced.Load())
}

func TestAJoinBeforeItsAttachIsHeldAndHonoured(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor)
	// The page heard of its admit before the attach reached the node.
	n.join(patient, "call-1")
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, n.sfu.Attach(t.Context(), "call-1", patient.ID))
	doctor.ReceivesFrom(t, patient)
	patient.ReceivesFrom(t, doctor)
	patient.NoErrors(t)
}

func TestCandidatesNeverPrecedeTheirOffer(t *testing.T) {
	n := newNode(t)
	for i := 0; i < 20; i++ {
		ws := n.rawSession(t, "visit:raw"+string(rune('a'+i)), nil)
		seen := readUntil(t, ws, 5*time.Second, "offer")
		for _, m := range seen {
			require.NotEqual(t, "candidate", m.Type, "session %d: no candidate before the offer it belongs to", i)
		}
	}
}

func TestASilentClientIsDisconnectedWithinThreeKeepalives(t *testing.T) {
	n := newNode(t) // keepalive 1 s
	ws := n.rawSession(t, "visit:silent", nil)
	start := time.Now()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	pings := 0
	for {
		var m message
		if err := ws.ReadJSON(&m); err != nil {
			break // closed by the node
		}
		if m.Type == "ping" {
			pings++ // never answered
		}
	}
	took := time.Since(start)
	require.GreaterOrEqual(t, pings, 2, "the node pings")
	require.Less(t, took, 5*time.Second, "a client that answers no ping is dropped after 3 s, not ICE's 30")

	// One that answers stays.
	ws2 := n.rawSession(t, "visit:alive", nil)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		var m message
		_ = ws2.SetReadDeadline(time.Now().Add(3 * time.Second))
		require.NoError(t, ws2.ReadJSON(&m), "a client answering pings keeps its session")
		if m.Type == "ping" {
			require.NoError(t, ws2.WriteJSON(message{Type: "pong"}))
		}
	}
}

func TestAnICERestartKeepsTheCallOnTheSameSession(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	doctor.ReceivesFrom(t, patient)
	ufrag := func() string {
		sd := patient.PC.CurrentRemoteDescription()
		for _, line := range strings.Split(sd.SDP, "\n") {
			if strings.HasPrefix(line, "a=ice-ufrag:") {
				return strings.TrimSpace(line)
			}
		}
		return ""
	}
	before := ufrag()
	patient.Send(mediatest.Message{Type: "restart"})
	require.Eventually(t, func() bool { return ufrag() != before }, 5*time.Second, 20*time.Millisecond, "new ICE credentials")
	base := doctor.Total('P')
	require.Eventually(t, func() bool { return doctor.Total('P') > base+50 }, 10*time.Second, 20*time.Millisecond, "media goes on")
	require.Equal(t, "call-1", n.sfu.bindingOf(patient.ID), "still in the call")
	patient.NoErrors(t)
}

// A client that stops reading its socket must not stall the node: its
// messages queue, its session closes when the queue is full, and every
// other call's attach and detach completes in its usual time.
func TestASlowClientCannotStallTheNode(t *testing.T) {
	n := newNode(t)
	ctx := t.Context()
	// A tiny receive buffer and no reads: the node's writes to it block.
	dialer := &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		raw, _ := c.(*net.TCPConn).SyscallConn()
		_ = raw.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		return c, nil
	}}
	slow := n.rawSession(t, "visit:slow", dialer)
	require.NoError(t, n.sfu.CreateCall(ctx, "slow-call"))
	require.NoError(t, n.sfu.Attach(ctx, "slow-call", "visit:slow"))
	require.NoError(t, slow.WriteJSON(message{Type: "join", Token: n.sfu.Tokens().Mint("visit:slow", "slow-call", time.Minute)}))
	require.Eventually(t, func() bool { return n.sfu.bindingOf("visit:slow") == "slow-call" }, 5*time.Second, 10*time.Millisecond)

	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "busy-call", doctor, patient)
	doctor.ReceivesFrom(t, patient)

	// Flood the slow client: every detach from its call tells it so.
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for i := 0; i < 3000; i++ {
			_ = n.sfu.Attach(ctx, "slow-call", "visit:ghost")
			_ = n.sfu.Detach(ctx, "slow-call", "visit:ghost")
		}
	}()
	var took []time.Duration
	for i := 0; i < 50; i++ {
		start := time.Now()
		require.NoError(t, n.sfu.Detach(ctx, "busy-call", patient.ID))
		require.NoError(t, n.sfu.Attach(ctx, "busy-call", patient.ID))
		took = append(took, time.Since(start))
		n.join(patient, "busy-call")
		time.Sleep(10 * time.Millisecond)
	}
	<-flooding
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	require.Less(t, took[len(took)-1], 250*time.Millisecond, "the slowest detach+attach of another call (median %v; a write under the lock stalls it 5 s)", took[len(took)/2])
	require.Eventually(t, func() bool { return n.sfu.Metrics.SlowClosed.Load() >= 1 }, 5*time.Second, 10*time.Millisecond, "the client that stopped reading was disconnected")
	doctor.NoErrors(t) // e.g. its session closed under it by a detach racing its answer
	base := doctor.Total('P')
	require.Eventually(t, func() bool { return doctor.Total('P') > base+20 }, 10*time.Second, 20*time.Millisecond, "the other call still carries media")
}
