// Guests (issue 18): Dr. Lee invites an interpreter into her call with the
// patient by a single-use link; the interpreter gives a name, waits, is let
// in, and then Dr. Lee and the patient hear the interpreter and the
// interpreter hears them; they chat; the link does not work twice; removed,
// the interpreter's page says so and the sound from them stops.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, card, admit, hears, hearsFrom, hearsNothingFrom, axe } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('a guest joins by link, is heard by both, and is removed', { timeout: 180000 }, async () => {
  const patient = await site.person('patient-guest');
  const lee = await site.person('dr-lee-guest');
  await checkIn(patient, site.base, 'dr-lee', 'Rosa Guesting');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Rosa Guesting');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await hears(patient, 'the patient');

  await card(lee, 'Rosa Guesting').getByRole('button', { name: 'Invite a guest for Rosa Guesting' }).click();
  await lee.waitForFunction(() => document.getElementById('guest-link').value !== '');
  const link = await lee.locator('#guest-link').inputValue();
  assert.match(link, /\/g#hl_/);
  await axe(lee, 'the guest link dialog');
  await lee.locator('#guest-dialog').getByRole('button', { name: 'Done' }).click();

  const guest = await site.person('interpreter');
  await guest.goto(link);
  await guest.getByText('Dr. Maya Lee invited you to join a video visit.').waitFor();
  assert.equal(new URL(guest.url()).hash, '', 'the link token leaves the address bar');
  await guest.getByLabel('Your name').fill('Ana Interpreter');
  await guest.getByRole('button', { name: 'Join' }).click();
  await guest.getByRole('heading', { name: 'Waiting for Dr. Maya Lee to let you in' }).waitFor();
  await axe(guest, 'the guest lobby');

  // The link works once.
  const other = await site.person('link-reuser');
  await other.goto(link);
  await other.getByText('This guest link was already used. Ask the provider for a new one.').waitFor();

  // Dr. Lee sees the guest waiting on the patient's card and lets them in.
  await lee.getByText('Ana Interpreter (guest) — waiting to join').first().waitFor();
  await lee.getByRole('button', { name: 'Let in Ana Interpreter' }).first().click();
  await guest.getByRole('heading', { name: 'In the call' }).waitFor();
  await patient.getByText('Ana Interpreter (guest) joined the call').waitFor();

  // Everyone hears everyone: the interpreter's own sound reaches both.
  await hearsFrom(lee, 'guest:', 'Dr. Lee hearing the interpreter');
  await hearsFrom(patient, 'guest:', 'the patient hearing the interpreter');
  await hears(guest, 'the interpreter', { count: 2 });
  await hearsFrom(guest, 'visit:', 'the interpreter hearing the patient');
  await hearsFrom(guest, 'user:', 'the interpreter hearing Dr. Lee');
  await guest.shot('in-call');
  await axe(guest, 'the guest in the call');

  // The call's chat: the interpreter writes, the patient reads it; the
  // provider answers, the interpreter reads that.
  await guest.getByLabel('Your message').fill('I will interpret for Rosa');
  await guest.getByRole('button', { name: 'Send' }).click();
  await patient.getByText('Ana Interpreter (guest):').waitFor();
  await patient.getByText('I will interpret for Rosa').waitFor();
  await card(lee, 'Rosa Guesting').getByRole('button', { name: /Messages \(1\) with Rosa Guesting/ }).click();
  await lee.locator('#chat-log').getByText('I will interpret for Rosa').waitFor();
  await lee.locator('#chat-text').fill('Thank you, Ana');
  await lee.locator('#chat-dialog').getByRole('button', { name: 'Send' }).click();
  await lee.locator('#chat-close').click();
  await guest.locator('#chat-log').getByText('Thank you, Ana').waitFor();

  // Removed: the interpreter's page says so, shows nothing of the call, and
  // no more sound from them reaches Dr. Lee or the patient.
  await lee.getByRole('button', { name: 'Remove Ana Interpreter' }).first().click();
  await guest.getByText('The provider removed you from the call. You can close this page.').waitFor();
  assert.equal(await guest.locator('#remote video').count(), 0);
  assert.equal(await guest.locator('#chat-log li').count(), 0);
  await hearsNothingFrom(lee, 'guest:', 'Dr. Lee after the removal');
  await hearsNothingFrom(patient, 'guest:', 'the patient after the removal');
  await patient.getByText('Ana Interpreter (guest) left the call').waitFor();
  await hearsFrom(patient, 'user:', 'the patient still hearing Dr. Lee');

  // A guest whose browser speaks Spanish reads the guest page in Spanish.
  await card(lee, 'Rosa Guesting').getByRole('button', { name: 'Invite a guest for Rosa Guesting' }).click();
  await lee.waitForFunction((old) => document.getElementById('guest-link').value !== old, link);
  const second = await lee.locator('#guest-link').inputValue();
  await lee.locator('#guest-dialog').getByRole('button', { name: 'Done' }).click();
  const abuela = await site.person('guest-es', { locale: 'es-ES' });
  await abuela.goto(second);
  await abuela.getByText('Dr. Maya Lee le invitó a unirse a una consulta por video.').waitFor();
  await abuela.getByLabel('Su nombre').fill('Carmen');
  await abuela.getByRole('button', { name: 'Unirse' }).click();
  await abuela.getByRole('heading', { name: 'Esperando a que Dr. Maya Lee le deje entrar' }).waitFor();
});
