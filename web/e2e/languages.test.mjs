// Languages (issue 18): a browser that prefers Spanish gets the patient
// page in Spanish — the check-in, the waiting room and the spec's transfer
// texts — from its catalogue, and the switch on the page changes it.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, login, card, transfer } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('the patient page in Spanish, transfer texts included, and the language switch', { timeout: 120000 }, async () => {
  const patient = await site.person('paciente', { locale: 'es-ES' });
  await patient.goto(`${site.base}/c/dr-lee`);
  await patient.getByRole('heading', { name: 'Regístrese para ver a Dr. Maya Lee' }).waitFor();
  assert.equal(await patient.evaluate(() => document.documentElement.lang), 'es');
  await patient.getByRole('heading', { name: 'Compruebe su cámara y micrófono' }).waitFor();
  await patient.getByLabel('Su nombre').fill('Lucía Ortega');
  await patient.getByLabel('Acepto una consulta por video').check();
  await patient.getByRole('button', { name: 'Registrarme' }).click();
  await patient.getByRole('heading', { name: 'Esperando a Dr. Maya Lee' }).waitFor();
  await patient.getByText('Usted es el siguiente.').waitFor();
  await patient.shot('esperando');

  const lee = await site.person('dr-lee-es');
  const patel = await site.person('dr-patel-es');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await login(patel, site.base, 'dr.patel@riverside.example');
  await card(lee, 'Lucía Ortega').waitFor();
  await transfer(lee, 'Lucía Ortega', 'Dr. Arjun Patel');
  await patient.getByText('Le estamos llevando a la sala de Dr. Arjun Patel').waitFor();
  await patient.getByText('Le hemos transferido a la sala de Dr. Arjun Patel').waitFor();
  await patient.getByRole('heading', { name: 'Esperando a Dr. Arjun Patel' }).waitFor();
  await patient.shot('transferida');

  // The switch: English, kept for the next page.
  await patient.getByLabel('Idioma').selectOption('en');
  await patient.getByRole('heading', { name: 'Waiting for Dr. Arjun Patel' }).waitFor();
  await patient.reload();
  await patient.getByRole('heading', { name: 'Waiting for Dr. Arjun Patel' }).waitFor();
  assert.equal(await patient.evaluate(() => document.documentElement.lang), 'en');
});
