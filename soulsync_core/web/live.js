// Live updates from the event stream (GET /api/v1/events, Server-Sent Events; docs/events.md).
// A page says which event types concern it, how to apply one in place (a download event
// carries the GET /downloads/<id> object) and how to refetch. While the stream is down the
// page is polled every few seconds instead; a new stream resumes after the last event seen.
import { eventsUrl, get, getKey } from './api.js';

const TYPES = [
  'download.queued', 'download.searching', 'download.progress', 'download.completed',
  'download.failed', 'download.cancelled', 'library.scan.started', 'library.scan.progress',
  'library.scan.finished', 'library.changed', 'wishlist.added', 'wishlist.removed',
  'wishlist.processed', 'watchlist.release_found', 'watchlist.scan.finished',
  'playlist.sync.progress', 'playlist.sync.finished', 'service.up', 'service.down',
  'settings.changed', 'api_key.created', 'api_key.revoked',
];
// Sent when events were missed (the gap is gone from the buffer, or this reader fell behind):
// every page refetches what it shows.
const MISSED = ['reset', 'lost'];
// After the API refused a stream (503 while stopping, 429 too many streams), try again then.
const RECONNECT_MS = 5000;

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

// Refetch on the next second at most once, however many events came in meanwhile.
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

function onEvent(message) {
  if (message.lastEventId) lastId = message.lastEventId;
  let event;
  try { event = JSON.parse(message.data); } catch { event = { type: message.type, data: null }; }
  for (const watcher of watchers) {
    if (MISSED.includes(message.type)) nudge(watcher);
    else if (matches(watcher.patterns, message.type) && !(watcher.apply && watcher.apply(event))) nudge(watcher);
  }
}

function connect() {
  if (stream || reconnectTimer || !getKey() || typeof EventSource === 'undefined') return;
  // A fresh stream resumes with ?since=; the browser's own reconnects send Last-Event-ID.
  stream = new EventSource(eventsUrl(lastId));
  stream.addEventListener('open', () => setStreaming(true));
  for (const type of [...TYPES, ...MISSED]) stream.addEventListener(type, onEvent);
  stream.addEventListener('error', async () => {
    setStreaming(false);
    if (!stream || stream.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    // The API refused the stream; an ordinary request says why (a revoked key logs out).
    stream = null;
    try { await get('/system/status'); } catch { /* a refused key is handled by request() */ }
    if (!getKey()) return;
    reconnectTimer = setTimeout(() => { reconnectTimer = null; connect(); }, RECONNECT_MS);
  });
}

// Apply each event matching `patterns` (globs such as 'download.*') with `apply(event)`
// ({type, data} as docs/events.md describes); when it returns false (or there is none), call
// `refresh(true)` instead. Without a stream, `refresh()` runs every `everyMs`. Returns the
// function that stops watching.
export function watch(patterns, refresh, everyMs = 4000, apply = null) {
  const watcher = { patterns, refresh, apply, everyMs, timer: null, pending: false };
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
  lastId = null;
  setStreaming(false);
}
