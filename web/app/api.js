/*  The API client: the session (a bearer token from POST /api/v1/auth/login,
    kept in localStorage until it expires or the user signs out), JSON
    calls, authenticated downloads as blobs, and the connection's health.

    Every call reports two conditions to whoever listens (app.js shows them):
    'unreachable' (the network failed, or the gateway answered 502/503/504)
    until a later call or a /healthz probe succeeds ('reachable'), and
    'expired' (a 401 on a signed-in call: the token is gone or too old).
*/
const KEY = 'rapidphoto.session';
const listeners = new Map();

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title || '';
    this.detail = detail || '';
  }
}

export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
}

function emit(name, value) {
  for (const fn of listeners.get(name) || []) fn(value);
}

//  ---------------------------------------------------------------------------
//  Session

let session = null;
try {
  session = JSON.parse(localStorage.getItem(KEY) || 'null');
} catch (_) {
  session = null;
}
if (session && (!session.token || Date.parse(session.expires_at) <= Date.now())) session = null;

export function currentSession() {
  return session;
}

export function token() {
  return session ? session.token : null;
}

export async function signIn(username, password) {
  const answer = await call('/api/v1/auth/login', {
    method: 'POST',
    body: { username, password },
    anonymous: true,
  });
  session = { token: answer.token, expires_at: answer.expires_at, user_id: answer.user_id, username };
  localStorage.setItem(KEY, JSON.stringify(session));
  emit('session', session);
  return session;
}

export function signOut() {
  session = null;
  localStorage.removeItem(KEY);
  emit('session', null);
}

//  Another tab signed in or out
window.addEventListener('storage', (event) => {
  if (event.key !== KEY) return;
  try {
    session = JSON.parse(event.newValue || 'null');
  } catch (_) {
    session = null;
  }
  emit('session', session);
});

//  ---------------------------------------------------------------------------
//  Reachability

let reachable = true;
let probe = null;

function setReachable(ok) {
  if (ok === reachable) return;
  reachable = ok;
  emit(ok ? 'reachable' : 'unreachable');
  if (!ok && !probe) {
    //  Probe until the gateway answers again; any successful call also ends it
    let delay = 1000;
    const tick = async () => {
      try {
        const r = await fetch('/healthz', { cache: 'no-store' });
        if (r.ok) {
          probe = null;
          setReachable(true);
          return;
        }
      } catch (_) { /* still down */ }
      delay = Math.min(delay * 2, 15000);
      probe = setTimeout(tick, delay);
    };
    probe = setTimeout(tick, delay);
  }
  if (ok && probe) {
    clearTimeout(probe);
    probe = null;
  }
}

export function isReachable() {
  return reachable;
}

//  Tell the client a request outside call() (tus, the event stream) got
//  this answer (a status, or 0 when the network failed).
export function observe(status) {
  if (status === 0 || status === 502 || status === 503 || status === 504) setReachable(false);
  else setReachable(true);
  if (status === 401 && session) {
    signOut('expired');
    emit('expired');
  }
}

//  ---------------------------------------------------------------------------
//  Calls

export function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  if (session) headers.Authorization = 'Bearer ' + session.token;
  return headers;
}

async function problem(response) {
  let title = response.statusText;
  let detail = '';
  try {
    const body = await response.json();
    title = body.title || title;
    detail = body.detail || '';
  } catch (_) { /* not JSON */ }
  return new ApiError(response.status, title, detail);
}

//  fetch() with the token; throws ApiError (status 0 when unreachable).
export async function request(path, options = {}) {
  const init = { method: options.method || 'GET', headers: options.anonymous ? {} : authHeaders(), signal: options.signal };
  if (options.body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    observe(0);
    throw new ApiError(0, 'Unreachable', 'the server cannot be reached; check the connection');
  }
  if (!options.anonymous || response.status !== 401) observe(response.status);
  if (!response.ok) throw await problem(response);
  return response;
}

export async function call(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  return response.json();
}

//  The bytes behind one of a photo's urls, as a Blob. In S3 mode the
//  gateway answers 302 to a presigned GET on the bucket: fetch() follows it
//  as a CORS request, and the browser drops the Authorization header when
//  the redirect leaves this origin (the Fetch standard; tests/web/s3.spec.mjs
//  checks Chromium does), so S3 sees only its own signature. That needs the
//  bucket's origin in the page's connect-src (gateway/static.c) and a CORS
//  rule on the bucket (README). redirect: 'manual' is no way round it: its
//  answer is opaque, without the Location.
export async function blob(path, options = {}) {
  const response = await request(path, options);
  return response.blob();
}
