// Small helpers shared by the pages: JSON requests with the caller's token,
// and live events with resume.
export async function api(method, path, token, body, headers = {}) {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const err = new Error((data.error && data.error.message) || res.statusText);
    err.status = res.status; err.code = data.error && data.error.code;
    throw err;
  }
  return data;
}

// events opens the caller's live stream; EventSource resumes from the last
// id by itself after a dropped connection.
export function events(token, onEvent) {
  const es = new EventSource(`/api/v1/events?access_token=${encodeURIComponent(token)}`);
  const types = ['visit.checked_in', 'visit.admitted', 'visit.transfer_started', 'visit.transferred', 'visit.transfer_failed',
    'visit.left', 'visit.ended', 'call.ended', 'call.joined', 'app.closed', 'message.sent', 'visit.held',
    'guest.invited', 'guest.waiting', 'guest.joined', 'guest.gone',
    'session.ended']; // a provider's session ended elsewhere (deactivated, password changed, …): the stream closes after it
  for (const t of types) es.addEventListener(t, (e) => onEvent(t, JSON.parse(e.data)));
  return es;
}

export function since(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)} min`;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
