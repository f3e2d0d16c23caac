/*  tests/container/registry.spec.mjs: the ECR release and rollback
    rehearsal. Debian's docker-registry on 127.0.0.1:5000 (RP_REGISTRY_PORT;
    its own config file and storage under a temporary folder, stopped after)
    stands in for ECR.

    As the runbook does it: release v1.0.0 (build, tag v1.0.0 and latest,
    push both), then v1.0.1 (build, tag, push: latest moves), then roll back
    by pulling v1.0.0 by its tag. The two releases are two builds of this
    source with the project's version set to 1.0.0 and 1.0.1 (a copy, under
    the temporary folder; the layer cache serves all but the compile), so
    they differ as releases do: in their binary. The image pulled back is
    the first one, by its manifest digest and by `rapidphoto --version`
    inside it, and it runs: it starts on the volume v1.0.1 used, and finds
    the user and the photo v1.0.1 stored.
*/
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  cleanup, enginePorts, login, makePhotos, podman, runEngine, sleep, sourceDir, upload, volume,
  waitComplete,
} from './support.mjs';

const PORT = Number(process.env.RP_REGISTRY_PORT || 5000);
const REGISTRY = `127.0.0.1:${PORT}`;
const REPO = `${REGISTRY}/rapid-photo/backend`;
const USER = 'alice';
const PASSWORD = 'correct horse battery';

let work;
let registry;               //  the docker-registry process
const digests = {};         //  tag -> manifest digest, as pushed
const localTags = [];       //  every tag this test made, removed after

//  tools/container.sh build of the copy, with the version set; its time in ms
function buildRelease(version, tags) {
  const src = path.join(work, `src-${version}`);
  fs.cpSync(path.join(work, 'src'), src, { recursive: true });
  const cmake = path.join(src, 'CMakeLists.txt');
  const text = fs.readFileSync(cmake, 'utf8');
  const versioned = text.replace(/^project \(rapidphoto VERSION [0-9.]+/m, `project (rapidphoto VERSION ${version}`);
  assert.notEqual(versioned, text, 'CMakeLists.txt has the project line');
  fs.writeFileSync(cmake, versioned);
  const args = [path.join(sourceDir, 'tools', 'container.sh'), 'build', '--source', src];
  for (const t of tags) args.push('--tag', t);
  localTags.push(...tags, `rapid-photo/backend:${version}`, `localhost/rapid-photo/backend-build:${version}`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => (code === 0 ? resolve(Date.now() - started)
      : reject(new Error(`tools/container.sh build (${version}): exit ${code}: ${err.slice(-3000)}`))));
  });
}

//  podman push, answering the digest of the manifest the registry stored
async function push(ref) {
  const file = path.join(work, `digest-${ref.replace(/[^a-z0-9.]/gi, '_')}`);
  await podman(['push', '--quiet', '--tls-verify=false', '--digestfile', file, ref]);
  return fs.readFileSync(file, 'utf8').trim();
}

//  What the registry answers for a tag, asked with skopeo (not podman)
function skopeo(args) {
  return new Promise((resolve, reject) => execFile('skopeo', [...args], (error, out, stderr) =>
    (error ? reject(new Error(`skopeo ${args.join(' ')}: ${stderr || error.message}`)) : resolve(out))));
}
const inspect = async (tag) => JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${REPO}:${tag}`]));

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-container-registry-'));
  //  The registry: its own config and storage, loopback only
  const storage = path.join(work, 'storage');
  fs.mkdirSync(storage);
  const config = path.join(work, 'registry.yml');
  fs.writeFileSync(config, [
    'version: 0.1',
    'log: { level: warn }',
    `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
    `http: { addr: "${REGISTRY}" }`,
    '',
  ].join('\n'));
  const taken = await fetch(`http://${REGISTRY}/v2/`).then(() => true, () => false);
  assert.ok(!taken, `${REGISTRY} is taken by another program: set RP_REGISTRY_PORT to a free port`);
  const log = fs.openSync(path.join(work, 'registry.log'), 'w');
  registry = spawn('docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  registry.exited = new Promise((resolve) => registry.once('exit', resolve));
  for (const deadline = Date.now() + 15000; ; await sleep(100)) {
    const ok = await fetch(`http://${REGISTRY}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (registry.exitCode !== null || Date.now() > deadline)
      throw new Error(`docker-registry did not start: ${fs.readFileSync(path.join(work, 'registry.log'), 'utf8')}`);
  }
  //  The source, as a release checkout: what the build reads (.dockerignore
  //  keeps the rest out of the context anyway)
  fs.mkdirSync(path.join(work, 'src'));
  const skip = new Set(['.git', 'var', 'third_party', 'node_modules', 'tests']);
  for (const entry of fs.readdirSync(sourceDir)) {
    if (skip.has(entry) || entry.startsWith('build')) continue;
    fs.cpSync(path.join(sourceDir, entry), path.join(work, 'src', entry), {
      recursive: true, verbatimSymlinks: true,
      filter: (from) => !from.split(path.sep).includes('node_modules'),
    });
  }
});

after(async () => {
  await cleanup();
  for (const tag of localTags) await podman(['rmi', '--force', tag], { ok: [0, 1, 2, 125] });
  if (registry && registry.exitCode === null) {
    registry.kill('SIGTERM');
    await registry.exited;
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('ECR rehearsal: release v1.0.0, release v1.0.1, roll back to v1.0.0', () => {
  test('v1.0.0 is built and pushed as v1.0.0 and latest: one manifest under both tags', async () => {
    const ms = await buildRelease('1.0.0', [`${REPO}:v1.0.0`, `${REPO}:latest`]);
    console.log(`build of release 1.0.0 (cached but for the compile): ${ms} ms`);
    digests['v1.0.0'] = await push(`${REPO}:v1.0.0`);
    digests.latest = await push(`${REPO}:latest`);
    assert.match(digests['v1.0.0'], /^sha256:[0-9a-f]{64}$/);
    assert.equal(digests.latest, digests['v1.0.0']);
    assert.equal((await inspect('v1.0.0')).Digest, digests['v1.0.0']);
  });

  test('v1.0.1 is built and pushed as v1.0.1 and latest: latest moves, v1.0.0 stays', async () => {
    const ms = await buildRelease('1.0.1', [`${REPO}:v1.0.1`, `${REPO}:latest`]);
    console.log(`build of release 1.0.1: ${ms} ms`);
    digests['v1.0.1'] = await push(`${REPO}:v1.0.1`);
    assert.equal(await push(`${REPO}:latest`), digests['v1.0.1']);
    assert.notEqual(digests['v1.0.1'], digests['v1.0.0'], 'another release, another image');
    assert.equal((await inspect('latest')).Digest, digests['v1.0.1']);
    assert.equal((await inspect('v1.0.0')).Digest, digests['v1.0.0']);
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${REPO}`])).Tags.sort();
    assert.deepEqual(tags, ['latest', 'v1.0.0', 'v1.0.1']);
  });

  test('rollback: v1.0.0 pulled back by tag is the first image, by digest and by --version, and runs on v1.0.1\'s volume', async () => {
    //  v1.0.1 serves first and stores a user and a photo
    const vol = await volume('registry-data');
    const ports = await enginePorts();
    const newer = await runEngine('v1.0.1', { url: ports.url, env: ports.env, volume: vol, imageName: `${REPO}:v1.0.1` });
    await podman(['exec', '-i', newer.name, 'rapidphoto', 'user', 'add', USER, '--password-stdin'], { input: `${PASSWORD}\n` });
    const [file] = await makePhotos(path.join(work, 'photos'), 1, { prefix: 'rollback', offset: 60 });
    const token = await login(ports.url, USER, PASSWORD);
    const { id } = await waitComplete(ports.url, token, (await upload(ports.url, token, file)).id);
    await podman(['rm', '-f', '-t', '10', newer.name]);

    //  Nothing of v1.0.0 is left here: the pull must fetch it from the registry
    for (const tag of [`${REPO}:v1.0.0`, 'rapid-photo/backend:1.0.0'])
      await podman(['rmi', '--force', tag], { ok: [0, 1] });
    assert.equal((await podman(['image', 'exists', `${REPO}:v1.0.0`], { ok: [0, 1] })).code, 1);
    await podman(['pull', '--quiet', '--tls-verify=false', `${REPO}:v1.0.0`]);
    const pulled = (await podman(['image', 'inspect', '--format', '{{.Digest}}', `${REPO}:v1.0.0`])).out.trim();
    assert.equal(pulled, digests['v1.0.0'], 'the manifest pushed as v1.0.0');
    const version = await podman(['run', '--rm', '--network=none', `${REPO}:v1.0.0`, '--version']);
    assert.match(version.out, /^rapidphoto 1\.0\.0 \(libvips 8\.18\.\d+/);

    //  ...and it serves what v1.0.1 stored (the schema is rollback-safe)
    const older = await runEngine('v1.0.0', { url: ports.url, env: ports.env, volume: vol, imageName: `${REPO}:v1.0.0` });
    console.log(`rolled back: v1.0.0 ready on v1.0.1's volume in ${older.readyMs} ms`);
    const again = await login(ports.url, USER, PASSWORD);
    const r = await fetch(`${ports.url}/api/v1/photos/${id}`, { headers: { Authorization: `Bearer ${again}` } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).status, 'complete');
  });
});
