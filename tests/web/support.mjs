/*  tests/web/support.mjs: a real `rapidphoto serve` for the web tests, on a
    fresh data folder, a free HTTP port and free broker ports, with one user.

    RP_BINARY names the binary (ctest sets it). stop() ends the server with
    SIGTERM and removes the folder; restart() stops and starts it again on
    the same folder and port (the tests use it to take the server away).
*/
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const binary = process.env.RP_BINARY;
export const sourceDir = process.env.RP_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
if (!binary) throw new Error('RP_BINARY is not set: run the web tests through ctest');

//  A port on 127.0.0.1 that was free a moment ago: random below the
//  kernel's ephemeral range (where listen(0) and outgoing connections take
//  theirs), and never the same twice in this process: listen(0) asked
//  twice in a row can hand the same port back (a serve's HTTP port once
//  came back equal to its broker's). tests/support/testdata.c does the same.
const givenPorts = new Set();
function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
export async function freePort() {
  let high = 32768;
  try {
    const low = parseInt(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10);
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

//  Run the binary to its end: resolves with its stdout, rejects on a
//  status other than 0
export function run(args, env, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`rapidphoto ${args.join(' ')}: exit ${code}: ${err}`))));
    child.stdin.end(input || '');
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startServer({ name = 'web', user = 'alice', password = 'correct horse battery', env = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rp-${name}-`));
  const port = await freePort();
  const frontend = await freePort();
  const backend = await freePort();
  const serverEnv = {
    ...process.env,
    RAPIDPHOTO_DATA_DIR: dir,
    RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${port}`,
    RAPIDPHOTO_BROKER_FRONTEND: `tcp://127.0.0.1:${frontend}`,
    RAPIDPHOTO_BROKER_BACKEND: `tcp://127.0.0.1:${backend}`,
    ...env,
  };
  await run(['user', 'add', user, '--password-stdin'], serverEnv, password + '\n');
  const server = { dir, port, url: `http://127.0.0.1:${port}`, user, password, env: serverEnv, child: null, logPath: path.join(dir, 'serve.log') };

  server.start = async () => {
    const log = fs.openSync(server.logPath, 'a');
    server.child = spawn(binary, ['serve'], { env: serverEnv, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const exited = new Promise((resolve) => server.child.once('exit', (code, signal) => resolve({ code, signal })));
    server.exited = exited;
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        const r = await fetch(server.url + '/healthz');
        if (r.ok) return server;
      } catch (_) { /* not yet */ }
      if (server.child.exitCode !== null) throw new Error(`serve exited early: ${server.log()}`);
      if (Date.now() > deadline) throw new Error(`serve did not answer /healthz in 30 s: ${server.log()}`);
      await sleep(100);
    }
  };

  //  SIGTERM must end serve cleanly, status 0: a leak under LeakSanitizer
  //  (the ASan pass) makes it 23, a crash a signal. The drain may take up to
  //  shutdown.timeout_s (25 s by default) when an upload is under way, as
  //  one throttled by the browser is: SIGKILL only well after that.
  server.halt = async () => {
    if (!server.child || server.child.exitCode !== null) return;
    server.child.kill('SIGTERM');
    const drainS = Number(serverEnv.RAPIDPHOTO_SHUTDOWN_TIMEOUT_S || 25);
    const timer = setTimeout(() => server.child.kill('SIGKILL'), (drainS + 15) * 1000);
    const { code, signal } = await server.exited;
    clearTimeout(timer);
    if (code !== 0) throw new Error(`serve exited with ${signal || `status ${code}`} on SIGTERM: ${server.log()}`);
  };

  server.stop = async () => {
    await server.halt();
    if (!process.env.RP_WEB_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  };

  server.log = () => {
    try {
      return fs.readFileSync(server.logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch (_) {
      return '';
    }
  };

  server.login = async () => {
    const r = await fetch(server.url + '/api/v1/auth/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: user, password }),
    });
    if (!r.ok) throw new Error(`login: ${r.status}`);
    return (await r.json()).token;
  };

  await server.start();
  return server;
}

//  The local AWS stand-ins (tools/aws/standins.mjs: s3rver and local-aws-sqs,
//  wired as S3 and SQS are) on free ports, objects under dir/s3; resolves
//  once they say ready: { child, exited, s3, sqs (their URLs), log() }.
export async function startStandins(dir) {
  const s3Port = await freePort();
  const sqsPort = await freePort();
  const logPath = path.join(dir, 'standins.log');
  const log = fs.openSync(logPath, 'a');
  const child = spawn(process.execPath, [path.join(sourceDir, 'tools', 'aws', 'standins.mjs'),
    '--port', String(s3Port), '--sqs-port', String(sqsPort), '--dir', path.join(dir, 's3')],
  { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const standins = {
    child, exited, s3: `http://127.0.0.1:${s3Port}`, sqs: `http://127.0.0.1:${sqsPort}`,
    log: () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : ''),
  };
  for (const deadline = Date.now() + 15000; !/^ready /m.test(standins.log()); await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`the stand-ins exited: ${standins.log()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the stand-ins did not say ready in 15 s: ${standins.log()}`);
    }
  }
  return standins;
}

export async function stopStandins(standins) {
  if (standins.child.exitCode !== null) return;
  standins.child.kill('SIGTERM');
  const timer = setTimeout(() => standins.child.kill('SIGKILL'), 10000);
  await standins.exited;
  clearTimeout(timer);
}

//  One raw HTTP/1.1 request, the path sent as written (no normalisation,
//  no escaping): { status, headers, body }.
export function rawRequest(port, method, target, headers = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    socket.setTimeout(10000, () => socket.destroy(new Error('raw request timed out')));
    socket.on('connect', () => {
      let text = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
      for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
      socket.write(text + '\r\n');
    });
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const out = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status, headers: out, body: all.subarray(split + 4) });
    });
  });
}

//  `count` small distinct JPEGs (a gradient and a block that differ by
//  index), written as PPM by hand and encoded by libvips' `vips` command:
//  photo-000.jpg ... in dir. Returns their paths.
export async function makePhotos(dir, count, { prefix = 'photo', width = 400, height = 300, offset = 0 } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const paths = [];
  const jobs = [];
  for (let i = 0; i < count; i++) {
    const n = i + offset;
    const header = Buffer.from(`P6\n${width} ${height}\n255\n`);
    const pixels = Buffer.alloc(width * height * 3);
    const hue = (n * 37) % 360;
    const [r0, g0, b0] = hsl(hue, 0.55, 0.55);
    const [r1, g1, b1] = hsl((hue + 60) % 360, 0.6, 0.35);
    const bx = (n * 53) % (width - 120);
    const by = (n * 29) % (height - 90);
    for (let y = 0, o = 0; y < height; y++) {
      for (let x = 0; x < width; x++, o += 3) {
        const t = (x + y) / (width + height);
        let r = r0 + (r1 - r0) * t;
        let g = g0 + (g1 - g0) * t;
        let b = b0 + (b1 - b0) * t;
        if (x >= bx && x < bx + 120 && y >= by && y < by + 90) {
          r = 250; g = 250; b = 245;
        } else if ((((x >> 4) + (y >> 4) + n) % 11) === 0) {
          r *= 0.8; g *= 0.8; b *= 0.8;
        }
        pixels[o] = r; pixels[o + 1] = g; pixels[o + 2] = b;
      }
    }
    const ppm = path.join(dir, `${prefix}-${String(n).padStart(3, '0')}.ppm`);
    const jpg = ppm.replace(/\.ppm$/, '.jpg');
    fs.writeFileSync(ppm, Buffer.concat([header, pixels]));
    paths.push(jpg);
    jobs.push([ppm, jpg]);
  }
  //  One vipsthumbnail process encodes them all (never enlarges: same size)
  await command('vipsthumbnail', [...jobs.map(([ppm]) => ppm), '--size', `${width}x${height}`, '-o', '%s.jpg[Q=85]']);
  for (const [ppm, jpg] of jobs) {
    if (!fs.existsSync(jpg)) throw new Error(`vipsthumbnail wrote no ${jpg}`);
    fs.rmSync(ppm);
  }
  return paths;
}

function hsl(h, s, l) {
  const a = s * Math.min(l, 1 - l);
  const f = (n) => {
    const k = (n + h / 30) % 12;
    return 255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1)));
  };
  return [f(0), f(8), f(4)];
}

//  Run a command; resolves with its stdout, rejects naming it on failure.
export function command(file, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}
