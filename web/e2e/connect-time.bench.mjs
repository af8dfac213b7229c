// Admit → first remote video frame and first audio packet at both pages,
// in Chromium, with the patient on one of three networks the benchmark
// builds in namespaces: behind a NAT (direct UDP), behind a firewall that
// drops UDP (ICE-TCP), and on a network that lets out only the site and
// TURN (relayed by the media node's embedded TURN server). The provider is
// on an open network. 30 calls each, each patient a fresh page (a fresh
// media session, connected while it waits: admit only starts forwarding).
//
//   cd web/e2e && HANDOFF_BIN=../../bin/handoff node connect-time.bench.mjs   (root; make bench runs it)
import { startSite, checkIn, login, admit, card } from './site.mjs';
import { lab } from './netns.mjs';

const calls = Number(process.env.HANDOFF_BENCH_CALLS || (process.env.HANDOFF_BENCH === 'short' ? 10 : 30));
const net = lab();
const server = net.host('server', '198.18.1');
const clinic = net.host('clinic', '198.18.3');
const ice = ['--ice-udp-port', '7882', '--ice-tcp-port', '7881', '--checkin-rate', '50'];
const topologies = [
  // The patient behind a NAT: a direct UDP path.
  { name: 'direct', ns: net.hostBehindNAT('patient-nat', '10.10.0'), devArgs: ice },
  // A network that drops all UDP, no TURN offered: ICE-TCP to the node.
  { name: 'ice-tcp', ns: net.host('patient-tcp', '198.18.5'), devArgs: ice },
  // A network that lets out only the site and TURN: relayed by the node's TURN.
  { name: 'turn', ns: net.hostBehindNAT('patient-turn', '10.11.0'), devArgs: [...ice, '--turn-port', '3478', '--turn-secret', 'bench-turn-secret'], turnOnly: true },
];
net.dropUDP(topologies[1].ns);

function pct(v, q) { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; }

const rows = [];
try {
  const only = (process.env.HANDOFF_BENCH_TOPOLOGIES || '').split(',').filter(Boolean);
  for (const topo of topologies.filter((t) => !only.length || only.includes(t.name))) {
    const site = await startSite({ netns: { ns: server, host: '198.18.1.1' }, devArgs: topo.devArgs });
    try {
      if (topo.turnOnly) net.onlyTo(topo.ns, `tcp:198.18.1.1:${new URL(site.base).port}`, `tcp:198.18.1.1:${site.mediaPort}`, 'udp:198.18.1.1:3478');
      rows.push(await measure(site, topo));
    } finally {
      await site.stop();
    }
  }
  console.log(`admit → first remote video frame / first audio packet, ${calls} calls each (p50 / p99 ms):`);
  const f = (v) => v.map((x) => x.toFixed(0)).join(' / ');
  for (const r of rows) {
    console.log(`  ${r.topo.padEnd(8)} patient's path ${r.paths.padEnd(18)} at the provider: video ${f(r.provider.video)}, audio ${f(r.provider.audio)};  at the patient: video ${f(r.patient.video)}, audio ${f(r.patient.audio)}`);
  }
} finally {
  net.remove();
}

// watchFirsts records, in a page, when its first remote video frame and
// first audio packet arrive after t0 (now).
function watchFirsts() {
  window.__first = {};
  const watch = (v) => v.requestVideoFrameCallback(() => { window.__first.video ??= performance.now(); });
  new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) => n.tagName === 'VIDEO' && watch(n)))).observe(document.getElementById('remote'), { childList: true });
  const poll = setInterval(async () => {
    const pc = window.handoff.media && window.handoff.media.pc;
    if (!pc) return;
    (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio' && r.packetsReceived > 0) window.__first.audio ??= performance.now(); });
    if (window.__first.audio && window.__first.video) clearInterval(poll);
  }, 10);
  window.__t0 = performance.now();
}

async function firsts(page) {
  await page.waitForFunction(() => window.__first.audio && window.__first.video, null, { timeout: 30000 });
  return page.evaluate(() => ({ video: window.__first.video - window.__t0, audio: window.__first.audio - window.__t0 }));
}

async function measure(site, topo) {
  const provider = await site.person(`bench-provider-${topo.name}`, { netns: clinic });
  await login(provider, site.base, 'dr.lee@riverside.example');
  const got = { provider: { video: [], audio: [] }, patient: { video: [], audio: [] } };
  const paths = new Set();
  for (let i = 0; i < calls; i++) {
    const patient = await site.person(`bench-patient-${topo.name}`, { netns: topo.ns });
    const name = `Bench ${topo.name} ${i}`;
    await checkIn(patient, site.base, 'dr-lee', name);
    await card(provider, name).waitFor();
    await patient.waitForFunction(() => window.handoff.media && window.handoff.media.pc && window.handoff.media.pc.connectionState === 'connected', null, { timeout: 30000 });
    // The two pages' clocks differ; each measures from its own t0, set
    // just before the click (the patient's a few ms early).
    await patient.evaluate(watchFirsts);
    await provider.evaluate(watchFirsts);
    await admit(provider, name);
    for (const [who, page] of [['provider', provider], ['patient', patient]]) {
      const t = await firsts(page);
      got[who].video.push(t.video); got[who].audio.push(t.audio);
    }
    paths.add(await patient.evaluate(async () => {
      let path = '';
      const stats = await window.handoff.media.pc.getStats();
      stats.forEach((r) => {
        if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
          const l = stats.get(r.localCandidateId);
          path = `${l.candidateType}/${l.protocol}${l.relayProtocol ? '(' + l.relayProtocol + ')' : ''}`;
        }
      });
      return path;
    }));
    await patient.locator('#leave-call').click();
    await provider.locator('#call').waitFor({ state: 'hidden', timeout: 15000 }).catch(() => {});
    await patient.context().close();
  }
  await site.closeAll();
  const sum = (v) => [pct(v, 0.5), pct(v, 0.99)];
  return { topo: topo.name, paths: [...paths].join(','),
    provider: { video: sum(got.provider.video), audio: sum(got.provider.audio) }, patient: { video: sum(got.patient.video), audio: sum(got.patient.audio) } };
}
