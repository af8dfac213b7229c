// The pages before the dashboard: create a clinic, a forgotten password,
// and the invitation and reset links (<origin>/#invite=<token>,
// <origin>/#reset=<token>). Each is built into #public when shown, so the
// sign-in form is the only form on the page otherwise.
import { api, el } from '/api.js';
import { field, messages, onSubmit, fill } from '/forms.js';

const $ = (id) => document.getElementById(id);

// show puts children into #public, hides the sign-in form and the
// dashboard, and moves focus to the new page's heading.
function show(...children) {
  $('login').classList.add('hidden');
  $('dashboard').classList.add('hidden');
  const p = $('public');
  fill(p, children);
  p.classList.remove('hidden');
  const h = p.querySelector('h2');
  if (h) { h.tabIndex = -1; h.focus(); }
}

// showLogin is the sign-in page, with notice (why the user is here) if any,
// and "Create your clinic" when sign-up is open.
export function showLogin(notice) {
  $('dashboard').classList.add('hidden');
  $('public').classList.add('hidden');
  $('public').replaceChildren();
  $('login').classList.remove('hidden');
  $('login-notice').textContent = notice || '';
  $('login-notice').classList.toggle('hidden', !notice);
  api('GET', '/signup').then((r) => $('signup-offer').classList.toggle('hidden', !r.open), () => $('signup-offer').classList.add('hidden'));
}

function cancel(ctx, label = 'Cancel') {
  return el('button', { type: 'button', onclick: () => { ctx.showLogin(); $('email').focus(); } }, label);
}

const passwordHint = 'At least 10 characters, and not a common password.';

export function showSignup(ctx) {
  const msgs = messages();
  const clinicName = field('Clinic name', { required: true, maxlength: 200, autocomplete: 'organization' });
  const ownerName = field('Your full name', { required: true, maxlength: 100, autocomplete: 'name' });
  const displayName = field('Display name patients see', { required: true, maxlength: 100 }, 'Patients read it on your waiting room, for example "Dr. Maya Lee".');
  const email = field('Email', { type: 'email', required: true, autocomplete: 'username' });
  const password = field('Password', { type: 'password', required: true, minlength: 10, maxlength: 72, autocomplete: 'new-password' }, passwordHint);
  // The display name follows the full name until the user edits it.
  ownerName.input.addEventListener('input', () => { if (!displayName.input.dataset.edited) displayName.input.value = ownerName.input.value; });
  displayName.input.addEventListener('input', () => { displayName.input.dataset.edited = '1'; });
  const form = el('form', { class: 'left', 'aria-labelledby': 'signup-title' },
    clinicName.nodes, ownerName.nodes, displayName.nodes, email.nodes, password.nodes, msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Create clinic'), cancel(ctx)));
  onSubmit(form, msgs, async () => {
    const body = await api('POST', '/signup', null, {
      clinicName: clinicName.input.value, ownerName: ownerName.input.value, displayName: displayName.input.value,
      email: email.input.value, password: password.input.value,
    });
    await ctx.signedIn(body);
  });
  show(el('h2', { id: 'signup-title' }, 'Create your clinic'),
    el('p', { class: 'meta' }, 'You will be its owner: you can then invite your colleagues and set up rooms.'), form);
}

export function showForgot(ctx) {
  const msgs = messages();
  const email = field('Email', { type: 'email', required: true, autocomplete: 'username', value: $('email').value || undefined });
  const form = el('form', { class: 'left', 'aria-labelledby': 'forgot-title' }, email.nodes, msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Send reset link'), cancel(ctx)));
  onSubmit(form, msgs, async () => {
    await api('POST', '/auth/forgot', null, { email: email.input.value });
    show(el('h2', { id: 'forgot-title' }, 'Check your email'),
      el('p', { role: 'status', class: 'flash' }, 'If that email has an account, we sent a link to choose a new password. It works once and expires soon.'),
      el('p', { class: 'meta' }, 'No email? Your clinic’s owner or admin can give you a reset link.'),
      cancel(ctx, 'Back to sign-in'));
  });
  show(el('h2', { id: 'forgot-title' }, 'Forgot your password?'),
    el('p', { class: 'meta' }, 'Enter the email you sign in with; we will send you a link to choose a new password.'), form);
}

// linkInvalid shows why a link cannot be used, in the API's words.
function linkInvalid(ctx, err) {
  show(el('h2', {}, 'This link cannot be used'),
    el('p', { role: 'alert', class: 'error-text' }, err.message),
    cancel(ctx, 'Go to sign-in'));
}

export async function showInvite(ctx, token) {
  show(el('p', { role: 'status' }, 'Opening your invitation…'));
  let inv;
  try {
    inv = await api('GET', `/invitations/by-token/${encodeURIComponent(token)}`);
  } catch (err) {
    return linkInvalid(ctx, err);
  }
  const msgs = messages();
  const name = field('Your full name', { required: true, maxlength: 100, autocomplete: 'name' });
  const displayName = field('Display name patients see', { required: true, maxlength: 100 }, 'Patients read it on your waiting room, for example "Dr. Maya Lee".');
  const password = field('Password', { type: 'password', required: true, minlength: 10, maxlength: 72, autocomplete: 'new-password' }, passwordHint);
  name.input.addEventListener('input', () => { if (!displayName.input.dataset.edited) displayName.input.value = name.input.value; });
  displayName.input.addEventListener('input', () => { displayName.input.dataset.edited = '1'; });
  // A hidden username field lets password managers save the right account.
  const username = el('input', { type: 'email', autocomplete: 'username', value: inv.email, class: 'hidden', readonly: true });
  const form = el('form', { class: 'left', 'aria-labelledby': 'invite-title' }, username, name.nodes, displayName.nodes, password.nodes, msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Accept invitation')));
  onSubmit(form, msgs, async () => {
    try {
      const body = await api('POST', `/invitations/by-token/${encodeURIComponent(token)}/accept`, null,
        { name: name.input.value, displayName: displayName.input.value, password: password.input.value });
      await ctx.signedIn(body);
    } catch (err) {
      if (err.status === 404) return linkInvalid(ctx, err);
      throw err;
    }
  });
  show(el('h2', { id: 'invite-title' }, `Join ${inv.clinic.name} as ${inv.role}`),
    el('p', { class: 'meta' }, `The invitation is for ${inv.email}; it expires ${new Date(inv.expiresAt).toLocaleString()}.`), form);
}

export function showReset(ctx, token) {
  const msgs = messages();
  const password = field('New password', { type: 'password', required: true, minlength: 10, maxlength: 72, autocomplete: 'new-password' }, passwordHint);
  const form = el('form', { class: 'left', 'aria-labelledby': 'reset-title' }, password.nodes, msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Set new password'), cancel(ctx)));
  onSubmit(form, msgs, async () => {
    try {
      await ctx.signedIn(await api('POST', '/auth/reset', null, { token, password: password.input.value }));
    } catch (err) {
      if (err.status === 404) return linkInvalid(ctx, err);
      throw err;
    }
  });
  show(el('h2', { id: 'reset-title' }, 'Choose a new password'),
    el('p', { class: 'meta' }, 'You will be signed in with it.'), form);
}

// showSecondFactor asks a person with two-factor sign-in for the code of
// their authenticator app (or a recovery code) after a right password.
export function showSecondFactor(ctx, challenge) {
  const msgs = messages();
  const code = field('Code from your authenticator app', { required: true, inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8, pattern: '[0-9 ]{6,8}' },
    'The 6 digits your app shows for Handoff now.');
  const recovery = field('Recovery code', { maxlength: 20, autocomplete: 'off' }, 'One of the codes you saved when you turned on two-factor sign-in; each works once.');
  const recoveryBox = el('div', { class: 'hidden' }, recovery.nodes);
  const toggle = el('button', { type: 'button', class: 'link' }, 'Use a recovery code instead');
  toggle.addEventListener('click', () => {
    const useRecovery = recoveryBox.classList.toggle('hidden') === false;
    code.input.required = !useRecovery;
    code.input.closest('form').querySelectorAll('.code-part').forEach((n) => n.classList.toggle('hidden', useRecovery));
    toggle.textContent = useRecovery ? 'Use the authenticator app instead' : 'Use a recovery code instead';
    (useRecovery ? recovery.input : code.input).focus();
  });
  const form = el('form', { class: 'left', 'aria-labelledby': 'mfa-title' },
    el('div', { class: 'code-part' }, code.nodes), recoveryBox, msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Verify'), cancel(ctx)),
    el('p', {}, toggle));
  onSubmit(form, msgs, async () => {
    const useRecovery = !recoveryBox.classList.contains('hidden');
    try {
      const body = await api('POST', '/auth/mfa', null, useRecovery
        ? { challenge, recoveryCode: recovery.input.value } : { challenge, code: code.input.value });
      if (body.failedSignIns > 0) sessionStorage.setItem('handoff:failed-sign-ins', String(body.failedSignIns));
      await ctx.signedIn(body);
    } catch (err) {
      if (err.code === 'challenge_expired') { ctx.showLogin(err.message); return; }
      code.input.value = '';
      throw err;
    }
  });
  show(el('h2', { id: 'mfa-title' }, 'Two-factor sign-in'),
    el('p', { class: 'meta' }, 'Your password was right. Now enter the code from your authenticator app.'), form);
  code.input.focus();
}
