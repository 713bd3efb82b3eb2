// API keys: list, create (the key shown once, with a copy button), revoke.
import { del, get, post } from './api.js';
import { clear, copy, h, run, section, showError, statusLine, table, when } from './ui.js';

export default async function keys(view) {
  const line = statusLine();
  const list = h('div', { id: 'keys' });
  const label = h('input', { id: 'key-label', maxlength: '200', placeholder: 'e.g. Home Assistant', required: true });
  const shown = h('div', { class: 'new-key' });
  const form = h('form', { class: 'row', onsubmit: async (event) => {
    event.preventDefault();
    const created = await run(form.querySelector('button'), line, 'Creating a key…', () => post('/api-keys', { label: label.value }),
      'Key created.');
    if (!created) return;
    const key = created.data.key;
    clear(shown, h('p', {}, `The key for “${created.data.label}”. It is shown only now: copy it.`),
      h('code', { class: 'key', id: 'created-key' }, key),
      h('button', { type: 'button', onclick: () => copy(key, line) }, 'Copy'));
    label.value = '';
    await load();
  } }, h('label', { for: 'key-label' }, 'Label'), label, h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  clear(view, h('h1', {}, 'API keys'), section('New key', form, shown, line), section('Keys', list));

  async function load() {
    try {
      const answer = await get('/api-keys');
      clear(list, table(['Label', 'Prefix', 'Created', 'Last used', ''], answer.data.keys.map((k) => {
        const button = h('button', { type: 'button', class: 'danger', 'data-key-id': k.id, onclick: async () => {
          if (!window.confirm(`Revoke the key “${k.label}”? Clients using it stop working.`)) return;
          const done = await run(button, line, 'Revoking…', () => del(`/api-keys/${encodeURIComponent(k.id)}`), 'Key revoked.');
          if (done) await load();
        } }, 'Revoke');
        return [k.label || '—', h('code', {}, k.key_prefix), when(k.created_at), when(k.last_used_at), button];
      }), 'No keys.'));
    } catch (error) { showError(line, error); }
  }
  await load();
}
