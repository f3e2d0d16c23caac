/*  tests/cli/cli.spec.mjs: `rapidphoto health` and log.output, on the real
    binary (RP_BINARY, set by ctest).

    health is the container image's HEALTHCHECK: one GET of this engine's
    /healthz, found from http.listen as serve reads it (a wildcard host is
    asked on 127.0.0.1), exit 0 on 200, else 1; one line either way, on
    stdout when healthy, on stderr when not. log.output = stdout sends the
    log lines of serve to stdout (what the image sets); the commands whose
    stdout is their result (process, user, token, health) keep it for their
    results alone, whatever the key says.
*/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { binary, freePort, makePhotos } from '../web/support.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) /;

//  Run the binary to its end: { code, out, err, ms }
function run(args, env = {}, input = '') {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err, ms: Date.now() - started }));
    child.stdin.end(input);
  });
}

const lines = (text) => text.split('\n').filter((l) => l.length > 0);

let work;
let server;                 //  { port, env, child, out, err, exited }

//  A real serve on free ports, its stdout and stderr in files of their own
async function startServe(env) {
  const port = await freePort();
  const serveEnv = {
    RAPIDPHOTO_DATA_DIR: path.join(work, 'data'),
    RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${port}`,
    RAPIDPHOTO_BROKER_FRONTEND: `tcp://127.0.0.1:${await freePort()}`,
    RAPIDPHOTO_BROKER_BACKEND: `tcp://127.0.0.1:${await freePort()}`,
    ...env,
  };
  //  Files of this start's own: a second serve must not share the first's
  const out = path.join(work, `serve-${port}.stdout`);
  const err = path.join(work, `serve-${port}.stderr`);
  const outFd = fs.openSync(out, 'w');
  const errFd = fs.openSync(err, 'w');
  const child = spawn(binary, ['serve'], { env: { ...process.env, ...serveEnv }, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const s = { port, env: serveEnv, child, exited, out: () => fs.readFileSync(out, 'utf8'), err: () => fs.readFileSync(err, 'utf8') };
  for (const deadline = Date.now() + 30000; ; await sleep(100)) {
    try {
      //  Up: /healthz answers, and the line saying so is out (the
      //  gateway answers a moment before main logs it; longer under TSan)
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok
          && (s.out() + s.err()).includes(`serving http://127.0.0.1:${port}`)) return s;
    } catch (_) { /* not yet */ }
    if (child.exitCode !== null) throw new Error(`serve exited: ${s.err()}${s.out()}`);
    if (Date.now() > deadline) throw new Error(`serve did not answer in 30 s: ${s.err()}${s.out()}`);
  }
}

async function stopServe(s) {
  if (!s || s.child.exitCode !== null) return;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 20000);
  await s.exited;
  clearTimeout(timer);
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-cli-'));
  server = await startServe({ RAPIDPHOTO_LOG_OUTPUT: 'stdout' });
});

after(async () => {
  await stopServe(server);
  fs.rmSync(work, { recursive: true, force: true });
});

describe('rapidphoto health', () => {
  test('a serving engine is healthy: exit 0, one line on stdout naming the URL', async () => {
    const r = await run(['health'], server.env);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(lines(r.out), [`healthy: http://127.0.0.1:${server.port}/healthz answered 200`]);
    assert.equal(r.err, '', 'nothing on stderr, even with log.output = stdout');
  });

  test('a wildcard http.listen (what the image sets: 0.0.0.0) is asked on 127.0.0.1', async () => {
    for (const host of ['0.0.0.0', '*', '']) {
      const r = await run(['health'], { ...server.env, RAPIDPHOTO_HTTP_LISTEN: `${host}:${server.port}` });
      assert.equal(r.code, 0, `${host}: ${r.err}`);
      assert.match(r.out, new RegExp(`^healthy: http://127\\.0\\.0\\.1:${server.port}/healthz answered 200\\n$`));
    }
  });

  test('--config FILE gives the address, as it does to serve', async () => {
    const ini = path.join(work, 'health.ini');
    fs.writeFileSync(ini, `[http]\nlisten = 0.0.0.0:${server.port}\n`);
    const { RAPIDPHOTO_HTTP_LISTEN: _, ...env } = server.env;
    const r = await run(['health', '--config', ini], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `healthy: http://127.0.0.1:${server.port}/healthz answered 200\n`);
  });

  test('a URL is asked as given: /readyz answers 200, an unknown path is unhealthy', async () => {
    const ready = await run(['health', `http://127.0.0.1:${server.port}/readyz`]);
    assert.equal(ready.code, 0, ready.err);
    assert.equal(ready.out, `healthy: http://127.0.0.1:${server.port}/readyz answered 200\n`);
    const missing = await run(['health', `http://127.0.0.1:${server.port}/no-such-thing`]);
    assert.equal(missing.code, 1);
    assert.equal(missing.out, '');
    assert.equal(missing.err, `rapidphoto health: http://127.0.0.1:${server.port}/no-such-thing answered 404\n`);
  });

  test('nothing listening: exit 1, one line on stderr naming the URL and why', async () => {
    const port = await freePort();
    const r = await run(['health'], { ...server.env, RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${port}` });
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.equal(lines(r.err).length, 1, r.err);
    assert.match(r.err, new RegExp(`^rapidphoto health: http://127\\.0\\.0\\.1:${port}/healthz: .*(onnect|refused)`));
  });

  test('a server that takes the connection and never answers: exit 1 after the timeout, not a hang', async () => {
    const held = [];
    const silent = net.createServer((socket) => held.push(socket));
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address();
    try {
      const r = await run(['health', `http://127.0.0.1:${port}/healthz`]);
      assert.equal(r.code, 1);
      assert.match(r.err, /^rapidphoto health: http:\/\/127\.0\.0\.1:\d+\/healthz: .*[Tt]imed? ?out/);
      assert.ok(r.ms >= 4500 && r.ms < 15000, `gave up after ${r.ms} ms (the timeout is 5 s)`);
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }
  });

  test('wrong usage exits 2 naming the problem; a bad http.listen exits 1 naming it', async () => {
    const two = await run(['health', 'http://127.0.0.1:1/a', 'http://127.0.0.1:1/b']);
    assert.equal(two.code, 2);
    assert.match(two.err, /unexpected argument "http:\/\/127\.0\.0\.1:1\/b"/);
    const scheme = await run(['health', 'file:///etc/passwd']);
    assert.equal(scheme.code, 2);
    assert.match(scheme.err, /URL must start with http:\/\/ or https:\/\//);
    const option = await run(['health', '--verbose']);
    assert.equal(option.code, 2);
    const listen = await run(['health'], { RAPIDPHOTO_HTTP_LISTEN: '127.0.0.1' });
    assert.equal(listen.code, 1);
    assert.equal(listen.err, 'rapidphoto health: http.listen "127.0.0.1" is not host:port with a port from 1 to 65535\n');
  });
});

describe('log.output', () => {
  test('serve with log.output = stdout: its log lines on stdout, none on stderr', () => {
    const out = lines(server.out());
    assert.ok(out.some((l) => LOG_LINE.test(l) && l.includes(`serving http://127.0.0.1:${server.port}`)),
      `stdout:\n${server.out()}`);
    assert.ok(out.every((l) => LOG_LINE.test(l)), `only log lines on stdout:\n${server.out()}`);
    assert.equal(server.err(), '', 'stderr');
  });

  test('serve by default logs on stderr, stdout stays empty', async () => {
    const other = await startServe({ RAPIDPHOTO_DATA_DIR: path.join(work, 'data-stderr') });
    try {
      assert.equal(other.out(), '');
      assert.ok(lines(other.err()).some((l) => LOG_LINE.test(l) && l.includes('serving http://')), other.err());
    } finally {
      await stopServe(other);
    }
  });

  test('process keeps stdout for its results with log.output = stdout: JSON lines only, the log on stderr', async () => {
    const photos = await makePhotos(path.join(work, 'photos'), 2, { prefix: 'cli' });
    const r = await run(['process', '--out', path.join(work, 'out'), ...photos],
      { RAPIDPHOTO_LOG_OUTPUT: 'stdout', RAPIDPHOTO_LOG_LEVEL: 'debug' });
    assert.equal(r.code, 0, r.err);
    const results = lines(r.out).map((l) => JSON.parse(l));
    assert.equal(results.length, 2, r.out);
    for (const result of results) assert.equal(result.status, 'complete', JSON.stringify(result));
    assert.ok(lines(r.err).some((l) => LOG_LINE.test(l)), `the log went to stderr:\n${r.err}`);
  });

  test('user and token keep stdout for their results with log.output = stdout', async () => {
    const env = { RAPIDPHOTO_DATA_DIR: path.join(work, 'data-users'), RAPIDPHOTO_LOG_OUTPUT: 'stdout', RAPIDPHOTO_LOG_LEVEL: 'debug' };
    const add = await run(['user', 'add', 'alice', '--password-stdin'], env, 'correct horse battery\n');
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /^user alice added \(id [^)]+\)\n$/);
    assert.ok(lines(add.err).some((l) => LOG_LINE.test(l)), `a fresh library logs its migrations, on stderr:\n${add.err}`);
    const list = await run(['user', 'list'], env);
    assert.equal(list.code, 0, list.err);
    assert.equal(lines(list.out).length, 2, `a header and alice:\n${list.out}`);
    assert.match(lines(list.out)[1], /^alice /);
    const token = await run(['token', 'alice'], env);
    assert.equal(token.code, 0, token.err);
    assert.match(token.out, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/, 'the token alone');
  });
});
