/*  tests/container/image.spec.mjs: the image as users run it, on SQLite and
    a named volume: `podman run` with nothing but the HTTP and broker
    addresses set (free loopback ports: the host network), then the whole
    life of a photo through the API, a restart, and a new container on the
    same volume finding everything again.

    Also what the image promises: the engine runs as the user rapidphoto
    (uid 10001), never root; its HEALTHCHECK (`rapidphoto health`) answers
    healthy, run by podman and by hand; its log lines come out on stdout
    (log.output = stdout, from the image's environment) and `podman logs`
    has them; settings come from RAPIDPHOTO_* variables. Prints the time from
    `podman run` to /readyz 200.
*/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  api, cleanup, download, enginePorts, image, login, logs, makePhotos, podman, runEngine,
  upload, volume, waitComplete, waitReady,
} from './support.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery';
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) /;

let work;
let vol;
let ports;
let engine;                 //  { name, readyMs }
let file;                   //  the uploaded photo's path
let photo;                  //  its complete row, as the API gave it
let token;
const before_ = {};         //  thumbnail and preview bytes before the restart

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-container-image-'));
  [file] = await makePhotos(path.join(work, 'photos'), 1, { prefix: 'image', width: 1200, height: 900 });
  vol = await volume('image-data');
  ports = await enginePorts();
  engine = await runEngine('image', { url: ports.url, env: ports.env, volume: vol });
  console.log(`start-to-ready: podman run to /readyz 200 in ${engine.readyMs} ms (${image}, SQLite, fresh volume)`);
});

after(async () => {
  await cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe(`${image} on SQLite with a volume`, () => {
  test('the image says what it is: serve by default, port 8080, /data, the HEALTHCHECK, a non-root user', async () => {
    const [inspected] = JSON.parse((await podman(['image', 'inspect', image])).out);
    const config = inspected.Config;
    assert.deepEqual(config.Entrypoint, ['rapidphoto']);
    assert.deepEqual(config.Cmd, ['serve']);
    assert.equal(config.User, '10001:10001');
    assert.ok('8080/tcp' in config.ExposedPorts, JSON.stringify(config.ExposedPorts));
    assert.ok('/data' in config.Volumes, JSON.stringify(config.Volumes));
    assert.ok(config.Env.includes('RAPIDPHOTO_HTTP_LISTEN=0.0.0.0:8080'), config.Env.join(' '));
    assert.ok(config.Env.includes('RAPIDPHOTO_DATA_DIR=/data'));
    assert.ok(config.Env.includes('RAPIDPHOTO_LOG_OUTPUT=stdout'));
    assert.ok(config.Env.includes('RAPIDPHOTO_METRICS_EMF=on'), 'CloudWatch metrics (EMF) on stdout');
    //  --format docker keeps it (the OCI format has no HEALTHCHECK)
    assert.deepEqual(inspected.Healthcheck.Test, ['CMD', 'rapidphoto', 'health']);
  });

  test('a user made with `podman exec ... user add --password-stdin` logs in', async () => {
    const add = await podman(['exec', '-i', engine.name, 'rapidphoto', 'user', 'add', USER, '--password-stdin'],
      { input: `${PASSWORD}\n` });
    assert.match(add.out, new RegExp(`^user ${USER} added \\(id [^)]+\\)\\n$`), 'stdout: the result alone');
    token = await login(ports.url, USER, PASSWORD);
  });

  test('an upload over HTTP completes; the original downloads byte for byte, with both derivatives', async () => {
    const sent = await upload(ports.url, token, file);
    photo = await waitComplete(ports.url, token, sent.id);
    assert.equal(photo.width, 1200);
    const original = await download(ports.url, token, photo.urls.original);
    assert.equal(original.status, 200);
    assert.ok(original.bytes.equals(fs.readFileSync(file)), 'the original is the uploaded bytes');
    for (const kind of ['thumbnail', 'preview']) {
      const d = await download(ports.url, token, photo.urls[kind]);
      assert.equal(d.status, 200, kind);
      assert.equal(d.type, kind === 'thumbnail' ? 'image/webp' : 'image/jpeg');
      assert.ok(d.bytes.length > 100, kind);
      before_[kind] = d.bytes;
    }
  });

  test('the process runs as uid 10001, and what it wrote in the volume is owned by it', async () => {
    const pid = (await podman(['inspect', '--format', '{{.State.Pid}}', engine.name])).out.trim();
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = status.match(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m);
    assert.deepEqual(uid.slice(1), ['10001', '10001', '10001', '10001'], 'real, effective, saved and fs uid');
    assert.match(status, /^Gid:\s+10001\s+10001\s+10001\s+10001$/m);
    assert.match(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /^rapidphoto\0serve\0$/);
    const mount = (await podman(['volume', 'inspect', '--format', '{{.Mountpoint}}', vol])).out.trim();
    const db = fs.statSync(path.join(mount, 'rapidphoto.db'));
    assert.equal(db.uid, 10001, 'the SQLite file');
    const objects = fs.readdirSync(path.join(mount, 'objects'));
    assert.ok(objects.length > 0);
    for (const entry of objects) assert.equal(fs.statSync(path.join(mount, 'objects', entry)).uid, 10001, entry);
  });

  test('the HEALTHCHECK: podman runs it healthy, and `rapidphoto health` says so in one line', async () => {
    const run = await podman(['healthcheck', 'run', engine.name], { ok: [0, 1] });
    assert.equal(run.code, 0, `podman healthcheck run: ${run.out}${run.err}`);
    const status = (await podman(['inspect', '--format', '{{.State.Health.Status}}', engine.name])).out.trim();
    assert.equal(status, 'healthy');
    const health = await podman(['exec', engine.name, 'rapidphoto', 'health']);
    assert.equal(health.out, `healthy: http://127.0.0.1:${ports.http}/healthz answered 200\n`);
  });

  test('the log is on stdout: `podman logs` has the start-up and the photo, stderr has no log line', async () => {
    const out = await podman(['logs', engine.name]);
    const stdout = out.out.split('\n').filter(Boolean);
    assert.ok(stdout.some((l) => LOG_LINE.test(l) && l.includes(`serving http://127.0.0.1:${ports.http}`)), out.out);
    assert.ok(stdout.some((l) => LOG_LINE.test(l) && l.includes(photo.id)), `a line names photo ${photo.id}`);
    const logLinesOnStderr = out.err.split('\n').filter((l) => LOG_LINE.test(l));
    assert.deepEqual(logLinesOnStderr, [], 'no log line on stderr');
  });

  test('`podman restart`: the photo, its derivatives and the login are all still there', async () => {
    await podman(['restart', '-t', '10', engine.name]);
    await waitReady(engine.name, ports.url);
    await assertEverythingThere('after podman restart');
  });

  test('a new container on the same volume (the old one removed) finds everything again', async () => {
    await podman(['rm', '-f', '-t', '10', engine.name]);
    const again = await runEngine('image-again', { url: ports.url, env: ports.env, volume: vol });
    console.log(`start-to-ready on an existing volume: ${again.readyMs} ms`);
    await assertEverythingThere('in a new container');
    assert.ok(!(await logs(again.name)).includes('applied migration'), 'the schema was there already');
  });
});

//  The photo by id and in the gallery, complete; the same bytes for the
//  original and derivatives; the old token still valid (the secret is in
//  the volume) and the password still logging in.
async function assertEverythingThere(when) {
  const fresh = await login(ports.url, USER, PASSWORD);
  for (const t of [token, fresh]) {
    const r = await api(ports.url, t, `/api/v1/photos/${photo.id}`);
    assert.equal(r.status, 200, `${when}: photo ${photo.id}`);
    const row = await r.json();
    assert.equal(row.status, 'complete', when);
    assert.equal(row.sha256, photo.sha256, when);
  }
  const gallery = await (await api(ports.url, fresh, '/api/v1/photos')).json();
  assert.deepEqual(gallery.items.map((p) => p.id), [photo.id], when);
  const original = await download(ports.url, fresh, photo.urls.original);
  assert.ok(original.bytes.equals(fs.readFileSync(file)), `${when}: original`);
  for (const kind of ['thumbnail', 'preview']) {
    const d = await download(ports.url, fresh, photo.urls[kind]);
    assert.equal(d.status, 200, `${when}: ${kind}`);
    assert.ok(d.bytes.equals(before_[kind]), `${when}: the same ${kind}`);
  }
}
