// Search: query the metadata sources (auto or one), download, wish for, or watch what is found.
import { get, post } from './api.js';
import { artists, clear, duration, h, run, section, statusLine, table } from './ui.js';

export default async function search(view) {
  const sources = await metadataSources();
  const query = h('input', { type: 'search', id: 'search-query', required: true, placeholder: 'Artist - Title',
    'aria-label': 'Search for' });
  const kind = h('select', { id: 'search-kind', 'aria-label': 'What to search' },
    ['tracks', 'albums', 'artists'].map((k) => h('option', { value: k }, k)));
  const source = h('select', { id: 'search-source', 'aria-label': 'Source' },
    h('option', { value: 'auto' }, 'auto'), sources.map((s) => h('option', { value: s }, s)));
  const line = statusLine();
  const results = h('div', { id: 'results' });
  const form = h('form', { class: 'row', role: 'search', onsubmit: async (event) => {
    event.preventDefault();
    const answer = await run(form.querySelector('button'), line, 'Searching…', () =>
      post(`/search/${kind.value}`, { query: query.value, source: source.value, limit: 20 }),
    (a) => `Answered by ${a.data.source}.`);
    if (answer) show(kind.value, answer.data);
  } }, query, kind, source, h('button', { type: 'submit', class: 'primary' }, 'Search'));
  clear(view, h('h1', {}, 'Search'), section('Metadata sources', form, line), results);
  query.focus();

  function show(type, data) {
    if (type === 'tracks') {
      clear(results, section(`Tracks (from ${data.source})`, table(['Title', 'Artist', 'Album', 'Length', ''],
        data.tracks.map((t) => [t.name, artists(t.artists), t.album, duration(t.duration_ms / 1000), actions(t, [
          ['Download', 'Starting the download…', () => post('/downloads', t), (a) => a.data.message],
          ['Add to wishlist', 'Adding…', () => post('/wishlist', { track_data: t, source_type: 'web' }), (a) => a.data.message],
        ])]), 'No track found.')));
    } else if (type === 'albums') {
      clear(results, section(`Albums (from ${data.source})`, table(['Album', 'Artist', 'Released', 'Tracks'],
        data.albums.map((a) => [a.name, artists(a.artists), a.release_date || '', String(a.total_tracks || '')]),
        'No album found.')));
    } else {
      clear(results, section(`Artists (from ${data.source})`, table(['Artist', 'Genres', ''],
        data.artists.map((a) => [a.name, (a.genres || []).join(', '), actions(a, [
          ['Watch', 'Adding to the watchlist…', () => post('/watchlist', { artist_id: a.id, artist_name: a.name, source: data.source }),
            (r) => r.data.message],
        ])]), 'No artist found.')));
    }
  }
}

function actions(item, list) {
  const line = statusLine();
  return h('div', { class: 'actions' }, list.map(([label, working, action, done]) => {
    const button = h('button', { type: 'button', onclick: () => run(button, line, working, action, done) }, label);
    return button;
  }), line);
}

// The metadata providers the installed plugins registered (the valid `source` values).
async function metadataSources() {
  const plugins = (await get('/system/plugins')).data.plugins;
  const names = new Set();
  for (const plugin of plugins) {
    if (plugin.hooks.includes('metadata_providers')) for (const name of plugin.providers) names.add(name);
  }
  return [...names].sort();
}
