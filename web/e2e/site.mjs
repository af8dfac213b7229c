// Starts a real `handoff dev` on free ports and Debian's Chromium with a
// fake camera and microphone, and gives each test person their own window.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

// freePort finds a port free on 127.0.0.1 now, below Linux's ephemeral
// range (32768-60999): the kernel picks the local ports of outgoing
// connections and of ":0" listeners from there, and one of handoff dev's own
// connections took a port handed out from there before handoff dev bound it
// ("bind: address already in use", 2 runs in 30 under load). A cursor from
// a random start never hands out the same port twice in one test file, as
// devserver.FreePorts does for the Go tests.
const LOW_PORT_START = 20000, LOW_PORT_END = 32768;
let portCursor = 0;
async function freePort() {
  if (!portCursor) portCursor = LOW_PORT_START + Math.floor(Math.random() * (LOW_PORT_END - LOW_PORT_START));
  for (let tries = 0; tries < LOW_PORT_END - LOW_PORT_START; tries++) {
    const port = portCursor;
    portCursor = portCursor + 1 === LOW_PORT_END ? LOW_PORT_START : portCursor + 1;
    const free = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port on 127.0.0.1 between ${LOW_PORT_START} and ${LOW_PORT_END}`);
}

// mediaNode runs `handoff media` as its own process, which the test can
// stop (SIGTERM: it tells participants; SIGKILL: it just dies) and start again.
// With registry { db, id, capacity, drainTimeout } it registers itself in
// that app database (handoff media --db), as in a cluster.
async function mediaNode(bin, port, registry = null) {
  const internal = await freePort();
  const env = { ...process.env, HANDOFF_MEDIA_SECRET: 'e2e-media-secret-0123456789abcdef01', HANDOFF_MEDIA_CONTROL_TOKEN: 'e2e-control-token-0123456789abcdef0' };
  const node = {
    url: `http://127.0.0.1:${internal}`, // the control API, on the node's internal listener
    publicURL: `ws://127.0.0.1:${port}/ws`,
    env,
    async start() {
      const args = ['media', '--listen', `127.0.0.1:${port}`, '--internal-listen', `127.0.0.1:${internal}`];
      if (registry) {
        args.push('--db', registry.db, '--node-id', registry.id, '--public-url', node.publicURL, '--control-url', node.url,
          '--capacity', `${registry.capacity || 100}`, '--drain-timeout', registry.drainTimeout || '60s', '--ice-udp-port', '0', '--ice-tcp-port', '0');
      }
      node.proc = spawn(bin, args, { env, stdio: ['ignore', 'ignore', process.env.HANDOFF_E2E_LOG ? 'inherit' : 'ignore'] });
      const deadline = Date.now() + 30000;
      while (Date.now() < deadline) {
        try { if ((await fetch(`${node.url}/readyz`)).ok) return; } catch (_) { /* not up yet */ }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('handoff media did not start');
    },
    async stop(signal = 'SIGTERM') {
      const exited = new Promise((r) => node.proc.once('exit', r));
      node.proc.kill(signal);
      await exited;
    },
  };
  await node.start();
  return node;
}

// postgresDB makes an empty PostgreSQL database for one site (psql, on the
// server the Go tests use) and returns its URL and a function that drops it.
function postgresDB() {
  const admin = process.env.HANDOFF_E2E_POSTGRES || 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `handoff_e2e_${process.pid}_${Date.now()}`;
  const psql = (sql) => execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'inherit'] });
  psql(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  url.searchParams.set('sslmode', 'disable');
  return { dsn: url.toString(), drop: () => { try { psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } catch (_) { /* gone with the server */ } } };
}

// startSite runs `handoff dev` (with devArgs); netns { ns, host } runs it in
// that network namespace, bound to host. nodes [{ id, capacity,
// drainTimeout }] runs no built-in media node: dev keeps its app database
// in PostgreSQL and places calls on these `handoff media --db` processes
// (site.nodes[id]), as a cluster does.
//
// trace: true turns on the built-in media node's allocator trace
// (HANDOFF_MEDIA_TRACE) and keeps dev's last stderr lines for
// site.logTail, for a media test's failure message.
export async function startSite({ externalMedia = false, netns = null, devArgs = [], nodes = null, trace = false } = {}) {
  const bin = process.env.HANDOFF_BIN || new URL('../../bin/handoff', import.meta.url).pathname;
  if (!existsSync(bin)) throw new Error(`no handoff binary at ${bin}: run make build`);
  const [api, media, temporal, ui, internal] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const node = externalMedia ? await mediaNode(bin, media) : null;
  const env = { ...process.env, HANDOFF_API_PORT: `${api}`, HANDOFF_MEDIA_PORT: `${media}`, HANDOFF_TEMPORAL_PORT: `${temporal}`, HANDOFF_UI_PORT: `${ui}`, HANDOFF_INTERNAL_PORT: `${internal}` };
  if (node) Object.assign(env, node.env, { HANDOFF_MEDIA_URL: node.url, HANDOFF_MEDIA_PUBLIC_URL: node.publicURL });
  const devCmd = [bin, 'dev', '--data-dir', mkdtempSync(join(tmpdir(), 'handoff-e2e-')), ...devArgs];
  const db = nodes ? postgresDB() : null;
  if (db) {
    devCmd.push('--db', db.dsn, '--media-registry');
    Object.assign(env, { HANDOFF_MEDIA_SECRET: 'e2e-media-secret-0123456789abcdef01', HANDOFF_MEDIA_CONTROL_TOKEN: 'e2e-control-token-0123456789abcdef0' });
  }
  if (netns) devCmd.push('--host', netns.host);
  const [cmd, ...cmdArgs] = netns ? ['ip', 'netns', 'exec', netns.ns, ...devCmd] : devCmd;
  if (trace) env.HANDOFF_MEDIA_TRACE = '1';
  const proc = spawn(cmd, cmdArgs, {
    env,
    stdio: ['ignore', 'pipe', trace ? 'pipe' : process.env.HANDOFF_E2E_LOG ? 'inherit' : 'ignore'],
  });
  const logLines = [];
  if (trace) {
    let partial = '';
    proc.stderr.on('data', (d) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      logLines.push(...lines);
      if (logLines.length > 4000) logLines.splice(0, logLines.length - 4000);
      if (process.env.HANDOFF_E2E_LOG) process.stderr.write(lines.map((l) => l + '\n').join(''));
    });
  }
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('handoff dev did not start in 2 minutes')), 120000);
    let out = '';
    proc.stdout.on('data', (d) => { out += d; if (out.includes('Press Ctrl-C')) { clearTimeout(timer); resolve(); } });
    proc.on('exit', (code) => reject(new Error(`handoff dev exited (${code})`)));
  });
  const registered = {};
  for (const n of nodes || []) registered[n.id] = await mediaNode(bin, await freePort(), { db: db.dsn, ...n });
  const executablePath = process.env.HANDOFF_CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
  if (!executablePath) throw new Error('the browser tests need Chromium: apt-get install chromium (or set HANDOFF_CHROMIUM)');
  const baseArgs = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns'];
  // The main browser lets pages play sound at once and grants devices;
  // other browsers (launchBrowser) keep the real policies.
  // A browser in a network namespace is Chromium started through a
  // wrapper that enters it (`ip netns exec` execs in place, so playwright's
  // pipe to the browser goes along).
  const launchBrowser = (args, ns) => {
    let exe = executablePath;
    if (ns) {
      exe = join(mkdtempSync(join(tmpdir(), 'handoff-chromium-')), 'chromium');
      writeFileSync(exe, `#!/bin/sh\nexec ip netns exec ${ns} ${executablePath} "$@"\n`, { mode: 0o755 });
    }
    return chromium.launch({ executablePath: exe, args: [...baseArgs, ...args] });
  };
  const browser = await launchBrowser(['--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required']);
  const browsers = [browser];
  const artifacts = process.env.HANDOFF_ARTIFACTS || new URL('../../artifacts/browser', import.meta.url).pathname;
  mkdirSync(artifacts, { recursive: true });
  const base = `http://${netns ? netns.host : '127.0.0.1'}:${api}`;
  let shot = 0;
  const open = [];
  return {
    base,
    mediaPort: media,
    media: node,
    nodes: registered,
    // logTail is dev's last n stderr lines that contain text (trace: true).
    logTail(text, n = 60) { return logLines.filter((l) => l.includes(text)).slice(-n).join('\n'); },
    // person opens a window for name; options.browserArgs gives it its own
    // browser with those flags, options.permissions what it grants.
    async person(name, { browserArgs, permissions = ['camera', 'microphone'], netns: ns, locale } = {}) {
      let b = browser;
      if (browserArgs || ns) {
        // A namespace's page is served from an address, not localhost:
        // only a secure origin gets camera and microphone.
        const secure = ns ? [`--unsafely-treat-insecure-origin-as-secure=${base}`] : [];
        b = await launchBrowser([...(browserArgs || ['--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required']), ...secure], ns);
        browsers.push(b);
      }
      const context = await b.newContext({ viewport: { width: 1200, height: 850 }, ...(locale ? { locale } : {}) });
      open.push(context);
      await context.grantPermissions(permissions);
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error(`[${name}] page error:`, e.message));
      // The page's last console lines, for a failure's message: a media
      // reconnect that keeps failing says why only there.
      page.recent = [];
      page.on('console', (m) => {
        const line = `${new Date().toISOString().slice(11, 23)} ${m.type()}: ${m.text()}`;
        page.recent.push(line);
        if (page.recent.length > 40) page.recent.shift();
        if (process.env.HANDOFF_E2E_LOG) console.error(`[${name}] ${line}`);
      });
      page.shot = async (step) => page.screenshot({ path: join(artifacts, `${String(++shot).padStart(2, '0')}-${name}-${step}.png`), fullPage: true });
      return page;
    },
    // closeAll ends everyone's windows: a participant has one media session.
    async closeAll() { await Promise.all(open.splice(0).map((c) => c.close())); },
    async stop() {
      for (const b of browsers) await b.close();
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGINT');
      if (node) await node.stop();
      for (const n of Object.values(registered)) if (n.proc.exitCode === null && n.proc.signalCode === null) await n.stop('SIGKILL');
      if (db) { await exited; db.drop(); }
    },
  };
}

export async function checkIn(page, base, slug, name) {
  await page.goto(`${base}/c/${slug}`);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('I agree to a video visit').check();
  await page.getByRole('button', { name: 'Check in' }).click();
  await page.locator('#waiting').waitFor();
}

export async function login(page, base, email) {
  await page.goto(`${base}/`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('handoff-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#dashboard').waitFor();
}

export function card(page, patient) { return page.locator(`article[aria-label="Patient ${patient}"]`).first(); }

export async function transfer(page, patient, targetName) {
  await card(page, patient).getByRole('button', { name: `Transfer ${patient}` }).click();
  const roomId = await page.evaluate((n) => window.handoff.rooms.find((r) => r.displayName === n).id, targetName);
  await page.locator('#transfer-room').selectOption(roomId);
  await page.locator('#transfer-confirm').click();
}

export async function admit(page, patient, { toCall = false } = {}) {
  await card(page, patient).getByRole('button', { name: toCall ? 'Add to call' : 'Admit' }).click();
}

// inboundGrows checks that the page's received media bytes keep growing
// (getStats inbound-rtp), i.e. that it really receives video and audio.
export async function inboundGrows(page, label = 'page') {
  await page.waitForFunction(() => window.handoff.media && window.handoff.media.pc, null, { timeout: 20000 });
  const bytes = () => page.evaluate(() => window.handoff.media.inboundBytes());
  const before = await bytes();
  const deadline = Date.now() + 20000;
  let now = before;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    now = await bytes();
    if (now > before + 20000) return;
  }
  throw new Error(`${label}: inbound media did not grow (${before} → ${now} bytes)`);
}

// inboundStops checks that the page receives nothing more.
export async function inboundStops(page, label = 'page') {
  const bytes = () => page.evaluate(() => window.handoff.media.inboundBytes());
  await new Promise((r) => setTimeout(r, 1000));
  const a = await bytes();
  await new Promise((r) => setTimeout(r, 1500));
  const b = await bytes();
  if (b > a + 2000) throw new Error(`${label}: still receiving (${a} → ${b} bytes)`);
}

// hears checks what a listener would: the page's remote video elements are
// playing with sound on (not muted, not paused), and the audio it receives
// carries sound (getStats inbound-rtp totalAudioEnergy keeps growing).
export async function hears(page, label = 'page', { count = 1 } = {}) {
  await page.waitForFunction((n) => document.querySelectorAll('#remote video:not([data-screen])').length >= n, count, { timeout: 20000 })
    .catch(() => { throw new Error(`${label}: no remote video element`); });
  const deadline = Date.now() + 20000;
  let els = [];
  while (Date.now() < deadline) {
    els = await page.evaluate(() => [...document.querySelectorAll('#remote video:not([data-screen])')].map((v) => ({ muted: v.muted, paused: v.paused, audio: v.srcObject ? v.srcObject.getAudioTracks().length : 0 })));
    if (els.length >= count && els.every((e) => !e.muted && !e.paused && e.audio > 0)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const e of els) {
    if (e.muted || e.paused || e.audio === 0) throw new Error(`${label}: a remote element is not audible: ${JSON.stringify(els)}`);
  }
  const energy = () => page.evaluate(async () => (await window.handoff.media.stats()).audioEnergy);
  const before = await energy();
  let now = before;
  while (Date.now() < deadline + 10000) {
    await new Promise((r) => setTimeout(r, 500));
    now = await energy();
    if (now > before + 0.001) return now - before;
  }
  throw new Error(`${label}: received audio carries no sound (totalAudioEnergy ${before} → ${now})`);
}

// opusFmtp is the Opus parameters the page's call uses, as negotiated:
// what it sends and what it receives.
export async function opusFmtp(page) {
  return page.evaluate(async () => {
    const stats = await window.handoff.media.pc.getStats();
    const out = { sent: [], received: [] };
    stats.forEach((r) => {
      if ((r.type === 'outbound-rtp' || r.type === 'inbound-rtp') && r.kind === 'audio' && r.codecId) {
        const c = stats.get(r.codecId);
        if (c && /opus/i.test(c.mimeType)) (r.type === 'outbound-rtp' ? out.sent : out.received).push(c.sdpFmtpLine || '');
      }
    });
    return out;
  });
}

// sendsNothing checks that the page sends no media at all (a waiting patient).
export async function sendsNothing(page, label = 'page') {
  await page.waitForFunction(() => window.handoff.media && window.handoff.media.pc, null, { timeout: 20000 });
  await new Promise((r) => setTimeout(r, 1500));
  const sent = await page.evaluate(async () => (await window.handoff.media.stats()).outboundBytes);
  if (sent > 0) throw new Error(`${label}: sent ${sent} bytes of media while waiting`);
}

// axe runs axe-core (npm axe-core) in the page as it is now and fails on
// any serious or critical violation, naming each with its elements. The
// script is evaluated, not added as a tag: the pages' CSP allows no inline
// script.
const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
export async function axe(page, state) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`));
  if (violations.length) throw new Error(`axe-core, ${state}:\n  ${violations.join('\n  ')}`);
}

// audioFrom is the energy of the audio the page received from participants
// whose id starts with prefix ('guest:', 'visit:', 'user:'): the media node
// sends each participant's tracks in a stream named for them.
export async function audioFrom(page, prefix) {
  return page.evaluate(async (p) => {
    const m = window.handoff.media;
    if (!m || !m.pc) return 0;
    const tracks = new Set([...m.streams.values()].filter((st) => st.id.startsWith(p)).flatMap((st) => st.getAudioTracks().map((t) => t.id)));
    let energy = 0;
    (await m.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio' && tracks.has(r.trackIdentifier)) energy += r.totalAudioEnergy || 0;
    });
    return energy;
  }, prefix);
}

// hearsFrom checks that the page hears a participant whose id starts with
// prefix: the audio received from them carries sound, and keeps coming.
export async function hearsFrom(page, prefix, label = 'page') {
  const deadline = Date.now() + 20000;
  const before = await audioFrom(page, prefix);
  let now = before;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    now = await audioFrom(page, prefix);
    if (now > before + 0.001) return now - before;
  }
  throw new Error(`${label}: no sound from ${prefix}… (energy ${before} → ${now})`);
}

// hearsNothingFrom checks that no more sound arrives from prefix.
export async function hearsNothingFrom(page, prefix, label = 'page') {
  await new Promise((r) => setTimeout(r, 1000));
  const a = await audioFrom(page, prefix);
  await new Promise((r) => setTimeout(r, 2000));
  const b = await audioFrom(page, prefix);
  if (b > a + 0.0001) throw new Error(`${label}: still hears ${prefix}… (energy ${a} → ${b})`);
}
