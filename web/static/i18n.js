// Patient-facing texts come from message catalogues (/i18n/<lang>.json),
// never from code: the page shows the language the browser prefers (or the
// one the person picked), falling back to English for anything missing.
// Adding a language is adding its catalogue: the server lists them.
let catalogue = {};
let english = {};
export let lang = 'en';

// languages are the catalogues the site has: { code: name }.
export async function languages() {
  try { return await (await fetch('/i18n/index.json')).json(); } catch (_) { return { en: 'English' }; }
}

// choose picks the person's language: their earlier choice, else the first
// of the browser's languages the site has, else English.
export function choose(available) {
  const saved = localStorage.getItem('handoff:lang');
  if (saved && available[saved]) return saved;
  for (const l of navigator.languages || [navigator.language]) {
    const base = (l || '').toLowerCase().split('-')[0];
    if (available[base]) return base;
  }
  return 'en';
}

export async function load(code) {
  english = await (await fetch('/i18n/en.json')).json();
  catalogue = code === 'en' ? english : await (await fetch(`/i18n/${code}.json`)).json().catch(() => english);
  lang = code;
  document.documentElement.lang = code;
  apply();
}

// t is the text of key with {placeholders} filled from params.
export function t(key, params = {}) {
  const s = catalogue[key] ?? english[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? ''));
}

// apply sets the texts of the page's static elements: data-i18n (the
// text), data-i18n-label (aria-label).
export function apply(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
}

// setupLanguage loads the person's language, offers the others in select
// sel, and on a change loads that one and calls changed (for the texts a
// page set from code).
export async function setupLanguage(sel, changed) {
  const available = await languages();
  await load(choose(available));
  sel.replaceChildren(...Object.entries(available).map(([code, name]) => {
    const o = document.createElement('option');
    o.value = code;
    o.textContent = name;
    o.lang = code;
    o.selected = code === lang;
    return o;
  }));
  sel.addEventListener('change', async () => {
    localStorage.setItem('handoff:lang', sel.value);
    await load(sel.value);
    changed();
  });
}
