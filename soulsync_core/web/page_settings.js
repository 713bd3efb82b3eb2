// Settings: a form generated from GET /settings/schema. Only changed fields are sent; a secret
// is sent only when retyped; the API's validation error is shown on its field.
import { get, patch } from './api.js';
import { clear, h, run, showError, statusLine } from './ui.js';
import { backupsPanel } from './settings_backups.js';

const REDACTED = '***REDACTED***';
const NUMBER = /^-?\d+(\.\d+)?$/;

export default async function settings(view) {
  const schema = (await get('/settings/schema')).data.settings;
  const fields = new Map();
  const line = statusLine();
  const sections = new Map();
  for (const setting of schema) {
    if (!sections.has(setting.section)) sections.set(setting.section, []);
    sections.get(setting.section).push(setting);
  }
  const save = h('button', { type: 'submit', class: 'primary', id: 'save-settings' }, 'Save changes');
  const form = h('form', { novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    for (const field of fields.values()) field.setError('');
    const changes = {};
    for (const [key, field] of fields) {
      const value = field.read();
      if (value !== undefined) changes[key] = value;
    }
    if (!Object.keys(changes).length) { showError(line, new Error('Nothing changed.')); return; }
    try {
      const answer = await run(save, line, 'Saving…', async () => {
        try { return await patch('/settings', changes); } catch (error) { markField(error); throw error; }
      }, (a) => (a.data.restart_required.length
        ? `Saved. Restart SoulSync for ${a.data.restart_required.join(', ')} to take effect.`
        : `Saved: ${a.data.updated_keys.join(', ')}.`));
      if (answer) for (const key of Object.keys(changes)) fields.get(key).saved(changes[key]);
    } catch { /* shown in the status line */ }
  } },
  [...sections].map(([name, list]) => h('fieldset', { class: 'card' }, h('legend', {}, name),
    list.map((setting) => { const field = makeField(setting); fields.set(setting.key, field); return field.el; }))),
  h('div', { class: 'row sticky' }, save, line));
  const backups = backupsPanel();
  clear(view, h('h1', {}, 'Settings'), backups.el, form);
  await backups.load();

  // The API names the key first in its message ("server.port must be …"): mark that field.
  function markField(error) {
    const keys = [...fields.keys()].filter((key) => error.message.startsWith(key)).sort((a, b) => b.length - a.length);
    if (keys.length) fields.get(keys[0]).setError(error.message);
  }
  return backups.stop;
}

function makeField(setting) {
  const id = `setting-${setting.key.replace(/[^a-z0-9_]/gi, '-')}`;
  const error = h('p', { class: 'field-error', id: `${id}-error`, role: 'alert' });
  let original = setting.value;
  let input;
  if (setting.type === 'boolean') {
    input = h('input', { type: 'checkbox', id, checked: setting.value });
  } else if (setting.choices) {
    input = h('select', { id }, setting.choices.map((c) => h('option', { value: c }, c)));
    input.value = setting.value;
  } else if (setting.secret) {
    // A secret list (webhook URLs) is redacted whole, like any secret: retyped, one per line.
    const placeholder = setting.value === REDACTED ? 'set (hidden) · type to replace' : 'not set';
    input = setting.type === 'list'
      ? h('textarea', { id, rows: '2', autocomplete: 'off', placeholder: `${placeholder} · one per line` })
      : h('input', { type: 'password', id, autocomplete: 'off', placeholder });
  } else if (setting.type === 'list') {
    input = h('textarea', { id, rows: '2', placeholder: 'one per line' });
    input.value = (setting.value || []).join('\n');
  } else {
    input = h('input', { type: 'text', id, inputmode: setting.type === 'string' ? undefined : 'decimal', spellcheck: 'false' });
    input.value = setting.value ?? '';
  }
  if (setting.fixed_by) input.disabled = true;
  input.setAttribute('aria-describedby', `${id}-help ${id}-error`);
  const limits = [
    setting.minimum !== null ? `min ${setting.minimum}` : '', setting.maximum !== null ? `max ${setting.maximum}` : '',
    setting.secret ? 'secret' : '', `default ${setting.secret ? 'hidden' : JSON.stringify(setting.default)}`,
  ].filter(Boolean).join(' · ');
  const help = h('p', { class: 'help', id: `${id}-help` }, setting.description, h('br'), h('span', { class: 'muted' }, limits),
    setting.restart_required ? h('span', { class: 'badge badge-warn' }, 'restart required') : null,
    setting.fixed_by ? h('span', { class: 'badge badge-bad' },
      setting.fixed_by === 'env' ? `fixed by ${setting.fixed_where}` : `fixed in ${setting.fixed_where}`) : null);
  const el = h('div', { class: `field field-${setting.type}`, 'data-key': setting.key },
    h('label', { for: id }, setting.key), input, help, error);

  function current() {
    if (setting.type === 'boolean') return input.checked;
    // One item a line; an object (a webhook) is written as JSON.
    if (setting.type === 'list') return input.value.split('\n').map((s) => s.trim()).filter(Boolean).map(listItem);
    const text = input.value.trim();
    if ((setting.type === 'integer' || setting.type === 'number') && NUMBER.test(text)) return Number(text);
    return input.value;
  }
  return {
    el,
    // The value to send, or undefined when unchanged (a secret: when not retyped).
    read() {
      if (setting.fixed_by) return undefined;
      if (setting.secret) return input.value === '' ? undefined : current();
      const value = current();
      return JSON.stringify(value) === JSON.stringify(original) ? undefined : value;
    },
    saved(value) {
      if (setting.secret) { input.value = ''; input.placeholder = 'set (hidden) · type to replace'; } else original = value;
    },
    setError(message) {
      error.textContent = message;
      if (message) { input.setAttribute('aria-invalid', 'true'); input.focus(); } else input.removeAttribute('aria-invalid');
    },
  };
}

function listItem(text) {
  if (!text.startsWith('{')) return text;
  try { return JSON.parse(text); } catch { return text; }
}
