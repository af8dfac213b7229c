import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, transfer, admit, hearsFrom, hearsNothingFrom } from './site.mjs';

// Two media nodes, each its own `handoff media --db` process registered in
// dev's app database (PostgreSQL), as in a cluster. Node A takes one
// participant before placement sends the next elsewhere; node B a hundred.
let site;
before(async () => {
  site = await startSite({ nodes: [{ id: 'node-a', capacity: 1, drainTimeout: '3s' }, { id: 'node-b', capacity: 100, drainTimeout: '3s' }] });
});
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

const nodeOf = (page) => page.evaluate(() => window.handoff.media && window.handoff.media.last && window.handoff.media.last.url);
const nodeID = async (page) => {
  const url = await nodeOf(page);
  return Object.keys(site.nodes).find((id) => site.nodes[id].publicURL === url);
};
const heartbeat = () => new Promise((r) => setTimeout(r, 2500)); // a node's next beat carries its load

async function reconnected(page, label) {
  await page.waitForFunction(() => window.handoff.media && window.handoff.media.reconnects >= 1 && !window.handoff.media.reconnecting,
    null, { timeout: 30000 }).catch(async () => {
    const media = await page.evaluate(() => {
      const m = window.handoff.media;
      return m && { reconnects: m.reconnects, reconnecting: m.reconnecting, attempts: m.attempts, moves: m.moves, inCall: m.inCall, node: m.last && m.last.url };
    }).catch((e) => e.message);
    throw new Error(`${label} did not reconnect: ${JSON.stringify(media)}; its console:\n${page.recent.join('\n')}`);
  });
}

test('admitted and transferred into calls on another node: the patient page follows without a reload', async () => {
  const patient = await site.person('patient-nodes');
  const lee = await site.person('dr-lee-nodes');
  const patel = await site.person('dr-patel-nodes');
  await checkIn(patient, site.base, 'dr-lee', 'Rowan Vale');
  await patient.getByText('Waiting for Dr. Maya Lee').waitFor();
  await patient.waitForFunction(() => window.handoff.media && window.handoff.media.ws && window.handoff.media.ws.readyState === 1);
  assert.equal(await nodeID(patient), 'node-a', 'both nodes idle: the waiting patient goes on the first');

  // Node A is full once its next beat counts the patient: the call goes on B.
  await heartbeat();
  await login(lee, site.base, 'dr.lee@riverside.example');
  await login(patel, site.base, 'dr.patel@riverside.example');
  await admit(lee, 'Rowan Vale');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  assert.equal(await nodeID(lee), 'node-b');
  await patient.waitForFunction(() => window.handoff.media.moves >= 1 && window.handoff.media.inCall, null, { timeout: 15000 });
  assert.equal(await nodeID(patient), 'node-b', "the patient's page opened a session on the call's node");
  await hearsFrom(lee, 'visit:', 'Dr. Lee');
  await hearsFrom(patient, 'user:', 'the patient');
  await patient.shot('moved-node');

  // The transfer: Dr. Lee's 1:1 call ends; Dr. Patel's call goes on the
  // least loaded node, wherever the patient's session is.
  await heartbeat();
  await transfer(lee, 'Rowan Vale', 'Dr. Arjun Patel');
  await patient.getByText("You have been transferred to Dr. Arjun Patel's room").waitFor();
  await hearsNothingFrom(patient, 'user:', 'the patient after the transfer');
  await admit(patel, 'Rowan Vale');
  await patient.getByText('In your visit with Dr. Arjun Patel').waitFor();
  assert.equal(await nodeID(patient), await nodeID(patel), 'the patient is on the node of the call');
  await hearsFrom(patel, 'visit:', 'Dr. Patel');
  await hearsFrom(patient, 'user:', 'the patient with Dr. Patel');
  const shown = await patient.evaluate(() => window.handoff.shown);
  assert.deepEqual(shown.slice(0, 2), ["Taking you to Dr. Arjun Patel's room now", "You have been transferred to Dr. Arjun Patel's room"]);
  assert.equal(await patient.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');
  assert.equal(await patient.evaluate(() => window.handoff.media.reconnects), 0, 'a move is not a reconnection');
  console.log(`patient's moves between nodes: ${await patient.evaluate(() => window.handoff.media.moves)}; Dr. Patel's call on ${await nodeID(patel)}`);
});

test('a node drains under a live call: both pages reconnect on the other node and the visit goes on', async () => {
  const patient = await site.person('patient-drain');
  const lee = await site.person('dr-lee-drain');
  await checkIn(patient, site.base, 'dr-lee', 'Sky Moreno');
  await patient.getByText('Waiting for Dr. Maya Lee').waitFor();
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Sky Moreno');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await patient.waitForFunction(() => window.handoff.media.inCall, null, { timeout: 15000 });
  const draining = await nodeID(lee);
  const other = Object.keys(site.nodes).find((id) => id !== draining);
  await hearsFrom(lee, 'visit:', 'Dr. Lee before the drain');

  const exited = new Promise((r) => site.nodes[draining].proc.once('exit', (code) => r(code)));
  site.nodes[draining].proc.kill('SIGTERM'); // a deploy: the call may go on for 3 s, then moves
  await hearsFrom(patient, 'user:', 'the patient while the node drains');
  await patient.getByText('Video is reconnecting').waitFor({ timeout: 15000 });
  await patient.shot('drain-reconnecting');
  await reconnected(patient, 'the patient');
  await reconnected(lee, 'Dr. Lee');
  assert.equal(await nodeID(patient), other);
  assert.equal(await nodeID(lee), other);
  await hearsFrom(lee, 'visit:', 'Dr. Lee after the drain');
  await hearsFrom(patient, 'user:', 'the patient after the drain');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  assert.equal(await patient.locator('#media-status').isHidden(), true, 'the notice goes away');
  assert.equal(await patient.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');
  assert.equal(await exited, 0, 'the drained node exits cleanly');
  await lee.shot('drain-moved');
});
