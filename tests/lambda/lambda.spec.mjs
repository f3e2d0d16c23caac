/*  tests/lambda/lambda.spec.mjs: `rapidphoto lambda` as AWS Lambda runs it,
    on one machine (issue 18, item 4).

    The Runtime API and the SQS event source mapping are served by
    tests/lambda/support.mjs (no Lambda emulator is to be had here); S3 and
    SQS are the stand-ins (tools/aws/standins.mjs: objects created under
    incoming/ are announced on the "ingest" queue as S3 does), PostgreSQL
    is RP_TEST_PG_URL (tools/pg.sh; a schema of this test's own). The
    runtime is RP_LAMBDA_CMD (JSON argv) or RP_BINARY lambda, configured
    by environment alone. Photos are ../shared/testdata's camera JPEGs
    (RP_TESTDATA); without the corpus or PostgreSQL the test says it
    skipped.

    Checked: a batch of photos put under incoming/alice/ completes (rows in
    PostgreSQL, derivatives in the bucket, photo.complete on the events
    queue) and the trace id of the invocation is on its log lines; bad
    records (no such user, not an image by its first bytes, not a
    notification) and only they are listed in batchItemFailures and come
    back; an event that is not an SQS batch is an invocation error; a
    JPEG that does not decode becomes a failed photo and is not listed; a
    short deadline lists what did not finish, which the redelivery
    finishes; SIGKILL mid-batch, a new runtime and the redelivery make
    each photo once; a database that cannot be reached and a wrong
    storage.backend are init errors with their types, exit status 1;
    SIGTERM ends the runtime with status 0.
*/
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CREDENTIALS, cameraPhotos, eventSource, getObject, objectKey, pgSchema, psql, putObject, sleep, sqs,
  startRuntime, startRuntimeApi, stopRuntime, testdata,
} from './support.mjs';

const sourceDir = process.env.RP_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
const corpus = testdata(sourceDir);
const pgBase = process.env.RP_TEST_PG_URL;
const skip = !corpus ? 'skipped: ../shared/testdata (RP_TESTDATA) is absent'
  : !pgBase ? 'skipped: RP_TEST_PG_URL is unset (tools/pg.sh start prints it; tools/test.sh sets it)'
    : !process.env.RP_BINARY ? 'skipped: RP_BINARY is unset (run through ctest)' : false;
if (skip) console.log(`# lambda_runtime ${skip}`);

//  A schema of this process's own: lambda_runtime and lambda_zip_runtime run
//  this file at the same time (ctest -j2)
const SCHEMA = `test_lambda_${process.pid}`;
const VISIBILITY_S = 3;
//  lambda.deadline_margin_ms: records are taken while more than twice it
//  remains. Taking one in here (the S3 stand-in's GET and PUT of a 3 MB
//  photo on a loaded machine) can take 2 s: the margin must cover that
const MARGIN_MS = 2500;
let work;
let aws;
let dbUrl;
let api;
let runtime;
let ingest;
let eventsUrl;
let baseEnv;
const published = [];       //  bodies received from the events queue

const byName = (name) => path.join(corpus, 'images', 'camera', name);
const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const sqlText = (s) => `'${s.replace(/'/g, "''")}'`;

function run(args, env, input = '') {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.RP_BINARY, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`rapidphoto ${args.join(' ')}: ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

//  The environment the runtime gets, and nothing else of ours
function runtimeEnv(api_, extra = {}) {
  const pass = {};
  for (const name of ['PATH', 'LANG', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'TSAN_OPTIONS'])
    if (process.env[name]) pass[name] = process.env[name];
  return { ...pass, ...baseEnv, AWS_LAMBDA_RUNTIME_API: api_.address, ...extra };
}

//  Start the runtime on api; resolves once it asks for its first invocation
async function launch(api_, logName, extra = {}) {
  const started = startRuntime(runtimeEnv(api_, extra), path.join(work, logName));
  for (const deadline = Date.now() + 60000; !api_.idle(); await sleep(25)) {
    if (started.child.exitCode !== null || started.child.signalCode !== null)
      throw new Error(`the runtime exited before its first /next: ${started.log()}`);
    if (Date.now() > deadline) throw new Error(`no /next within 60 s: ${started.log()}`);
  }
  return started;
}

//  The photo each key became: { id, status, error, sha256 } or undefined
async function photosOf(keys) {
  const out = await psql(dbUrl, `SELECT o.object_key, p.id, p.status, coalesce (p.sha256, ''), coalesce (p.error, '')
    FROM s3_objects o JOIN photos p ON p.id = o.photo_id WHERE o.object_key IN (${keys.map(sqlText).join(', ')})`);
  const found = {};
  for (const line of out.split('\n').filter(Boolean)) {
    const [key, id, status, sha, error] = line.split('|');
    found[key] = { id, status, sha256: sha, error };
  }
  return found;
}

//  Put files under keys, then collect their notifications from the queue
async function putAndReceive(files) {
  const etags = {};
  for (const [key, file] of Object.entries(files)) etags[key] = await putObject(aws.s3, key, fs.readFileSync(file));
  //  Only these objects' notifications: what an earlier test left is dropped
  const keys = new Set(Object.keys(files));
  const messages = await ingest.receive(keys.size, { keep: (body) => { try { return keys.has(keyOf({ Body: body })); } catch { return false; } } });
  assert.equal(messages.length, Object.keys(files).length, 'every object announced on the ingest queue');
  return messages;
}

const keyOf = (message) => decodeURIComponent(JSON.parse(message.Body).Records[0].s3.object.key.replace(/\+/g, ' '));
const failuresOf = (answer) => new Set(JSON.parse(answer.body).batchItemFailures.map((f) => f.itemIdentifier));

async function eventFor(id, type) {
  for (const deadline = Date.now() + 20000; Date.now() < deadline;) {
    const found = published.find((e) => e.id === id && e.type === type);
    if (found) return found;
    const out = await sqs(aws.sqs, 'ReceiveMessage', { QueueUrl: eventsUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300 });
    for (const m of out.Messages || []) published.push(JSON.parse(m.Body));
  }
  throw new Error(`no ${type} event names photo ${id} (received: ${JSON.stringify(published)})`);
}

describe('rapidphoto lambda on the Runtime API, SQS batches of S3 notifications', { skip }, () => {
  before(async () => {
    const { startStandins } = await import('../web/support.mjs');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-lambda-'));
    aws = await startStandins(work);
    dbUrl = await pgSchema(pgBase, SCHEMA);
    ingest = eventSource(aws.sqs, 'ingest', { visibilityS: VISIBILITY_S });
    eventsUrl = `${aws.sqs}/123456789012/events`;
    baseEnv = {
      ...CREDENTIALS,
      AWS_ENDPOINT_URL_S3: aws.s3,
      AWS_ENDPOINT_URL_SQS: aws.sqs,
      RAPIDPHOTO_DB_URL: dbUrl,
      RAPIDPHOTO_DATA_DIR: path.join(work, 'function-tmp'),
      RAPIDPHOTO_STORAGE_BACKEND: 's3',
      RAPIDPHOTO_STORAGE_S3_BUCKET: 'photos',
      RAPIDPHOTO_SQS_EVENTS_QUEUE_URL: eventsUrl,
      RAPIDPHOTO_LAMBDA_DEADLINE_MARGIN_MS: String(MARGIN_MS),
    };
    await run(['user', 'add', 'alice', '--password-stdin'],
      { ...process.env, RAPIDPHOTO_DB_URL: dbUrl, RAPIDPHOTO_DATA_DIR: path.join(work, 'admin') }, 'correct horse battery\n');
    api = await startRuntimeApi();
    runtime = await launch(api, 'lambda.log');
    console.log(`# cold start: ${api.nextAt[0] - runtime.startedAt} ms from spawn to the first /next`);
  });

  after(async () => {
    if (runtime) await stopRuntime(runtime);
    if (api) await api.close();
    if (aws) {
      const { stopStandins } = await import('../web/support.mjs');
      await stopStandins(aws);
    }
    if (work && !process.env.RP_LAMBDA_KEEP) fs.rmSync(work, { recursive: true, force: true });
    if (dbUrl && !process.env.RP_LAMBDA_KEEP) await psql(pgBase, `DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => {});
  });

  test('photos put under incoming/alice/ complete: rows, derivatives in the bucket, photo.complete, the trace in the log', async () => {
    const files = {
      'incoming/alice/d300 progressive.jpeg': byName('nikon_d300_progressive_bad_previewifd.jpeg'),
      'incoming/alice/d3100.jpg': byName('nikon_d3100_gps_small.jpg'),
      'incoming/alice/trip/pentax.jpg': byName('pentax_k10d.jpg'),
    };
    const messages = await putAndReceive(files);
    const root = `1-${Math.floor(Date.now() / 1000).toString(16)}-${crypto.randomBytes(12).toString('hex')}`;
    const answer = await api.invoke(ingest.event(messages), { deadlineMs: 60000, trace: `Root=${root};Parent=53995c3f42cd8ad8;Sampled=0` });
    assert.equal(answer.kind, 'response', answer.body);
    assert.deepEqual(JSON.parse(answer.body), { batchItemFailures: [] });
    await ingest.settle(messages, answer);
    const photos = await photosOf(Object.keys(files));
    for (const [key, file] of Object.entries(files)) {
      const photo = photos[key];
      assert.ok(photo, `${key} became a photo`);
      assert.equal(photo.status, 'complete', `${key}: ${JSON.stringify(photo)}`);
      const bytes = fs.readFileSync(file);
      assert.equal(photo.sha256, sha256(bytes));
      assert.ok((await getObject(aws.s3, objectKey(photo.sha256))).equals(bytes), 'the original in the bucket');
      const thumbnail = await getObject(aws.s3, objectKey(photo.sha256, '.thumbnail.webp'));
      assert.equal(thumbnail.subarray(8, 12).toString('latin1'), 'WEBP');
      const preview = await getObject(aws.s3, objectKey(photo.sha256, '.preview.jpg'));
      assert.equal(preview.readUInt16BE(0), 0xffd8);
      //  The answer came once the events were out: they are on the queue now
      const event = await eventFor(photo.id, 'photo.complete');
      assert.equal(event.user, 'alice');
      assert.equal(event.derivatives.thumbnail, objectKey(photo.sha256, '.thumbnail.webp'));
    }
    assert.equal(await psql(dbUrl, "SELECT count(*) FROM photos WHERE filename = 'pentax.jpg'"), '1');
    const log = runtime.log();
    assert.match(log, new RegExp(`trace=${root}`), 'the invocation\'s log lines carry its trace id');
    assert.match(log, /request=[0-9a-f-]+ records=3 failures=0 duration_ms=\d+/);
  });

  test('bad records, and only they, are listed in batchItemFailures and come back', async () => {
    const files = {
      'incoming/nosuchuser/lost.jpg': byName('kodak_cx7530_gps.jpg'),
      'incoming/alice/notes.jpg': path.join(corpus, 'images', 'adversarial', 'text_file.jpg'),
      'incoming/alice/kept.jpg': byName('panasonic_dmc-fz30_makernote_offset.jpg'),
    };
    const messages = await putAndReceive(files);
    const event = ingest.event(messages);
    event.Records.push({ ...event.Records[0], messageId: 'not-a-notification', body: '{"hello":"world"}' });
    const answer = await api.invoke(event, { deadlineMs: 60000 });
    assert.equal(answer.kind, 'response', answer.body);
    const listed = failuresOf(answer);
    const idOf = (key) => messages.find((m) => keyOf(m) === key).MessageId;
    assert.deepEqual([...listed].sort(), [idOf('incoming/nosuchuser/lost.jpg'), idOf('incoming/alice/notes.jpg'), 'not-a-notification'].sort());
    await ingest.settle(messages, answer);
    const photos = await photosOf(Object.keys(files));
    assert.equal(photos['incoming/alice/kept.jpg']?.status, 'complete');
    assert.equal(photos['incoming/nosuchuser/lost.jpg'], undefined);
    assert.equal(photos['incoming/alice/notes.jpg'], undefined, 'not an image by its first bytes: refused, as the ingest bridge does');
    assert.match(runtime.log(), /there is no user named "nosuchuser"/);
    //  What comes back after the visibility timeout: the two listed, not the kept one
    await sleep(VISIBILITY_S * 1000 + 200);
    const again = await ingest.receive(3, { waitMs: 4000 });
    assert.deepEqual(again.map(keyOf).sort(), ['incoming/alice/notes.jpg', 'incoming/nosuchuser/lost.jpg']);
    for (const m of again) await sqs(aws.sqs, 'DeleteMessage', { QueueUrl: ingest.url, ReceiptHandle: m.ReceiptHandle });
  });

  test('an event that is not an SQS batch is an invocation error of type Runtime.InvalidEvent', async () => {
    for (const event of ['{"hello":1}', 'not json at all', '{"Records":[{"messageId":"m","eventSource":"aws:s3","body":"{}"}]}']) {
      const answer = await api.invoke(event, { deadlineMs: 10000 });
      assert.equal(answer.kind, 'error', `${event}: ${answer.body}`);
      assert.equal(answer.type, 'Runtime.InvalidEvent');
      const body = JSON.parse(answer.body);
      assert.equal(body.errorType, 'Runtime.InvalidEvent');
      assert.match(body.errorMessage, /not an SQS batch/);
    }
  });

  test('a JPEG that does not decode becomes a failed photo, an outcome: not listed', async () => {
    const files = { 'incoming/alice/half.jpg': path.join(corpus, 'images', 'adversarial', 'truncated_half.jpg') };
    const messages = await putAndReceive(files);
    const answer = await api.invoke(ingest.event(messages), { deadlineMs: 60000 });
    assert.deepEqual(JSON.parse(answer.body), { batchItemFailures: [] });
    await ingest.settle(messages, answer);
    const photo = (await photosOf(Object.keys(files)))['incoming/alice/half.jpg'];
    assert.equal(photo.status, 'failed');
    assert.ok(photo.error.length > 0, 'with its reason');
    await eventFor(photo.id, 'photo.failed');
  });

  test('a short deadline: what is not finished is listed, and the redelivery finishes it', async () => {
    const names = ['olympus_e-p3_12mp.jpg', 'hmd_nokia8.3_gps.jpg', 'apple_iphone6_gps.jpg', 'nikon_d70s_gps_makernote.jpg',
      'canon_powershot_sx60hs_orient6.jpg'];
    const files = Object.fromEntries(names.map((n) => [`incoming/alice/deadline/${n}`, byName(n)]));
    const messages = await putAndReceive(files);
    //  Records are taken while more than 2 * MARGIN_MS remain: 50 ms for
    //  taking in, less than one 3 MB photo's S3 GET, PUT and commit takes,
    //  so the first record (in whatever order the queue gave them) is taken
    //  and the others are not
    const deadlineMs = 2 * MARGIN_MS + 50;
    const sent = Date.now();
    const answer = await api.invoke(ingest.event(messages), { deadlineMs });
    assert.equal(answer.kind, 'response', answer.body);
    const listed = failuresOf(answer);
    assert.ok(listed.size >= messages.length - 1, `at most one record taken in: ${answer.body}`);
    assert.ok(!listed.has(messages[0].MessageId) || listed.size === messages.length, 'the first record is the one taken');
    //  Answered by the deadline, unless taking the one record in outlasted
    //  the margin (the S3 stand-in on a loaded machine: DESIGN of cmd_lambda.c)
    console.log(`# answered ${answer.at - sent} ms after a ${deadlineMs} ms deadline was given; ${listed.size} of ${messages.length} listed`);
    assert.ok(answer.at <= sent + deadlineMs + 2000, `answered ${answer.at - sent} ms after the invocation`);
    //  Back at /next (where Lambda freezes it) the runtime holds no claim:
    //  what it had not finished is queued again for anyone (the pipeline's PAUSE)
    for (const deadline = Date.now() + 10000; !api.idle(); await sleep(25))
      assert.ok(Date.now() < deadline, `not back at /next in 10 s: ${runtime.log()}`);
    const before_ = await photosOf(Object.keys(files));
    for (const key of Object.keys(files))
      assert.notEqual(before_[key]?.status, 'processing', `${key}: claimed by a runtime waiting at /next`);
    for (const m of messages)
      if (!listed.has(m.MessageId)) assert.ok(['complete', 'failed'].includes(before_[keyOf(m)]?.status), `${keyOf(m)} not listed, so finished`);
    await ingest.settle(messages, answer);
    await sleep(VISIBILITY_S * 1000 + 200);
    const again = await ingest.receive(listed.size, { waitMs: 6000 });
    assert.deepEqual(new Set(again.map((m) => m.MessageId)), listed, 'exactly the listed records come back');
    const second = await api.invoke(ingest.event(again), { deadlineMs: 60000 });
    assert.deepEqual(JSON.parse(second.body), { batchItemFailures: [] });
    await ingest.settle(again, second);
    const photos = await photosOf(Object.keys(files));
    for (const key of Object.keys(files)) assert.equal(photos[key]?.status, 'complete', key);
    assert.equal(await psql(dbUrl, `SELECT count(*) FROM photos WHERE filename IN (${names.map(sqlText).join(', ')})`), String(names.length),
      'one photo each');
  });

  test('SIGKILL mid-batch, a new runtime, the redelivery: each photo exactly once', async () => {
    const names = ['sony_dslr-a200_makernote.jpg', 'samsung_sm-g930f_gps_zero_length_string.jpg', 'long_image_description.jpg',
      'olympus_c8080wz.jpg', 'canon_eos40d_makernote.jpg', 'fujifilm_finepix6900zoom.jpg'];
    const files = Object.fromEntries(names.map((n) => [`incoming/alice/crash/${n}`, byName(n)]));
    const messages = await putAndReceive(files);
    api.invoke(ingest.event(messages), { deadlineMs: 60000 });     //  never answered
    for (const deadline = Date.now() + 30000; ; await sleep(5)) {
      const made = await psql(dbUrl, `SELECT count(*) FROM photos WHERE filename IN (${names.map(sqlText).join(', ')})`);
      if (Number(made) >= 1) break;
      assert.ok(Date.now() < deadline, `no photo made in 30 s: ${runtime.log()}`);
    }
    runtime.child.kill('SIGKILL');
    const { signal } = await runtime.exited;
    assert.equal(signal, 'SIGKILL');
    const made = await psql(dbUrl, `SELECT count(*) FROM photos WHERE filename IN (${names.map(sqlText).join(', ')})`);
    console.log(`# killed with ${made} of ${names.length} photos made`);
    runtime = await launch(api, 'lambda-after-crash.log');
    await sleep(VISIBILITY_S * 1000);
    const again = await ingest.receive(names.length, { waitMs: 8000 });
    assert.equal(again.length, names.length, 'nothing was deleted: the whole batch comes back');
    const answer = await api.invoke(ingest.event(again), { deadlineMs: 2 * MARGIN_MS + 10000 });
    assert.equal(answer.kind, 'response', answer.body);
    const listed = failuresOf(answer);
    await ingest.settle(again, answer);
    assert.equal(await psql(dbUrl, `SELECT count(*) FROM photos WHERE filename IN (${names.map(sqlText).join(', ')})`), String(names.length),
      'each photo exactly once');
    assert.equal(await psql(dbUrl, `SELECT count(DISTINCT photo_id) FROM s3_objects WHERE object_key LIKE 'incoming/alice/crash/%'`), String(names.length));
    const photos = await photosOf(Object.keys(files));
    for (const m of again) {
      const photo = photos[keyOf(m)];
      assert.ok(photo, `${keyOf(m)} is a photo`);
      //  Listed exactly when its photo is unfinished: one the killed process
      //  held stays processing until a pipeline's stale sweep queues it again
      assert.equal(listed.has(m.MessageId), !['complete', 'failed'].includes(photo.status), `${keyOf(m)}: ${photo.status}`);
    }
    console.log(`# after the redelivery: ${names.length - listed.size} complete, ${listed.size} left processing by the killed runtime`);
    //  Those come back later; the queue is left empty for the tests after
    await sleep(VISIBILITY_S * 1000 + 200);
    for (const m of await ingest.receive(listed.size, { waitMs: 3000 }))
      await sqs(aws.sqs, 'DeleteMessage', { QueueUrl: ingest.url, ReceiptHandle: m.ReceiptHandle });
  });

  test('init errors go to /runtime/init/error with their type; the process exits 1', async () => {
    const cases = [
      { env: { RAPIDPHOTO_DB_URL: 'postgresql://rapidphoto:rapidphoto@127.0.0.1:1/rapidphoto?connect_timeout=5' },
        type: 'Runtime.DatabaseError', message: /127\.0\.0\.1|connect/ },
      { env: { RAPIDPHOTO_STORAGE_BACKEND: 'disk' }, type: 'Runtime.ConfigError', message: /storage\.backend = s3/ },
      { env: { RAPIDPHOTO_DB_URL: 'sqlite:/tmp/x.db' }, type: 'Runtime.ConfigError', message: /PostgreSQL db\.url/ },
      { env: { RAPIDPHOTO_PIPELINE_IN_FLIGHT: 'lots' }, type: 'Runtime.ConfigError', message: /in_flight/i },
    ];
    for (const c of cases) {
      const own = await startRuntimeApi();
      try {
        const failing = startRuntime(runtimeEnv(own, c.env), path.join(work, `init-${c.type}.log`));
        const timer = setTimeout(() => failing.child.kill('SIGKILL'), 30000);
        const { code } = await failing.exited;
        clearTimeout(timer);
        assert.equal(code, 1, `exit status 1: ${failing.log()}`);
        assert.equal(own.initErrors.length, 1, `one init error: ${failing.log()}`);
        assert.equal(own.initErrors[0].type, c.type);
        const body = JSON.parse(own.initErrors[0].body);
        assert.equal(body.errorType, c.type);
        assert.match(body.errorMessage, c.message);
        assert.equal(own.nextAt.length, 0, 'no /next after an init error');
      } finally {
        await own.close();
      }
    }
  });

  test('SIGTERM while waiting for /next: the runtime exits 0', async () => {
    const { code, signal } = await stopRuntime(runtime);
    assert.equal(signal, null, runtime.log());
    assert.equal(code, 0, runtime.log());
    assert.match(runtime.log(), /lambda\s+stopping/);
  });
});
