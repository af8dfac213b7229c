// A clinic from nothing, as people do it in the browser (issue 16): against
// `handoff dev --no-demo`, an owner creates the clinic from the sign-in page,
// invites a provider who joins by the link, sets the plan, makes a shared
// room with both in it; a patient checks in there and is transferred to the
// provider's own room; the audit shows it all; the provider is deactivated,
// their open dashboard signs out, and their room's link stops taking
// check-ins. The second test uses the clinic the first one made.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startSite, checkIn, card, transfer } from './site.mjs';

let site;
before(async () => { site = await startSite({ devArgs: ['--no-demo'] }); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

const OWNER = {
  clinic: 'Harbor Family Practice', fullName: 'Jordan Blake', displayName: 'Dr. Jordan Blake',
  email: 'jordan@harbor.example', password: 'tide-pool-lantern-42',
};
const PROVIDER = { fullName: 'Ada Rivers', displayName: 'Dr. Ada Rivers', email: 'ada@harbor.example', password: 'quiet-harbor-morning-7' };
const PATIENT = 'Sam Okafor';

// Each test's windows: when a step fails, each gets a screenshot.
let windows = [];
async function person(name) {
  const page = await site.person(name);
  page.setDefaultTimeout(20000); // every wait is bounded
  windows.push(page);
  return page;
}
async function steps(fn) {
  windows = [];
  try {
    await fn();
  } catch (err) {
    for (const w of windows) await w.shot('failure').catch(() => {});
    throw err;
  }
}

const nav = (page, name) => page.getByRole('navigation', { name: 'Dashboard pages' }).getByRole('button', { name, exact: true });
async function clinicTab(page, tab) {
  await nav(page, 'Clinic').click();
  await page.getByRole('tab', { name: tab, exact: true }).click();
  const panel = page.getByRole('tabpanel', { name: tab, exact: true });
  await panel.waitFor();
  await panel.getByText('Loading…').waitFor({ state: 'detached' });
  return panel;
}
const roomRegion = (page, name) => page.getByRole('region', { name: `${name} waiting room`, exact: true });
const patientCard = (scope, name) => scope.locator(`article[aria-label="Patient ${name}"]`);

test('a clinic from nothing: create, invite, shared room, transfer, audit, deactivate', { timeout: 300000 }, () => steps(async () => {
  // The owner creates the clinic from the sign-in page.
  const owner = await person('owner');
  await owner.goto(`${site.base}/`);
  await owner.getByRole('button', { name: 'Create your clinic' }).click();
  const signup = owner.locator('#public');
  await signup.getByRole('heading', { name: 'Create your clinic' }).waitFor();
  await signup.getByLabel('Clinic name').fill(OWNER.clinic);
  await signup.getByLabel('Your full name').fill(OWNER.fullName);
  await signup.getByLabel('Display name patients see').fill(OWNER.displayName);
  await signup.getByLabel('Email').fill(OWNER.email);
  await signup.getByLabel('Password').fill(OWNER.password);
  await owner.shot('create-clinic');
  await signup.getByRole('button', { name: 'Create clinic' }).click();
  await owner.locator('#who').getByText(`${OWNER.displayName} · ${OWNER.clinic}`).waitFor();
  await roomRegion(owner, OWNER.displayName).getByText('No one is waiting.').waitFor();
  await owner.shot('new-clinic-dashboard');

  // The owner invites a provider; the link is on the page.
  let people = await clinicTab(owner, 'People');
  await people.getByRole('table', { name: 'People' }).getByRole('row', { name: new RegExp(OWNER.email) }).waitFor();
  await people.getByLabel('Email address to invite').fill(PROVIDER.email);
  await people.getByLabel('Role', { exact: true }).selectOption('member');
  await people.getByRole('button', { name: 'Send invitation' }).click();
  const link = await people.getByLabel('Invitation link', { exact: true }).inputValue();
  assert.match(link, /\/#invite=[A-Za-z0-9_-]{16,}$/, 'the invitation link');
  await people.getByRole('table', { name: 'Pending invitations' }).getByRole('row', { name: new RegExp(PROVIDER.email) }).waitFor();
  await owner.shot('invited');

  // The provider opens the link in their own browser and joins.
  const provider = await person('provider');
  await provider.goto(link);
  const join = provider.locator('#public');
  await join.getByRole('heading', { name: `Join ${OWNER.clinic} as member` }).waitFor();
  assert.equal(new URL(provider.url()).hash, '', 'the token leaves the address bar');
  await join.getByLabel('Your full name').fill(PROVIDER.fullName);
  await join.getByLabel('Display name patients see').fill(PROVIDER.displayName);
  await join.getByLabel('Password').fill(PROVIDER.password);
  await provider.shot('accept-invitation');
  await join.getByRole('button', { name: 'Accept invitation' }).click();
  await provider.locator('#who').getByText(`${PROVIDER.displayName} · ${OWNER.clinic}`).waitFor();
  await roomRegion(provider, PROVIDER.displayName).waitFor();
  assert.equal(await nav(provider, 'Clinic').count(), 0, 'a member has no Clinic area');
  await nav(provider, 'My profile').waitFor();
  await provider.shot('provider-dashboard');

  // Shared rooms wait for the Premium plan; the owner changes the plan.
  let rooms = await clinicTab(owner, 'Rooms');
  if (!(await owner.evaluate(() => window.handoff.me.features.sharedRooms))) {
    await rooms.getByText('Shared rooms need the Premium plan').waitFor();
    assert.equal(await rooms.getByRole('button', { name: 'Create room' }).isDisabled(), true, 'no shared room below Premium');
    await owner.shot('shared-rooms-need-premium');
  }
  const plan = await clinicTab(owner, 'Plan');
  await plan.getByRole('radio', { name: 'Premium' }).check();
  await plan.getByRole('button', { name: 'Save plan' }).click();
  await plan.getByText('The clinic is now on the Premium plan.').waitFor();
  await plan.getByText('Current plan: Premium').waitFor();

  // A shared room with both in it.
  rooms = await clinicTab(owner, 'Rooms');
  const create = rooms.getByRole('group', { name: 'New shared room' });
  await create.getByLabel('Room name').fill('Team Room');
  await create.getByLabel('Link (slug)').fill('team-room');
  await create.getByRole('button', { name: 'Create room' }).click();
  const team = rooms.getByRole('region', { name: 'Room Team Room', exact: true });
  await team.getByRole('link', { name: `${site.base}/c/team-room` }).waitFor();
  for (const who of [OWNER.displayName, PROVIDER.displayName]) {
    await team.getByLabel('Add a member to Team Room').selectOption({ label: who });
    await team.getByRole('button', { name: 'Add member' }).click();
    await team.getByRole('list', { name: 'Members of Team Room' }).getByRole('button', { name: `Remove ${who} from Team Room` }).waitFor();
  }
  await owner.shot('team-room');

  // A patient checks in at the new room's link.
  const patient = await person('patient');
  await checkIn(patient, site.base, 'team-room', PATIENT);
  await patient.getByText('Waiting for Team Room').waitFor();

  // The owner sees them in Team Room and transfers them to the provider's room.
  await nav(owner, 'Waiting rooms').click();
  await patientCard(roomRegion(owner, 'Team Room'), PATIENT).waitFor();
  await owner.shot('patient-in-team-room');
  await transfer(owner, PATIENT, PROVIDER.displayName);
  await owner.getByText(`Transferred to ${PROVIDER.displayName}`).first().waitFor();

  await patientCard(roomRegion(provider, PROVIDER.displayName), PATIENT).getByText(`Transferred by ${OWNER.displayName}`).waitFor();
  await provider.shot('transferred-by');
  await patient.getByText(`You have been transferred to ${PROVIDER.displayName}'s room`).waitFor();
  await patient.getByText(`Waiting for ${PROVIDER.displayName}`).waitFor();
  await patient.shot('transferred');

  // The audit trail has the clinic, the invitation, the room and the transfer.
  const audit = await clinicTab(owner, 'Audit');
  const actionCells = audit.locator('#audit-table tbody tr td:nth-child(3)');
  await actionCells.first().waitFor();
  const actions = await actionCells.allInnerTexts();
  for (const kind of ['clinic.', 'invitation.', 'room.', 'transfer.']) {
    assert.ok(actions.some((a) => a.startsWith(kind)), `an audit row ${kind}… among ${actions.join(', ')}`);
  }
  await audit.getByLabel('Kind').selectOption('room.');
  await audit.getByLabel('Person').selectOption({ label: OWNER.displayName });
  await owner.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#audit-table tbody tr')];
    return rows.length > 0 && rows.every((r) => r.cells[2].textContent.startsWith('room.') && /Jordan Blake/.test(r.cells[1].textContent));
  }, null, { timeout: 10000 }).catch(async () => {
    throw new Error(`the audit filters: ${(await audit.locator('#audit-table tbody tr').allInnerTexts()).join(' | ')}`);
  });
  await owner.shot('audit');
  await audit.getByRole('button', { name: 'Older' }).click(); // one page holds them all
  await audit.getByText('No older entries.').waitFor();

  // The owner deactivates the provider: the provider's open dashboard goes
  // back to sign-in, saying why.
  people = await clinicTab(owner, 'People');
  owner.once('dialog', (d) => d.accept());
  await people.getByRole('button', { name: `Deactivate ${PROVIDER.displayName}` }).click();
  await people.getByRole('row', { name: new RegExp(PROVIDER.email) }).getByText('Deactivated').waitFor();
  await provider.locator('#login').waitFor();
  await provider.getByText('Your access to this clinic was removed.').waitFor();
  assert.equal(await provider.locator('#dashboard').isVisible(), false);
  await provider.shot('access-removed');

  // The patient waiting in the provider's room stays, for the owner to see.
  await nav(owner, 'Waiting rooms').click();
  await patientCard(roomRegion(owner, PROVIDER.displayName), PATIENT).waitFor();
  await owner.shot('after-deactivation');

  // A new patient at the provider's link reads that it is closed.
  const slug = await owner.evaluate((n) => window.handoff.rooms.find((r) => r.displayName === n).slug, PROVIDER.displayName);
  const room = await (await fetch(`${site.base}/api/v1/checkin/${slug}`)).json();
  assert.equal(room.open, false, 'the room of a deactivated provider is closed');
  const late = await person('late-patient');
  await late.goto(`${site.base}/c/${slug}`);
  await late.getByRole('heading', { name: 'Check-in is closed' }).waitFor();
  await late.getByText(room.closedMessage).waitFor();
  assert.equal(await late.locator('#checkin-form').isVisible(), false, 'no check-in form');
  await late.shot('room-closed');
}));

test('links, passwords and rooms: a bad link, a forgotten password, the profile, tabs by keyboard, archive, downgrade, a new room link, a reset link', { timeout: 240000 }, () => steps(async () => {
  const visitor = await person('visitor');
  await visitor.goto(`${site.base}/#invite=not-a-real-token`);
  await visitor.getByRole('heading', { name: 'This link cannot be used' }).waitFor();
  assert.notEqual((await visitor.locator('#public [role=alert]').innerText()).trim(), '', "the API's reason is shown");
  assert.equal(new URL(visitor.url()).hash, '');
  await visitor.getByRole('button', { name: 'Go to sign-in' }).click();
  await visitor.getByRole('button', { name: 'Forgot password?' }).click();
  await visitor.locator('#public').getByLabel('Email').fill(OWNER.email);
  await visitor.getByRole('button', { name: 'Send reset link' }).click();
  await visitor.getByText('If that email has an account, we sent a link').waitFor();
  await visitor.shot('forgot-password');

  // The owner signs in, edits their profile and changes their password.
  const owner = await person('owner-again');
  await owner.goto(`${site.base}/`);
  await owner.locator('#login').getByLabel('Email').fill(OWNER.email);
  await owner.locator('#login').getByLabel('Password').fill(OWNER.password);
  await owner.getByRole('button', { name: 'Sign in' }).click();
  await owner.locator('#dashboard').waitFor();
  await nav(owner, 'My profile').click();
  const profile = owner.locator('#page-profile');
  await profile.getByLabel('Full name').fill('Jordan A. Blake');
  await profile.getByRole('button', { name: 'Save profile' }).click();
  await profile.getByText('Your profile was saved.').waitFor();
  const newPassword = 'lighthouse-keeper-1889';
  await profile.getByLabel('Current password').fill(OWNER.password);
  await profile.getByLabel('New password', { exact: true }).fill(newPassword);
  await profile.getByRole('button', { name: 'Change password' }).click();
  await profile.getByText('Your password was changed.').waitFor();
  // Where the owner is signed in: only here now (the password change ended
  // the others), shown with its address.
  await nav(owner, 'Waiting rooms').click();
  await nav(owner, 'My profile').click();
  const sessions = profile.getByRole('list', { name: 'Your sessions' });
  await sessions.getByText('(this one)').waitFor();
  assert.equal(await sessions.getByRole('listitem').count(), 1, 'the password change signed out every other session');
  assert.match(await sessions.getByRole('listitem').first().textContent(), /127\.0\.0\.1/);
  await owner.shot('profile');

  // The clinic's tabs work from the keyboard.
  await nav(owner, 'Clinic').click();
  await owner.getByRole('tab', { name: 'People', exact: true }).focus();
  await owner.keyboard.press('ArrowRight');
  await owner.getByRole('tab', { name: 'Rooms', exact: true, selected: true }).waitFor();
  assert.equal(await owner.evaluate(() => document.activeElement.textContent), 'Rooms', 'focus moves with the arrow key');
  await owner.keyboard.press('End');
  await owner.getByRole('tab', { name: 'Security', exact: true, selected: true }).waitFor(); // the last, for owners
  await owner.keyboard.press('ArrowRight');
  await owner.getByRole('tab', { name: 'People', exact: true, selected: true }).waitFor();

  // A room with a patient waiting is not archived; the refusal is on screen.
  const patient = await person('patient-archive');
  await checkIn(patient, site.base, 'team-room', 'Riley Moss');
  let rooms = await clinicTab(owner, 'Rooms');
  let team = rooms.getByRole('region', { name: 'Room Team Room', exact: true });
  owner.once('dialog', (d) => d.accept());
  await team.getByRole('button', { name: 'Archive room' }).click();
  await team.getByRole('alert').getByText(/1 patient is waiting/).waitFor();
  await owner.shot('archive-refused');

  // Downgrading with a shared room in use asks first; the owner goes ahead, then back to Premium.
  let plan = await clinicTab(owner, 'Plan');
  await plan.getByRole('radio', { name: 'Free' }).check();
  await plan.getByRole('button', { name: 'Save plan' }).click();
  await plan.getByRole('alert').getByText(/Confirm to change the plan/).waitFor();
  await owner.shot('downgrade-confirm');
  await plan.getByRole('button', { name: 'Downgrade anyway' }).click();
  await plan.getByText('The clinic is now on the Free plan.').waitFor();
  rooms = await clinicTab(owner, 'Rooms');
  await rooms.getByText('Shared rooms need the Premium plan').waitFor();
  assert.equal(await rooms.getByRole('region', { name: 'Room Team Room', exact: true }).count(), 0, 'a free clinic does not see its shared rooms');
  plan = await clinicTab(owner, 'Plan');
  await plan.getByRole('radio', { name: 'Premium' }).check();
  await plan.getByRole('button', { name: 'Save plan' }).click();
  await plan.getByText('The clinic is now on the Premium plan.').waitFor();

  // Archiving it while moving the patient to the owner's room is a transfer.
  rooms = await clinicTab(owner, 'Rooms');
  team = rooms.getByRole('region', { name: 'Room Team Room', exact: true });
  await team.getByLabel('Move waiting patients to').selectOption({ label: OWNER.displayName });
  owner.once('dialog', (d) => d.accept());
  await team.getByRole('button', { name: 'Archive room' }).click();
  await rooms.getByText('Team Room was archived; 1 waiting patient was moved.').waitFor();
  await patient.getByText(`You have been transferred to ${OWNER.displayName}'s room`).waitFor();

  // A new link for the owner's room; the old one leads to it.
  const mine = rooms.getByRole('region', { name: `Room ${OWNER.displayName}`, exact: true });
  await mine.getByLabel('Link (slug)').fill('jordan-blake');
  await mine.getByRole('button', { name: 'Save room' }).click();
  await rooms.getByText(`${OWNER.displayName} was saved.`).waitFor();
  await rooms.getByRole('region', { name: `Room ${OWNER.displayName}`, exact: true }).getByRole('link', { name: `${site.base}/c/jordan-blake` }).waitFor();
  const visitor2 = await person('old-link');
  await visitor2.goto(`${site.base}/c/dr-jordan-blake`);
  await visitor2.getByRole('heading', { name: `Check in to see ${OWNER.displayName}` }).waitFor();
  assert.equal(new URL(visitor2.url()).pathname, '/c/jordan-blake', 'the old link redirects');

  // An admin issues a reset link; it signs its person in with a new password.
  const people = await clinicTab(owner, 'People');
  // (The last owner stays an owner: the refusal is shown and the choice undone.)
  await people.getByLabel(`Role of ${OWNER.displayName}`).selectOption('admin');
  await people.getByRole('alert').getByText(/last owner cannot be demoted/).waitFor();
  assert.equal(await people.getByLabel(`Role of ${OWNER.displayName}`).inputValue(), 'owner');
  await people.getByRole('button', { name: `Reset link for ${OWNER.displayName}` }).click();
  const link = await people.getByLabel(`Password reset link for ${OWNER.displayName}`).inputValue();
  assert.match(link, /\/#reset=[A-Za-z0-9_-]{16,}$/, 'the reset link');
  const other = await person('reset');
  await other.goto(link);
  await other.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  await other.getByLabel('New password', { exact: true }).fill('harbor-reset-password-5');
  await other.getByRole('button', { name: 'Set new password' }).click();
  await other.locator('#who').getByText(`${OWNER.displayName} · ${OWNER.clinic}`).waitFor();
  await other.shot('signed-in-by-reset');
}));

// totp is the code an authenticator app shows at `at` (RFC 6238: HMAC-SHA1,
// 30 s steps, 6 digits), computed here apart from the server's library.
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...secret.replace(/=+$/, '')].map((c) => alphabet.indexOf(c).toString(2).padStart(5, '0')).join('');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30000)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

test('two-factor sign-in: the owner requires it, is held to enrolling by QR code, then signs in with a code', { timeout: 180000 }, () => steps(async () => {
  const password = 'harbor-reset-password-5'; // set by the reset link above
  const owner = await person('owner-mfa');
  await owner.goto(`${site.base}/`);
  await owner.locator('#login').getByLabel('Email').fill(OWNER.email);
  await owner.locator('#login').getByLabel('Password').fill(password);
  await owner.getByRole('button', { name: 'Sign in' }).click();
  await owner.locator('#dashboard').waitFor();

  const security = await clinicTab(owner, 'Security');
  await security.getByLabel('Require two-factor sign-in for everyone').check();
  await security.getByRole('button', { name: 'Save' }).click();

  // Held to enrolling: only the profile's set-up, saying why.
  await owner.getByRole('alert').getByText(`${OWNER.clinic} requires two-factor sign-in`).waitFor();
  assert.equal(await nav(owner, 'Waiting rooms').isVisible(), false, 'nothing else to reach');
  await owner.getByRole('button', { name: 'Set up an authenticator app' }).click();
  const qr = owner.getByRole('img', { name: 'QR code to add Handoff to your authenticator app' });
  await qr.waitFor();
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth >= 200), 'the QR code shows');
  const secret = (await owner.locator('#mfa-secret').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await owner.shot('mfa-enrol');
  await owner.getByLabel('Code the app shows').fill(totp(secret));
  await owner.getByRole('button', { name: 'Turn on' }).click();
  const codes = owner.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem');
  await codes.first().waitFor();
  assert.equal(await codes.count(), 10);
  await owner.getByRole('button', { name: 'I saved them' }).click();
  await nav(owner, 'Waiting rooms').waitFor();
  await roomRegion(owner, OWNER.displayName).waitFor(); // the waiting rooms again

  // Signing in again takes the password, then a code.
  await owner.getByRole('button', { name: 'Sign out' }).click();
  await owner.locator('#login').getByLabel('Email').fill(OWNER.email);
  await owner.locator('#login').getByLabel('Password').fill(password);
  await owner.getByRole('button', { name: 'Sign in' }).click();
  await owner.getByRole('heading', { name: 'Two-factor sign-in' }).waitFor();
  await owner.getByLabel('Code from your authenticator app').fill('000000' === totp(secret) ? '111111' : '000000');
  await owner.getByRole('button', { name: 'Verify' }).click();
  await owner.locator('#public').getByRole('alert').getByText('that code is not right').waitFor();
  await owner.getByLabel('Code from your authenticator app').fill(totp(secret, Date.now() + 30000)); // the next step: the enrolment took this one
  await owner.getByRole('button', { name: 'Verify' }).click();
  await owner.locator('#who').getByText(`${OWNER.displayName} · ${OWNER.clinic}`).waitFor();
  await owner.getByRole('alert').getByText('1 failed sign-in attempt (a wrong password or code)').waitFor(); // the refused code counts
  await owner.shot('signed-in-with-code');
}));
