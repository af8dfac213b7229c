// Waiting as people see it (issue 18): the patient's place in line, which
// moves up as others are admitted; the provider's desktop notification and
// tab-title count when a patient arrives; a card that stands out once the
// wait passes the clinic's threshold.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, card, admit } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('place in line, desktop alerts, the tab title and long waits', { timeout: 180000 }, async () => {
  const lee = await site.person('dr-lee-waiting');
  // The desktop's notifications, as the page makes them (a person who
  // allowed them); headless Chromium shows none itself.
  await lee.addInitScript(() => {
    window.notes = [];
    window.Notification = class {
      constructor(title, options) { window.notes.push(`${title}: ${options.body}`); }
      static get permission() { return 'granted'; }
      static requestPermission() { return Promise.resolve('granted'); }
    };
  });
  await login(lee, site.base, 'dr.lee@riverside.example');
  await lee.getByRole('region', { name: 'Dr. Maya Lee waiting room' }).getByText('No one is waiting.').waitFor();

  const first = await site.person('patient-first');
  await checkIn(first, site.base, 'dr-lee', 'Wren Early');
  await first.getByText('You are next.').waitFor();
  await card(lee, 'Wren Early').waitFor();
  await lee.waitForFunction(() => window.notes.some((n) => n === 'Handoff: Wren Early is waiting in Dr. Maya Lee'));
  await lee.waitForFunction(() => document.title === '(1) Handoff — provider dashboard');

  const second = await site.person('patient-second');
  await checkIn(second, site.base, 'dr-lee', 'Yael Later');
  await second.getByText('You are number 2 in line.').waitFor();
  await lee.waitForFunction(() => document.title === '(2) Handoff — provider dashboard');
  await second.shot('second-in-line');

  // Dr. Lee admits the first: the second moves up, without a reload.
  await admit(lee, 'Wren Early');
  await first.getByText('In your visit with Dr. Maya Lee').waitFor();
  await second.getByText('You are next.').waitFor({ timeout: 20000 });
  await lee.waitForFunction(() => document.title === '(1) Handoff — provider dashboard');
  assert.equal(await second.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');

  // A wait past the clinic's threshold (15 min by default) stands out in
  // words and colour; here the card's check-in time is moved back 20 min.
  const later = card(lee, 'Yael Later');
  assert.equal(await later.getByText(/Waiting over \d+ min/).count(), 0);
  await lee.evaluate(() => {
    for (const w of Object.values(window.handoff.waiting)) {
      for (const v of w.waiting) v.checkedInAt = new Date(Date.now() - 20 * 60000).toISOString();
    }
  });
  await later.getByText('Waiting over 15 min').waitFor();
  assert.match(await later.getAttribute('class'), /long-wait/);
  await lee.shot('long-wait');

  // The clinic's admin sets the threshold and turns patients' messages off;
  // the waiting patient's page drops its message box, saying why.
  const admin = await site.person('admin-waiting');
  await login(admin, site.base, 'admin@riverside.example');
  await admin.getByRole('navigation', { name: 'Dashboard pages' }).getByRole('button', { name: 'Clinic', exact: true }).click();
  await admin.getByRole('tab', { name: 'Rooms', exact: true }).click();
  await admin.getByLabel('Highlight patients waiting longer than (minutes)').fill('30');
  await admin.getByLabel('Patients may send messages').uncheck();
  await admin.getByRole('button', { name: 'Save waiting-room settings' }).click();
  await admin.getByText('Waiting-room settings saved.').waitFor();
  await second.getByText('This clinic does not take messages here.').waitFor({ timeout: 20000 });
  assert.equal(await second.getByLabel('Your message').isVisible(), false);
});
