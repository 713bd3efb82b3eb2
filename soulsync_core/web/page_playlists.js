// Playlists: connect a streaming account (open its login page, or paste the address back on a
// headless NAS), list its playlists, sync one, and pin each entry's library track.
import { del, get, post } from './api.js';
import { artists, badge, clear, h, run, section, showError, statusLine, table } from './ui.js';
import { watch } from './live.js';

export default async function playlists(view, params) {
  const sources = await playlistSources();
  if (params[0] && params[1]) return syncPage(view, params[0], params[1]);
  const line = statusLine();
  if (!sources.length) {
    clear(view, h('h1', {}, 'Playlists'), h('p', { class: 'empty' }, 'No playlist source is installed (soulsync-spotify, soulsync-tidal).'));
    return undefined;
  }
  const chosen = h('select', { id: 'playlist-source', 'aria-label': 'Service', onchange: () => load() },
    sources.map((s) => h('option', { value: s }, s)));
  const account = h('div', { id: 'account' });
  const list = h('div', { id: 'playlists' });
  clear(view, h('h1', {}, 'Playlists'), h('div', { class: 'card row' }, h('label', { for: 'playlist-source' }, 'Service'), chosen, line),
    section('Account', account), section('Playlists', list));

  async function load() {
    const name = chosen.value;
    clear(list);
    try {
      const login = (await get(`/auth/${encodeURIComponent(name)}`)).data;
      if (login.account.connected) {
        const out = h('button', { type: 'button', onclick: async () => {
          if (await run(out, line, 'Logging out…', () => del(`/auth/${encodeURIComponent(name)}`), (a) => a.data.message)) load();
        } }, 'Disconnect');
        clear(account, h('p', {}, badge('connected', 'ok'), ` as ${login.account.display_name || login.account.user_id}`), out);
        await loadPlaylists(name);
      } else {
        connectForm(name, login);
      }
    } catch (error) { showError(line, error); }
  }

  function connectForm(name, login) {
    const pasted = h('input', { id: 'redirect-url', type: 'url', placeholder: `${login.redirect_uri}?code=…`, required: true });
    const form = h('form', { onsubmit: async (event) => {
      event.preventDefault();
      const done = await run(form.querySelector('button'), line, 'Finishing the login…',
        () => post(`/auth/${encodeURIComponent(name)}`, { redirect_url: pasted.value.trim() }), (a) => a.data.message);
      if (done) load();
    } },
    h('ol', {},
      h('li', {}, h('a', { href: login.url, target: '_blank', rel: 'noopener noreferrer', id: 'authorize' }, `Open the ${name} login page`), ' and approve.'),
      h('li', {}, 'If the page you end on says the login is done, ', h('button', { type: 'button', class: 'link', onclick: () => load() }, 'reload this page'), '.'),
      h('li', {}, 'Otherwise (SoulSync runs on another machine) copy the whole address from the browser bar and paste it here:')),
    h('label', { for: 'redirect-url' }, 'Address after approving'), pasted,
    h('button', { type: 'submit', class: 'primary' }, 'Connect'));
    clear(account, h('p', {}, badge('not connected', 'bad')), form);
  }

  async function loadPlaylists(name) {
    const answer = (await get('/playlists', { source: name })).data;
    clear(list, table(['Playlist', 'Owner', 'Tracks', ''], answer.playlists.map((p) => {
      const sync = h('button', { type: 'button', class: 'primary', onclick: async () => {
        const started = await run(sync, line, `Starting the sync of ${p.name}…`,
          () => post(`/playlists/${encodeURIComponent(p.id)}/sync`, { source: name, playlist_name: p.name }), (a) => a.data.message);
        if (started) location.hash = `#/playlists/${encodeURIComponent(name)}/${encodeURIComponent(p.id)}`;
      } }, 'Sync');
      return [h('a', { href: `#/playlists/${encodeURIComponent(name)}/${encodeURIComponent(p.id)}` }, p.name), p.owner, String(p.track_count), sync];
    }), 'This account has no playlists.'));
  }
  await load();
  return undefined;
}

async function syncPage(view, source, id) {
  const line = statusLine();
  const body = h('div');
  const path = `/playlists/${encodeURIComponent(id)}/sync`;
  const again = h('button', { type: 'button', class: 'primary', onclick: async () => {
    if (await run(again, line, 'Starting the sync…', () => post(path, { source }), (a) => a.data.message)) running = true;
    await load();
  } }, 'Sync now');
  const title = h('h1', {}, 'Playlist');
  clear(view, h('p', {}, h('a', { href: '#/playlists' }, '‹ Playlists')), title, h('div', { class: 'row' }, again, line), body);

  // Re-read while a sync runs; a finished result stays put (a pin being chosen is not redrawn).
  let running = true;
  async function load() {
    let s;
    try {
      s = (await get(path)).data;
      running = s.state === 'running';
    } catch (error) {
      running = false;
      if (error.status === 404) { clear(body, h('p', { class: 'empty' }, 'Never synced yet.')); return; }
      showError(line, error);
      return;
    }
    const t = s.totals;
    title.textContent = s.playlist_name || id;
    clear(body,
      h('section', { class: 'card', id: 'sync-state' }, h('h2', {}, 'Sync'), h('p', {}, badge(s.state), ' ', s.state === 'running' ? [h('progress', { 'aria-label': 'Sync progress' }), ` ${s.progress.phase || ''} ·`] : null,
        ` ${t.matched} of ${t.total} in the library · ${t.missing} missing · ${t.downloading} downloading · ${t.wishlisted} on the wishlist`),
      s.m3u8_path ? h('p', { class: 'muted' }, `Playlist file: ${s.m3u8_path}`) : null,
      s.error ? h('p', { class: 'error' }, s.error) : null,
      s.notes.length ? h('ul', {}, s.notes.map((n) => h('li', {}, n))) : null),
      section('Tracks', table(['#', 'Track', 'Result', 'Pin'], s.tracks.map((e) => [
        String(e.position + 1), `${artists(e.track.artists)} – ${e.track.name}`,
        h('span', {}, badge(e.status, e.status === 'matched' ? 'ok' : 'bad'), e.pinned ? ' pinned' : '',
          e.method ? h('span', { class: 'muted' }, ` ${e.method}`) : null, e.action && e.action !== 'none' ? ` · ${e.action}` : ''),
        pinControl(e, path, line, load)]), 'No tracks.')));
  }
  await load();
  return watch(['playlist.sync.*', 'download.completed'], () => (running ? load() : undefined), 3000);
}

function pinControl(entry, path, line, after) {
  const box = h('div', { class: 'pin' });
  const pin = (body, working) => run(null, line, working, () => post(`${path}/matches`, body), 'Saved.').then((r) => { if (r) after(); });
  const open = h('button', { type: 'button', onclick: () => {
    const query = h('input', { type: 'search', value: entry.track.name || '', 'aria-label': 'Library track title' });
    const found = h('div', { class: 'pin-results' });
    const form = h('form', { class: 'row', onsubmit: async (event) => {
      event.preventDefault();
      const answer = await run(null, line, 'Searching the library…', () => get('/library/tracks', { title: query.value, limit: 10 }));
      if (!answer) return;
      clear(found, answer.data.tracks.length ? answer.data.tracks.map((t) => h('button', { type: 'button', class: 'choice',
        onclick: () => pin({ position: entry.position, track_id: t.id }, 'Pinning…') },
      `${t.artist_name || ''} – ${t.title}${t.album_title ? ` (${t.album_title})` : ''}`)) : h('p', { class: 'empty' }, 'No library track matches.'));
    } }, query, h('button', { type: 'submit' }, 'Find'));
    clear(box, form, found,
      h('button', { type: 'button', onclick: () => pin({ position: entry.position, track_id: null }, 'Saving…') }, 'Not in library'));
    query.focus();
  } }, entry.pinned ? 'Change pin' : 'Pin…');
  box.append(open);
  if (entry.pinned) box.append(h('button', { type: 'button', onclick: () => pin({ position: entry.position, pinned: false }, 'Unpinning…') }, 'Unpin'));
  return box;
}

// The playlist sources installed plugins registered (spotify, tidal …).
async function playlistSources() {
  const plugins = (await get('/system/plugins')).data.plugins;
  const names = new Set();
  for (const plugin of plugins) {
    if (plugin.hooks.includes('playlist_sources')) for (const name of plugin.providers) names.add(name);
  }
  return [...names].sort();
}
