/*  tests/cli/scrub.spec.mjs: bit-rot checks (issue 14, item 5) on the real
    binary (RP_BINARY, set by ctest), real storage and a real serve.

    Photos are uploaded over HTTP and processed by serve; then their stored
    bytes are damaged the way a disk damages them (a byte flipped in an
    original, a derivative deleted, another truncated), and:
      - `rapidphoto scrub` (disk, SQLite) reports the damaged original
        (a JSON line, an ERROR line naming the photo and both hashes, exit
        3), the API shows integrity "damaged", nothing is deleted; the lost
        and truncated derivatives are made again, decode (a second scrub
        finds nothing wrong with them) and GET returns them;
      - the background scrub of a running serve (scrub.rate_mb_s) finds the
        same on its own: the API, the ERROR line, the
        rapidphoto_scrub_damaged_total metric;
      - in S3 mode (the stand-in, s3rver, objects under its --dir) a byte
        flipped in the original's object and a derivative's object removed:
        the object's SHA-256 and ETag disagree with it, the derivative is
        made again and stored in the bucket.
    With RP_TEST_PG_URL set, the disk case runs again on PostgreSQL.
*/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { binary, makePhotos, startServer, startStandins, stopStandins } from '../web/support.mjs';
import { pgSchema } from '../lambda/support.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

//  Run the binary to its end: { code, out, err }
function runScrub(env, args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['scrub', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const objectPath = (dir, sha, suffix = '') => path.join(dir, 'objects', sha.slice(0, 2), sha.slice(2, 4), sha + suffix);

function flipByte(file, offset) {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

async function api(server, token, method, target, body, headers = {}) {
  return fetch(server.url + target, { method, body, headers: { Authorization: `Bearer ${token}`, ...headers } });
}

//  Upload files and wait until each photo is complete: [{ id, sha256, file }]
async function uploadAll(server, token, files) {
  const photos = [];
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    const r = await api(server, token, 'POST', '/api/v1/photos', bytes,
      { 'Content-Type': 'image/jpeg', 'X-Filename': path.basename(file) });
    const text = await r.text();
    assert.equal(r.status, 202, text);
    const body = JSON.parse(text);
    photos.push({ id: body.photos[0].id, sha256: sha256(bytes), file });
  }
  for (const p of photos) {
    for (const deadline = Date.now() + 20000; ; await sleep(100)) {
      const photo = await (await api(server, token, 'GET', `/api/v1/photos/${p.id}`)).json();
      if (photo.status === 'complete') break;
      assert.notEqual(photo.status, 'failed', JSON.stringify(photo));
      if (Date.now() > deadline) throw new Error(`photo ${p.id} not complete in 20 s: ${JSON.stringify(photo)}`);
    }
  }
  return photos;
}

const getPhoto = async (server, token, id) => (await api(server, token, 'GET', `/api/v1/photos/${id}`)).json();

async function waitFor(what, fn, ms = 15000) {
  for (const deadline = Date.now() + ms; ; await sleep(200)) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
  }
}

//  GET a derivative: 200, the bytes the store holds, of its format
async function assertServes(server, token, id, kind, file, magic) {
  const r = await api(server, token, 'GET', `/api/v1/photos/${id}/${kind}`);
  assert.equal(r.status, 200, `${kind} of ${id}`);
  const bytes = Buffer.from(await r.arrayBuffer());
  if (file) assert.deepEqual(bytes, fs.readFileSync(file), `${kind} served is the file stored`);
  assert.ok(magic(bytes), `${kind} is not its format`);
}
const isWebp = (b) => b.subarray(0, 4).toString() === 'RIFF' && b.subarray(8, 12).toString() === 'WEBP';
const isJpeg = (b) => b[0] === 0xff && b[1] === 0xd8 && b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;

let work;
let files;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-scrub-'));
  files = await makePhotos(path.join(work, 'photos'), 8, { prefix: 'scrub', offset: 900 });
});

after(() => {
  if (!process.env.RP_WEB_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

//  The command on a library whose bytes were damaged on disk
function commandSuite(label, makeEnv) {
  describe(`rapidphoto scrub (disk, ${label})`, () => {
    let server;
    let token;
    let photos;

    before(async () => {
      server = await startServer({ name: 'scrub', env: await makeEnv() });
      token = await server.login();
      photos = await uploadAll(server, token, files.slice(0, 3));
    });
    after(async () => { if (server) await server.stop(); });

    test('a flipped byte, a lost and a truncated derivative', async () => {
      const [a, b, c] = photos;
      const original = objectPath(server.dir, a.sha256);
      const before = fs.readFileSync(original);
      flipByte(original, Math.floor(before.length / 2));
      const damaged = fs.readFileSync(original);
      const thumb = objectPath(server.dir, b.sha256, '.thumbnail.webp');
      const preview = objectPath(server.dir, b.sha256, '.preview.jpg');
      fs.unlinkSync(thumb);
      fs.truncateSync(preview, Math.floor(fs.statSync(preview).size / 3));

      const first = await runScrub(server.env);
      assert.equal(first.code, 3, `exit 3 when damage is found: ${first.err}`);
      const findings = first.out.trim().split('\n').map((l) => JSON.parse(l));
      const fa = findings.find((f) => f.sha256 === a.sha256);
      assert.ok(fa, first.out);
      assert.equal(fa.integrity, 'damaged');
      assert.equal(fa.expected, a.sha256);
      assert.equal(fa.actual, sha256(damaged));
      const fb = findings.find((f) => f.sha256 === b.sha256);
      assert.ok(fb, first.out);
      assert.equal(fb.integrity, 'ok');
      assert.deepEqual([...fb.regenerated].sort(), ['preview', 'thumbnail']);
      assert.ok(!findings.find((f) => f.sha256 === c.sha256), 'the sound photo has nothing to say');
      //  The ERROR line names the photo, the expected and the actual hash
      const error = first.err.split('\n').find((l) => / ERROR /.test(l) && l.includes(a.id));
      assert.ok(error, first.err);
      assert.ok(error.includes(a.sha256) && error.includes(sha256(damaged)), error);
      assert.match(first.err, /scrub: done: 3 checked .* 1 damaged, 2 derivatives made again, 0 could not be, 0 not checked/);

      //  The API says so; nothing was deleted
      const pa = await getPhoto(server, token, a.id);
      assert.equal(pa.integrity, 'damaged');
      assert.match(pa.checked_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual(fs.readFileSync(original), damaged, 'the damaged original is kept as it is');
      assert.ok(fs.existsSync(objectPath(server.dir, a.sha256, '.thumbnail.webp')));
      const pb = await getPhoto(server, token, b.id);
      assert.equal(pb.integrity, 'ok');
      assert.equal((await getPhoto(server, token, c.id)).integrity, 'ok');
      const listed = await (await api(server, token, 'GET', '/api/v1/photos')).json();
      assert.equal(listed.items.find((p) => p.id === a.id).integrity, 'damaged');

      //  serve's /metrics counts the damaged photo the command found (its
      //  readiness prober reads the database)
      await waitFor('rapidphoto_photos_integrity', async () => {
        const metrics = await (await fetch(server.url + '/metrics')).text();
        return /^rapidphoto_photos_integrity\{integrity="damaged"\} 1$/m.test(metrics)
          && /^rapidphoto_photos_integrity\{integrity="ok"\} 2$/m.test(metrics);
      });

      //  The derivatives are back, whole, and served
      await assertServes(server, token, b.id, 'thumbnail', thumb, isWebp);
      await assertServes(server, token, b.id, 'preview', preview, isJpeg);
      const orig = await api(server, token, 'GET', `/api/v1/photos/${a.id}/original`);
      assert.equal(orig.status, 200);

      //  Again: the damaged original still damaged, the rest sound (the
      //  derivatives made again decode)
      const second = await runScrub(server.env, ['--rate', '100']);
      assert.equal(second.code, 3, second.err);
      const again = second.out.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(again.length, 1, second.out);
      assert.equal(again[0].sha256, a.sha256);
      assert.match(second.err, /scrub: done: 3 checked .* 1 damaged, 0 derivatives made again/);

      //  The original put right (a restore from backup): sound again, exit 0
      fs.writeFileSync(original, before);
      const third = await runScrub(server.env);
      assert.equal(third.code, 0, third.err);
      assert.equal(third.out, '');
      assert.equal((await getPhoto(server, token, a.id)).integrity, 'ok');
    });

    test('wrong usage is exit 2 naming it', async () => {
      const r = await runScrub(server.env, ['--rate', 'fast']);
      assert.equal(r.code, 2);
      assert.match(r.err, /--rate takes MB\/s/);
    });
  });
}

commandSuite('SQLite', async () => ({}));
if (process.env.RP_TEST_PG_URL) {
  //  A schema of its own: the scrub walks every photo in the database
  commandSuite('PostgreSQL', async () => ({ RAPIDPHOTO_DB_URL: await pgSchema(process.env.RP_TEST_PG_URL, 'test_scrub_cli') }));
} else {
  test('rapidphoto scrub on PostgreSQL', { skip: 'RP_TEST_PG_URL is not set: no PostgreSQL to run on' }, () => {});
}

describe('the background scrub of serve', () => {
  let server;
  let token;
  let photos;

  before(async () => {
    server = await startServer({
      name: 'scrubbg',
      env: { RAPIDPHOTO_SCRUB_RATE_MB_S: '20', RAPIDPHOTO_SCRUB_RECHECK_S: '1' },
    });
    token = await server.login();
    photos = await uploadAll(server, token, files.slice(3, 5));
  });
  after(async () => { if (server) await server.stop(); });

  test('finds a flipped byte and a lost derivative while serve runs', async () => {
    const [a, b] = photos;
    //  Checked on its own once complete
    await waitFor('first checks', async () => (await getPhoto(server, token, a.id)).integrity === 'ok'
      && (await getPhoto(server, token, b.id)).integrity === 'ok');
    const original = objectPath(server.dir, a.sha256);
    const size = fs.statSync(original).size;
    flipByte(original, size - 10);
    const damaged = fs.readFileSync(original);
    const thumb = objectPath(server.dir, b.sha256, '.thumbnail.webp');
    fs.unlinkSync(thumb);

    await waitFor('integrity damaged', async () => (await getPhoto(server, token, a.id)).integrity === 'damaged');
    await waitFor('thumbnail made again', async () => fs.existsSync(thumb));
    await assertServes(server, token, b.id, 'thumbnail', thumb, isWebp);
    assert.equal((await getPhoto(server, token, b.id)).integrity, 'ok');
    assert.deepEqual(fs.readFileSync(original), damaged, 'nothing deleted or changed');

    //  The counters move after the row and the file: wait for them too
    let metrics = '';
    const counter = (name) => Number((metrics.match(new RegExp(`^${name} (\\d+)$`, 'm')) || [])[1]);
    await waitFor('the scrub counters', async () => {
      metrics = await (await fetch(server.url + '/metrics')).text();
      return counter('rapidphoto_scrub_damaged_total') >= 1 && counter('rapidphoto_scrub_regenerated_total') >= 1;
    }).catch((e) => assert.fail(`${e.message}:\n${metrics}`));
    const log = fs.readFileSync(server.logPath, 'utf8');
    const error = log.split('\n').find((l) => / ERROR /.test(l) && l.includes(a.id) && l.includes(a.sha256));
    assert.ok(error && error.includes(sha256(damaged)), log.slice(-3000));

    //  Uploads still go through while it works: an upload acknowledged
    const [c] = await uploadAll(server, token, files.slice(5, 6));
    assert.ok(c.id);
  });
});

describe('rapidphoto scrub (S3 mode, the stand-in)', () => {
  let aws;
  let server;
  let token;
  let photos;
  const bucketDir = () => path.join(work, 's3', 'photos');
  const s3Object = (key) => path.join(bucketDir(), `${key}._S3rver_object`);

  before(async () => {
    aws = await startStandins(work);
    server = await startServer({
      name: 'scrubs3',
      env: {
        RAPIDPHOTO_STORAGE_BACKEND: 's3',
        RAPIDPHOTO_STORAGE_S3_BUCKET: 'photos',
        RAPIDPHOTO_STORAGE_S3_PREFIX: '',
        AWS_ENDPOINT_URL_S3: aws.s3,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_REGION: 'us-east-1',
      },
    });
    token = await server.login();
    photos = await uploadAll(server, token, files.slice(6, 8));
  });
  after(async () => {
    if (server) await server.stop();
    if (aws) await stopStandins(aws);
  });

  test('a flipped byte in an object and a derivative removed from the bucket', async () => {
    const [a, b] = photos;
    const key = (sha, suffix = '') => `objects/${sha.slice(0, 2)}/${sha.slice(2, 4)}/${sha}${suffix}`;
    const original = s3Object(key(a.sha256));
    //  Derivatives reach S3 once the photo is complete
    await waitFor('derivatives in the bucket', () => fs.existsSync(s3Object(key(b.sha256, '.thumbnail.webp'))));
    const bytes = fs.readFileSync(original);
    assert.equal(sha256(bytes), a.sha256, 'the stand-in keeps the bytes as they are');
    flipByte(original, 100);
    const damaged = fs.readFileSync(original);
    const thumbObject = s3Object(key(b.sha256, '.thumbnail.webp'));
    for (const f of fs.readdirSync(path.dirname(thumbObject)))
      if (f.startsWith(`${b.sha256}.thumbnail.webp._S3rver_`)) fs.unlinkSync(path.join(path.dirname(thumbObject), f));
    //  The local cache holds none of it: what is checked is the bucket
    fs.rmSync(path.join(server.dir, 'objects', b.sha256.slice(0, 2)), { recursive: true, force: true });

    const r = await runScrub(server.env);
    assert.equal(r.code, 3, r.err);
    const findings = r.out.trim().split('\n').map((l) => JSON.parse(l));
    const fa = findings.find((f) => f.sha256 === a.sha256);
    assert.equal(fa.integrity, 'damaged');
    assert.equal(fa.actual, sha256(damaged));
    const fb = findings.find((f) => f.sha256 === b.sha256);
    assert.deepEqual(fb.regenerated, ['thumbnail']);
    assert.ok(r.err.split('\n').some((l) => / ERROR /.test(l) && l.includes(a.id) && l.includes(sha256(damaged))), r.err);

    assert.equal((await getPhoto(server, token, a.id)).integrity, 'damaged');
    assert.equal((await getPhoto(server, token, b.id)).integrity, 'ok');
    assert.deepEqual(fs.readFileSync(original), damaged, 'the object is kept');
    assert.ok(fs.existsSync(thumbObject), 'the thumbnail is in the bucket again');
    await assertServes(server, token, b.id, 'thumbnail', thumbObject, isWebp);

    //  The same size but another ETag: an object whose bytes are sound
    //  again is "ok" again
    fs.writeFileSync(original, bytes);
    const again = await runScrub(server.env);
    assert.equal(again.code, 0, again.err);
    assert.equal((await getPhoto(server, token, a.id)).integrity, 'ok');
  });
});
