/*  The gallery: the user's complete photos, newest first by date uploaded
    or by date taken (sort=created_at|taken_at; a photo without a date taken
    goes by its upload time), a page at a time as the grid scrolls
    (GET /api/v1/photos with its cursor), under a header per month and per
    day, filtered by a tag, from a date jumped to (to=<the day after>), with
    photos that complete while it is open put in their place. Each tile
    paints the photo's ThumbHash placeholder at once and its thumbnail over
    it when that arrives; a damaged original is flagged in words. And the
    photo view: the preview, EXIF details, the integrity check, similar
    photos (GET /api/v1/photos/{id}/similar), tags to add and remove, the
    original to download, delete.

    Thumbnails, previews and originals need the Authorization header, so
    they are fetched and shown as blob: URLs (revoked when their tile or the
    view goes); at most 4 fetches run at once, for the tiles in view first.
*/
import * as api from './api.js';
import { onPhotoEvent } from './events.js';
import { placeholder } from './placeholder.js';
import { $, el, formatBytes, formatDate, formatTaken, limiter } from './ui.js';

const PAGE = 48;
const SORT_KEY = 'rapidphoto.sort';
const fetchLimit = limiter(4);
const DAMAGED = 'Damaged: the stored original no longer matches the bytes uploaded';

const state = {
  tag: '',
  sort: localStorage.getItem(SORT_KEY) === 'taken_at' ? 'taken_at' : 'created_at',
  to: '',                   //  a jump: photos before this day ('YYYY-MM-DD', exclusive)
  months: new Map(),        //  'YYYY-MM' -> { node, days: Map('YYYY-MM-DD' -> { node, list }) }
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
let similarUrls = [];
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
    sort: $('#gallery-sort', root),
    jumpForm: $('#timeline-form', root),
    jumpDate: $('#jump-date', root),
    jumpLatest: $('#jump-latest', root),
    integrity: $('#photo-integrity'),
    similar: $('#photo-similar'),
    similarList: $('#similar-list'),
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
  dom.sort.value = state.sort;
  dom.sort.addEventListener('change', () => {
    state.sort = dom.sort.value === 'taken_at' ? 'taken_at' : 'created_at';
    localStorage.setItem(SORT_KEY, state.sort);
    reset();
  });
  dom.jumpForm.addEventListener('submit', (event) => {
    event.preventDefault();
    jumpTo(dom.jumpDate.value);
  });
  dom.jumpLatest.addEventListener('click', () => jumpTo(''));
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
  state.months.clear();
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

//  From a day ('YYYY-MM-DD': that day and before), or '' for the latest
function jumpTo(day) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || '');
  state.to = m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3] + 1)).toISOString().slice(0, 10) : '';
  dom.jumpDate.value = m ? day : '';
  dom.jumpLatest.hidden = !state.to;
  reset();
  window.scrollTo(0, 0);
}

function loadMore() {
  if (state.loading || state.done || !api.token()) return state.loading;
  const generation = state.generation;
  const params = new URLSearchParams({ limit: String(PAGE), status: 'complete', sort: state.sort });
  if (state.tag) params.set('tag', state.tag);
  if (state.to) params.set('to', state.to);
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
  const until = state.to ? `up to ${dayLabel(previousDay(state.to), true)}` : '';
  if (n === 0 && state.done)
    dom.status.textContent = state.tag ? `No photos tagged “${state.tag}”${until ? ' ' + until : ''}.`
      : until ? `No photos ${until}.` : 'No photos yet: upload some.';
  else
    dom.status.textContent = (state.tag ? `Tagged “${state.tag}”: ` : '') +
      `${n}${state.done ? '' : '+'} ${n === 1 ? 'photo' : 'photos'}` +
      (until ? ` ${until}` : '') + (state.sort === 'taken_at' ? ', by date taken' : ', by date uploaded');
  for (const photo of state.photos) for (const tag of photo.tags || []) state.knownTags.add(tag);
  dom.knownTags.replaceChildren(...[...state.knownTags].sort().slice(0, 200).map((t) => el('option', { value: t })));
}

//  ---------------------------------------------------------------------------
//  Days and months

//  A date taken as an instant for ordering, as the server orders it: with
//  its offset, or read as UTC when it has none (what the camera wrote)
function takenTime(text) {
  return Date.parse(/(Z|[+-]\d{2}:?\d{2})$/.test(text) ? text : text + 'Z');
}

function sortTime(photo) {
  if (state.sort === 'taken_at' && photo.taken_at) {
    const t = takenTime(photo.taken_at);
    if (Number.isFinite(t)) return t;
  }
  return Date.parse(photo.created_at);
}

function localDay(time) {
  const d = new Date(time);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

//  The day a tile is listed under: the day taken as the camera wrote it
//  (its local date), else the day uploaded in this browser's time zone
function dayOf(photo) {
  if (state.sort === 'taken_at' && photo.taken_at && /^\d{4}-\d{2}-\d{2}/.test(photo.taken_at)) return photo.taken_at.slice(0, 10);
  return localDay(Date.parse(photo.created_at));
}

function previousDay(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10);
}

function dayLabel(day, withYear) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(undefined, {
    timeZone: 'UTC', weekday: withYear ? undefined : 'short', day: 'numeric', month: 'long', year: withYear ? 'numeric' : undefined,
  });
}

function monthLabel(month) {
  const [y, m] = month.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(undefined, { timeZone: 'UTC', month: 'long', year: 'numeric' });
}

//  The list a photo of `day` goes in, made (with its headers) when new: a
//  new month or day goes before the section of `next` (the photo after it
//  in the order) when there is one, else last.
function dayList(day, next) {
  const month = day.slice(0, 7);
  let m = state.months.get(month);
  if (!m) {
    const node = el('section', { class: 'month', dataset: { month } },
      el('h3', { class: 'month-head' }, monthLabel(month)));
    m = { node, days: new Map() };
    state.months.set(month, m);
    const after = next && state.months.get(dayOf(next).slice(0, 7));
    dom.grid.insertBefore(node, after && after !== m ? after.node : null);
  }
  let d = m.days.get(day);
  if (!d) {
    const list = el('ul', { class: 'grid', 'aria-label': dayLabel(day, true) });
    const node = el('section', { class: 'day', dataset: { day } }, el('h4', { class: 'day-head' }, dayLabel(day, false)), list);
    d = { node, list };
    m.days.set(day, d);
    const after = next && dayOf(next).slice(0, 7) === month && m.days.get(dayOf(next));
    m.node.insertBefore(node, after && after !== d ? after.node : null);
  }
  return d.list;
}

//  A tile's list lost it: drop the day's and the month's headers if empty
function prune(list) {
  if (list.children.length > 0) return;
  const dayNode = list.closest('.day');
  const monthNode = dayNode && dayNode.closest('.month');
  if (!dayNode || !monthNode) return;
  const m = state.months.get(monthNode.dataset.month);
  if (m) m.days.delete(dayNode.dataset.day);
  dayNode.remove();
  if (!monthNode.querySelector('.day')) {
    state.months.delete(monthNode.dataset.month);
    monthNode.remove();
  }
}

//  ---------------------------------------------------------------------------
//  Tiles

function damaged(photo) {
  return photo.integrity === 'damaged';
}

function tile(photo) {
  const img = el('img', { alt: photo.filename || 'photo', width: 256, height: 256, decoding: 'async' });
  const label = (photo.filename || 'photo') + (damaged(photo) ? ` (${DAMAGED})` : '');
  const link = el('a', { href: `#/photo/${encodeURIComponent(photo.id)}`, 'aria-label': label });
  const painted = placeholder(photo);
  if (painted) link.append(painted);
  link.append(img);
  const node = el('li', { class: 'tile', dataset: { id: photo.id } }, link);
  if (painted) node.dataset.placeholder = 'painted';
  markDamaged(node, photo);
  tileObserver.observe(node);
  return node;
}

//  Flagged in words (and a title), not by colour alone
function markDamaged(node, photo) {
  const flag = node.querySelector('.flag');
  node.classList.toggle('damaged', damaged(photo));
  if (damaged(photo) && !flag) {
    node.querySelector('a').append(el('span', { class: 'flag' }, '⚠ Damaged'));
    node.title = DAMAGED;
  } else if (!damaged(photo) && flag) {
    flag.remove();
    node.removeAttribute('title');
  }
}

function append(photo) {
  if (state.byId.has(photo.id)) return;
  const node = tile(photo);
  state.photos.push(photo);
  state.byId.set(photo.id, { photo, node, url: null });
  dayList(dayOf(photo), null).append(node);
}

//  The server's order: newest first by the sort key, then by id.
function newer(a, b) {
  const ka = sortTime(a);
  const kb = sortTime(b);
  if (ka !== kb) return ka > kb;
  return a.id > b.id;
}

//  A photo that completed while the gallery is open: in its place in that
//  order, unless it belongs to a page not loaded yet.
function insert(photo) {
  if (state.byId.has(photo.id)) return;
  if (state.tag && !(photo.tags || []).includes(state.tag)) return;
  if (state.to && !(sortTime(photo) < Date.parse(state.to + 'T00:00:00Z'))) return;
  let index = state.photos.findIndex((p) => newer(photo, p));
  if (index < 0) {
    if (!state.done) return;
    index = state.photos.length;
  }
  const node = tile(photo);
  const next = state.photos[index] || null;
  state.photos.splice(index, 0, photo);
  state.byId.set(photo.id, { photo, node, url: null });
  const day = dayOf(photo);
  const list = dayList(day, next);
  const nextEntry = next && dayOf(next) === day ? state.byId.get(next.id) : null;
  list.insertBefore(node, nextEntry && nextEntry.node.parentNode === list ? nextEntry.node : null);
  updateStatus();
}

function removeFromGrid(id) {
  const entry = state.byId.get(id);
  if (!entry) return;
  if (entry.url) URL.revokeObjectURL(entry.url);
  tileObserver.unobserve(entry.node);
  const list = entry.node.parentNode;
  entry.node.remove();
  if (list) prune(list);
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
        await img.decode().catch(() => {});
        if (!state.byId.has(id)) return;
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
  showSimilar(id, []);
  const known = state.byId.get(id);
  if (known) fill(known.photo);
  try {
    const photo = await api.call(`/api/v1/photos/${encodeURIComponent(id)}`);
    if (openId !== id) return;
    fill(photo);
    if (known) {
      known.photo = photo;
      markDamaged(known.node, photo);
    }
    if (photo.status === 'complete') {
      loadSimilar(id);
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

//  The photos that look like this one (its near-duplicates: resized,
//  recompressed, converted), nearest first; the row shows only when there
//  are some. Each opens that photo.
async function loadSimilar(id) {
  try {
    const answer = await api.call(`/api/v1/photos/${encodeURIComponent(id)}/similar`);
    if (openId !== id) return;
    showSimilar(id, (answer && answer.items) || []);
  } catch (err) {
    if (openId === id) showSimilar(id, []);
  }
}

function showSimilar(id, items) {
  for (const url of similarUrls) URL.revokeObjectURL(url);
  similarUrls = [];
  const photos = items.filter((p) => p && p.id && p.id !== id);
  dom.similar.hidden = photos.length === 0;
  dom.similarList.replaceChildren(...photos.map((photo) => {
    const img = el('img', { alt: '', width: 96, height: 96, decoding: 'async' });
    const distance = Number.isFinite(photo.distance) ? `, ${photo.distance} of 64 bits apart` : '';
    const link = el('a', { href: `#/photo/${encodeURIComponent(photo.id)}`, 'aria-label': `${photo.filename || 'photo'}${distance}`,
      title: `${photo.filename || 'photo'}${distance}` });
    const painted = placeholder(photo);
    if (painted) link.append(painted);
    link.append(img);
    const node = el('li', { class: 'tile similar-tile', dataset: { id: photo.id, distance: photo.distance } }, link);
    markDamaged(node, photo);
    if (photo.urls && photo.urls.thumbnail) {
      fetchLimit(async () => {
        if (openId !== id) return;
        const blob = await api.blob(photo.urls.thumbnail);
        if (openId !== id) return;
        const url = URL.createObjectURL(blob);
        similarUrls.push(url);
        img.src = url;
        await img.decode().catch(() => {});
        node.classList.add('loaded');
      }).catch(() => node.classList.add('broken'));
    }
    return node;
  }));
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
  showSimilar(null, []);
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
    ['Integrity', photo.integrity === 'damaged' ? `Damaged (checked ${formatDate(photo.checked_at) || 'recently'})`
      : photo.integrity === 'ok' ? `Verified intact (checked ${formatDate(photo.checked_at) || 'recently'})` : ''],
  ];
  dom.details.replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { field: k.toLowerCase() } }, v)]));
  dom.integrity.hidden = !damaged(photo);
  dom.integrity.textContent = damaged(photo)
    ? `⚠ ${DAMAGED}${photo.checked_at ? ` (found ${formatDate(photo.checked_at)})` : ''}. ` +
      'Nothing was deleted; restore the original from a backup, or download what is left.'
    : '';
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
