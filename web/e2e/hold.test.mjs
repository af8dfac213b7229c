// Back to the waiting room (issue 18): Dr. Lee puts the admitted patient
// back; the patient reads why, waits again and receives no more media;
// Dr. Lee's call closes; admitted again later, they see and hear each other.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, card, admit, hears, inboundStops } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('back to the waiting room, and admitted again', { timeout: 150000 }, async () => {
  const patient = await site.person('patient-hold');
  const lee = await site.person('dr-lee-hold');
  await checkIn(patient, site.base, 'dr-lee', 'Avery Held');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Avery Held');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(patient, 'the patient');

  await card(lee, 'Avery Held').first().getByRole('button', { name: 'Back to waiting room' }).click();
  await patient.getByText('Dr. Maya Lee has put you back in the waiting room. Please wait here.').waitFor();
  await patient.getByRole('heading', { name: 'Waiting for Dr. Maya Lee' }).waitFor();
  await inboundStops(patient, 'the held patient');
  await lee.getByText('Avery Held is back in the waiting room').first().waitFor();
  await lee.locator('#call').waitFor({ state: 'hidden' }); // Dr. Lee's 1:1 call ended with it
  assert.equal(await patient.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');
  await patient.shot('held');

  await card(lee, 'Avery Held').getByRole('button', { name: 'Admit' }).click();
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(patient, 'the patient, admitted again');
  await hears(lee, 'Dr. Lee, after the second admit');
});
