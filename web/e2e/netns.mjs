// A small network for a browser test, made of the kernel's own parts (as
// internal/testkit/netlab does for the Go tests): a router namespace and hosts
// cabled to it by veth pairs, each host on its own 198.18.x.0/24 with the
// router at .254. Every address is one the lab made. remove() deletes it
// all (the process's exit does too, if the test dies first).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

function sh(...args) {
  try {
    return execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20000 }).toString();
  } catch (err) {
    throw new Error(`netns: ${args.join(' ')}: ${err.stderr || err.message}`);
  }
}

export function lab() {
  if (process.getuid && process.getuid() !== 0) throw new Error('netns: the firewall browser test needs root (CI runs as root)');
  for (const tool of ['ip', 'iptables']) {
    try { sh('which', tool); } catch (_) { throw new Error(`netns: ${tool} is missing (apt-get install iproute2 iptables; .ci/run installs them)`); }
  }
  const prefix = 'he' + randomBytes(3).toString('hex');
  const made = [];
  let links = 0;
  const routerSide = new Map(); // host namespace → the router's interface toward it
  const subnets = new Map(); // host namespace → its subnet
  const lines = []; // delay-line processes
  const inNs = (ns, ...args) => sh('ip', 'netns', 'exec', ns, ...args);
  const namespace = (name) => {
    const ns = `${prefix}-${name}`;
    sh('ip', 'netns', 'add', ns);
    made.push(ns);
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    return ns;
  };
  const remove = () => {
    for (const p of lines.splice(0)) p.kill('SIGKILL');
    for (const ns of made.splice(0).reverse()) {
      try { for (const pid of sh('ip', 'netns', 'pids', ns).split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL'); } catch (_) { /* gone */ }
      try { sh('ip', 'netns', 'del', ns); } catch (_) { /* gone */ }
    }
  };
  process.once('exit', remove);
  const router = namespace('router');
  inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  return {
    inNs,
    remove,
    // host: a namespace at subnet.1 (subnet like "198.18.1").
    host(name, subnet) {
      const ns = namespace(name);
      links++;
      const hostIf = `${prefix}h${links}`, routerIf = `${prefix}r${links}`;
      sh('ip', 'link', 'add', hostIf, 'netns', ns, 'type', 'veth', 'peer', 'name', routerIf, 'netns', router);
      inNs(ns, 'ip', 'link', 'set', hostIf, 'name', 'eth0');
      inNs(ns, 'ip', 'addr', 'add', `${subnet}.1/24`, 'dev', 'eth0');
      inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
      inNs(ns, 'ip', 'route', 'add', 'default', 'via', `${subnet}.254`);
      inNs(router, 'ip', 'addr', 'add', `${subnet}.254/24`, 'dev', routerIf);
      inNs(router, 'ip', 'link', 'set', routerIf, 'up');
      routerSide.set(ns, routerIf);
      subnets.set(ns, subnet);
      return ns;
    },
    // hostBehindNAT: a host on a private subnet behind the router's NAT
    // (masquerade): it reaches everything, nothing reaches it unasked.
    hostBehindNAT(name, subnet) {
      const ns = this.host(name, subnet);
      const cidr = `${subnet}.0/24`;
      inNs(router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', cidr, '!', '-d', cidr, '-j', 'MASQUERADE');
      inNs(router, 'iptables', '-A', 'FORWARD', '-d', cidr, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      inNs(router, 'iptables', '-A', 'FORWARD', '-d', cidr, '-j', 'DROP');
      return ns;
    },
    // onlyTo lets ns reach only "proto:ip:port" destinations (and answers).
    onlyTo(ns, ...allowed) {
      inNs(ns, 'iptables', '-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT');
      inNs(ns, 'iptables', '-A', 'OUTPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      for (const a of allowed) {
        const [proto, ip, port] = a.split(':');
        inNs(ns, 'iptables', '-A', 'OUTPUT', '-p', proto, '-d', ip, '--dport', port, '-j', 'ACCEPT');
      }
      inNs(ns, 'iptables', '-A', 'OUTPUT', '-j', 'DROP');
    },
    // lossyDownlink drops at random the share p of the UDP that the router
    // sends on to ns (iptables' statistic match: this machine's kernel has
    // no tc netem); clearDownlink takes the rule out again.
    lossyDownlink(ns, p) {
      inNs(router, 'iptables', '-I', 'FORWARD', '-o', routerSide.get(ns), '-p', 'udp', '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP');
    },
    clearDownlink(ns, p) {
      inNs(router, 'iptables', '-D', 'FORWARD', '-o', routerSide.get(ns), '-p', 'udp', '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP');
    },
    // limitDownlink caps what ns receives at kbit kbit/s (a token bucket in
    // the router whose queue holds 100 ms); unlimitDownlink lifts it.
    limitDownlink(ns, kbit) {
      const burst = Math.max(Math.floor((kbit * 1000) / 8 / 50), 1600);
      inNs(router, 'tc', 'qdisc', 'replace', 'dev', routerSide.get(ns), 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', String(burst), 'latency', '100ms');
    },
    // delayDownlink makes everything the router sends on to ns wait ms
    // first (a long mobile path). The kernel here has no netem: the router
    // routes ns's traffic into a TUN device whose delay line
    // (internal/testkit/netlab/cmd/delayline, HANDOFF_DELAYLINE) holds each
    // packet, and what comes out goes on to ns's cable, where
    // limitDownlink's token bucket still applies.
    async delayDownlink(ns, ms) {
      const bin = process.env.HANDOFF_DELAYLINE || new URL('../../bin/delayline', import.meta.url).pathname;
      links++;
      const dev = `${prefix}d${links}`;
      const proc = spawn(bin, ['-netns', router, '-dev', dev, '-delay', `${ms}ms`], { stdio: ['pipe', 'pipe', 'inherit'] });
      lines.push(proc);
      const ready = new Promise((resolve, reject) => {
        proc.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
        proc.once('exit', (code) => reject(new Error(`netns: delayline exited (${code}) before it was ready: is ${bin} built (make delayline)?`)));
      });
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('netns: delayline not ready in 10 s')), 10000).unref());
      await Promise.race([ready, timeout]);
      const cidr = `${subnets.get(ns)}.0/24`;
      inNs(router, 'ip', 'link', 'set', dev, 'up');
      inNs(router, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', `net.ipv4.conf.${dev}.rp_filter=0`);
      // Out of the TUN: on to the host's cable. Into it: whatever is for the host.
      inNs(router, 'ip', 'route', 'add', cidr, 'dev', routerSide.get(ns), 'table', String(100 + links));
      inNs(router, 'ip', 'rule', 'add', 'pref', String(1000 + 2 * links), 'iif', dev, 'lookup', String(100 + links));
      inNs(router, 'ip', 'route', 'add', cidr, 'dev', dev, 'table', String(200 + links));
      inNs(router, 'ip', 'rule', 'add', 'pref', String(1001 + 2 * links), 'to', cidr, 'lookup', String(200 + links));
    },
    unlimitDownlink(ns) {
      inNs(router, 'tc', 'qdisc', 'del', 'dev', routerSide.get(ns), 'root');
    },
    // dropUDP: a network that lets no UDP in or out.
    dropUDP(ns) {
      inNs(ns, 'iptables', '-A', 'OUTPUT', '-p', 'udp', '-j', 'DROP');
      inNs(ns, 'iptables', '-A', 'INPUT', '-p', 'udp', '-j', 'DROP');
    },
  };
}
