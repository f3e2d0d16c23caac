/*  The upload queue: files picked, dropped or shared become items, uploaded
    CONCURRENCY at a time over tus (tus-js-client, resumable: an upload cut
    by the network resumes from the server's offset), each then followed
    through the server's states by the event stream.

    An item's state: waiting → uploading → queued → processing → complete,
    or failed (with the server's reason), duplicate (the user had the bytes
    already; the id of the photo they have is kept), canceled. A complete
    photo that looks like ones the user has (the complete event's `similar`:
    resized, recompressed or converted copies) says so; it is kept, and the
    photo view shows them side by side. States only
    move forward, whatever order the upload's answer and the stream's
    events arrive in. The queue lives in this module, not in a view: moving
    between the upload screen and the gallery never touches it.
*/
import * as api from './api.js';
import { onPhotoEvent, whenConnected } from './events.js';
import { $, el, formatBytes } from './ui.js';

const CONCURRENCY = 3;                  //  with the event stream and thumbnails, within 6 connections
const CHUNK = 8 * 1024 * 1024;
const RANK = { waiting: 0, uploading: 1, queued: 2, processing: 3, complete: 4, failed: 4, duplicate: 4, canceled: 4 };
const LABEL = {
  waiting: 'Waiting', uploading: 'Uploading', queued: 'Queued', processing: 'Processing',
  complete: 'Complete', failed: 'Failed', duplicate: 'Duplicate', canceled: 'Canceled',
};
const FINISHED = new Set(['complete', 'failed', 'duplicate', 'canceled']);

const items = [];                       //  in the order added
const byPhoto = new Map();              //  photo id -> item
const early = new Map();                //  events for ids not yet known (bounded)
const changeListeners = new Set();
let active = 0;
let nextKey = 1;
let dom = null;
let renderQueued = false;
const dirty = new Set();

export function onChange(fn) {
  changeListeners.add(fn);
}

export function stats() {
  const counts = { total: 0, waiting: 0, uploading: 0, queued: 0, processing: 0, complete: 0, failed: 0, duplicate: 0, canceled: 0 };
  let bytes = 0;
  let sent = 0;
  for (const item of items) {
    counts.total++;
    counts[item.state]++;
    if (item.state === 'canceled') continue;
    bytes += item.size;
    sent += RANK[item.state] >= RANK.queued && item.state !== 'failed' ? item.size : item.sent;
  }
  counts.busy = counts.waiting + counts.uploading + counts.queued + counts.processing;
  return { counts, bytes, sent };
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

//  ---------------------------------------------------------------------------
//  Adding and running

export function add(files, options = {}) {
  const list = Array.from(files).filter((f) => f && f.size !== undefined);
  if (list.length === 0) return 0;
  const batchId = randomId();
  const tags = (options.tags || '').split(',').map((t) => t.trim()).filter(Boolean).join(',');
  for (const file of list) {
    const item = {
      key: nextKey++, file, name: file.name || 'shared photo', size: file.size, batchId, tags,
      state: 'waiting', sent: 0, error: '', photoId: null, duplicateOf: null, similar: [], upload: null,
      networkError: false, changedAt: Date.now(), node: null,
    };
    items.push(item);
    if (dom) dom.list.append(row(item));
    touch(item);
  }
  pump();
  return list.length;
}

function setState(item, state, error) {
  if (item.state === 'canceled') return;
  if (RANK[state] < RANK[item.state] && !(item.state === 'failed' && state === 'waiting')) return;
  if (RANK[state] === RANK[item.state] && state === item.state && error === undefined) return;
  item.state = state;
  if (error !== undefined) item.error = error;
  item.changedAt = Date.now();
  touch(item);
}

export function pump() {
  if (!api.token() || !api.isReachable()) return;
  for (const item of items) {
    if (active >= CONCURRENCY) break;
    if (item.state === 'waiting') start(item);
  }
}

function lastSegment(url) {
  return decodeURIComponent(String(url).replace(/[?#].*$/, '').split('/').pop() || '');
}

function learnPhotoId(item, id) {
  if (!id || item.photoId === id) return;
  item.photoId = id;
  byPhoto.set(id, item);
  const event = early.get(id);
  if (event) {
    early.delete(id);
    apply(item, event);
  }
}

async function start(item) {
  active++;
  item.sent = 0;
  item.error = '';
  setState(item, 'uploading');
  await whenConnected();
  if (item.state !== 'uploading')          //  canceled while waiting for the stream
    return;
  const resume = item.upload && item.networkError;
  if (!resume) item.upload = makeUpload(item);
  item.networkError = false;
  //  The first try of a file may go on with an upload this browser began
  //  before (the page was closed mid-way and the file added again); a retry
  //  after the server refused it starts afresh.
  if (!resume && !item.tried) {
    try {
      const previous = await item.upload.findPreviousUploads();
      if (previous.length > 0) item.upload.resumeFromPreviousUpload(previous[0]);
    } catch (_) { /* nothing stored: a new upload */ }
  }
  item.tried = true;
  item.upload.start();
}

function makeUpload(item) {
  const metadata = { filename: item.name, filetype: item.file.type || 'application/octet-stream', batch_id: item.batchId };
  if (item.tags) metadata.tags = item.tags;
  let finalId = null;
  let duplicate = false;
  const upload = new window.tus.Upload(item.file, {
    endpoint: location.origin + '/api/v1/tus',
    chunkSize: CHUNK,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    metadata,
    removeFingerprintOnSuccess: true,
    onBeforeRequest(req) {
      const token = api.token();
      if (token) req.setHeader('Authorization', 'Bearer ' + token);
    },
    onUploadUrlAvailable() {
      learnPhotoId(item, lastSegment(upload.url));
    },
    onProgress(sent) {
      item.sent = sent;
      touch(item);
    },
    onAfterResponse(req, res) {
      const photoId = res.getHeader('Photo-Id');
      if (photoId) {
        finalId = photoId;
        duplicate = res.getHeader('Photo-Duplicate') === 'true';
      }
      api.observe(res.getStatus());
    },
    onSuccess() {
      active--;
      item.sent = item.size;
      if (duplicate) {
        item.duplicateOf = finalId;
        setState(item, 'duplicate');
      } else {
        learnPhotoId(item, finalId);
        setState(item, 'queued');
      }
      pump();
    },
    onError(err) {
      active--;
      failed(item, err).finally(pump);
    },
  });
  return upload;
}

async function failed(item, err) {
  if (item.state === 'canceled') return;
  const response = err && err.originalResponse;
  const status = response ? response.getStatus() : 0;
  if (!response || status === 0) {
    api.observe(0);
    item.networkError = true;
    setState(item, 'failed', 'The server could not be reached; the upload resumes when it is back.');
    return;
  }
  if (status === 401) {
    //  The session expired: wait for the next sign-in, then resume
    item.networkError = true;
    item.state = 'waiting';
    item.error = '';
    touch(item);
    return;
  }
  let reason = '';
  try {
    const body = JSON.parse(response.getBody() || '{}');
    reason = body.detail || body.title || '';
  } catch (_) { /* not a problem document */ }
  if (!reason) reason = `The server refused the upload (HTTP ${status}).`;
  item.networkError = status >= 500;
  setState(item, 'failed', reason);
}

//  ---------------------------------------------------------------------------
//  Actions

export function cancel(item) {
  if (item.state === 'waiting') {
    setState(item, 'canceled');
  } else if (item.state === 'uploading') {
    item.state = 'canceled';
    item.changedAt = Date.now();
    touch(item);
    active--;
    if (item.upload) {
      //  Terminating the tus upload removes a photo still uploading. The
      //  last bytes may have reached the server before the abort did: the
      //  upload is then complete, the terminate finds nothing, and the photo
      //  is deleted by its id instead, so a cancel leaves nothing behind.
      const photoId = item.photoId;
      item.upload.abort(true).catch(() => { /* already gone */ }).finally(() => {
        if (!photoId) return;
        api.call(`/api/v1/photos/${encodeURIComponent(photoId)}`, { method: 'DELETE' })
          .catch(() => { /* 404: the terminate removed it */ });
      });
    }
    pump();
  }
}

export function retry(item) {
  if (item.state !== 'failed') return;
  item.error = '';
  if (!item.networkError) item.photoId = null;      //  a new upload, a new photo
  setState(item, 'waiting');
  pump();
}

export function retryFailed() {
  for (const item of items) if (item.state === 'failed') retry(item);
}

export function cancelAll() {
  for (const item of items) if (item.state === 'waiting' || item.state === 'uploading') cancel(item);
}

export function clearFinished() {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (item.state === 'complete' || item.state === 'duplicate' || item.state === 'canceled') {
      items.splice(i, 1);
      if (item.photoId) byPhoto.delete(item.photoId);
      if (item.node) item.node.remove();
      dirty.delete(item);
    }
  }
  schedule();
}

//  When the connection comes back, uploads cut by it go on by themselves.
export function resumeAfterOutage() {
  for (const item of items)
    if (item.state === 'failed' && item.networkError) {
      item.error = '';
      item.state = 'waiting';
      touch(item);
    }
  pump();
}

//  ---------------------------------------------------------------------------
//  Server states

function apply(item, event) {
  switch (event.status) {
    case 'uploading':
      break;
    case 'queued':
    case 'processing':
    case 'complete':
      if (event.status === 'complete' && Array.isArray(event.similar)) {
        item.similar = event.similar.filter((id) => typeof id === 'string' && id !== item.photoId);
        touch(item);
      }
      if (item.state === 'uploading' || RANK[event.status] >= RANK[item.state]) setState(item, event.status);
      break;
    case 'failed':
      setState(item, 'failed', event.error || 'Processing failed.');
      item.networkError = false;
      break;
    case 'duplicate':
      item.duplicateOf = event.duplicate_of || item.duplicateOf;
      setState(item, 'duplicate');
      break;
    default:
      break;
  }
}

onPhotoEvent((event) => {
  if (!event || !event.id) return;
  const item = byPhoto.get(event.id);
  if (item) {
    apply(item, event);
    return;
  }
  if (event.status === 'uploading' && !early.has(event.id)) return;
  early.set(event.id, event);
  if (early.size > 1000) early.delete(early.keys().next().value);
});

//  A state the stream did not bring (it was down, or connected late) is
//  read from the photo itself after a while.
setInterval(async () => {
  if (!api.token() || !api.isReachable()) return;
  const now = Date.now();
  const stale = items.filter((i) => i.photoId && (i.state === 'queued' || i.state === 'processing') && now - i.changedAt > 8000);
  for (const item of stale.slice(0, 10)) {
    try {
      const photo = await api.call(`/api/v1/photos/${encodeURIComponent(item.photoId)}`);
      item.changedAt = Date.now();
      apply(item, { status: photo.status, error: photo.error });
    } catch (err) {
      if (err.status === 404) setState(item, 'failed', 'The photo was deleted.');
    }
  }
}, 4000);

window.addEventListener('beforeunload', (event) => {
  if (items.some((i) => i.state === 'waiting' || i.state === 'uploading')) {
    event.preventDefault();
    event.returnValue = '';
  }
});

//  ---------------------------------------------------------------------------
//  The list on the upload screen

export function mount(root) {
  dom = {
    batch: $('#batch', root),
    summary: $('#batch-summary', root),
    progress: $('#batch-progress', root),
    list: $('#upload-list', root),
    retry: $('#retry-failed', root),
    cancel: $('#cancel-all', root),
    clear: $('#clear-done', root),
  };
  dom.retry.addEventListener('click', retryFailed);
  dom.cancel.addEventListener('click', cancelAll);
  dom.clear.addEventListener('click', clearFinished);
  for (const item of items) dom.list.append(row(item));
  schedule();
}

function row(item) {
  const bar = el('progress', { max: 1, value: 0, 'aria-label': `${item.name} upload` });
  const state = el('span', { class: 'state' });
  const message = el('p', { class: 'reason' });
  const action = el('button', { type: 'button', class: 'small', onclick: () => onAction(item) });
  const node = el('li', { class: 'upload', dataset: { key: item.key } },
    el('div', { class: 'upload-line' },
      el('span', { class: 'name', title: item.name }, item.name),
      el('span', { class: 'size muted' }, formatBytes(item.size)),
      state,
      action),
    bar, message);
  item.node = node;
  item.parts = { bar, state, message, action };
  dirty.add(item);
  return node;
}

function onAction(item) {
  if (item.state === 'failed') retry(item);
  else if (item.state === 'waiting' || item.state === 'uploading') cancel(item);
}

function touch(item) {
  dirty.add(item);
  schedule();
}

function schedule() {
  for (const fn of changeListeners) fn();
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

function render() {
  renderQueued = false;
  if (!dom) return;
  for (const item of dirty) renderItem(item);
  dirty.clear();
  const { counts, bytes, sent } = stats();
  dom.batch.hidden = counts.total === 0;
  dom.progress.max = Math.max(bytes, 1);
  dom.progress.value = sent;
  const parts = [];
  for (const state of ['complete', 'duplicate', 'failed', 'processing', 'queued', 'uploading', 'waiting', 'canceled'])
    if (counts[state]) parts.push(`${counts[state]} ${LABEL[state].toLowerCase()}`);
  const percent = bytes ? Math.floor((sent / bytes) * 100) : 0;
  dom.summary.textContent = `${counts.total} ${counts.total === 1 ? 'photo' : 'photos'}: ${parts.join(', ')}` +
    (counts.waiting + counts.uploading ? ` · ${percent}% sent` : '');
  dom.retry.hidden = counts.failed === 0;
  dom.cancel.hidden = counts.waiting + counts.uploading === 0;
  dom.clear.hidden = counts.complete + counts.duplicate + counts.canceled === 0;
}

function renderItem(item) {
  if (!item.node) return;
  const { bar, state, message, action } = item.parts;
  item.node.dataset.state = item.state;
  if (item.photoId) item.node.dataset.photoId = item.photoId;
  if (item.similar.length > 0) item.node.dataset.similar = String(item.similar.length);
  const percent = item.size ? Math.floor((item.sent / item.size) * 100) : 100;
  state.textContent = item.state === 'uploading' ? `Uploading ${percent}%` : LABEL[item.state];
  state.className = 'state state-' + item.state;
  bar.max = Math.max(item.size, 1);
  bar.value = item.state === 'failed' || item.state === 'canceled' || item.state === 'waiting'
    ? item.sent : RANK[item.state] >= RANK.queued ? bar.max : item.sent;
  let text = '';
  if (item.state === 'failed') text = item.error;
  else if (item.state === 'duplicate') text = 'Already in your library' + (item.duplicateOf ? '' : '.');
  else if (item.state === 'complete' && item.similar.length > 0)
    text = `Looks like ${item.similar.length === 1 ? '1 photo' : `${item.similar.length} photos`} you have`;
  message.textContent = text;
  message.hidden = !text;
  if (item.state === 'complete' && item.similar.length > 0 && item.photoId) {
    message.append(': ', el('a', { href: `#/photo/${encodeURIComponent(item.photoId)}` }, 'compare them'));
  }
  if (item.state === 'duplicate' && item.duplicateOf) {
    message.append(': ', el('a', { href: `#/photo/${encodeURIComponent(item.duplicateOf)}` }, 'see the photo you have'));
  }
  const label = item.state === 'failed' ? 'Retry' : item.state === 'waiting' || item.state === 'uploading' ? 'Cancel' : '';
  action.textContent = label;
  action.hidden = !label;
  action.setAttribute('aria-label', label ? `${label} ${item.name}` : '');
}
