/*  tests/load/load.spec.mjs: the runbook's k6 script (upload-flow.js) does
    what it says (node --test; ctest load_flow).

    1. It type-checks against @types/k6 (tsconfig.json: noEmit, allowJs,
       checkJs, strict), and a copy with a misspelled k6 API does not.
    2. Run by the stand-in runner (k6-runner.mjs: Debian has no k6, npm's is
       a placeholder) with 4 VUs for 10 s against a real `rapidphoto serve` with a
       user and its `rapidphoto token`: exit 0, every check of every
       iteration passed, time_to_complete has values, and the photos it
       uploaded are all in the API, complete, each with bytes of its own (a
       COM segment after SOI) and read back over real HTTP.
    3. A copy with an impossible threshold (p(95)<1) exits 99, the summary
       and the error naming the crossed threshold; a threshold on a
       misspelled metric exits 104; a k6 API the runner lacks exits 2 naming
       it; a missing AUTH_TOKEN or API_BASE_URL exits 107 saying which,
       before any request.
    4. The runner keeps k6's rules where the script leans on them: threshold
       and duration syntax, percentiles, http_req_failed (a status outside
       200-399, or none, unless responseCallback says otherwise), a VU's own
       context without Node, blocking sleep, an iteration's exception
       ending that iteration only.
*/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { binary, freePort, startServer } from '../web/support.mjs';
import { parseDuration, parseMetricKey, parseThreshold, percentile } from './k6-runner.mjs';

const here = import.meta.dirname;
const script = path.join(here, 'upload-flow.js');
const runner = path.join(here, 'k6-runner.mjs');
const tsc = path.join(here, 'node_modules', 'typescript', 'bin', 'tsc');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-load-'));

//  Run a program to its end: { code, out, err }
function run(file, args, env, cwd = here) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code === null ? signal : code, out, err }));
  });
}

//  A copy of the script beside the photo it opens, spoiled by edit(): its path
function spoiled(name, edit) {
  const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
  fs.copyFileSync(path.join(here, 'photo.jpg'), path.join(dir, 'photo.jpg'));
  const source = fs.readFileSync(script, 'utf8');
  const changed = edit(source);
  assert.notEqual(changed, source, `${name}: the spoil must change the script`);
  fs.writeFileSync(path.join(dir, 'upload-flow.js'), changed);
  return path.join(dir, 'upload-flow.js');
}

//  tsc on a script with tests/load's tsconfig.json: a copy elsewhere gets the
//  same options and the same node_modules
function typeCheck(file) {
  const dir = path.dirname(file);
  if (dir !== here) {
    const config = JSON.parse(fs.readFileSync(path.join(here, 'tsconfig.json'), 'utf8'));
    config.files = [path.basename(file), path.join(here, 'k6-console.d.ts')];
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
    fs.symlinkSync(path.join(here, 'node_modules'), path.join(dir, 'node_modules'));
  }
  return run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], process.env, dir);
}

describe('the k6 script type-checks against @types/k6', () => {
  test('tests/load/upload-flow.js passes tsc --checkJs with no error', async () => {
    assert.ok(fs.existsSync(tsc), 'TypeScript is not in tests/load/node_modules: tools/bootstrap.sh --test installs it');
    const r = await typeCheck(script);
    assert.equal(r.code, 0, `tsc: ${r.out}${r.err}`);
  });

  test('a misspelled k6 API fails the type-check, naming it', async () => {
    const r = await typeCheck(spoiled('posst', (s) => s.replace('http.post(', 'http.posst(')));
    assert.notEqual(r.code, 0, 'tsc took http.posst');
    assert.match(r.out, /error TS2551: Property 'posst' does not exist/);
  });
});

describe('the runner parses as k6 does', () => {
  test('thresholds, metric filters, durations, percentiles', () => {
    assert.deepEqual(parseThreshold('p(95)<2000'), { source: 'p(95)<2000', agg: 'p', pct: 95, op: '<', limit: 2000 });
    assert.deepEqual(parseThreshold('p(99.9) <= 1.5'), { source: 'p(99.9) <= 1.5', agg: 'p', pct: 99.9, op: '<=', limit: 1.5 });
    assert.deepEqual(parseThreshold('rate<0.01'), { source: 'rate<0.01', agg: 'rate', pct: null, op: '<', limit: 0.01 });
    for (const [text, agg, op] of [['avg<200', 'avg', '<'], ['med>=1', 'med', '>='], ['max===3', 'max', '==='],
      ['count>0', 'count', '>'], ['value!=-1', 'value', '!='], ['min==0', 'min', '==']])
      assert.deepEqual([parseThreshold(text).agg, parseThreshold(text).op], [agg, op], text);
    for (const bad of ['p95<2000', 'p(95)<', 'avg<2s', 'mean<1', 'p(95)=<1', 'rate<0.01 ms'])
      assert.throws(() => parseThreshold(bad), /is not a threshold/, bad);
    assert.deepEqual(parseMetricKey('http_req_duration{name:upload}'), { metric: 'http_req_duration', tags: { name: 'upload' } });
    assert.deepEqual(parseMetricKey('checks{check:photo complete, scenario:default}'),
      { metric: 'checks', tags: { check: 'photo complete', scenario: 'default' } });
    assert.throws(() => parseMetricKey('http_req_duration{name}'), /is not tag:value/);
    assert.deepEqual(['90s', '1m30s', '500ms', '1h', 250].map(parseDuration), [90000, 90000, 500, 3600000, 250]);
    assert.throws(() => parseDuration('90'), /is not a duration/);
    assert.throws(() => parseDuration('1m30'), /is not a duration/);
    //  k6's trend sink: linear between the closest ranks
    assert.equal(percentile([10, 20, 30, 40], 95), 38.5);
    assert.equal(percentile([10, 20, 30, 40], 50), 25);
    assert.equal(percentile([7], 99), 7);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90), 10);
  });
});

describe('the k6 script against a real serve', () => {
  let server;
  let token;
  const api = async (url, init = {}) => fetch(server.url + url, { ...init, headers: { Authorization: `Bearer ${token}` } });
  //  The user's photos, every page
  async function photos() {
    const all = [];
    for (let cursor = ''; ;) {
      const r = await api(`/api/v1/photos?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200);
      const page = await r.json();
      all.push(...page.items);
      if (!page.next_cursor)
        return all;
      cursor = page.next_cursor;
    }
  }
  //  The runner with only what k6 would be given: no ambient token
  const k6 = (args, vars) => {
    const env = { ...process.env, ...vars };
    for (const k of ['API_BASE_URL', 'AUTH_TOKEN'])
      if (!(k in vars))
        delete env[k];
    return run(process.execPath, [runner, 'run', ...args], env);
  };

  before(async () => {
    server = await startServer({ name: 'load', user: 'loadtest' });
    const r = await run(binary, ['token', 'loadtest'], server.env);
    assert.equal(r.code, 0, r.err);
    token = r.out.trim();
  });
  after(async () => {
    if (server)
      await server.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('a missing AUTH_TOKEN or API_BASE_URL stops it before any request, saying which', async () => {
    const noToken = await k6(['--vus', '2', '--duration', '2s', script], { API_BASE_URL: server.url });
    assert.equal(noToken.code, 107, noToken.out + noToken.err);
    assert.match(noToken.err, /upload-flow\.js: set AUTH_TOKEN \(an access token: `rapidphoto token NAME`\)/);
    assert.doesNotMatch(noToken.err, /API_BASE_URL/);
    const noBase = await k6([script], { AUTH_TOKEN: token });
    assert.equal(noBase.code, 107, noBase.out + noBase.err);
    assert.match(noBase.err, /set API_BASE_URL \(the gateway's base URL/);
    const neither = await k6([script], {});
    assert.equal(neither.code, 107);
    assert.match(neither.err, /set API_BASE_URL .* and AUTH_TOKEN/);
    assert.equal((await photos()).length, 0, 'no upload was made');
  });

  test('4 VUs for 10 s: exit 0, every check passed, every photo complete in the API', async () => {
    const summary = path.join(scratch, 'summary.json');
    const r = await k6(['--vus', '4', '--duration', '10s', '--summary-export', summary, script],
      { API_BASE_URL: server.url, AUTH_TOKEN: token });
    assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}\n${server.log()}`);
    assert.doesNotMatch(r.err, /ERRO/, 'no iteration error');
    assert.match(r.out, /✓ 'p\(95\)<2000' p\(95\)=/, 'the runbook\'s threshold in the summary');
    assert.match(r.out, /time_to_complete\.+: avg=\S+ min=/);

    const { metrics, root_group: root, state } = JSON.parse(fs.readFileSync(summary, 'utf8'));
    const iterations = metrics.iterations.count;
    assert.ok(iterations >= 8, `only ${iterations} iterations in 10 s`);
    assert.equal(state.iterationErrors, 0);
    assert.equal(state.interruptedIterations, 0);
    assert.deepEqual(Object.keys(root.checks).sort(),
      ['photo complete', 'thumbnail is a WebP', 'upload answered 202', 'upload names one new photo']);
    for (const c of Object.values(root.checks))
      assert.deepEqual([c.name, c.passes, c.fails], [c.name, iterations, 0]);
    assert.equal(metrics.checks.fails, 0);
    //  time_to_complete: one value per iteration, each a real wait
    assert.equal(metrics.photos_complete.count, iterations);
    assert.equal(metrics.photos_failed, undefined, 'no photo failed');
    const ttc = metrics.time_to_complete;
    assert.ok(ttc.min > 0 && ttc.min <= ttc.med && ttc.med <= ttc.max && ttc.max < 60000, JSON.stringify(ttc));
    assert.equal(metrics.flow_failed.passes, 0);
    assert.equal(metrics.flow_failed.fails, iterations);
    //  upload + at least one read + the thumbnail, every one answered 2xx
    assert.ok(metrics.http_reqs.count >= 3 * iterations);
    assert.equal(metrics.http_req_failed.passes, 0);
    for (const [key, m] of Object.entries(metrics))
      for (const [th, crossed] of Object.entries(m.thresholds || {}))
        assert.equal(crossed, false, `${key} ${th}`);

    //  Read back: exactly the photos it uploaded, complete, bytes of their own
    const list = await photos();
    assert.equal(list.length, iterations);
    assert.deepEqual([...new Set(list.map((p) => p.status))], ['complete']);
    assert.equal(new Set(list.map((p) => p.sha256)).size, iterations, 'every upload its own bytes');
    const names = list.map((p) => p.filename);
    assert.ok(names.every((n) => /^k6-[1-4]-\d+\.jpg$/.test(n)), names.join(' '));
    assert.deepEqual([...new Set(names.map((n) => n.split('-')[1]))].sort(), ['1', '2', '3', '4'], 'every VU uploaded');
    for (const p of list)
      assert.deepEqual([p.width, p.height, p.content_type], [320, 240, 'image/jpeg']);
    const sample = list[0];
    const original = new Uint8Array(await (await api(sample.urls.original)).arrayBuffer());
    assert.deepEqual([...original.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xfe], 'SOI, then the COM segment');
    const [, vu, iter] = /^k6-(\d+)-(\d+)\.jpg$/.exec(sample.filename);
    assert.match(Buffer.from(original.subarray(6, 6 + 200)).toString('latin1'), new RegExp(`^rapidphoto k6 upload-flow vu=${vu} iter=${iter} `));
    const thumbnail = await api(sample.urls.thumbnail);
    assert.equal(thumbnail.status, 200);
    assert.equal(thumbnail.headers.get('content-type'), 'image/webp');
  });

  test('an impossible threshold is crossed: exit 99, the summary and the error name it', async () => {
    const file = spoiled('threshold', (s) => s.replace("http_req_duration: ['p(95)<2000']", "http_req_duration: ['p(95)<1']"));
    const r = await k6(['--vus', '1', '--duration', '3s', file], { API_BASE_URL: server.url, AUTH_TOKEN: token });
    assert.equal(r.code, 99, r.out + r.err);
    assert.match(r.out, /http_req_duration\n {4}✗ 'p\(95\)<1' p\(95\)=\d/);
    assert.match(r.out, /http_req_failed\n {4}✓ 'rate<0\.01' rate=0\.00%/, 'the others still hold');
    assert.match(r.err, /thresholds on metrics 'http_req_duration' have been crossed/);
  });

  test('what k6 would refuse, and what the runner lacks, stop the run', async () => {
    const vars = { API_BASE_URL: server.url, AUTH_TOKEN: token };
    const metric = spoiled('metric', (s) => s.replace('time_to_complete: [', 'time_to_compete: ['));
    const badMetric = await k6(['--vus', '1', '--duration', '2s', metric], vars);
    assert.equal(badMetric.code, 104, badMetric.out + badMetric.err);
    assert.match(badMetric.err, /invalid threshold defined on time_to_compete; reason: no metric name "time_to_compete" found/);

    //  http.request is k6's, not the runner's: it must not pass unnoticed,
    //  even though the script would catch an error there
    const api_ = spoiled('request', (s) => s.replace('return res.json();', "return http.request('GET', res.url).json();"));
    const lacking = await k6(['--vus', '1', '--duration', '2s', api_], vars);
    assert.equal(lacking.code, 2, lacking.out + lacking.err);
    assert.match(lacking.err, /the script uses http \(k6\/http\)\.request, which this stand-in for k6 does not implement/);
    assert.equal((await typeCheck(api_)).code, 0, 'and it is real k6: it type-checks');

    const flag = await k6(['--iterations', '3', script], vars);
    assert.equal(flag.code, 2);
    assert.match(flag.err, /the option --iterations is not implemented/);
  });

  test('the runner keeps k6\'s rules: http_req_failed, responseCallback, contexts, sleep, exceptions', async () => {
    const closed = await freePort();
    const file = path.join(fs.mkdtempSync(path.join(scratch, 'rules-')), 'rules.js');
    fs.writeFileSync(file, `
import http from 'k6/http';
import { check, sleep } from 'k6';
let mine = 0;        // a VU's own: another VU's iterations never touch it
export const options = {
  vus: 2, duration: '2s',
  thresholds: {
    'http_req_failed{name:unauthorized}': ['rate==1'],
    'http_req_failed{name:expected}': ['rate==0'],
    'http_req_failed{name:health}': ['rate==0'],
    'http_req_failed{name:refused}': ['rate==1'],
    'checks': ['rate==1'],
  },
};
export default function () {
  mine++;
  if (__ITER === 0)
    throw new Error('the first iteration of VU ' + __VU + ' throws');
  const base = __ENV.API_BASE_URL;
  const health = http.get(base + '/healthz', { tags: { name: 'health' } });
  const denied = http.get(base + '/api/v1/photos', { tags: { name: 'unauthorized' } });
  const expected = http.get(base + '/api/v1/photos', { tags: { name: 'expected' }, responseCallback: http.expectedStatuses(401) });
  const refused = http.get('http://127.0.0.1:${closed}/', { tags: { name: 'refused' } });
  const before = Date.now();
  sleep(0.2);
  check(null, {
    'health 200 as JSON': () => health.status === 200 && health.json().status === 'ok',
    '401 either way': () => denied.status === 401 && expected.status === 401 && denied.headers['Content-Type'] === 'application/problem+json',
    'refused: status 0, k6 error code 1212': () => refused.status === 0 && refused.error_code === 1212 && refused.error !== '',
    'sleep blocks': () => Date.now() - before >= 195,
    'no Node in a VU': () => typeof require === 'undefined' && typeof process === 'undefined' && typeof fetch === 'undefined' && typeof setTimeout === 'undefined',
    'a context of its own': () => mine === __ITER + 1,
  });
}
`);
    const summary = path.join(path.dirname(file), 'summary.json');
    const r = await k6(['--summary-export', summary, file], { API_BASE_URL: server.url });
    assert.equal(r.code, 0, r.out + r.err);
    const errors = r.err.match(/^ERRO\[\d+\] Error: the first iteration of VU [12] throws$/mg) || [];
    assert.equal(errors.length, 2, r.err);
    const { metrics, root_group: root, state } = JSON.parse(fs.readFileSync(summary, 'utf8'));
    assert.equal(state.iterationErrors, 2);
    assert.ok(metrics.iterations.count >= 4, 'the VUs went on after their exception');
    for (const c of Object.values(root.checks))
      assert.deepEqual([c.name, c.fails], [c.name, 0]);
    assert.equal(Object.keys(root.checks).length, 6);
    assert.equal(metrics['http_req_failed{name:unauthorized}'].value, 1);
    assert.equal(metrics['http_req_failed{name:expected}'].value, 0);
    assert.equal(metrics['http_req_failed{name:refused}'].value, 1);
    const reqs = metrics.http_reqs.count;
    assert.equal(metrics.http_req_failed.passes, reqs / 2, 'the unauthorized and the refused failed, the rest not');
  });
});
