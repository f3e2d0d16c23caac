/*  tests/container/drain.spec.mjs: the drain as ECS does it, through the
    image. The container runs `serve` on a volume; test_drain's
    drain.external (tests/test_drain.c) puts its load on it (four uploaders,
    a slow upload, two tus PATCHes under way, an event stream, /readyz
    polled), then stops it the way ECS does: `podman stop -t 30` sends
    SIGTERM and a SIGKILL 30 s later (ECS's default stopTimeout). It checks
    what the local drain test checks: /readyz 503 at once, no 5xx but 503
    with Retry-After, no upload under way cut, the stream's retry hint, exit
    0 within shutdown.timeout_s, and, once the container is started again,
    every acknowledged upload complete. Prints the drain's figures.
*/
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { cleanup, enginePorts, podman, runEngine, volume } from './support.mjs';

const USER = 'alice';
const PASSWORD = 'correct horse battery';
const drainSuite = process.env.RP_TEST_DRAIN;

let engine;
let ports;

before(async () => {
  assert.ok(drainSuite, 'RP_TEST_DRAIN names the test_drain binary (CMakeLists.txt sets it)');
  const vol = await volume('drain-data');
  ports = await enginePorts();
  engine = await runEngine('drain', { url: ports.url, env: ports.env, volume: vol });
  const add = await podman(['exec', '-i', engine.name, 'rapidphoto', 'user', 'add', USER, '--password-stdin'],
    { input: `${PASSWORD}\n` });
  assert.equal(add.code, 0, add.err);
});

after(cleanup);

test('SIGTERM from `podman stop` under load: drained, nothing acknowledged lost, exit 0', () => {
  const name = engine.name;
  const run = spawnSync(drainSuite, ['--filter', 'drain/external', '--verbose'], {
    encoding: 'utf8',
    timeout: 280000,
    env: {
      ...process.env,
      RP_DRAIN_BASE_URL: ports.url,
      //  ECS's stop: SIGTERM, SIGKILL after the stopTimeout; the exit status
      //  is the container's
      RP_DRAIN_STOP: `podman stop -t 30 ${name} >/dev/null && exit "$(podman wait ${name})"`,
      RP_DRAIN_START: `podman start ${name} >/dev/null`,
      RP_DRAIN_USER: USER,
      RP_DRAIN_PASSWORD: PASSWORD,
      RP_DRAIN_TIMEOUT_S: '25',
    },
  });
  const output = `${run.stdout}${run.stderr}`;
  for (const line of output.split('\n')) if (line.startsWith('drain:')) console.log(line);
  assert.equal(run.status, 0, `drain.external against the container failed:\n${output}`);
  assert.match(output, /Tested: 1 \| Passing: 1 \| Failing: 0/, `the external drain test ran (not skipped):\n${output}`);
});
