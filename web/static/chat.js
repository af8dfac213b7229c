// The chat box of the patient page and the guest page: one message as the
// reader sees it, and sending what is in the box (#chat-text, errors in
// #chat-error).
import { api } from '/api.js';
import { t } from '/i18n.js';

// chatLine appends message m to log; mine(m) tells the reader's own
// messages, which say "You".
export function chatLine(log, m, mine) {
  const li = document.createElement('li');
  li.className = m.from === 'patient' ? 'from-patient' : 'from-provider';
  const who = document.createElement('strong');
  who.textContent = `${mine(m) ? t('chat.you') : m.from === 'guest' ? t('chat.guest', { name: m.senderName }) : m.senderName}: `;
  const text = document.createElement('span');
  text.textContent = m.text;
  li.append(who, text);
  log.append(li);
}

// sendChat posts the box's text to path with token and empties the box;
// an error is shown under it.
export async function sendChat(path, token) {
  const box = document.getElementById('chat-text'), error = document.getElementById('chat-error');
  error.textContent = '';
  try {
    await api('POST', path, token, { text: box.value });
    box.value = '';
    return true;
  } catch (err) {
    error.textContent = err.message;
    return false;
  }
}
