// DOM helpers shared by the pages: element builder, progress/error feedback, pager, formatting.

// h('button', {class: 'x', onclick: fn}, 'text', child) -> element; text is never parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'value') el.value = value;
    else if (name === 'checked') el.checked = Boolean(value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A status line for an action: shows progress, then the API's message on failure.
export function statusLine() {
  return h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
}

export function showError(line, error) {
  line.className = 'status error';
  line.textContent = error.message || String(error);
}

export function showOk(line, text) {
  line.className = 'status ok';
  line.textContent = text;
}

// Runs `action` with `button` disabled and `line` saying what happens; returns its result or
// undefined when it failed (the error is shown in `line`).
export async function run(button, line, working, action, done) {
  if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
  line.className = 'status busy';
  line.textContent = working;
  try {
    const result = await action();
    if (done) showOk(line, typeof done === 'function' ? done(result) : done);
    else { line.className = 'status'; line.textContent = ''; }
    return result;
  } catch (error) {
    showError(line, error);
    return undefined;
  } finally {
    if (button) { button.disabled = false; button.removeAttribute('aria-busy'); }
  }
}

// Previous / next buttons for the API's pagination object; `go(page)` loads another page.
export function pager(pagination, go) {
  if (!pagination) return null;
  const { page, total_pages: pages, total, has_prev: prev, has_next: next } = pagination;
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: !prev, onclick: () => go(page - 1) }, '‹ Previous'),
    h('span', {}, `Page ${page} of ${pages} · ${total} in all`),
    h('button', { type: 'button', disabled: !next, onclick: () => go(page + 1) }, 'Next ›'));
}

export function table(headings, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, headings.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, i) => h('td', { 'data-label': headings[i] }, cell)))))));
}

export function progressBar(percent, label) {
  return h('progress', { max: '100', value: String(Math.max(0, Math.min(100, percent || 0))),
    'aria-label': label || `${percent || 0} %` });
}

export function badge(text, kind = text) {
  return h('span', { class: `badge badge-${String(kind).replace(/[^a-z_]/gi, '')}` }, text);
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function bytes(count) {
  if (!count) return '0 B';
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function duration(seconds) {
  if (!seconds && seconds !== 0) return '—';
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function artists(list) {
  return (list || []).map((a) => (typeof a === 'string' ? a : a.name)).join(', ');
}

export async function copy(text, line) {
  try {
    await navigator.clipboard.writeText(text);
    showOk(line, 'Copied to the clipboard.');
  } catch {
    showError(line, new Error('The browser refused the clipboard; select the key and copy it by hand.'));
  }
}
