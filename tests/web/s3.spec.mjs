/*  tests/web/s3.spec.mjs: the web app in headless Chromium (Debian's
    chromium, driven by playwright-core) against a real `rapidphoto serve` in
    S3 mode, on the local AWS stand-ins (tools/aws/standins.mjs: s3rver with
    the bucket's CORS rule, local-aws-sqs).

    In S3 mode thumbnails, previews and originals answer 302 to a presigned
    GET on the bucket's origin. The app fetches them with its Authorization
    header and shows them as blob: URLs, so this checks the whole way: the
    page's CSP allows the bucket's origin in connect-src (gateway/static.c),
    Chromium follows the redirect and drops the Authorization header on the
    way to S3, the bucket answers CORS, and the bytes that reach the page
    are the bucket's. One signed-in page uploads a few photos through the
    upload screen; the gallery's thumbnails, the photo view's preview and
    the downloaded original all come from S3; no CSP violation, no console
    error.
*/
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makePhotos, sourceDir, startServer, startStandins, stopStandins } from './support.mjs';

const require = createRequire(path.join(sourceDir, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const chromiumPath = process.env.RP_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath))
  throw new Error(`no chromium at ${chromiumPath}: tools/bootstrap.sh --test installs Debian's`);

const COUNT = 4;
let work;
let aws;                    //  { child, s3, sqs, log() }
let server;
let browser;
let page;
let token;
let photos = [];            //  the uploaded files' paths
const sha = new Map();      //  file name -> SHA-256 of its bytes (its S3 key)
const problems = [];        //  console errors and CSP violations, as text
const fromS3 = [];          //  promises of { url, status, headers, from, fromHeaders }, one per request to the bucket

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(url, init = {}) {
  return fetch(server.url + url, { ...init, headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) } });
}

//  The bytes S3 holds behind one of a photo's URLs, fetched as a client
//  other than the browser would: the 302, then its Location, with no token.
async function bucketBytes(url) {
  const redirect = await api(url, { redirect: 'manual' });
  assert.equal(redirect.status, 302, `${url} answers 302 in S3 mode`);
  const location = redirect.headers.get('location');
  assert.equal(new URL(location).origin, aws.s3, `${url} redirects to the bucket`);
  const r = await fetch(location);
  assert.equal(r.status, 200, `the presigned GET of ${url}`);
  return Buffer.from(await r.arrayBuffer());
}

//  The bytes behind a blob: URL the page shows (the Blob the app made it
//  from: fetching a blob: URL is a connect-src the CSP rightly refuses).
async function blobBytes(url) {
  const b64 = await page.evaluate(async (u) => {
    const bytes = new Uint8Array(await window.__blobs.get(u).arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, url);
  return Buffer.from(b64, 'base64');
}

//  The browser's requests to the bucket for one object (its key: the
//  original's SHA-256, then suffix) came from the app's API URL through a
//  redirect, had no Authorization header, and were answered 200.
async function assertViaRedirect(digest, suffix, apiPath, what) {
  const all = await Promise.all(fromS3);
  const key = `/photos/objects/${digest.slice(0, 2)}/${digest.slice(2, 4)}/${digest}${suffix}`;
  const requests = all.filter((r) => new URL(r.url).pathname === key);
  assert.ok(requests.length >= 1, `${what}: the browser fetched ${key} from the bucket (it fetched: ${all.map((r) => new URL(r.url).pathname).join(' ')})`);
  for (const r of requests) {
    assert.equal(r.status, 200, `${what}: S3 answered ${r.status}`);
    assert.equal(r.from, server.url + apiPath, `${what}: reached through the app's ${apiPath}`);
    assert.match(r.fromHeaders.authorization || '', /^Bearer /, `${what}: the app asked with its token`);
    assert.equal(r.headers.authorization, undefined, `${what}: Chromium drops the Authorization header on the way to S3`);
    assert.equal(r.headers.origin, server.url, `${what}: a CORS request from the app's origin`);
    assert.match(new URL(r.url).search, /X-Amz-Signature=/, `${what}: a presigned URL`);
  }
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-web-s3-'));
  [aws, photos] = await Promise.all([
    startStandins(work),
    makePhotos(path.join(work, 'photos'), COUNT, { prefix: 's3', offset: 700 }),
  ]);
  for (const p of photos)
    sha.set(path.basename(p), crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
  server = await startServer({
    name: 'webs3',
    env: {
      RAPIDPHOTO_STORAGE_BACKEND: 's3',
      RAPIDPHOTO_STORAGE_S3_BUCKET: 'photos',
      RAPIDPHOTO_STORAGE_S3_PREFIX: '',
      RAPIDPHOTO_SQS_INGEST_QUEUE_URL: `${aws.sqs}/123456789012/ingest`,
      RAPIDPHOTO_SQS_EVENTS_QUEUE_URL: `${aws.sqs}/123456789012/events`,
      AWS_ENDPOINT_URL_S3: aws.s3,
      AWS_ENDPOINT_URL_SQS: aws.sqs,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
  });
  //  Ready: the database, S3 and both queues answer
  for (const deadline = Date.now() + 20000; ; await sleep(100)) {
    const r = await fetch(server.url + '/readyz');
    if (r.status === 200) break;
    if (Date.now() > deadline) throw new Error(`serve is not ready on the stand-ins: ${await r.text()}`);
  }
  token = await server.login();

  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  //  A CSP violation may not reach the console (a blocked fetch that the
  //  app catches): the page's own event records every one. The Blobs the
  //  app shows are kept by URL, for their bytes.
  await context.addInitScript(() => {
    window.__blobs = new Map();
    const create = URL.createObjectURL;
    URL.createObjectURL = (object) => {
      const url = create.call(URL, object);
      if (object instanceof Blob) window.__blobs.set(url, object);
      return url;
    };
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  page = await context.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfinished', (request) => {
    if (!request.url().startsWith(aws.s3 + '/')) return;
    const from = request.redirectedFrom();
    fromS3.push((async () => {
      const response = await request.response();
      return {
        url: request.url(), status: response ? response.status() : 0, headers: await request.allHeaders(),
        from: from ? from.url() : null, fromHeaders: from ? await from.allHeaders() : {},
      };
    })());
  });
  page.on('requestfailed', (request) => {
    if (request.url().startsWith(aws.s3 + '/')) problems.push(`request to S3 failed: ${request.url().split('?')[0]}: ${request.failure().errorText}`);
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    if (process.exitCode) console.error(server.log());
    await server.stop();
  }
  if (aws) {
    if (process.exitCode) console.error(aws.log());
    await stopStandins(aws);
  }
  if (work && !process.env.RP_WEB_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

describe('the web app in S3 mode', () => {
  test('the page\'s CSP allows the bucket\'s origin for fetches, and nothing else besides this origin', async () => {
    const csp = (await fetch(server.url + '/')).headers.get('content-security-policy');
    assert.ok(csp, 'a Content-Security-Policy');
    const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name, sources]));
    assert.deepEqual(directives.get('default-src'), ["'self'"]);
    assert.deepEqual(directives.get('connect-src'), ["'self'", aws.s3]);
    assert.deepEqual(directives.get('img-src'), ["'self'", 'blob:']);
    for (const [name, sources] of directives)
      for (const source of sources)
        assert.ok(["'self'", "'none'", 'blob:', aws.s3].includes(source), `${name} ${source}`);
  });

  test('sign in, upload through the upload screen: every photo completes', async () => {
    await page.goto(server.url + '/');
    await page.fill('#login-form input[name=username]', server.user);
    await page.fill('#login-form input[name=password]', server.password);
    await page.press('#login-form input[name=password]', 'Enter');
    await page.waitForSelector('#view-gallery', { state: 'visible' });
    await page.click('#nav-upload');
    await page.waitForSelector('#view-upload', { state: 'visible' });
    await page.setInputFiles('#file-input', photos);
    await page.waitForFunction((n) => document.querySelectorAll('#upload-list li[data-state="complete"]').length === n,
      COUNT, { timeout: 30000, polling: 100 });
    //  The originals are in the bucket, byte for byte
    const list = await (await api('/api/v1/photos?status=complete')).json();
    assert.equal(list.items.length, COUNT);
    for (const photo of list.items) {
      const file = photos.find((p) => path.basename(p) === photo.filename);
      assert.ok(file, photo.filename);
      assert.ok((await bucketBytes(photo.urls.original)).equals(fs.readFileSync(file)), `${photo.filename} in S3`);
    }
  });

  test('the gallery\'s thumbnails loaded, from blob: URLs holding the bucket\'s bytes', async () => {
    await page.click('#nav-gallery');
    await page.waitForSelector('#view-gallery', { state: 'visible' });
    await page.waitForFunction((n) => {
      const imgs = [...document.querySelectorAll('#grid img')];
      return imgs.length === n && imgs.every((img) => img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0);
    }, COUNT, { timeout: 20000, polling: 100 });
    const tiles = await page.$$eval('#grid li', (lis) => lis.map((li) => ({ id: li.dataset.id, src: li.querySelector('img').src })));
    assert.equal(tiles.length, COUNT);
    for (const tile of tiles) {
      const photo = await (await api(`/api/v1/photos/${tile.id}`)).json();
      const shown = await blobBytes(tile.src);
      assert.ok(shown.equals(await bucketBytes(photo.urls.thumbnail)), `${photo.filename}: the tile shows the bucket's thumbnail`);
      await assertViaRedirect(sha.get(photo.filename), '.thumbnail.webp', photo.urls.thumbnail, `${photo.filename}'s thumbnail`);
    }
  });

  test('the photo view\'s preview loaded from the bucket', async () => {
    const id = await page.$eval('#grid li', (li) => li.dataset.id);
    await page.click(`#grid li[data-id="${id}"] a`);
    await page.waitForSelector('#photo[open]');
    const photo = await (await api(`/api/v1/photos/${id}`)).json();
    //  The preview replaces the thumbnail shown meanwhile: 400 px wide (never enlarged)
    await page.waitForFunction(() => {
      const img = document.querySelector('#photo-preview');
      return img.src.startsWith('blob:') && img.complete && img.naturalWidth === 400;
    }, null, { timeout: 20000, polling: 100 });
    const src = await page.$eval('#photo-preview', (img) => img.src);
    assert.ok((await blobBytes(src)).equals(await bucketBytes(photo.urls.preview)), 'the view shows the bucket\'s preview');
    await assertViaRedirect(sha.get(photo.filename), '.preview.jpg', photo.urls.preview, `${photo.filename}'s preview`);
  });

  test('the original downloaded through the app is the uploaded file', async () => {
    const id = await page.evaluate(() => decodeURIComponent(location.hash.split('/').pop()));
    const photo = await (await api(`/api/v1/photos/${id}`)).json();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#photo-download')]);
    assert.equal(download.suggestedFilename(), photo.filename);
    const got = fs.readFileSync(await download.path());
    const file = photos.find((p) => path.basename(p) === photo.filename);
    assert.ok(got.equals(fs.readFileSync(file)), 'the downloaded bytes are the uploaded ones');
    await assertViaRedirect(sha.get(photo.filename), '', photo.urls.original, `${photo.filename}'s original`);
    assert.equal(await page.textContent('#photo-message'), '');
  });

  test('no CSP violation and no console error on the way', async () => {
    const violations = await page.evaluate(() => window.__violations);
    assert.deepEqual(violations, []);
    assert.deepEqual(problems, []);
  });
});
