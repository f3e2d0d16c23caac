/*  tests/lambda/support.mjs: what AWS Lambda would be around `rapidphoto
    lambda`, on one machine, for tests/lambda/lambda.spec.mjs and
    bench/lambda.mjs.

    No Lambda emulator is to be had here, so this serves the documented
    Runtime API (version 2018-06-01) itself, on 127.0.0.1: GET
    /runtime/invocation/next (held open until there is an invocation; its
    headers Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Trace-Id,
    -Invoked-Function-Arn), POST /runtime/invocation/<id>/response and
    /error (202), POST /runtime/init/error (202). And it is the SQS event
    source mapping: it receives batches from the stand-in's ingest queue
    (tools/aws/standins.mjs), turns them into Lambda's SQS event, invokes,
    and deletes only the records the answer does not list in
    batchItemFailures (ReportBatchItemFailures).

    The runtime is launched from RP_LAMBDA_CMD (a JSON array: argv; by
    default [RP_BINARY, "lambda"]) with nothing but the environment given
    here: AWS_LAMBDA_RUNTIME_API, RAPIDPHOTO_* and the AWS settings of the
    stand-ins. So the same harness drives the lambda.zip's bootstrap or
    the container image's entrypoint.
*/
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const ACCOUNT = '123456789012';
export const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };
export const FUNCTION_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:rapid-photo-test-image-processor`;

export function launcher() {
  if (process.env.RP_LAMBDA_CMD) {
    const argv = JSON.parse(process.env.RP_LAMBDA_CMD);
    if (!Array.isArray(argv) || !argv.length || argv.some((a) => typeof a !== 'string'))
      throw new Error('RP_LAMBDA_CMD must be a JSON array of strings (argv)');
    return argv;
  }
  if (!process.env.RP_BINARY) throw new Error('RP_BINARY (or RP_LAMBDA_CMD) is not set: run through ctest');
  return [process.env.RP_BINARY, 'lambda'];
}

//  The Runtime API, served here. invoke(event, headers) resolves with what
//  the runtime answered: { kind: 'response'|'error', body, type, ms }.
export async function startRuntimeApi() {
  const waiting = [];                   //  /next requests held open
  const queued = [];                    //  invocations no /next has taken yet
  const pending = new Map();            //  request id -> { resolve, started }
  const api = {
    initErrors: [], nextAt: [], answers: [], server: null, port: 0,
  };
  const hand = (res, invocation) => {
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': invocation.id,
      'Lambda-Runtime-Deadline-Ms': String(invocation.deadline),
      'Lambda-Runtime-Invoked-Function-Arn': FUNCTION_ARN,
      ...(invocation.trace ? { 'Lambda-Runtime-Trace-Id': invocation.trace } : {}),
    });
    res.end(invocation.body);
    invocation.handed = Date.now();
  };
  const body = async (req) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    return Buffer.concat(chunks).toString('utf8');
  };
  api.server = http.createServer(async (req, res) => {
    const url = req.url;
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      api.nextAt.push(Date.now());
      const invocation = queued.shift();
      if (invocation) hand(res, invocation);
      else {
        waiting.push(res);
        res.on('close', () => {
          const at = waiting.indexOf(res);
          if (at >= 0) waiting.splice(at, 1);
        });
      }
      return;
    }
    const answer = url.match(/^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/);
    if (req.method === 'POST' && answer) {
      const text = await body(req);
      const invocation = pending.get(answer[1]);
      if (!invocation) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errorMessage: 'unknown request id', errorType: 'InvalidRequestID' }));
        return;
      }
      pending.delete(answer[1]);
      res.writeHead(202, { 'Content-Type': 'application/json' });
      res.end('{"status":"OK"}');
      const result = {
        kind: answer[2], body: text, type: req.headers['lambda-runtime-function-error-type'] || null,
        at: Date.now(), ms: Date.now() - invocation.handed,
      };
      api.answers.push(result);
      invocation.resolve(result);
      return;
    }
    if (req.method === 'POST' && url === '/2018-06-01/runtime/init/error') {
      const text = await body(req);
      api.initErrors.push({ type: req.headers['lambda-runtime-function-error-type'] || null, body: text, at: Date.now() });
      res.writeHead(202, { 'Content-Type': 'application/json' });
      res.end('{"status":"OK"}');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errorMessage: `no such resource ${req.method} ${url}`, errorType: 'NotFound' }));
  });
  await new Promise((resolve) => api.server.listen(0, '127.0.0.1', resolve));
  api.port = api.server.address().port;
  api.address = `127.0.0.1:${api.port}`;
  //  Hand an invocation to the runtime; resolves with its answer
  api.invoke = (event, { deadlineMs = 30000, trace = null } = {}) => new Promise((resolve) => {
    const invocation = {
      id: crypto.randomUUID(), deadline: Date.now() + deadlineMs, trace,
      body: typeof event === 'string' ? event : JSON.stringify(event), resolve,
    };
    pending.set(invocation.id, invocation);
    const res = waiting.shift();
    if (res) hand(res, invocation);
    else queued.push(invocation);
  });
  //  Whether a /next is held open (the runtime is idle, waiting)
  api.idle = () => waiting.length > 0;
  api.close = async () => {
    for (const res of waiting.splice(0)) res.destroy();
    api.server.closeAllConnections();
    await new Promise((resolve) => api.server.close(resolve));
  };
  return api;
}

//  The runtime process: { child, exited, log(), logPath, startedAt }
export function startRuntime(env, logPath) {
  const [file, ...args] = launcher();
  const log = fs.openSync(logPath, 'a');
  const child = spawn(file, args, { env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const runtime = {
    child, logPath, startedAt: Date.now(),
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    log: () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : ''),
  };
  return runtime;
}

//  SIGTERM, and its exit: { code, signal }
export async function stopRuntime(runtime, ms = 20000) {
  if (runtime.child.exitCode !== null || runtime.child.signalCode !== null) return runtime.exited;
  runtime.child.kill('SIGTERM');
  const timer = setTimeout(() => runtime.child.kill('SIGKILL'), ms);
  const out = await runtime.exited;
  clearTimeout(timer);
  //  A sanitizer's report in the runtime's log fails the test, whatever
  //  the exit (the ASan and TSan passes run this spec too)
  const report = runtime.log().match(/(WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:)[^\n]*/);
  if (report) throw new Error(`${report[0]} (log ${runtime.logPath})`);
  return out;
}

//  ---- SQS (the stand-in speaks the JSON protocol; it checks no signature)

export async function sqs(endpoint, action, request) {
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${action}` },
    body: JSON.stringify(request),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`SQS ${action}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

//  Lambda's SQS event for received messages, as the event source mapping makes it
export function sqsEvent(messages, queueArn) {
  return {
    Records: messages.map((m) => ({
      messageId: m.MessageId,
      receiptHandle: m.ReceiptHandle,
      body: m.Body,
      attributes: {
        ApproximateReceiveCount: String(m.Attributes?.ApproximateReceiveCount ?? '1'),
        SentTimestamp: String(m.Attributes?.SentTimestamp ?? Date.now()),
        SenderId: String(m.Attributes?.SenderId ?? ACCOUNT),
        ApproximateFirstReceiveTimestamp: String(m.Attributes?.ApproximateFirstReceiveTimestamp ?? Date.now()),
        ...(m.Attributes?.AWSTraceHeader ? { AWSTraceHeader: m.Attributes.AWSTraceHeader } : {}),
      },
      messageAttributes: {},
      md5OfBody: crypto.createHash('md5').update(m.Body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: 'us-east-1',
    })),
  };
}

//  The event source mapping on one queue: receive(count) collects up to
//  count messages (waiting up to waitMs for them), hidden for visibilityS;
//  settle(messages, answer) deletes those the answer does not list.
export function eventSource(endpoint, queue, { visibilityS = 3 } = {}) {
  const url = `${endpoint}/${ACCOUNT}/${queue}`;
  const arn = `arn:aws:sqs:us-east-1:${ACCOUNT}:${queue}`;
  return {
    url, arn,
    async receive(count, { waitMs = 15000, skipTestEvents = true, keep = null } = {}) {
      const got = [];
      for (const deadline = Date.now() + waitMs; got.length < count && Date.now() < deadline;) {
        const out = await sqs(endpoint, 'ReceiveMessage', {
          QueueUrl: url, MaxNumberOfMessages: Math.min(10, count - got.length), WaitTimeSeconds: 1,
          VisibilityTimeout: visibilityS, AttributeNames: ['All'], MessageSystemAttributeNames: ['All'],
        });
        for (const m of out.Messages || []) {
          //  S3's s3:TestEvent (sent when notifications are set up) is no object
          //  keep: a filter on the bodies; the others (a test event, what an
          //  earlier test failed to settle) are deleted
          if ((skipTestEvents && m.Body.includes('s3:TestEvent')) || (keep && !keep(m.Body))) {
            await sqs(endpoint, 'DeleteMessage', { QueueUrl: url, ReceiptHandle: m.ReceiptHandle });
            continue;
          }
          //  Seen again (its visibility ran out while we collected): the newer receipt
          const seen = got.findIndex((g) => g.MessageId === m.MessageId);
          if (seen >= 0) got[seen] = m;
          else got.push(m);
        }
      }
      return got;
    },
    event(messages) {
      return sqsEvent(messages, arn);
    },
    async settle(messages, answer) {
      const failed = new Set();
      if (answer.kind === 'response') {
        const parsed = JSON.parse(answer.body);
        for (const f of parsed.batchItemFailures || []) failed.add(f.itemIdentifier);
      } else {
        for (const m of messages) failed.add(m.MessageId);     //  the whole batch comes back
      }
      for (const m of messages)
        if (!failed.has(m.MessageId)) await sqs(endpoint, 'DeleteMessage', { QueueUrl: url, ReceiptHandle: m.ReceiptHandle });
      return failed;
    },
  };
}

//  ---- S3 (s3rver takes unsigned requests)

export async function putObject(s3, key, bytes) {
  const res = await fetch(`${s3}/photos/${key.split('/').map(encodeURIComponent).join('/')}`, { method: 'PUT', body: bytes });
  if (!res.ok) throw new Error(`PUT ${key}: ${res.status} ${await res.text()}`);
  return res.headers.get('etag');
}

export async function getObject(s3, key) {
  const res = await fetch(`${s3}/photos/${key}`);
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET ${key}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

export const objectKey = (sha, suffix = '') => `objects/${sha.slice(0, 2)}/${sha.slice(2, 4)}/${sha}${suffix}`;

//  ---- PostgreSQL, a schema of the caller's own in RP_TEST_PG_URL

export function psql(url, sql) {
  return new Promise((resolve, reject) => execFile('psql', ['-qAtX', url, '-c', sql],
    (error, out, stderr) => (error ? reject(new Error(`psql: ${stderr || error.message}`)) : resolve(out.trim()))));
}

export async function pgSchema(base, schema) {
  await psql(base, `SET client_min_messages = warning; DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
  return `${base}${base.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`;
}

//  The shared corpus (RP_TESTDATA, else ../shared/testdata beside the
//  source), or null when it is absent
export function testdata(sourceDir) {
  const dir = process.env.RP_TESTDATA || path.resolve(sourceDir, '..', 'shared', 'testdata');
  return fs.existsSync(path.join(dir, 'images', 'camera')) ? dir : null;
}
export function cameraPhotos(dir) {
  const camera = path.join(dir, 'images', 'camera');
  return fs.readdirSync(camera).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => path.join(camera, f));
}
