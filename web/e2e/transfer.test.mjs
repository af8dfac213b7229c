import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, card, transfer, admit, inboundGrows, inboundStops, hears, sendsNothing } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('transfer from the waiting room, then the receiver admits and both see video', async () => {
  const patient = await site.person('patient');
  const lee = await site.person('dr-lee');
  const patel = await site.person('dr-patel');

  await checkIn(patient, site.base, 'dr-lee', 'Alex Rivera');
  await patient.getByText('Waiting for Dr. Maya Lee').waitFor();
  await sendsNothing(patient, 'the waiting patient'); // the camera preview stays on the page
  await patient.shot('waiting');

  await login(lee, site.base, 'dr.lee@riverside.example');
  await card(lee, 'Alex Rivera').waitFor();
  await lee.shot('dashboard');
  await login(patel, site.base, 'dr.patel@riverside.example');

  await transfer(lee, 'Alex Rivera', 'Dr. Arjun Patel');
  await lee.getByText('Transferred to Dr. Arjun Patel').first().waitFor();
  await lee.shot('transferred-to');

  await patient.getByText("You have been transferred to Dr. Arjun Patel's room").waitFor();
  await patient.getByText('Waiting for Dr. Arjun Patel').waitFor();
  const shown = await patient.evaluate(() => window.handoff.shown);
  assert.deepEqual(shown.slice(0, 2), ["Taking you to Dr. Arjun Patel's room now", "You have been transferred to Dr. Arjun Patel's room"]);
  const navigations = await patient.evaluate(() => performance.getEntriesByType('navigation').length);
  assert.equal(navigations, 1, 'no reload');
  await patient.shot('transfer-message');

  await card(patel, 'Alex Rivera').getByText('Transferred by Dr. Maya Lee').waitFor();
  await patel.shot('transferred-by');
  await admit(patel, 'Alex Rivera');
  await patient.getByText('In your visit with Dr. Arjun Patel').waitFor();
  await inboundGrows(patel, 'Dr. Patel');
  await inboundGrows(patient, 'patient');
  await hears(patel, 'Dr. Patel');
  await hears(patient, 'the patient');
  await patel.shot('call');
  await patient.shot('call');

  // A reload resumes the same visit, nothing to re-enter.
  await patient.reload();
  await patient.getByText('In your visit with Dr. Arjun Patel').waitFor();
});

test('transfer during a 1:1 call ends the call for the sender', async () => {
  const patient = await site.person('patient-1to1');
  const lee = await site.person('dr-lee-1to1');
  await checkIn(patient, site.base, 'dr-lee', 'Blair Chen');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Blair Chen');
  await lee.locator('#call').waitFor();
  await inboundGrows(lee);
  await lee.getByRole('button', { name: 'Open shared notes' }).click();
  await lee.locator('#apps li').first().waitFor();

  await inboundGrows(patient, 'patient in the call');
  await transfer(lee, 'Blair Chen', 'Urgent Care');
  await lee.getByText('The call has ended').first().waitFor();
  assert.equal(await lee.locator('#call').isHidden(), true, "the sender's session ends");
  await patient.getByText("You have been transferred to Urgent Care's room").waitFor();
  await inboundStops(patient, 'transferred patient');
  assert.equal(await lee.locator('#apps li').count(), 0, 'the app closed with the call');
  await lee.shot('after-1to1-transfer');
});

test('transfer from a group call removes only that patient', async () => {
  const one = await site.person('patient-group-1');
  const two = await site.person('patient-group-2');
  const lee = await site.person('dr-lee-group');
  await checkIn(one, site.base, 'dr-lee', 'Casey Diaz');
  await checkIn(two, site.base, 'dr-lee', 'Devon Ell');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Casey Diaz');
  await lee.locator('#call').waitFor();
  await card(lee, 'Devon Ell').getByRole('button', { name: 'Add to call' }).waitFor();
  await admit(lee, 'Devon Ell', { toCall: true });
  await inboundGrows(one);
  await inboundGrows(two);
  // Everyone hears everyone: the provider both patients, each patient the
  // provider and the other patient.
  await hears(lee, 'Dr. Lee', { count: 2 });
  await hears(one, 'Casey', { count: 2 });
  await hears(two, 'Devon', { count: 2 });

  await transfer(lee, 'Casey Diaz', 'Dr. Arjun Patel');
  await one.getByText("You have been transferred to Dr. Arjun Patel's room").waitFor();
  await inboundStops(one, 'the transferred patient');
  assert.equal(await lee.locator('#call').isVisible(), true, 'the sender stays in the group call');
  await inboundGrows(two); // the other patient keeps video
  await inboundGrows(lee);
  await lee.shot('group-after-transfer');
});

test('the front desk transfers from the shared Reception to Dr. Lee and back', async () => {
  const patient = await site.person('patient-reception');
  const desk = await site.person('front-desk');
  const lee = await site.person('dr-lee-reception');
  await checkIn(patient, site.base, 'riverside-reception', 'Emery Fox');
  await patient.getByText('Waiting for Reception').waitFor();
  await login(desk, site.base, 'frontdesk@riverside.example');
  await transfer(desk, 'Emery Fox', 'Dr. Maya Lee');
  await patient.getByText("You have been transferred to Dr. Maya Lee's room").waitFor();
  await login(lee, site.base, 'dr.lee@riverside.example');
  await transfer(lee, 'Emery Fox', 'Reception');
  await patient.getByText("You have been transferred to Reception's room").waitFor();
  await card(desk, 'Emery Fox').getByText('Transferred by Dr. Maya Lee').waitFor();
  await desk.shot('back-in-reception');
});

test('a free-plan clinic sees no Transfer button and the API refuses', async () => {
  const patient = await site.person('patient-free');
  const cho = await site.person('dr-cho');
  await checkIn(patient, site.base, 'dr-cho', 'Frankie Gray');
  await login(cho, site.base, 'dr.cho@hillside.example');
  await card(cho, 'Frankie Gray').waitFor();
  assert.equal(await card(cho, 'Frankie Gray').getByRole('button', { name: /Transfer/ }).count(), 0);
  const status = await cho.evaluate(async () => {
    const token = sessionStorage.getItem('handoff:provider');
    const visit = window.handoff.waiting[Object.keys(window.handoff.waiting)[0]].waiting[0];
    const park = window.handoff.rooms.find((r) => r.displayName === 'Dr. Leo Park');
    const res = await fetch(`/api/v1/visits/${visit.id}/transfer`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ targetRoomId: park.id }) });
    return [res.status, (await res.json()).error.code];
  });
  assert.deepEqual(status, [403, 'plan_required']);
  await cho.shot('free-plan');
});

test('the patient page works at phone width and is labelled for assistive tech', async () => {
  const phone = await site.person('phone');
  await phone.setViewportSize({ width: 375, height: 740 });
  await phone.goto(`${site.base}/c/dr-patel`);
  await phone.getByRole('heading', { name: 'Check in to see Dr. Arjun Patel' }).waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no sideways scrolling');
  await phone.keyboard.press('Tab');
  assert.equal(await phone.evaluate(() => document.activeElement.id), 'name', 'focus starts at the name field');
  await checkIn(phone, site.base, 'dr-patel', 'Gale Hart');
  await phone.getByRole('heading', { name: 'Waiting for Dr. Arjun Patel' }).waitFor();
  await phone.shot('phone-waiting');
});

// A shared device (a clinic's tablet, a family computer): a reload in the
// same tab resumes the visit as before, but another window opening the link
// is asked before it takes up a visit it did not start; "no" forgets it on
// this device, and a visit that ended is never offered.
test('a shared device asks before resuming a visit it finds', async () => {
  const first = await site.person('patient-shared-device');
  await checkIn(first, site.base, 'dr-lee', 'Robin Shared');
  await first.getByText('Waiting for Dr. Maya Lee').waitFor();
  await first.reload();
  await first.getByText('Waiting for Dr. Maya Lee').waitFor(); // the same tab: nothing asked
  assert.equal(await first.locator('#resume').isHidden(), true);

  const second = await first.context().newPage(); // the same device, another window
  await second.goto(`${site.base}/c/dr-lee`);
  await second.getByRole('heading', { name: 'Is this your visit?' }).waitFor();
  assert.match(await second.locator('#resume-text').innerText(), /checked in on this device at .* is still open/);
  assert.equal(await second.getByText('Robin Shared').count(), 0, "the other person's name is not shown");
  await second.getByRole('button', { name: 'No, check in as someone else' }).click();
  await second.getByRole('heading', { name: 'Check in to see Dr. Maya Lee' }).waitFor();
  const third = await first.context().newPage();
  await third.goto(`${site.base}/c/dr-lee`);
  await third.getByRole('heading', { name: 'Check in to see Dr. Maya Lee' }).waitFor(); // forgotten on the device
  await third.close();

  // The first window still has its visit; its next load keeps it on the
  // device again, and the person who says "yes" continues it.
  await first.reload();
  await first.getByText('Waiting for Dr. Maya Lee').waitFor();
  const fourth = await first.context().newPage();
  await fourth.goto(`${site.base}/c/dr-lee`);
  await fourth.getByRole('button', { name: 'Yes, continue my visit' }).click();
  await fourth.getByText('Waiting for Dr. Maya Lee').waitFor();

  // Left: nothing is offered any more.
  await fourth.getByRole('button', { name: 'Leave' }).first().click();
  await fourth.getByText('Your visit has ended').waitFor();
  const fifth = await first.context().newPage();
  await fifth.goto(`${site.base}/c/dr-lee`);
  await fifth.getByRole('heading', { name: 'Check in to see Dr. Maya Lee' }).waitFor();
});
