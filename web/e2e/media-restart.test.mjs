import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, admit, inboundGrows } from './site.mjs';

// The media node is its own process here, so it can restart under a call.
let site;
before(async () => { site = await startSite({ externalMedia: true }); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

async function reconnected(page, label, times) {
  await page.waitForFunction((n) => window.handoff.media && window.handoff.media.reconnects >= n && !window.handoff.media.reconnecting,
    times, { timeout: 30000 }).catch(() => { throw new Error(`${label} did not reconnect`); });
}

test('a media server restart mid-call: both pages say so, reconnect, and the call goes on', async () => {
  const patient = await site.person('patient-restart');
  const lee = await site.person('dr-lee-restart');
  await checkIn(patient, site.base, 'dr-lee', 'Emery Fox');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Emery Fox');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await inboundGrows(lee, 'Dr. Lee before the restart');
  await inboundGrows(patient, 'patient before the restart');

  // A graceful restart: the node tells everyone before it goes.
  await site.media.stop('SIGTERM');
  await patient.getByText('Video is reconnecting').waitFor();
  await lee.getByText('Video is reconnecting').waitFor();
  await patient.shot('media-reconnecting');
  await site.media.start();
  await reconnected(patient, 'the patient', 1);
  await reconnected(lee, 'Dr. Lee', 1);
  await inboundGrows(lee, 'Dr. Lee after the restart');
  await inboundGrows(patient, 'patient after the restart');
  assert.equal(await patient.locator('#media-status').isHidden(), true, 'the notice goes away');
  assert.equal(await patient.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();

  // A crash: no goodbye, the sockets just drop.
  await site.media.stop('SIGKILL');
  await site.media.start();
  await reconnected(patient, 'the patient', 2);
  await reconnected(lee, 'Dr. Lee', 2);
  await inboundGrows(lee, 'Dr. Lee after the crash');
  await inboundGrows(patient, 'patient after the crash');
  await lee.shot('media-reconnected');
});

test('a 60 s media outage: reconnect attempts back off, and each page asks the visit once to rejoin', async () => {
  const patient = await site.person('patient-outage');
  const lee = await site.person('dr-lee-outage');
  const rejoins = { patient: 0, lee: 0 };
  patient.on('request', (r) => { if (r.url().endsWith('/api/v1/media/rejoin')) rejoins.patient++; });
  lee.on('request', (r) => { if (r.url().endsWith('/api/v1/media/rejoin')) rejoins.lee++; });
  await checkIn(patient, site.base, 'dr-lee', 'Jules Kerr');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await admit(lee, 'Jules Kerr');
  await patient.getByText('In your visit with Dr. Maya Lee').waitFor();
  await inboundGrows(lee, 'Dr. Lee before the outage');
  const before = await patient.evaluate(() => window.handoff.media.reconnects);

  await site.media.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 60000));
  const attempts = await patient.evaluate(() => window.handoff.media.attempts);
  assert.equal(rejoins.patient + rejoins.lee, 0, 'no visit update while the node is down');
  // Backoff from 0.5 s with a 15 s ceiling: about 9 tries in a minute, not 240.
  assert.ok(attempts >= 3 && attempts <= 15, `the patient's page tried ${attempts} times in 60 s`);
  await site.media.start();
  await reconnected(patient, 'the patient', before + 1);
  await inboundGrows(lee, 'Dr. Lee after the outage');
  await inboundGrows(patient, 'patient after the outage');
  assert.ok(rejoins.patient <= 2 && rejoins.lee <= 2, `rejoins after a 60 s outage: patient ${rejoins.patient}, Dr. Lee ${rejoins.lee}`);
  console.log(`60 s outage: ${attempts} reconnect attempts by the patient's page; /media/rejoin: patient ${rejoins.patient}, Dr. Lee ${rejoins.lee}`);
});
