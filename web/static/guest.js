// The guest page: someone a provider brought into a call (an interpreter,
// family, a clinician) opens a single-use link, gives a name, waits to be
// let in and joins the call. A guest sees its own state and the call's
// chat, nothing else of the clinic; the page asks every 2 s.
import { api } from '/api.js';
import { HandoffMedia, showVideo, mediaStatus, deviceNotice, callControls, useTexts } from '/media.js';
import { t, setupLanguage as chooseLanguage } from '/i18n.js';
import { chatLine as showLine, sendChat as send } from '/chat.js';

const $ = (id) => document.getElementById(id);
const POLL = 2000;
const state = { token: sessionStorage.getItem('handoff-guest'), guest: null, media: null, joinedCall: '', shown: new Set() };
window.handoff = state; // what the browser tests read

function show(id) {
  for (const s of ['arrive', 'lobby', 'incall', 'over']) $(s).classList.toggle('hidden', s !== id);
}

// The guest's place ended, or the link does not work: the API's code says
// which, the catalogue says it in the guest's language.
const endings = { guest_removed: 'guest.removed', guest_left: 'guest.left', guest_call_ended: 'guest.ended', link_used: 'guest.linkUsed', link_dead: 'guest.linkDead' };
const ending = (err) => (endings[err.code] ? t(endings[err.code]) : err.message);

async function setupLanguage() {
  useTexts(t);
  await chooseLanguage($('lang'), () => {
    if (state.invitedBy) { $('invited-by').textContent = t('guest.invitedBy', { name: state.invitedBy }); $('lobby-title').textContent = t('guest.waiting', { name: state.invitedBy }); }
  });
}

async function init() {
  await setupLanguage();
  // The link's token is in the fragment, which no server sees; it goes out
  // of the address bar at once.
  const link = location.hash.slice(1);
  if (link) history.replaceState(null, '', location.pathname);
  if (state.token) return follow();
  if (!link) return over(t('guest.linkIncomplete'));
  try {
    const r = await api('GET', `/guest-links/${encodeURIComponent(link)}`);
    state.invitedBy = r.invitedBy;
    $('invited-by').textContent = t('guest.invitedBy', { name: r.invitedBy });
    state.link = link;
    show('arrive');
    $('guest-name').focus();
  } catch (err) {
    over(ending(err));
  }
}

async function arrive(e) {
  e.preventDefault();
  $('arrive-error').textContent = '';
  try {
    const r = await api('POST', `/guest-links/${encodeURIComponent(state.link)}`, undefined, { name: $('guest-name').value });
    state.token = r.token;
    sessionStorage.setItem('handoff-guest', r.token); // a reload in this tab goes on
    await follow();
  } catch (err) {
    $('arrive-error').textContent = ending(err);
  }
}

// follow reads the guest's state now and every POLL ms, and puts the page
// (and the media) where it says.
async function follow() {
  try {
    const r = await api('GET', '/guest', state.token);
    state.guest = r.guest;
    state.invitedBy = r.invitedBy;
    await startMedia();
    await render();
  } catch (err) {
    if (err.status === 401) return over(ending(err));
  }
  state.timer = setTimeout(follow, POLL);
}

async function startMedia() {
  if (state.media) return;
  state.media = new HandoffMedia({
    onRemote: (s) => showVideo($('remote'), s, t('guest.someone')),
    onEvent: (m) => { mediaStatus($('media-status'), m); if (state.peerState) state.peerState(m); },
    renew: () => api('POST', '/media/rejoin', state.token, {}, { 'Idempotency-Key': crypto.randomUUID() }),
    session: () => api('GET', '/media/session', state.token),
  });
  try {
    const stream = await state.media.start(await api('GET', '/media/session', state.token));
    $('self').srcObject = stream;
    $('self-call').srcObject = stream;
    deviceNotice($('device-status'), state.media);
    state.peerState = callControls($('call-controls'), state.media,
      { nameOf: (p) => t(p.startsWith('user:') ? 'guest.provider' : p.startsWith('visit:') ? 'guest.patient' : 'guest.otherGuest') });
  } catch (err) {
    console.warn('media unavailable', err);
  }
}

async function render() {
  const g = state.guest;
  if (g.state === 'in_call') {
    if (state.joinedCall !== g.callId) { // let in (again): join this call
      const s = await api('GET', '/media/session', state.token);
      await state.media.enter(s);
      state.joinedCall = g.callId;
    }
    show('incall');
    await readChat();
    return;
  }
  if (state.joinedCall) { // the call went on without us for now (the patient was put back)
    state.joinedCall = '';
    $('remote').replaceChildren();
  }
  $('lobby-title').textContent = t('guest.waiting', { name: state.invitedBy });
  show('lobby');
}

async function readChat() {
  const r = await api('GET', '/guest/messages', state.token);
  for (const m of r.messages) {
    const key = m.sendId || String(m.id);
    if (state.shown.has(key)) continue;
    state.shown.add(key);
    showLine($('chat-log'), m, (x) => x.from === 'guest' && x.senderName === state.guest.name);
  }
}

async function sendChat(e) {
  e.preventDefault();
  if (await send('/guest/messages', state.token)) await readChat();
}

// over ends the page: the guest's place ended (removed, left, the call
// over) or the link never worked. Nothing of the call stays on screen.
function over(text) {
  clearTimeout(state.timer);
  sessionStorage.removeItem('handoff-guest');
  if (state.media) { state.media.close(); state.media = null; }
  for (const v of ['self', 'self-call']) $(v).srcObject = null;
  $('remote').replaceChildren();
  $('chat-log').replaceChildren();
  $('over-text').textContent = text;
  show('over');
}

async function leave() {
  try { await api('POST', '/guest/leave', state.token); } catch (_) { /* already gone */ }
  over(t('guest.left'));
}

$('arrive-form').addEventListener('submit', arrive);
$('chat-form').addEventListener('submit', sendChat);
for (const b of document.querySelectorAll('.leave')) b.addEventListener('click', leave);
init();
