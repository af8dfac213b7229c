// Admit → first remote video frame and first audio at the provider's page,
// in Chromium, over three networks the benchmark builds in namespaces:
// the provider behind a NAT (direct UDP), behind a firewall that drops UDP
// (ICE-TCP), and on a network that lets out only the site and TURN
// (relayed by the media node's embedded TURN server). 30 calls each.
//
//   cd web/e2e && HANDOFF_BIN=../../bin/handoff node connect-time.bench.mjs   (root; make bench runs it)
import { startSite, checkIn, login, admit, card } from './site.mjs';
import { lab } from './netns.mjs';

const calls = Number(process.env.HANDOFF_BENCH_CALLS || (process.env.HANDOFF_BENCH === 'short' ? 10 : 30));
const net = lab();
const server = net.host('server', '198.18.1');
const home = net.host('home', '198.18.3');
const providers = {
  direct: net.hostBehindNAT('clinic-nat', '10.10.0'),
  'ice-tcp': net.host('clinic-tcp', '198.18.5'),
  turn: net.hostBehindNAT('clinic-turn', '10.11.0'),
};
net.dropUDP(providers['ice-tcp']);
const site = await startSite({
  netns: { ns: server, host: '198.18.1.1' },
  devArgs: ['--ice-udp-port', '7882', '--ice-tcp-port', '7881', '--turn-port', '3478', '--turn-secret', 'bench-turn-secret', '--checkin-rate', '50'],
});
const apiPort = new URL(site.base).port;
net.onlyTo(providers.turn, `tcp:198.18.1.1:${apiPort}`, `tcp:198.18.1.1:${site.mediaPort}`, 'udp:198.18.1.1:3478');

function pct(v, q) { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; }

try {
  const patient = await site.person('bench-patient', { netns: home });
  const rows = [];
  for (const [topo, ns] of Object.entries(providers)) {
    const provider = await site.person(`bench-provider-${topo}`, { netns: ns });
    await login(provider, site.base, 'dr.lee@riverside.example');
    const video = [], audio = [], paths = new Set();
    for (let i = 0; i < calls; i++) {
      const name = `Bench ${topo} ${i}`;
      await checkIn(patient, site.base, 'dr-lee', name);
      await card(provider, name).waitFor();
      await provider.evaluate(() => {
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
      });
      await admit(provider, name);
      await provider.waitForFunction(() => window.__first.audio && window.__first.video, null, { timeout: 30000 });
      const t = await provider.evaluate(() => ({ video: window.__first.video - window.__t0, audio: window.__first.audio - window.__t0 }));
      video.push(t.video); audio.push(t.audio);
      paths.add(await provider.evaluate(async () => {
        let path = '';
        const stats = await window.handoff.media.pc.getStats();
        stats.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') { const l = stats.get(r.localCandidateId); path = `${l.candidateType}/${l.protocol}`; } });
        return path;
      }));
      await patient.locator('#leave-call').click();
      await provider.locator('#call').waitFor({ state: 'hidden', timeout: 15000 }).catch(() => {});
    }
    rows.push({ topo, paths: [...paths].join(','), video: [pct(video, 0.5), pct(video, 0.99)], audio: [pct(audio, 0.5), pct(audio, 0.99)] });
    await provider.context().close();
  }
  console.log(`admit → first remote frame / first audio packet at the provider's page, ${calls} calls each (p50 / p99 ms):`);
  for (const r of rows) console.log(`  ${r.topo.padEnd(8)} path ${r.paths.padEnd(12)} video ${r.video.map((x) => x.toFixed(0)).join(' / ')}   audio ${r.audio.map((x) => x.toFixed(0)).join(' / ')}`);
} finally {
  await site.stop();
  net.remove();
}
