// HandoffMedia: one signaling session per page, kept across calls. The
// server makes every offer; this side answers, trickles ICE (never before
// its answer), answers the server's pings, and sends its camera and
// microphone only while it is in a call: a waiting patient sends nothing.
//
// When the network changes under a live session it asks the server for an
// ICE restart on the same session. When the session itself is lost (the
// media node restarts, the socket dies) it reconnects with jittered backoff
// — probing with a plain session, which costs the visit nothing — and only
// once connected asks renew() to restore its place in the call (one visit
// update per reconnection, however long the outage).
// Texts: English here; a page with message catalogues (the patient's)
// gives its translator with useTexts. say(key, english, params).
let translate = null;
export function useTexts(fn) { translate = fn; }
function say(key, english, params = {}) {
  return translate ? translate(key, params) : english.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? ''));
}

const PING_TIMEOUT = 15000; // the server pings every 5 s
const BACKOFF_FIRST = 500, BACKOFF_CEILING = 15000;

// LAYERS are the camera's three encodings, in the order of the video
// m-lines the media node offers to receive: full, half and quarter size,
// each with its bit-rate ceiling.
const LAYERS = [
  { scale: 1, maxBitrate: 1_200_000 },
  { scale: 2, maxBitrate: 400_000 },
  { scale: 4, maxBitrate: 120_000 },
];

// receivingVideoMids lists, in order, the mids of the video m-lines an
// offer from the media node receives on: where the camera's layers and a
// shared screen go. The node also sends the others' video on the first of
// them once they are in the call (a=sendrecv then, not a=recvonly), so both
// count: missing those sent the quarter size on the screen's m-line.
function receivingVideoMids(sdp) {
  const mids = [];
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    if (!section.startsWith('video') || !/\na=(recvonly|sendrecv)/.test(section)) continue;
    const mid = /\na=mid:(\S+)/.exec(section);
    if (mid) mids.push(mid[1]);
  }
  return mids;
}

// LAYER_NAMES are the English words for the camera layer the media node
// sends (pages without a catalogue show these).
const LAYER_NAMES = { full: 'full quality', half: 'half resolution', quarter: 'low resolution', paused: 'paused' };

export class HandoffMedia {
  constructor({ onRemote, onEvent, renew, session, stream }) {
    this.given = stream; // devices already opened (the patient's device check)
    this.onRemote = onRemote || (() => {});
    this.onEvent = onEvent || (() => {});
    this.renew = renew; // POST /media/rejoin: restores the call, a visit update
    this.session = session; // GET /media/session: a fresh session token, no update
    this.streams = new Map();
    this.closed = false;
    this.reconnecting = false;
    this.reconnects = 0;
    this.attempts = 0;
    this.restarts = 0;
    this.inCall = false;
    this.missing = [];
  }

  // start opens the camera and microphone (whatever of them there is) and
  // the signaling session.
  async start(session) {
    if (this.given) {
      this.local = this.given;
      this.missing = [...(this.local.getVideoTracks().length ? [] : ['camera']), ...(this.local.getAudioTracks().length ? [] : ['microphone'])];
    } else {
      this.local = await openDevices(this);
    }
    try { await this.connect(session); } catch (err) { console.warn('media not reachable yet', err.message); this.lost(); }
    return this.local;
  }

  // connect opens a PeerConnection and its signaling socket; it resolves once
  // the socket is open and rejects if it closes first.
  connect(session) {
    this.last = session;
    const pc = new RTCPeerConnection({ iceServers: session.iceServers || [] });
    this.pc = pc;
    this.answered = false;
    this.heldCandidates = [];
    this.senders = new Map(); // kind → RTCRtpSender of our track
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      const c = e.candidate.toJSON();
      if (this.answered) this.send({ type: 'candidate', candidate: c }); else this.heldCandidates.push(c);
    };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      this.streams.set(stream.id, stream);
      this.onRemote(stream);
      e.track.onended = () => this.onRemote(stream);
      stream.onremovetrack = () => this.onRemote(stream); // a shared screen that stopped
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'disconnected' || pc.connectionState === 'failed') this.restartIce();
    };
    this.resumeID = null;
    return this.openSocket(pc, session, null).then(() => { if (session.joinToken) this.join(session.joinToken); });
  }

  // openSocket opens the signaling socket of pc's session: a new session,
  // or (resume) the same one again after the socket dropped.
  openSocket(pc, session, resume) {
    const q = resume ? `&resume=${encodeURIComponent(resume)}` : '';
    const ws = new WebSocket(`${session.url}?token=${encodeURIComponent(session.sessionToken)}${q}`);
    this.ws = ws;
    // Messages wait for the socket: an admit can arrive while it still opens.
    this.ready = new Promise((resolve, reject) => {
      ws.onopen = () => { this.heard(); resolve(); };
      ws.onclose = () => {
        reject(new Error('the media connection closed'));
        if (ws === this.ws && !this.closed && !this.reconnecting) this.dropped(pc);
      };
    });
    ws.onmessage = (m) => {
      if (ws !== this.ws) return;
      this.heard();
      const msg = JSON.parse(m.data);
      if (msg.type === 'welcome') { this.resumeID = msg.token; return; }
      if (msg.type === 'error' && resume) { this.resumeID = null; ws.close(); return; } // that session is over
      if (msg.type === 'media_restarting') this.resumeID = null; // nothing to resume on a new node
      if (msg.type === 'media_moving') { this.resumeID = null; this.last = null; } // this node is draining: ask where to go
      this.handle(pc, msg);
    };
    return this.ready;
  }

  // dropped: the socket died under a live session (a changed network, a
  // proxy). Resume the same session on a new socket — the PeerConnection
  // and the place in the call stay, the server restarts ICE — and fall back
  // to a new session only if that fails.
  async dropped(pc) {
    if (!this.resumeID || pc !== this.pc) return this.lost();
    this.reconnecting = true;
    this.onEvent({ type: 'reconnecting' });
    for (let i = 0; i < 5 && this.resumeID && !this.closed && pc === this.pc; i++) {
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
      try {
        const session = fresh(this.last) ? this.last : await this.session();
        await this.openSocket(pc, session, this.resumeID);
        this.reconnecting = false;
        this.resumes = (this.resumes || 0) + 1;
        this.onEvent({ type: 'reconnected' });
        return;
      } catch (_) { /* try again */ }
    }
    this.reconnecting = false;
    if (pc === this.pc) this.lost();
  }

  // heard resets the watchdog: a server silent for 15 s is gone, even if
  // the socket has not noticed (a dead network, a proxy that swallowed it).
  heard() {
    this.lastHeard = Date.now();
    clearTimeout(this.watchdog);
    const ws = this.ws;
    this.watchdog = setTimeout(() => { if (ws === this.ws && !this.closed) { ws.onclose = null; ws.close(); this.dropped(this.pc); } }, PING_TIMEOUT);
  }

  send(msg) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg)); }

  async join(token) { await this.ready; this.send({ type: 'join', token }); }

  // enter joins the call a session from GET /media/session?callId= names.
  // A call on this session's media node is joined on this session; a call
  // on another node (a transfer's receiving call placed elsewhere) through a
  // new session there, the camera and the page kept.
  async enter(session) {
    if (!session || !session.joinToken) return;
    if (!this.pc || !this.last || !session.url || session.url === this.last.url) return this.join(session.joinToken);
    return this.moveTo(session);
  }

  // moveTo opens a session on session's node and joins its call there; the
  // old session closes only once the new one carries the call's media (or
  // after 10 s, when the reconnect logic takes over the new one).
  async moveTo(session) {
    const old = { pc: this.pc, ws: this.ws, streams: this.streams };
    this.streams = new Map();
    this.senders = new Map();
    this.layerSenders = [];
    this.screenSender = null;
    this.inCall = false;
    this.moves = (this.moves || 0) + 1;
    try {
      await this.connect(session);
      const pc = this.pc;
      for (let i = 0; i < 100 && !(this.inCall && pc.connectionState === 'connected') && pc === this.pc; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (err) {
      console.warn('media: the other node is not reachable yet', err.message);
      this.lost();
    } finally {
      if (old.ws) { old.ws.onclose = null; old.ws.close(); }
      if (old.pc) old.pc.close();
      for (const stream of old.streams.values()) {
        for (const t of stream.getTracks()) t.stop();
        this.onRemote(stream);
      }
    }
  }

  // restartIce asks the server for an ICE restart on this session (at most
  // every 5 s): the call and the session stay.
  restartIce() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - (this.restartedAt || 0) < 5000) return;
    this.restartedAt = Date.now();
    this.restarts++;
    this.send({ type: 'restart' });
    // The path went down: if the socket went with it (the address it used
    // is gone), nothing answers; resume on a new socket without waiting for
    // the 15 s watchdog.
    const ws = this.ws, heard = this.lastHeard;
    setTimeout(() => { if (ws === this.ws && this.lastHeard === heard && !this.closed) { ws.onclose = null; ws.close(); this.dropped(this.pc); } }, 3000);
  }

  async handle(pc, msg) {
    if (pc !== this.pc) return; // a message of a session already replaced
    if (msg.type === 'offer') {
      this.answered = false;
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      if (this.inCall) this.sendTracks(pc, msg.sdp);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      if (this.inCall) this.shapeLayers();
      this.send({ type: 'answer', sdp: answer.sdp });
      this.answered = true;
      for (const c of this.heldCandidates.splice(0)) this.send({ type: 'candidate', candidate: c });
    } else if (msg.type === 'candidate' && msg.candidate) {
      await pc.addIceCandidate(msg.candidate).catch(() => {}); // one of an ICE generation already restarted
    } else if (msg.type === 'ping') {
      this.send({ type: 'pong' });
    } else if (msg.type === 'joined') {
      this.inCall = true; // the server offers again: our tracks go with the answer
      if (this.muted || this.cameraOff) this.sendState(); // a new session starts with both on
      this.onEvent(msg);
    } else if (msg.type === 'left' || msg.type === 'call_ended') {
      this.inCall = false;
      this.stopSending();
      this.onEvent(msg);
    } else if (msg.type === 'link') {
      this.link = msg; // the node's view of our downlink, for the quality line
    } else if (msg.type === 'replaced') {
      // This visit was opened again elsewhere: that page has the call now.
      this.closed = true;
      this.teardown();
      this.onEvent(msg);
    } else {
      this.onEvent(msg);
    }
  }

  // sendTracks puts our camera and microphone on the m-lines the server
  // offered, reusing our senders after a pause.
  // The camera goes out three times (simulcast): full size on the first
  // video m-line the node offers to receive, half and a quarter size on the
  // next two, so that the node can send each of the others what their link
  // carries. A shared screen goes on an m-line of its own.
  sendTracks(pc, sdp) {
    for (const camera of this.local.getTracks()) {
      const track = camera.kind === 'video' ? this.cameraOut(camera) : camera;
      const sender = this.senders.get(track.kind);
      if (sender) { if (sender.track !== track) sender.replaceTrack(track); } else this.senders.set(track.kind, pc.addTrack(track, this.local));
    }
    if (!sdp) return;
    const mids = receivingVideoMids(sdp);
    // The m-line after the camera's layers takes a shared screen: it is
    // sent beside the camera, as a source of its own.
    const screenTr = mids[LAYERS.length] && pc.getTransceivers().find((t) => t.mid === mids[LAYERS.length]);
    if (screenTr) {
      if (screenTr.direction !== 'sendrecv') screenTr.direction = 'sendrecv';
      if (screenTr.sender.track !== (this.sharing || null)) screenTr.sender.replaceTrack(this.sharing || null);
      this.screenSender = screenTr.sender;
    }
    const camera = this.local.getVideoTracks()[0];
    if (!camera) return;
    const lower = mids.slice(1, LAYERS.length);
    this.layerSenders = this.layerSenders || [];
    lower.forEach((mid, i) => {
      const tr = pc.getTransceivers().find((t) => t.mid === mid);
      if (!tr) return;
      const want = this.cameraOut(camera);
      if (tr.direction !== 'sendrecv') tr.direction = 'sendrecv';
      if (tr.sender.track !== want) tr.sender.replaceTrack(want);
      if (tr.sender.setStreams) tr.sender.setStreams(this.local);
      this.layerSenders[i] = tr.sender;
    });
  }

  // cameraOut is what the camera's senders carry: the camera, or a shared
  // screen in its place where the node offers no m-line of its own for it.
  cameraOut(camera) { return this.sharing && !this.screenSender ? this.sharing : camera; }

  // shapeLayers scales each camera layer down and caps its bit rate (after
  // the answer: a sender has its encodings from then on).
  async shapeLayers() {
    const senders = [this.senders.get('video'), ...(this.layerSenders || [])];
    for (let i = 0; i < senders.length && i < LAYERS.length; i++) {
      const sender = senders[i];
      if (!sender || !sender.track) continue;
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) continue;
      const { scale, maxBitrate } = LAYERS[i];
      const enc = params.encodings[0];
      if (enc.scaleResolutionDownBy === scale && enc.maxBitrate === maxBitrate) continue;
      enc.scaleResolutionDownBy = scale;
      enc.maxBitrate = maxBitrate;
      await sender.setParameters(params).catch((err) => console.warn('camera layer settings refused', err.message));
    }
  }

  stopSending() {
    for (const s of this.senders.values()) s.replaceTrack(null);
    for (const s of this.layerSenders || []) s.replaceTrack(null);
    if (this.screenSender) this.screenSender.replaceTrack(null);
  }

  // setMuted turns the microphone off (the others hear silence) or on; the
  // others' pages are told, through the media node.
  setMuted(on) {
    this.muted = on;
    for (const t of this.local.getAudioTracks()) t.enabled = !on;
    this.sendState();
  }

  // setCameraOff turns the camera off (the others see black) or on.
  setCameraOff(on) {
    this.cameraOff = on;
    for (const t of this.local.getVideoTracks()) t.enabled = !on;
    this.sendState();
  }

  sendState() { this.send({ type: 'state', muted: Boolean(this.muted), cameraOff: Boolean(this.cameraOff), poor: Boolean(this.poor) }); }

  // useDevice switches the camera or microphone (kind 'videoinput' or
  // 'audioinput') to deviceId mid-call, keeping its on/off switch.
  async useDevice(kind, deviceId) {
    const video = kind === 'videoinput';
    const s = await navigator.mediaDevices.getUserMedia(video ? { video: { deviceId: { exact: deviceId } } } : { audio: { deviceId: { exact: deviceId } } });
    const fresh = s.getTracks()[0];
    const old = video ? this.local.getVideoTracks()[0] : this.local.getAudioTracks()[0];
    fresh.enabled = !(video ? this.cameraOff : this.muted);
    if (old) { this.local.removeTrack(old); old.stop(); }
    this.local.addTrack(fresh);
    const sender = this.senders && this.senders.get(fresh.kind);
    if (sender && !(video && this.sharing && !this.screenSender) && this.inCall) {
      await sender.replaceTrack(fresh);
      if (video) for (const s of this.layerSenders || []) await s.replaceTrack(fresh);
    }
    return fresh;
  }

  // shareScreen sends the screen in place of the camera until stopSharing
  // (or the browser's own "Stop sharing").
  async shareScreen() {
    const screen = (await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })).getVideoTracks()[0];
    this.sharing = screen;
    screen.onended = () => this.stopSharing();
    if ('contentHint' in screen) screen.contentHint = 'detail'; // sharp text over smooth motion
    const sender = this.senders && this.senders.get('video');
    if (this.screenSender && this.inCall) {
      await this.screenSender.replaceTrack(screen); // beside the camera
    } else if (sender && this.inCall) {
      await sender.replaceTrack(screen); // a node without a screen m-line: in the camera's place
      for (const s of this.layerSenders || []) await s.replaceTrack(screen);
    }
    return screen;
  }

  async stopSharing() {
    const screen = this.sharing;
    if (!screen) return;
    this.sharing = null;
    const sender = this.senders && this.senders.get('video');
    if (this.screenSender && this.inCall) {
      await this.screenSender.replaceTrack(null);
    } else if (sender && this.inCall) {
      const camera = this.local.getVideoTracks()[0] || null;
      await sender.replaceTrack(camera);
      for (const s of this.layerSenders || []) await s.replaceTrack(camera);
    }
    screen.stop();
    if (this.onSharingStopped) this.onSharingStopped();
  }

  // quality reads the connection from getStats since the last call:
  // round-trip time, packet loss of what it receives, and the bitrate both
  // ways; level is what a person is told ('good', 'fair', 'poor').
  async quality() {
    if (!this.pc) return null;
    let rtt = 0, lost = 0, received = 0, bytes = 0;
    (await this.pc.getStats()).forEach((r) => {
      if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime !== undefined) rtt = r.currentRoundTripTime * 1000;
      if (r.type === 'inbound-rtp') { lost += r.packetsLost || 0; received += r.packetsReceived || 0; bytes += r.bytesReceived || 0; }
      if (r.type === 'outbound-rtp') bytes += r.bytesSent || 0;
    });
    const now = Date.now(), prev = this.lastQuality || { at: now - 1, lost, received, bytes };
    this.lastQuality = { at: now, lost, received, bytes };
    const dLost = Math.max(0, lost - prev.lost), dRecv = Math.max(0, received - prev.received);
    const loss = dLost + dRecv ? (100 * dLost) / (dLost + dRecv) : 0;
    const kbps = ((bytes - prev.bytes) * 8) / Math.max(1, now - prev.at);
    const level = rtt > 600 || loss > 10 ? 'poor' : rtt > 300 || loss > 3 ? 'fair' : 'good';
    return { rttMs: Math.round(rtt), lossPct: Math.round(loss * 10) / 10, kbps: Math.round(kbps), level };
  }

  // lost drops the dead session and reconnects until it works or the page
  // closes the media on purpose.
  async lost() {
    if (this.closed || this.reconnecting || !this.renew) return;
    this.reconnecting = true;
    const wasInCall = this.inCall;
    this.teardown();
    this.onEvent({ type: 'reconnecting' });
    for (let attempt = 0; !this.closed; attempt++) {
      // Full jitter: pages that lost the same node do not return in step.
      await new Promise((r) => setTimeout(r, BACKOFF_FIRST / 2 + Math.random() * Math.min(BACKOFF_FIRST * 2 ** attempt, BACKOFF_CEILING)));
      this.attempts++;
      try {
        // The same node again at first (it restarted); after that, ask:
        // the call may have moved to another node (its own died or drained).
        const session = attempt === 0 && this.last && fresh(this.last) ? this.last : await this.session();
        await this.connect({ ...session, joinToken: undefined });
        if (wasInCall || session.callId) {
          const renewed = await this.renew(); // back into the call, on its node now
          await this.enter(renewed);
        }
        this.reconnecting = false;
        this.reconnects++;
        this.onEvent({ type: 'reconnected' });
        return;
      } catch (err) {
        this.teardown();
        console.warn('media reconnect failed, retrying', err.message);
      }
    }
  }

  teardown() {
    const pc = this.pc, ws = this.ws;
    this.pc = null; this.ws = null;
    this.inCall = false;
    clearTimeout(this.watchdog);
    if (ws) { ws.onclose = null; ws.close(); }
    if (pc) pc.close();
    // Closing our side does not end the remote tracks' elements by itself.
    for (const stream of this.streams.values()) {
      for (const t of stream.getTracks()) t.stop();
      this.onRemote(stream);
    }
    this.streams.clear();
  }

  close() { this.closed = true; this.teardown(); }

  // stats sums the page's RTP figures: bytes in and out, and the energy of
  // the audio it received (what a listener hears).
  async stats() {
    const out = { inboundBytes: 0, outboundBytes: 0, audioEnergy: 0, audioPackets: 0 };
    if (!this.pc) return out;
    (await this.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') {
        out.inboundBytes += r.bytesReceived || 0;
        if (r.kind === 'audio') { out.audioEnergy += r.totalAudioEnergy || 0; out.audioPackets += r.packetsReceived || 0; }
      }
      if (r.type === 'outbound-rtp') out.outboundBytes += r.bytesSent || 0;
    });
    return out;
  }

  // inboundBytes sums received media bytes (what the tests watch grow).
  async inboundBytes() { return (await this.stats()).inboundBytes; }
}

// fresh: a session token that still has a minute left (its payload is the
// claims, base64url JSON, with exp in seconds).
function fresh(session) {
  try {
    const claims = JSON.parse(atob(session.sessionToken.split('.')[0].replace(/-/g, '+').replace(/_/g, '/')));
    return claims.exp * 1000 - Date.now() > 60000;
  } catch (_) { return false; }
}

// openDevices gets the camera and the microphone, or whichever of them the
// person has: a denied or absent camera still joins with sound, a missing
// microphone still with video. m.missing names what is not there.
async function openDevices(m) {
  if (!navigator.mediaDevices) { // a page not served over HTTPS gets no devices at all
    m.missing = ['camera', 'microphone'];
    return new MediaStream();
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (_) {
    const [audio, video] = await Promise.all([
      navigator.mediaDevices.getUserMedia({ audio: true }).catch(() => null),
      navigator.mediaDevices.getUserMedia({ video: true }).catch(() => null),
    ]);
    m.missing = [...(video ? [] : ['camera']), ...(audio ? [] : ['microphone'])];
    return new MediaStream([...(audio ? audio.getTracks() : []), ...(video ? video.getTracks() : [])]);
  }
}

// deviceNotice says which device the visit goes on without.
export function deviceNotice(el, media) {
  const text = {
    camera: say('media.cameraMissing', 'Your camera is off or not available: the visit goes on with sound only.'),
    microphone: say('media.microphoneMissing', 'Your microphone is not available: the visit goes on with video only. Others will not hear you.'),
    both: say('media.bothMissing', 'Your camera and microphone are not available: you can see and hear others, but they cannot see or hear you.'),
  }[media.missing.length === 2 ? 'both' : media.missing[0]];
  if (!text) return;
  el.textContent = text;
  el.classList.remove('hidden');
}

// mediaStatus shows the reconnecting notice in el for a page's media events.
export function mediaStatus(el, msg) {
  if (msg.type === 'media_restarting' || msg.type === 'reconnecting') {
    el.textContent = say('media.reconnecting', 'Video is reconnecting… please stay on this page.');
    delete el.dataset.notice;
    el.classList.remove('hidden');
  } else if (msg.type === 'reconnected') {
    el.classList.add('hidden');
  } else if (msg.type === 'video_paused') {
    // The media node holds video back while this page's link cannot
    // carry it with the sound: say why the pictures froze.
    el.textContent = say('media.videoPaused', 'Video paused to keep the sound clear.');
    el.dataset.notice = 'video-paused';
    el.classList.remove('hidden');
  } else if (msg.type === 'video_resumed') {
    if (el.dataset.notice === 'video-paused') el.classList.add('hidden');
    delete el.dataset.notice;
  } else if (msg.type === 'replaced') {
    el.textContent = say('media.replaced', 'This visit is now open in another window or tab. You can close this one.');
    el.classList.remove('hidden');
  }
}

// showVideo shows a remote stream, with its sound. A browser that will not
// play sound before the person has touched the page gets the video muted
// and one "Tap to turn on sound" button, which unmutes everyone.
export function showVideo(container, stream, label) {
  let v = container.querySelector(`video[data-stream="${stream.id}"]`);
  const live = stream.getTracks().some((t) => t.readyState === 'live');
  if (!live) { if (v) v.remove(); return; }
  if (!v) {
    v = document.createElement('video');
    v.dataset.stream = stream.id;
    v.autoplay = true; v.playsInline = true;
    // A participant's shared screen comes as a stream of its own.
    if (stream.id.startsWith('screen-')) { v.dataset.screen = '1'; label = say('media.sharedScreen', 'Shared screen'); }
    v.setAttribute('aria-label', label);
    container.appendChild(v);
  }
  v.srcObject = stream;
  v.play().catch((err) => {
    if (err.name !== 'NotAllowedError') return;
    v.muted = true; // the picture at least
    v.play().catch(() => {});
    soundButton().classList.remove('hidden');
  });
}

function soundButton() {
  let b = document.getElementById('sound-on');
  if (!b) {
    b = document.createElement('button');
    b.id = 'sound-on';
    b.type = 'button';
    b.className = 'sound-on hidden';
    b.textContent = say('media.tapForSound', 'Tap to turn on sound');
    b.addEventListener('click', () => {
      for (const v of document.querySelectorAll('video[data-stream]')) { v.muted = false; v.play().catch(() => {}); }
      b.classList.add('hidden');
    });
    document.body.prepend(b);
  }
  return b;
}

// callControls puts a call's controls into root: microphone and camera
// switches (the others see the state), device pickers, screen sharing (when
// share is set), a connection-quality line from getStats, and a line saying
// who else has muted or turned the camera off (nameOf names a participant).
// It returns the handler of the media node's 'peer_state' messages.
export function callControls(root, media, { share = false, nameOf = () => 'Someone' } = {}) {
  const button = (label, onclick) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', onclick);
    return b;
  };
  const mic = button(say('controls.mute', 'Mute'), () => {
    media.setMuted(!media.muted);
    mic.textContent = media.muted ? say('controls.unmute', 'Unmute') : say('controls.mute', 'Mute');
    mic.setAttribute('aria-pressed', String(Boolean(media.muted)));
  });
  mic.setAttribute('aria-pressed', 'false');
  const cam = button(say('controls.cameraOff', 'Turn camera off'), () => {
    media.setCameraOff(!media.cameraOff);
    cam.textContent = media.cameraOff ? say('controls.cameraOn', 'Turn camera on') : say('controls.cameraOff', 'Turn camera off');
    cam.setAttribute('aria-pressed', String(Boolean(media.cameraOff)));
  });
  cam.setAttribute('aria-pressed', 'false');
  const bar = document.createElement('div');
  bar.className = 'actions call-controls';
  bar.setAttribute('role', 'group');
  bar.setAttribute('aria-label', say('controls.group', 'Call controls'));
  bar.append(mic, cam);
  if (share && navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia) {
    const scr = button(say('controls.share', 'Share screen'), async () => {
      try {
        if (media.sharing) await media.stopSharing(); else await media.shareScreen();
      } catch (err) { console.warn('screen sharing refused', err); }
      scr.textContent = media.sharing ? say('controls.stopShare', 'Stop sharing') : say('controls.share', 'Share screen');
    });
    media.onSharingStopped = () => { scr.textContent = say('controls.share', 'Share screen'); };
    bar.append(scr);
  }
  const pickers = document.createElement('div');
  pickers.className = 'inline device-pickers';
  const fillPickers = async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    pickers.replaceChildren();
    for (const [kind, label] of [['audioinput', say('check.microphone', 'Microphone')], ['videoinput', say('check.camera', 'Camera')], ['audiooutput', say('controls.speaker', 'Speaker')]]) {
      const list = devices.filter((d) => d.kind === kind);
      if (!list.length) continue;
      const id = `pick-${kind}`;
      const l = document.createElement('label');
      l.htmlFor = id;
      l.textContent = label;
      const sel = document.createElement('select');
      sel.id = id;
      list.forEach((d, i) => { const o = document.createElement('option'); o.value = d.deviceId; o.textContent = d.label || `${label} ${i + 1}`; sel.append(o); });
      sel.addEventListener('change', async () => {
        if (kind === 'audiooutput') {
          for (const v of document.querySelectorAll('video[data-stream]')) if (v.setSinkId) await v.setSinkId(sel.value).catch(() => {});
        } else {
          await media.useDevice(kind, sel.value).catch((err) => console.warn('device switch failed', err));
        }
      });
      pickers.append(l, sel);
    }
  };
  fillPickers();
  const quality = document.createElement('p');
  quality.className = 'meta call-quality';
  quality.setAttribute('role', 'status');
  const others = document.createElement('p');
  others.className = 'meta peer-states';
  others.setAttribute('aria-live', 'polite');
  const states = new Map();
  const showOthers = () => {
    const lines = [];
    for (const [who, st] of states) {
      const name = nameOf(who);
      if (st.muted) lines.push(say('peer.muted', '{name} has muted their microphone.', { name }));
      if (st.cameraOff) lines.push(say('peer.cameraOff', "{name}'s camera is off.", { name }));
      if (st.poor) lines.push(say('peer.poor', "{name}'s connection is poor: sound or video may break up.", { name }));
    }
    others.textContent = lines.join(' ');
  };
  root.replaceChildren(bar, pickers, quality, others);
  clearInterval(root.qualityTimer);
  root.qualityTimer = setInterval(async () => {
    const q = await media.quality().catch(() => null);
    if (!q || !media.inCall) { quality.textContent = ''; return; }
    // The media node's estimate of what reaches us, and the video layer it
    // sends: paused video is a poor connection whatever getStats says.
    const link = media.link;
    const level = link && link.layer === 'paused' ? 'poor' : q.level;
    quality.dataset.level = level;
    if (link && link.layer) quality.dataset.layer = link.layer;
    if ((level === 'poor') !== Boolean(media.poor)) { media.poor = level === 'poor'; media.sendState(); } // the others are told
    let text = say('controls.quality', 'Connection: {level} (round trip {rtt} ms, loss {loss}%, {kbps} kbit/s)',
      { level: say(`quality.${level}`, level), rtt: q.rttMs, loss: q.lossPct, kbps: q.kbps });
    if (link && link.layer && link.estimate) {
      text += ' ' + say('controls.link', 'Video: {layer}; about {available} kbit/s can reach you.',
        { layer: say(`layer.${link.layer}`, LAYER_NAMES[link.layer] || link.layer), available: Math.round(link.estimate / 1000) });
    }
    quality.textContent = text;
  }, 2000);
  return (msg) => {
    if (msg.type !== 'peer_state') return;
    states.set(msg.participant, { muted: msg.muted, cameraOff: msg.cameraOff, poor: Boolean(msg.poor) });
    showOthers();
  };
}
