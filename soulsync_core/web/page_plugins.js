// Plugins: what is installed and loaded, versions, providers, load errors.
import { get } from './api.js';
import { badge, clear, h, section, table } from './ui.js';

export default async function plugins(view) {
  const answer = await get('/system/plugins');
  clear(view, h('h1', {}, 'Plugins'), section('Installed', table(['Plugin', 'Version', 'Provides', 'Hooks', 'State'],
    answer.data.plugins.map((p) => [h('strong', {}, p.name), p.version || '—', p.providers.join(', ') || '—',
      p.hooks.join(', '), p.error ? h('span', {}, badge('error', 'bad'), ` ${p.error}`) : badge('loaded', 'ok')]),
    'No plugins are installed.')));
}
