// Messages as people use them (issue 18): Dr. Lee tells everyone waiting
// that she is running late; the waiting patient reads it at once and
// replies; Dr. Lee reads the reply on the card; after a transfer Dr. Patel
// opens the card and reads the whole waiting-room conversation.
import { test, before, after, afterEach } from 'node:test';
import { startSite, checkIn, login, card, transfer } from './site.mjs';

let site;
before(async () => { site = await startSite(); });
afterEach(async () => { await site?.closeAll(); });
after(async () => { await site?.stop(); });

test('running late: a message to the waiting room, a reply, and the conversation after a transfer', { timeout: 180000 }, async () => {
  const patient = await site.person('patient-chat');
  const lee = await site.person('dr-lee-chat');
  const patel = await site.person('dr-patel-chat');
  await checkIn(patient, site.base, 'dr-lee', 'Quinn Messenger');
  await login(lee, site.base, 'dr.lee@riverside.example');
  await card(lee, 'Quinn Messenger').waitFor();

  const room = lee.getByRole('region', { name: 'Dr. Maya Lee waiting room' });
  await room.getByRole('button', { name: 'Message everyone waiting' }).click();
  await lee.getByLabel('Message to everyone waiting').fill('Dr. Lee is running 10 minutes late');
  await lee.getByRole('dialog').getByRole('button', { name: 'Send' }).click();
  await room.getByText('Message sent to 1 waiting patient.').waitFor();

  const log = patient.getByRole('list', { name: 'Messages with the clinic' });
  await log.getByText('Dr. Lee is running 10 minutes late').waitFor();
  await patient.getByLabel('Your message').fill('No problem, I will wait');
  await patient.getByRole('button', { name: 'Send' }).click();
  await log.getByText('No problem, I will wait').waitFor();
  await patient.shot('conversation');

  await lee.getByRole('alert').getByText('Message from Quinn Messenger: No problem, I will wait').waitFor();
  await card(lee, 'Quinn Messenger').getByRole('button', { name: 'Messages (2) with Quinn Messenger' }).waitFor();

  await login(patel, site.base, 'dr.patel@riverside.example');
  await transfer(lee, 'Quinn Messenger', 'Dr. Arjun Patel');
  await patient.getByText("You have been transferred to Dr. Arjun Patel's room").waitFor();
  await log.getByText('Dr. Lee is running 10 minutes late').waitFor(); // still on the patient's page

  await card(patel, 'Quinn Messenger').getByRole('button', { name: 'Messages (2) with Quinn Messenger' }).click();
  const conversation = patel.getByRole('list', { name: 'Conversation' });
  await conversation.getByText('Dr. Lee is running 10 minutes late').waitFor();
  await conversation.getByText('No problem, I will wait').waitFor();
  await patel.getByLabel('Message to Quinn Messenger').fill('I can see you in 2 minutes');
  await patel.getByRole('dialog').getByRole('button', { name: 'Send' }).click();
  await conversation.getByText('I can see you in 2 minutes').waitFor();
  await log.getByText('I can see you in 2 minutes').waitFor();
  await patel.shot('conversation-after-transfer');
});
