// tools/aws/s3rver.mjs: a local S3 stand-in (s3rver) for tests and for
// trying the S3 backend without AWS.
//
//   node tools/aws/s3rver.mjs --port 4568 --dir /tmp/s3 --bucket photos [--bucket more]
//        [--tls DIR]   HTTPS with DIR/key.pem and DIR/cert.pem ("ready https://...")
//
// Listens on 127.0.0.1, keeps objects under --dir, makes the buckets, and
// prints one line "ready http://127.0.0.1:PORT" once it accepts requests.
// Credentials: access key S3RVER, secret S3RVER (s3rver knows no others; it
// does not check SigV4 signatures, so tests check ours against AWS's
// published examples and botocore instead). Stops on SIGTERM/SIGINT.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(here, 'node_modules', 's3rver'))) {
  console.error('s3rver: tools/aws/node_modules is missing: run tools/bootstrap.sh --test');
  process.exit(1);
}
const { default: S3rver } = await import('s3rver');

const args = process.argv.slice(2);
let port = 4568;
let dir = null;
let tls = null;
const buckets = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--dir') dir = args[++i];
  else if (args[i] === '--bucket') buckets.push(args[++i]);
  else if (args[i] === '--tls') tls = args[++i];
  else {
    console.error(`s3rver: unknown argument ${args[i]} (use --port N --dir DIR --bucket NAME... [--tls DIR])`);
    process.exit(2);
  }
}
if (!dir || !buckets.length || !Number.isInteger(port)) {
  console.error('s3rver: --dir DIR and at least one --bucket NAME are required');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
const server = new S3rver({
  address: '127.0.0.1',
  port,
  directory: dir,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
  ...(tls ? { key: readFileSync(path.join(tls, 'key.pem')), cert: readFileSync(path.join(tls, 'cert.pem')) } : {}),
});
const { port: bound } = await server.run();
console.log(`ready ${tls ? 'https' : 'http'}://127.0.0.1:${bound}`);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
