// tools/aws/standins.mjs: S3 and SQS stand-ins wired as AWS wires them, for
// tests and for running the engine against "AWS" on one machine.
//
//   node tools/aws/standins.mjs --port 4568 --sqs-port 9324 --dir /tmp/s3 \
//        [--bucket photos] [--prefix incoming/]
//
// s3rver (S3) on --port and local-aws-sqs (SQS) on --sqs-port, both on
// 127.0.0.1, with the queues the engine's bridges use: `ingest` (S3 event
// notifications; its messages go to `ingest-dlq` after 3 receives) and
// `events` (photo.complete / photo.failed). Every object created in the
// bucket under --prefix is announced on `ingest` exactly as S3 does it: an
// event notification with the key URL-encoded ('+' for a space), and an
// s3:TestEvent first, as when notifications are configured. Queue URLs are
// http://127.0.0.1:<sqs-port>/123456789012/<name>. Credentials: access key
// S3RVER, secret S3RVER (s3rver knows no others). Prints
// "ready s3=http://127.0.0.1:PORT sqs=http://127.0.0.1:PORT" when both
// accept requests. Stops on SIGTERM/SIGINT.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(here, 'node_modules', 's3rver')) || !existsSync(path.join(here, 'node_modules', 'local-aws-sqs'))) {
  console.error('standins: tools/aws/node_modules is missing: run tools/bootstrap.sh --test');
  process.exit(1);
}
const { default: S3rver } = await import('s3rver');
const { createSqsServer } = await import('local-aws-sqs');

const options = { port: 4568, sqsPort: 9324, dir: null, bucket: 'photos', prefix: 'incoming/' };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const value = args[i + 1];
  if (args[i] === '--port') options.port = Number(value);
  else if (args[i] === '--sqs-port') options.sqsPort = Number(value);
  else if (args[i] === '--dir') options.dir = value;
  else if (args[i] === '--bucket') options.bucket = value;
  else if (args[i] === '--prefix') options.prefix = value;
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
mkdirSync(options.dir, { recursive: true });

const account = '123456789012';
const arn = (name) => `arn:aws:sqs:us-east-1:${account}:${name}`;
const sqs = await createSqsServer({
  port: options.sqsPort,
  hostname: '127.0.0.1',
  emulateQueueCreationLifecycle: false,
  queues: [
    { QueueName: 'ingest-dlq' },
    { QueueName: 'ingest', Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('ingest-dlq'), maxReceiveCount: 3 }) } },
    { QueueName: 'events' },
  ],
});
const ingest = `http://127.0.0.1:${options.sqsPort}/${account}/ingest`;

async function send(body) {
  const res = await fetch(`http://127.0.0.1:${options.sqsPort}/`, {
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

const s3 = new S3rver({
  address: '127.0.0.1',
  port: options.port,
  directory: options.dir,
  silent: true,
  configureBuckets: [{ name: options.bucket }],
});
s3.on('event', (event) => {
  for (const record of event.Records || []) {
    const key = record.s3.object.key;
    if (record.s3.bucket.name !== options.bucket || !key.startsWith(options.prefix)) continue;
    if (!record.eventName.startsWith('ObjectCreated:')) continue;
    const announced = JSON.parse(JSON.stringify(record));
    announced.s3.object.key = encodeKey(key);
    send({ Records: [announced] });
  }
});
const { port } = await s3.run();
await send({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: options.bucket });
console.log(`ready s3=http://127.0.0.1:${port} sqs=http://127.0.0.1:${options.sqsPort}`);

const stop = async () => {
  await s3.close();
  sqs.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
