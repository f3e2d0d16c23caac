/*  tests/container/support.mjs: the container image under test, driven with
    podman on the host network (loopback addresses only), and the HTTP
    calls the container tests make.

    RP_IMAGE names the image (ctest sets it: rapid-photo/backend:<version>,
    which the container_build test makes with tools/container.sh build).
    Every container and volume made here is named rp-test-<pid>-<name> and
    removed by cleanup(), whatever happened.
*/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { freePort } from '../web/support.mjs';

export { freePort, makePhotos, sourceDir, startStandins, stopStandins, command } from '../web/support.mjs';

export const image = process.env.RP_IMAGE;
if (!image) throw new Error('RP_IMAGE is not set: run the container tests through ctest (ctest -L container)');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const made = { containers: new Set(), volumes: new Set() };

//  Run podman to its end: { code, out, err }. Rejects on a non-zero exit
//  unless `ok` lists that code.
export function podman(args, { input = '', ok = [0] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code, out: Buffer.concat(out).toString('utf8'), err };
      if (ok.includes(code)) resolve(result);
      else reject(new Error(`podman ${args.join(' ')}: exit ${code}: ${err}`));
    });
    child.stdin.end(input);
  });
}

export const nameFor = (name) => `rp-test-${process.pid}-${name}`;

export async function volume(name) {
  const full = nameFor(name);
  await podman(['volume', 'create', full]);
  made.volumes.add(full);
  return full;
}

//  The free loopback ports one engine needs on the host network: HTTP and
//  the broker's two (tcp://127.0.0.1:5570 and 5571 by default would meet
//  any other engine on this machine)
export async function enginePorts() {
  const http = await freePort();
  return {
    http,
    url: `http://127.0.0.1:${http}`,
    env: {
      RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${http}`,
      RAPIDPHOTO_BROKER_FRONTEND: `tcp://127.0.0.1:${await freePort()}`,
      RAPIDPHOTO_BROKER_BACKEND: `tcp://127.0.0.1:${await freePort()}`,
    },
  };
}

//  `podman run -d` of the image (or another) on the host network; resolves
//  once GET url/readyz answers 200, with the milliseconds from the start of
//  `podman run` to that 200.
export async function runEngine(name, { url, env, volume: vol, imageName = image, args = [] }) {
  const full = nameFor(name);
  const flags = ['run', '-d', '--name', full, '--network=host'];
  if (vol) flags.push('-v', `${vol}:/data`);
  for (const [k, v] of Object.entries(env)) flags.push('-e', `${k}=${v}`);
  await podman(['rm', '-f', full], { ok: [0, 1, 125] });
  const started = Date.now();
  await podman([...flags, imageName, ...args]);
  made.containers.add(full);
  return { name: full, readyMs: await waitReady(full, url, started) };
}

//  Waits for url/readyz to answer 200; the milliseconds since `since`.
export async function waitReady(container, url, since = Date.now()) {
  for (const deadline = Date.now() + 60000; ; await sleep(50)) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return Date.now() - since;
    } catch (_) { /* not listening yet */ }
    const state = await podman(['inspect', '--format', '{{.State.Status}}', container], { ok: [0, 125] });
    if (state.out.trim() !== 'running') throw new Error(`${container} is ${state.out.trim()}: ${await logs(container)}`);
    if (Date.now() > deadline) throw new Error(`${container}: ${url}/readyz not 200 in 60 s: ${await logs(container)}`);
  }
}

//  The container's output, both streams, for failure messages
export async function logs(container) {
  const r = await podman(['logs', '--tail', '40', container], { ok: [0, 125] });
  return `\n--- podman logs ${container} ---\n${r.out}${r.err}`;
}

export async function cleanup() {
  for (const c of made.containers) await podman(['rm', '-f', '-t', '2', c], { ok: [0, 1, 125] });
  for (const v of made.volumes) await podman(['volume', 'rm', '-f', v], { ok: [0, 1, 125] });
  made.containers.clear();
  made.volumes.clear();
}

//  ---- the API ---------------------------------------------------------------

export async function login(url, username, password) {
  const r = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await r.text();
  assert.equal(r.status, 200, `login as ${username}: ${r.status} ${body}`);
  return JSON.parse(body).token;
}

export async function api(url, token, path, init = {}) {
  return fetch(`${url}${path}`, { ...init, headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) } });
}

//  Uploads one file (multipart, as the web app does); resolves with its photo
export async function upload(url, token, file) {
  const form = new FormData();
  form.append('file', new Blob([fs.readFileSync(file)], { type: 'image/jpeg' }), file.split('/').pop());
  const r = await api(url, token, '/api/v1/photos', { method: 'POST', body: form });
  const text = await r.text();
  assert.equal(r.status, 202, `upload of ${file}: ${r.status} ${text}`);
  const body = JSON.parse(text);
  assert.equal(body.photos.length, 1);
  return body.photos[0];
}

//  Polls a photo until it is complete (fails the test if it fails)
export async function waitComplete(url, token, id, seconds = 60) {
  for (const deadline = Date.now() + seconds * 1000; ; await sleep(200)) {
    const r = await api(url, token, `/api/v1/photos/${id}`);
    assert.equal(r.status, 200, `photo ${id}: ${r.status}`);
    const photo = await r.json();
    assert.notEqual(photo.status, 'failed', `photo ${id} failed: ${photo.error}`);
    if (photo.status === 'complete') return photo;
    if (Date.now() > deadline) throw new Error(`photo ${id} is still ${photo.status} after ${seconds} s`);
  }
}

//  GET an authorised download: { status, type, bytes }
export async function download(url, token, path) {
  const r = await api(url, token, path);
  return { status: r.status, type: r.headers.get('content-type'), bytes: Buffer.from(await r.arrayBuffer()) };
}
