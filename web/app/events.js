/*  Live photo states: GET /api/v1/events (Server-Sent Events) read with
    fetch() and a stream reader, because EventSource cannot send the
    Authorization header. The stream resumes where it stopped: every
    reconnection sends Last-Event-ID, so no state change is missed while the
    connection was down (the gateway keeps the events in its database).
*/
import { authHeaders, observe, token } from './api.js';

const handlers = new Set();
let controller = null;
let lastId = null;
let retryTimer = null;
let delay = 1000;
let wanted = false;
let connected = false;
let waiters = [];

export function onPhotoEvent(fn) {
  handlers.add(fn);
}

function dispatch(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') lastId = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data += (data ? '\n' : '') + value;
  }
  if (event !== 'photo' || !data) return;
  let payload;
  try {
    payload = JSON.parse(data);
  } catch (_) {
    return;
  }
  for (const fn of handlers) {
    try {
      fn(payload);
    } catch (err) {
      console.error('photo event handler', err);
    }
  }
}

async function run() {
  if (!wanted || !token()) return;
  controller = new AbortController();
  const headers = authHeaders({ Accept: 'text/event-stream' });
  if (lastId) headers['Last-Event-ID'] = lastId;
  try {
    const response = await fetch('/api/v1/events', { headers, signal: controller.signal, cache: 'no-store' });
    observe(response.status);
    if (!response.ok) throw new Error('events: HTTP ' + response.status);
    delay = 1000;
    connected = true;
    for (const resolve of waiters) resolve();
    waiters = [];
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (err instanceof TypeError) observe(0);
  }
  connected = false;
  //  Ended or failed: come back, resuming from the last id
  if (wanted) {
    retryTimer = setTimeout(run, delay);
    delay = Math.min(delay * 2, 15000);
  }
}

//  Resolves once the stream is open (at most after `ms`), so that uploads
//  started after it have every one of their events delivered.
export function whenConnected(ms = 3000) {
  if (connected) return Promise.resolve();
  return new Promise((resolve) => {
    waiters.push(resolve);
    setTimeout(resolve, ms);
  });
}

export function startEvents() {
  if (wanted) return;
  wanted = true;
  run();
}

export function stopEvents() {
  wanted = false;
  clearTimeout(retryTimer);
  if (controller) controller.abort();
  controller = null;
  lastId = null;
}

//  Reconnect now (the server is back): no need to wait for the backoff.
export function reconnectEvents() {
  if (!wanted) return;
  clearTimeout(retryTimer);
  delay = 1000;
  if (controller) controller.abort();
  run();
}
