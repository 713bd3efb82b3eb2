// Dashboard: uptime, services with their last error, library counts, active downloads, activity.
import { get } from './api.js';
import { badge, clear, h, progressBar, section, showError, statusLine, table, when } from './ui.js';
import { watch } from './live.js';

const ACTIVE = 'queued,searching,downloading,post_processing';
const LEVEL_BADGE = { ok: 'ok', warning: 'warn', error: 'bad' };

export default async function dashboard(view) {
  const services = h('div');
  const counts = h('div');
  const active = h('div');
  const activity = h('div');
  const health = h('div', { id: 'health' });
  const line = statusLine();
  clear(view, h('h1', {}, 'Dashboard'), line,
    h('div', { class: 'grid' },
      section('Status', services), section('Library', counts)),
    section('Health', health),
    section('Active downloads', active), section('Recent activity', activity));

  async function refresh() {
    try {
      const [status, stats, downloads, feed] = await Promise.all([
        get('/system/status'), get('/system/stats'),
        get('/downloads', { status: ACTIVE, limit: 10 }), get('/system/activity', { limit: 10 })]);
      line.className = 'status';
      line.textContent = '';
      const s = status.data;
      clear(services,
        h('p', {}, `Up ${s.uptime} · version ${s.version}`),
        h('ul', { class: 'services' }, Object.entries(s.services).map(([name, up]) => {
          const detail = (s.service_details || {})[name] || {};
          return h('li', {}, badge(up ? 'up' : 'down', up ? 'ok' : 'bad'), ' ', h('strong', {}, name),
            detail.error ? h('span', { class: 'muted' }, ` — ${detail.error}`) : null);
        })));
      const st = stats.data;
      clear(counts, h('dl', { class: 'figures' },
        figure('Artists', st.library.artists), figure('Albums', st.library.albums),
        figure('Tracks', st.library.tracks), figure('Downloading', st.downloads.active),
        figure('Failed downloads', st.downloads.failed), figure('Wishlist', st.wishlist.total),
        figure('Watched artists', st.watchlist.artists)));
      clear(active, table(['Track', 'State', 'Progress'], downloads.data.downloads.map((d) => [
        h('a', { href: `#/downloads/${d.id}` }, `${d.artist_name} – ${d.track_name}`),
        badge(d.status), h('span', { class: 'progress' }, progressBar(d.progress), ` ${d.progress} %`)]),
      'No download is running.'));
      clear(activity, table(['When', 'What', ''], feed.data.activities.map((a) => [
        when(a.timestamp), a.title, a.message]), 'Nothing has happened yet.'));
    } catch (error) {
      showError(line, error);
    }
  }

  // The health checks look at disks and folders: read again only when a service changes.
  async function refreshHealth() {
    try {
      const checks = await get('/system/health');
      clear(health, h('p', {}, 'Overall ', badge(checks.data.level, LEVEL_BADGE[checks.data.level])),
        h('ul', { class: 'health' }, checks.data.checks.map((c) => h('li', { 'data-check': c.check },
          badge(c.level, LEVEL_BADGE[c.level]), ' ', c.message,
          c.hint ? h('span', { class: 'muted hint' }, c.hint) : null))));
    } catch (error) {
      showError(line, error);
    }
  }

  await Promise.all([refresh(), refreshHealth()]);
  const stopHealth = watch(['service.*'], refreshHealth, 60000);
  const stopRest = watch(['download.*', 'library.*', 'service.*', 'wishlist.*', 'watchlist.*'], refresh, 5000);
  return () => { stopHealth(); stopRest(); };
}

function figure(name, value) {
  return h('div', {}, h('dt', {}, name), h('dd', {}, String(value ?? 0)));
}
