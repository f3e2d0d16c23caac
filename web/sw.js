/*  RapidPhoto's service worker (served at /sw.js, never cached by HTTP).

    - Caches the app shell of this build (index.html, the manifest and every
      fingerprinted asset) at install, so the app opens without the network;
      a new build has a new cache name and the old one is dropped.
    - Navigations go to the network first (a new build shows at once) and
      fall back to the cached shell offline; assets come from the cache.
    - Web Share Target: the manifest's share_target POSTs the shared files
      to /share-target. They are kept in IndexedDB (database "rapidphoto",
      store "inbox"), and the browser is sent to /#/upload, where the app
      moves them into its upload queue (web/app/inbox.js reads the store).
    - The API (/api/, /healthz...) is never touched: it needs the network and
      its answers are per user.

    cmake/embed_web.cmake writes this build's digest and asset list into
    CACHE and SHELL below.
*/
const CACHE = 'rapidphoto-shell-@BUILD@';
const SHELL = ['/', '/manifest.webmanifest'].concat(@SHELL@);

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys())
      if (name.startsWith('rapidphoto-shell-') && name !== CACHE)
        await caches.delete(name);
    await self.clients.claim();
  })());
});

function openInbox() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('rapidphoto', 1);
    request.onupgradeneeded = () => request.result.createObjectStore('inbox', { keyPath: 'id', autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function keepShared(request) {
  let count = 0;
  try {
    const form = await request.formData();
    const files = form.getAll('photos').filter((f) => f instanceof File && f.size > 0);
    count = files.length;
    if (count > 0) {
      const db = await openInbox();
      await new Promise((resolve, reject) => {
        const tx = db.transaction('inbox', 'readwrite');
        tx.objectStore('inbox').add({ received: Date.now(), files });
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
      db.close();
    }
  } catch (err) {
    return Response.redirect('/#/upload?shared=error', 303);
  }
  return Response.redirect('/#/upload?shared=' + count, 303);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin)
    return;
  if (request.method === 'POST' && url.pathname === '/share-target') {
    event.respondWith(keepShared(request));
    return;
  }
  if (request.method !== 'GET')
    return;
  if (request.mode === 'navigate' && (url.pathname === '/' || url.pathname === '/index.html')) {
    event.respondWith(fetch(request).catch(async () => (await caches.match('/')) || Response.error()));
    return;
  }
  if (url.pathname.startsWith('/assets/') || url.pathname === '/manifest.webmanifest')
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
});
