/*  tests/web/static.spec.mjs: the gateway serves the web app (gateway/static.c)
    — types, ETags and 304s, cache lifetimes, the Content-Security-Policy, no
    path reaching anything outside the app, 404/405 problems — and the app's
    manifest, icons and service worker are what a browser needs to install it.
    Plain HTTP, no browser: runs in the normal and the sanitizer builds.
*/
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import vm from 'node:vm';
import { rawRequest, startServer } from './support.mjs';

let server;
let shell = [];             //  every asset URL the service worker caches

before(async () => {
  server = await startServer({ name: 'static' });
  const sw = await (await fetch(server.url + '/sw.js')).text();
  const list = /const SHELL = \['\/', '\/manifest.webmanifest'\]\.concat\((\[[^\]]*\])\)/.exec(sw);
  assert.ok(list, 'sw.js lists its shell');
  shell = JSON.parse(list[1]);
});

after(async () => {
  if (server) await server.stop();
});

const TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function assertCsp(headers) {
  const csp = headers.get('content-security-policy');
  assert.ok(csp, 'a Content-Security-Policy');
  assert.match(csp, /default-src 'self'/);
  //  No source other than this origin (and blob: images made by the app itself)
  for (const directive of csp.split(';')) {
    const sources = directive.trim().split(/\s+/).slice(1);
    for (const source of sources) assert.ok(["'self'", "'none'", 'blob:'].includes(source), `CSP source ${source}`);
  }
}

describe('the app shell', () => {
  test('/ is index.html, revalidated on every load, with a strong ETag and a CSP', async () => {
    const r = await fetch(server.url + '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.match(r.headers.get('etag'), /^"[0-9a-f]{20}"$/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assertCsp(r.headers);
    const html = await r.text();
    assert.match(html, /<script type="module" src="\/assets\/[0-9a-f]{12}\/app\.js"><\/script>/);
    assert.doesNotMatch(html, /@ASSETS@/);
    const same = await fetch(server.url + '/index.html');
    assert.equal(same.headers.get('etag'), r.headers.get('etag'));
    assert.equal(await same.text(), html);
  });

  test('If-None-Match answers 304 with no body: exact, weak, in a list, and *', async () => {
    const etag = (await fetch(server.url + '/')).headers.get('etag');
    for (const match of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await rawRequest(server.port, 'GET', '/', { 'If-None-Match': match });
      assert.equal(r.status, 304, match);
      assert.equal(r.headers.etag, etag);
      assert.equal(r.body.length, 0);
    }
    const r = await fetch(server.url + '/', { headers: { 'If-None-Match': '"0000"' } });
    assert.equal(r.status, 200);
  });

  test('HEAD answers the headers and no body', async () => {
    const r = await rawRequest(server.port, 'HEAD', '/sw.js');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.ok(Number(r.headers['content-length']) > 1000);
    assert.equal(r.body.length, 0);
  });

  test('every fingerprinted asset: its type, cached for a year as immutable', async () => {
    assert.ok(shell.length >= 10, 'the shell lists the app and vendor files');
    const build = /^\/assets\/([0-9a-f]{12})\//.exec(shell[0])[1];
    for (const url of shell) {
      assert.ok(url.startsWith(`/assets/${build}/`), url);
      const r = await fetch(server.url + url);
      assert.equal(r.status, 200, url);
      const ext = url.slice(url.lastIndexOf('.'));
      assert.equal(r.headers.get('content-type'), TYPES[ext], url);
      assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable', url);
      assert.ok(r.headers.get('etag'), url);
      assert.ok((await r.arrayBuffer()).byteLength > 0, url);
    }
    assert.ok(shell.includes(`/assets/${build}/vendor/tus.min.js`), 'tus-js-client is served locally');
    //  Another build's URL is not this build's file
    const old = await fetch(server.url + shell[0].replace(build, '000000000000'));
    assert.equal(old.status, 404);
  });

  test('the service worker and the manifest are revalidated on every load', async () => {
    for (const [url, type] of [['/sw.js', 'text/javascript; charset=utf-8'], ['/manifest.webmanifest', 'application/manifest+json']]) {
      const r = await fetch(server.url + url);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), type);
      assert.equal(r.headers.get('cache-control'), 'no-cache');
    }
  });

  test('the service worker is valid JavaScript that caches this build and takes shared files', async () => {
    const sw = await (await fetch(server.url + '/sw.js')).text();
    assert.doesNotThrow(() => new vm.Script(sw, { filename: 'sw.js' }));
    assert.match(sw, /const CACHE = 'rapidphoto-shell-[0-9a-f]{12}'/);
    assert.match(sw, /url\.pathname === '\/share-target'/);
    assert.doesNotMatch(sw, /@(BUILD|SHELL|ASSETS)@/);
  });
});

describe('the manifest', () => {
  test('names the app, its start URL and display, and icons that exist at their sizes', async () => {
    const manifest = await (await fetch(server.url + '/manifest.webmanifest')).json();
    assert.equal(manifest.name, 'RapidPhoto');
    assert.equal(manifest.start_url, '/');
    assert.equal(manifest.display, 'standalone');
    const sizes = new Set();
    for (const icon of manifest.icons) {
      const r = await fetch(server.url + icon.src);
      assert.equal(r.status, 200, icon.src);
      assert.equal(r.headers.get('content-type'), icon.type, icon.src);
      const bytes = Buffer.from(await r.arrayBuffer());
      if (icon.type === 'image/png') {
        assert.equal(bytes.subarray(1, 4).toString(), 'PNG', icon.src);
        const width = bytes.readUInt32BE(16);
        const height = bytes.readUInt32BE(20);
        assert.equal(`${width}x${height}`, icon.sizes, icon.src);
        sizes.add(`${icon.purpose}:${icon.sizes}`);
      }
    }
    for (const need of ['any:192x192', 'any:512x512', 'maskable:512x512']) assert.ok(sizes.has(need), need);
  });

  test('declares a share target that POSTs files as multipart/form-data', async () => {
    const { share_target: share } = await (await fetch(server.url + '/manifest.webmanifest')).json();
    assert.equal(share.action, '/share-target');
    assert.equal(share.method, 'POST');
    assert.equal(share.enctype, 'multipart/form-data');
    assert.equal(share.params.files[0].name, 'photos');
    assert.ok(share.params.files[0].accept.includes('image/*'));
  });
});

describe('nothing outside the app', () => {
  const secret = /root:|\[http\]|cmake_minimum_required|#include|rapidphoto\.db|SQLite format/;
  const targets = [
    '/../CMakeLists.txt',
    '/assets/../../CMakeLists.txt',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2f..%2fetc%2fpasswd',
    '/assets/%2e%2e/%2e%2e/gateway/static.c',
    '//etc/passwd',
    '/etc/passwd',
    '/index.html/',
    '/web/index.html',
    '/app/app.js',
    '/app.js',
    '/assets/',
    '/assets',
    '/node_modules/tus-js-client/package.json',
    '/package.json',
    '/rapidphoto.db',
    '/objects/',
    '/.git/config',
    '/%5c..%5c..%5cetc%5cpasswd',
  ];
  test('traversal, encoded dots and slashes, NUL bytes and source paths are 404 problems', async () => {
    const asset = shell.find((u) => u.endsWith('/app.js'));
    targets.push(asset.replace('/app.js', '/../app.js'), asset.replace('/app.js', '/./app.js'),
      asset.replace('/app.js', '/%2e%2e/' + asset.slice(1)), asset + '/..');
    for (const target of targets) {
      const r = await rawRequest(server.port, 'GET', target);
      assert.ok(r.status === 404 || r.status === 400, `${target}: ${r.status}`);
      assert.doesNotMatch(r.body.toString('latin1'), secret, target);
      if (r.status === 404) {
        assert.equal(r.headers['content-type'], 'application/problem+json', target);
        assert.equal(JSON.parse(r.body.toString()).status, 404, target);
      }
    }
  });

  test('a NUL ends the path (libmicrohttpd unescapes in place): the same app file, never another', async () => {
    const index = await (await fetch(server.url + '/index.html')).text();
    for (const target of ['/index.html%00.png', '/index.html%00/../../etc/passwd', '/sw.js%00.html']) {
      const r = await rawRequest(server.port, 'GET', target);
      assert.equal(r.status, 200, target);
      assert.doesNotMatch(r.body.toString('latin1'), secret, target);
      if (target.startsWith('/index.html')) {
        assert.equal(r.body.toString(), index, target);
        assert.equal(r.headers['content-type'], 'text/html; charset=utf-8', target);
      } else {
        assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8', target);
      }
    }
  });

  test('other methods are 405 with Allow; the API and operations endpoints are untouched', async () => {
    const post = await fetch(server.url + '/index.html', { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal(post.headers.get('content-type'), 'application/problem+json');
    const api = await fetch(server.url + '/api/v1/nope');
    assert.equal(api.status, 401);
    const health = await fetch(server.url + '/healthz');
    assert.deepEqual(await health.json(), { status: 'ok' });
    const token = await server.login();
    const photos = await fetch(server.url + '/api/v1/photos', { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(photos.status, 200);
  });

  test('the web files are counted in the metrics under their own route', async () => {
    const text = await (await fetch(server.url + '/metrics')).text();
    assert.match(text, /rapidphoto_http_requests_total\{route="GET static",status="200"\} \d+/);
    assert.match(text, /rapidphoto_http_requests_total\{route="GET static",status="304"\} \d+/);
  });
});
