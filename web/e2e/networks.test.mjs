import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, admit, hears, inboundGrows, opusFmtp } from './site.mjs';
import { lab } from './netns.mjs';

// The clinic's network drops all UDP (as some hospitals' do): the
// provider's Chromium reaches the media node over ICE-TCP. handoff dev runs
// in a "server" namespace, each browser in a namespace of its own.
let site, net;
before(async () => {
  net = lab();
  const server = net.host('server', '198.18.1');
  net.clinic = net.host('clinic', '198.18.2');
  net.home = net.host('home', '198.18.3');
  // The weak-link test's own network: pages of earlier tests still open at
  // home would share its limited downlink.
  net.weak = net.host('weak', '198.18.4');
  net.office = net.host('office', '198.18.5'); // an open network, for the weak-link test's provider
  // A long path (80 ms each way toward the patient), later also a slow one.
  net.far = net.host('far', '198.18.6');
  await net.delayDownlink(net.far, 80);
  net.dropUDP(net.clinic);
  site = await startSite({ netns: { ns: server, host: '198.18.1.1' }, devArgs: ['--ice-udp-port', '7882', '--ice-tcp-port', '7881'], trace: true });
});
after(async () => { await site?.stop(); net?.remove(); });
// Each test's pages close after it: on two cores an earlier call left
// running takes the CPU (and the encoder's rates) from the next test's.
afterEach(async () => { await site?.closeAll(); });

// selectedPath is the page's nominated candidate pair: local type and protocol.
const selectedPath = (page) => page.evaluate(async () => {
  const stats = await window.handoff.media.pc.getStats();
  let path = null;
  stats.forEach((r) => {
    if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
      const local = stats.get(r.localCandidateId);
      path = `${local.candidateType}/${local.protocol}`;
    }
  });
  return path;
});

test('a provider behind a firewall that drops all UDP hears and sees the patient over ICE-TCP', async () => {
  const patient = await site.person('patient-home', { netns: net.home });
  const provider = await site.person('dr-lee-clinic', { netns: net.clinic });
  await checkIn(patient, site.base, 'dr-lee', 'Kai Lund');
  await login(provider, site.base, 'dr.lee@riverside.example');
  await admit(provider, 'Kai Lund');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await inboundGrows(provider, 'the provider behind the firewall');
  await hears(provider, 'the provider behind the firewall');
  await hears(patient, 'the patient at home');
  // Chromium's active TCP candidate is learnt by the node as peer-reflexive.
  assert.match(await selectedPath(provider), /\/tcp$/, 'the provider\'s media goes over TCP');
  assert.match(await selectedPath(patient), /\/udp$/, 'the patient\'s over UDP');
  await provider.shot('call-through-udp-firewall');
});

test("the patient's address changes mid-call: the page resumes its media session, no rejoin, the call goes on", async () => {
  const patient = await site.person('patient-moving', { netns: net.home });
  const provider = await site.person('dr-lee-moving', { netns: net.clinic });
  const rejoins = [];
  patient.on('request', (r) => { if (r.url().endsWith('/api/v1/media/rejoin')) rejoins.push(r.url()); });
  await checkIn(patient, site.base, 'dr-lee', 'Lee Moss');
  await login(provider, site.base, 'dr.lee@riverside.example');
  await admit(provider, 'Lee Moss');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(provider, 'the provider before the move');

  // Wi-Fi to cellular, as the kernel sees it: the old address is gone.
  net.inNs(net.home, 'ip', 'addr', 'flush', 'dev', 'eth0');
  net.inNs(net.home, 'ip', 'addr', 'add', '198.18.3.7/24', 'dev', 'eth0');
  net.inNs(net.home, 'ip', 'route', 'replace', 'default', 'via', '198.18.3.254');
  const moved = Date.now();
  await patient.waitForFunction(() => (window.handoff.media.resumes || 0) >= 1, null, { timeout: 40000 })
    .catch(() => { throw new Error('the patient page did not resume its media session'); });
  await inboundGrows(provider, 'the provider after the patient moved');
  await hears(provider, 'the provider after the patient moved');
  await inboundGrows(patient, 'the patient after the move');
  console.log(`the patient's media came back ${Date.now() - moved} ms after its address changed`);
  assert.deepEqual(rejoins, [], 'no /media/rejoin: the same session, the same call');
  assert.equal(await patient.evaluate(() => window.handoff.media.reconnects), 0, 'no new session either');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
});

// The patient's downlink turns bad (40% of what reaches the home lost): the
// patient's page measures it and says so, and Dr. Lee reads that the
// patient's connection is poor; once it recovers, the notice goes. Both
// sides' sound is Opus with in-band FEC, in each direction: a lost packet's
// sound is rebuilt from the next one's.
test("a patient on a bad link: the provider is told the patient's connection is poor", async () => {
  const patient = await site.person('patient-poor', { netns: net.home });
  const provider = await site.person('dr-lee-poor', { netns: net.clinic });
  await checkIn(patient, site.base, 'dr-lee', 'Ola Weak');
  await login(provider, site.base, 'dr.lee@riverside.example');
  await admit(provider, 'Ola Weak');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(provider, 'the provider');
  for (const [who, page] of [['patient', patient], ['provider', provider]]) {
    const fmtp = await opusFmtp(page);
    assert.ok(fmtp.sent.length === 1 && fmtp.received.length >= 1, `the ${who} sends and receives Opus: ${JSON.stringify(fmtp)}`);
    for (const line of [...fmtp.sent, ...fmtp.received]) assert.match(line, /useinbandfec=1/, `the ${who}'s Opus carries in-band FEC: ${JSON.stringify(fmtp)}`);
  }
  try {
    net.lossyDownlink(net.home, 0.4);
    await patient.locator('.call-quality[data-level="poor"]').waitFor({ timeout: 30000 });
    await provider.getByText("Ola Weak's connection is poor: sound or video may break up.").waitFor({ timeout: 15000 });
    await provider.shot('patient-connection-poor');
  } finally {
    net.clearDownlink(net.home, 0.4);
  }
  await provider.getByText("Ola Weak's connection is poor").waitFor({ state: 'detached', timeout: 30000 });
});

// sendsThreeSizes waits until page sends its camera in three sizes (simulcast).
const sendsThreeSizes = (page) => page.waitForFunction(async () => {
  const widths = new Set();
  (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameWidth) widths.add(r.frameWidth); });
  return widths.size >= 3;
}, null, { timeout: 20000 }).catch(() => { throw new Error('the page does not send its camera in three sizes'); });

// cameraMlines: the widths page sends on each video m-line, in m-line order
// (full, half, quarter expected; nothing on the screen's while not sharing).
const cameraMlines = (page) => page.evaluate(async () => {
  const out = [];
  (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameWidth) out.push([Number(r.mid), r.frameWidth]); });
  return out.sort((a, b) => a[0] - b[0]).map((m) => m[1]);
});

// The widest video frame the page decodes now.
const frameWidth = (page) => page.evaluate(async () => {
  let w = 0;
  (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video' && r.frameWidth) w = Math.max(w, r.frameWidth); });
  return w;
});

// The patient's downlink (80 ms from the node) falls to 300 kbit/s: the
// provider's full-size camera no longer fits beside the sound. Within 5 s
// the node sends the patient a smaller size (the page decodes narrower
// frames), and over the next 30 s the sound arrives with no gap longer
// than 200 ms (the arrival time of the page's last audio packet, read
// every 20 ms; Chromium refreshes it about every 50 ms, so a real gap is
// never longer than the one seen).
test('a patient whose link falls to 300 kbit/s with 80 ms of delay gets a smaller video within 5 s and the sound never breaks', async () => {
  const patient = await site.person('patient-far', { netns: net.far });
  const provider = await site.person('dr-lee-far', { netns: net.office });
  await checkIn(patient, site.base, 'dr-lee', 'Ida Far');
  await login(provider, site.base, 'dr.lee@riverside.example');
  await admit(provider, 'Ida Far');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(patient, 'the patient');
  await sendsThreeSizes(provider);
  const sizes = await cameraMlines(provider);
  assert.ok(sizes.length === 3 && sizes[0] > sizes[1] && sizes[1] > sizes[2], `the provider's camera sizes go on the node's layer m-lines in order, none on the screen's: ${sizes}`);
  // On the open (if long) link the node moves the patient up to the full size.
  await patient.waitForFunction(() => window.handoff.media.link?.layer === 'full', null, { timeout: 45000 })
    .catch(async () => { throw new Error(`the patient never gets the full size on an open link: ${JSON.stringify(await patient.evaluate(() => window.handoff.media.link))}`); });
  await patient.waitForFunction(async () => {
    let w = 0;
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video' && r.frameWidth) w = Math.max(w, r.frameWidth); });
    return w >= 640;
  }, null, { timeout: 10000 }).catch(() => {});
  const fullWidth = await frameWidth(patient);
  // The media node's allocator trace of the patient's downlink, for a
  // failure: its estimate, probes and layer choices.
  const participant = await patient.evaluate(() => window.handoff.media.last?.participant);
  const traced = () => `\nthe node's trace of ${participant}:\n${site.logTail(participant)}`;
  try {
    net.limitDownlink(net.far, 300);
    const limited = Date.now();
    await patient.waitForFunction(() => ['half', 'quarter'].includes(window.handoff.media.link?.layer), null, { timeout: 5000 })
      .catch(async () => { throw new Error(`no lower layer within 5 s of the link falling to 300 kbit/s: ${JSON.stringify(await patient.evaluate(() => window.handoff.media.link))}${traced()}`); });
    const switched = Date.now() - limited;
    await patient.waitForFunction(async (full) => {
      let w = 0;
      (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video' && r.frameWidth) w = Math.max(w, r.frameWidth); });
      return w > 0 && w < full;
    }, fullWidth, { timeout: 5000 - Math.min(switched, 4000) + 1000 })
      .catch(async () => { throw new Error(`the patient still decodes ${await frameWidth(patient)}-wide frames (full: ${fullWidth})`); });
    const smaller = Date.now() - limited;
    const audio = await patient.evaluate(async () => {
      const pc = window.handoff.media.pc;
      const end = performance.now() + 30000;
      let last = 0, maxGap = 0, packets = 0, layers = new Set(), samples = 0, paused = 0;
      while (performance.now() < end && samples < 3000) {
        samples++;
        (await pc.getStats()).forEach((r) => {
          if (r.type !== 'inbound-rtp' || r.kind !== 'audio' || !r.lastPacketReceivedTimestamp) return;
          if (last && r.lastPacketReceivedTimestamp > last) maxGap = Math.max(maxGap, r.lastPacketReceivedTimestamp - last);
          last = Math.max(last, r.lastPacketReceivedTimestamp);
          packets = r.packetsReceived;
        });
        layers.add(window.handoff.media.link?.layer);
        if (window.handoff.media.link?.layer === 'paused') paused++;
        await new Promise((r) => setTimeout(r, 20));
      }
      return { maxGap, packets, samples, layers: [...layers], pausedShare: paused / samples };
    });
    console.log(`300 kbit/s, 80 ms: lower layer ${switched} ms after the limit, narrower frames (${fullWidth} → ${await frameWidth(patient)}) at ${smaller} ms; over 30 s the longest audio gap seen was ${Math.round(audio.maxGap)} ms (${audio.samples} samples; layers ${audio.layers.join(', ')}; paused ${Math.round(100 * audio.pausedShare)} % of the time)`);
    assert.ok(audio.maxGap > 0, `no audio arrival times were read: ${JSON.stringify(audio)}`);
    assert.ok(audio.maxGap <= 200, `the sound broke off for ${Math.round(audio.maxGap)} ms on the 300 kbit/s link${traced()}`);
    assert.ok(!audio.layers.includes('full'), `the full size came back on a 300 kbit/s link: ${audio.layers}${traced()}`);
    await hears(patient, 'the patient on the slow link');
    assert.equal(await patient.locator('#remote video[data-screen]').count(), 0, 'the patient is shown a shared screen though nobody shares');
  } finally {
    net.unlimitDownlink(net.far);
  }
});

// The provider's page sends its camera in three sizes; the patient's
// downlink falls to 100 kbit/s: too little for any of them and the sound.
// The media node pauses the video to that patient, the page says
// so, the sound goes on; within 10 s of the link recovering the video comes
// back and the notice goes.
test('a patient whose link cannot carry video: video pauses, the sound goes on, and it comes back', async () => {
  const patient = await site.person('patient-starved', { netns: net.weak });
  const provider = await site.person('dr-lee-starved', { netns: net.office });
  await checkIn(patient, site.base, 'dr-lee', 'Ned Thin');
  await login(provider, site.base, 'dr.lee@riverside.example');
  await admit(provider, 'Ned Thin');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(patient, 'the patient');
  const notice = patient.locator('[data-notice="video-paused"]').getByText('Video paused to keep the sound clear.');
  const videoBytes = () => patient.evaluate(async () => {
    let bytes = 0;
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') bytes += r.bytesReceived || 0; });
    return bytes;
  });
  // The provider's camera goes out in three sizes (simulcast).
  await sendsThreeSizes(provider);
  await patient.locator('.call-quality[data-layer]').waitFor({ timeout: 30000 })
    .catch(() => { throw new Error("the patient's page is never told its layer"); });
  try {
    net.limitDownlink(net.weak, 100);
    const limited = Date.now();
    await notice.waitFor({ timeout: 30000 });
    console.log(`video paused ${Date.now() - limited} ms after the patient's link fell to 100 kbit/s`);
    await patient.locator('.call-quality[data-level="poor"][data-layer="paused"]').waitFor({ timeout: 10000 });
    await hears(patient, 'the patient with video paused');
    await patient.shot('video-paused-sound-goes-on');
  } finally {
    net.unlimitDownlink(net.weak);
  }
  const lifted = Date.now();
  await notice.waitFor({ state: 'hidden', timeout: 10000 })
    .catch(() => { throw new Error('the video did not come back within 10 s of the link recovering'); });
  console.log(`video back ${Date.now() - lifted} ms after the link recovered`);
  const before = await videoBytes();
  await patient.waitForFunction(async (b) => {
    let bytes = 0;
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') bytes += r.bytesReceived || 0; });
    return bytes > b + 20000;
  }, before, { timeout: 15000 }).catch(() => { throw new Error('no video after the link recovered'); });
  await hears(patient, 'the patient after the link recovered');
});
