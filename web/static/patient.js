import { api, events, since } from '/api.js';
import { HandoffMedia, showVideo, mediaStatus, deviceNotice, callControls, useTexts } from '/media.js';
import { t, lang, setupLanguage as chooseLanguage } from '/i18n.js';
import { chatLine as showLine, sendChat as send } from '/chat.js';

const $ = (id) => document.getElementById(id);
const slug = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const key = `handoff:visit:${slug}`;
const state = { visit: null, token: null, media: null, stream: null, loadingUntil: 0, shown: [] };
window.handoff = state; // for tests and debugging

function show(id) {
  for (const s of ['checkin', 'resume', 'waiting', 'loading', 'incall', 'ended', 'closed']) $(s).classList.toggle('hidden', s !== id);
}

// The visit's token is kept twice: in this tab (sessionStorage), so that a
// reload resumes the visit with nothing to re-enter; and on the device
// (localStorage), so that reopening the link after closing the tab finds
// it — but a device may be shared (a clinic's tablet, a family computer),
// so a visit found only there is resumed after asking. Both go when the
// visit ends (its token stops working then anyway) and after 12 hours.
const keptFor = 12 * 3600 * 1000;
function remember(visitId, token) {
  const v = JSON.stringify({ visitId, token, savedAt: Date.now() });
  sessionStorage.setItem(key, v);
  localStorage.setItem(key, v);
}
function forget() {
  sessionStorage.removeItem(key);
  localStorage.removeItem(key);
}
function saved() {
  const parse = (raw) => { try { return JSON.parse(raw || 'null'); } catch (_) { return null; } };
  const mine = parse(sessionStorage.getItem(key));
  if (mine) return { ...mine, ask: false };
  const device = parse(localStorage.getItem(key));
  if (device && Date.now() - (device.savedAt || 0) < keptFor) return { ...device, ask: true };
  localStorage.removeItem(key);
  return null;
}

// setupLanguage loads the person's language and offers the others.
async function setupLanguage() {
  useTexts(t);
  await chooseLanguage($('lang'), () => {
    if (state.roomName) $('checkin-title').textContent = t('checkin.title', { room: state.roomName });
    if (state.visit) renderVisit();
  });
}

async function init() {
  await setupLanguage();
  const found = saved();
  if (found) {
    let visit = null;
    try {
      visit = (await api('GET', `/visits/${found.visitId}`, found.token)).visit;
    } catch (_) {
      forget(); // ended, or not valid any more
    }
    if (visit && found.ask) {
      $('resume-text').textContent = t('resume.text', { time: new Date(visit.checkedInAt).toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' }) });
      show('resume');
      $('resume-yes').focus();
      const yes = await new Promise((resolve) => {
        $('resume-yes').onclick = () => resolve(true);
        $('resume-no').onclick = () => resolve(false);
      });
      if (!yes) { forget(); visit = null; }
    }
    if (visit) { // nothing to re-enter
      state.token = found.token;
      state.visit = visit;
      remember(visit.id, found.token);
      return enter();
    }
  }
  try {
    const room = await api('GET', `/checkin/${encodeURIComponent(slug)}`);
    state.roomName = room.displayName;
    $('checkin-title').textContent = t('checkin.title', { room: room.displayName });
    if (room.open === false) return closed(room.closedMessage || t('closed.text', { room: room.displayName }));
    show('checkin');
    startDeviceCheck();
  } catch (err) {
    $('ended-text').textContent = t('ended.invalid');
    show('ended');
  }
}

// The device check on the check-in page: the camera's preview, a live
// microphone level, a test sound for the speaker, device pickers, audio
// only, and what to do when the browser blocked the camera or microphone.
// The visit then uses the stream checked here.
const check = { stream: null, audio: null, raf: 0, chosen: {} };

async function openPreview() {
  const want = (kind) => (check.chosen[kind] ? { deviceId: { exact: check.chosen[kind] } } : true);
  const audioOnly = $('audio-only').checked;
  const get = (c) => navigator.mediaDevices.getUserMedia(c).then((s) => ({ s }), (err) => ({ err }));
  let r = await get(audioOnly ? { audio: want('audioinput') } : { audio: want('audioinput'), video: want('videoinput') });
  let blocked = r.err && r.err.name === 'NotAllowedError';
  if (r.err) { // one of the two may still work
    const [a, v] = await Promise.all([get({ audio: want('audioinput') }), audioOnly ? { err: null } : get({ video: want('videoinput') })]);
    blocked = blocked || (a.err && a.err.name === 'NotAllowedError') || (v.err && v.err.name === 'NotAllowedError');
    r = { s: new MediaStream([...(a.s ? a.s.getTracks() : []), ...(v.s ? v.s.getTracks() : [])]) };
  }
  return { stream: r.s, blocked };
}

async function startDeviceCheck() {
  if (!navigator.mediaDevices) {
    help(t('check.noDevices'));
    return;
  }
  if (check.stream) check.stream.getTracks().forEach((t) => t.stop());
  const { stream, blocked } = await openPreview();
  check.stream = stream;
  $('preview').srcObject = stream;
  $('preview').classList.toggle('hidden', !stream.getVideoTracks().length);
  const missing = [...(stream.getVideoTracks().length || $('audio-only').checked ? [] : ['camera']), ...(stream.getAudioTracks().length ? [] : ['microphone'])];
  if (blocked) {
    const devices = (missing.length ? missing : ['camera', 'microphone']).map((d) => t(`device.${d}`)).join(` ${t('device.and')} `);
    help(t(missing.includes('camera') ? 'check.blockedSoundOnly' : 'check.blocked', { devices }));
  } else if (missing.length) {
    help(t('check.missing', { devices: missing.map((d) => t(`device.${d}`)).join(` ${t('device.or')} `) }));
  } else {
    $('device-help').classList.add('hidden');
  }
  meter(stream);
  pickers();
}

function help(text) {
  $('device-help').textContent = text;
  $('device-help').classList.remove('hidden');
}

// meter shows the microphone's level as the person speaks.
function meter(stream) {
  cancelAnimationFrame(check.raf);
  if (!stream.getAudioTracks().length) { $('mic-level').value = 0; return; }
  check.audio = check.audio || new AudioContext();
  const analyser = check.audio.createAnalyser();
  analyser.fftSize = 512;
  check.audio.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const tick = () => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const x of data) sum += x * x;
    $('mic-level').value = Math.min(1, Math.sqrt(sum / data.length) * 4);
    if (!$('checkin').classList.contains('hidden')) check.raf = requestAnimationFrame(tick);
  };
  tick();
}

async function pickers() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const box = $('device-pickers');
  box.replaceChildren();
  for (const [kind, label] of [['videoinput', t('check.camera')], ['audioinput', t('check.microphone')]]) {
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    if (!list.length) continue;
    const sel = document.createElement('select');
    sel.id = `check-${kind}`;
    list.forEach((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${label} ${i + 1}`;
      o.selected = d.deviceId === check.chosen[kind];
      sel.append(o);
    });
    sel.addEventListener('change', () => { check.chosen[kind] = sel.value; startDeviceCheck(); });
    const l = document.createElement('label');
    l.htmlFor = sel.id;
    l.textContent = label;
    box.append(l, sel);
  }
}

// speakerTest plays a short chime: the person hears whether sound works.
function speakerTest() {
  check.audio = check.audio || new AudioContext();
  const ctx = check.audio;
  ctx.resume();
  const o = ctx.createOscillator();
  const g = ctx.createGain();
  o.frequency.value = 660;
  g.gain.value = 0.2;
  o.connect(g).connect(ctx.destination);
  o.start();
  o.stop(ctx.currentTime + 1);
  window.handoff.speakerTested = true;
  $('speaker-status').textContent = t('check.playing');
}

async function checkIn(e) {
  e.preventDefault();
  try {
    const r = await api('POST', `/checkin/${encodeURIComponent(slug)}`, null, { name: $('name').value, consent: $('consent').checked });
    state.token = r.token;
    state.visit = r.visit;
    remember(r.visit.id, r.token);
    await enter();
  } catch (err) {
    if (err.code === 'room_closed') return closed(err.message);
    $('checkin-error').textContent = err.message;
  }
}

// closed: the room no longer takes check-ins (its provider left the clinic,
// or it was archived); the patient reads why instead of a form.
function closed(text) {
  $('closed-text').textContent = text;
  show('closed');
}

// chatLine shows one message of the conversation.
const shownMessages = new Set();
function chatLine(m) {
  if (shownMessages.has(m.id)) return; // the list and the stream may both bring it
  shownMessages.add(m.id);
  showLine($('chat-log'), m, (x) => x.from === 'patient');
}

async function sendChat(e) {
  e.preventDefault();
  await send(`/visits/${state.visit.id}/messages`, state.token); // the line comes back as an event
}

async function enter() {
  events(state.token, onEvent);
  api('GET', `/visits/${state.visit.id}/messages`, state.token).then((r) => r.messages.forEach(chatLine), () => {});
  if (state.visit.message) showConfirmation(t('transfer.done', { name: state.visit.waitingFor }));
  renderVisit();
  try {
    cancelAnimationFrame(check.raf);
    state.media = new HandoffMedia({
      stream: check.stream, // the devices checked on the check-in page, if any
      onRemote: (s) => showVideo($('remote'), s, 'Your provider'),
      onEvent: (m) => { mediaStatus($('media-status'), m); if (state.peerState) state.peerState(m); },
      // A lost media session comes back into the same call, if any.
      renew: () => api('POST', '/media/rejoin', state.token, {}, { 'Idempotency-Key': crypto.randomUUID() }),
      session: () => api('GET', '/media/session', state.token),
    });
    const session = await api('GET', '/media/session', state.token);
    state.stream = await state.media.start(session);
    $('self').srcObject = state.stream;
    $('self-call').srcObject = state.stream;
    deviceNotice($('device-status'), state.media);
    // In a call: the others are the provider(s) ('user:…') and, in a group, other patients.
    state.peerState = callControls($('call-controls'), state.media,
      { nameOf: (p) => (p.startsWith('user:') ? t('call.provider') : p.startsWith('guest:') ? t('call.guest') : t('call.anotherPatient')) });
  } catch (err) {
    console.warn('media unavailable', err); // the visit goes on without video
  }
}

function renderVisit() {
  const v = state.visit;
  $('chat').classList.toggle('hidden', v.state === 'ended');
  $('chat-form').classList.toggle('hidden', v.chatOpen === false);
  $('chat-off').classList.toggle('hidden', v.chatOpen !== false);
  if (v.state === 'ended') return show('ended');
  if (Date.now() < state.loadingUntil) return;
  $('waiting-title').textContent = t('waiting.title', { name: v.waitingFor });
  $('position').textContent = v.position === 1 ? t('waiting.next') : v.position ? t('waiting.position', { n: v.position }) : '';
  $('incall-title').textContent = t('call.title', { name: v.waitingFor });
  show(v.state === 'in_call' ? 'incall' : 'waiting');
}

function showConfirmation(text) {
  state.shown.push(text);
  $('confirmation').textContent = text;
  $('confirmation').classList.remove('hidden');
}

// callNotice tells the patient in a call who came or went.
function callNotice(text) {
  state.shown.push(text);
  $('call-notice').textContent = text;
  $('call-notice').classList.remove('hidden');
}

async function reload() {
  state.visit = (await api('GET', `/visits/${state.visit.id}`, state.token)).visit;
  renderVisit();
}

async function onEvent(type, data) {
  if (type === 'visit.transfer_started') {
    const text = data.name ? t('transfer.starting', { name: data.name }) : data.message; // "Taking you to <name>'s room now"
    $('loading-text').textContent = text;
    state.shown.push(text);
    $('remote').replaceChildren();
    show('loading');
    state.loadingUntil = Date.now() + 1500; // long enough to read
  } else if (type === 'visit.transferred') {
    const wait = state.loadingUntil - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    state.loadingUntil = 0;
    showConfirmation(data.name ? t('transfer.done', { name: data.name }) : data.message); // "You have been transferred to <name>'s room"
    await reload();
  } else if (type === 'visit.transfer_failed') {
    state.loadingUntil = 0;
    showConfirmation(data.name ? t('transfer.failed', { name: data.name }) : data.message);
    await reload();
  } else if (type === 'visit.admitted') {
    $('confirmation').classList.add('hidden');
    const session = await api('GET', `/media/session?callId=${encodeURIComponent(data.callId)}`, state.token);
    if (state.media) await state.media.enter(session); // on another media node: a session there, no reload
    await reload();
  } else if (type === 'visit.held') {
    $('remote').replaceChildren(); // the call's media stopped both ways
    showConfirmation(data.name ? t('call.held', { name: data.name }) : data.message);
    await reload();
  } else if (type === 'message.sent') {
    chatLine(data);
  } else if (type === 'call.joined') {
    callNotice(data.name ? t('call.joined', { name: data.name }) : data.message); // "<provider> joined the call"
  } else if (type === 'guest.joined' || type === 'guest.gone') {
    callNotice(t(type === 'guest.joined' ? 'call.guestJoined' : 'call.guestLeft', { name: data.name }));
  } else if (type === 'visit.ended' || type === 'visit.left') {
    forget();
    show('ended');
  }
}

async function leave() {
  try { await api('POST', `/visits/${state.visit.id}/leave`, state.token); } catch (_) { /* already over */ }
  forget();
  show('ended');
}

setInterval(() => { if (state.visit) $('waited').textContent = t('waiting.waited', { time: since(state.visit.checkedInAt) }); }, 1000);
// The place in line moves as others are admitted or leave: look again now and then.
setInterval(() => { if (state.visit && state.visit.state === 'waiting' && !document.hidden) reload().catch(() => {}); }, 10000);
$('checkin-form').addEventListener('submit', checkIn);
$('speaker-test').addEventListener('click', speakerTest);
$('audio-only').addEventListener('change', startDeviceCheck);
$('chat-form').addEventListener('submit', sendChat);
$('leave').addEventListener('click', leave);
$('leave-call').addEventListener('click', leave);
init();
