/*  The gallery: the user's complete photos, newest first, a page at a time
    as the grid scrolls (GET /api/v1/photos with its cursor), filtered by a
    tag, with photos that complete while it is open put in their place. And
    the photo view: the preview, EXIF details, tags to add and remove, the
    original to download, delete.

    Thumbnails, previews and originals need the Authorization header, so
    they are fetched and shown as blob: URLs (revoked when their tile or the
    view goes); at most 4 fetches run at once, for the tiles in view first.
*/
import * as api from './api.js';
import { onPhotoEvent } from './events.js';
import { $, el, formatBytes, formatDate, formatTaken, limiter } from './ui.js';

const PAGE = 48;
const fetchLimit = limiter(4);

const state = {
  tag: '',
  photos: [],               //  loaded, newest first
  byId: new Map(),          //  id -> { photo, node, url }
  cursor: null,
  done: false,
  loading: null,
  generation: 0,            //  bumps on reset: late answers are dropped
  loaded: false,
  knownTags: new Set(),
};
let dom = null;
let tileObserver = null;
let moreObserver = null;
let openId = null;
let previewUrl = null;
let onNavigate = () => {};

export function mount(root, navigate) {
  onNavigate = navigate;
  dom = {
    grid: $('#grid', root),
    more: $('#grid-more', root),
    status: $('#gallery-status', root),
    filterForm: $('#filter-form', root),
    filterTag: $('#filter-tag', root),
    filterClear: $('#filter-clear', root),
    knownTags: $('#known-tags', root),
    dialog: $('#photo'),
    title: $('#photo-title'),
    preview: $('#photo-preview'),
    details: $('#photo-details'),
    tags: $('#photo-tags'),
    tagForm: $('#tag-form'),
    tagInput: $('#tag-input'),
    message: $('#photo-message'),
    download: $('#photo-download'),
    remove: $('#photo-delete'),
    close: $('#photo-close'),
    prev: $('#photo-prev'),
    next: $('#photo-next'),
  };
  tileObserver = new IntersectionObserver(onTilesVisible, { rootMargin: '600px 0px' });
  moreObserver = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }, { rootMargin: '800px 0px' });
  moreObserver.observe(dom.more);
  dom.filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    setFilter(dom.filterTag.value.trim());
  });
  dom.filterClear.addEventListener('click', () => setFilter(''));
  dom.close.addEventListener('click', () => closePhoto());
  dom.dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    closePhoto();
  });
  //  On the document: the focused button may have been hidden (first or
  //  last photo), which leaves the focus on the body
  document.addEventListener('keydown', (event) => {
    if (!dom.dialog.open || event.target.closest('input, textarea')) return;
    if (event.key === 'ArrowLeft') step(-1);
    else if (event.key === 'ArrowRight') step(1);
  });
  dom.prev.addEventListener('click', () => step(-1));
  dom.next.addEventListener('click', () => step(1));
  dom.tagForm.addEventListener('submit', (event) => {
    event.preventDefault();
    addTag(dom.tagInput.value);
  });
  dom.download.addEventListener('click', download);
  dom.remove.addEventListener('click', removePhoto);
}

//  ---------------------------------------------------------------------------
//  The grid

export function show() {
  if (!state.loaded) reset();
  else if (!state.done) loadMore();
}

export function reset() {
  state.generation++;
  for (const entry of state.byId.values()) if (entry.url) URL.revokeObjectURL(entry.url);
  state.photos = [];
  state.byId.clear();
  state.cursor = null;
  state.done = false;
  state.loading = null;
  state.loaded = true;
  dom.grid.replaceChildren();
  dom.status.textContent = 'Loading…';
  loadMore();
}

function setFilter(tag) {
  state.tag = tag;
  dom.filterTag.value = tag;
  dom.filterClear.hidden = !tag;
  reset();
}

function loadMore() {
  if (state.loading || state.done || !api.token()) return state.loading;
  const generation = state.generation;
  const params = new URLSearchParams({ limit: String(PAGE), status: 'complete' });
  if (state.tag) params.set('tag', state.tag);
  if (state.cursor) params.set('cursor', state.cursor);
  state.loading = api.call('/api/v1/photos?' + params).then((page) => {
    if (generation !== state.generation) return;
    for (const photo of page.items || []) append(photo);
    state.cursor = page.next_cursor || null;
    state.done = !state.cursor;
    updateStatus();
  }).catch((err) => {
    if (generation !== state.generation) return;
    dom.status.textContent = err.status === 0 ? 'The server cannot be reached; the gallery loads when it is back.'
      : `The gallery could not be loaded: ${err.message}`;
  }).finally(() => {
    if (generation !== state.generation) return;
    state.loading = null;
    //  Still room on the screen: the sentinel stays in view, so ask again
    if (!state.done && dom.more.getBoundingClientRect().top < window.innerHeight + 800) loadMore();
  });
  return state.loading;
}

function updateStatus() {
  const n = state.photos.length;
  if (n === 0 && state.done)
    dom.status.textContent = state.tag ? `No photos tagged “${state.tag}”.` : 'No photos yet: upload some.';
  else
    dom.status.textContent = (state.tag ? `Tagged “${state.tag}”: ` : '') +
      `${n}${state.done ? '' : '+'} ${n === 1 ? 'photo' : 'photos'}`;
  for (const photo of state.photos) for (const tag of photo.tags || []) state.knownTags.add(tag);
  dom.knownTags.replaceChildren(...[...state.knownTags].sort().slice(0, 200).map((t) => el('option', { value: t })));
}

function tile(photo) {
  const img = el('img', { alt: photo.filename || 'photo', width: 256, height: 256, decoding: 'async' });
  const node = el('li', { class: 'tile', dataset: { id: photo.id } },
    el('a', { href: `#/photo/${encodeURIComponent(photo.id)}`, 'aria-label': photo.filename || 'photo' }, img));
  tileObserver.observe(node);
  return node;
}

function append(photo) {
  if (state.byId.has(photo.id)) return;
  const node = tile(photo);
  state.photos.push(photo);
  state.byId.set(photo.id, { photo, node, url: null });
  dom.grid.append(node);
}

//  The server's order: newest first by created_at, then by id.
function newer(a, b) {
  if (a.created_at !== b.created_at) return a.created_at > b.created_at;
  return a.id > b.id;
}

//  A photo that completed while the gallery is open: in its place in that
//  order, unless it belongs to a page not loaded yet.
function insert(photo) {
  if (state.byId.has(photo.id)) return;
  if (state.tag && !(photo.tags || []).includes(state.tag)) return;
  let index = state.photos.findIndex((p) => newer(photo, p));
  if (index < 0) {
    if (!state.done) return;
    index = state.photos.length;
  }
  const node = tile(photo);
  state.photos.splice(index, 0, photo);
  state.byId.set(photo.id, { photo, node, url: null });
  const before = dom.grid.children[index];
  dom.grid.insertBefore(node, before || null);
  updateStatus();
}

function removeFromGrid(id) {
  const entry = state.byId.get(id);
  if (!entry) return;
  if (entry.url) URL.revokeObjectURL(entry.url);
  tileObserver.unobserve(entry.node);
  entry.node.remove();
  state.byId.delete(id);
  state.photos = state.photos.filter((p) => p.id !== id);
  updateStatus();
}

function onTilesVisible(entries) {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    tileObserver.unobserve(entry.target);
    const id = entry.target.dataset.id;
    const generation = state.generation;
    fetchLimit(async () => {
      const item = state.byId.get(id);
      if (!item || generation !== state.generation) return;
      try {
        const blob = await api.blob(item.photo.urls.thumbnail);
        if (generation !== state.generation || !state.byId.has(id)) return;
        item.url = URL.createObjectURL(blob);
        const img = item.node.querySelector('img');
        img.src = item.url;
        item.node.classList.add('loaded');
      } catch (err) {
        item.node.classList.add('broken');
        item.node.title = 'The thumbnail could not be loaded';
        if (err.status === 0) {
          //  Try again when it scrolls into view once the server is back
          setTimeout(() => tileObserver.observe(item.node), 5000);
        }
      }
    });
  }
}

const pendingComplete = new Set();
onPhotoEvent((event) => {
  if (!state.loaded || !event || !event.id) return;
  if (event.status === 'complete' && !state.byId.has(event.id) && !pendingComplete.has(event.id)) {
    pendingComplete.add(event.id);
    api.call(`/api/v1/photos/${encodeURIComponent(event.id)}`).then((photo) => {
      if (photo.status === 'complete') insert(photo);
    }).catch(() => { /* deleted meanwhile, or unreachable: the next load has it */ })
      .finally(() => pendingComplete.delete(event.id));
  }
});

//  ---------------------------------------------------------------------------
//  The photo view

export async function openPhoto(id) {
  if (!dom.dialog.open) dom.dialog.showModal();
  if (openId === id) return;
  openId = id;
  dom.message.textContent = '';
  dom.title.textContent = '';
  dom.details.replaceChildren();
  dom.tags.replaceChildren();
  setPreview(null);
  const known = state.byId.get(id);
  if (known) fill(known.photo);
  try {
    const photo = await api.call(`/api/v1/photos/${encodeURIComponent(id)}`);
    if (openId !== id) return;
    fill(photo);
    if (known) known.photo = photo;
    if (photo.status === 'complete') {
      if (known && known.url) dom.preview.src = known.url;       //  the thumbnail until the preview arrives
      const blob = await api.blob(photo.urls.preview);
      if (openId !== id) return;
      setPreview(URL.createObjectURL(blob));
    } else {
      dom.message.textContent = photo.status === 'failed' ? `Processing failed: ${photo.error || 'no reason given'}`
        : `This photo is ${photo.status}.`;
    }
  } catch (err) {
    if (openId !== id) return;
    dom.message.textContent = err.status === 404 ? 'This photo does not exist (deleted?).' : `Could not load the photo: ${err.message}`;
  }
}

function setPreview(url) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = url;
  if (url) dom.preview.src = url;
  else dom.preview.removeAttribute('src');
}

export function closePhoto(navigate = true) {
  if (dom.dialog.open) dom.dialog.close();
  openId = null;
  setPreview(null);
  if (navigate) onNavigate('#/gallery');
}

export function isPhotoOpen() {
  return dom.dialog.open;
}

function step(delta) {
  const index = state.photos.findIndex((p) => p.id === openId);
  if (index < 0) return;
  const next = state.photos[index + delta];
  if (next) onNavigate(`#/photo/${encodeURIComponent(next.id)}`);
  else if (delta > 0 && !state.done) loadMore();
}

function exposure(seconds) {
  if (!seconds) return '';
  if (seconds >= 1) return `${Number(seconds.toFixed(1))} s`;
  return `1/${Math.round(1 / seconds)} s`;
}

function coordinate(value, positive, negative) {
  return `${Math.abs(value).toFixed(5)}° ${value >= 0 ? positive : negative}`;
}

function fill(photo) {
  dom.title.textContent = photo.filename || 'Photo';
  dom.preview.alt = photo.filename || 'photo';
  const exif = photo.exif || {};
  const camera = [exif.make, exif.model].filter(Boolean).join(' ');
  const settings = [exposure(exif.exposure_time), exif.f_number ? `f/${Number(exif.f_number.toFixed(1))}` : '',
    exif.iso ? `ISO ${exif.iso}` : '', exif.focal_length ? `${Number(exif.focal_length.toFixed(1))} mm` : '']
    .filter(Boolean).join(' · ');
  const gps = exif.gps;
  const rows = [
    ['Camera', camera],
    ['Lens', exif.lens],
    ['Exposure', settings],
    ['Taken', formatTaken(photo.taken_at)],
    ['Location', gps && Number.isFinite(gps.lat) && Number.isFinite(gps.lon)
      ? `${coordinate(gps.lat, 'N', 'S')}, ${coordinate(gps.lon, 'E', 'W')}` +
        (Number.isFinite(gps.alt) ? `, ${Math.round(gps.alt)} m` : '') : ''],
    ['Size', photo.width && photo.height ? `${photo.width} × ${photo.height}` : ''],
    ['File', [formatBytes(photo.bytes), photo.content_type].filter(Boolean).join(', ')],
    ['Uploaded', formatDate(photo.created_at)],
  ];
  dom.details.replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { field: k.toLowerCase() } }, v)]));
  renderTags(photo);
  const index = state.photos.findIndex((p) => p.id === photo.id);
  dom.prev.hidden = index <= 0;
  dom.next.hidden = index < 0 || (index >= state.photos.length - 1 && state.done);
}

function renderTags(photo) {
  dom.tags.replaceChildren(...(photo.tags || []).map((tag) => el('li', { class: 'tag' },
    el('span', {}, tag),
    el('button', { type: 'button', class: 'icon small', 'aria-label': `Remove tag ${tag}`, onclick: () => removeTag(tag) }, '✕'))));
}

function updated(photo) {
  const entry = state.byId.get(photo.id);
  if (entry) entry.photo = photo;
  const index = state.photos.findIndex((p) => p.id === photo.id);
  if (index >= 0) state.photos[index] = photo;
  for (const tag of photo.tags || []) state.knownTags.add(tag);
  if (openId === photo.id) renderTags(photo);
}

async function addTag(text) {
  const tags = text.split(',').map((t) => t.trim()).filter(Boolean);
  if (!openId || tags.length === 0) return;
  const id = openId;
  try {
    const photo = await api.call(`/api/v1/photos/${encodeURIComponent(id)}/tags`, { method: 'POST', body: { tags } });
    dom.tagInput.value = '';
    dom.message.textContent = '';
    updated(photo);
  } catch (err) {
    dom.message.textContent = `The tag was not added: ${err.message}`;
  }
}

async function removeTag(tag) {
  const id = openId;
  if (!id) return;
  try {
    await api.call(`/api/v1/photos/${encodeURIComponent(id)}/tags/${encodeURIComponent(tag)}`, { method: 'DELETE' });
    const entry = state.byId.get(id);
    const photo = entry ? entry.photo : await api.call(`/api/v1/photos/${encodeURIComponent(id)}`);
    photo.tags = (photo.tags || []).filter((t) => t !== tag);
    updated(photo);
    if (state.tag === tag) removeFromGrid(id);
    dom.tagInput.focus();
  } catch (err) {
    dom.message.textContent = `The tag was not removed: ${err.message}`;
  }
}

async function download() {
  const id = openId;
  if (!id) return;
  const entry = state.byId.get(id);
  dom.message.textContent = 'Downloading…';
  try {
    const photo = entry ? entry.photo : await api.call(`/api/v1/photos/${encodeURIComponent(id)}`);
    const blob = await api.blob(photo.urls.original);
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: photo.filename || 'photo' });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    dom.message.textContent = '';
  } catch (err) {
    dom.message.textContent = `The download failed: ${err.message}`;
  }
}

async function removePhoto() {
  const id = openId;
  if (!id) return;
  const entry = state.byId.get(id);
  const name = entry ? entry.photo.filename : 'this photo';
  if (!window.confirm(`Delete ${name}? This cannot be undone.`)) return;
  try {
    await api.call(`/api/v1/photos/${encodeURIComponent(id)}`, { method: 'DELETE' });
    const index = state.photos.findIndex((p) => p.id === id);
    removeFromGrid(id);
    const next = state.photos[index] || state.photos[index - 1];
    if (next) onNavigate(`#/photo/${encodeURIComponent(next.id)}`);
    else closePhoto();
  } catch (err) {
    dom.message.textContent = `The photo was not deleted: ${err.message}`;
  }
}
