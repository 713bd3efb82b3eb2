// Library: artists A–Z with search, artist -> albums -> tracks, recently added, genres, scan.
import { get, post } from './api.js';
import { badge, clear, duration, h, pager, progressBar, run, section, showError, statusLine, table } from './ui.js';
import { watch } from './live.js';

const LETTERS = ['all', ...'abcdefghijklmnopqrstuvwxyz', '#'];

export default async function library(view, params) {
  const [kind, id] = params;
  if (kind === 'artist' && id) return artistPage(view, id);
  if (kind === 'album' && id) return albumPage(view, id);
  return overview(view);
}

async function overview(view) {
  const state = { letter: 'all', search: '', page: 1 };
  const list = h('div', { id: 'artists' });
  const line = statusLine();
  const searchInput = h('input', { type: 'search', id: 'artist-search', placeholder: 'Artist name',
    'aria-label': 'Search artists' });
  const letters = h('div', { class: 'letters', role: 'group', 'aria-label': 'First letter' },
    LETTERS.map((letter) => h('button', { type: 'button', 'data-letter': letter,
      'aria-pressed': String(letter === 'all'),
      onclick: () => { state.letter = letter; state.page = 1; mark(); load(); } },
    letter === 'all' ? 'All' : letter.toUpperCase())));
  function mark() {
    for (const b of letters.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.letter === state.letter));
  }
  const scan = scanBox(() => { load(); side(); });
  const recent = h('div');
  const genres = h('div');
  clear(view, h('h1', {}, 'Library'), scan.box,
    section('Artists',
      h('form', { class: 'row', role: 'search', onsubmit: (e) => { e.preventDefault(); state.search = searchInput.value.trim(); state.page = 1; load(); } },
        searchInput, h('button', { type: 'submit' }, 'Search')),
      letters, line, list),
    h('div', { class: 'grid' }, section('Recently added', recent), section('Genres', genres)));

  async function load() {
    try {
      const answer = await get('/library/artists', { letter: state.letter, search: state.search,
        page: state.page, limit: 50, fields: 'id,name,album_count,track_count' });
      line.textContent = '';
      line.className = 'status';
      clear(list, table(['Artist', 'Albums', 'Tracks'], answer.data.artists.map((a) => [
        h('a', { href: `#/library/artist/${a.id}` }, a.name), String(a.album_count ?? ''), String(a.track_count ?? '')]),
      'No artist matches.'), pager(answer.pagination, (page) => { state.page = page; load(); }));
    } catch (error) { showError(line, error); }
  }

  async function side() {
    try {
      const [added, genreList] = await Promise.all([
        get('/library/recently-added', { type: 'albums', limit: 10 }), get('/library/genres')]);
      clear(recent, table(['Album', 'Artist'], added.data.items.map((a) => [
        h('a', { href: `#/library/album/${a.id}` }, a.title), a.artist_name || '']), 'Nothing added yet.'));
      clear(genres, genreList.data.genres.length
        ? h('ul', { class: 'chips' }, genreList.data.genres.slice(0, 40).map((g) => h('li', {}, `${g.name} (${g.count})`)))
        : h('p', { class: 'empty' }, 'No genres yet.'));
    } catch (error) { showError(line, error); }
  }

  await Promise.all([load(), side(), scan.refresh(true)]);
  const stopScan = watch(['library.*'], (onEvent) => scan.refresh(onEvent), 3000);
  const stopList = watch(['library.changed', 'download.completed'], async () => { await load(); await side(); }, 30000);
  return () => { stopScan(); stopList(); };
}

// The scan button and the running or last scan. `finished()` is called when a scan seen running
// has ended, so the lists show what it found.
function scanBox(finished) {
  const line = statusLine();
  const info = h('div', { class: 'scan-info', id: 'scan-info' });
  let running = false;
  let checked = 0;
  const button = h('button', { type: 'button', id: 'scan', onclick: async () => {
    if (await run(button, line, 'Starting a scan…', () => post('/library/scan'), 'Scan started.')) running = true;
    await refresh(true);
  } }, 'Scan the music folder');
  // Polled often while a scan runs, otherwise looked at twice a minute (scans also start on a
  // schedule).
  async function refresh(force = false) {
    if (!force && !running && Date.now() - checked < 30000) return;
    checked = Date.now();
    try {
      const s = (await get('/library/scan')).data;
      if (running && s.state !== 'running') finished();
      running = s.state === 'running';
      if (s.state === 'idle') { clear(info, h('span', { class: 'muted' }, 'No scan has run yet.')); return; }
      const percent = s.files_total ? Math.round((100 * s.files_seen) / s.files_total) : 0;
      clear(info, badge(s.state), ' ',
        s.state === 'running' ? [progressBar(percent, 'Scan progress'), ` ${s.files_seen} of ${s.files_total ?? '?'} files`]
          : `${s.files_seen} files seen, ${s.files_read} read, ${s.errors} errors`,
        s.error ? h('span', { class: 'error' }, ` ${s.error}`) : null);
    } catch (error) { showError(line, error); }
  }
  return { box: h('div', { class: 'card row' }, button, info, line), refresh };
}

async function artistPage(view, id) {
  const answer = await get(`/library/artists/${encodeURIComponent(id)}`);
  const { artist, albums } = answer.data;
  clear(view, h('p', {}, h('a', { href: '#/library' }, '‹ Library')), h('h1', {}, artist.name),
    artist.genres && artist.genres.length ? h('p', { class: 'muted' }, artist.genres.join(', ')) : null,
    section('Albums', table(['Album', 'Year', 'Tracks'], albums.map((a) => [
      h('a', { href: `#/library/album/${a.id}` }, a.title), String(a.year ?? ''), String(a.track_count ?? '')]),
    'No albums.')));
}

async function albumPage(view, id) {
  const answer = await get(`/library/albums/${encodeURIComponent(id)}`);
  const { album, tracks } = answer.data;
  clear(view, h('p', {}, h('a', { href: `#/library/artist/${album.artist_id}` }, `‹ ${album.artist_name}`)),
    h('h1', {}, album.title), h('p', { class: 'muted' }, [album.year, `${tracks.length} tracks`].filter(Boolean).join(' · ')),
    section('Tracks', table(['#', 'Title', 'Length', 'Format'], tracks.map((t) => [
      String(t.track_number ?? ''), t.title, duration(t.duration), t.format || '']), 'No tracks.')));
}
