// Package netlab builds small networks for tests out of the kernel's own
// parts: network namespaces for hosts, veth pairs for cables, a router
// namespace that forwards between them, iptables for NATs and firewalls.
// Every address is one the lab made; traffic never leaves its namespaces.
// A lab removes everything it made when the test ends, failed or not.
//
// It needs root, iproute2 and iptables (.ci/run installs them); where a
// namespace cannot be made the test fails and says why.
package netlab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lab is one test's network: a router and the hosts cabled to it.
type Lab struct {
	t      testing.TB
	prefix string
	Router string // the router's namespace

	mu    sync.Mutex
	nets  []string
	procs []*Proc
	links int
	// routerSide is each host's cable end in the router: what the router
	// sends there is the host's downlink.
	routerSide map[string]string
	subnets    map[string]string // each host's subnet ("198.18.1")
	delays     []*DelayLine
}

// New makes a lab with its router, or fails the test saying what is missing.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("netlab: network namespace tests need root (CI runs as root): run `sudo go test`")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("netlab: %s is missing (apt-get install iproute2 iptables; .ci/run installs them)", tool)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	l := &Lab{t: t, prefix: "hl" + hex.EncodeToString(b)}
	t.Cleanup(l.cleanup)
	l.Router = l.host("router")
	l.In(l.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return l
}

// host makes a namespace with its loopback up.
func (l *Lab) host(name string) string {
	ns := l.prefix + "-" + name
	l.run("ip", "netns", "add", ns)
	l.mu.Lock()
	l.nets = append(l.nets, ns)
	l.mu.Unlock()
	l.In(ns, "ip", "link", "set", "lo", "up")
	// The lab's networks are IPv4; no link-local IPv6 candidates.
	l.In(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return ns
}

// Host is a namespace cabled to the router on subnet (a /24 written
// "198.18.1"): the host is .1, the router .254 and its default route.
func (l *Lab) Host(name, subnet string) string {
	ns := l.host(name)
	l.cable(ns, subnet)
	return ns
}

// HostBehindNAT is a host on private subnet behind the router's NAT
// (masquerade): it reaches everything, nothing reaches it unasked.
func (l *Lab) HostBehindNAT(name, subnet string) string {
	ns := l.Host(name, subnet)
	cidr := subnet + ".0/24"
	l.In(l.Router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", cidr, "!", "-d", cidr, "-j", "MASQUERADE")
	l.In(l.Router, "iptables", "-A", "FORWARD", "-d", cidr, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	l.In(l.Router, "iptables", "-A", "FORWARD", "-d", cidr, "-j", "DROP")
	return ns
}

// HostBehind1to1NAT is a host with private address subnet.1 that the
// router maps to public (and back): a cloud VM, a container's port mapping.
func (l *Lab) HostBehind1to1NAT(name, subnet, public string) string {
	ns := l.Host(name, subnet)
	private := subnet + ".1"
	l.In(l.Router, "iptables", "-t", "nat", "-A", "PREROUTING", "-d", public, "-j", "DNAT", "--to-destination", private)
	l.In(l.Router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", private, "-j", "SNAT", "--to-source", public)
	// Only the mapping reaches it: its private address is not routable.
	l.In(l.Router, "iptables", "-A", "FORWARD", "-d", private, "-m", "conntrack", "--ctstate", "DNAT,ESTABLISHED,RELATED", "-j", "ACCEPT")
	l.In(l.Router, "iptables", "-A", "FORWARD", "-d", private, "-j", "DROP")
	return ns
}

func (l *Lab) cable(ns, subnet string) {
	l.mu.Lock()
	l.links++
	n := l.links
	l.mu.Unlock()
	hostIf, routerIf := fmt.Sprintf("%sh%d", l.prefix, n), fmt.Sprintf("%sr%d", l.prefix, n)
	l.run("ip", "link", "add", hostIf, "netns", ns, "type", "veth", "peer", "name", routerIf, "netns", l.Router)
	l.In(ns, "ip", "link", "set", hostIf, "name", "eth0")
	l.In(ns, "ip", "addr", "add", subnet+".1/24", "dev", "eth0")
	l.In(ns, "ip", "link", "set", "eth0", "up")
	l.In(ns, "ip", "route", "add", "default", "via", subnet+".254")
	l.In(l.Router, "ip", "addr", "add", subnet+".254/24", "dev", routerIf)
	l.In(l.Router, "ip", "link", "set", routerIf, "up")
	l.mu.Lock()
	if l.routerSide == nil {
		l.routerSide, l.subnets = map[string]string{}, map[string]string{}
	}
	l.routerSide[ns] = routerIf
	l.subnets[ns] = subnet
	l.mu.Unlock()
}

func (l *Lab) downlink(ns string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	dev, ok := l.routerSide[ns]
	if !ok {
		l.t.Fatalf("netlab: %s has no cable to the router", ns)
	}
	return dev
}

// LimitDownlink caps what ns receives at kbit kbit/s, as a weak mobile link
// does: a token bucket in the router whose queue holds queueMs of traffic;
// what overflows it is dropped. (tc's netem, for delay, is not in every
// kernel; a token bucket is; DelayDownlink adds delay.) A second call
// changes the limit.
func (l *Lab) LimitDownlink(ns string, kbit, queueMs int) {
	burst := max(kbit*1000/8/50, 1600) // 20 ms of traffic, at least a packet
	l.In(l.Router, "tc", "qdisc", "replace", "dev", l.downlink(ns), "root", "tbf",
		"rate", fmt.Sprintf("%dkbit", kbit), "burst", fmt.Sprint(burst), "latency", fmt.Sprintf("%dms", queueMs))
}

// UnlimitDownlink lifts LimitDownlink.
func (l *Lab) UnlimitDownlink(ns string) {
	l.In(l.Router, "tc", "qdisc", "del", "dev", l.downlink(ns), "root")
}

// LoseDownlink drops percent % of the packets ns receives, at random.
func (l *Lab) LoseDownlink(ns string, percent int) {
	l.In(l.Router, "iptables", "-I", "FORWARD", "-o", l.downlink(ns), "-m", "statistic", "--mode", "random",
		"--probability", fmt.Sprintf("%.4f", float64(percent)/100), "-j", "DROP")
}

// DropUDP makes ns a network that lets no UDP through (a hospital's).
func (l *Lab) DropUDP(ns string) {
	l.In(ns, "iptables", "-A", "OUTPUT", "-p", "udp", "-j", "DROP")
	l.In(ns, "iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP")
}

// OnlyTo lets ns reach only the given "proto:ip:port" destinations (and
// their answers): everything else it sends is dropped.
func (l *Lab) OnlyTo(ns string, allowed ...string) {
	l.In(ns, "iptables", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
	l.In(ns, "iptables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	for _, a := range allowed {
		parts := strings.Split(a, ":")
		l.In(ns, "iptables", "-A", "OUTPUT", "-p", parts[0], "-d", parts[1], "--dport", parts[2], "-j", "ACCEPT")
	}
	l.In(ns, "iptables", "-A", "OUTPUT", "-j", "DROP")
}

// In runs a command in namespace ns and fails the test if it fails.
func (l *Lab) In(ns string, args ...string) string {
	return l.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func (l *Lab) run(args ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Proc is a process running in a namespace; its stdout is read by line.
type Proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	Lines chan string
	done  chan struct{}
}

// Start runs args in ns with env added, its stderr to the test's log.
func (l *Lab) Start(ns string, env []string, args ...string) *Proc {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	cmd.Stderr = &testLog{t: l.t, name: ns}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("netlab: start %v in %s: %v", args, ns, err)
	}
	p := &Proc{cmd: cmd, stdin: stdin, Lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.Lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case p.Lines <- sc.Text():
			default: // a reader that fell behind misses old lines, never blocks the process
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// Pid is the process's id (`ip netns exec` execs the command in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Send writes one line to the process's stdin.
func (p *Proc) Send(line string) { _, _ = io.WriteString(p.stdin, line+"\n") }

// WaitLine returns the first line with prefix, or fails after within.
func (p *Proc) WaitLine(t testing.TB, prefix string, within time.Duration) string {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.Lines:
			if !ok {
				t.Fatalf("netlab: the process ended before printing %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return strings.TrimPrefix(line, prefix)
			}
		case <-timer.C:
			t.Fatalf("netlab: no %q line within %v", prefix, within)
		}
	}
}

// Stop ends the process (its stdin closes, then it is killed).
func (p *Proc) Stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
		return
	case <-time.After(2 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (l *Lab) cleanup() {
	l.mu.Lock()
	procs, nets, delays := l.procs, l.nets, l.delays
	l.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	for _, d := range delays {
		d.Close() // its TUN device goes with its last descriptor
	}
	for i := len(nets) - 1; i >= 0; i-- {
		// Processes a command left behind in the namespace die with it.
		if pids, err := exec.Command("ip", "netns", "pids", nets[i]).Output(); err == nil {
			for _, pid := range strings.Fields(string(pids)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", nets[i]).Run() // its veths go with it
	}
}

// testLog writes a process's stderr to the test log, a line at a time.
type testLog struct {
	t    testing.TB
	name string
	mu   sync.Mutex
	buf  []byte
}

func (w *testLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		if os.Getenv("HANDOFF_NETLAB_LOG") != "" {
			w.t.Logf("[%s] %s", w.name, w.buf[:i])
		}
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// DownlinkQueue is tc's account of ns's downlink queue (sent, dropped,
// overlimits), for a test's log.
func (l *Lab) DownlinkQueue(ns string) string {
	return l.In(l.Router, "tc", "-s", "qdisc", "show", "dev", l.downlink(ns))
}
