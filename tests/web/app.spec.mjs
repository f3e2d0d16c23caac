/*  tests/web/app.spec.mjs: the web app in headless Chromium (Debian's
    chromium, driven by playwright-core) against a real `rapidphoto serve`.

    One server and one signed-in page go through the "done when" in
    order: sign in; 100 photos and a text file named .jpg in one go, the
    screen left for the gallery mid-upload, all 100 complete with their
    thumbnails, the text file failed with the server's reason; a duplicate;
    drag and drop; tags and the tag filter; EXIF details; the original
    downloaded byte for byte; delete; cancel; keyboard use; the server taken
    away and brought back mid-upload; an expired session; a phone's screen;
    the manifest, the service worker (the app opening with the server
    down) and the share target.

    Screenshots go to $RP_WEB_SCREENSHOTS when set (the README's pictures:
    RP_WEB_SCREENSHOTS=$PWD/web/screenshots ctest -R web_app), else to
    web-screenshots/ in the build folder.
*/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command, makePhotos, sourceDir, startServer } from './support.mjs';

const require = createRequire(path.join(sourceDir, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const chromiumPath = process.env.RP_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath))
  throw new Error(`no chromium at ${chromiumPath}: tools/bootstrap.sh --test installs Debian's`);
const shots = process.env.RP_WEB_SCREENSHOTS || path.join(process.cwd(), 'web-screenshots');
fs.mkdirSync(shots, { recursive: true });

let server;
let browser;
let context;
let page;
let work;
let photos = [];            //  the 100 paths
let token;
const choosers = [];        //  file choosers the page opened

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function apiGet(url) {
  const r = await fetch(server.url + url, { headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, body: r.status === 200 ? await r.json() : null };
}

async function allPhotos(query = '') {
  const items = [];
  let cursor = null;
  do {
    const { body } = await apiGet(`/api/v1/photos?limit=500${query}${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
    items.push(...body.items);
    cursor = body.next_cursor;
  } while (cursor);
  return items;
}

function states(p = page) {
  return p.evaluate(() => {
    const out = {};
    for (const li of document.querySelectorAll('#upload-list li')) out[li.dataset.state] = (out[li.dataset.state] || 0) + 1;
    return out;
  });
}

async function signIn(p, password = server.password) {
  await p.fill('#login-form input[name=username]', server.user);
  await p.fill('#login-form input[name=password]', password);
  await p.press('#login-form input[name=password]', 'Enter');
}

async function throttle(p, bytesPerSecond) {
  const cdp = await p.context().newCDPSession(p);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  });
  return cdp;
}

//  Back to full speed, and the extra DevTools session goes (a second session
//  would take the page's file chooser events from playwright's own)
async function unthrottle(cdp) {
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.detach();
}

async function scrollGalleryThrough(p) {
  //  Step down the page so every tile passes through view (thumbnails load lazily)
  await p.evaluate(async () => {
    const wait = (ms) => new Promise((r) => setTimeout(r, ms));
    for (let y = 0; y <= document.documentElement.scrollHeight; y += window.innerHeight / 2) {
      window.scrollTo(0, y);
      await wait(60);
    }
  });
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-web-app-'));
  [server, photos] = await Promise.all([
    startServer({ name: 'webapp' }),
    makePhotos(path.join(work, 'batch'), 100),
  ]);
  token = await server.login();
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  page.on('dialog', (dialog) => dialog.accept());
  //  Subscribed from the start: a subscription made together with the key
  //  press races it, and a chooser opened before it is shown natively
  page.on('filechooser', (chooser) => choosers.push(chooser));
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    if (process.exitCode) console.error(server.log());
    await server.stop();
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the web app', () => {
  test('sign in: a wrong password is refused with a message, the right one opens the gallery', async () => {
    await page.goto(server.url + '/');
    await page.waitForSelector('#login-form', { state: 'visible' });
    await signIn(page, 'not the password');
    await page.waitForFunction(() => /Wrong user name or password/.test(document.querySelector('#login-message').textContent));
    await signIn(page);
    await page.waitForSelector('#view-gallery', { state: 'visible' });
    await page.waitForFunction(() => /No photos yet/.test(document.querySelector('#gallery-status').textContent));
  });

  test('100 photos and a text file named .jpg picked by keyboard in one go; the gallery mid-upload; all 100 complete with thumbnails', async () => {
    const notes = path.join(work, 'notes.jpg');
    fs.writeFileSync(notes, 'These are my notes, not a photo.\n'.repeat(20));
    await page.click('#nav-upload');
    await page.waitForSelector('#view-upload', { state: 'visible' });
    //  Slow the uploads (256 KB/s, about 2 s for the batch) so that it is
    //  seen, and left, mid-way
    const cdp = await throttle(page, 256 * 1024);
    const started = Date.now();
    //  Picked by keyboard: Enter on the drop zone opens the file chooser
    await page.focus('#dropzone');
    await page.keyboard.press('Enter');
    for (let i = 0; i < 100 && choosers.length === 0; i++) await sleep(100);
    assert.equal(choosers.length, 1, 'Enter on the drop zone opens the file chooser');
    const chooser = choosers.shift();
    assert.ok(chooser.isMultiple());
    await chooser.setFiles([...photos, notes]);
    await page.waitForFunction(() => {
      const count = (s) => document.querySelectorAll(`#upload-list li[data-state="${s}"]`).length;
      return count('complete') + count('processing') + count('queued') >= 3 && count('waiting') + count('uploading') >= 20;
    }, null, { timeout: 60000 });
    //  For the picture: a few complete beside the ones still going, if the
    //  machine gets there while the batch is still sending
    await page.waitForFunction(() => document.querySelectorAll('#upload-list li[data-state="complete"]').length >= 3 &&
      document.querySelectorAll('#upload-list li[data-state="waiting"]').length >= 20, null, { timeout: 3000 }).catch(() => {});
    await page.evaluate(() => document.activeElement.blur());
    await page.screenshot({ path: path.join(shots, 'upload.png') });
    const before = await states();
    assert.ok((before.waiting || 0) + (before.uploading || 0) >= 20, JSON.stringify(before));

    //  Away to the gallery while uploads go on: photos appear as they complete
    await page.click('#nav-gallery');
    await page.waitForSelector('#view-gallery', { state: 'visible' });
    const badge = await page.textContent('#upload-badge');
    assert.ok(Number(badge) > 0, `the badge counts uploads in progress: ${badge}`);
    await unthrottle(cdp);
    await page.waitForFunction(() => document.querySelectorAll('#grid li').length === 100, null, { timeout: 150000, polling: 250 });
    const seconds = (Date.now() - started) / 1000;
    console.log(`# 100 photos uploaded (the first part at 256 KB/s) and complete in the gallery in ${seconds.toFixed(1)} s`);
    await scrollGalleryThrough(page);
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('#grid img')];
      return imgs.length === 100 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    }, null, { timeout: 30000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shots, 'gallery.png') });

    //  Newest first, exactly the server's complete photos
    const server100 = await allPhotos('&status=complete');
    assert.equal(server100.length, 100);
    const shown = await page.$$eval('#grid li', (lis) => lis.map((li) => li.dataset.id));
    assert.deepEqual(shown, server100.map((p) => p.id));
    assert.deepEqual(new Set(server100.map((p) => p.filename)), new Set(photos.map((p) => path.basename(p))));

    //  Back on the upload screen nothing was lost
    await page.click('#nav-upload');
    const after = await states();
    assert.equal(after.complete, 100, JSON.stringify(after));
    assert.equal(after.failed, 1, JSON.stringify(after));
  });

  test('the text file named .jpg failed, with the server\'s reason', async () => {
    const row = page.locator('#upload-list li[data-state="failed"]');
    await assert.doesNotReject(row.waitFor());
    assert.equal(await row.locator('.name').textContent(), 'notes.jpg');
    const reason = (await row.locator('.reason').textContent()).trim();
    assert.match(reason, /text|not an image|not a supported image/i, reason);
    assert.equal(await row.locator('button').textContent(), 'Retry');
    //  Retry sends it again; the server refuses it again, for the same reason
    await row.locator('button').click();
    await page.waitForFunction(() => document.querySelectorAll('#upload-list li[data-state="failed"]').length === 1 &&
      !document.querySelector('#upload-list li[data-state="waiting"], #upload-list li[data-state="uploading"]'));
    assert.equal((await page.locator('#upload-list li[data-state="failed"] .reason').textContent()).trim(), reason);
  });

  test('a photo the user already has is shown as a duplicate of it', async () => {
    await page.click('#clear-done');
    const stored = (await allPhotos()).length;
    await page.setInputFiles('#file-input', [photos[7]]);
    const row = page.locator('#upload-list li[data-state="duplicate"]');
    await row.waitFor({ timeout: 20000 });
    assert.match(await row.locator('.reason').textContent(), /Already in your library/);
    const existing = (await allPhotos('&status=complete')).find((p) => p.filename === path.basename(photos[7]));
    assert.equal(await row.locator('.reason a').getAttribute('href'), `#/photo/${existing.id}`);
    assert.equal((await allPhotos()).length, stored, 'nothing new was stored');
  });

  test('drag and drop adds files to the queue', async () => {
    const dropped = await makePhotos(path.join(work, 'dropped'), 2, { prefix: 'dropped', offset: 300 });
    const files = dropped.map((p) => ({ name: path.basename(p), b64: fs.readFileSync(p).toString('base64') }));
    await page.evaluate((list) => {
      const dt = new DataTransfer();
      for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/jpeg' }));
      const zone = document.querySelector('#dropzone');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, files);
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="complete"] .name')]
      .filter((n) => n.textContent.startsWith('dropped-')).length === 2, null, { timeout: 30000 });
  });

  test('tag two photos, filter by the tag: exactly those two; remove a tag', async () => {
    await page.click('#nav-gallery');
    const ids = await page.$$eval('#grid li', (lis) => lis.slice(3, 5).map((li) => li.dataset.id));
    for (const id of ids) {
      await page.click(`#grid li[data-id="${id}"] a`);
      await page.waitForSelector('#photo[open]');
      await page.fill('#tag-input', 'beach');
      await page.press('#tag-input', 'Enter');
      await page.waitForSelector('#photo-tags li:has-text("beach")');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#photo[open]', { state: 'detached' });
    }
    await page.fill('#filter-tag', 'beach');
    await page.press('#filter-tag', 'Enter');
    await page.waitForFunction(() => /Tagged “beach”: 2 photos/.test(document.querySelector('#gallery-status').textContent));
    const shown = await page.$$eval('#grid li', (lis) => lis.map((li) => li.dataset.id));
    assert.deepEqual(new Set(shown), new Set(ids));
    assert.deepEqual(new Set((await allPhotos('&tag=beach')).map((p) => p.id)), new Set(ids));

    //  Add and remove another tag on the first
    await page.click(`#grid li[data-id="${ids[0]}"] a`);
    await page.fill('#tag-input', 'sunset');
    await page.press('#tag-input', 'Enter');
    await page.waitForSelector('#photo-tags li:has-text("sunset")');
    await page.click('#photo-tags button[aria-label="Remove tag sunset"]');
    await page.waitForSelector('#photo-tags li:has-text("sunset")', { state: 'detached' });
    assert.deepEqual((await apiGet(`/api/v1/photos/${ids[0]}`)).body.tags, ['beach']);
    await page.keyboard.press('Escape');
    await page.click('#filter-clear');
    await page.waitForFunction(() => document.querySelectorAll('#grid li').length >= 48);
  });

  test('the photo view shows the preview and the EXIF details: camera, lens, exposure, date, location', async () => {
    const file = path.join(work, 'exif.jpg');
    (await makePhotos(path.join(work, 'exif'), 1, { prefix: 'exif', offset: 500 }));
    fs.copyFileSync(path.join(work, 'exif', 'exif-500.jpg'), file);
    await command('exiftool', ['-q', '-overwrite_original', '-Make=Canon', '-Model=Canon EOS R6', '-LensModel=RF24-105mm F4 L IS USM',
      '-ExposureTime=1/250', '-FNumber=8', '-ISO=200', '-FocalLength=35', '-DateTimeOriginal=2019:07:01 12:00:00',
      '-OffsetTimeOriginal=+02:00', '-GPSLatitude=48.858370', '-GPSLatitudeRef=N', '-GPSLongitude=2.294481',
      '-GPSLongitudeRef=E', file]);
    await page.click('#nav-upload');
    await page.setInputFiles('#file-input', [file]);
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="complete"] .name')]
      .some((n) => n.textContent === 'exif.jpg'), null, { timeout: 30000 });
    const id = await page.$eval('#upload-list li[data-state="complete"]:has(.name:text-is("exif.jpg"))', (li) => li.dataset.photoId);
    await page.goto(`${server.url}/#/photo/${id}`);
    await page.waitForSelector('#photo[open]');
    await page.waitForFunction(() => {
      const img = document.querySelector('#photo-preview');
      return img.src.startsWith('blob:') && img.complete && img.naturalWidth === 400;
    }, null, { timeout: 20000 });
    const field = (name) => page.textContent(`#photo-details dd[data-field="${name}"]`);
    assert.equal(await field('camera'), 'Canon Canon EOS R6');
    assert.equal(await field('lens'), 'RF24-105mm F4 L IS USM');
    assert.equal(await field('exposure'), '1/250 s · f/8 · ISO 200 · 35 mm');
    assert.match(await field('taken'), /2019, 12:00 \(UTC\+02:00\)/);
    assert.match(await field('location'), /^48\.8583\d° N, 2\.2944\d° E/);
    await page.screenshot({ path: path.join(shots, 'photo.png') });
  });

  test('download the original: the same bytes', async () => {
    const id = await page.evaluate(() => decodeURIComponent(location.hash.split('/').pop()));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#photo-download')]);
    assert.equal(download.suggestedFilename(), 'exif.jpg');
    const got = fs.readFileSync(await download.path());
    assert.ok(got.equals(fs.readFileSync(path.join(work, 'exif.jpg'))), 'the downloaded bytes are the uploaded ones');
    assert.equal((await apiGet(`/api/v1/photos/${id}`)).body.bytes, got.length);
  });

  test('delete a photo: gone from the grid and the server', async () => {
    const id = await page.evaluate(() => decodeURIComponent(location.hash.split('/').pop()));
    await page.click('#photo-delete');
    await page.waitForFunction((gone) => !document.querySelector(`#grid li[data-id="${gone}"]`) &&
      !location.hash.endsWith(gone), id);
    assert.equal((await apiGet(`/api/v1/photos/${id}`)).status, 404);
    if (await page.isVisible('#photo')) await page.keyboard.press('Escape');
    await page.waitForSelector('#photo[open]', { state: 'detached' });
  });

  test('by keyboard: Enter opens a photo, arrows move, Escape closes', async () => {
    await page.goto(`${server.url}/#/gallery`);
    await page.waitForSelector('#grid li');
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'content');
    const ids = await page.$$eval('#grid li', (lis) => lis.slice(0, 2).map((li) => li.dataset.id));
    await page.focus('#grid li a');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#photo[open]');
    assert.equal(await page.evaluate(() => location.hash), `#/photo/${ids[0]}`);
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((id) => location.hash === `#/photo/${id}`, ids[1]);
    await page.waitForFunction((id) => document.querySelector('#photo-title').textContent !== '' , ids[1]);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#photo[open]', { state: 'detached' });
    assert.equal(await page.evaluate(() => location.hash), '#/gallery');
  });

  test('cancel an upload in flight: it stops and leaves nothing behind', async () => {
    await page.goto(`${server.url}/#/upload`);
    await page.waitForSelector('#view-upload', { state: 'visible' });
    const [big] = await makePhotos(path.join(work, 'big'), 1, { prefix: 'big', width: 2400, height: 1800, offset: 700 });
    const cdp = await throttle(page, 64 * 1024);
    await page.setInputFiles('#file-input', [big]);
    const row = page.locator('#upload-list li:has(.name:text-is("big-700.jpg"))');
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="uploading"]')]
      .some((li) => li.dataset.photoId && li.querySelector('progress').value > 0), null, { timeout: 20000 });
    const id = await row.getAttribute('data-photo-id');
    await row.locator('button:text-is("Cancel")').click();
    await page.waitForFunction(() => document.querySelector('#upload-list li[data-state="canceled"]'));
    await unthrottle(cdp);
    //  Terminated: the uploading photo is gone (or failed, never complete).
    //  The DELETE waits (423, retried by tus-js-client) until the gateway has
    //  seen the aborted PATCH end, which a busy machine can take seconds to do.
    let status = null;
    for (let i = 0; i < 250; i++) {
      const r = await apiGet(`/api/v1/photos/${id}`);
      status = r.status === 404 ? 'gone' : r.body.status;
      if (status === 'gone' || status === 'failed') break;
      await sleep(100);
    }
    assert.ok(status === 'gone' || status === 'failed', `after cancel the photo is ${status}`);
  });

  test('the server goes away mid-upload: the app says so, then the uploads resume and complete', async () => {
    await page.click('#clear-done');
    const files = await makePhotos(path.join(work, 'outage'), 6, { prefix: 'outage', width: 1600, height: 1200, offset: 800 });
    const cdp = await throttle(page, 256 * 1024);
    await page.setInputFiles('#file-input', files);
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="uploading"]')]
      .some((li) => li.querySelector('progress').value > 0), null, { timeout: 20000 });
    await server.halt();
    await page.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
    assert.match(await page.textContent('#banner-text'), /server cannot be reached/);
    await unthrottle(cdp);
    await server.start();
    await page.waitForSelector('#banner', { state: 'hidden', timeout: 40000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="complete"] .name')]
      .filter((n) => n.textContent.startsWith('outage-')).length === 6, null, { timeout: 90000 });
    const stored = (await allPhotos()).filter((p) => p.filename.startsWith('outage-'));
    assert.equal(stored.length, 6, 'each file is one photo: ' + JSON.stringify(stored.map((p) => [p.filename, p.status])));
    assert.ok(stored.every((p) => p.status === 'complete'));
  });

  test('an expired session sends the user to sign in, saying so', async () => {
    await page.evaluate(() => {
      const session = JSON.parse(localStorage.getItem('rapidphoto.session'));
      session.token = session.token.slice(0, -4) + 'AAAA';        //  a signature the server refuses
      localStorage.setItem('rapidphoto.session', JSON.stringify(session));
    });
    await page.goto(`${server.url}/#/gallery`);
    await page.reload();
    await page.waitForSelector('#login', { state: 'visible', timeout: 20000 });
    assert.match(await page.textContent('#login-message'), /session has expired/);
    await signIn(page);
    await page.waitForSelector('#grid li');
    //  A fresh gallery loads a page at a time as it scrolls, down to the last photo
    const complete = (await allPhotos('&status=complete')).map((p) => p.id);
    assert.ok(complete.length > 100);
    assert.ok(await page.locator('#grid li').count() < complete.length, 'the first page is not everything');
    for (let i = 0; i < 20 && await page.locator('#grid li').count() < complete.length; i++) await scrollGalleryThrough(page);
    assert.deepEqual(await page.$$eval('#grid li', (lis) => lis.map((li) => li.dataset.id)), complete);
  });

  test('a phone-sized screen: no horizontal scrolling on any screen', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    const wide = () => p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await p.goto(server.url + '/');
    await p.waitForSelector('#login', { state: 'visible' });
    assert.equal(await wide(), 0, 'sign in');
    await signIn(p);
    await p.waitForSelector('#grid li img.loaded, #grid li.loaded img', { timeout: 20000 }).catch(() => {});
    await p.waitForFunction(() => document.querySelectorAll('#grid li.loaded').length >= 12, null, { timeout: 20000 });
    assert.equal(await wide(), 0, 'gallery');
    await p.screenshot({ path: path.join(shots, 'phone-gallery.png') });
    await p.click('#grid li a');
    await p.waitForSelector('#photo[open]');
    assert.equal(await wide(), 0, 'photo view');
    await p.keyboard.press('Escape');
    await p.click('#nav-upload');
    await p.setInputFiles('#file-input', [photos[1], photos[2]]);
    await p.waitForFunction(() => document.querySelectorAll('#upload-list li[data-state="duplicate"]').length === 2);
    assert.equal(await wide(), 0, 'upload');
    await phone.close();
  });

  test('installable: a valid manifest, an active service worker caching the shell', async () => {
    await page.goto(`${server.url}/#/gallery`);
    const cdp = await context.newCDPSession(page);
    const manifest = await cdp.send('Page.getAppManifest');
    assert.deepEqual(manifest.errors, [], JSON.stringify(manifest.errors));
    assert.equal(JSON.parse(manifest.data).name, 'RapidPhoto');
    await cdp.detach();
    const state = await page.evaluate(async () => (await navigator.serviceWorker.ready).active.state);
    assert.equal(state, 'activated');
    await page.reload();
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    //  Installability, in a profile that is not incognito (a context here is)
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-web-profile-'));
    const persistent = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
    try {
      const p = persistent.pages()[0] || await persistent.newPage();
      await p.goto(server.url + '/');
      await p.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 20000 }).catch(async () => {
        await p.reload();
        await p.waitForFunction(() => navigator.serviceWorker.controller !== null);
      });
      const session = await persistent.newCDPSession(p);
      const { installabilityErrors } = await session.send('Page.getInstallabilityErrors');
      assert.deepEqual(installabilityErrors, [], JSON.stringify(installabilityErrors));
    } finally {
      await persistent.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
    const cached = await page.evaluate(async () => {
      const names = await caches.keys();
      const cache = await caches.open(names.find((n) => n.startsWith('rapidphoto-shell-')));
      return (await cache.keys()).map((r) => new URL(r.url).pathname);
    });
    for (const need of ['/', '/manifest.webmanifest']) assert.ok(cached.includes(need), need);
    assert.ok(cached.some((u) => u.endsWith('/app.js')) && cached.some((u) => u.endsWith('/vendor/tus.min.js')));
  });

  test('with the server down the app still opens, from the service worker\'s cache, and says the server is unreachable', async () => {
    await page.goto(`${server.url}/#/gallery`);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await server.halt();
    try {
      await page.reload();
      await page.waitForSelector('#view-gallery', { state: 'visible', timeout: 20000 });
      await page.waitForSelector('#banner:not([hidden])', { timeout: 20000 });
      assert.match(await page.textContent('#banner-text'), /server cannot be reached/);
    } finally {
      await server.start();
    }
    await page.waitForSelector('#banner', { state: 'hidden', timeout: 40000 });
    await page.waitForSelector('#grid li');
  });

  test('the share target takes a POST of files into the upload queue, and they complete', async () => {
    const shared = await makePhotos(path.join(work, 'shared'), 2, { prefix: 'shared', offset: 900 });
    const files = shared.map((p) => ({ name: path.basename(p), b64: fs.readFileSync(p).toString('base64') }));
    //  What the phone's share sheet does: a form POST of the files to the manifest's action
    await Promise.all([
      page.waitForNavigation(),
      page.evaluate((list) => {
        const form = document.createElement('form');
        form.method = 'POST';
        form.action = '/share-target';
        form.enctype = 'multipart/form-data';
        const input = document.createElement('input');
        input.type = 'file';
        input.name = 'photos';
        input.multiple = true;
        const dt = new DataTransfer();
        for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/jpeg' }));
        input.files = dt.files;
        form.append(input);
        document.body.append(form);
        form.submit();
      }, files),
    ]);
    await page.waitForFunction(() => location.hash.startsWith('#/upload'));
    await page.waitForFunction(() => /2 shared photos were added/.test(document.querySelector('#banner-text').textContent));
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="complete"] .name')]
      .filter((n) => n.textContent.startsWith('shared-')).length === 2, null, { timeout: 30000 });
    const stored = (await allPhotos('&status=complete')).filter((p) => p.filename.startsWith('shared-'));
    assert.equal(stored.length, 2);
    //  Kept once: a reload does not queue them again
    await page.reload();
    await page.waitForSelector('#view-upload', { state: 'visible' });
    await sleep(500);
    assert.equal(await page.locator('#upload-list li').count(), 0);
  });
});
