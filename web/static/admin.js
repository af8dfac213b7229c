// The dashboard's "My profile" page (everyone) and "Clinic" area (owners and
// admins: People, Rooms, Plan, Audit tabs). The API decides what is allowed;
// these pages show what the caller's powers (GET /me) let them reach, and
// the API's message when it refuses.
//
// ctx: { token, me, reloadMe(), roomsChanged() } from dashboard.js:
// reloadMe re-reads /me (name, plan features, powers); roomsChanged reloads
// the waiting rooms and reopens the live stream (its rooms are fixed when it
// opens).
import { api, el } from '/api.js';
import { field, messages, onSubmit, act, uid, when, fill } from '/forms.js';

const ROLES = {
  owner: 'Owner',
  admin: 'Admin',
  member: 'Member (provider)',
  staff: 'Staff (front desk)',
};
const PLANS = [
  { value: 'free', label: 'Free', text: 'Each provider has a personal waiting room.' },
  { value: 'pro', label: 'Pro', text: 'Each provider has a personal waiting room.' },
  { value: 'premium', label: 'Premium', text: 'Adds shared waiting rooms (a front desk, a team) and transfers between rooms.' },
];
const AUDIT_KINDS = [
  { value: 'visit.', label: 'Visits' },
  { value: 'transfer.', label: 'Transfers' },
  { value: 'user.', label: 'People' },
  { value: 'invitation.', label: 'Invitations' },
  { value: 'room.', label: 'Rooms' },
  { value: 'clinic.', label: 'Clinic and plan' },
  { value: 'auth.', label: 'Sign-ins and sign-outs' },
  { value: 'access.', label: 'Access (views, streams, refusals)' },
  { value: 'app.', label: 'Apps in calls' },
  { value: 'call.', label: 'Calls' },
];
const PASSWORD_HINT = 'At least 10 characters, and not a common password.';
const SHARED_REASON = 'Shared rooms need the Premium plan';

const personName = (p) => p.displayName || p.name || p.fullName || p.email;

function roleOptions(ctx, current) {
  return Object.entries(ROLES)
    .filter(([r]) => r !== 'owner' || ctx.me.powers.owners || current === 'owner')
    .map(([value, label]) => ({ value, label, selected: value === current }));
}

// ---------------------------------------------------------------- My profile

export function renderProfile(root, ctx) {
  const u = ctx.me.user;
  const pm = messages();
  const fullName = field('Full name', { required: true, maxlength: 100, autocomplete: 'name', value: u.fullName || '' });
  const displayName = field('Display name patients see', { required: true, maxlength: 100, value: u.displayName || u.name || '' },
    'Patients read it on your waiting room and in transfer messages.');
  const details = el('form', { 'aria-labelledby': 'profile-details' },
    el('h3', { id: 'profile-details' }, 'Your details'),
    el('p', { class: 'meta' }, `${u.email} · ${ROLES[u.role] || u.role} at ${ctx.me.clinic.name}`),
    fullName.nodes, displayName.nodes, pm.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Save profile')));
  onSubmit(details, pm, async () => {
    await api('PATCH', '/me', ctx.token, { name: fullName.input.value, displayName: displayName.input.value });
    await ctx.reloadMe();
    await ctx.roomsChanged(); // your room's name is your display name
    pm.ok('Your profile was saved.');
  });

  const wm = messages();
  const current = field('Current password', { type: 'password', required: true, autocomplete: 'current-password' });
  const next = field('New password', { type: 'password', required: true, minlength: 10, maxlength: 72, autocomplete: 'new-password' }, PASSWORD_HINT);
  const password = el('form', { 'aria-labelledby': 'profile-password' },
    el('h3', { id: 'profile-password' }, 'Change your password'),
    el('input', { type: 'email', autocomplete: 'username', value: u.email, class: 'hidden', readonly: true }),
    current.nodes, next.nodes, wm.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Change password')));
  onSubmit(password, wm, async () => {
    await api('POST', '/me/password', ctx.token, { currentPassword: current.input.value, newPassword: next.input.value });
    password.reset();
    wm.ok('Your password was changed. Your other sessions were signed out.');
  });

  // Where you are signed in: each session, the others signed out one by one
  // or all at once.
  const sm = messages();
  const list = el('ul', { 'aria-label': 'Your sessions', class: 'sessions' });
  const loadSessions = async () => {
    const r = await api('GET', '/me/sessions', ctx.token);
    list.replaceChildren(...r.sessions.map((x) => el('li', {},
      `${x.userAgent || 'A browser'} · ${x.address || 'unknown address'} · since ${new Date(x.createdAt).toLocaleString()}`,
      x.current ? el('strong', {}, ' (this one)') : el('button', {
        type: 'button', 'aria-label': `Sign out the session from ${x.address || 'unknown address'} since ${new Date(x.createdAt).toLocaleString()}`,
        onclick: () => act(sm, async () => {
          await api('DELETE', `/me/sessions/${x.id}`, ctx.token);
          await loadSessions();
          sm.ok('That session was signed out.');
        }),
      }, 'Sign out'))));
  };
  const sessions = el('section', { 'aria-labelledby': 'profile-sessions' },
    el('h3', { id: 'profile-sessions' }, 'Where you are signed in'), list, sm.nodes,
    el('div', { class: 'actions' }, el('button', {
      type: 'button',
      onclick: () => act(sm, async () => {
        await api('POST', '/me/sessions/sign-out-others', ctx.token);
        await loadSessions();
        sm.ok('Every other session was signed out.');
      }),
    }, 'Sign out everywhere else')));
  const twoFactor = el('section', { 'aria-labelledby': 'profile-mfa' });
  renderTwoFactor(twoFactor, ctx);
  if (ctx.me.mfa && ctx.me.mfa.enrolmentRequired) { // nothing else answers until it is set up
    fill(root, el('h2', { id: 'profile-title', tabindex: '-1' }, 'My profile'),
      el('div', { class: 'panels' }, el('div', { class: 'panel' }, twoFactor)));
    return;
  }
  act(sm, loadSessions);

  fill(root, el('h2', { id: 'profile-title', tabindex: '-1' }, 'My profile'),
    el('div', { class: 'panels' }, el('div', { class: 'panel' }, twoFactor), el('div', { class: 'panel' }, details),
      el('div', { class: 'panel' }, password), el('div', { class: 'panel' }, sessions)));
}

// renderTwoFactor is the profile's two-factor sign-in panel: set up an
// authenticator app (QR code, then a code to confirm, then the recovery
// codes, shown once), or turn it off (password and a code) when the clinic
// does not require it.
async function renderTwoFactor(root, ctx) {
  const msgs = messages();
  const heading = el('h3', { id: 'profile-mfa' }, 'Two-factor sign-in');
  let status;
  try {
    status = await api('GET', '/me/mfa', ctx.token);
  } catch (err) {
    fill(root, heading, el('p', { role: 'alert', class: 'error-text' }, err.message));
    return;
  }
  if (status.enabled) {
    const pw = field('Password', { type: 'password', required: true, autocomplete: 'current-password' });
    const code = field('Code from your authenticator app', { required: true, inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 });
    const off = el('form', { 'aria-label': 'Turn off two-factor sign-in' }, pw.nodes, code.nodes, msgs.nodes,
      el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Turn off two-factor sign-in')));
    onSubmit(off, msgs, async () => {
      await api('POST', '/me/mfa/disable', ctx.token, { password: pw.input.value, code: code.input.value });
      await renderTwoFactor(root, ctx);
    });
    fill(root, heading,
      el('p', { id: 'mfa-status' }, el('strong', {}, 'On'), ` since ${when(status.enabledAt)} · ${status.recoveryCodesLeft} recovery codes left`),
      status.requiredByClinic ? el('p', { class: 'notice' }, 'Your clinic requires it; if you lose your authenticator, ask an admin to reset it.') : off);
    return;
  }
  const start = el('button', { type: 'button', class: 'primary' }, 'Set up an authenticator app');
  start.addEventListener('click', () => act(msgs, async () => {
    const e = await api('POST', '/me/mfa/enrol', ctx.token);
    const code = field('Code the app shows', { required: true, inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 });
    const confirm = el('form', { 'aria-label': 'Confirm the authenticator app' }, code.nodes, msgs.nodes,
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Turn on')));
    onSubmit(confirm, msgs, async () => {
      const r = await api('POST', '/me/mfa/confirm', ctx.token, { code: code.input.value });
      fill(root, heading,
        el('p', { role: 'status', class: 'flash' }, 'Two-factor sign-in is on.'),
        el('p', {}, 'Save these recovery codes somewhere safe. Each one signs you in once if you lose your phone; they are not shown again.'),
        el('ul', { class: 'recovery-codes', 'aria-label': 'Recovery codes' }, r.recoveryCodes.map((c) => el('li', {}, el('code', {}, c)))),
        el('button', { type: 'button', class: 'primary', onclick: () => location.reload() }, 'I saved them'));
    });
    fill(root, heading,
      el('ol', {},
        el('li', {}, 'Open an authenticator app (for example Google Authenticator, Microsoft Authenticator or 1Password) and scan this code:',
          el('div', {}, el('img', { src: e.qrCode, width: 240, height: 240, alt: 'QR code to add Handoff to your authenticator app' })),
          el('p', { class: 'meta' }, 'Cannot scan? Type this key into the app: ', el('code', { id: 'mfa-secret' }, e.secret))),
        el('li', {}, 'Enter the 6-digit code the app shows for Handoff.', confirm)));
    code.input.focus();
  }));
  fill(root, heading,
    el('p', { id: 'mfa-status' }, el('strong', {}, 'Off'), status.requiredByClinic ? ' · your clinic requires it' : ''),
    el('p', { class: 'meta' }, 'Sign in with a code from an app on your phone as well as your password, so a stolen password is not enough.'),
    msgs.nodes, el('div', { class: 'actions' }, start));
}

// ---------------------------------------------------------------- Clinic area

const TABS = [
  { id: 'people', label: 'People', render: peopleTab },
  { id: 'rooms', label: 'Rooms', render: roomsTab },
  { id: 'plan', label: 'Plan', render: planTab },
  { id: 'audit', label: 'Audit', render: auditTab, shown: (me) => me.powers.audit },
  { id: 'security', label: 'Security', render: securityTab, shown: (me) => me.powers.security },
];
let currentTab = 'people';

export function renderClinic(root, ctx) {
  const tabs = TABS.filter((t) => !t.shown || t.shown(ctx.me));
  if (!tabs.some((t) => t.id === currentTab)) currentTab = tabs[0].id;
  const buttons = {};
  const panels = {};
  for (const t of tabs) {
    buttons[t.id] = el('button', { type: 'button', role: 'tab', id: `tab-${t.id}`, 'aria-controls': `panel-${t.id}`, onclick: () => select(t.id) }, t.label);
    panels[t.id] = el('div', { role: 'tabpanel', id: `panel-${t.id}`, 'aria-labelledby': `tab-${t.id}`, tabindex: '0', class: 'panel tabpanel' });
  }
  const list = el('div', { role: 'tablist', 'aria-label': 'Clinic administration', class: 'tabs' }, Object.values(buttons));
  // Arrow keys move between tabs (and show them), Home and End go to the ends.
  list.addEventListener('keydown', (e) => {
    const ids = tabs.map((t) => t.id);
    const i = ids.indexOf(currentTab);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: ids.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const id = ids[(to + ids.length) % ids.length];
    select(id);
    buttons[id].focus();
  });

  let shown = null;
  async function select(id) {
    if (id === shown) return; // already showing (and maybe still loading)
    shown = id;
    currentTab = id;
    for (const t of tabs) {
      const on = t.id === id;
      buttons[t.id].setAttribute('aria-selected', on ? 'true' : 'false');
      buttons[t.id].tabIndex = on ? 0 : -1;
      panels[t.id].classList.toggle('hidden', !on);
    }
    const panel = panels[id];
    fill(panel, el('p', { role: 'status', class: 'meta' }, 'Loading…'));
    try {
      await tabs.find((t) => t.id === id).render(panel, ctx);
    } catch (err) {
      fill(panel, el('p', { role: 'alert', class: 'error-text' }, err.message));
    }
  }

  fill(root, el('h2', { id: 'clinic-title', tabindex: '-1' }, `Clinic: ${ctx.me.clinic.name}`), list, Object.values(panels));
  select(currentTab);
}

// linkBox shows a link the user passes on (an invitation, a password reset),
// in a read-only field labelled label, with a copy button and note.
function linkBox(label, link, note) {
  const id = uid('link');
  const input = el('input', { id, readonly: true, value: link, class: 'link-value', onfocus: () => input.select() });
  const copy = el('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    input.select();
    try { await navigator.clipboard.writeText(link); copy.textContent = 'Copied'; } catch (_) { copy.textContent = 'Press Ctrl+C to copy'; }
  });
  return el('div', { class: 'notice link-box' }, el('label', { for: id }, label), el('div', { class: 'inline' }, input, copy), el('p', {}, note));
}

const emailedNote = (emailed, email, expiresAt) => `${emailed ? `We emailed it to ${email}.` : `It was not emailed (no mail server is set up): give it to ${email} yourself.`}` +
  `${expiresAt ? ` It works once and expires ${when(expiresAt)}.` : ' It works once.'}`;

// ---------------------------------------------------------------- People

async function peopleTab(panel, ctx) {
  const msgs = messages();
  const lists = el('div');
  const resetResult = el('div');
  const inviteResult = el('div');
  const myId = ctx.me.user.id;

  const load = async () => {
    const data = await api('GET', '/people', ctx.token);
    fill(lists, peopleTable(data.people), resetResult, invitationsTable(data.invitations));
  };

  function peopleTable(people) {
    const rows = people.map((p) => {
      const name = personName(p);
      const role = el('select', {
        'aria-label': `Role of ${name}`,
        disabled: !p.active || (p.role === 'owner' && !ctx.me.powers.owners),
      }, roleOptions(ctx, p.role).map((o) => el('option', { value: o.value, selected: o.selected }, o.label)));
      role.addEventListener('change', () => act(msgs, async () => {
        try {
          await api('PATCH', `/people/${p.id}`, ctx.token, { role: role.value });
        } catch (err) {
          role.value = p.role;
          throw err;
        }
        if (p.id === myId) await ctx.reloadMe();
        await load();
        msgs.ok(`${name} is now ${ROLES[role.value] || role.value}.`);
      }));
      const actions = [];
      if (p.active && p.id !== myId) {
        actions.push(el('button', {
          type: 'button', 'aria-label': `Deactivate ${name}`,
          onclick: () => act(msgs, async () => {
            // eslint-disable-next-line no-alert
            if (!confirm(`Deactivate ${name}? They are signed out at once and can no longer sign in; their room stops taking check-ins (patients already waiting there stay, for you to see or transfer).`)) return;
            await api('POST', `/people/${p.id}/deactivate`, ctx.token);
            await load();
            await ctx.roomsChanged();
            msgs.ok(`${name} was deactivated.`);
          }),
        }, 'Deactivate'));
      }
      if (p.active) {
        actions.push(el('button', {
          type: 'button', 'aria-label': `Reset link for ${name}`,
          onclick: () => act(msgs, async () => {
            const r = await api('POST', `/people/${p.id}/reset-link`, ctx.token);
            resetResult.replaceChildren(linkBox(`Password reset link for ${name}`, r.link, emailedNote(r.emailed, p.email, r.expiresAt)));
            msgs.ok(`A password reset link for ${name} is ready.`);
          }),
        }, 'Reset link'));
        actions.push(el('button', {
          type: 'button', 'aria-label': `Sign ${name} out everywhere`,
          onclick: () => act(msgs, async () => {
            await api('POST', `/people/${p.id}/sign-out`, ctx.token);
            msgs.ok(`${name} was signed out everywhere.`);
          }),
        }, 'Sign out everywhere'));
        if (p.mfaEnabled) {
          actions.push(el('button', {
            type: 'button', 'aria-label': `Reset two-factor sign-in of ${name}`,
            onclick: () => act(msgs, async () => {
              // eslint-disable-next-line no-alert
              if (!confirm(`Reset ${name}'s two-factor sign-in? Use this when they lost their authenticator: they are signed out everywhere and sign in with their password alone${ctx.me.clinic.requireMfa ? ', then set up an authenticator again' : ''}.`)) return;
              await api('POST', `/people/${p.id}/mfa-reset`, ctx.token);
              await load();
              msgs.ok(`${name}'s two-factor sign-in was reset.`);
            }),
          }, 'Reset two-factor'));
        }
      }
      return el('tr', { 'data-person': p.id },
        el('th', { scope: 'row' }, name, p.fullName && p.fullName !== name ? el('div', { class: 'meta' }, p.fullName) : null,
          p.id === myId ? el('div', { class: 'meta' }, '(you)') : null),
        el('td', {}, p.email),
        el('td', {}, role),
        el('td', {}, p.active ? 'Active' : el('span', { class: 'warn-text' }, 'Deactivated'), p.mfaEnabled ? el('div', { class: 'meta' }, 'Two-factor on') : null),
        el('td', {}, el('div', { class: 'actions' }, actions)));
    });
    return el('table', { class: 'admin', id: 'people-table' },
      el('caption', {}, 'People'),
      el('thead', {}, el('tr', {}, ['Name', 'Email', 'Role', 'Status', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows));
  }

  function showInvitation(r) {
    inviteResult.replaceChildren(linkBox('Invitation link', r.link, emailedNote(r.emailed, r.invitation.email, r.invitation.expiresAt)));
  }

  function invitationsTable(invitations) {
    if (!invitations.length) return el('p', { class: 'meta' }, 'No pending invitations.');
    return el('table', { class: 'admin', id: 'invitations-table' },
      el('caption', {}, 'Pending invitations'),
      el('thead', {}, el('tr', {}, ['Email', 'Role', 'Expires', 'Invited by', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, invitations.map((inv) => el('tr', { 'data-invitation': inv.id },
        el('th', { scope: 'row' }, inv.email),
        el('td', {}, ROLES[inv.role] || inv.role),
        el('td', {}, el('time', { datetime: inv.expiresAt }, when(inv.expiresAt))),
        el('td', {}, inv.invitedBy ? inv.invitedBy.name : ''),
        el('td', {}, el('div', { class: 'actions' },
          el('button', {
            type: 'button', 'aria-label': `Resend invitation to ${inv.email}`,
            onclick: () => act(msgs, async () => {
              const r = await api('POST', `/invitations/${inv.id}/resend`, ctx.token);
              showInvitation(r);
              await load();
              msgs.ok(`A new invitation link for ${inv.email} is ready; the old one no longer works.`);
            }),
          }, 'Resend'),
          el('button', {
            type: 'button', 'aria-label': `Revoke invitation to ${inv.email}`,
            onclick: () => act(msgs, async () => {
              await api('DELETE', `/invitations/${inv.id}`, ctx.token);
              inviteResult.replaceChildren();
              await load();
              msgs.ok(`The invitation to ${inv.email} was revoked.`);
            }),
          }, 'Revoke')))))));
  }

  const im = messages();
  const email = field('Email address to invite', { type: 'email', required: true, autocomplete: 'off' });
  const role = field('Role', { tag: 'select', required: true }, 'Members and admins get a personal waiting room; staff work from shared rooms.',
    roleOptions(ctx, 'member'));
  const invite = el('form', { class: 'panel', 'aria-labelledby': 'invite-title' },
    el('h3', { id: 'invite-title' }, 'Invite someone'),
    el('div', { class: 'row' }, el('div', {}, email.nodes), el('div', {}, role.nodes)),
    im.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Send invitation')),
    inviteResult);
  onSubmit(invite, im, async () => {
    const r = await api('POST', '/invitations', ctx.token, { email: email.input.value, role: role.input.value });
    showInvitation(r);
    email.input.value = '';
    await load();
    im.ok(`Invitation for ${r.invitation.email} created.`);
  });

  fill(panel, el('h3', { class: 'visually-hidden' }, 'People'), msgs.nodes, lists, invite);
  await load();
}

// ---------------------------------------------------------------- Rooms

async function roomsTab(panel, ctx) {
  const msgs = messages();
  const list = el('div', { class: 'rooms-admin' });
  const shared = ctx.me.features.sharedRooms;
  const reasonId = uid('shared-reason');
  const reason = shared ? null : el('p', { id: reasonId, class: 'notice' }, `${SHARED_REASON}.`,
    ctx.me.powers.plan ? ' You can change it in the Plan tab.' : ' The clinic’s owner can change it.');
  let people = [];
  let rooms = [];

  const changed = async (text) => {
    await ctx.roomsChanged();
    await load();
    msgs.ok(text);
  };

  const load = async () => {
    const [r, p] = await Promise.all([api('GET', '/rooms', ctx.token), api('GET', '/people', ctx.token)]);
    rooms = r.rooms;
    people = p.people;
    list.replaceChildren(...rooms.map(roomSection));
  };
  const nameOf = (id) => { const p = people.find((x) => x.id === id); return p ? personName(p) : 'someone who left'; };

  function roomSection(room) {
    const rm = messages();
    const isShared = room.kind === 'shared';
    const title = room.displayName || room.name;
    const link = `${location.origin}/c/${room.slug}`;
    const name = field(isShared ? 'Name' : 'Name patients see', { required: true, maxlength: 100, value: isShared ? room.name : title },
      isShared ? undefined : 'A personal room is named after its provider: this changes their display name.');
    const slug = field('Link (slug)', { required: true, minlength: 3, maxlength: 60, pattern: '[a-z0-9]+(-[a-z0-9]+)*', value: room.slug },
      'Lower-case letters, digits and single hyphens. The old link keeps working for a while.');
    const edit = el('form', { class: 'room-edit' }, el('div', { class: 'row' }, el('div', {}, name.nodes), el('div', {}, slug.nodes)),
      el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Save room')));
    onSubmit(edit, rm, async () => {
      const body = {};
      if (name.input.value !== (isShared ? room.name : title)) body.name = name.input.value;
      if (slug.input.value !== room.slug) body.slug = slug.input.value;
      if (!Object.keys(body).length) { rm.ok('Nothing to change.'); return; }
      await api('PATCH', `/rooms/${room.id}`, ctx.token, body);
      if (!isShared && (room.ownerId || (room.owner && room.owner.id)) === ctx.me.user.id) await ctx.reloadMe();
      await changed(`${name.input.value} was saved.`);
    });

    const parts = [
      el('h4', {}, title, ' ', el('span', { class: 'meta' }, isShared ? '· shared room' : `· personal room${room.owner ? ` of ${room.owner.name}` : ''}`)),
      el('p', {}, 'Patient link: ', el('a', { href: `/c/${room.slug}` }, link),
        room.open === false ? el('span', { class: 'warn-text' }, ' · not taking check-ins') : null,
        room.waitingCount ? el('span', { class: 'meta' }, ` · ${room.waitingCount} waiting`) : null),
      edit,
    ];

    if (isShared) {
      const memberIds = room.memberIds || [];
      const members = el('ul', { class: 'members', 'aria-label': `Members of ${title}` }, memberIds.map((id) => el('li', {}, nameOf(id), ' ',
        el('button', {
          type: 'button', 'aria-label': `Remove ${nameOf(id)} from ${title}`, disabled: !shared,
          onclick: () => act(rm, async () => {
            await api('DELETE', `/rooms/${room.id}/members/${id}`, ctx.token);
            await changed(`${nameOf(id)} was removed from ${title}.`);
          }),
        }, 'Remove'))));
      const candidates = people.filter((p) => p.active && !memberIds.includes(p.id));
      const add = field(`Add a member to ${title}`, { tag: 'select', disabled: !shared || !candidates.length },
        undefined, candidates.map((p) => ({ value: p.id, label: personName(p) })));
      const addButton = el('button', {
        type: 'button', disabled: !shared || !candidates.length,
        onclick: () => act(rm, async () => {
          const id = add.input.value;
          await api('PUT', `/rooms/${room.id}/members/${id}`, ctx.token);
          await changed(`${nameOf(id)} was added to ${title}.`);
        }),
      }, 'Add member');
      const moveTo = field('Move waiting patients to', { tag: 'select', disabled: !shared }, 'Only needed when patients are waiting here.',
        [{ value: '', label: '(nobody: refuse if patients are waiting)' },
          ...rooms.filter((r) => r.id !== room.id && r.open !== false).map((r) => ({ value: r.id, label: r.displayName }))]);
      const archive = el('button', {
        type: 'button', disabled: !shared,
        onclick: () => act(rm, async () => {
          // eslint-disable-next-line no-alert
          if (!confirm(`Archive ${title}? Its link stops taking check-ins.`)) return;
          const r = await api('POST', `/rooms/${room.id}/archive`, ctx.token, moveTo.input.value ? { moveToRoomId: moveTo.input.value } : {});
          await changed(`${title} was archived${r.moved ? `; ${r.moved} waiting ${r.moved === 1 ? 'patient was' : 'patients were'} moved` : ''}.`);
        }),
      }, 'Archive room');
      parts.push(
        el('h5', {}, 'Members'),
        memberIds.length ? members : el('p', { class: 'meta' }, 'No members yet: nobody sees this room’s patients.'),
        el('div', { class: 'row end' }, el('div', {}, add.nodes), el('div', {}, addButton)),
        el('h5', {}, 'Archive'),
        el('div', { class: 'row end' }, el('div', {}, moveTo.nodes), el('div', {}, archive)));
    }
    parts.push(rm.nodes);
    return el('section', { class: 'room-admin', 'data-room': room.id, 'aria-label': `Room ${title}` }, parts);
  }

  // A new shared room: the slug follows the name until edited.
  const nm = messages();
  const newName = field('Room name', { required: true, maxlength: 100 });
  const newSlug = field('Link (slug)', { required: true, minlength: 3, maxlength: 60, pattern: '[a-z0-9]+(-[a-z0-9]+)*' },
    `Patients check in at ${location.origin}/c/<slug>.`);
  newName.input.addEventListener('input', () => {
    if (!newSlug.input.dataset.edited) newSlug.input.value = newName.input.value.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  });
  newSlug.input.addEventListener('input', () => { newSlug.input.dataset.edited = '1'; });
  const create = el('form', { class: 'panel', 'aria-labelledby': 'new-room-title' },
    el('fieldset', { disabled: !shared, 'aria-describedby': shared ? undefined : reasonId },
      el('legend', { id: 'new-room-title' }, 'New shared room'),
      el('div', { class: 'row' }, el('div', {}, newName.nodes), el('div', {}, newSlug.nodes)),
      nm.nodes,
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Create room'))));
  onSubmit(create, nm, async () => {
    const name = newName.input.value;
    const r = await api('POST', '/rooms', ctx.token, { name, slug: newSlug.input.value });
    create.reset();
    delete newSlug.input.dataset.edited;
    await changed(`${r.room.name || name} was created: patients check in at ${location.origin}/c/${r.room.slug}.`);
    nm.ok(`${r.room.name || name} was created.`);
  });

  fill(panel, el('h3', { class: 'visually-hidden' }, 'Rooms'), reason, msgs.nodes, create, list, waitingSettings(ctx));
  await load();
}

// ---------------------------------------------------------------- Plan

async function planTab(panel, ctx) {
  const msgs = messages();
  const data = await api('GET', '/clinic', ctx.token);
  const may = ctx.me.powers.plan;
  const reasonId = uid('plan-reason');
  const current = el('p', { id: 'plan-current' });
  const showCurrent = (plan, inUse) => {
    const p = PLANS.find((x) => x.value === plan);
    fill(current, 'Current plan: ', el('strong', {}, p ? p.label : plan),
      inUse !== undefined ? el('span', { class: 'meta' }, ` · shared rooms in use: ${inUse}`) : null);
  };
  showCurrent(data.clinic.plan, data.sharedRoomsInUse);

  const radios = PLANS.map((p) => {
    const id = uid('plan');
    return el('div', { class: 'choice' },
      el('input', { type: 'radio', name: 'plan', value: p.value, id, class: 'check', checked: p.value === data.clinic.plan, 'aria-describedby': `${id}-text` }),
      el('label', { for: id }, p.label),
      el('span', { id: `${id}-text`, class: 'meta' }, p.text));
  });
  const confirmBox = el('div', { class: 'actions hidden' });
  const form = el('form', { 'aria-labelledby': 'plan-legend' },
    el('fieldset', { disabled: !may, 'aria-describedby': may ? undefined : reasonId },
      el('legend', { id: 'plan-legend' }, 'Clinic plan'), radios),
    may ? null : el('p', { id: reasonId, class: 'notice' }, 'Only an owner can change the clinic’s plan.'),
    msgs.nodes, confirmBox,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary', disabled: !may }, 'Save plan')));

  const save = async (confirm) => {
    const plan = form.querySelector('input[name=plan]:checked').value;
    try {
      const r = await api('PUT', '/clinic/plan', ctx.token, confirm ? { plan, confirm: true } : { plan });
      confirmBox.classList.add('hidden');
      confirmBox.replaceChildren();
      showCurrent(r.clinic.plan);
      await ctx.reloadMe();
      await ctx.roomsChanged();
      msgs.ok(`The clinic is now on the ${PLANS.find((x) => x.value === r.clinic.plan)?.label || r.clinic.plan} plan.`);
    } catch (err) {
      if (err.code === 'confirm_required') {
        msgs.fail(err);
        fill(confirmBox, el('button', { type: 'button', class: 'primary', onclick: () => act(msgs, () => save(true)) }, 'Downgrade anyway'),
          el('button', { type: 'button', onclick: () => { confirmBox.classList.add('hidden'); msgs.clear(); } }, 'Keep the current plan'));
        confirmBox.classList.remove('hidden');
        return;
      }
      throw err;
    }
  };
  onSubmit(form, msgs, () => save(false));
  fill(panel, el('h3', {}, 'Plan'), current, form);
}

// ---------------------------------------------------------------- Audit

async function auditTab(panel, ctx) {
  const msgs = messages();
  const { people } = await api('GET', '/people', ctx.token);
  const person = field('Person', { tag: 'select' }, undefined,
    [{ value: '', label: 'Everyone' }, ...people.map((p) => ({ value: p.id, label: personName(p) }))]);
  const kind = field('Kind', { tag: 'select' }, undefined,
    [{ value: '', label: 'Everything' }, ...AUDIT_KINDS.map((k) => ({ value: k.value, label: `${k.label} (${k.value}*)` }))]);
  const body = el('tbody');
  const table = el('table', { class: 'admin', id: 'audit-table' },
    el('caption', {}, 'Audit trail, newest first'),
    el('thead', {}, el('tr', {}, ['When', 'Who', 'What', 'Address', 'Detail'].map((h) => el('th', { scope: 'col' }, h)))), body);
  const end = el('p', { class: 'meta', role: 'status' });
  const older = el('button', { type: 'button', onclick: () => act(msgs, () => load(false)) }, 'Older');
  let lastId = null;

  const load = async (fresh) => {
    const q = new URLSearchParams();
    if (person.input.value) q.set('actorId', person.input.value);
    if (kind.input.value) q.set('action', kind.input.value);
    if (!fresh && lastId !== null) q.set('before', String(lastId));
    const { audit } = await api('GET', `/audit?${q}`, ctx.token);
    if (fresh) body.replaceChildren();
    body.append(...audit.map((r) => el('tr', { 'data-audit': r.id },
      el('td', {}, el('time', { datetime: r.at }, when(r.at))),
      el('td', {}, r.actorName || (r.actorKind === 'system' ? 'Handoff' : r.actorKind || '')),
      el('td', {}, el('code', {}, r.action)),
      el('td', {}, r.address || ''),
      el('td', {}, typeof r.detail === 'string' ? r.detail : r.detail ? JSON.stringify(r.detail) : ''))));
    if (audit.length) lastId = audit[audit.length - 1].id;
    const none = !audit.length;
    older.classList.toggle('hidden', none);
    end.textContent = none ? (fresh ? 'No entries match.' : 'No older entries.') : `${body.children.length} entries shown.`;
  };
  for (const s of [person.input, kind.input]) s.addEventListener('change', () => { lastId = null; act(msgs, () => load(true)); });

  fill(panel, el('h3', { class: 'visually-hidden' }, 'Audit'),
    el('div', { class: 'row filters' }, el('div', {}, person.nodes), el('div', {}, kind.nodes)),
    msgs.nodes, table, end, el('div', { class: 'actions' }, older));
  await load(true);
}

// ---------------------------------------------------------------- Security

async function securityTab(panel, ctx) {
  const msgs = messages();
  const data = await api('GET', '/clinic', ctx.token);
  const box = el('input', { type: 'checkbox', id: uid('require-mfa'), class: 'check', checked: data.clinic.requireMfa, 'aria-describedby': 'require-mfa-text' });
  const form = el('form', { 'aria-labelledby': 'security-legend' },
    el('fieldset', {}, el('legend', { id: 'security-legend' }, 'Sign-in'),
      el('div', { class: 'choice' }, box, el('label', { for: box.id }, 'Require two-factor sign-in for everyone'),
        el('span', { id: 'require-mfa-text', class: 'meta' },
          'Everyone signs in with a code from an authenticator app as well as their password. People without one are asked to set it up before they can see patients, you included.'))),
    msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Save')));
  onSubmit(form, msgs, async () => {
    const r = await api('PUT', '/clinic/security', ctx.token, { requireMfa: box.checked });
    await ctx.reloadMe();
    msgs.ok(r.clinic.requireMfa ? 'Two-factor sign-in is now required.' : 'Two-factor sign-in is now optional.');
    if (ctx.me.mfa.enrolmentRequired) location.reload(); // now held to enrolling
  });
  fill(panel, form);
}

// waitingSettings is the clinic's waiting-room settings (owners and admins):
// when a waiting patient's card stands out, and whether patients may send
// messages.
function waitingSettings(ctx) {
  const msgs = messages();
  const minutes = field('Highlight patients waiting longer than (minutes)', { type: 'number', min: 1, max: 240, required: true, value: ctx.me.clinic.waitAlertMinutes || 15 });
  const chatId = uid('patient-chat');
  const chat = el('input', { type: 'checkbox', id: chatId, class: 'check', checked: ctx.me.clinic.patientChat !== false });
  const form = el('form', { 'aria-labelledby': 'waiting-settings' },
    el('h3', { id: 'waiting-settings' }, 'Waiting rooms'),
    minutes.nodes,
    el('div', { class: 'choice' }, chat, el('label', { for: chatId }, 'Patients may send messages')),
    msgs.nodes,
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Save waiting-room settings')));
  onSubmit(form, msgs, async () => {
    await api('PUT', '/clinic/waiting', ctx.token, { waitAlertMinutes: Number(minutes.input.value), patientChat: chat.checked });
    await ctx.reloadMe();
    msgs.ok('Waiting-room settings saved.');
  });
  return form;
}
