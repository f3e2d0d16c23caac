// tests/thumbhash/engine.spec.mjs: placeholders through the real path.
//
// A real `rapidphoto serve` (tests/web/support.mjs) on SQLite, then on
// PostgreSQL (RP_TEST_PG_URL, a schema of this test's own; unset: that case
// says it skipped). Photos of the corpus are uploaded over HTTP while the
// user's event stream (/api/v1/events, SSE) is open; once complete:
//   - GET /api/v1/photos/{id} has "thumbhash": standard base64 that decodes
//     (npm thumbhash), whose aspect ratio is the photo's as displayed
//     (upright: a portrait photo stored sideways gives a tall hash), with
//     the alpha flag set for the PNG with transparency and only for it;
//   - it is the reference encoder's hash of the pixels the resize job
//     makes (thumbhash_rgba), so the engine stored what the reference says;
//   - the stream's complete event for the photo carries the same thumbhash.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../web/support.mjs';

const here = import.meta.dirname;
if (!fs.existsSync(path.join(here, 'node_modules', 'thumbhash'))) {
  throw new Error('tests/thumbhash/node_modules is missing: run tools/bootstrap.sh --test');
}
const { rgbaToThumbHash, thumbHashToApproximateAspectRatio, thumbHashToRGBA } = await import('thumbhash');

const sourceDir = process.env.RP_SOURCE_DIR || path.resolve(here, '../..');
const testdata = process.env.RP_TESTDATA || path.resolve(sourceDir, '..', 'shared', 'testdata');
const corpus = fs.existsSync(path.join(testdata, 'images', 'camera')) ? path.join(testdata, 'images') : null;
const tool = process.env.RP_THUMBHASH_RGBA;
const pgBase = process.env.RP_TEST_PG_URL;
const SCHEMA = 'test_thumbhash';

//  Landscape, portrait stored sideways (EXIF orientation 6), a PNG with
//  transparency, a tiny camera photo, an orientation-8 landscape turned
const PHOTOS = [
  { file: 'camera/nikon_d3100_gps_small.jpg', type: 'image/jpeg' },
  { file: 'camera/canon_powershot_sx60hs_orient6.jpg', type: 'image/jpeg' },
  { file: 'formats/png_rgba.png', type: 'image/png', alpha: true },
  { file: 'camera/olympus_c8080wz.jpg', type: 'image/jpeg' },
  { file: 'orientation/Landscape_8.jpg', type: 'image/jpeg' },
];

const skipCorpus = corpus ? false : `skipped: the corpus (${testdata}) is absent`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function psql(url, sql) {
  return new Promise((resolve, reject) => execFile('psql', ['-qAtX', url, '-c', sql],
    (error, out, stderr) => (error ? reject(new Error(`psql: ${stderr || error.message}`)) : resolve(out.trim()))));
}

//  The user's event stream, parsed as it arrives: { events, close() }
async function openEvents(server, token) {
  const controller = new AbortController();
  const res = await fetch(`${server.url}/api/v1/events`, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
  assert.equal(res.status, 200);
  const stream = { events: [], close: () => controller.abort() };
  (async () => {
    const decoder = new TextDecoder();
    let text = '';
    try {
      for await (const chunk of res.body) {
        text += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data) stream.events.push(JSON.parse(data));
        }
      }
    } catch (_) { /* aborted */ }
  })();
  return stream;
}

async function upload(server, token, photo) {
  const form = new FormData();
  form.append('file', new Blob([fs.readFileSync(path.join(corpus, photo.file))], { type: photo.type }), path.basename(photo.file));
  const res = await fetch(`${server.url}/api/v1/photos`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body.photos[0].id;
}

async function completed(server, token, id) {
  for (const deadline = Date.now() + 60000; Date.now() < deadline; await sleep(100)) {
    const res = await fetch(`${server.url}/api/v1/photos/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    const photo = await res.json();
    if (photo.status === 'complete') return photo;
    assert.notEqual(photo.status, 'failed', `photo ${id} failed: ${photo.error}`);
  }
  throw new Error(`photo ${id} did not complete in 60 s: ${server.log()}`);
}

//  The reference's hash of the pixels the resize job makes from a file
function referenceHash(file, dir) {
  const line = JSON.parse(execFileSync(tool, [dir, file], { encoding: 'utf8' }).trim());
  assert.ok(!line.error, line.error);
  return Buffer.from(rgbaToThumbHash(line.width, line.height, fs.readFileSync(line.rgba))).toString('base64');
}

async function checkBackend(env) {
  const server = await startServer({ name: 'thumbhash', env });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-thumbhash-rgba-'));
  try {
    const token = await server.login();
    const stream = await openEvents(server, token);
    const ids = [];
    for (const photo of PHOTOS) ids.push(await upload(server, token, photo));
    for (const [i, id] of ids.entries()) {
      const spec = PHOTOS[i];
      const photo = await completed(server, token, id);
      assert.match(photo.thumbhash ?? '', B64, `${spec.file}: thumbhash ${photo.thumbhash}`);
      const hash = Buffer.from(photo.thumbhash, 'base64');
      assert.ok(hash.length >= 5 && hash.length <= 25, `${spec.file}: ${hash.length} bytes`);
      const decoded = thumbHashToRGBA(hash);
      assert.ok(decoded.w > 0 && decoded.h > 0 && decoded.rgba.length === decoded.w * decoded.h * 4);
      //  Aspect ratio as displayed (the hash keeps it to about one part in 7)
      const ratio = thumbHashToApproximateAspectRatio(hash);
      const actual = photo.width / photo.height;
      assert.ok(Math.abs(Math.log(ratio / actual)) < Math.log(1.3),
        `${spec.file}: the hash's aspect ratio ${ratio.toFixed(3)} is not the photo's ${photo.width}x${photo.height}`);
      assert.equal(Boolean(hash[2] & 0x80), Boolean(spec.alpha), `${spec.file}: alpha flag`);
      if (tool) assert.equal(photo.thumbhash, referenceHash(path.join(corpus, spec.file), work), `${spec.file}: not the reference's hash`);
      //  The complete event says the same
      let event;
      for (const deadline = Date.now() + 10000; !event && Date.now() < deadline; await sleep(50)) {
        event = stream.events.find((e) => e.id === id && e.status === 'complete');
      }
      assert.ok(event, `no complete event for ${spec.file} on the stream (${JSON.stringify(stream.events)})`);
      assert.equal(event.thumbhash, photo.thumbhash, `${spec.file}: the complete event's thumbhash`);
      //  Other events carry none
      for (const e of stream.events.filter((x) => x.id === id && x.status !== 'complete')) {
        assert.equal(e.thumbhash, undefined, `${spec.file}: a ${e.status} event carries a thumbhash`);
      }
      console.log(`# ${spec.file}: ${photo.width}x${photo.height}, thumbhash ${photo.thumbhash} (${hash.length} bytes, aspect ${ratio.toFixed(2)})`);
    }
    //  And in the list
    const list = await (await fetch(`${server.url}/api/v1/photos?limit=50`, { headers: { Authorization: `Bearer ${token}` } })).json();
    assert.equal(list.items.filter((p) => B64.test(p.thumbhash ?? '-')).length, PHOTOS.length);
    stream.close();
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    await server.stop();
  }
}

describe('placeholders through a running engine', { skip: skipCorpus }, () => {
  test('SQLite: photo JSON and the complete event carry the thumbhash', async () => {
    await checkBackend({});
  });

  test('PostgreSQL: photo JSON and the complete event carry the thumbhash',
    { skip: pgBase ? false : 'skipped: RP_TEST_PG_URL is unset (tools/pg.sh start prints it)' }, async () => {
      await psql(pgBase, `SET client_min_messages = warning; DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE; CREATE SCHEMA ${SCHEMA}`);
      const url = `${pgBase}${pgBase.includes('?') ? '&' : '?'}options=-csearch_path%3D${SCHEMA}`;
      try {
        await checkBackend({ RAPIDPHOTO_DB_URL: url });
      } finally {
        await psql(pgBase, `SET client_min_messages = warning; DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
      }
    });
});
