import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, checkIn, login, admit, inboundGrows } from './site.mjs';

// The media node is its own process here, so it can restart under a call.
let site;
before(async () => { site = await startSite({ externalMedia: true }); });
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
