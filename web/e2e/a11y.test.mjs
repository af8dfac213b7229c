// Accessibility (issue 18): axe-core finds nothing serious or critical on
// either page in each state a person meets — check-in, waiting, being
// transferred, in a call, a dialog open — and a patient checks in, and a
// provider transfers, with the keyboard alone; arrivals are announced in a
// live region.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, login, card, axe } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('both pages pass axe-core in every state, by keyboard alone', { timeout: 240000 }, async () => {
  const patient = await site.person('patient-a11y');
  const lee = await site.person('dr-lee-a11y');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await axe(lee, 'dashboard, nobody waiting');

  // The patient checks in with the keyboard: Tab, type, Space, Enter.
  await patient.goto(`${site.base}/c/dr-lee`);
  await patient.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
  await axe(patient, 'check-in');
  await patient.keyboard.press('Tab');
  assert.equal(await patient.evaluate(() => document.activeElement.id), 'name');
  await patient.keyboard.type('Kai Keys');
  await patient.keyboard.press('Tab');
  await patient.keyboard.press('Space');
  await patient.keyboard.press('Tab');
  await patient.keyboard.press('Enter');
  await patient.getByText('Waiting for Dr. Maya Lee').waitFor();
  await axe(patient, 'waiting');

  // The arrival is announced in a live region of the dashboard.
  await lee.locator('#alerts[aria-live="polite"]').getByText('Kai Keys is waiting in Dr. Maya Lee').waitFor();
  await card(lee, 'Kai Keys').waitFor();
  await axe(lee, 'dashboard, a patient waiting');

  // Dialogs: messages and transfer, opened and used from the keyboard.
  await card(lee, 'Kai Keys').getByRole('button', { name: 'Message Kai Keys' }).focus();
  await lee.keyboard.press('Enter');
  await lee.getByRole('dialog', { name: 'Messages with Kai Keys' }).waitFor(); // the dialog's title
  await axe(lee, 'messages dialog open');
  await lee.keyboard.press('Escape');
  await card(lee, 'Kai Keys').getByRole('button', { name: 'Transfer Kai Keys' }).focus();
  await lee.keyboard.press('Enter');
  const dialog = lee.getByRole('dialog', { name: 'Transfer Kai Keys' });
  await dialog.waitFor();
  await axe(lee, 'transfer dialog open');
  await lee.getByLabel('Room', { exact: true }).focus();
  const patelRoom = await lee.locator('#transfer-room option', { hasText: /^Dr\. Arjun Patel/ }).first().getAttribute('value');
  await lee.getByLabel('Room', { exact: true }).selectOption(patelRoom);
  await lee.getByLabel('Hand-off note (optional)').focus();
  await lee.keyboard.type('needs a refill');
  await lee.keyboard.press('Tab'); // Cancel
  await lee.keyboard.press('Tab'); // Transfer
  await lee.keyboard.press('Enter');

  // Being transferred, and after it.
  await patient.locator('#loading').getByText("Taking you to Dr. Arjun Patel's room now").waitFor();
  await axe(patient, 'being transferred');
  await patient.getByText("You have been transferred to Dr. Arjun Patel's room").waitFor();
  await axe(patient, 'transferred, waiting again');

  // In a call.
  const patel = await site.person('dr-patel-a11y');
  await login(patel, site.base, 'dr.patel@riverside.example');
  await card(patel, 'Kai Keys').getByRole('button', { name: 'Admit' }).focus();
  await patel.keyboard.press('Enter');
  await patient.getByText('In your visit with Dr. Arjun Patel').waitFor();
  await patel.locator('#call').waitFor();
  await axe(patient, 'in a call');
  await axe(patel, 'in a call');
});
