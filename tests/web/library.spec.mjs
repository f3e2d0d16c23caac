/*  tests/web/library.spec.mjs: the web app's side of issue 14 in headless
    Chromium (Debian's, driven by playwright-core) against a real
    `rapidphoto serve`: placeholders, the timeline, similar photos and
    damaged originals.

    Photos are copies of ../shared/testdata's camera JPEGs (RP_TESTDATA) in a
    temporary folder, given dates taken by exiftool; nothing is written
    into the corpus. Without the corpus the tests say they skipped.
      - placeholders: the thumbnail route is held (page.route), so each tile
        must show its ThumbHash, painted from the photo JSON, pixel for pixel
        what the reference decoder (npm thumbhash) gives; released, the
        thumbnail covers it;
      - the timeline: headers per month and per day in the order of
        GET /api/v1/photos?sort=taken_at, a photo without a date taken under
        its upload day, the toggle back to the date uploaded, a jump to a
        date (to=<the day after>) and back;
      - similar: a resized copy uploaded through the page says it looks like
        the photo it came from, and the photo view's "Similar photos" row
        shows that photo and opens it;
      - damaged: a byte of an original flipped on disk, `rapidphoto scrub`
        marks it, and its tile and photo view say "Damaged" in words.
    Screenshots go to $RP_WEB_SCREENSHOTS when set, else web-screenshots/.
*/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { binary, command, sourceDir, startServer } from './support.mjs';

const require = createRequire(path.join(sourceDir, 'web', 'package.json'));
const { chromium } = require('playwright-core');
const thumbhashFile = path.join(sourceDir, 'web', 'node_modules', 'thumbhash', 'thumbhash.js');

const chromiumPath = process.env.RP_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath))
  throw new Error(`no chromium at ${chromiumPath}: tools/bootstrap.sh --test installs Debian's`);
const shots = process.env.RP_WEB_SCREENSHOTS || path.join(process.cwd(), 'web-screenshots');
fs.mkdirSync(shots, { recursive: true });

const corpus = process.env.RP_TESTDATA || path.resolve(sourceDir, '..', 'shared', 'testdata');
const camera = path.join(corpus, 'images', 'camera');
const skip = fs.existsSync(camera) ? false : `skipped: the corpus (${camera}) is absent`;
if (skip) console.log(`# ${skip}`);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let server;
let browser;
let page;
let work;
let token;
//  name -> { file, taken (EXIF DateTimeOriginal or null), photo (its JSON once uploaded) }
const set = {};

async function api(target, options = {}) {
  const r = await fetch(server.url + target, { ...options, headers: { Authorization: `Bearer ${token}`, ...(options.headers || {}) } });
  const text = await r.text();
  return { status: r.status, body: text && r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

async function waitComplete(id, ms = 30000) {
  for (const deadline = Date.now() + ms; ; await sleep(100)) {
    const { body } = await api(`/api/v1/photos/${id}`);
    if (body.status === 'complete') return body;
    assert.notEqual(body.status, 'failed', JSON.stringify(body));
    if (Date.now() > deadline) throw new Error(`photo ${id} not complete in ${ms} ms: ${JSON.stringify(body)}`);
  }
}

//  POST the file as the API's simple upload; resolves with the photo's id
async function upload(file) {
  const r = await api('/api/v1/photos', {
    method: 'POST', body: fs.readFileSync(file), headers: { 'Content-Type': 'image/jpeg', 'X-Filename': path.basename(file) },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.photos[0].id;
}

async function serverOrder(query) {
  const { status, body } = await api(`/api/v1/photos?status=complete&limit=500${query}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body.items.map((p) => p.id);
}

const tileIds = () => page.$$eval('#grid li.tile', (lis) => lis.map((li) => li.dataset.id));
const months = () => page.$$eval('#grid section.month', (s) => s.map((n) => n.dataset.month));
const days = () => page.$$eval('#grid section.day', (s) => s.map((n) => n.dataset.day));

before(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-web-library-'));
  //  Copies of corpus photos with the dates taken the timeline sorts by
  const pick = {
    march15am: ['nikon_d70s_gps_makernote.jpg', '2021:03:15 10:00:00'],
    march15pm: ['sony_dslr-a200_makernote.jpg', '2021:03:15 18:30:00'],
    march2: ['canon_powershot_sx60hs_orient6.jpg', '2021:03:02 09:00:00'],
    christmas: ['samsung_sm-g930f_gps_zero_length_string.jpg', '2020:12:24 20:00:00'],
    undated: ['nikon_d3100_gps_small.jpg', null],
  };
  for (const [name, [source, taken]] of Object.entries(pick)) {
    const file = path.join(work, `${name}.jpg`);
    fs.copyFileSync(path.join(camera, source), file);
    fs.chmodSync(file, 0o644);
    await command('exiftool', ['-q', '-overwrite_original', taken ? `-AllDates=${taken}` : '-AllDates=',
      '-OffsetTime*=', '-SubSecTime*=', '-GPSDateStamp=', '-GPSTimeStamp=', file]);
    set[name] = { file, taken };
  }
  server = await startServer({ name: 'library' });
  token = await server.login();
  //  Uploaded oldest taken first, so that upload order and taken order differ
  const order = ['christmas', 'march2', 'march15pm', 'march15am', 'undated'];
  const ids = [];
  for (const name of order) ids.push(await upload(set[name].file));
  for (const [i, name] of order.entries()) set[name].photo = await waitComplete(ids[i]);
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto(server.url + '/');
  await page.fill('#login-form input[name=username]', server.user);
  await page.fill('#login-form input[name=password]', server.password);
  await page.press('#login-form input[name=password]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#grid li.tile').length === 5);
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    if (process.exitCode) console.error(server.log());
    await server.stop();
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the web app: placeholders, timeline, similar photos, damaged originals', { skip }, () => {
  test('each tile paints its ThumbHash at once (the reference decoder\'s pixels), then the thumbnail covers it', async () => {
    for (const { photo } of Object.values(set))
      assert.match(photo.thumbhash || '', /^[A-Za-z0-9+/]+={0,2}$/, `photo JSON has a base64 thumbhash: ${JSON.stringify(photo)}`);
    //  Hold every thumbnail until told
    const held = [];
    let holding = true;
    await page.route('**/api/v1/photos/*/thumbnail', (route) => (holding ? held.push(route) : route.continue()));
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#grid li.tile[data-placeholder="painted"]').length === 5);
    for (let i = 0; i < 50 && held.length === 0; i++) await sleep(100);
    assert.ok(held.length > 0, 'the thumbnails were asked for (and are held)');
    const shown = await page.$$eval('#grid li.tile', (lis) => lis.map((li) => {
      const canvas = li.querySelector('canvas.placeholder');
      const img = li.querySelector('img');
      const box = canvas.getBoundingClientRect();
      return {
        id: li.dataset.id, loaded: li.classList.contains('loaded'), src: img.getAttribute('src'),
        w: canvas.width, h: canvas.height, covers: box.width > 50 && box.height > 50,
        rgba: Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data),
      };
    }));
    await page.screenshot({ path: path.join(shots, 'placeholders.png') });
    const { thumbHashToRGBA } = await import(thumbhashFile);
    for (const tile of shown) {
      const { photo } = Object.values(set).find((s) => s.photo.id === tile.id);
      assert.equal(tile.loaded, false, 'no thumbnail yet');
      assert.equal(tile.src, null, 'the image has no source yet');
      assert.ok(tile.covers, 'the placeholder fills the tile');
      const want = thumbHashToRGBA(Buffer.from(photo.thumbhash, 'base64'));
      assert.deepEqual([tile.w, tile.h], [want.w, want.h]);
      assert.deepEqual(tile.rgba, Array.from(want.rgba), `${photo.filename}: the reference decoder's pixels`);
    }
    //  Released: every thumbnail arrives and is shown over its placeholder
    holding = false;
    for (const route of held.splice(0)) await route.continue();
    await page.waitForFunction(() => [...document.querySelectorAll('#grid li.tile')].every((li) => {
      const img = li.querySelector('img');
      return li.classList.contains('loaded') && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0 &&
        getComputedStyle(img).opacity === '1';
    }), null, { timeout: 20000 });
    await page.unroute('**/api/v1/photos/*/thumbnail');
  });

  test('by date taken: a header per month and per day, in the server\'s order; the undated photo under its upload day', async () => {
    await page.selectOption('#gallery-sort', 'taken_at');
    await page.waitForFunction(() => /by date taken/.test(document.querySelector('#gallery-status').textContent));
    const want = await serverOrder('&sort=taken_at');
    const ids = (...names) => names.map((n) => set[n].photo.id);
    assert.deepEqual(want, ids('undated', 'march15pm', 'march15am', 'march2', 'christmas'), 'the API sorts by date taken');
    await page.waitForFunction((n) => document.querySelectorAll('#grid li.tile').length === n, want.length);
    assert.deepEqual(await tileIds(), want);
    const today = set.undated.photo.created_at.slice(0, 10);
    assert.deepEqual(await months(), [today.slice(0, 7), '2021-03', '2020-12']);
    assert.deepEqual(await days(), [today, '2021-03-15', '2021-03-02', '2020-12-24']);
    assert.deepEqual(await page.$$eval('section[data-month="2021-03"] .month-head', (h) => h.map((n) => n.textContent)), ['March 2021']);
    assert.equal(await page.textContent('section[data-day="2021-03-15"] .day-head'), 'Mon 15 March');
    assert.deepEqual(await page.$$eval('section[data-day="2021-03-15"] li.tile', (lis) => lis.map((li) => li.dataset.id)),
      ids('march15pm', 'march15am'));
    await page.screenshot({ path: path.join(shots, 'timeline.png') });

    //  The choice is kept across a reload
    await page.reload();
    await page.waitForFunction((n) => document.querySelectorAll('#grid li.tile').length === n, want.length);
    assert.equal(await page.inputValue('#gallery-sort'), 'taken_at');
    assert.deepEqual(await tileIds(), want);

    //  By date uploaded: newest upload first, all under today
    await page.selectOption('#gallery-sort', 'created_at');
    await page.waitForFunction(() => /by date uploaded/.test(document.querySelector('#gallery-status').textContent));
    await page.waitForFunction((n) => document.querySelectorAll('#grid li.tile').length === n, want.length);
    const uploaded = await serverOrder('&sort=created_at');
    assert.deepEqual(uploaded, ids('undated', 'march15am', 'march15pm', 'march2', 'christmas'));
    assert.deepEqual(await tileIds(), uploaded);
    assert.deepEqual(await days(), [today]);
  });

  test('jump to a date: that day and before, from the server\'s to=; back to the latest', async () => {
    await page.selectOption('#gallery-sort', 'taken_at');
    await page.waitForFunction(() => document.querySelectorAll('#grid li.tile').length === 5);
    const asked = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/photos?')) asked.push(new URL(r.url()).searchParams); });
    await page.fill('#jump-date', '2021-03-10');
    await page.click('#jump-go');
    await page.waitForFunction(() => /up to 10 March 2021/.test(document.querySelector('#gallery-status').textContent));
    await page.waitForFunction(() => document.querySelectorAll('#grid li.tile').length === 2);
    const last = asked[asked.length - 1];
    assert.equal(last.get('to'), '2021-03-11');
    assert.equal(last.get('sort'), 'taken_at');
    const want = await serverOrder('&sort=taken_at&to=2021-03-11');
    assert.deepEqual(want, [set.march2.photo.id, set.christmas.photo.id]);
    assert.deepEqual(await tileIds(), want);
    assert.deepEqual(await months(), ['2021-03', '2020-12']);
    await page.click('#jump-latest');
    await page.waitForFunction(() => document.querySelectorAll('#grid li.tile').length === 5);
    assert.equal(await page.isVisible('#jump-latest'), false);
    assert.equal(await page.inputValue('#jump-date'), '');
  });

  test('a resized copy: its upload says it looks like a photo the user has; the photo view\'s Similar row opens it', async () => {
    const source = set.march15pm;
    const copy = path.join(work, 'march15pm-small.jpg');
    await command('vipsthumbnail', [source.file, '--size', '800x', '-o', `${copy}[Q=80]`]);
    await page.goto(`${server.url}/#/upload`);
    await page.waitForSelector('#view-upload', { state: 'visible' });
    await page.setInputFiles('#file-input', [copy]);
    const row = page.locator('#upload-list li:has(.name:text-is("march15pm-small.jpg"))');
    await page.waitForFunction(() => {
      const li = [...document.querySelectorAll('#upload-list li')].find((n) => n.querySelector('.name').textContent === 'march15pm-small.jpg');
      return li && li.dataset.state === 'complete' && li.dataset.similar;
    }, null, { timeout: 30000 });
    const id = await row.getAttribute('data-photo-id');
    const similar = await api(`/api/v1/photos/${id}/similar`);
    assert.equal(similar.status, 200);
    assert.ok(similar.body.items.some((p) => p.id === source.photo.id), JSON.stringify(similar.body));
    assert.equal(await row.getAttribute('data-similar'), String(similar.body.items.length));
    assert.match(await row.locator('.reason').textContent(),
      new RegExp(`^Looks like ${similar.body.items.length} photos? you have: compare them$`));
    await page.screenshot({ path: path.join(shots, 'upload-similar.png') });

    //  "compare them": the new photo's view, with the photo it resembles
    await row.locator('.reason a').click();
    await page.waitForSelector('#photo[open]');
    await page.waitForSelector('#photo-similar', { state: 'visible' });
    assert.deepEqual(await page.$$eval('#similar-list li', (lis) => lis.map((li) => li.dataset.id)), similar.body.items.map((p) => p.id));
    await page.waitForFunction((want) => {
      const li = document.querySelector(`#similar-list li[data-id="${want}"]`);
      return li && li.classList.contains('loaded') && li.querySelector('img').naturalWidth > 0;
    }, source.photo.id, { timeout: 20000 });
    await page.waitForFunction(() => document.querySelector('#photo-preview').src.startsWith('blob:'));
    await page.screenshot({ path: path.join(shots, 'photo-similar.png') });
    await page.click(`#similar-list li[data-id="${source.photo.id}"] a`);
    await page.waitForFunction((want) => location.hash === `#/photo/${want}`, source.photo.id);
    await page.waitForFunction(() => document.querySelector('#photo-title').textContent === 'march15pm.jpg');
    //  And the other way round
    await page.waitForSelector(`#similar-list li[data-id="${id}"]`, { timeout: 10000 });

    //  A photo like no other has no row
    await page.goto(`${server.url}/#/photo/${set.undated.photo.id}`);
    await page.waitForFunction(() => document.querySelector('#photo-title').textContent === 'undated.jpg');
    const none = await api(`/api/v1/photos/${set.undated.photo.id}/similar`);
    assert.deepEqual(none.body.items, []);
    await sleep(500);
    assert.equal(await page.isVisible('#photo-similar'), false);
    await page.keyboard.press('Escape');
  });

  test('a damaged original (a byte flipped on disk, found by rapidphoto scrub) is flagged in words in its tile and its view', async () => {
    const victim = set.christmas.photo;
    const original = path.join(server.dir, 'objects', victim.sha256.slice(0, 2), victim.sha256.slice(2, 4), victim.sha256);
    assert.ok(fs.existsSync(original), `the original is stored at ${original}`);
    const fd = fs.openSync(original, 'r+');
    const b = Buffer.alloc(1);
    const at = Math.floor(fs.statSync(original).size / 2);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
    const scrub = await new Promise((resolve, reject) => {
      const child = spawn(binary, ['scrub'], { env: server.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out, err }));
    });
    assert.equal(scrub.code, 3, `scrub exits 3 when it finds damage: ${scrub.err}`);
    assert.equal((await api(`/api/v1/photos/${victim.id}`)).body.integrity, 'damaged');
    assert.equal((await api(`/api/v1/photos/${set.march2.photo.id}`)).body.integrity, 'ok');

    await page.goto(`${server.url}/#/gallery`);
    await page.reload();
    await page.waitForSelector(`#grid li.tile[data-id="${victim.id}"]`);
    const flagged = await page.$$eval('#grid li.tile.damaged', (lis) => lis.map((li) => li.dataset.id));
    assert.deepEqual(flagged, [victim.id]);
    const tile = page.locator(`#grid li.tile[data-id="${victim.id}"]`);
    assert.equal((await tile.locator('.flag').textContent()).trim(), '⚠ Damaged');
    assert.match(await tile.locator('a').getAttribute('aria-label'), /Damaged: the stored original no longer matches/);
    await tile.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(shots, 'gallery-damaged.png') });

    await tile.locator('a').click();
    await page.waitForSelector('#photo-integrity', { state: 'visible' });
    assert.match(await page.textContent('#photo-integrity'), /Damaged: the stored original no longer matches the bytes uploaded/);
    assert.match(await page.textContent('#photo-details dd[data-field="integrity"]'), /^Damaged \(checked /);
    //  Its derivatives are sound: the preview still shows
    await page.waitForFunction(() => {
      const img = document.querySelector('#photo-preview');
      return img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
    }, null, { timeout: 20000 });
    await page.screenshot({ path: path.join(shots, 'photo-damaged.png') });
    //  A sound photo says it was verified, with no warning
    await page.goto(`${server.url}/#/photo/${set.march2.photo.id}`);
    await page.waitForFunction(() => document.querySelector('#photo-title').textContent === 'march2.jpg');
    await page.waitForSelector('#photo-details dd[data-field="integrity"]');
    assert.match(await page.textContent('#photo-details dd[data-field="integrity"]'), /^Verified intact \(checked /);
    assert.equal(await page.isVisible('#photo-integrity'), false);
    await page.keyboard.press('Escape');
  });

  test('camera RAW: DNGs (with an embedded preview, and a bare Bayer mosaic) picked in the page complete and show like any photo', async (t) => {
    const python = '/usr/bin/python3';
    try {
      await command(python, ['-c', 'import tifffile, numpy']);
    } catch (_) {
      t.skip('skipped: /usr/bin/python3 with tifffile and numpy (python3-tifffile, python3-numpy) builds the DNGs');
      return;
    }
    const accept = await page.getAttribute('#file-input', 'accept');
    for (const ext of ['.dng', '.cr2', '.nef', '.arw']) assert.ok(accept.split(',').includes(ext), `the picker offers ${ext}: ${accept}`);
    const dngs = path.join(work, 'dng');
    fs.mkdirSync(dngs);
    //  tests/raw/make_dng.py (the RAW suite's, which checks the pixels): a
    //  corpus photo mosaicked to 14-bit RGGB, with its EXIF; from an 800
    //  pixel copy, to be quick
    const source = path.join(dngs, 'source.jpg');
    await command('vipsthumbnail', [path.join(camera, 'canon_powershot_sx60hs_orient6.jpg'), '--size', '800x', '-o', `${source}[Q=92]`]);
    await command(python, [path.join(sourceDir, 'tests', 'raw', 'make_dng.py'), source, dngs]);
    const expected = JSON.parse(fs.readFileSync(path.join(dngs, 'expected.json'), 'utf8'));
    const files = ['preview.dng', 'mosaic.dng'].map((f) => path.join(dngs, f));
    await page.goto(`${server.url}/#/upload`);
    await page.waitForSelector('#view-upload', { state: 'visible' });
    if (await page.isVisible('#clear-done')) await page.click('#clear-done');
    await page.setInputFiles('#file-input', files);
    await page.waitForFunction(() => [...document.querySelectorAll('#upload-list li[data-state="complete"] .name')]
      .filter((n) => n.textContent.endsWith('.dng')).length === 2, null, { timeout: 60000 });
    const ids = await page.$$eval('#upload-list li[data-state="complete"]', (lis) => lis
      .filter((li) => li.querySelector('.name').textContent.endsWith('.dng')).map((li) => li.dataset.photoId));
    await page.click('#nav-gallery');
    for (const id of ids) {
      const photo = (await api(`/api/v1/photos/${id}`)).body;
      assert.equal(photo.content_type, 'image/x-adobe-dng');
      const tile = page.locator(`#grid li.tile[data-id="${id}"]`);
      await tile.scrollIntoViewIfNeeded();
      await page.waitForFunction((want) => {
        const li = document.querySelector(`#grid li.tile[data-id="${want}"]`);
        return li && li.classList.contains('loaded') && li.querySelector('img').naturalWidth > 0;
      }, id, { timeout: 20000 });
      await tile.locator('a').click();
      await page.waitForFunction((want) => document.querySelector('#photo-title').textContent === want, photo.filename);
      await page.waitForFunction(() => {
        const img = document.querySelector('#photo-preview');
        return img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
      }, null, { timeout: 20000 });
      assert.equal(await page.textContent('#photo-details dd[data-field="camera"]'), `${expected.make} ${expected.model}`);
      assert.match(await page.textContent('#photo-details dd[data-field="file"]'), /image\/x-adobe-dng/);
      if (photo.filename === 'mosaic.dng') await page.screenshot({ path: path.join(shots, 'photo-dng.png') });
      await page.keyboard.press('Escape');
      await page.waitForSelector('#photo[open]', { state: 'detached' });
    }
  });
});
