/*  bench/lambda.mjs: `rapidphoto lambda` beside the ECS worker (`rapidphoto
    pipeline` with the SQS ingest bridge) on the same photos and the same
    stand-ins (issue 18, item 5).

        RP_BINARY=build/rapidphoto RP_TEST_PG_URL=$(tools/pg.sh start) \
            node bench/lambda.mjs [--photos N] [--rounds R]

    Each round, for each of the two, on a fresh PostgreSQL schema and fresh
    S3/SQS stand-ins (tools/aws/standins.mjs): the photos (the camera
    JPEGs of ../shared/testdata, RP_TESTDATA; the first N) are put under
    incoming/alice/ and their notifications wait on the ingest queue; then
    the process starts, cold:
      lambda    spawn -> its first GET /next (init: config, database,
                migrations, recovery, actors) = "cold start"; then one SQS
                batch of all the messages (tests/lambda/support.mjs serves
                the Runtime API and plays the event source mapping) ->
                its answer (every photo complete, its event published)
      pipeline  spawn -> /healthz answers = "cold start"; then its ingest
                bridge polls the queue -> every photo complete in the
                database
    "per photo" is (last photo done - ready) / N: photos are processed
    concurrently (pools.resize), so it is throughput, not latency. Prints
    a table (medians over the rounds, and each round).
*/
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CREDENTIALS, cameraPhotos, eventSource, pgSchema, psql, putObject, sleep, startRuntime, startRuntimeApi,
  stopRuntime, testdata,
} from '../tests/lambda/support.mjs';
import { freePort, run, startStandins, stopStandins } from '../tests/web/support.mjs';

const sourceDir = process.env.RP_SOURCE_DIR || path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const corpus = testdata(sourceDir);
if (!corpus) {
  console.log('bench/lambda: skipped: ../shared/testdata (RP_TESTDATA) is absent');
  process.exit(0);
}
if (!process.env.RP_TEST_PG_URL || !process.env.RP_BINARY) {
  console.error('bench/lambda: set RP_BINARY (build/rapidphoto) and RP_TEST_PG_URL (tools/pg.sh start)');
  process.exit(2);
}
const photos = cameraPhotos(corpus).slice(0, option('--photos', 17));
const rounds = option('--rounds', 3);
const bytes = photos.reduce((n, p) => n + fs.statSync(p).size, 0);

async function prepare(label) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `rp-bench-${label}-`));
  const aws = await startStandins(work);
  const dbUrl = await pgSchema(process.env.RP_TEST_PG_URL, `bench_${label}`);
  const env = {
    PATH: process.env.PATH,
    ...CREDENTIALS,
    AWS_ENDPOINT_URL_S3: aws.s3,
    AWS_ENDPOINT_URL_SQS: aws.sqs,
    RAPIDPHOTO_DB_URL: dbUrl,
    RAPIDPHOTO_DATA_DIR: path.join(work, 'cache'),
    RAPIDPHOTO_STORAGE_BACKEND: 's3',
    RAPIDPHOTO_STORAGE_S3_BUCKET: 'photos',
    RAPIDPHOTO_SQS_EVENTS_QUEUE_URL: `${aws.sqs}/123456789012/events`,
    RAPIDPHOTO_LOG_LEVEL: 'warn',
  };
  await run(['user', 'add', 'alice', '--password-stdin'], { ...env, RAPIDPHOTO_DATA_DIR: path.join(work, 'admin') }, 'bench password\n');
  for (const [i, file] of photos.entries())
    await putObject(aws.s3, `incoming/alice/${String(i).padStart(2, '0')}-${path.basename(file)}`, fs.readFileSync(file));
  //  Wait until every notification is on the queue (left visible)
  for (const deadline = Date.now() + 30000; ; await sleep(200)) {
    const res = await fetch(`${aws.sqs}/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.GetQueueAttributes' },
      body: JSON.stringify({ QueueUrl: `${aws.sqs}/123456789012/ingest`, AttributeNames: ['ApproximateNumberOfMessages'] }),
    });
    const n = Number((await res.json()).Attributes?.ApproximateNumberOfMessages);
    if (n >= photos.length) break;      //  the photos' and S3's test event
    if (Date.now() > deadline) throw new Error(`only ${n} notifications on the queue`);
  }
  return { work, aws, dbUrl, env };
}

async function finish(setup) {
  await stopStandins(setup.aws);
  fs.rmSync(setup.work, { recursive: true, force: true });
}

async function done(dbUrl) {
  return Number(await psql(dbUrl, "SELECT count(*) FROM photos WHERE status IN ('complete', 'failed')"));
}

async function lambdaRound() {
  const setup = await prepare('lambda');
  const api = await startRuntimeApi();
  const ingest = eventSource(setup.aws.sqs, 'ingest', { visibilityS: 300 });
  const messages = await ingest.receive(photos.length);
  const runtime = startRuntime({ ...setup.env, AWS_LAMBDA_RUNTIME_API: api.address }, path.join(setup.work, 'lambda.log'));
  const spawned = runtime.startedAt;
  while (!api.idle()) {
    if (runtime.child.exitCode !== null) throw new Error(`lambda exited: ${runtime.log()}`);
    await sleep(5);
  }
  const ready = api.nextAt[0];
  const answer = await api.invoke(ingest.event(messages), { deadlineMs: 900000 });
  const failures = JSON.parse(answer.body).batchItemFailures.length;
  if (answer.kind !== 'response' || failures) throw new Error(`lambda answered ${answer.body}`);
  const out = { init: ready - spawned, first: answer.at - spawned, perPhoto: (answer.at - ready) / photos.length };
  await stopRuntime(runtime);
  await api.close();
  if ((await done(setup.dbUrl)) !== photos.length) throw new Error('not every photo done');
  await finish(setup);
  return out;
}

async function pipelineRound() {
  const setup = await prepare('pipeline');
  const port = await freePort();
  const env = {
    ...setup.env,
    RAPIDPHOTO_HTTP_LISTEN: `127.0.0.1:${port}`,
    RAPIDPHOTO_BROKER_FRONTEND: `tcp://127.0.0.1:${await freePort()}`,
    RAPIDPHOTO_BROKER_BACKEND: `tcp://127.0.0.1:${await freePort()}`,
    RAPIDPHOTO_SQS_INGEST_QUEUE_URL: `${setup.aws.sqs}/123456789012/ingest`,
    RAPIDPHOTO_SQS_WAIT_S: '1',
  };
  const log = fs.openSync(path.join(setup.work, 'pipeline.log'), 'a');
  const spawned = Date.now();
  const child = spawn(process.env.RP_BINARY, ['pipeline'], { env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let ready = 0;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) { ready = Date.now(); break; }
    } catch { /* not yet */ }
    if (child.exitCode !== null) throw new Error('pipeline exited');
    await sleep(5);
  }
  let last = 0;
  for (const deadline = Date.now() + 900000; ; await sleep(20)) {
    if ((await done(setup.dbUrl)) >= photos.length) { last = Date.now(); break; }
    if (Date.now() > deadline) throw new Error('pipeline: photos not done in 15 min');
  }
  const out = { init: ready - spawned, first: last - spawned, perPhoto: (last - ready) / photos.length };
  child.kill('SIGTERM');
  await exited;
  await finish(setup);
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { lambda: [], pipeline: [] };
console.log(`bench/lambda: ${photos.length} camera photos (${(bytes / 1048576).toFixed(1)} MiB), ${rounds} rounds, ${os.cpus().length} cores`);
for (let r = 0; r < rounds; r++) {
  results.lambda.push(await lambdaRound());
  results.pipeline.push(await pipelineRound());
  console.log(`round ${r + 1}: lambda ${JSON.stringify(results.lambda[r])} pipeline ${JSON.stringify(results.pipeline[r])}`);
}
const row = (name, xs) => `| ${name.padEnd(34)} | ${String(Math.round(median(xs.map((x) => x.init)))).padStart(9)} | ${String(Math.round(median(xs.map((x) => x.first)))).padStart(16)} | ${median(xs.map((x) => x.perPhoto)).toFixed(0).padStart(14)} |`;
console.log('');
console.log('| runtime                            | init (ms) | to all done (ms) | per photo (ms) |');
console.log('|------------------------------------|-----------|------------------|----------------|');
console.log(row('rapidphoto lambda (cold)', results.lambda));
console.log(row('rapidphoto pipeline + SQS bridge', results.pipeline));
