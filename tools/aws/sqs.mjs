// tools/aws/sqs.mjs: a local SQS stand-in (local-aws-sqs) for tests and for
// trying the SQS bridges without AWS.
//
//   node tools/aws/sqs.mjs --port 9324 [--queue NAME]... [--dlq NAME:SOURCE:MAX]...
//
// Listens on 127.0.0.1 and speaks both SQS protocols (JSON and query).
// --queue makes a queue; --dlq NAME:SOURCE:MAX makes NAME the dead-letter
// queue of SOURCE after MAX receives. Queue URLs are
// http://127.0.0.1:PORT/123456789012/NAME. Prints "ready http://127.0.0.1:PORT"
// once it accepts requests. Stops on SIGTERM/SIGINT.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(here, 'node_modules', 'local-aws-sqs'))) {
  console.error('sqs: tools/aws/node_modules is missing: run tools/bootstrap.sh --test');
  process.exit(1);
}
const { createSqsServer } = await import('local-aws-sqs');

const args = process.argv.slice(2);
let port = 9324;
const queues = [];
const dlqs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--queue') queues.push(args[++i]);
  else if (args[i] === '--dlq') dlqs.push(args[++i].split(':'));
  else {
    console.error(`sqs: unknown argument ${args[i]} (use --port N --queue NAME --dlq NAME:SOURCE:MAX)`);
    process.exit(2);
  }
}
const arn = (name) => `arn:aws:sqs:us-east-1:123456789012:${name}`;
const definitions = [];
for (const [name] of dlqs) definitions.push({ QueueName: name });
for (const name of queues) {
  const dlq = dlqs.find(([, source]) => source === name);
  const queue = { QueueName: name };
  if (dlq) {
    queue.Attributes = { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn(dlq[0]), maxReceiveCount: Number(dlq[2]) }) };
  }
  definitions.push(queue);
}
const server = await createSqsServer({
  port, hostname: '127.0.0.1', queues: definitions, emulateQueueCreationLifecycle: false,
});
console.log(`ready http://127.0.0.1:${port}`);
const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
