package media

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/handoff-telehealth/handoff/internal/testkit/testcert"

	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/require"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	tc := testcert.New(t)
	return tc.CertFile, tc.KeyFile
}

// allocate asks the TURN server at addr for a relay over conn with the
// credential a page would be given.
func allocate(t *testing.T, conn net.PacketConn, addr string, cred ICEServer) (net.PacketConn, error) {
	t.Helper()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn, Username: cred.Username, Password: cred.Credential, Realm: "handoff", LoggerFactory: quietLogs{}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.NoError(t, c.Listen())
	return c.Allocate()
}

// relaysBothWays sends through the relay to a UDP echo on this host and
// reads the echo back through it.
func relaysBothWays(t *testing.T, relay net.PacketConn) {
	t.Helper()
	echo, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := echo.ReadFrom(buf)
		if err == nil {
			_, _ = echo.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	_, err = relay.WriteTo([]byte("media"), echo.LocalAddr())
	require.NoError(t, err)
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := relay.ReadFrom(buf)
	require.NoError(t, err, "the relay carries packets both ways")
	require.Equal(t, "echo:media", string(buf[:n]))
}

func TestEmbeddedTURNRelaysOverUDPTCPAndTLSWithMintedCredentials(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	port, tlsPort := freePort(t), freePort(t)
	srv, err := StartTURN(TURN{Port: port, TLSPort: tlsPort, CertFile: certFile, KeyFile: keyFile, Secret: "turn-secret", RelayIP: "127.0.0.1"}, LocalIPs())
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	servers := ICEServers{TURN: []string{"turn:127.0.0.1:" + strconv.Itoa(port)}, TURNSecret: "turn-secret"}
	cred := servers.For("visit:1")[0]
	require.Regexp(t, `^\d+:visit:1$`, cred.Username, "TURN REST username: <expiry>:<participant>")

	t.Run("udp", func(t *testing.T) {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer conn.Close()
		relay, err := allocate(t, conn, addr, cred)
		require.NoError(t, err)
		relaysBothWays(t, relay)
	})
	t.Run("tcp on the same port", func(t *testing.T) {
		c, err := net.Dial("tcp4", addr)
		require.NoError(t, err)
		defer c.Close()
		relay, err := allocate(t, turn.NewSTUNConn(c), addr, cred)
		require.NoError(t, err)
		relaysBothWays(t, relay)
	})
	t.Run("tls", func(t *testing.T) {
		tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		pool := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(certFile)
		pool.AppendCertsFromPEM(pemBytes)
		c, err := tls.Dial("tcp4", tlsAddr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		require.NoError(t, err, "a real TLS handshake with the configured certificate")
		defer c.Close()
		relay, err := allocate(t, turn.NewSTUNConn(c), tlsAddr, cred)
		require.NoError(t, err)
		relaysBothWays(t, relay)
	})
	t.Run("refused: another secret, an expired credential", func(t *testing.T) {
		user, pass, err := turn.GenerateLongTermTURNRESTCredentials("turn-secret", "visit:1", -time.Minute)
		require.NoError(t, err)
		for name, bad := range map[string]ICEServer{
			"wrong secret": ICEServers{TURN: servers.TURN, TURNSecret: "guess"}.For("visit:1")[0],
			"expired":      {Username: user, Credential: pass},
		} {
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			require.NoError(t, err)
			_, err = allocate(t, conn, addr, bad)
			require.Error(t, err, name)
			conn.Close()
		}
	})
}

func TestTURNRelaysOnlyToTheNodesOwnAddresses(t *testing.T) {
	permit := permitOnly([]net.IP{net.ParseIP("198.18.1.1"), net.IPv4(127, 0, 0, 1)})
	require.True(t, permit(nil, net.ParseIP("198.18.1.1")))
	require.True(t, permit(nil, net.ParseIP("127.0.0.1")))
	require.False(t, permit(nil, net.ParseIP("10.0.0.5")), "not into the node's private network")
	require.False(t, permit(nil, net.ParseIP("169.254.169.254")), "not to a cloud metadata service")
}

func TestTURNNeedsASecretAndAPublicIP(t *testing.T) {
	_, err := StartTURN(TURN{Port: freePort(t), RelayIP: "127.0.0.1"}, nil)
	require.ErrorContains(t, err, "shared secret")
	_, err = StartTURN(TURN{Port: freePort(t), Secret: "s", RelayIP: "not-an-ip"}, nil)
	require.ErrorContains(t, err, "public IP")
	srv, err := StartTURN(TURN{}, nil)
	require.NoError(t, err)
	require.Nil(t, srv, "no port, no server")
}
