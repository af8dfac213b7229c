package media

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// TURN configures the TURN server a media node can run for participants
// whose networks let nothing else through: UDP and TCP on one port (3478 by
// convention) and, given a certificate, TURN over TLS (443 gets through
// networks that allow only HTTPS). Credentials are the TURN REST API scheme
// (see ICEServers), so an external coturn with use-auth-secret and the same
// secret is interchangeable with it.
type TURN struct {
	Port              int    // UDP and TCP (0: no TURN server)
	TLSPort           int    // TURN over TLS (0: none)
	CertFile, KeyFile string // for TLSPort
	Secret            string // shared with the API, which mints credentials
	RelayIP           string // address relays are announced at: the node's public IP
	Realm             string
}

// TURNServer is a running embedded TURN server.
type TURNServer struct {
	server *turn.Server
	Addr   string // host:port of its UDP/TCP listener
}

// Close stops the server and its relays.
func (t *TURNServer) Close() error {
	if t == nil || t.server == nil {
		return nil
	}
	return t.server.Close()
}

// StartTURN runs the embedded TURN server. Its relays may reach only this
// node's own addresses (allowed): a TURN server open to any peer would let
// anyone with a credential reach the node's private network.
func StartTURN(cfg TURN, allowed []net.IP) (*TURNServer, error) {
	if cfg.Port == 0 && cfg.TLSPort == 0 {
		return nil, nil
	}
	if cfg.Secret == "" {
		return nil, errors.New("the TURN server needs a shared secret (--turn-secret / HANDOFF_TURN_SECRET)")
	}
	relayIP := net.ParseIP(cfg.RelayIP)
	if relayIP == nil {
		return nil, fmt.Errorf("the TURN server needs the node's public IP to announce relays at (--public-ip); %q is not one", cfg.RelayIP)
	}
	if cfg.Realm == "" {
		cfg.Realm = "handoff"
	}
	relay := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: "0.0.0.0"}
	}
	permit := permitOnly(append(allowed, relayIP))
	sc := turn.ServerConfig{
		Realm: cfg.Realm,
		// Quiet logs: pion's handler logs rejected usernames at error level.
		LoggerFactory: quietLogs{},
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(cfg.Secret, quietLogs{}.NewLogger("turn")),
	}
	var closers []func() error
	fail := func(err error) (*TURNServer, error) {
		for _, c := range closers {
			_ = c()
		}
		return nil, err
	}
	ts := &TURNServer{}
	if cfg.Port > 0 {
		addr := net.JoinHostPort("", strconv.Itoa(cfg.Port))
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return fail(fmt.Errorf("TURN UDP port %d: %w", cfg.Port, err))
		}
		closers = append(closers, udp.Close)
		tcp, err := net.Listen("tcp4", addr)
		if err != nil {
			return fail(fmt.Errorf("TURN TCP port %d: %w", cfg.Port, err))
		}
		closers = append(closers, tcp.Close)
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: udp, RelayAddressGenerator: relay(), PermissionHandler: permit})
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: tcp, RelayAddressGenerator: relay(), PermissionHandler: permit})
		ts.Addr = udp.LocalAddr().String()
	}
	if cfg.TLSPort > 0 {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return fail(fmt.Errorf("TURN over TLS: certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err))
		}
		l, err := tls.Listen("tcp4", net.JoinHostPort("", strconv.Itoa(cfg.TLSPort)), &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
		if err != nil {
			return fail(fmt.Errorf("TURN TLS port %d: %w", cfg.TLSPort, err))
		}
		closers = append(closers, l.Close)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: l, RelayAddressGenerator: relay(), PermissionHandler: permit})
	}
	srv, err := turn.NewServer(sc)
	if err != nil {
		return fail(err)
	}
	ts.server = srv
	return ts, nil
}

// permitOnly lets relays send to the given addresses only.
func permitOnly(ips []net.IP) turn.PermissionHandler {
	return func(_ net.Addr, peer net.IP) bool {
		for _, ip := range ips {
			if ip.Equal(peer) {
				return true
			}
		}
		return false
	}
}

// LocalIPs are the addresses of this host's interfaces.
func LocalIPs() []net.IP {
	addrs, _ := net.InterfaceAddrs()
	out := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out
}

// ICEServers are the STUN and TURN servers a participant's browser is
// given, with TURN credentials minted for it alone.
type ICEServers struct {
	STUN       []string      // stun:host:port
	TURN       []string      // turn:host:3478?transport=udp, turns:host:443?transport=tcp, …
	TURNSecret string        // the TURN server's use-auth-secret
	TTL        time.Duration // how long a credential lasts
}

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// For mints the servers for participant: TURN REST credentials,
// username "<expiry>:<participant>" and password
// base64(HMAC-SHA1(secret, username)), which coturn's use-auth-secret and
// the embedded server both verify.
func (s ICEServers) For(participant string) []ICEServer {
	out := []ICEServer{}
	if len(s.STUN) > 0 {
		out = append(out, ICEServer{URLs: s.STUN})
	}
	if len(s.TURN) > 0 && s.TURNSecret != "" {
		ttl := s.TTL
		if ttl <= 0 {
			ttl = 12 * time.Hour // a long visit keeps its relay; the page asks again on reconnect
		}
		user, pass, err := turn.GenerateLongTermTURNRESTCredentials(s.TURNSecret, participant, ttl)
		if err == nil {
			out = append(out, ICEServer{URLs: s.TURN, Username: user, Credential: pass})
		}
	}
	return out
}

// quietLogs is a pion logger factory that writes nothing: TURN's logs carry
// usernames, and a credential is not a log line.
type quietLogs struct{}

func (quietLogs) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Trace(string)          {}
func (quietLogger) Tracef(string, ...any) {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(string)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(string)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(string)          {}
func (quietLogger) Errorf(string, ...any) {}
