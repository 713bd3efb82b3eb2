// Wishlist: singles and albums wanted, next retry and last failure; remove; process now.
import { del, get, post } from './api.js';
import { artists, badge, clear, h, pager, run, showError, statusLine, table, when } from './ui.js';
import { watch } from './live.js';

export default async function wishlist(view) {
  const state = { category: '', page: 1 };
  const line = statusLine();
  const list = h('div', { id: 'wishlist' });
  const runInfo = h('div', { class: 'run-info' });
  const category = h('select', { id: 'wishlist-category', 'aria-label': 'Category', onchange: () => { state.category = category.value; state.page = 1; load(); } },
    h('option', { value: '' }, 'singles and albums'), h('option', { value: 'singles' }, 'singles'), h('option', { value: 'albums' }, 'albums'));
  const process = h('button', { type: 'button', class: 'primary', onclick: async () => {
    await run(process, line, 'Starting a wishlist run…', () => post('/wishlist/process'), (a) => a.data.message);
    await refreshRun();
  } }, 'Process now');
  clear(view, h('h1', {}, 'Wishlist'), h('div', { class: 'card row' }, category, process, runInfo), line, list);

  async function load() {
    try {
      const answer = await get('/wishlist', { category: state.category, page: state.page, limit: 25 });
      clear(list, table(['Track', 'Album', 'Failures', 'Last failure', 'Next retry', ''], answer.data.tracks.map((t) => {
        const button = h('button', { type: 'button', class: 'danger', onclick: async () => {
          const done = await run(button, line, 'Removing…', () => del(`/wishlist/${encodeURIComponent(t.track_id)}`), (a) => a.data.message);
          if (done) await load();
        } }, 'Remove');
        return [`${t.artist_name || artists((t.track_data || {}).artists)} – ${t.track_name}`, t.album_name || '—',
          String(t.retry_count), t.failure_reason || '—', t.next_retry_at ? when(t.next_retry_at) : 'next run', button];
      }), 'The wishlist is empty.'), pager(answer.pagination, (page) => { state.page = page; load(); }));
    } catch (error) { showError(line, error); }
  }
  async function refreshRun() {
    try {
      const r = (await get('/wishlist/process')).data;
      if (!r.state || r.state === 'idle') { clear(runInfo, h('span', { class: 'muted' }, 'No run yet.')); return; }
      clear(runInfo, badge(r.state), ` ${r.downloaded ?? 0} downloaded, ${r.failed ?? 0} failed, ${r.in_library ?? 0} already in the library of ${r.total ?? 0}`,
        r.error ? h('span', { class: 'error' }, ` ${r.error}`) : null);
    } catch (error) { showError(line, error); }
  }
  await Promise.all([load(), refreshRun()]);
  return watch(['wishlist.*', 'download.completed', 'download.failed'], async () => { await load(); await refreshRun(); }, 10000);
}
