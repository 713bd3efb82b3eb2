// Downloads: filter by status, progress and peer, the ranked candidates and why each was chosen
// or refused; cancel one, cancel all.
import { get, post } from './api.js';
import { badge, bytes, clear, h, pager, progressBar, run, section, showError, statusLine, table, when } from './ui.js';
import { watch } from './live.js';

const STATUSES = ['queued', 'searching', 'downloading', 'post_processing', 'completed', 'failed', 'not_found', 'cancelled'];
const UNFINISHED = new Set(['queued', 'searching', 'downloading']);
const HEADINGS = ['Track', 'State', 'Progress', 'Peer', ''];

export default async function downloads(view, params) {
  if (params[0]) return detail(view, params[0]);
  const state = { status: '', page: 1 };
  const filter = h('select', { id: 'download-status', 'aria-label': 'Status', onchange: () => { state.status = filter.value; state.page = 1; load(); } },
    h('option', { value: '' }, 'every status'), STATUSES.map((s) => h('option', { value: s }, s.replace('_', ' '))));
  const line = statusLine();
  const list = h('div', { id: 'downloads' });
  const cancelAll = h('button', { type: 'button', class: 'danger', onclick: async () => {
    await run(cancelAll, line, 'Cancelling every unfinished download…', () => post('/downloads/cancel-all'),
      (a) => a.data.message);
    await load();
  } }, 'Cancel all');
  clear(view, h('h1', {}, 'Downloads'), h('div', { class: 'row card' }, h('label', { for: 'download-status' }, 'Show'), filter, cancelAll), line, list);

  // The rows on screen by download id: a download event replaces its row in place.
  let rows = new Map();
  function row(d) {
    return h('tr', { 'data-download-id': String(d.id) }, [
      h('a', { href: `#/downloads/${d.id}` }, `${d.artist_name} – ${d.track_name}`),
      h('span', {}, badge(d.status), d.error ? h('span', { class: 'muted' }, ` ${d.error}`) : null),
      h('span', { class: 'progress' }, progressBar(d.progress, `${d.track_name} progress`), ` ${d.progress} %`),
      d.username || '—',
      UNFINISHED.has(d.status) ? cancelButton(d, load) : ''].map((cell, i) => h('td', { 'data-label': HEADINGS[i] }, cell)));
  }
  async function load() {
    try {
      const answer = await get('/downloads', { status: state.status, page: state.page, limit: 25 });
      const shown = answer.data.downloads;
      rows = new Map(shown.map((d) => [d.id, row(d)]));
      clear(list, shown.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, HEADINGS.map((text) => h('th', { scope: 'col' }, text)))),
        h('tbody', {}, [...rows.values()]))) : h('p', { class: 'empty' }, 'No downloads.'),
      pager(answer.pagination, (page) => { state.page = page; load(); }));
    } catch (error) { showError(line, error); }
  }
  // A download on screen that still passes the filter is redrawn from the event; anything
  // else (a new download, one leaving the filter) needs the list again.
  function apply(event) {
    const d = event.data;
    const shown = d && rows.get(d.id);
    if (!shown || (state.status && d.status !== state.status)) return false;
    const fresh = row(d);
    shown.replaceWith(fresh);
    rows.set(d.id, fresh);
    return true;
  }
  await load();
  return watch(['download.*'], load, 3000, apply);
}

function cancelButton(download, after) {
  const line = statusLine();
  const button = h('button', { type: 'button', onclick: async () => {
    const done = await run(button, line, 'Cancelling…', () => post(`/downloads/${download.id}/cancel`), 'Cancelled.');
    if (done) after();
  } }, 'Cancel');
  return h('div', { class: 'actions' }, button, line);
}

async function detail(view, id) {
  const line = statusLine();
  const body = h('div');
  clear(view, h('p', {}, h('a', { href: '#/downloads' }, '‹ Downloads')), line, body);
  function render(d) {
    clear(body, h('h1', {}, `${d.artist_name} – ${d.track_name}`),
      section('State', h('dl', { class: 'facts' },
        fact('Status', badge(d.status)), fact('Progress', h('span', { class: 'progress' }, progressBar(d.progress), ` ${d.progress} %`)),
        fact('Peer', d.username || '—'), fact('File', d.filename || '—'), fact('Size', d.size ? bytes(d.size) : '—'),
        fact('Quality', d.quality || '—'), fact('Error', d.error || '—'), fact('In the library', d.final_path || '—'),
        fact('Started', when(d.created_at)), fact('Finished', when(d.finished_at))),
      UNFINISHED.has(d.status) ? cancelButton(d, load) : null),
      section('Candidates', table(['Peer', 'File', 'Verdict', 'Confidence', 'Why'], d.candidates.map((c) => [
        c.username, c.filename, c.accepted ? badge('chosen', 'ok') : badge('refused', 'bad'),
        c.confidence.toFixed(2), c.reasons.join('; ') || (c.accepted ? 'meets the quality profile' : '')]),
      'No search results yet.')),
      d.tried.length ? section('Files given up', table(['Peer', 'File', 'Outcome', 'When'],
        d.tried.map((t) => [t.username, t.filename, t.outcome, when(t.at)]))) : null);
  }
  async function load() {
    try {
      render((await get(`/downloads/${encodeURIComponent(id)}`)).data.download);
    } catch (error) { showError(line, error); }
  }
  await load();
  // Download events carry the whole GET /downloads/<id> object: this one's is drawn as it is.
  const apply = (event) => {
    if (!event.data || String(event.data.id) !== String(id)) return true;
    render(event.data);
    return true;
  };
  return watch(['download.*'], load, 3000, apply);
}

function fact(name, value) {
  return h('div', {}, h('dt', {}, name), h('dd', {}, value));
}
