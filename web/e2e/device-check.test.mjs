// The device check before check-in (issue 18): the patient sees the
// camera's preview, the microphone's level moving, plays a test sound,
// picks devices, can join with audio only, and is told what to do when the
// browser blocked the camera — and is waiting within a minute.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, login, admit, hears } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('a device check, then a visit with audio only', { timeout: 120000 }, async () => {
  const patient = await site.person('patient-device-check');
  const opened = Date.now();
  await patient.goto(`${site.base}/c/dr-lee`);
  await patient.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
  await patient.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 15000 });
  await patient.waitForFunction(() => document.getElementById('mic-level').value > 0.01, null, { timeout: 15000 }); // the fake microphone's tone
  assert.ok(await patient.getByLabel('Camera', { exact: true }).locator('option').count() >= 1, 'a camera to pick');
  assert.ok(await patient.getByLabel('Microphone', { exact: true }).locator('option').count() >= 1, 'a microphone to pick');
  await patient.getByRole('button', { name: 'Play a test sound' }).click();
  await patient.getByText('Playing a test sound').waitFor();
  assert.equal(await patient.evaluate(() => document.getElementById('device-help').classList.contains('hidden')), true, 'nothing to fix');
  await patient.shot('device-check');

  // Audio only: the preview goes, and the visit sends sound alone.
  await patient.getByLabel('Join with audio only (camera off)').check();
  await patient.waitForFunction(() => document.getElementById('preview').classList.contains('hidden'));
  await patient.getByLabel('Your name').fill('Rory Voice');
  await patient.getByLabel('I agree to a video visit').check();
  await patient.getByRole('button', { name: 'Check in' }).click();
  await patient.getByText('Waiting for Dr. Maya Lee').waitFor();
  assert.ok(Date.now() - opened < 60000, 'from the link to waiting in under a minute');
  const lee = await site.person('dr-lee-device-check');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Rory Voice');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(lee, 'Dr. Lee hears the audio-only patient');
  assert.deepEqual(await patient.evaluate(() => window.handoff.stream.getTracks().map((t) => t.kind)), ['audio'], 'only the microphone is sent');
});

test('a blocked camera is explained, and the patient can still check in', { timeout: 120000 }, async () => {
  // The real permission policy: the camera is refused, the microphone allowed.
  const patient = await site.person('patient-blocked', { browserArgs: [], permissions: ['microphone'] });
  await patient.goto(`${site.base}/c/dr-lee`);
  await patient.getByRole('alert').getByText(/Your browser blocked the camera\. To allow it, select the camera or lock icon/).waitFor();
  await patient.shot('camera-blocked');
  await patient.getByLabel('Your name').fill('Sam Blocked');
  await patient.getByLabel('I agree to a video visit').check();
  await patient.getByRole('button', { name: 'Check in' }).click();
  await patient.getByText('Waiting for Dr. Maya Lee').waitFor();
  await patient.getByText('Your camera is off or not available: the visit goes on with sound only.').waitFor();
});
