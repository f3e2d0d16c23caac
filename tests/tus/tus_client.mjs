// tests/tus/tus_client.mjs: resumable uploads with a real tus client.
//
// tus-js-client (the client behind Uppy and most web uploaders) drives a real
// `rapidphoto serve` over HTTP, the way a phone on a flaky network would:
//   big_upload_in_chunks   30 MB in 1 MiB chunks
//   dropped_connection     a proxy cuts the TCP connection mid-PATCH; the
//                          client resumes from what the server kept
//   engine_restart         the engine is SIGKILLed mid-upload and started
//                          again; the client resumes
//   checksum_mismatch      a wrong Upload-Checksum gets 460, the retry succeeds
//   termination            DELETE: the upload and its photo are gone
//   expired                an upload past Upload-Expires answers 404/410 and
//                          the engine has cleaned it up
// Every completed upload is downloaded again: the bytes stored must equal the
// bytes sent. Run by ctest (RP_BINARY names the engine); exit status 0 when
// every scenario passed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(here, 'node_modules', 'tus-js-client'))) {
  console.error('tus_client: tests/tus/node_modules is missing: run tools/bootstrap.sh --test');
  process.exit(1);
}
const tus = await import('tus-js-client');

const binary = process.env.RP_BINARY;
if (!binary || !existsSync(binary)) {
  console.error('tus_client: RP_BINARY must name the built rapidphoto binary');
  process.exit(1);
}
const MiB = 1024 * 1024;
const retryDelays = [0, 300, 1000, 2000, 3000, 5000, 8000];

// ---------------------------------------------------------------------------
// Helpers

function fail(message) {
  throw new Error(message);
}

function sha256(buffer) {
  return createHash('sha256').update(buffer).digest('hex');
}

//  As tests/web/support.mjs's: random below the ephemeral range, never
//  the same twice in this process (listen(0) twice in a row can hand the
//  same port back)
const givenPorts = new Set();
function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
async function freePort() {
  let high = 32768;
  try {
    const low = parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10);
    if (low > 11000) high = low;
  } catch { /* not Linux: the default range's start */ }
  for (let attempt = 0; attempt < 10000; attempt++) {
    const port = 10000 + Math.floor(Math.random() * (high - 10000));
    if (!givenPorts.has(port) && await canListen(port)) {
      givenPorts.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free port found below ' + high);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A real JPEG of about `size` bytes, unique: a small picture from
// ImageMagick, padded with APP15 segments of random bytes (which decoders
// skip), so deduplication never short-cuts the upload.
function makePhoto(dir, name, size) {
  const base = path.join(dir, `${name}.base.jpg`);
  const made = spawnSync('convert', ['-size', '320x240', 'gradient:#3060c0-#f0a020', base]);
  if (made.status !== 0) fail(`convert failed: ${made.stderr}`);
  const picture = readFileSync(base);
  const segments = [picture.subarray(0, 2)];
  let total = picture.length;
  while (total + 4 < size) {
    const len = Math.min(65533, size - total - 4);
    const header = Buffer.from([0xff, 0xef, (len + 2) >> 8, (len + 2) & 0xff]);
    segments.push(header, randomBytes(len));
    total += len + 4;
  }
  segments.push(picture.subarray(2));
  const bytes = Buffer.concat(segments);
  const file = path.join(dir, `${name}.jpg`);
  writeFileSync(file, bytes);
  return bytes;
}

class Engine {
  constructor(dir, extraEnv = {}) {
    this.dir = dir;
    this.extraEnv = extraEnv;
    this.child = null;
  }

  async init() {
    this.port = await freePort();
    this.frontend = await freePort();
    this.backend = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const add = spawnSync(binary, ['user', 'add', 'alice', '--password-stdin'], {
      env: this.env(), input: 'correct horse battery\n',
    });
    if (add.status !== 0) fail(`user add failed: ${add.stderr}`);
  }

  env() {
    return {
      ...process.env,
      RAPIDPHOTO_DATA_DIR: this.dir,
      RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${this.port}`,
      RAPIDPHOTO_BROKER_FRONTEND: `tcp://127.0.0.1:${this.frontend}`,
      RAPIDPHOTO_BROKER_BACKEND: `tcp://127.0.0.1:${this.backend}`,
      RAPIDPHOTO_LOG_LEVEL: 'info',
      ...this.extraEnv,
    };
  }

  async start() {
    const { openSync } = await import('node:fs');
    const log = openSync(path.join(this.dir, 'serve.log'), 'a');
    this.child = spawn(binary, ['serve'], { env: this.env(), stdio: ['ignore', log, log] });
    for (let i = 0; i < 200; i++) {
      try {
        const res = await fetch(`${this.base}/healthz`);
        if (res.ok) return;
      } catch { /* not up yet */ }
      await sleep(50);
    }
    fail(`serve did not start (log: ${this.dir}/serve.log)`);
  }

  // Resolves with the exit status (null when a signal ended it)
  kill(signal = 'SIGKILL') {
    const child = this.child;
    this.child = null;
    if (!child) return Promise.resolve(null);
    return new Promise((resolve) => {
      child.on('exit', (code) => resolve(code));
      child.kill(signal);
    });
  }

  // SIGTERM must end serve cleanly, status 0: a leak under LeakSanitizer
  // (the ASan pass) makes it 23
  async stop() {
    const code = await this.kill('SIGTERM');
    if (code !== 0) fail(`serve exited with ${code === null ? 'a signal' : `status ${code}`} on SIGTERM (log: ${this.dir}/serve.log)`);
  }

  async login() {
    const res = await fetch(`${this.base}/api/v1/auth/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'correct horse battery' }),
    });
    if (res.status !== 200) fail(`login: ${res.status} ${await res.text()}`);
    this.token = (await res.json()).token;
    return this.token;
  }

  async api(method, route) {
    return fetch(`${this.base}${route}`, { method, headers: { Authorization: `Bearer ${this.token}` } });
  }
}

// Upload with tus-js-client; resolves with what the responses said.
function upload(engine, bytes, options = {}) {
  const seen = { statuses: [], offsetsAfterHead: [], photoId: null, duplicate: null, url: null };
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(bytes, {
      endpoint: `${options.endpoint || engine.base}/api/v1/tus`,
      retryDelays,
      metadata: { filename: options.filename || 'photo.jpg', filetype: 'image/jpeg', tags: 'tus' },
      headers: { Authorization: `Bearer ${engine.token}` },
      removeFingerprintOnSuccess: true,
      ...options.tus,
      onAfterResponse(req, res) {
        seen.statuses.push(`${req.getMethod()} ${res.getStatus()}`);
        if (req.getMethod() === 'HEAD' && res.getStatus() === 200) {
          seen.offsetsAfterHead.push(Number(res.getHeader('Upload-Offset')));
        }
        if (res.getHeader('Photo-Id')) {
          seen.photoId = res.getHeader('Photo-Id');
          seen.duplicate = res.getHeader('Photo-Duplicate');
        }
        return options.tus?.onAfterResponse?.(req, res);
      },
      onProgress(sent, total) {
        options.onProgress?.(sent, total, up);
      },
      onError(error) {
        seen.error = error;
        reject(Object.assign(error, { seen }));
      },
      onSuccess() {
        seen.url = up.url;
        resolve(seen);
      },
    });
    options.onCreate?.(up);
    up.start();
  });
}

// The photo must reach complete, and its original must be the bytes sent.
async function verifyStored(engine, photoId, bytes) {
  if (!photoId) fail('the final response named no Photo-Id');
  let photo;
  for (let i = 0; i < 600; i++) {
    photo = await (await engine.api('GET', `/api/v1/photos/${photoId}`)).json();
    if (photo.status === 'complete' || photo.status === 'failed') break;
    await sleep(100);
  }
  if (photo.status !== 'complete') fail(`photo ${photoId} is ${photo.status}: ${photo.error}`);
  if (photo.sha256 !== sha256(bytes)) fail(`stored sha256 ${photo.sha256} != sent ${sha256(bytes)}`);
  if (photo.bytes !== bytes.length) fail(`stored ${photo.bytes} bytes != sent ${bytes.length}`);
  const original = Buffer.from(await (await engine.api('GET', `/api/v1/photos/${photoId}/original`)).arrayBuffer());
  if (!original.equals(bytes)) fail(`the downloaded original differs from the bytes sent (${original.length} vs ${bytes.length})`);
  return photo;
}

// ---------------------------------------------------------------------------
// Scenarios

const scenarios = {};

scenarios.big_upload_in_chunks = async ({ engine, dir }) => {
  const bytes = makePhoto(dir, 'big', 30 * MiB);
  let progress = 0;
  const seen = await upload(engine, bytes, {
    tus: { chunkSize: MiB },
    onProgress: (sent) => { progress = sent; },
  });
  const patches = seen.statuses.filter((s) => s === 'PATCH 204').length;
  if (patches !== 30) fail(`expected 30 PATCHes of 1 MiB, saw ${patches}`);
  if (progress !== bytes.length) fail(`progress ended at ${progress}`);
  const photo = await verifyStored(engine, seen.photoId, bytes);
  if (!photo.tags.includes('tus')) fail('the tags from Upload-Metadata are missing');
  return `30 PATCHes, ${bytes.length} bytes stored intact`;
};

scenarios.dropped_connection = async ({ engine, dir }) => {
  const bytes = makePhoto(dir, 'dropped', 24 * MiB);
  // A proxy that cuts the client's connection once, 12 MiB into the body
  let forwarded = 0;
  let cut = false;
  const proxy = net.createServer((client) => {
    const upstream = net.connect(engine.port, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.pipe(client);
    client.on('data', (data) => {
      forwarded += data.length;
      if (!cut && forwarded > 12 * MiB) {
        // Both sides reset, as when a phone drops off the network: the
        // server sees the connection end mid-body
        cut = true;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        return;
      }
      upstream.write(data);
    });
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${proxy.address().port}`;
  try {
    // One PATCH for the whole file: the cut lands inside it
    const seen = await upload(engine, bytes, { endpoint });
    if (!cut) fail('the proxy never cut the connection');
    const resumedAt = seen.offsetsAfterHead.find((o) => o > 0);
    if (!resumedAt) fail(`the server kept nothing of the cut PATCH (HEAD offsets ${seen.offsetsAfterHead})`);
    await verifyStored(engine, seen.photoId, bytes);
    return `cut at ${(12).toFixed(0)} MiB, resumed from offset ${resumedAt}, ${bytes.length} bytes stored intact`;
  } finally {
    proxy.close();
  }
};

scenarios.engine_restart = async ({ engine, dir }) => {
  const bytes = makePhoto(dir, 'restart', 20 * MiB);
  let killed = false;
  let restarted = null;
  const seen = await upload(engine, bytes, {
    tus: { chunkSize: MiB },
    onProgress: (sent) => {
      if (!killed && sent > 8 * MiB) {
        killed = true;
        restarted = engine.kill('SIGKILL').then(() => sleep(300)).then(() => engine.start());
      }
    },
  });
  await restarted;
  if (!killed) fail('the engine was never killed');
  const resumedAt = seen.offsetsAfterHead.find((o) => o > 0);
  if (!resumedAt) fail(`no HEAD after the restart found the bytes sent before it (${seen.offsetsAfterHead})`);
  await verifyStored(engine, seen.photoId, bytes);
  return `killed at 8 MiB, resumed from offset ${resumedAt}, ${bytes.length} bytes stored intact`;
};

scenarios.checksum_mismatch = async ({ engine, dir }) => {
  const bytes = makePhoto(dir, 'checksum', 3 * MiB);
  const chunkSize = MiB;
  let spoiled = false;
  let mismatches = 0;
  const seen = await upload(engine, bytes, {
    tus: {
      chunkSize,
      // Checksum extension: the digest of each PATCH's body. The first
      // second-chunk PATCH carries a wrong one.
      onBeforeRequest(req) {
        if (req.getMethod() !== 'PATCH') return;
        const offset = Number(req.getHeader('Upload-Offset'));
        let chunk = bytes.subarray(offset, offset + chunkSize);
        if (offset === chunkSize && !spoiled) {
          spoiled = true;
          chunk = Buffer.concat([chunk.subarray(1), Buffer.from([0])]);
        }
        req.setHeader('Upload-Checksum', `sha256 ${createHash('sha256').update(chunk).digest('base64')}`);
      },
      onAfterResponse(req, res) {
        if (res.getStatus() === 460) mismatches++;
      },
      onShouldRetry(err, attempt) {
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        return status === 460 || status === 423 || status === 409 || status === 0 || status >= 500;
      },
    },
  });
  if (mismatches !== 1) fail(`expected one 460, saw ${mismatches} (${seen.statuses})`);
  await verifyStored(engine, seen.photoId, bytes);
  return `460 once, retried, ${bytes.length} bytes stored intact`;
};

scenarios.termination = async ({ engine, dir }) => {
  const bytes = makePhoto(dir, 'terminate', 4 * MiB);
  let uploadUrl = null;
  await new Promise((resolve, reject) => {
    let terminated = false;
    const up = new tus.Upload(bytes, {
      endpoint: `${engine.base}/api/v1/tus`,
      chunkSize: MiB,
      metadata: { filename: 'terminate.jpg' },
      headers: { Authorization: `Bearer ${engine.token}` },
      onChunkComplete() {
        if (terminated) return;
        terminated = true;
        uploadUrl = up.url;
        up.abort(true).then(resolve, reject);      // true: DELETE the upload
      },
      onError: reject,
      onSuccess: () => reject(new Error('the upload finished before it was terminated')),
    });
    up.start();
  });
  const head = await fetch(uploadUrl, {
    method: 'HEAD', headers: { Authorization: `Bearer ${engine.token}`, 'Tus-Resumable': '1.0.0' },
  });
  if (head.status !== 404) fail(`HEAD after termination: ${head.status}, expected 404`);
  const id = uploadUrl.split('/').pop();
  const photo = await engine.api('GET', `/api/v1/photos/${id}`);
  if (photo.status !== 404) fail(`the terminated upload's photo still answers ${photo.status}`);
  if (existsSync(path.join(engine.dir, 'tus', id))) fail('the terminated upload left its parts on disk');
  return 'DELETE 204, then HEAD 404, photo and parts gone';
};

scenarios.expired = async ({ dir }) => {
  // An engine of its own whose uploads expire after 2 s
  const engine = new Engine(mkdtempSync(path.join(dir, 'expiring-')), { RAPIDPHOTO_UPLOADS_TUS_EXPIRE_S: '2' });
  await engine.init();
  await engine.start();
  try {
    await engine.login();
    const bytes = makePhoto(dir, 'expire', 3 * MiB);
    let uploadUrl = null;
    await new Promise((resolve, reject) => {
      const up = new tus.Upload(bytes, {
        endpoint: `${engine.base}/api/v1/tus`,
        chunkSize: MiB,
        metadata: { filename: 'expire.jpg' },
        headers: { Authorization: `Bearer ${engine.token}` },
        onChunkComplete() {
          uploadUrl = up.url;
          up.abort(false).then(resolve, reject);    // pause: keep the upload
        },
        onError: reject,
      });
      up.start();
    });
    await sleep(3500);
    const status = await new Promise((resolve) => {
      const up = new tus.Upload(bytes, {
        endpoint: `${engine.base}/api/v1/tus`,
        uploadUrl,
        chunkSize: MiB,
        retryDelays: null,
        headers: { Authorization: `Bearer ${engine.token}` },
        onError: (err) => resolve(err.originalResponse ? err.originalResponse.getStatus() : `error: ${err}`),
        onSuccess: () => resolve('success'),
      });
      // Resume the old upload, not a new one: HEAD on uploadUrl
      up.start();
    });
    // tus-js-client answers a 404/410 on HEAD by creating a new upload,
    // so ask the server directly as well
    const head = await fetch(uploadUrl, {
      method: 'HEAD', headers: { Authorization: `Bearer ${engine.token}`, 'Tus-Resumable': '1.0.0' },
    });
    if (head.status !== 404 && head.status !== 410) fail(`HEAD of the expired upload: ${head.status}`);
    const id = uploadUrl.split('/').pop();
    const photo = await (await engine.api('GET', `/api/v1/photos/${id}`)).json();
    if (photo.status !== 'failed' || !/expired/.test(photo.error)) {
      fail(`the expired upload's photo is ${photo.status} (${photo.error}), expected failed: expired`);
    }
    if (existsSync(path.join(engine.dir, 'tus', id))) fail('the expired upload left its parts on disk');
    return `HEAD ${head.status}, photo failed ("${photo.error}"), parts removed; the client then ${status === 'success' ? 'started a new upload' : `got ${status}`}`;
  } finally {
    await engine.stop();
  }
};

// ---------------------------------------------------------------------------

const root = mkdtempSync(path.join(os.tmpdir(), 'rp-tus-client-'));
const engine = new Engine(path.join(root, 'var'));
const { mkdirSync } = await import('node:fs');
mkdirSync(engine.dir);
await engine.init();
await engine.start();
await engine.login();

const only = process.argv.slice(2);
let failed = 0;
for (const [name, run] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue;
  const started = Date.now();
  try {
    const summary = await run({ engine, dir: root });
    console.log(`ok   ${name}: ${summary} (${Date.now() - started} ms)`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${name}: ${error.message}${error.seen ? ` (responses: ${error.seen.statuses.join(', ')})` : ''}`);
  }
  if (!engine.child) await engine.start();
}
try {
  await engine.stop();
} catch (error) {
  failed++;
  console.log(`FAIL shutdown: ${error.message}`);
}
const leftovers = existsSync(path.join(engine.dir, 'tus')) ? readdirSync(path.join(engine.dir, 'tus')) : [];
console.log(`${failed ? 'FAIL' : 'ok'}: ${Object.keys(scenarios).length - failed} of ${Object.keys(scenarios).length} scenarios passed; data in ${root}${leftovers.length ? `; part folders left: ${leftovers.join(' ')}` : ''}`);
process.exit(failed ? 1 : 0);
