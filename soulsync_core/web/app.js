// The shell: login, navigation, and the hash router that loads one page module at a time.
import { ApiError, forgetKey, getKey, post, request, setKey, whenLoggedOut } from './api.js';
import { clear, copy, h, run, showError, statusLine } from './ui.js';
import { stop as stopLive } from './live.js';

const PAGES = [
  ['dashboard', 'Dashboard'], ['library', 'Library'], ['search', 'Search'],
  ['downloads', 'Downloads'], ['wishlist', 'Wishlist'], ['watchlist', 'Watchlist'],
  ['playlists', 'Playlists'], ['settings', 'Settings'], ['keys', 'API keys'], ['plugins', 'Plugins'],
];
const root = document.getElementById('app');
let cleanup = null;
let loginMessage = '';

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return { name: PAGES.some(([id]) => id === name) ? name : 'dashboard', params: rest.map(decodeURIComponent) };
}

function shell() {
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    h('ul', {}, PAGES.map(([id, title]) => h('li', {}, h('a', { href: `#/${id}`, 'data-page': id }, title)))));
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(root,
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '#/dashboard' }, 'SoulSync'),
      h('button', { type: 'button', class: 'link', id: 'logout', onclick: () => forgetKey('You are logged out.') }, 'Log out')),
    nav, main);
  return main;
}

async function show() {
  if (cleanup) { cleanup(); cleanup = null; }
  if (!getKey()) { stopLive(); login(); return; }
  const main = document.getElementById('main') || shell();
  const { name, params } = route();
  for (const link of root.querySelectorAll('.nav a')) {
    if (link.dataset.page === name) {
      link.setAttribute('aria-current', 'page');
      link.scrollIntoView({ block: 'nearest', inline: 'nearest' }); // the phone's scrolling bar
    } else link.removeAttribute('aria-current');
  }
  document.title = `${PAGES.find(([id]) => id === name)[1]} · SoulSync`;
  clear(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    const page = await import(`./page_${name}.js`);
    const view = h('div', { class: 'page', 'data-page': name });
    const stopPage = await page.default(view, params);
    if (route().name !== name) { if (stopPage) stopPage(); return; }
    cleanup = stopPage || null;
    clear(main, view);
    // User Timing mark: when this page's data is on screen and usable (benchmarks/ui.py reads it).
    performance.mark(`soulsync:${name}`);
  } catch (error) {
    if (!getKey()) return;
    const line = statusLine();
    showError(line, error);
    clear(main, line);
  }
}

function login() {
  const keyInput = h('input', { id: 'login-key', type: 'password', autocomplete: 'current-password',
    required: true, placeholder: 'sk_…', spellcheck: 'false' });
  const line = statusLine();
  if (loginMessage) showError(line, new Error(loginMessage));
  const form = h('form', { class: 'card', onsubmit: async (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    const button = form.querySelector('button');
    const ok = await run(button, line, 'Checking the key…', () => fetchWithKey(key));
    if (ok) { setKey(key); loginMessage = ''; enter(); }
  } },
  h('h2', {}, 'Log in'),
  h('label', { for: 'login-key' }, 'API key'), keyInput,
  h('button', { type: 'submit', class: 'primary' }, 'Log in'), line);

  const labelInput = h('input', { id: 'first-label', value: 'Web UI', maxlength: '200' });
  const firstLine = statusLine();
  const shown = h('div', { class: 'new-key' });
  const first = h('form', { class: 'card', onsubmit: async (event) => {
    event.preventDefault();
    const created = await run(first.querySelector('button'), firstLine, 'Creating the first key…',
      () => post('/api-keys/bootstrap', { label: labelInput.value }).then((e) => e.data));
    if (!created) return;
    setKey(created.key);
    clear(shown,
      h('p', {}, 'This is your key. It is shown only now: copy it somewhere safe.'),
      h('code', { class: 'key', id: 'new-key' }, created.key),
      h('div', { class: 'row' },
        h('button', { type: 'button', onclick: () => copy(created.key, firstLine) }, 'Copy'),
        h('button', { type: 'button', class: 'primary', id: 'continue', onclick: () => { loginMessage = ''; enter(); } }, 'Continue')));
  } },
  h('h2', {}, 'Fresh install?'),
  h('p', {}, 'No API key exists yet: create the first one.'),
  h('label', { for: 'first-label' }, 'Label'), labelInput,
  h('button', { type: 'submit' }, 'Create the first key'), firstLine, shown);

  const main = h('main', { id: 'main', class: 'login' }, form);
  clear(root, h('header', { class: 'top' }, h('span', { class: 'brand' }, 'SoulSync')), main);
  keyInput.focus();
  // Offered only while the API says no key exists (GET /system/bootstrap needs no key).
  request('GET', '/system/bootstrap', { auth: false })
    .then((answer) => { if (answer.data.available && main.isConnected) main.append(first); })
    .catch(() => { /* the daemon is unreachable: logging in will say so */ });
}

// Checks a key the user typed before it is stored: an authenticated read with it.
async function fetchWithKey(key) {
  const response = await fetch('/api/v1/system/status', { headers: { Authorization: `Bearer ${key}` } });
  const envelope = await response.json();
  if (!envelope.success) throw new ApiError(response.status, envelope.error.code, envelope.error.message);
  return envelope;
}

function enter() {
  clear(root);
  if (location.hash === '' || location.hash === '#/') location.hash = '#/dashboard';
  show();
}

whenLoggedOut((message) => {
  loginMessage = message;
  if (cleanup) { cleanup(); cleanup = null; }
  stopLive();
  login();
});
// The skip link moves the focus to the page without touching the address (the router's hash).
document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  const main = document.getElementById('main');
  if (main) main.focus();
});
window.addEventListener('hashchange', show);
show();
