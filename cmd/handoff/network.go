package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/media"
)

// nodeNetwork are a media node's network settings, shared by `media` and
// `dev` (with other defaults: dev on one machine needs none of them).
type nodeNetwork struct {
	publicIPs         string
	udpPort, tcpPort  int
	turnPort, tlsPort int
	turnCert, turnKey string
	turnSecret        string
	loopback          bool // also announce 127.0.0.1 (dev on one machine)
}

// nodeDefaults are the ports a production node listens on by default.
type nodeDefaults struct{ udp, tcp, turn int }

func (n *nodeNetwork) register(fs *config.FlagSet, def nodeDefaults) {
	fs.StringVar(&n.publicIPs, "public-ip", "", "public IP(s) announced for ICE and TURN relays, comma-separated (\"ip\" or \"public/private\"): set it behind NAT (cloud VMs, Docker, Kubernetes)")
	fs.IntVar(&n.udpPort, "ice-udp-port", def.udp, "one UDP port for all ICE traffic (0: an ephemeral port per participant)")
	fs.IntVar(&n.tcpPort, "ice-tcp-port", def.tcp, "TCP port for ICE-TCP, for networks that block UDP (0: off)")
	fs.IntVar(&n.turnPort, "turn-port", def.turn, "UDP and TCP port of the embedded TURN server; it runs when --turn-secret is set (0: off)")
	fs.IntVar(&n.tlsPort, "turn-tls-port", 0, "TURN over TLS port (e.g. 443), needs --turn-cert and --turn-key (0: off)")
	fs.StringVar(&n.turnCert, "turn-cert", "", "certificate file (PEM) for TURN over TLS")
	fs.StringVar(&n.turnKey, "turn-key", "", "key file (PEM) for TURN over TLS")
	fs.StringVar(&n.turnSecret, "turn-secret", "", "TURN REST shared secret (coturn's static-auth-secret); the API mints credentials with the same")
}

func (n nodeNetwork) network() (media.Network, error) {
	ips, err := media.ParsePublicIPs(n.publicIPs)
	if err != nil {
		return media.Network{}, fmt.Errorf("--public-ip / %s: %w", config.EnvName("public-ip"), err)
	}
	for name, p := range map[string]int{"ice-udp-port": n.udpPort, "ice-tcp-port": n.tcpPort, "turn-port": n.turnPort, "turn-tls-port": n.tlsPort} {
		if p < 0 || p > 65535 {
			return media.Network{}, fmt.Errorf("--%s / %s: %d is not a port", name, config.EnvName(name), p)
		}
	}
	return media.Network{PublicIPs: ips, UDPPort: n.udpPort, TCPPort: n.tcpPort, Loopback: n.loopback}, nil
}

// turn is the embedded TURN server's configuration, off without a secret.
func (n nodeNetwork) turn(relayIP string) media.TURN {
	if n.turnSecret == "" {
		return media.TURN{}
	}
	return media.TURN{Port: n.turnPort, TLSPort: n.tlsPort, CertFile: n.turnCert, KeyFile: n.turnKey, Secret: n.turnSecret, RelayIP: relayIP}
}

func (n nodeNetwork) checkTURN() error {
	if n.turnSecret != "" && n.tlsPort > 0 && (n.turnCert == "" || n.turnKey == "") {
		return errors.New("--turn-tls-port needs --turn-cert and --turn-key")
	}
	return nil
}

// startNode makes a media node with these settings and its TURN server.
// relayHost is the address the node's TURN is reached at when no public IP
// is set (dev: its --host).
func (n nodeNetwork) startNode(secret, controlToken, relayHost string) (*media.Server, *media.TURNServer, error) {
	if err := n.checkTURN(); err != nil {
		return nil, nil, err
	}
	netw, err := n.network()
	if err != nil {
		return nil, nil, err
	}
	srv, err := media.NewServerWith(secret, controlToken, media.Options{Network: netw})
	if err != nil {
		return nil, nil, err
	}
	relayIP := relayHost
	if len(netw.PublicIPs) > 0 {
		relayIP, _, _ = strings.Cut(netw.PublicIPs[0], "/")
	}
	ts, err := media.StartTURN(n.turn(relayIP), media.LocalIPs())
	if err != nil {
		_ = srv.SFU.Close()
		return nil, nil, err
	}
	return srv, ts, nil
}

// iceServerSettings are what the API hands browsers for ICE: STUN and TURN
// URLs, and the secret TURN credentials are minted with.
type iceServerSettings struct {
	stun, turn string
	secret     string
	ttl        time.Duration
}

func (s *iceServerSettings) register(fs *config.FlagSet) {
	fs.StringVar(&s.stun, "stun-urls", "", "STUN URLs given to browsers, comma-separated (stun:host:3478)")
	fs.StringVar(&s.turn, "turn-urls", "", "TURN URLs given to browsers, comma-separated (turn:host:3478?transport=udp,turn:host:3478?transport=tcp,turns:host:443?transport=tcp): the embedded server's or coturn's")
	fs.StringVar(&s.secret, "turn-secret", "", "TURN REST shared secret the credentials are minted with (the media node's --turn-secret, or coturn's static-auth-secret)")
	fs.DurationVar(&s.ttl, "turn-credential-ttl", 12*time.Hour, "how long a participant's TURN credential lasts")
}

func (s iceServerSettings) servers() (*media.ICEServers, error) {
	out := &media.ICEServers{STUN: splitList(s.stun), TURN: splitList(s.turn), TURNSecret: s.secret, TTL: s.ttl}
	for _, u := range out.STUN {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			return nil, fmt.Errorf("--stun-urls: %q is not a stun: URL", u)
		}
	}
	for _, u := range out.TURN {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return nil, fmt.Errorf("--turn-urls: %q is not a turn: or turns: URL", u)
		}
	}
	if len(out.TURN) > 0 && s.secret == "" {
		return nil, errors.New("--turn-urls needs --turn-secret to mint credentials")
	}
	return out, nil
}

// embeddedTURNURLs are the URLs of a node's own TURN server at host.
func embeddedTURNURLs(host string, n nodeNetwork) []string {
	if n.turnSecret == "" {
		return nil
	}
	var out []string
	if n.turnPort > 0 {
		hp := net.JoinHostPort(host, strconv.Itoa(n.turnPort))
		out = append(out, "turn:"+hp+"?transport=udp", "turn:"+hp+"?transport=tcp")
	}
	if n.tlsPort > 0 {
		out = append(out, "turns:"+net.JoinHostPort(host, strconv.Itoa(n.tlsPort))+"?transport=tcp")
	}
	return out
}
