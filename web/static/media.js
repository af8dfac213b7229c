// HandoffMedia: one signaling session per page, kept across calls. The
// server makes every offer; this side answers, trickles ICE, and joins a
// call with a join token when admitted.
export class HandoffMedia {
  constructor({ onRemote, onEvent }) {
    this.onRemote = onRemote || (() => {});
    this.onEvent = onEvent || (() => {});
    this.streams = new Map();
    // Messages wait for the socket: an admit can arrive while it still opens.
    this.ready = new Promise((resolve) => { this.opened = resolve; });
  }

  async start(session) {
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    this.pc = new RTCPeerConnection();
    this.pc.onicecandidate = (e) => { if (e.candidate) this.send({ type: 'candidate', candidate: e.candidate.toJSON() }); };
    this.pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      this.streams.set(stream.id, stream);
      this.onRemote(stream);
      e.track.onended = () => this.onRemote(stream);
    };
    this.ws = new WebSocket(`${session.url}?token=${encodeURIComponent(session.sessionToken)}`);
    this.ws.onopen = () => this.opened();
    this.ws.onmessage = (m) => this.handle(JSON.parse(m.data));
    await this.ready;
    if (session.joinToken) this.join(session.joinToken);
    return this.local;
  }

  send(msg) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg)); }

  async join(token) { await this.ready; this.send({ type: 'join', token }); }

  async handle(msg) {
    if (msg.type === 'offer') {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      // Send our camera and microphone on the m-lines the server offered.
      for (const track of this.local.getTracks()) {
        if (!this.pc.getSenders().some((s) => s.track === track)) this.pc.addTrack(track, this.local);
      }
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      this.send({ type: 'answer', sdp: answer.sdp });
    } else if (msg.type === 'candidate' && msg.candidate) {
      await this.pc.addIceCandidate(msg.candidate);
    } else {
      this.onEvent(msg);
    }
  }

  // inboundBytes sums received media bytes (what the tests watch grow).
  async inboundBytes() {
    if (!this.pc) return 0;
    let total = 0;
    (await this.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') total += r.bytesReceived || 0; });
    return total;
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
