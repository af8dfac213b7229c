import { test, before, after } from 'node:test';
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

// The provider's page sends its camera in three sizes; the patient's
// downlink falls to 100 kbit/s: too little for any of them and the sound.
// (A 300 kbit/s step is the pion tests': in Chromium, which layer fits it
// depends on the rate Chrome's encoder gives each size on a loaded
// machine.) The media node pauses the video to that patient, the page says
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
  await provider.waitForFunction(async () => {
    const widths = new Set();
    (await window.handoff.media.pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameWidth) widths.add(r.frameWidth); });
    return widths.size >= 3;
  }, null, { timeout: 20000 }).catch(() => { throw new Error("the provider's page does not send its camera in three sizes"); });
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
