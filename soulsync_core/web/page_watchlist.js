// Watchlist: watched artists with their release filters (PATCH), remove, scan now and its findings.
import { del, get, patch, post } from './api.js';
import { badge, clear, h, run, section, showError, statusLine, table, when } from './ui.js';
import { watch } from './live.js';

const FILTERS = ['albums', 'eps', 'singles', 'live', 'remixes', 'acoustic', 'compilations'];

export default async function watchlist(view) {
  const line = statusLine();
  const list = h('div', { id: 'watchlist' });
  const scanInfo = h('div', { id: 'scan-info' });
  const scan = h('button', { type: 'button', class: 'primary', id: 'watchlist-scan', onclick: async () => {
    await run(scan, line, 'Starting a scan…', () => post('/watchlist/scan'), (a) => a.data.message);
    await refreshScan();
  } }, 'Scan now');
  clear(view, h('h1', {}, 'Watchlist'),
    h('p', { class: 'muted' }, 'Add artists from ', h('a', { href: '#/search' }, 'Search'), ' (search artists, then Watch).'),
    h('div', { class: 'card row' }, scan, line), section('Last scan', scanInfo), section('Watched artists', list));

  async function load() {
    try {
      const answer = await get('/watchlist');
      clear(list, table(['Artist', 'Source', 'Last scan', 'Include', ''], answer.data.artists.map((a) => {
        const remove = h('button', { type: 'button', class: 'danger', onclick: async () => {
          const done = await run(remove, line, 'Removing…', () => del(`/watchlist/${encodeURIComponent(a.artist_id)}`), (r) => r.data.message);
          if (done) await load();
        } }, 'Remove');
        const boxes = h('div', { class: 'filters' }, FILTERS.map((name) => {
          const key = `include_${name}`;
          const box = h('input', { type: 'checkbox', id: `f-${a.artist_id}-${name}`, checked: a[key], onchange: async () => {
            const done = await run(box, line, 'Saving…', () => patch(`/watchlist/${encodeURIComponent(a.artist_id)}`, { [key]: box.checked }),
              (r) => r.data.message);
            if (!done) box.checked = !box.checked;
          } });
          return h('label', { for: box.id }, box, ` ${name}`);
        }));
        return [h('strong', {}, a.artist_name), a.source, when(a.last_scan_timestamp), boxes, remove];
      }), 'No artist is watched.'));
    } catch (error) { showError(line, error); }
  }
  async function refreshScan() {
    try {
      const s = (await get('/watchlist/scan')).data;
      if (!s.state || s.state === 'idle') { clear(scanInfo, h('p', { class: 'muted' }, 'No scan yet.')); return; }
      clear(scanInfo,
        h('p', {}, badge(s.state), ` ${s.artists_scanned ?? 0} of ${s.artists_total ?? 0} artists scanned · `,
          `${s.releases_found ?? 0} releases found · ${s.tracks_added ?? 0} tracks added to the wishlist`,
          s.error ? h('span', { class: 'error' }, ` ${s.error}`) : null),
        table(['Release', 'Artist', 'Type', 'Released', 'Missing', 'Added'], (s.releases || []).map((r) => [
          r.album_name, r.artist_name, r.release_type, r.release_date || '—', String(r.missing), String(r.added)]),
        'No new release found.'));
    } catch (error) { showError(line, error); }
  }
  await Promise.all([load(), refreshScan()]);
  const stopScan = watch(['watchlist.*'], refreshScan, 5000);
  const stopList = watch(['watchlist.*'], load, 30000);
  return () => { stopScan(); stopList(); };
}
