import { api, events, since, el } from '/api.js';
import { HandoffMedia, showVideo, mediaStatus, deviceNotice, callControls } from '/media.js';
import { showLogin, showSignup, showForgot, showInvite, showReset, showSecondFactor } from '/onboard.js';
import { renderClinic, renderProfile } from '/admin.js';

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem('handoff:provider'), me: null, rooms: [], waiting: {}, flash: {}, call: null, media: null, apps: [], page: 'rooms', es: null, ticker: null };
window.handoff = state; // for tests and debugging

async function login(e) {
  e.preventDefault();
  try {
    const r = await api('POST', '/auth/login', null, { email: $('email').value, password: $('password').value });
    if (r.mfaRequired) { showSecondFactor(onboard, r.challenge); return; }
    if (r.failedSignIns > 0) {
      sessionStorage.setItem('handoff:failed-sign-ins', String(r.failedSignIns));
    }
    await signedIn(r);
  } catch (err) {
    $('login-error').textContent = err.message;
  }
}

// signedIn takes a login body (sign-in, a new clinic, an accepted
// invitation, a password reset) and opens the dashboard.
async function signedIn(body) {
  if (body.mfaRequired) { showSecondFactor(onboard, body.challenge); return; } // a reset link, for a person with a second factor
  const wasSignedIn = Boolean(state.me);
  state.token = body.token;
  sessionStorage.setItem('handoff:provider', body.token);
  if (wasSignedIn) { location.reload(); return; } // another account in this tab: start clean
  await start();
}

const onboard = { signedIn, showLogin: () => showLogin() };

async function start() {
  try {
    state.me = await api('GET', '/me', state.token);
  } catch (err) {
    sessionStorage.removeItem('handoff:provider');
    state.token = null;
    showLogin();
    $('login-error').textContent = err.status === 401 ? err.message : '';
    return;
  }
  $('login').classList.add('hidden');
  $('public').classList.add('hidden');
  $('dashboard').classList.remove('hidden');
  renderWho();
  warnOfFailedSignIns();
  if (state.me.mfa && state.me.mfa.enrolmentRequired) {
    // The clinic requires a second factor this person lacks: the API
    // answers nothing else until it is set up, so show only that.
    $('dashboard').querySelector('nav.pages').classList.add('hidden');
    $('alerts').append(el('div', { class: 'alert', role: 'alert' },
      `${state.me.clinic.name} requires two-factor sign-in. Set up an authenticator app below to continue.`));
    showPage('profile', { focus: true, reload: false });
    return;
  }
  listen();
  desktopAlerts();
  await refresh();
  if (!state.ticker) state.ticker = setInterval(render, 1000); // waiting times tick
  showPage(state.page, { focus: false, reload: false });
}

// warnOfFailedSignIns tells the person, once, of wrong passwords or codes typed for
// their account since they last signed in.
function warnOfFailedSignIns() {
  const n = Number(sessionStorage.getItem('handoff:failed-sign-ins') || 0);
  sessionStorage.removeItem('handoff:failed-sign-ins');
  if (n > 0) {
    $('alerts').append(el('div', { class: 'alert', role: 'alert' },
      `${n} failed sign-in ${n === 1 ? 'attempt' : 'attempts'} (a wrong password or code) for your account since you last signed in. If that was not you, change your password in My profile.`));
  }
}

function renderWho() {
  $('who').replaceChildren(`${state.me.user.name} · ${state.me.clinic.name} `,
    el('button', { type: 'button', onclick: logout }, 'Sign out'));
  const powers = state.me.powers || {};
  $('nav-clinic').classList.toggle('hidden', !powers.people);
  if (!powers.people && state.page === 'clinic') showPage('rooms', { focus: false });
}

// listen (re)opens the live stream. The rooms it carries are fixed when it
// opens, so the dashboard reopens it after a change to rooms or the plan.
function listen() {
  if (state.es) state.es.close();
  const es = events(state.token, onEvent);
  state.es = es;
  es.addEventListener('error', () => {
    // A stream the server refused (not one that dropped: EventSource retries
    // those by itself) closes for good: a session that ended signs out, any
    // other failure retries shortly.
    if (es.readyState !== EventSource.CLOSED || state.es !== es) return;
    api('GET', '/me', state.token).then(() => setTimeout(() => { if (state.es === es) listen(); }, 3000),
      (err) => { if (err.status === 401) endSession('signed_out'); else setTimeout(() => { if (state.es === es) listen(); }, 3000); });
  });
}

// endSession: the server ended this session (the user was deactivated,
// signed out elsewhere, changed their password in another window): back to
// the sign-in page, saying why.
function endSession(reason) {
  if (state.es) state.es.close();
  state.es = null;
  sessionStorage.removeItem('handoff:provider');
  const notices = {
    deactivated: 'Your access to this clinic was removed.',
    idle: 'You were signed out after a period of inactivity.',
    expired: 'Your session has expired; sign in again.',
  };
  sessionStorage.setItem('handoff:notice', notices[reason] || 'You were signed out.');
  location.reload(); // drops the call, media and timers with the page
}

const adminCtx = {
  get token() { return state.token; },
  get me() { return state.me; },
  async reloadMe() {
    state.me = await api('GET', '/me', state.token);
    renderWho();
  },
  async roomsChanged() {
    listen();
    await refresh();
  },
};

// showPage shows one of the dashboard's pages: the waiting rooms, the
// clinic's administration, the user's profile.
function showPage(page, { focus = true, reload = true } = {}) {
  state.page = page;
  for (const p of ['rooms', 'clinic', 'profile']) {
    $(`page-${p}`).classList.toggle('hidden', p !== page);
    if (p === page) $(`nav-${p}`).setAttribute('aria-current', 'page');
    else $(`nav-${p}`).removeAttribute('aria-current');
  }
  if (page === 'rooms' && reload) refresh().catch(() => {});
  if (page === 'clinic') renderClinic($('page-clinic'), adminCtx);
  if (page === 'profile') renderProfile($('page-profile'), adminCtx);
  if (focus) {
    const h = $(`page-${page}`).querySelector('h2');
    if (h) h.focus();
  }
}

async function logout() {
  try { await api('POST', '/auth/logout', state.token); } catch (_) { /* signed out either way */ }
  if (state.es) state.es.close();
  sessionStorage.removeItem('handoff:provider');
  location.reload();
}

async function refresh() {
  state.rooms = (await api('GET', '/rooms', state.token)).rooms;
  for (const r of state.rooms.filter((r) => r.canActFor)) {
    state.waiting[r.id] = await api('GET', `/rooms/${r.id}/waiting`, state.token);
  }
  render();
}

let refreshTimer;
function onEvent(type, data) {
  if (type === 'session.ended') { endSession(data.reason); return; }
  if (type === 'visit.checked_in' || (type === 'visit.transferred' && data.patientName)) {
    const room = state.rooms.find((r) => r.id === data.roomId);
    alertArrival(`${data.patientName} is waiting in ${room ? room.displayName : 'your room'}`);
  }
  if (type === 'call.ended' && state.call && data.callId === state.call.id) endCallView('The call has ended.');
  if (type === 'app.closed') state.apps = state.apps.filter((a) => a.id !== data.appId);
  if (type === 'message.sent') {
    if (chat && chat.visitId === data.visitId) chatLine(data);
    if (data.from === 'patient') alertArrival(`Message from ${data.senderName}: ${data.text}`);
  }
  if (type === 'guest.waiting') alertArrival(`${data.name} (guest) is waiting to join the call`);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 50);
}

function alertArrival(text) {
  // Outside the tab too, once the person allowed desktop notifications.
  if ('Notification' in window && Notification.permission === 'granted') {
    try { new Notification('Handoff', { body: text, tag: `handoff-${Date.now()}` }); } catch (_) { /* not here */ }
  }
  const note = el('div', { class: 'alert', role: 'alert' }, text);
  $('alerts').append(note);
  setTimeout(() => note.remove(), 8000);
  try { // a short chime
    const ctx = new AudioContext(); const o = ctx.createOscillator();
    o.frequency.value = 880; o.connect(ctx.destination); o.start(); o.stop(ctx.currentTime + 0.2);
  } catch (_) { /* no audio device */ }
}

function card(v, room) {
  const inMyCall = state.call && v.callId === state.call.id;
  const actions = [];
  if (v.state === 'waiting') {
    actions.push(el('button', { type: 'button', class: 'primary', onclick: () => admit(v) }, 'Admit'));
    if (state.call && state.call.roomId === room.id) actions.push(el('button', { type: 'button', onclick: () => admit(v, state.call.id) }, 'Add to call'));
  }
  // The visible words start the accessible name (WCAG 2.5.3).
  const said = v.messages ? `Messages (${v.messages})` : 'Message';
  actions.push(el('button', { type: 'button', onclick: () => openChat({ visitId: v.id, name: v.patientName }), 'aria-label': v.messages ? `${said} with ${v.patientName}` : `${said} ${v.patientName}` },
    said));
  if (v.state === 'in_call') {
    actions.push(el('button', { type: 'button', onclick: () => holdPatient(v), 'aria-label': `Back to waiting room: ${v.patientName}` }, 'Back to waiting room'));
  }
  if (inMyCall) {
    actions.push(el('button', { type: 'button', onclick: () => inviteGuest(v), 'aria-label': `Invite a guest for ${v.patientName}` }, 'Invite a guest'));
  }
  if (state.me.features.transfer && v.state !== 'transferring') {
    actions.push(el('button', { type: 'button', onclick: () => openTransfer(v, room), 'aria-label': `Transfer ${v.patientName}` }, 'Transfer'));
  }
  // A patient waiting past the clinic's threshold stands out: a colour and
  // words, not the colour alone.
  const limit = (state.me.clinic.waitAlertMinutes || 15) * 60000;
  const long = v.state === 'waiting' && Date.now() - new Date(v.checkedInAt).getTime() >= limit;
  return el('article', { class: long ? 'card long-wait' : 'card', 'data-visit': v.id, 'aria-label': `Patient ${v.patientName}` },
    el('div', { class: 'name' }, v.patientName),
    long ? el('div', { class: 'warn-text' }, `Waiting over ${state.me.clinic.waitAlertMinutes || 15} min`) : null,
    el('div', { class: 'meta' }, `Checked in ${new Date(v.checkedInAt).toLocaleTimeString()} · waiting ${since(v.checkedInAt)}${v.state === 'in_call' ? ' · in call' : ''}${inMyCall ? ' (your call)' : ''}`),
    v.message ? el('div', { class: 'transferred-by' }, v.message) : null,
    v.note ? el('div', { class: 'note' }, `Note: ${v.note}`) : null,
    (v.guests || []).length ? el('ul', { class: 'guests', 'aria-label': `Guests of ${v.patientName}` }, v.guests.map((g) => guestLine(v, g, inMyCall))) : null,
    el('div', { class: 'actions' }, actions));
}

// guestLine is one guest on a patient's card: who, where, and what the
// provider can do (let in from the lobby, remove).
function guestLine(v, g, inMyCall) {
  const name = g.name || 'Guest (link not used yet)';
  const where = { invited: 'link sent', waiting: 'waiting to join', in_call: 'in the call' }[g.state] || g.state;
  const buttons = [];
  if (g.state === 'waiting' && inMyCall) buttons.push(el('button', { type: 'button', class: 'primary', onclick: () => guestUpdate(v, g, 'POST', '/admit'), 'aria-label': `Let in ${name}` }, 'Let in'));
  buttons.push(el('button', { type: 'button', onclick: () => guestUpdate(v, g, 'DELETE', ''), 'aria-label': `Remove ${name}` }, 'Remove'));
  return el('li', { 'data-guest': g.id }, `${name} (guest) — ${where} `, ...buttons);
}

async function inviteGuest(v) {
  try {
    const r = await api('POST', `/visits/${v.id}/guests`, state.token, undefined, { 'Idempotency-Key': crypto.randomUUID() });
    $('guest-link').value = r.link;
    $('guest-dialog').showModal();
    $('guest-link').select();
    await refresh();
  } catch (err) {
    flash(v.roomId, err.message);
  }
}

async function guestUpdate(v, g, method, suffix) {
  try {
    await api(method, `/visits/${v.id}/guests/${g.id}${suffix}`, state.token, undefined, { 'Idempotency-Key': crypto.randomUUID() });
    await refresh();
  } catch (err) {
    flash(v.roomId, err.message);
  }
}

// renderTitle puts the number of waiting patients in the tab's title.
function renderTitle() {
  const n = state.rooms.filter((r) => r.canActFor).reduce((sum, r) => sum + ((state.waiting[r.id] || { waiting: [] }).waiting.length), 0);
  const title = n ? `(${n}) Handoff — provider dashboard` : 'Handoff — provider dashboard';
  if (document.title !== title) document.title = title;
}

// desktopAlerts offers to turn on desktop notifications (the browser asks
// only after a click).
function desktopAlerts() {
  if (!('Notification' in window) || Notification.permission !== 'default' || $('desktop-alerts')) return;
  const b = el('button', { type: 'button', id: 'desktop-alerts' }, 'Turn on desktop alerts');
  b.addEventListener('click', async () => {
    await Notification.requestPermission().catch(() => {});
    b.remove();
  });
  $('who').prepend(b);
}

function render() {
  if (!state.me) return;
  renderTitle();
  const rooms = state.rooms.filter((r) => r.canActFor).map((room) => {
    const w = state.waiting[room.id] || { waiting: [], inCall: [] };
    const online = room.online.length ? `Online: ${room.online.map((o) => o.name).join(', ')}` : 'Nobody online';
    return el('section', { class: 'room', 'data-room': room.id, 'aria-label': `${room.displayName} waiting room` },
      el('h2', {}, `${room.displayName}${room.kind === 'shared' ? ' (shared)' : ''}`),
      el('div', { class: 'online' }, online),
      ...(state.flash[room.id] || []).map((f) => el('div', { class: 'flash', role: 'status' }, f)),
      el('h3', {}, `Waiting (${w.waiting.length})`),
      w.waiting.length ? el('button', { type: 'button', class: 'link', onclick: () => openChat({ roomId: room.id, name: `everyone waiting for ${room.displayName}` }) },
        'Message everyone waiting') : null,
      w.waiting.length ? w.waiting.map((v) => card(v, room)) : el('p', { class: 'meta' }, 'No one is waiting.'),
      w.inCall.length ? [el('h3', {}, 'In a call'), w.inCall.map((v) => card(v, room))] : null);
  });
  $('rooms').replaceChildren(...rooms);
  if (state.call) {
    const mine = Object.values(state.waiting).flatMap((w) => w.inCall).filter((v) => v.callId === state.call.id);
    const room = state.rooms.find((r) => r.id === state.call.roomId);
    $('call-patients').replaceChildren(...mine.map((v) => card(v, room)));
    $('apps').replaceChildren(...state.apps.map((a) => el('li', { 'data-app': a.id }, a.app === 'notes' ? 'Shared notes' : 'Payment request',
      ' ', el('button', { type: 'button', onclick: () => closeApp(a) }, 'Close'))));
  }
}

async function admit(v, callId) {
  try {
    const r = await api('POST', `/visits/${v.id}/admit`, state.token, callId ? { callId } : {});
    state.call = { id: r.call.id, kind: r.call.kind, roomId: v.roomId };
    $('call').classList.remove('hidden');
    if (!state.media) {
      state.media = new HandoffMedia({
        onRemote: (s) => showVideo($('remote'), s, 'Patient video'),
        onEvent: (m) => { mediaStatus($('media-status'), m); if (state.peerState) state.peerState(m); },
        // A lost media session comes back into the call on view, if any.
        renew: () => api('POST', '/media/rejoin', state.token, state.call ? { callId: state.call.id } : {}, { 'Idempotency-Key': crypto.randomUUID() }),
        session: () => api('GET', '/media/session', state.token),
      });
      $('local').srcObject = await state.media.start({ ...r.media, joinToken: undefined });
      deviceNotice($('device-status'), state.media);
      state.peerState = callControls($('call-controls'), state.media, { share: true, nameOf: patientOf });
    }
    await state.media.enter(r.media);
    await refresh();
  } catch (err) {
    flash(v.roomId, err.message);
  }
}

// patientOf names a call's participant ('visit:<id>') for the provider.
function patientOf(participant) {
  const visits = Object.values(state.waiting).flatMap((w) => [...w.inCall, ...w.waiting]);
  if (participant.startsWith('guest:')) {
    const g = visits.flatMap((v) => v.guests || []).find((x) => x.participant === participant);
    return g ? `${g.name} (guest)` : 'A guest';
  }
  const id = participant.startsWith('visit:') ? participant.slice(6) : '';
  const v = visits.find((x) => x.id === id);
  return v ? v.patientName : 'Another provider';
}

function endCallView(text) {
  state.call = null;
  state.apps = [];
  $('call').classList.add('hidden');
  $('remote').replaceChildren();
  $('call-patients').replaceChildren();
  $('apps').replaceChildren();
  if (state.media) state.media.send({ type: 'leave' });
  $('alerts').append(el('div', { class: 'flash', role: 'status' }, text));
}

function flash(roomId, text, ms = 5000) {
  state.flash[roomId] = [...(state.flash[roomId] || []), text];
  render();
  setTimeout(() => { state.flash[roomId] = (state.flash[roomId] || []).filter((t) => t !== text); render(); }, ms);
}

let transferring = null;
function openTransfer(v, room) {
  transferring = v;
  $('transfer-patient').textContent = v.patientName;
  $('transfer-error').textContent = '';
  $('transfer-note').value = '';
  $('transfer-guests').checked = false;
  $('transfer-guests-row').classList.toggle('hidden', !(v.guests || []).length);
  $('transfer-room').replaceChildren(...state.rooms.filter((r) => r.id !== v.roomId).map((r) =>
    el('option', { value: r.id }, `${r.displayName}${r.kind === 'shared' ? ' (shared)' : ''} — ${r.online.length ? 'online: ' + r.online.map((o) => o.name).join(', ') : 'nobody online'}`)));
  $('transfer-dialog').showModal();
}

// holdPatient puts an admitted patient back into the waiting room.
async function holdPatient(v) {
  try {
    const r = await api('POST', `/visits/${v.id}/hold`, state.token, undefined, { 'Idempotency-Key': crypto.randomUUID() });
    if (r.callEnded && state.call && v.callId === state.call.id) endCallView(`${r.message}. The call has ended.`);
    else flash(v.roomId, r.message);
    await refresh();
  } catch (err) {
    flash(v.roomId, err.message);
  }
}

async function confirmTransfer(e) {
  e.preventDefault();
  const v = transferring;
  try {
    const r = await api('POST', `/visits/${v.id}/transfer`, state.token,
      { targetRoomId: $('transfer-room').value, note: $('transfer-note').value, fromRoomId: v.roomId, keepGuests: $('transfer-guests').checked }, { 'Idempotency-Key': crypto.randomUUID() });
    $('transfer-dialog').close();
    flash(v.roomId, r.message);
    if (r.warning) flash(v.roomId, r.warning);
    if (r.callEnded && state.call && v.callId === state.call.id) endCallView('The call has ended: the patient was transferred.');
    await refresh();
  } catch (err) {
    $('transfer-error').textContent = err.message;
  }
}

// The conversation dialog: one visit's (chat.visitId), or a message to a
// whole waiting room (chat.roomId).
let chat = null;
function chatLine(m) {
  if ($('chat-log').querySelector(`li[data-message="${m.id}"]`)) return; // the list and the stream may both bring it
  $('chat-log').append(el('li', { class: m.from === 'provider' ? 'from-provider' : 'from-patient', 'data-message': m.id },
    el('strong', {}, `${m.senderName}${m.from === 'guest' ? ' (guest)' : ''}: `), el('span', { class: 'chat-text' }, m.text),
    el('span', { class: 'meta' }, ` · ${new Date(m.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`)));
}
async function openChat(target) {
  chat = target;
  $('chat-title').textContent = target.visitId ? `Messages with ${target.name}` : `Message ${target.name}`;
  $('chat-label').textContent = target.visitId ? `Message to ${target.name}` : 'Message to everyone waiting';
  $('chat-error').textContent = '';
  $('chat-text').value = '';
  $('chat-log').replaceChildren();
  $('chat-log').classList.toggle('hidden', !target.visitId);
  $('chat-dialog').showModal();
  if (target.visitId) {
    try {
      const r = await api('GET', `/visits/${target.visitId}/messages`, state.token);
      if (chat === target) r.messages.forEach(chatLine);
    } catch (err) { $('chat-error').textContent = err.message; }
  }
}
async function sendChat(e) {
  e.preventDefault();
  const target = chat;
  try {
    if (target.visitId) {
      await api('POST', `/visits/${target.visitId}/messages`, state.token, { text: $('chat-text').value });
      $('chat-text').value = ''; // the line comes back as an event
    } else {
      const r = await api('POST', `/rooms/${target.roomId}/messages`, state.token, { text: $('chat-text').value });
      $('chat-dialog').close();
      flash(target.roomId, `Message sent to ${r.sent} waiting ${r.sent === 1 ? 'patient' : 'patients'}.`);
    }
  } catch (err) {
    $('chat-error').textContent = err.message;
  }
}

async function openApp(app) {
  if (!state.call) return;
  const r = await api('POST', `/calls/${state.call.id}/apps`, state.token, { app, data: '' });
  state.apps.push(r.app);
  render();
}

async function closeApp(a) {
  await api('DELETE', `/calls/${state.call.id}/apps/${a.id}`, state.token);
  state.apps = state.apps.filter((x) => x.id !== a.id);
  render();
}

// route opens what the address's fragment asks for: an invitation
// (#invite=<token>) or a password reset (#reset=<token>). The fragment is
// cleared at once, so the token stays out of the history and the address bar.
function route() {
  const m = /^#(invite|reset)=([^&]+)$/.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, '', location.pathname + location.search);
  const token = decodeURIComponent(m[2]);
  if (m[1] === 'invite') showInvite(onboard, token);
  else showReset(onboard, token);
  return true;
}

$('login-form').addEventListener('submit', login);
$('forgot-open').addEventListener('click', () => showForgot(onboard));
$('signup-open').addEventListener('click', () => showSignup(onboard));
for (const b of document.querySelectorAll('nav.pages button')) b.addEventListener('click', () => showPage(b.dataset.page));
$('transfer-form').addEventListener('submit', confirmTransfer);
$('chat-form').addEventListener('submit', sendChat);
$('chat-close').addEventListener('click', () => { chat = null; $('chat-dialog').close(); });
$('transfer-cancel').addEventListener('click', () => $('transfer-dialog').close());
$('guest-copy').addEventListener('click', () => navigator.clipboard.writeText($('guest-link').value).catch(() => $('guest-link').select()));
$('open-notes').addEventListener('click', () => openApp('notes'));
$('open-payment').addEventListener('click', () => openApp('payment'));
window.addEventListener('hashchange', route);
if (!route()) {
  const notice = sessionStorage.getItem('handoff:notice');
  sessionStorage.removeItem('handoff:notice');
  if (state.token) start();
  else showLogin(notice);
}
