// tools/aws/standins.mjs: S3 and SQS stand-ins wired as AWS wires them, for
// tests and for running the engine against "AWS" on one machine.
//
//   node tools/aws/standins.mjs --port 4568 --sqs-port 9324 --dir /tmp/s3 \
//        [--bucket photos] [--prefix incoming/,uploads/]
//
// s3rver (S3) on --port and local-aws-sqs (SQS) on --sqs-port, both on
// 127.0.0.1, with the queues the engine's bridges use: `ingest` (S3 event
// notifications; its messages go to `ingest-dlq` after 3 receives) and
// `events` (photo.complete / photo.failed). Every object created in the
// bucket under one of the --prefix prefixes (comma-separated; by default
// incoming/ for bulk imports and uploads/ for presigned uploads, as the
// engine lays out its keys with an empty storage.s3_prefix) is announced on
// `ingest` exactly as S3 does it: an event notification with the key
// URL-encoded ('+' for a space), and an s3:TestEvent first, as when
// notifications are configured. Queue URLs are
// http://127.0.0.1:<sqs-port>/123456789012/<name>. Credentials: access key
// S3RVER, secret S3RVER (s3rver knows no others). Long polls answer as
// SQS's do, as soon as a message is there (local-aws-sqs alone waits for
// MaxNumberOfMessages or the whole wait). One difference remains:
// local-aws-sqs counts a ChangeMessageVisibility as a receive (SQS does
// not), so a message whose visibility was changed once reaches ingest-dlq
// after two receives. The bucket answers CORS as an operator sets it up
// for the web app, whose downloads follow the engine's 302 to a presigned
// GET: GET and HEAD from any origin, ETag and Content-Length exposed (the
// rule of `aws s3api put-bucket-cors`, kept with the bucket). Prints
// "ready s3=http://127.0.0.1:PORT sqs=http://127.0.0.1:PORT" when both
// accept requests. Stops on SIGTERM/SIGINT.
//
// S3's AbortMultipartUpload is answered (s3rver has none: its parts are
// removed, 204). Each multipart request (create, part, complete, abort) and each copy is
// logged once answered, "s3 UploadPart 200 /photos/<key>" (S3's server
// access log names them so), for the tests of uploads streamed to S3.
//
// Faults, for the engine's tests: SIGUSR1 closes the S3 server (its open
// connections are cut and new ones refused, as when S3 is unreachable);
// SIGUSR2 opens it again on the same port and --dir, objects kept. SQS
// stays up throughout. Each prints one line ("s3 closed ...", "s3 open
// ...") once it has taken effect.
import { existsSync, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(here, 'node_modules', 's3rver')) || !existsSync(path.join(here, 'node_modules', 'local-aws-sqs'))) {
  console.error('standins: tools/aws/node_modules is missing: run tools/bootstrap.sh --test');
  process.exit(1);
}
const { default: S3rver } = await import('s3rver');
const { createSqsServer } = await import('local-aws-sqs');

const options = { port: 4568, sqsPort: 9324, dir: null, bucket: 'photos', prefixes: ['incoming/', 'uploads/'] };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const value = args[i + 1];
  if (args[i] === '--port') options.port = Number(value);
  else if (args[i] === '--sqs-port') options.sqsPort = Number(value);
  else if (args[i] === '--dir') options.dir = value;
  else if (args[i] === '--bucket') options.bucket = value;
  else if (args[i] === '--prefix') options.prefixes = String(value).split(',').filter((p) => p.length > 0);
  else {
    console.error(`standins: unknown argument ${args[i]}`);
    process.exit(2);
  }
  i++;
}
if (!options.dir) {
  console.error('standins: --dir DIR is required (where s3rver keeps objects)');
  process.exit(2);
}
if (!options.prefixes.length) {
  console.error('standins: --prefix needs at least one prefix (comma-separated, e.g. incoming/,uploads/)');
  process.exit(2);
}
mkdirSync(options.dir, { recursive: true });

const account = '123456789012';
const arn = (name) => `arn:aws:sqs:us-east-1:${account}:${name}`;
// local-aws-sqs answers a long poll only when it has MaxNumberOfMessages
// messages or the wait is over: one S3 event would wait the engine's whole
// 20 s poll. SQS answers as soon as it has any. So local-aws-sqs listens on
// a port of its own, and the SQS port in front of it passes every request
// through, except that a ReceiveMessage with WaitTimeSeconds is asked again
// with no wait every 100 ms until it has messages or its wait is over.
const sqs = await createSqsServer({
  port: 0,
  hostname: '127.0.0.1',
  emulateQueueCreationLifecycle: false,
  queues: [
    { QueueName: 'ingest-dlq' },
    { QueueName: 'ingest', Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('ingest-dlq'), maxReceiveCount: 3 }) } },
    { QueueName: 'events' },
  ],
});
const inner = `http://127.0.0.1:${sqs.address().port}`;
const outer = `http://127.0.0.1:${options.sqsPort}`;
const ingest = `${outer}/${account}/ingest`;

// A long-poll receive (JSON or query protocol): its wait in seconds and
// the same request with no wait; null for any other request.
function longPoll(headers, body) {
  const json = String(headers['content-type'] || '').startsWith('application/x-amz-json');
  if (json) {
    if (!String(headers['x-amz-target'] || '').endsWith('.ReceiveMessage')) return null;
    let request;
    try { request = JSON.parse(body); } catch { return null; }
    const wait = Number(request.WaitTimeSeconds);
    if (!(wait > 0)) return null;
    return { wait, body: JSON.stringify({ ...request, WaitTimeSeconds: 0 }), json };
  }
  const params = new URLSearchParams(body);
  const wait = Number(params.get('WaitTimeSeconds'));
  if (params.get('Action') !== 'ReceiveMessage' || !(wait > 0)) return null;
  params.set('WaitTimeSeconds', '0');
  return { wait, body: params.toString(), json };
}

async function pass(req, body) {
  const headers = {};
  for (const name of ['content-type', 'x-amz-target', 'x-amzn-trace-id', 'authorization', 'x-amz-date'])
    if (req.headers[name]) headers[name] = req.headers[name];
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const res = await fetch(`${inner}${req.url}`, { method: req.method, headers, body: hasBody ? body : undefined });
  // Queue URLs in answers name the port clients know
  const text = (await res.text()).split(inner).join(outer);
  return { status: res.status, type: res.headers.get('content-type'), id: res.headers.get('x-amzn-requestid'), text };
}

// The receipt handles of a receive's answer.
function receiptsOf(poll, answer) {
  if (answer.status !== 200) return [];
  if (!poll.json) return [...answer.text.matchAll(/<ReceiptHandle>([^<]*)<\/ReceiptHandle>/g)].map((m) => m[1]);
  try {
    return (JSON.parse(answer.text).Messages || []).map((m) => m.ReceiptHandle);
  } catch {
    return [];
  }
}

// Make received messages visible again (ChangeMessageVisibility 0) on the
// queue of a long poll whose client left before its answer.
async function giveBack(url, poll, receipts) {
  const queue = poll.json ? JSON.parse(poll.body).QueueUrl : new URLSearchParams(poll.body).get('QueueUrl');
  for (const receipt of receipts) {
    await fetch(`${inner}${url}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.ChangeMessageVisibility' },
      body: JSON.stringify({ QueueUrl: queue, ReceiptHandle: receipt, VisibilityTimeout: 0 }),
    });
  }
  console.log(`sqs: a long poll on ${queue} was cut short; ${receipts.length} messages visible again`);
}

const front = http.createServer(async (req, res) => {
  let gone = false;
  res.on('close', () => { gone = true; });
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    const poll = longPoll(req.headers, body);
    let answer;
    if (!poll) answer = await pass(req, body);
    else {
      const until = Date.now() + poll.wait * 1000;
      for (;;) {
        if (gone) return;
        answer = await pass(req, poll.body);
        const receipts = receiptsOf(poll, answer);
        if (gone && receipts.length) {
          // Its client cut the poll short (as clients do when they stop):
          // what it would have received is visible again at once, as if it
          // had been asked a moment earlier
          await giveBack(req.url, poll, receipts);
          return;
        }
        if (receipts.length || answer.status !== 200 || Date.now() + 100 > until) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    if (gone) return;
    const headers = { 'content-length': Buffer.byteLength(answer.text) };
    if (answer.type) headers['content-type'] = answer.type;
    if (answer.id) headers['x-amzn-requestid'] = answer.id;
    res.writeHead(answer.status, headers);
    res.end(answer.text);
  } catch (err) {
    if (!gone) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`standins: ${err.message}`);
    }
  }
});
await new Promise((resolve, reject) => {
  front.once('error', reject);
  front.listen(options.sqsPort, '127.0.0.1', resolve);
});

async function send(body) {
  const res = await fetch(`${inner}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.SendMessage' },
    body: JSON.stringify({ QueueUrl: ingest, MessageBody: JSON.stringify(body) }),
  });
  if (!res.ok) console.error(`standins: cannot announce on ${ingest}: ${res.status} ${await res.text()}`);
}

// S3 encodes keys in notifications like a form: '+' for a space, %XX for the rest
const encodeKey = (key) => encodeURIComponent(key)
  .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  .replace(/%20/g, '+')
  .replace(/%2F/g, '/');

// One S3 server at a time on the same port and folder: SIGUSR1 closes it,
// SIGUSR2 makes a new one (a closed s3rver has shut its logger for good).
let s3 = null;
let s3Port = options.port;
const announce = (event) => {
  for (const record of event.Records || []) {
    const key = record.s3.object.key;
    if (record.s3.bucket.name !== options.bucket) continue;
    if (!options.prefixes.some((prefix) => key.startsWith(prefix))) continue;
    if (!record.eventName.startsWith('ObjectCreated:')) continue;
    const announced = JSON.parse(JSON.stringify(record));
    announced.s3.object.key = encodeKey(key);
    send({ Records: [announced] }).catch((err) => console.error(`standins: cannot announce ${key}: ${err.message}`));
  }
};
// The bucket's CORS rule, as PutBucketCors takes it
const cors = `<CORSConfiguration>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>HEAD</AllowedMethod>
    <ExposeHeader>ETag</ExposeHeader>
    <ExposeHeader>Content-Length</ExposeHeader>
    <MaxAgeSeconds>3000</MaxAgeSeconds>
  </CORSRule>
</CORSConfiguration>`;
async function openS3() {
  const server = new S3rver({
    address: '127.0.0.1',
    port: s3Port,
    directory: options.dir,
    silent: true,
    configureBuckets: [{ name: options.bucket, configs: [cors] }],
  });
  server.on('event', announce);
  server.middleware.unshift(abortMultipart);
  const { port } = await server.run();
  server.httpServer.on('request', accessLog);
  s3Port = port;
  s3 = server;
}
// AbortMultipartUpload, which s3rver lacks (405): its parts are removed,
// as S3 does, and the answer is S3's, 204 (404 NoSuchUpload when unknown).
// s3rver keeps an upload's parts in <dir>/<bucket>/._S3rver_uploads/<id>/.
async function abortMultipart(ctx, next) {
  const id = ctx.method === 'DELETE' ? ctx.query.uploadId : undefined;
  const bucket = ctx.path.split('/')[1];
  if (typeof id !== 'string' || bucket !== options.bucket) return next();
  const parts = path.join(options.dir, bucket, '._S3rver_uploads', path.basename(id));
  if (!id || path.basename(id) !== id || !existsSync(parts)) {
    ctx.status = 404;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code>'
      + '<Message>The specified upload does not exist.</Message></Error>';
    return;
  }
  await rm(parts, { recursive: true, force: true });
  ctx.status = 204;
}
// The multipart and copy requests, one line each once answered, as S3's
// server access log names them: "s3 <Operation> <status> <path>"
function accessLog(req, res) {
  const query = new URL(req.url, 'http://s3').searchParams;
  let op = null;
  if (req.method === 'POST' && query.has('uploads')) op = 'CreateMultipartUpload';
  else if (req.method === 'PUT' && query.has('partNumber')) op = 'UploadPart';
  else if (req.method === 'POST' && query.has('uploadId')) op = 'CompleteMultipartUpload';
  else if (req.method === 'DELETE' && query.has('uploadId')) op = 'AbortMultipartUpload';
  else if (req.method === 'PUT' && req.headers['x-amz-copy-source']) op = 'CopyObject';
  if (op) res.on('finish', () => console.log(`s3 ${op} ${res.statusCode} ${req.url.split('?')[0]}`));
}
async function closeS3() {
  const server = s3;
  s3 = null;
  const closed = server.close();
  // Cut keep-alive and in-flight connections too: a client must see the
  // peer gone, not a server that lingers until its sockets go idle
  server.httpServer.closeAllConnections();
  await closed;
}

await openS3();
await send({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: options.bucket });
console.log(`ready s3=http://127.0.0.1:${s3Port} sqs=http://127.0.0.1:${options.sqsPort}`);

// Signals are handled one after the other, each once the previous is done
let pending = Promise.resolve();
const serially = (work) => {
  pending = pending.then(work).catch((err) => console.error(`standins: ${err.message}`));
};
process.on('SIGUSR1', () => serially(async () => {
  if (!s3) {
    console.log(`s3 already closed (SIGUSR1): http://127.0.0.1:${s3Port} refuses connections`);
    return;
  }
  await closeS3();
  console.log(`s3 closed (SIGUSR1): http://127.0.0.1:${s3Port} refuses connections; sqs stays up`);
}));
process.on('SIGUSR2', () => serially(async () => {
  if (s3) {
    console.log(`s3 already open (SIGUSR2) on http://127.0.0.1:${s3Port}`);
    return;
  }
  await openS3();
  console.log(`s3 open again (SIGUSR2) on http://127.0.0.1:${s3Port}, objects in ${options.dir} kept`);
}));

const stop = async () => {
  await pending;
  if (s3) await closeS3();
  front.closeAllConnections();
  front.close();
  sqs.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
