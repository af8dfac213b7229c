// Form pieces for the dashboard's account and administration pages: every
// control has a label, hints are tied to their control, and every form says
// what happened in a status (success) or alert (error) line.
import { el } from '/api.js';

let seq = 0;

// fill replaces node's children with children, flattened, leaving out
// null and undefined (replaceChildren would write them as text).
export function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}
export const uid = (prefix) => `${prefix}-${++seq}`;

// field is a labelled control: { input, nodes } where nodes go into the form.
// attrs.tag picks the element ('input' by default, 'select', 'textarea');
// options (for a select) are [{ value, label, selected, disabled }].
export function field(label, attrs = {}, hint, options) {
  const { tag = 'input', ...rest } = attrs;
  const id = rest.id || uid('f');
  const hintId = hint ? `${id}-hint` : undefined;
  const input = el(tag, { ...rest, id, 'aria-describedby': [rest['aria-describedby'], hintId].filter(Boolean).join(' ') || undefined },
    (options || []).map((o) => el('option', { value: o.value, selected: o.selected, disabled: o.disabled }, o.label)));
  return { input, nodes: [el('label', { for: id }, label), input, hint ? el('p', { class: 'hint', id: hintId }, hint) : null] };
}

// messages are a form's status and alert lines.
export function messages() {
  const status = el('p', { role: 'status', class: 'ok-text' });
  const alert = el('p', { role: 'alert', class: 'error-text' });
  return {
    nodes: [status, alert],
    status,
    alert,
    ok(text) { alert.textContent = ''; status.textContent = text; },
    fail(err) { status.textContent = ''; alert.textContent = (err && err.message) || String(err); },
    clear() { status.textContent = ''; alert.textContent = ''; },
  };
}

// onSubmit runs fn for form's submissions, one at a time: the submit button
// is busy meanwhile, and an error goes to msgs' alert line.
export function onSubmit(form, msgs, fn) {
  let running = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (running) return;
    running = true;
    const submit = form.querySelector('button[type=submit]');
    if (submit) submit.setAttribute('aria-busy', 'true');
    msgs.clear();
    try {
      await fn(e);
    } catch (err) {
      msgs.fail(err);
    } finally {
      running = false;
      if (submit) submit.removeAttribute('aria-busy');
    }
  });
  return form;
}

// act runs fn for a button press with the same error handling.
export async function act(msgs, fn) {
  msgs.clear();
  try { return await fn(); } catch (err) { msgs.fail(err); return undefined; }
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}
