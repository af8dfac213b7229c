import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, admit, hears, inboundGrows } from './site.mjs';
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
  net.dropUDP(net.clinic);
  site = await startSite({ netns: { ns: server, host: '198.18.1.1' }, devArgs: ['--ice-udp-port', '7882', '--ice-tcp-port', '7881'] });
});
after(async () => { await site?.stop(); net?.remove(); });

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
// patient's connection is poor; once it recovers, the notice goes.
test("a patient on a bad link: the provider is told the patient's connection is poor", async () => {
  const patient = await site.person('patient-poor', { netns: net.home });
  const provider = await site.person('dr-lee-poor', { netns: net.clinic });
  await checkIn(patient, site.base, 'dr-lee', 'Ola Weak');
  await login(provider, site.base, 'dr.lee@riverside.example');
  await admit(provider, 'Ola Weak');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(provider, 'the provider');
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

// The patient's downlink falls to 100 kbit/s: too little for the
// provider's camera and the sound both. The media node pauses the video to
// that patient, the page says so, the sound goes on; when the link
// recovers the video comes back and the notice goes.
test('a patient whose link cannot carry video: video pauses, the sound goes on, and it comes back', async () => {
  const patient = await site.person('patient-starved', { netns: net.home });
  const provider = await site.person('dr-lee-starved', { netns: net.clinic });
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
  await provider.waitForFunction(async () => {
    const widths = new Set();
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameWidth) widths.add(r.frameWidth); });
    return widths.size >= 3;
  }, null, { timeout: 20000 }).catch(() => { throw new Error("the provider's page does not send its camera in three sizes"); });
  // The width of the picture the patient decodes now (of its busiest
  // incoming video stream: the provider's camera).
  const inboundWidth = () => patient.evaluate(async () => {
    let best = null;
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video' && (!best || r.packetsReceived > best.packetsReceived)) best = r; });
    return best ? best.frameWidth || 0 : 0;
  });
  await patient.locator('.call-quality[data-layer="full"]').waitFor({ timeout: 30000 })
    .catch(() => { throw new Error('the patient never got the full layer on an open link'); });
  const fullWidth = await inboundWidth();
  try {
    // 300 kbit/s: a smaller picture, not none.
    net.limitDownlink(net.home, 300);
    const narrowed = Date.now();
    // (The estimate can fall below even the lowest layer while the queue
    // drains, pausing the video for a moment; what the patient is left
    // with is the lower layer.)
    await patient.locator('.call-quality[data-layer="half"], .call-quality[data-layer="quarter"]').waitFor({ timeout: 25000 })
      .catch(async () => { throw new Error(`no lower layer on 300 kbit/s: ${await patient.locator('.call-quality').textContent()}`); });
    // And the picture goes on: frames keep being decoded on the lower layer.
    const decoded = () => patient.evaluate(async () => {
      let best = null;
      (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video' && (!best || r.packetsReceived > best.packetsReceived)) best = r; });
      return best ? best.framesDecoded || 0 : 0;
    });
    const framesBefore = await decoded();
    const deadline = Date.now() + 10000;
    while (await decoded() < framesBefore + 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    assert.ok(await decoded() >= framesBefore + 20, `the picture goes on at the lower layer (${framesBefore} → ${await decoded()} frames decoded)`);
    console.log(`the lower layer ${Date.now() - narrowed} ms after the link fell to 300 kbit/s; picture ${fullWidth} px wide on the full layer, ${await inboundWidth()} px now`);
    assert.equal(await notice.isVisible(), false, 'a smaller picture, not a paused one');
    await hears(patient, 'the patient on 300 kbit/s');

    net.limitDownlink(net.home, 100);
    const limited = Date.now();
    await notice.waitFor({ timeout: 30000 });
    console.log(`video paused ${Date.now() - limited} ms after the patient's link fell to 100 kbit/s`);
    await patient.locator('.call-quality[data-level="poor"][data-layer="paused"]').waitFor({ timeout: 10000 });
    await hears(patient, 'the patient with video paused');
    await patient.shot('video-paused-sound-goes-on');
  } finally {
    net.unlimitDownlink(net.home);
  }
  const lifted = Date.now();
  await notice.waitFor({ state: 'hidden', timeout: 20000 });
  console.log(`video back ${Date.now() - lifted} ms after the link recovered`);
  const before = await videoBytes();
  await patient.waitForFunction(async (b) => {
    let bytes = 0;
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') bytes += r.bytesReceived || 0; });
    return bytes > b + 20000;
  }, before, { timeout: 15000 }).catch(() => { throw new Error('no video after the link recovered'); });
  await hears(patient, 'the patient after the link recovered');
});
