/*  tests/container/aws.spec.mjs: the image as it runs on ECS, on one
    machine: bytes in S3, work and events through SQS, metadata in
    PostgreSQL. The S3 and SQS stand-ins (tools/aws/standins.mjs) and
    PostgreSQL (tools/pg.sh: RP_TEST_PG_URL, which tools/test.sh sets; a
    schema of this test's own) run on the host's loopback; the container
    reaches them on the host network, configured only by environment
    variables, the AWS way (AWS_ENDPOINT_URL_S3 / _SQS, the access keys)
    and RAPIDPHOTO_*.

    Checked with Debian's aws CLI (/usr/bin/aws, botocore underneath: an
    independent client): an upload over HTTP completes with its original and
    both derivatives in the bucket, the same bytes as sent; a file put under
    incoming/<user>/ becomes a complete photo; each one's photo.complete is
    on the events queue.
*/
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  api, cleanup, enginePorts, image, login, makePhotos, podman, runEngine, sleep, startStandins,
  stopStandins, upload, volume, waitComplete,
} from './support.mjs';

const AWS_CLI = '/usr/bin/aws';
const SCHEMA = 'test_container_aws';
const USER = 'alice';
const PASSWORD = 'correct horse battery';
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

let work;
let aws;                    //  the stand-ins
let queues;
let engine;
let ports;
let token;
let photos;                 //  [uploaded, put under incoming/]
const events = [];          //  the bodies received from the events queue

//  The aws CLI against a stand-in; resolves with stdout
function awsCli(endpoint, args) {
  return new Promise((resolve, reject) => {
    execFile(AWS_CLI, ['--endpoint-url', endpoint, ...args],
      { env: { ...process.env, ...CREDENTIALS, AWS_DEFAULT_REGION: 'us-east-1' }, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => (error ? reject(new Error(`aws ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)));
  });
}

//  objects/ab/cd/<sha256><suffix>: where the engine keeps an original and its derivatives
const objectKey = (sha, suffix = '') => `objects/${sha.slice(0, 2)}/${sha.slice(2, 4)}/${sha}${suffix}`;
const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

async function bucketObject(key) {
  const to = path.join(work, `got-${crypto.randomUUID()}`);
  await awsCli(aws.s3, ['s3', 'cp', '--only-show-errors', `s3://photos/${key}`, to]);
  return fs.readFileSync(to);
}

//  A schema of this test's own in the PostgreSQL of RP_TEST_PG_URL (as the
//  C suites make theirs), and the URL that selects it
async function pgUrl() {
  const base = process.env.RP_TEST_PG_URL;
  assert.ok(base, 'RP_TEST_PG_URL is unset: tools/test.sh starts PostgreSQL with tools/pg.sh and sets it');
  await new Promise((resolve, reject) => execFile('psql', ['-q', base, '-c',
    `SET client_min_messages = warning; DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE; CREATE SCHEMA ${SCHEMA}`],
  (error, _out, stderr) => (error ? reject(new Error(`psql: ${stderr || error.message}`)) : resolve())));
  return `${base}${base.includes('?') ? '&' : '?'}options=-csearch_path%3D${SCHEMA}`;
}

before(async () => {
  assert.ok(fs.existsSync(AWS_CLI), `${AWS_CLI} is missing: tools/bootstrap.sh --test installs Debian's awscli`);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-container-aws-'));
  photos = await makePhotos(path.join(work, 'photos'), 2, { prefix: 'aws', width: 1000, height: 750, offset: 40 });
  aws = await startStandins(work);
  queues = {
    ingest: `${aws.sqs}/123456789012/ingest`,
    events: `${aws.sqs}/123456789012/events`,
  };
  ports = await enginePorts();
  const env = {
    ...ports.env,
    ...CREDENTIALS,
    AWS_ENDPOINT_URL_S3: aws.s3,
    AWS_ENDPOINT_URL_SQS: aws.sqs,
    RAPIDPHOTO_DB_URL: await pgUrl(),
    RAPIDPHOTO_STORAGE_BACKEND: 's3',
    RAPIDPHOTO_STORAGE_S3_BUCKET: 'photos',
    RAPIDPHOTO_SQS_INGEST_QUEUE_URL: queues.ingest,
    RAPIDPHOTO_SQS_EVENTS_QUEUE_URL: queues.events,
    RAPIDPHOTO_SQS_WAIT_S: '1',
  };
  engine = await runEngine('aws', { url: ports.url, env, volume: await volume('aws-cache') });
  console.log(`start-to-ready in S3 mode (PostgreSQL, S3, SQS): ${engine.readyMs} ms`);
  await podman(['exec', '-i', engine.name, 'rapidphoto', 'user', 'add', USER, '--password-stdin'], { input: `${PASSWORD}\n` });
  token = await login(ports.url, USER, PASSWORD);
});

after(async () => {
  await cleanup();
  if (aws) await stopStandins(aws);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

//  Receives from the events queue until one names the photo id
async function eventFor(id) {
  for (const deadline = Date.now() + 30000; Date.now() < deadline;) {
    const found = events.find((e) => e.id === id);
    if (found) return found;
    const out = await awsCli(aws.sqs, ['sqs', 'receive-message', '--queue-url', queues.events,
      '--max-number-of-messages', '10', '--wait-time-seconds', '2', '--visibility-timeout', '300', '--output', 'json']);
    if (out.trim()) for (const m of JSON.parse(out).Messages || []) events.push(JSON.parse(m.Body));
  }
  throw new Error(`no event names photo ${id} (received: ${JSON.stringify(events)})`);
}

describe(`${image} in S3 mode on the stand-ins and PostgreSQL`, () => {
  test('/readyz: the database (PostgreSQL) and the bucket answer', async () => {
    const r = await fetch(`${ports.url}/readyz`);
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.status, 'ready');
    assert.equal(body.checks.database, 'ok');
    assert.equal(body.checks.storage, 'ok');
  });

  test('an upload over HTTP completes; original and derivatives are in the bucket, the same bytes', async () => {
    const sent = fs.readFileSync(photos[0]);
    const sha = sha256(sent);
    const { id } = await upload(ports.url, token, photos[0]);
    const photo = await waitComplete(ports.url, token, id);
    assert.equal(photo.sha256, sha);
    const listing = await awsCli(aws.s3, ['s3', 'ls', '--recursive', 's3://photos/objects/']);
    for (const suffix of ['', '.thumbnail.webp', '.preview.jpg'])
      assert.ok(listing.includes(objectKey(sha, suffix)), `${objectKey(sha, suffix)} in:\n${listing}`);
    assert.ok((await bucketObject(objectKey(sha))).equals(sent), 'the original in S3 is the bytes sent');
    const thumbnail = await bucketObject(objectKey(sha, '.thumbnail.webp'));
    assert.equal(thumbnail.subarray(8, 12).toString('latin1'), 'WEBP');
    const preview = await bucketObject(objectKey(sha, '.preview.jpg'));
    assert.equal(preview.readUInt16BE(0), 0xffd8, 'a JPEG');
    const event = await eventFor(id);
    assert.equal(event.type, 'photo.complete');
    assert.equal(event.original, objectKey(sha));
    assert.equal(event.derivatives.thumbnail, objectKey(sha, '.thumbnail.webp'));
  });

  test('a file put under incoming/<user>/ with the aws CLI becomes a complete photo', async () => {
    const sent = fs.readFileSync(photos[1]);
    const sha = sha256(sent);
    await awsCli(aws.s3, ['s3', 'cp', '--only-show-errors', photos[1], `s3://photos/incoming/${USER}/dropped in.jpg`]);
    let photo;
    for (const deadline = Date.now() + 60000; !photo; await sleep(250)) {
      const page = await (await api(ports.url, token, '/api/v1/photos?limit=10')).json();
      photo = page.items.find((p) => p.filename === 'dropped in.jpg' && p.status === 'complete');
      assert.ok(!page.items.some((p) => p.filename === 'dropped in.jpg' && p.status === 'failed'), JSON.stringify(page.items));
      if (!photo && Date.now() > deadline) throw new Error(`no complete photo "dropped in.jpg": ${JSON.stringify(page.items)}`);
    }
    assert.equal(photo.sha256, sha);
    const listing = await awsCli(aws.s3, ['s3', 'ls', '--recursive', 's3://photos/objects/']);
    assert.ok(listing.includes(objectKey(sha, '.thumbnail.webp')), listing);
    const event = await eventFor(photo.id);
    assert.equal(event.type, 'photo.complete');
    assert.equal(event.user, USER);
    assert.equal(event.bytes, sent.length);
  });
});
