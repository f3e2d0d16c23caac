/*  RapidPhoto's web app: sign in, then two screens (#/upload, #/gallery)
    and the photo view (#/photo/<id>), switched by the URL's hash so the
    page, and with it the upload queue, stays loaded. The banner says when
    the server is unreachable or the session has expired. Files shared to
    the installed app (sw.js keeps them) join the upload queue here.
*/
import * as api from './api.js';
import { reconnectEvents, startEvents, stopEvents } from './events.js';
import * as gallery from './gallery.js';
import * as inbox from './inbox.js';
import * as uploads from './uploads.js';
import { $ } from './ui.js';

//  Camera RAW too (DNG and the makers' own): the engine reads them by content
const IMAGE_NAME = /\.(jpe?g|png|webp|gif|tiff?|heic|heif|avif|dng|cr[23]|nef|nrw|arw|sr[f2]|orf|rw2|raf|pef|srw|x3f|3fr|iiq|erf|kdc|mrw|raw|rwl)$/i;

const view = {
  login: $('#login'),
  loginForm: $('#login-form'),
  loginMessage: $('#login-message'),
  app: $('#app'),
  upload: $('#view-upload'),
  gallery: $('#view-gallery'),
  navUpload: $('#nav-upload'),
  navGallery: $('#nav-gallery'),
  badge: $('#upload-badge'),
  banner: $('#banner'),
  bannerText: $('#banner-text'),
  bannerAction: $('#banner-action'),
  content: $('#content'),
};

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

//  ---------------------------------------------------------------------------
//  Banner

let bannerKind = null;

function banner(kind, text, action) {
  bannerKind = kind;
  view.bannerText.textContent = text;
  view.banner.dataset.kind = kind;
  view.bannerAction.hidden = !action;
  if (action) {
    view.bannerAction.textContent = action.label;
    view.bannerAction.onclick = action.run;
  }
  view.banner.hidden = false;
}

function clearBanner(kind) {
  if (kind && bannerKind !== kind) return;
  bannerKind = null;
  view.banner.hidden = true;
}

api.on('unreachable', () => {
  banner('unreachable', 'The server cannot be reached. Uploads pause and resume by themselves when it is back.');
});
api.on('reachable', () => {
  clearBanner('unreachable');
  reconnectEvents();
  uploads.resumeAfterOutage();
});
api.on('expired', () => {
  showLogin('Your session has expired: sign in again. Uploads in progress resume after you sign in.');
});
api.on('session', (session) => {
  if (!session) showLogin(view.loginMessage.textContent);
});

//  ---------------------------------------------------------------------------
//  Sign in and out

function showLogin(message) {
  stopEvents();
  gallery.closePhoto(false);
  view.app.hidden = true;
  view.login.hidden = false;
  view.loginMessage.textContent = message || '';
  view.loginMessage.classList.toggle('error', Boolean(message));
  const name = view.loginForm.elements.username;
  (name.value ? view.loginForm.elements.password : name).focus();
}

async function showApp() {
  view.login.hidden = true;
  view.app.hidden = false;
  clearBanner('expired');
  startEvents();
  route();
  uploads.pump();
  await takeShared();
}

view.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = view.loginForm.elements;
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    view.loginMessage.textContent = 'Enter your user name and password.';
    view.loginMessage.classList.add('error');
    return;
  }
  const button = view.loginForm.querySelector('button[type=submit]');
  button.disabled = true;
  view.loginMessage.classList.remove('error');
  view.loginMessage.textContent = 'Signing in…';
  try {
    await api.signIn(username, password);
    form.password.value = '';
    view.loginMessage.textContent = '';
    await showApp();
  } catch (err) {
    view.loginMessage.classList.add('error');
    view.loginMessage.textContent = err.status === 401 ? 'Wrong user name or password.'
      : err.status === 0 ? 'The server cannot be reached. Check the connection and try again.'
        : err.message;
  } finally {
    button.disabled = false;
  }
});

$('#signout').addEventListener('click', () => {
  uploads.cancelAll();
  api.signOut();
  gallery.reset();
  view.loginForm.elements.username.value = '';
  showLogin('You have signed out.');
  view.loginMessage.classList.remove('error');
});

//  ---------------------------------------------------------------------------
//  Routes

function route() {
  if (!api.token()) return;
  const hash = location.hash || '#/gallery';
  const photo = /^#\/photo\/(.+)$/.exec(hash);
  const onUpload = hash.startsWith('#/upload');
  view.upload.hidden = !onUpload;
  view.gallery.hidden = onUpload;
  view.navUpload.toggleAttribute('aria-current', onUpload);
  view.navGallery.toggleAttribute('aria-current', !onUpload);
  if (onUpload) {
    gallery.closePhoto(false);
    document.title = 'Upload · RapidPhoto';
    const shared = /[?&]shared=([^&]*)/.exec(hash);
    if (shared && shared[1] === 'error') banner('share', 'The shared photos could not be kept; add them here instead.');
    return;
  }
  gallery.show();
  if (photo) {
    gallery.openPhoto(decodeURIComponent(photo[1]));
  } else {
    gallery.closePhoto(false);
    document.title = 'Gallery · RapidPhoto';
  }
}

window.addEventListener('hashchange', () => {
  route();
  if (!gallery.isPhotoOpen()) view.content.focus({ preventScroll: true });
});

//  ---------------------------------------------------------------------------
//  Adding files: picker, folder, drag and drop, shares

function addFiles(files, fromFolder) {
  let list = Array.from(files);
  //  A folder holds other files too; only images are sent from one. Files
  //  picked or dropped one by one all go: the server says which are not images.
  if (fromFolder) list = list.filter((f) => (f.type && f.type.startsWith('image/')) || IMAGE_NAME.test(f.name));
  const n = uploads.add(list, { tags: $('#upload-tags').value });
  if (n > 0 && !location.hash.startsWith('#/upload')) navigate('#/upload');
  return n;
}

const fileInput = $('#file-input');
const folderInput = $('#folder-input');
$('#pick-files').addEventListener('click', () => fileInput.click());
$('#pick-folder').addEventListener('click', () => folderInput.click());
fileInput.addEventListener('change', () => {
  addFiles(fileInput.files, false);
  fileInput.value = '';
});
folderInput.addEventListener('change', () => {
  addFiles(folderInput.files, true);
  folderInput.value = '';
});

const dropzone = $('#dropzone');
dropzone.addEventListener('keydown', (event) => {
  if ((event.key === 'Enter' || event.key === ' ') && event.target === dropzone) {
    event.preventDefault();
    fileInput.click();
  }
});

//  Every file under a dropped folder (webkitGetAsEntry), bounded.
async function entryFiles(entry, out, limit = 10000) {
  if (out.length >= limit) return;
  if (entry.isFile) {
    out.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await entryFiles(child, out, limit);
    }
  }
}

document.addEventListener('dragover', (event) => {
  if (!api.token() || !event.dataTransfer || !event.dataTransfer.types.includes('Files')) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'copy';
  dropzone.classList.add('over');
});
document.addEventListener('dragleave', (event) => {
  if (!event.relatedTarget) dropzone.classList.remove('over');
});
document.addEventListener('drop', async (event) => {
  if (!api.token() || !event.dataTransfer) return;
  event.preventDefault();
  dropzone.classList.remove('over');
  const entries = Array.from(event.dataTransfer.items || [])
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (entries.some((e) => e && e.isDirectory)) {
    const files = [];
    for (const entry of entries) if (entry) await entryFiles(entry, files);
    addFiles(files, true);
  } else {
    addFiles(event.dataTransfer.files, false);
  }
});

async function takeShared() {
  try {
    const files = await inbox.take();
    if (files.length > 0) {
      addFiles(files, false);
      banner('share', `${files.length} shared ${files.length === 1 ? 'photo was' : 'photos were'} added to the uploads.`);
      setTimeout(() => clearBanner('share'), 6000);
    }
  } catch (err) {
    console.error('shared photos', err);
  }
}

//  ---------------------------------------------------------------------------
//  Start

uploads.mount(document);
gallery.mount(document, navigate);
uploads.onChange(() => {
  const { counts } = uploads.stats();
  view.badge.hidden = counts.busy === 0;
  view.badge.textContent = String(counts.busy);
  view.badge.setAttribute('aria-label', `${counts.busy} uploads in progress`);
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch((err) => console.warn('service worker', err));
}

if (!window.tus) {
  banner('tus', 'The upload library did not load: reload the page.');
}
if (api.token()) showApp();
else showLogin('');
