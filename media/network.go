package media

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Network is how a media node meets the networks its participants are on.
// The zero value is what `handoff dev` needs on one machine: host addresses,
// an ephemeral UDP port per participant, no ICE-TCP.
type Network struct {
	// PublicIPs are announced in place of the node's own addresses: the
	// address a 1:1 NAT (a cloud VM, a Docker or Kubernetes port mapping)
	// forwards to it. "public" or "public/private" pairs.
	PublicIPs []string
	// UDPPort carries every participant's ICE over UDP on one port, which a
	// firewall rule or a port mapping can name (0: ephemeral ports).
	UDPPort int
	// TCPPort accepts ICE over TCP (passive candidates) for networks that
	// drop UDP (0: no ICE-TCP).
	TCPPort int
	// Loopback also announces 127.0.0.1, for a node and browsers on one
	// machine with no other interface.
	Loopback bool
	// ICE timeouts: a path that hears nothing for Disconnected is
	// "disconnected" (the node then restarts ICE), for Failed "failed".
	Disconnected, Failed, KeepAlive time.Duration
}

// Default ICE timing: pion's defaults, except that a peer is called
// disconnected after 3 s of silence so a changed network is restarted soon.
const (
	defaultICEDisconnected = 3 * time.Second
	defaultICEFailed       = 20 * time.Second
	defaultICEKeepAlive    = 1 * time.Second
)

// ParsePublicIPs reads a comma-separated list of "ip" or "public/private";
// an error names the entry that is not an address.
func ParsePublicIPs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pub, priv, mapped := strings.Cut(part, "/")
		if net.ParseIP(pub) == nil || (mapped && net.ParseIP(priv) == nil) {
			return nil, fmt.Errorf("public IP %q is not an IP address (or public/private pair)", part)
		}
		out = append(out, part)
	}
	return out, nil
}

// iceListeners are the sockets a Network opens; Close releases them.
type iceListeners struct {
	udp ice.UDPMux
	tcp ice.TCPMux
	tl  net.Listener
}

func (l *iceListeners) Close() error {
	var errs []error
	if l.udp != nil {
		errs = append(errs, l.udp.Close())
	}
	if l.tcp != nil {
		errs = append(errs, l.tcp.Close())
	}
	if l.tl != nil {
		_ = l.tl.Close()
	}
	return errors.Join(errs...)
}

// apply configures se for the network and opens its listeners.
func (n Network) apply(se *webrtc.SettingEngine, logs logging.LoggerFactory) (*iceListeners, error) {
	se.SetICETimeouts(orDefault(n.Disconnected, defaultICEDisconnected), orDefault(n.Failed, defaultICEFailed), orDefault(n.KeepAlive, defaultICEKeepAlive))
	se.SetIncludeLoopbackCandidate(n.Loopback)
	// The node is ICE-controlling and has one address: a better pair than
	// the first that works rarely comes. pion waits 1 s before nominating a
	// peer-reflexive pair (every participant behind a NAT) and 2 s for a
	// relay; BenchmarkConnectTime measured those seconds on every connect.
	// Direct pairs are taken at once; a relay still waits briefly in case
	// a direct pair is on its way.
	se.SetHostAcceptanceMinWait(0)
	se.SetSrflxAcceptanceMinWait(0)
	se.SetPrflxAcceptanceMinWait(0)
	se.SetRelayAcceptanceMinWait(relayAcceptanceWait)
	if len(n.PublicIPs) > 0 {
		// Replace the host candidates: the private address is unreachable
		// from outside, and announcing it only costs checks.
		rules := make([]webrtc.ICEAddressRewriteRule, 0, len(n.PublicIPs))
		for _, ip := range n.PublicIPs {
			pub, priv, _ := strings.Cut(ip, "/")
			rules = append(rules, webrtc.ICEAddressRewriteRule{External: []string{pub}, Local: priv, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace})
		}
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return nil, err
		}
	}
	ls := &iceListeners{}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if n.UDPPort > 0 {
		// Link-local IPv6 reaches nobody across a router, and a tentative
		// one (just after boot) cannot be bound.
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(logs.NewLogger("udpmux")),
			ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool { return !ip.IsLinkLocalUnicast() })}
		if n.Loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(n.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("ICE UDP port %d: %w", n.UDPPort, err)
		}
		ls.udp = mux
		se.SetICEUDPMux(mux)
	}
	if n.TCPPort > 0 {
		l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(n.TCPPort)))
		if err != nil {
			_ = ls.Close()
			return nil, fmt.Errorf("ICE TCP port %d: %w", n.TCPPort, err)
		}
		ls.tl = l
		// A write buffer: a slow TCP client's full socket drops its own
		// packets instead of blocking the forwarder that writes to everyone.
		ls.tcp = ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: l, Logger: logs.NewLogger("tcpmux"), ReadBufferSize: 64, WriteBufferSize: 4 << 20})
		se.SetICETCPMux(ls.tcp)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	return ls, nil
}

const relayAcceptanceWait = 300 * time.Millisecond

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
