// The one way the UI talks to SoulSync: the public /api/v1/ with the stored key.
const KEY = 'soulsync.api_key';
const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onLoggedOut = () => {};

export function getKey() { return localStorage.getItem(KEY); }
export function setKey(key) { localStorage.setItem(KEY, key); }

export function forgetKey(message) {
  localStorage.removeItem(KEY);
  onLoggedOut(message);
}

// Called when the key is refused (revoked, wrong): the app shows the login page with `message`.
export function whenLoggedOut(callback) { onLoggedOut = callback; }

// Returns the whole envelope {success, data, error, pagination}; throws ApiError on failure.
export async function request(method, path, { body, query, auth = true } = {}) {
  const url = new URL(BASE + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const headers = { Accept: 'application/json' };
  const key = getKey();
  if (auth && key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'NETWORK', 'SoulSync did not answer; is the daemon running?');
  }
  let envelope;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiError(response.status, 'BAD_RESPONSE', `Unexpected answer (HTTP ${response.status}).`);
  }
  if (!response.ok || !envelope.success) {
    const error = envelope.error || {};
    const failure = new ApiError(response.status, error.code || 'ERROR', error.message || `HTTP ${response.status}`);
    if (auth && (failure.code === 'INVALID_KEY' || failure.code === 'AUTH_REQUIRED')) {
      // 403 INVALID_KEY: a revoked or wrong key; 401 AUTH_REQUIRED: none the API could read.
      forgetKey(failure.code === 'INVALID_KEY'
        ? 'Your API key was refused (revoked or wrong). Log in with another key.'
        : `SoulSync asked for a key: ${failure.message} Log in with an API key.`);
    }
    throw failure;
  }
  return envelope;
}

export const get = (path, query) => request('GET', path, { query });
export const post = (path, body) => request('POST', path, { body: body ?? {} });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path) => request('DELETE', path);

export function eventsUrl(since) {
  const url = new URL(`${BASE}/events`, location.origin);
  // EventSource cannot send headers; the API accepts ?api_key= (and the access log hides it).
  url.searchParams.set('api_key', getKey());
  if (since) url.searchParams.set('since', since);
  return url.toString();
}
