// HandoffMedia: one signaling session per page, kept across calls. The
// server makes every offer; this side answers, trickles ICE, and joins a
// call with a join token when admitted.
//
// When the session is lost (the media node restarts, the network drops), it
// asks renew() for a fresh session — which puts the caller back into its
// call on the new node — and reconnects with backoff, keeping the camera.
export class HandoffMedia {
  constructor({ onRemote, onEvent, renew }) {
    this.onRemote = onRemote || (() => {});
    this.onEvent = onEvent || (() => {});
    this.renew = renew;
    this.streams = new Map();
    this.closed = false;
    this.reconnecting = false;
    this.reconnects = 0;
  }

  async start(session) {
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    // A media node that is down now is retried in the background (lost()).
    try { await this.connect(session); } catch (err) { console.warn('media not reachable yet', err.message); }
    return this.local;
  }

  // connect opens a PeerConnection and its signaling socket; it resolves once
  // the socket is open and rejects if it closes first.
  connect(session) {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.onicecandidate = (e) => { if (e.candidate) this.send({ type: 'candidate', candidate: e.candidate.toJSON() }); };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      this.streams.set(stream.id, stream);
      this.onRemote(stream);
      e.track.onended = () => this.onRemote(stream);
    };
    pc.onconnectionstatechange = () => { if (pc === this.pc && pc.connectionState === 'failed') this.lost(); };
    const ws = new WebSocket(`${session.url}?token=${encodeURIComponent(session.sessionToken)}`);
    this.ws = ws;
    // Messages wait for the socket: an admit can arrive while it still opens.
    this.ready = new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onclose = () => {
        reject(new Error('the media connection closed'));
        if (ws === this.ws && !this.closed && !this.reconnecting) this.lost();
      };
    });
    ws.onmessage = (m) => this.handle(pc, JSON.parse(m.data));
    return this.ready.then(() => { if (session.joinToken) this.join(session.joinToken); });
  }

  send(msg) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg)); }

  async join(token) { await this.ready; this.send({ type: 'join', token }); }

  async handle(pc, msg) {
    if (pc !== this.pc) return; // a message of a session already replaced
    if (msg.type === 'offer') {
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      // Send our camera and microphone on the m-lines the server offered.
      for (const track of this.local.getTracks()) {
        if (!pc.getSenders().some((s) => s.track === track)) pc.addTrack(track, this.local);
      }
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.send({ type: 'answer', sdp: answer.sdp });
    } else if (msg.type === 'candidate' && msg.candidate) {
      await pc.addIceCandidate(msg.candidate);
    } else {
      this.onEvent(msg);
    }
  }

  // lost drops the dead session and reconnects until it works or the page
  // closes the media on purpose.
  async lost() {
    if (this.closed || this.reconnecting || !this.renew) return;
    this.reconnecting = true;
    this.teardown();
    this.onEvent({ type: 'reconnecting' });
    for (let attempt = 0; !this.closed; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 5000)));
      try {
        await this.connect(await this.renew());
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

  // inboundBytes sums received media bytes (what the tests watch grow).
  async inboundBytes() {
    if (!this.pc) return 0;
    let total = 0;
    (await this.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') total += r.bytesReceived || 0; });
    return total;
  }
}

// mediaStatus shows the reconnecting notice in el for a page's media events.
export function mediaStatus(el, msg) {
  if (msg.type === 'media_restarting' || msg.type === 'reconnecting') {
    el.textContent = 'Video is reconnecting… please stay on this page.';
    el.classList.remove('hidden');
  } else if (msg.type === 'reconnected') {
    el.classList.add('hidden');
  }
}

export function showVideo(container, stream, label) {
  let v = container.querySelector(`video[data-stream="${stream.id}"]`);
  const live = stream.getTracks().some((t) => t.readyState === 'live');
  if (!live) { if (v) v.remove(); return; }
  if (!v) {
    v = document.createElement('video');
    v.dataset.stream = stream.id;
    v.autoplay = true; v.playsInline = true; v.muted = true;
    v.setAttribute('aria-label', label);
    container.appendChild(v);
  }
  v.srcObject = stream;
}
