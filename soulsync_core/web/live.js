// Live updates: the event stream (GET /api/v1/events, Server-Sent Events) when the daemon offers
// it, else polling. A page says which event types concern it and how to refresh; it is refreshed
// on each such event (at most once a second) or, while there is no stream, every few seconds.
import { eventsUrl, getKey, offersEvents } from './api.js';

const TYPES = [
  'download.queued', 'download.searching', 'download.progress', 'download.completed',
  'download.failed', 'download.cancelled', 'library.scan.started', 'library.scan.progress',
  'library.scan.finished', 'library.changed', 'wishlist.added', 'wishlist.removed',
  'wishlist.processed', 'watchlist.release_found', 'watchlist.scan.finished',
  'playlist.sync.progress', 'playlist.sync.finished', 'service.up', 'service.down',
  'settings.changed', 'api_key.created', 'api_key.revoked',
];
const RECONNECT_MS = 15000;

const watchers = new Set();
let stream = null;
let streaming = false;
let lastId = null;
let reconnectTimer = null;

function matches(patterns, type) {
  return patterns.some((p) => p === type || (p.endsWith('*') && type.startsWith(p.slice(0, -1))));
}

function poll(watcher) {
  clearTimeout(watcher.timer);
  if (streaming || !watchers.has(watcher)) return;
  watcher.timer = setTimeout(async () => {
    try { await watcher.refresh(); } catch { /* the page shows its own errors */ }
    poll(watcher);
  }, watcher.everyMs);
}

function nudge(watcher) {
  if (watcher.pending) return;
  watcher.pending = true;
  setTimeout(async () => {
    watcher.pending = false;
    if (!watchers.has(watcher)) return;
    try { await watcher.refresh(true); } catch { /* shown by the page */ }
  }, 1000);
}

function setStreaming(on) {
  streaming = on;
  for (const watcher of watchers) {
    if (on) clearTimeout(watcher.timer);
    else poll(watcher);
  }
}

function onEvent(event) {
  if (event.lastEventId) lastId = event.lastEventId;
  for (const watcher of watchers) {
    if (event.type === 'reset' || matches(watcher.patterns, event.type)) nudge(watcher);
  }
}

async function connect() {
  if (stream || reconnectTimer || !getKey() || typeof EventSource === 'undefined') return;
  if (!(await offersEvents()) || stream) return;
  stream = new EventSource(eventsUrl(lastId));
  stream.addEventListener('open', () => setStreaming(true));
  for (const type of [...TYPES, 'reset']) stream.addEventListener(type, onEvent);
  stream.addEventListener('error', () => {
    // The browser retries by itself (sending Last-Event-ID) unless it gave up; poll meanwhile.
    setStreaming(false);
    if (stream.readyState === EventSource.CLOSED) {
      stream = null;
      reconnectTimer = setTimeout(() => { reconnectTimer = null; connect(); }, RECONNECT_MS);
    }
  });
}

// Call `refresh(true)` on events matching `patterns` (globs such as 'download.*'), or
// `refresh()` every `everyMs` while polling. Returns the function that stops it.
export function watch(patterns, refresh, everyMs = 4000) {
  const watcher = { patterns, refresh, everyMs, timer: null, pending: false };
  watchers.add(watcher);
  poll(watcher);
  connect();
  return () => { watchers.delete(watcher); clearTimeout(watcher.timer); };
}

export function stop() {
  if (stream) stream.close();
  stream = null;
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  setStreaming(false);
}
