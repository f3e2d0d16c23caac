/*  tests/metrics/emf.spec.mjs: the CloudWatch EMF documents (metrics.emf =
    on), read from a real engine's stdout.

    First the validator (emf.mjs) itself: a good document passes, and each
    way of breaking the spec is caught. Then a real `rapidphoto serve` with
    a one-second interval takes uploads over HTTP (photos, a file that is
    not an image, a resumable upload over tus) and is stopped with
    SIGTERM; every line of its stdout must be a valid EMF document, and
    the values must add up to what was done: UploadCount and UploadBytes
    to the uploads acknowledged, AckLatency one sample per acknowledgement,
    ProcessingLatency one per photo (and per stage), Failures by reason,
    the pools' workers as configured. Then the split ECS runs: a
    `rapidphoto gateway` alone (Service=gateway, the queue it fills
    counted, no pools), then a `rapidphoto pipeline` on its data folder
    (Service=pipeline, the gateway's photos processed, the queue emptied).
*/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { binary, freePort, makePhotos, run } from '../web/support.mjs';
import { validateEmf } from './emf.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const lines = (text) => text.split('\n').filter((l) => l.length > 0);

//  A document as the engine writes one
function goodDocument(now = Date.now()) {
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [{
        Namespace: 'RapidPhotoUpload',
        Dimensions: [['Service', 'Pool']],
        Metrics: [{ Name: 'QueueDepth', Unit: 'Count' }, { Name: 'AckLatency', Unit: 'Milliseconds', StorageResolution: 60 }],
      }],
    },
    Service: 'serve', Pool: 'resize', QueueDepth: 3, AckLatency: [1.5, 20, 300],
  };
}

//  A broken copy: spoil(doc) changes it in place
function broken(spoil) {
  const doc = goodDocument();
  spoil(doc);
  return JSON.stringify(doc);
}

describe('the EMF validator', () => {
  test('a document as the spec describes it passes', () => {
    assert.deepEqual(validateEmf(JSON.stringify(goodDocument())), []);
  });

  const cases = [
    ['not JSON', () => '{"_aws": {', /not one JSON value/],
    ['text after the object', () => JSON.stringify(goodDocument()) + ' trailing', /not one JSON value/],
    ['an array at the root', () => '[1]', /root is not a JSON object/],
    ['no _aws', () => broken((d) => delete d._aws), /no "_aws"/],
    ['no Timestamp', () => broken((d) => delete d._aws.Timestamp), /Timestamp is not a number/],
    ['Timestamp in seconds, as text', () => broken((d) => { d._aws.Timestamp = '1700000000'; }), /Timestamp is not a number/],
    ['Timestamp in seconds', () => broken((d) => { d._aws.Timestamp = Math.floor(Date.now() / 1000); }), /over two weeks old/],
    ['Timestamp a day ahead', () => broken((d) => { d._aws.Timestamp += 86400e3; }), /two hours ahead/],
    ['an extra member in _aws', () => broken((d) => { d._aws.Region = 'x'; }), /does not define: "Region"/],
    ['CloudWatchMetrics not an array', () => broken((d) => { d._aws.CloudWatchMetrics = {}; }), /CloudWatchMetrics is not an array/],
    ['no Namespace', () => broken((d) => delete d._aws.CloudWatchMetrics[0].Namespace), /Namespace is not a string/],
    ['an AWS/ namespace', () => broken((d) => { d._aws.CloudWatchMetrics[0].Namespace = 'AWS/EC2'; }), /AWS's own/],
    ['a namespace of 256 characters', () => broken((d) => { d._aws.CloudWatchMetrics[0].Namespace = 'n'.repeat(256); }), /1 to 255/],
    ['Dimensions not an array of arrays', () => broken((d) => { d._aws.CloudWatchMetrics[0].Dimensions = ['Service']; }), /Dimensions\[0\] is not an array/],
    ['no Dimensions', () => broken((d) => delete d._aws.CloudWatchMetrics[0].Dimensions), /Dimensions is not an array/],
    ['31 dimensions in a set', () => broken((d) => {
      const names = Array.from({ length: 31 }, (_, i) => `D${i}`);
      for (const n of names) d[n] = 'v';
      d._aws.CloudWatchMetrics[0].Dimensions = [names];
    }), /31 dimensions, over 30/],
    ['a dimension with no member', () => broken((d) => delete d.Pool), /no target member "Pool"/],
    ['a dimension that is a number', () => broken((d) => { d.Pool = 7; }), /"Pool" is not a string/],
    ['a dimension named twice', () => broken((d) => { d._aws.CloudWatchMetrics[0].Dimensions = [['Pool', 'Pool']]; }), /names a dimension twice/],
    ['101 metrics in a directive', () => broken((d) => {
      d._aws.CloudWatchMetrics[0].Metrics = Array.from({ length: 101 }, (_, i) => ({ Name: `M${i}` }));
      for (let i = 0; i < 101; i++) d[`M${i}`] = i;
    }), /101 metrics, over 100/],
    ['a metric with no Name', () => broken((d) => { d._aws.CloudWatchMetrics[0].Metrics.push({ Unit: 'Count' }); }), /Name is not a string/],
    ['a metric with no member', () => broken((d) => delete d.QueueDepth), /no target member "QueueDepth"/],
    ['a metric defined twice', () => broken((d) => { d._aws.CloudWatchMetrics[0].Metrics.push({ Name: 'QueueDepth' }); }), /defined twice/],
    ['a metric that is a dimension too', () => broken((d) => { d._aws.CloudWatchMetrics[0].Metrics.push({ Name: 'Pool' }); }), /is a dimension too/],
    ['an unknown unit', () => broken((d) => { d._aws.CloudWatchMetrics[0].Metrics[0].Unit = 'ms'; }), /not a CloudWatch unit/],
    ['a StorageResolution of 5', () => broken((d) => { d._aws.CloudWatchMetrics[0].Metrics[0].StorageResolution = 5; }), /neither 1 nor 60/],
    ['an extra member in a MetricDefinition', () => broken((d) => { d._aws.CloudWatchMetrics[0].Metrics[0].Stat = 'Sum'; }), /does not define: "Stat"/],
    ['a value that is text', () => broken((d) => { d.QueueDepth = '3'; }), /neither a number nor an array/],
    ['an array with text in it', () => broken((d) => { d.AckLatency = [1, 'x']; }), /\[1\] is not a number/],
    ['101 values', () => broken((d) => { d.AckLatency = Array.from({ length: 101 }, (_, i) => i); }), /101 values, over 100/],
    ['an empty array', () => broken((d) => { d.AckLatency = []; }), /no value/],
    ['a value too large for CloudWatch', () => broken((d) => { d.QueueDepth = 1e300; }), /outside the magnitudes/],
    ['an event over 256 KiB', () => broken((d) => { d.Note = 'x'.repeat(256 * 1024); }), /over 262144/],
  ];
  for (const [name, make, expect] of cases) {
    test(`catches ${name}`, () => {
      const errors = validateEmf(make());
      assert.ok(errors.some((e) => expect.test(e)), `expected ${expect} in ${JSON.stringify(errors)}`);
    });
  }
});

//  ---------------------------------------------------------------------------
//  A real engine

let work;

//  `rapidphoto <role>` with metrics.emf on, its stdout and stderr in files
//  of their own (named after the role); a user and a token for it, unless
//  the data folder (name) has them already
async function startRole(role, name, env = {}, { newUser = true } = {}) {
  const port = await freePort();
  const roleEnv = {
    ...process.env,
    RAPIDPHOTO_DATA_DIR: path.join(work, name),
    RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${port}`,
    RAPIDPHOTO_BROKER_FRONTEND: `tcp://127.0.0.1:${await freePort()}`,
    RAPIDPHOTO_BROKER_BACKEND: `tcp://127.0.0.1:${await freePort()}`,
    RAPIDPHOTO_METRICS_EMF: 'on',
    RAPIDPHOTO_METRICS_EMF_INTERVAL_S: '1',
    RAPIDPHOTO_POOLS_RESIZE: '2',
    RAPIDPHOTO_POOLS_EXIF: '1',
    ...env,
  };
  if (newUser) await run(['user', 'add', 'alice', '--password-stdin'], roleEnv, 'correct horse battery\n');
  const token = (await run(['token', 'alice'], roleEnv)).trim();
  const out = path.join(work, `${name}-${role}.stdout`);
  const err = path.join(work, `${name}-${role}.stderr`);
  const outFd = fs.openSync(out, 'w');
  const errFd = fs.openSync(err, 'w');
  const child = spawn(binary, [role], { env: roleEnv, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const r = {
    url: `http://127.0.0.1:${port}`, token, child, exited,
    out: () => fs.readFileSync(out, 'utf8'), err: () => fs.readFileSync(err, 'utf8'),
  };
  for (const deadline = Date.now() + 30000; ; await sleep(100)) {
    try {
      if ((await fetch(`${r.url}/healthz`)).ok) return r;
    } catch (_) { /* not yet */ }
    if (child.exitCode !== null) throw new Error(`${role} exited: ${r.err()}`);
    if (Date.now() > deadline) throw new Error(`${role} did not answer in 30 s: ${r.err()}`);
  }
}

//  SIGTERM; the exit must be clean (status 0: LeakSanitizer makes it 23)
async function stopRole(r) {
  if (!r || r.child.exitCode !== null) return;
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 30000);
  const { code, signal } = await r.exited;
  clearTimeout(timer);
  assert.equal(code, 0, `exit ${signal || code}: ${r.err().split('\n').slice(-20).join('\n')}`);
}

async function upload(r, name, bytes, type = 'image/jpeg') {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), name);
  const res = await fetch(`${r.url}/api/v1/photos`, { method: 'POST', headers: { Authorization: `Bearer ${r.token}` }, body: form });
  return { status: res.status, body: await res.json() };
}

//  A resumable upload in one PATCH (tus 1.0)
async function tusUpload(r, name, bytes) {
  const meta = `filename ${Buffer.from(name).toString('base64')}`;
  const created = await fetch(`${r.url}/api/v1/tus`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${r.token}`, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(bytes.length), 'Upload-Metadata': meta },
  });
  assert.equal(created.status, 201, await created.text());
  const location = new URL(created.headers.get('location'), r.url).toString();
  const patched = await fetch(location, {
    method: 'PATCH',
    headers: { Authorization: `Bearer ${r.token}`, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: bytes,
  });
  assert.equal(patched.status, 204, await patched.text());
  return patched.headers.get('photo-id');
}

async function photoStatus(r, id) {
  const res = await fetch(`${r.url}/api/v1/photos/${id}`, { headers: { Authorization: `Bearer ${r.token}` } });
  return (await res.json()).status;
}

//  Every stdout line parsed, each checked against the spec
function documents(r, now) {
  const out = lines(r.out());
  assert.ok(out.length > 0, 'no EMF document on stdout');
  return out.map((line) => {
    assert.deepEqual(validateEmf(line, { now }), [], `not a valid EMF document: ${line}`);
    return JSON.parse(line);
  });
}

//  The documents whose one dimension set is exactly these names
const withDimensions = (docs, names) =>
  docs.filter((d) => JSON.stringify(d._aws.CloudWatchMetrics[0].Dimensions) === JSON.stringify([names]));
const sum = (docs, name) => docs.reduce((n, d) => n + (typeof d[name] === 'number' ? d[name] : 0), 0);
const samples = (docs, name) => docs.flatMap((d) => (Array.isArray(d[name]) ? d[name] : []));

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-emf-'));
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('serve with metrics.emf = on', () => {
  let serve;
  let docs;
  const uploaded = { count: 0, bytes: 0, acks: 0 };
  let started;

  before(async () => {
    started = Date.now();
    serve = await startRole('serve', 'serve');
    const photos = await makePhotos(path.join(work, 'photos'), 6, { prefix: 'emf' });
    const ids = [];
    //  Five through POST /photos, one over tus; a second interval passes
    //  between some of them, so the counts span several documents
    for (const [i, file] of photos.entries()) {
      const bytes = fs.readFileSync(file);
      if (i === 5) {
        ids.push(await tusUpload(serve, path.basename(file), bytes));
      } else {
        const r = await upload(serve, path.basename(file), bytes);
        assert.equal(r.status, 202, JSON.stringify(r.body));
        ids.push(r.body.photos[0].id);
      }
      uploaded.count++;
      uploaded.bytes += bytes.length;
      uploaded.acks++;
      if (i === 2) await sleep(1500);
    }
    //  Not an image: refused (415), counted as a failure, not an upload
    const refused = await upload(serve, 'notes.jpg', Buffer.from('these are not the pixels you are looking for'));
    assert.equal(refused.status, 415, JSON.stringify(refused.body));
    for (const deadline = Date.now() + 60000; ; await sleep(200)) {
      const statuses = await Promise.all(ids.map((id) => photoStatus(serve, id)));
      if (statuses.every((s) => s === 'complete')) break;
      assert.ok(Date.now() < deadline, `not all complete: ${statuses}`);
    }
    await sleep(1200);             //  an interval's gauges after the last photo
    await stopRole(serve);
    docs = documents(serve, Date.now());
  });

  after(async () => {
    await stopRole(serve);
  });

  test('stdout holds EMF documents only, each valid, in the configured namespace, Service=serve', () => {
    for (const d of docs) {
      assert.equal(d._aws.CloudWatchMetrics.length, 1);
      assert.equal(d._aws.CloudWatchMetrics[0].Namespace, 'RapidPhotoUpload');
      assert.equal(d.Service, 'serve');
      assert.ok(d._aws.Timestamp >= started - 1000 && d._aws.Timestamp <= Date.now(), `Timestamp ${d._aws.Timestamp}`);
    }
  });

  test('one batch per interval, not one document per request', () => {
    const main = withDimensions(docs, ['Service']);
    const elapsed = (main.at(-1)._aws.Timestamp - main[0]._aws.Timestamp) / 1000;
    //  One a second, plus the last one written at SIGTERM
    assert.ok(main.length >= 3 && main.length <= elapsed + 2, `${main.length} documents over ${elapsed} s`);
    const stamps = new Set(docs.map((d) => d._aws.Timestamp));
    assert.equal(stamps.size, main.length, 'every document of a batch has its batch\'s Timestamp');
  });

  test('UploadCount and UploadBytes add up to the uploads acknowledged', () => {
    const main = withDimensions(docs, ['Service']);
    assert.equal(sum(main, 'UploadCount'), uploaded.count);
    assert.equal(sum(main, 'UploadBytes'), uploaded.bytes);
    assert.ok(main.filter((d) => d.UploadCount > 0).length >= 2, 'the uploads fell into more than one interval');
    for (const d of main) {
      const units = Object.fromEntries(d._aws.CloudWatchMetrics[0].Metrics.map((m) => [m.Name, m.Unit]));
      assert.equal(units.UploadCount, 'Count');
      assert.equal(units.UploadBytes, 'Bytes');
    }
  });

  test('AckLatency: one sample per acknowledgement, in milliseconds, plausible', () => {
    const acks = samples(withDimensions(docs, ['Service']), 'AckLatency');
    assert.equal(acks.length, uploaded.acks);
    for (const ms of acks) assert.ok(ms >= 0 && ms < 30000, `AckLatency ${ms}`);
  });

  test('ProcessingLatency: one sample per photo, and per stage', () => {
    const whole = samples(withDimensions(docs, ['Service']), 'ProcessingLatency');
    assert.equal(whole.length, uploaded.count);
    for (const ms of whole) assert.ok(ms > 0 && ms < 60000, `ProcessingLatency ${ms}`);
    const stages = withDimensions(docs, ['Service', 'Stage']);
    const byStage = {};
    for (const d of stages) byStage[d.Stage] = (byStage[d.Stage] || 0) + d.ProcessingLatency.length;
    for (const stage of ['decode', 'thumbnail', 'preview', 'jobs', 'database'])
      assert.equal(byStage[stage], uploaded.count, `stage ${stage}: ${JSON.stringify(byStage)}`);
  });

  test('Failures: the refused file, by its reason', () => {
    assert.equal(sum(withDimensions(docs, ['Service']), 'Failures'), 1);
    const reasons = withDimensions(docs, ['Service', 'Reason']);
    assert.deepEqual(reasons.map((d) => [d.Reason, d.Failures]), [['NotAnImage', 1]]);
  });

  test('queue depth, jobs in flight and workers: in all and per pool', () => {
    const main = withDimensions(docs, ['Service']);
    for (const d of main) assert.ok(d.QueueDepth >= 0 && d.JobsInFlight >= 0 && d.Workers <= 3, JSON.stringify(d));
    assert.equal(Math.max(...main.map((d) => d.Workers)), 3, 'two resize workers and one exif worker');
    assert.equal(main.at(-2).QueueDepth, 0, 'every photo complete: nothing queued');
    const pools = withDimensions(docs, ['Service', 'Pool']);
    const workers = {};
    for (const d of pools) {
      workers[d.Pool] = Math.max(workers[d.Pool] || 0, d.Workers);
      assert.ok(d.QueueDepth >= 0 && d.JobsInFlight >= 0 && d.JobsInFlight <= d.Workers, JSON.stringify(d));
    }
    assert.deepEqual(workers, { exif: 1, resize: 2 });
  });

  test("the runbook's Logs Insights queries do not take a document for an error or a timed line", () => {
    for (const line of lines(serve.out())) {
      assert.doesNotMatch(line, /ERROR|Exception|error/, 'filter @message like /ERROR|Exception|error/');
      assert.doesNotMatch(line, /duration=\d+/, 'parse @message /duration=(?<duration>\\d+)/');
    }
  });

  test('the log stays on stderr', () => {
    assert.match(serve.err(), /metrics: CloudWatch EMF on stdout every 1 s, namespace RapidPhotoUpload, Service=serve/);
  });
});

describe('gateway and pipeline (the ECS split) with metrics.emf = on', () => {
  test('Service=gateway: its uploads and the queue they make, no pools', async () => {
    const gateway = await startRole('gateway', 'gateway', { RAPIDPHOTO_METRICS_EMF_NAMESPACE: 'Photos/Test' });
    let docs;
    try {
      const photos = await makePhotos(path.join(work, 'gateway-photos'), 2, { prefix: 'gw' });
      let bytes = 0;
      for (const file of photos) {
        const data = fs.readFileSync(file);
        bytes += data.length;
        assert.equal((await upload(gateway, path.basename(file), data)).status, 202);
      }
      await sleep(2500);           //  a gauge after the uploads: nothing processes them here
      await stopRole(gateway);
      docs = documents(gateway, Date.now());
      const main = withDimensions(docs, ['Service']);
      assert.equal(docs.length, main.length, 'no Pool or Stage documents from a gateway');
      for (const d of docs) {
        assert.equal(d.Service, 'gateway');
        assert.equal(d._aws.CloudWatchMetrics[0].Namespace, 'Photos/Test');
        assert.ok(!('Workers' in d) && !('JobsInFlight' in d), JSON.stringify(d));
      }
      assert.equal(sum(main, 'UploadCount'), 2);
      assert.equal(sum(main, 'UploadBytes'), bytes);
      assert.equal(samples(main, 'AckLatency').length, 2);
      assert.equal(main.at(-1).QueueDepth, 2, 'both photos wait for a pipeline');
    } finally {
      await stopRole(gateway);
    }
  });

  test('Service=pipeline: it processes what the gateway queued, with its pools', async () => {
    //  The gateway's data folder and SQLite file: the queued photos are there
    const pipeline = await startRole('pipeline', 'gateway', {}, { newUser: false });
    let docs;
    try {
      const processed = () => samples(withDimensions(lines(pipeline.out()).map((l) => JSON.parse(l)), ['Service']),
        'ProcessingLatency').length;
      for (const deadline = Date.now() + 60000; processed() < 2; await sleep(200))
        assert.ok(Date.now() < deadline, `not processed in 60 s: ${pipeline.err()}`);
      await sleep(1200);           //  a batch with the queue empty
      await stopRole(pipeline);
      docs = documents(pipeline, Date.now());
    } finally {
      await stopRole(pipeline);
    }
    for (const d of docs) assert.equal(d.Service, 'pipeline');
    const main = withDimensions(docs, ['Service']);
    assert.equal(samples(main, 'ProcessingLatency').length, 2, 'one per photo the gateway took');
    assert.equal(sum(main, 'UploadCount'), 0, 'the pipeline took no upload');
    assert.equal(sum(main, 'Failures'), 0);
    assert.equal(main.at(-2).QueueDepth, 0, 'the queue the gateway left is empty');
    assert.equal(Math.max(...main.map((d) => d.Workers)), 3);
    assert.deepEqual([...new Set(withDimensions(docs, ['Service', 'Pool']).map((d) => d.Pool))].sort(), ['exif', 'resize']);
    assert.ok(withDimensions(docs, ['Service', 'Stage']).some((d) => d.Stage === 'decode'));
  });
});
