// Call controls as people use them (issue 18): the provider mutes and the
// patient hears nothing, then hears again; the patient turns the camera off
// and the provider's page says so; each side sees its connection quality;
// the provider shares the screen and the patient keeps receiving video, and
// stopping returns to the camera.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, card, admit, hears } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

// energyOver is the audio energy the page receives over ms (getStats
// totalAudioEnergy: what a listener hears).
async function energyOver(page, ms) {
  const energy = () => page.evaluate(async () => (await window.handoff.media.stats()).audioEnergy);
  const a = await energy();
  await new Promise((r) => setTimeout(r, ms));
  return (await energy()) - a;
}

const controls = (page) => page.getByRole('group', { name: 'Call controls' });

test('mute, camera off, connection quality and screen sharing in a call', { timeout: 180000 }, async () => {
  const patient = await site.person('patient-controls');
  const lee = await site.person('dr-lee-controls');
  await checkIn(patient, site.base, 'dr-lee', 'Morgan Quiet');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await card(lee, 'Morgan Quiet').waitFor();
  await admit(lee, 'Morgan Quiet');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(patient, 'the patient');
  await hears(lee, 'Dr. Lee');

  // The provider mutes: the patient's received sound carries no energy and
  // the page says why; unmuted, the sound comes back.
  await controls(lee).getByRole('button', { name: 'Mute' }).click();
  await controls(lee).getByRole('button', { name: 'Unmute' }).waitFor();
  assert.equal(await controls(lee).getByRole('button', { name: 'Unmute' }).getAttribute('aria-pressed'), 'true');
  await patient.getByText('Your provider has muted their microphone.').waitFor();
  await new Promise((r) => setTimeout(r, 1000)); // what was already on its way
  const muted = await energyOver(patient, 3000);
  assert.ok(muted < 1e-6, `the muted provider is silent at the patient (energy ${muted})`);
  await patient.shot('provider-muted');
  await controls(lee).getByRole('button', { name: 'Unmute' }).click();
  await patient.getByText('Your provider has muted their microphone.').waitFor({ state: 'detached' }).catch(() => {});
  assert.equal(await patient.locator('.peer-states').innerText(), '', 'the notice goes');
  const unmuted = await energyOver(patient, 3000);
  assert.ok(unmuted > 1e-4, `the patient hears the provider again (energy ${unmuted})`);

  // The patient turns the camera off: the provider's page says so.
  await controls(patient).getByRole('button', { name: 'Turn camera off' }).click();
  await lee.getByText("Morgan Quiet's camera is off.").waitFor();
  await controls(patient).getByRole('button', { name: 'Turn camera on' }).click();
  await lee.locator('.peer-states').getByText("Morgan Quiet's camera is off.").waitFor({ state: 'detached' });

  // Each side sees its connection's quality, from getStats.
  for (const page of [patient, lee]) {
    await page.locator('.call-quality').getByText(/^Connection: (good|fair|poor) \(round trip \d+ ms, loss [\d.]+%, \d+ kbit\/s\) Video: (full quality|half resolution|low resolution); about \d+ kbit\/s can reach you\.$/).waitFor();
  }
  // Device pickers list the microphone and camera in use.
  assert.ok(await lee.getByLabel('Microphone', { exact: true }).count() === 1, 'a microphone picker');
  assert.ok(await lee.getByLabel('Camera', { exact: true }).count() === 1, 'a camera picker');

  // The provider shares the screen: it goes to the patient as a picture of
  // its own, beside the provider's camera; stopping takes it away.
  await controls(lee).getByRole('button', { name: 'Share screen' }).click();
  await controls(lee).getByRole('button', { name: 'Stop sharing' }).waitFor();
  const camera = await lee.evaluate(() => window.handoff.media.local.getVideoTracks()[0].label);
  const sent = () => lee.evaluate(() => ({ camera: window.handoff.media.senders.get('video').track?.label || '', screen: window.handoff.media.screenSender?.track?.label || '' }));
  let now = await sent();
  assert.equal(now.camera, camera, 'the camera goes on');
  assert.ok(now.screen && now.screen !== camera, `the screen is sent on its own (${JSON.stringify(now)})`);
  const screen = patient.locator('#remote video[data-screen]');
  await screen.waitFor({ timeout: 15000 });
  assert.equal(await screen.getAttribute('aria-label'), 'Shared screen');
  const frames = (sel) => patient.evaluate((q) => document.querySelector(q).getVideoPlaybackQuality().totalVideoFrames, sel);
  const s0 = await frames('#remote video[data-screen]'), c0 = await frames('#remote video:not([data-screen])');
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok((await frames('#remote video[data-screen]')) > s0, 'the patient sees the screen move');
  assert.ok((await frames('#remote video:not([data-screen])')) > c0, 'and the provider, too');
  await patient.shot('provider-shares-screen');
  await lee.shot('sharing');
  await controls(lee).getByRole('button', { name: 'Stop sharing' }).click();
  await controls(lee).getByRole('button', { name: 'Share screen' }).waitFor();
  now = await sent();
  assert.equal(now.camera, camera, 'the camera still');
  assert.equal(now.screen, '', 'no screen sent');
  await screen.waitFor({ state: 'detached', timeout: 15000 }).catch(() => { throw new Error("the patient's screen element stays after sharing stopped"); });
});
