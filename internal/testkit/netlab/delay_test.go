package netlab_test

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/netlab"
)

// oneWay sends n timestamped datagrams from one host to another and returns
// the shortest and longest time they took (both ends read one clock).
func oneWay(t *testing.T, from, to, toAddr string, n int) (lo, hi time.Duration) {
	t.Helper()
	var rx, tx net.PacketConn
	require.NoError(t, netlab.InNamespace(to, func() (err error) { rx, err = net.ListenPacket("udp4", toAddr+":9000"); return err }))
	defer rx.Close()
	require.NoError(t, netlab.InNamespace(from, func() (err error) { tx, err = net.ListenPacket("udp4", ":0"); return err }))
	defer tx.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(toAddr), Port: 9000}
	lo = time.Hour
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
		_, err := tx.WriteTo(buf[:8], dst)
		require.NoError(t, err)
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, _, err = rx.ReadFrom(buf)
		require.NoError(t, err, "datagram %d never arrived", i)
		took := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(buf))))
		lo, hi = min(lo, took), max(hi, took)
	}
	return lo, hi
}

// What the router forwards to a delayed host arrives the delay later, no
// sooner and not much later; the other direction, and other hosts, are not
// delayed.
func TestDelayDownlinkDelaysWhatTheHostReceives(t *testing.T) {
	lab := netlab.New(t)
	a := lab.Host("a", "198.18.1")
	b := lab.Host("b", "198.18.2")
	lo, hi := oneWay(t, a, b, "198.18.2.1", 20)
	require.Less(t, hi, 20*time.Millisecond, "undelayed, a datagram crosses the router at once (%v–%v)", lo, hi)

	lab.DelayDownlink(b, 80)
	lo, hi = oneWay(t, a, b, "198.18.2.1", 20)
	require.GreaterOrEqual(t, lo, 80*time.Millisecond, "to the delayed host: at least 80 ms")
	require.Less(t, hi, 110*time.Millisecond, "and not much more (%v–%v)", lo, hi)
	t.Logf("a → b with 80 ms on b's downlink: %v–%v", lo, hi)

	lo, hi = oneWay(t, b, a, "198.18.1.1", 20)
	require.Less(t, hi, 20*time.Millisecond, "b's uplink is not delayed (%v–%v)", lo, hi)

	// With a token bucket as well: still delivered, after the delay.
	lab.LimitDownlink(b, 300, 100)
	lo, hi = oneWay(t, a, b, "198.18.2.1", 10)
	require.GreaterOrEqual(t, lo, 80*time.Millisecond, "the limit applies after the delay (%v–%v)", lo, hi)
}
