// The backups panel of the Settings page: the backup files (GET /system/backups) and
// "Back up now" (POST /system/backups, a job that this panel follows until it ends).
import { get, post } from './api.js';
import { badge, bytes, clear, h, run, section, showError, showOk, statusLine, table, when } from './ui.js';

// A backup job has no event of its own: while one runs, the list is read again this often.
const FOLLOW_MS = 1000;

export function backupsPanel() {
  const line = statusLine();
  const list = h('div', { id: 'backups' });
  const info = h('p', { class: 'muted' });
  let timer = null;
  const now = h('button', { type: 'button', class: 'primary', id: 'backup-now', onclick: async () => {
    const started = await run(now, line, 'Starting a backup…', () => post('/system/backups'));
    if (started) { showOk(line, started.data.message); await load(); }
  } }, 'Back up now');

  async function load() {
    clearTimeout(timer);
    try {
      const b = (await get('/system/backups')).data;
      const count = b.backups.length;
      clear(info, count ? `${count} backup${count === 1 ? '' : 's'}, ${bytes(b.total_size_bytes)}, in ${b.folder}` : `Folder ${b.folder}`,
        ' · ', b.next_run ? `next backup ${when(b.next_run)} (every ${b.interval_hours} h, keeping ${b.keep})` : 'not on a schedule');
      clear(list, table(['Backup', 'Made', 'Size', 'Kind'], b.backups.map((f) => [
        f.name, when(f.created_at), bytes(f.size_bytes), f.kind]), 'No backup yet.'));
      const last = b.last;
      if (last && last.state === 'running') {
        line.className = 'status busy';
        line.textContent = 'Backing up…';
        timer = setTimeout(load, FOLLOW_MS);
      } else if (last && last.state === 'failed') {
        showError(line, new Error(`The last backup failed: ${last.error}`));
      } else if (last && last.result) {
        clear(line, badge(last.state, 'ok'), ` Last backup ${last.result.name} (${bytes(last.result.size_bytes)}), ${when(last.finished_at)}.`);
        line.className = 'status ok';
      }
    } catch (error) { showError(line, error); }
  }

  return { el: section('Backups', h('div', { class: 'row' }, now, line), info, list), load, stop: () => clearTimeout(timer) };
}
