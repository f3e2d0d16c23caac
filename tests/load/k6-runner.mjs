#!/usr/bin/env node
/*  tests/load/k6-runner.mjs: a stand-in for `k6 run`, for the one script
    tests/load/upload-flow.js, so that the script's flow is run against a real
    `rapidphoto serve` where k6 itself cannot be installed (Debian has no
    k6; npm's `k6` is an empty placeholder for editors). It checks that the
    script does what it says; it measures nothing worth quoting (bench/load
    does that).

      node tests/load/k6-runner.mjs run [--vus N] [--duration 10s] [-e KEY=VALUE]...
                                        [--summary-export FILE] SCRIPT

    DESIGN. k6's model, kept where the script can see it:
    - Each virtual user is a worker thread holding its own vm context: the
      script is evaluated there as an ES module (vm.SourceTextModule, hence
      --experimental-vm-modules in the workers' execArgv), its init context
      once per VU (and once more first, as k6's "VU 0", to read `options`),
      then its default function in a loop until the duration ends. The
      context has only what k6 gives a script: the language, __ENV, __VU,
      __ITER, open() (init context only), console; no Node (no require,
      process, fetch, setTimeout).
    - Calls block the VU as k6's do. An HTTP request is posted to the main
      thread on the VU's own MessagePort and the worker sleeps in
      Atomics.wait on its SharedArrayBuffer cell until the main thread,
      which makes the request with Node's fetch (real HTTP, keep-alive),
      posts the answer and notifies; the worker then takes it with
      receiveMessageOnPort. sleep() is an Atomics.wait with a timeout.
    - Metrics: every sample (its value and tags) goes to the main thread,
      which keeps them all and aggregates at the end: k6's built-in metrics
      that can be measured here (http_reqs, http_req_duration = the whole
      request, http_req_waiting = until the headers, http_req_receiving =
      the body, http_req_failed = a status outside 200-399 or no answer,
      unless the request's responseCallback says otherwise; checks,
      iterations, iteration_duration, vus, vus_max) and the script's Trend,
      Counter, Rate and Gauge. Sending, connecting and TLS are not measured
      apart: they are in http_req_waiting, and there are no such metrics.
    - Thresholds are parsed as k6 parses them (`p(95)<2000`, `rate<0.01`,
      avg, min, max, med, count, value; < <= > >= == === !=; a metric
      name with a {tag:value,...} filter), refused as k6 refuses them (an
      unknown metric, an aggregation its type lacks: exit 104), evaluated
      on the samples (a metric without samples is not evaluated, as in
      k6), and a crossed one makes the exit status 99.
    - Exit status: 0; 99 a threshold crossed; 104 bad options; 107 the
      script threw in its init context; 2 wrong usage or anything this
      stand-in does not implement. An exception in the default function
      ends that iteration only, logged, as in k6.
    - Anything of k6 that this file does not implement fails loudly: an
      unknown module or named import fails the link; an unknown property of
      the http module, a response or its timings, an unknown option, an
      export other than default and options, an unknown command-line flag
      each stop the run with exit 2 naming it, even where the script would
      catch the error.
*/
import { MessageChannel, Worker, isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const EXIT_THRESHOLDS = 99;
const EXIT_INVALID_CONFIG = 104;
const EXIT_SCRIPT = 107;
const EXIT_USAGE = 2;
const GRACEFUL_STOP_MS = 30000;     // k6's default gracefulStop
const MAX_REDIRECTS = 10;           // k6's default maxRedirects
const DEFAULT_TIMEOUT_MS = 60000;   // k6's default request timeout

//  ---- shared by both sides -------------------------------------------------

//  k6's duration strings: "90s", "1m30s", "500ms", "1h"; a number is ms.
export function parseDuration(value) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0)
        return value;
    const text = String(value);
    const units = { h: 3600000, m: 60000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001 };
    const re = /(\d+(?:\.\d+)?)(ms|us|µs|h|m|s)/gy;
    let total = 0;
    let matched = 0;
    for (let m; (m = re.exec(text)) !== null; matched = re.lastIndex)
        total += Number(m[1]) * units[m[2]];
    if (matched === 0 || matched !== text.length)
        throw new Error(`'${text}' is not a duration (such as 90s, 1m30s, 500ms)`);
    return total;
}

//  ---- the virtual user (a worker thread) ------------------------------------

class NotImplemented extends Error {}

function vuMain() {
    const { mode, vu, script, env, control, stop, http: httpPort } = workerData;
    const ctl = new Int32Array(control);
    const stopFlag = new Int32Array(stop);
    const napCell = new Int32Array(new SharedArrayBuffer(4));
    const post = (m) => parentPort.postMessage(m);
    const scriptDir = path.dirname(script);
    let inInit = true;

    //  Reported to the main thread the moment it is thrown, so that a script
    //  catching it cannot hide it
    const notImplemented = (what) => {
        post({ t: 'unimplemented', what });
        return new NotImplemented(`k6-runner: ${what} is not implemented by this stand-in for k6`);
    };
    //  An object whose unknown properties fail loudly
    const strict = (obj, what) => new Proxy(obj, {
        get(target, key, receiver) {
            if (typeof key === 'symbol' || key in target || key === 'then' || key === 'toJSON')
                return Reflect.get(target, key, receiver);
            throw notImplemented(`${what}.${key}`);
        },
    });

    const ctx = vm.createContext({ __ENV: Object.freeze({ ...env }), __VU: mode === 'options' ? 0 : vu, __ITER: 0 });
    const ctxArrayBuffer = vm.runInContext('ArrayBuffer', ctx);
    const ctxJSON = vm.runInContext('JSON', ctx);
    const isArrayBuffer = (x) => Object.prototype.toString.call(x) === '[object ArrayBuffer]';
    const toCtxBuffer = (bytes) => {
        const out = new ctxArrayBuffer(bytes.byteLength);
        new Uint8Array(out).set(bytes);
        return out;
    };
    const show = (args) => args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    ctx.console = strict({
        log: (...a) => post({ t: 'log', level: 'info', text: show(a) }),
        info: (...a) => post({ t: 'log', level: 'info', text: show(a) }),
        warn: (...a) => post({ t: 'log', level: 'warn', text: show(a) }),
        error: (...a) => post({ t: 'log', level: 'error', text: show(a) }),
        debug: () => {},    // k6 prints debug only with --verbose
    }, 'console');
    ctx.open = (file, mode_) => {
        if (!inInit)
            throw new Error('The "open()" function is only available in the init stage (i.e. the global scope)');
        if (mode_ !== undefined && mode_ !== 'b')
            throw notImplemented(`open() mode '${mode_}'`);
        const bytes = fs.readFileSync(path.resolve(scriptDir, String(file)));
        return mode_ === 'b' ? toCtxBuffer(bytes) : bytes.toString('utf8');
    };

    //  ---- k6/metrics ----
    const declared = new Map();
    const metricsModule = {};
    for (const [cls, type] of [['Counter', 'counter'], ['Gauge', 'gauge'], ['Rate', 'rate'], ['Trend', 'trend']]) {
        metricsModule[cls] = class {
            constructor(name, isTime) {
                if (!inInit)
                    throw new Error('metrics must be declared in the init context');
                if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/.test(String(name)))
                    throw new Error(`invalid metric name: '${name}'`);
                const prior = declared.get(name);
                if (prior && prior.type !== type)
                    throw new Error(`metric '${name}' already exists with the type ${prior.type}`);
                declared.set(name, { type, isTime: type === 'trend' && Boolean(isTime) });
                post({ t: 'metric', name, type, isTime: type === 'trend' && Boolean(isTime) });
                Object.defineProperty(this, 'name', { value: name, enumerable: true });
                return strict(this, `k6/metrics ${cls}`);
            }
            add(value, tags) {
                if (inInit)
                    throw new Error('metrics can be added only in the VU context');
                const v = typeof value === 'boolean' ? Number(value) : Number(value);
                if (!Number.isFinite(v))
                    throw new Error(`${this.name}: '${value}' is not a number`);
                post({ t: 'sample', name: this.name, value: v, tags: { scenario: 'default', ...plainTags(tags) } });
            }
        };
    }

    function plainTags(tags) {
        if (tags === undefined || tags === null)
            return {};
        const out = {};
        for (const [k, v] of Object.entries(tags))
            out[k] = String(v);
        return out;
    }

    //  ---- k6 ----
    const nap = (ms) => {
        if (ms > 0)
            Atomics.wait(napCell, 0, 0, ms);
    };
    const k6Module = {
        check(val, sets, tags) {
            let all = true;
            for (const [name, fn] of Object.entries(sets)) {
                const ok = Boolean(typeof fn === 'function' ? fn(val) : fn);
                post({ t: 'sample', name: 'checks', value: ok ? 1 : 0, check: name,
                       tags: { scenario: 'default', group: '', check: name, ...plainTags(tags) } });
                all = all && ok;
            }
            return all;
        },
        sleep(seconds) {
            nap(Number(seconds) * 1000);
        },
    };

    //  ---- k6/http ----
    const FILE = Symbol('k6 http.file');
    function file(data, filename, contentType) {
        const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8')
            : isArrayBuffer(data) ? new Uint8Array(data) : null;
        if (!bytes)
            throw notImplemented('http.file() of anything but a string or an ArrayBuffer');
        const name = filename === undefined ? `${Date.now()}` : String(filename);   // k6: a timestamp when none
        return strict({ [FILE]: true, data, filename: name, content_type: contentType || 'application/octet-stream',
                        bytes: new Uint8Array(bytes) }, 'http.file()');
    }
    //  A request body as k6 sends it: an object with a file part is
    //  multipart/form-data, any other object a URL-encoded form
    function encodeBody(body) {
        if (body === undefined || body === null)
            return { bytes: null, type: null };
        if (typeof body === 'string')
            return { bytes: Buffer.from(body, 'utf8'), type: null };
        if (isArrayBuffer(body))
            return { bytes: new Uint8Array(body), type: null };
        if (typeof body !== 'object')
            throw notImplemented(`a request body of type ${typeof body}`);
        const entries = Object.entries(body);
        if (!entries.some(([, v]) => v && v[FILE])) {
            const form = entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
            return { bytes: Buffer.from(form), type: 'application/x-www-form-urlencoded' };
        }
        const boundary = randomBytes(30).toString('hex');
        const parts = [];
        for (const [k, v] of entries) {
            const head = v && v[FILE]
                ? `--${boundary}\r\nContent-Disposition: form-data; name="${k}"; filename="${v.filename}"\r\n` +
                  `Content-Type: ${v.content_type}\r\n\r\n`
                : `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n`;
            parts.push(Buffer.from(head), v && v[FILE] ? Buffer.from(v.bytes) : Buffer.from(String(v)), Buffer.from('\r\n'));
        }
        parts.push(Buffer.from(`--${boundary}--\r\n`));
        return { bytes: new Uint8Array(Buffer.concat(parts)), type: `multipart/form-data; boundary=${boundary}` };
    }
    const knownParams = new Set(['headers', 'tags', 'timeout', 'responseType', 'responseCallback']);
    function request(method, url, body, params) {
        if (inInit)
            throw new Error('Making http requests in the init context is not supported');
        params = params || {};
        for (const key of Object.keys(params))
            if (!knownParams.has(key))
                throw notImplemented(`the request parameter '${key}'`);
        const responseType = params.responseType || 'text';
        if (!['text', 'binary', 'none'].includes(responseType))
            throw new Error(`unknown responseType ${responseType}`);
        const { bytes, type } = encodeBody(body);
        const headers = {};
        for (const [k, v] of Object.entries(params.headers || {}))
            headers[k] = String(v);
        if (type && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type'))
            headers['Content-Type'] = type;
        const expected = params.responseCallback === undefined ? null : params.responseCallback;
        if (expected !== null && !(expected && expected.statuses))
            throw notImplemented('a responseCallback not made by http.expectedStatuses()');
        const req = {
            method, url: String(url), headers, body: bytes, responseType,
            timeoutMs: params.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(params.timeout),
            tags: plainTags(params.tags), expected: expected && expected.statuses,
        };
        Atomics.store(ctl, 0, 0);
        httpPort.postMessage(req);
        Atomics.wait(ctl, 0, 0);
        const reply = receiveMessageOnPort(httpPort);
        if (!reply)
            throw new Error('k6-runner: internal: the HTTP answer went missing');
        const r = reply.message;
        const resBody = r.body === null ? null : responseType === 'binary' ? toCtxBuffer(new Uint8Array(r.body)) : r.body;
        const response = {
            status: r.status, status_text: r.status_text, url: r.url, proto: 'HTTP/1.1',
            headers: r.headers, body: resBody, error: r.error, error_code: r.error_code,
            timings: strict({ duration: r.timings.duration, waiting: r.timings.waiting, receiving: r.timings.receiving },
                'the response\'s timings'),
            request: strict({ method, url: String(url), headers, body: body === undefined ? '' : body }, 'the response\'s request'),
            json(selector) {
                if (selector !== undefined)
                    throw notImplemented('Response.json() with a selector');
                if (typeof resBody !== 'string')
                    throw new Error('cannot parse json due to an error at line 1, character 1: the body is not text');
                return ctxJSON.parse(resBody);
            },
        };
        return strict(response, 'the http response');
    }
    const httpModule = {
        get: (url, params) => request('GET', url, null, params),
        post: (url, body, params) => request('POST', url, body, params),
        file,
        expectedStatuses(...list) {
            const statuses = [];
            for (const s of list) {
                if (typeof s === 'number')
                    statuses.push([s, s]);
                else if (s && typeof s.min === 'number' && typeof s.max === 'number')
                    statuses.push([s.min, s.max]);
                else
                    throw new Error(`expectedStatuses: ${JSON.stringify(s)} is neither a status nor {min, max}`);
            }
            return strict({ statuses }, 'http.expectedStatuses()');
        },
    };

    const modules = {
        k6: { ...k6Module, default: strict({ ...k6Module }, 'k6') },
        'k6/http': { ...httpModule, default: strict({ ...httpModule }, 'http (k6/http)') },
        'k6/metrics': { ...metricsModule, default: strict({ ...metricsModule }, 'k6/metrics') },
    };

    async function load() {
        const source = fs.readFileSync(script, 'utf8');
        const mod = new vm.SourceTextModule(source, { identifier: script, context: ctx });
        await mod.link(async (specifier) => {
            const impl = modules[specifier];
            if (!impl)
                throw notImplemented(`the module '${specifier}'`);
            return new vm.SyntheticModule(Object.keys(impl), function () {
                for (const [k, v] of Object.entries(impl))
                    this.setExport(k, v);
            }, { identifier: specifier, context: ctx });
        });
        await mod.evaluate();
        inInit = false;
        return mod.namespace;
    }

    //  The script's frames only, as k6 shows them
    const describe = (e) => (e && e.stack ? String(e.stack) : String(e)).split('\n')
        .filter((l) => !/k6-runner\.mjs|node:internal/.test(l)).join('\n');
    (async () => {
        let ns;
        try {
            ns = await load();
        } catch (e) {
            post({ t: 'init-error', text: describe(e) });
            return;
        }
        const exportsList = Object.keys(ns);
        if (mode === 'options') {
            let options;
            try {
                options = ns.options === undefined ? {} : JSON.parse(JSON.stringify(ns.options));
            } catch (e) {
                post({ t: 'init-error', text: `options: ${describe(e)}` });
                return;
            }
            post({ t: 'options', options, exports: exportsList, hasDefault: typeof ns.default === 'function' });
            return;
        }
        post({ t: 'ready' });
        //  Wait for the start, then iterate until told to stop
        Atomics.wait(stopFlag, 1, 0);
        for (let iter = 0; Atomics.load(stopFlag, 0) === 0; iter++) {
            ctx.__ITER = iter;
            const started = performance.now();
            try {
                ns.default();
            } catch (e) {
                post({ t: 'iteration-error', text: describe(e), unimplemented: e instanceof NotImplemented });
            }
            post({ t: 'sample', name: 'iteration_duration', value: performance.now() - started, tags: { scenario: 'default', group: '' } });
            post({ t: 'sample', name: 'iterations', value: 1, tags: { scenario: 'default', group: '' } });
        }
        post({ t: 'done' });
    })();
}

//  ---- the main thread: options, VUs, HTTP, metrics, summary ---------------

const BUILTIN = {
    checks: { type: 'rate', isTime: false },
    http_reqs: { type: 'counter', isTime: false },
    http_req_duration: { type: 'trend', isTime: true },
    http_req_waiting: { type: 'trend', isTime: true },
    http_req_receiving: { type: 'trend', isTime: true },
    http_req_failed: { type: 'rate', isTime: false },
    iterations: { type: 'counter', isTime: false },
    iteration_duration: { type: 'trend', isTime: true },
    vus: { type: 'gauge', isTime: false },
    vus_max: { type: 'gauge', isTime: false },
};
const AGGREGATIONS = {
    counter: ['count', 'rate'], gauge: ['value'], rate: ['rate'],
    trend: ['avg', 'min', 'max', 'med', 'p(N)'],
};

function usage(message) {
    process.stderr.write(`k6-runner: ${message}\n` +
        'usage: k6-runner.mjs run [--vus N] [--duration D] [-e KEY=VALUE]... [--summary-export FILE] SCRIPT\n');
    process.exit(EXIT_USAGE);
}

function parseArgs(argv) {
    const args = { env: {}, vus: undefined, duration: undefined, summaryExport: null, script: null };
    let i = 0;
    if (argv[0] === 'run')
        i++;
    for (; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            if (i + 1 >= argv.length)
                usage(`${a} wants a value`);
            return argv[++i];
        };
        if (a === '--vus' || a === '-u') {
            const n = Number(value());
            if (!Number.isInteger(n) || n < 1)
                usage(`--vus wants a whole number above 0, not '${argv[i]}'`);
            args.vus = n;
        } else if (a === '--duration' || a === '-d') {
            args.duration = value();
        } else if (a === '--env' || a === '-e') {
            const kv = value();
            const eq = kv.indexOf('=');
            if (eq <= 0)
                usage(`-e wants KEY=VALUE, not '${kv}'`);
            args.env[kv.slice(0, eq)] = kv.slice(eq + 1);
        } else if (a === '--summary-export') {
            args.summaryExport = value();
        } else if (a.startsWith('-')) {
            usage(`the option ${a} is not implemented by this stand-in for k6`);
        } else if (args.script === null) {
            args.script = path.resolve(a);
        } else {
            usage(`one script only ('${a}')`);
        }
    }
    if (!args.script)
        usage('no script');
    return args;
}

//  "p(95)<2000" -> { agg: 'p', pct: 95, op: '<', limit: 2000 }, as k6's
//  threshold parser reads it
export function parseThreshold(text) {
    const m = /^\s*(avg|min|max|med|count|rate|value|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
    if (!m)
        throw new Error(`'${text}' is not a threshold (aggregation, operator, number: such as p(95)<2000)`);
    return { source: text, agg: m[2] !== undefined ? 'p' : m[1], pct: m[2] !== undefined ? Number(m[2]) : null,
             op: m[3], limit: Number(m[4]) };
}

//  "http_req_duration{name:upload}" -> { metric, tags: {name: 'upload'} }
export function parseMetricKey(key) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)(?:\{(.*)\})?$/.exec(key.trim());
    if (!m)
        throw new Error(`'${key}' is not a metric name with an optional {tag:value} filter`);
    const tags = {};
    if (m[2] !== undefined) {
        for (const part of m[2].split(',')) {
            const colon = part.indexOf(':');
            if (colon <= 0)
                throw new Error(`'${key}': the filter '${part}' is not tag:value`);
            tags[part.slice(0, colon).trim()] = part.slice(colon + 1).trim();
        }
    }
    return { metric: m[1], tags };
}

export function percentile(sorted, pct) {
    //  k6's trend sink: linear between the closest ranks
    if (sorted.length === 0)
        return 0;
    const rank = (pct / 100) * (sorted.length - 1);
    const lower = Math.floor(rank);
    const upper = Math.min(lower + 1, sorted.length - 1);
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (rank - lower);
}

function aggregate(type, samples, durationS) {
    const values = samples.map((s) => s.value);
    if (type === 'trend') {
        const sorted = [...values].sort((a, b) => a - b);
        const n = sorted.length;
        return {
            count: n, avg: n ? sorted.reduce((a, b) => a + b, 0) / n : 0, min: n ? sorted[0] : 0, max: n ? sorted[n - 1] : 0,
            med: percentile(sorted, 50), p: (pct) => percentile(sorted, pct),
        };
    }
    if (type === 'rate') {
        const passes = values.filter((v) => v !== 0).length;
        return { count: values.length, passes, fails: values.length - passes, rate: values.length ? passes / values.length : 0 };
    }
    if (type === 'counter') {
        const count = values.reduce((a, b) => a + b, 0);
        return { count: values.length ? count : 0, samples: values.length, rate: durationS > 0 ? count / durationS : 0 };
    }
    return { count: values.length, value: values.length ? values[values.length - 1] : 0,
             min: values.length ? Math.min(...values) : 0, max: values.length ? Math.max(...values) : 0 };
}

function aggValue(agg, th) {
    return th.agg === 'p' ? agg.p(th.pct) : agg[th.agg];
}

function compare(value, op, limit) {
    switch (op) {
    case '<': return value < limit;
    case '<=': return value <= limit;
    case '>': return value > limit;
    case '>=': return value >= limit;
    case '==': case '===': return value === limit;
    case '!=': return value !== limit;
    default: throw new Error(`operator ${op}`);
    }
}

function fmtDuration(ms) {
    if (ms < 1)
        return `${(ms * 1000).toFixed(2)}µs`;
    if (ms < 1000)
        return `${ms.toFixed(2)}ms`;
    if (ms < 60000)
        return `${(ms / 1000).toFixed(2)}s`;
    const m = Math.floor(ms / 60000);
    return `${m}m${((ms - m * 60000) / 1000).toFixed(1)}s`;
}
const fmtNumber = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(6).replace(/\.?0+$/, ''));

function timestamp(t0) {
    return `[${String(Math.floor((Date.now() - t0) / 1000)).padStart(4, '0')}]`;
}

//  Canonical header keys, as Go (and so k6) writes them: Content-Type
const canonical = (k) => k.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()).join('-');

function errorCode(e) {
    const cause = e && e.cause ? e.cause.code || '' : '';
    if (e && (e.name === 'TimeoutError' || e.name === 'AbortError'))
        return { code: 1050, text: 'request timeout' };
    if (cause === 'ECONNREFUSED')
        return { code: 1212, text: `dial: connection refused (${e.cause.message})` };
    if (cause === 'ENOTFOUND')
        return { code: 1101, text: `lookup: no such host (${e.cause.message})` };
    return { code: 1000, text: String(e && e.cause ? e.cause.message || e.cause : e) };
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const env = { ...process.env, ...args.env };
    const t0 = Date.now();
    const metrics = new Map(Object.entries(BUILTIN).map(([name, m]) => [name, { ...m, samples: [] }]));
    const checkCounts = new Map();     // check name -> { passes, fails }
    let unimplemented = null;
    let iterationErrors = 0;
    let interrupted = 0;
    const record = (name, value, tags) => {
        const m = metrics.get(name);
        if (!m)
            throw new Error(`k6-runner: internal: a sample of the undeclared metric ${name}`);
        m.samples.push({ value, tags });
    };
    const log = (level, text) => process.stderr.write(`${level === 'error' ? 'ERRO' : level === 'warn' ? 'WARN' : 'INFO'}${timestamp(t0)} ${text}\n`);

    const control = new SharedArrayBuffer(8);
    const stop = new SharedArrayBuffer(8);    // [0] stop iterating, [1] start
    const stopFlag = new Int32Array(stop);

    function spawn(mode, vu, onMessage) {
        const cell = new SharedArrayBuffer(4);
        const { port1, port2 } = new MessageChannel();
        const worker = new Worker(new URL(import.meta.url), {
            execArgv: ['--experimental-vm-modules', '--no-warnings'],
            workerData: { mode, vu, script: args.script, env, control: cell, stop, http: port2 },
            transferList: [port2],
            stdout: false, stderr: false,
        });
        const ctl = new Int32Array(cell);
        port1.on('message', async (req) => {
            const reply = await doRequest(req);
            port1.postMessage(reply, reply.body instanceof ArrayBuffer ? [reply.body] : []);
            Atomics.store(ctl, 0, 1);
            Atomics.notify(ctl, 0);
        });
        worker.on('message', (m) => {
            switch (m.t) {
            case 'metric': {
                const prior = metrics.get(m.name);
                if (prior && (prior.type !== m.type || prior.isTime !== m.isTime)) {
                    log('error', `the metric ${m.name} is declared as ${m.type} and as ${prior.type}`);
                    process.exit(EXIT_SCRIPT);
                }
                if (!prior)
                    metrics.set(m.name, { type: m.type, isTime: m.isTime, samples: [] });
                break;
            }
            case 'sample':
                record(m.name, m.value, m.tags);
                if (m.check !== undefined) {
                    const c = checkCounts.get(m.check) || { passes: 0, fails: 0 };
                    if (m.value) c.passes++; else c.fails++;
                    checkCounts.set(m.check, c);
                }
                break;
            case 'log':
                log(m.level, m.text);
                break;
            case 'unimplemented':
                if (!unimplemented)
                    unimplemented = m.what;
                process.stderr.write(`k6-runner: the script uses ${m.what}, which this stand-in for k6 does not implement\n`);
                process.exit(EXIT_USAGE);
                break;
            case 'iteration-error':
                iterationErrors++;
                log('error', `${m.text}\n\tat VU ${vu}`);
                break;
            default:
                onMessage(m);
            }
        });
        worker.on('error', (e) => {
            log('error', `VU ${vu}: ${e && e.stack ? e.stack : e}`);
            process.exit(EXIT_SCRIPT);
        });
        return { worker, port: port1 };
    }

    async function doRequest(req) {
        let url = req.url;
        let method = req.method;
        let body = req.body;
        const headers = { ...req.headers };
        for (let hop = 0; ; hop++) {
            const started = performance.now();
            let res = null;
            let error = null;
            let bytes = null;
            let headed = started;
            try {
                res = await fetch(url, { method, headers, body: body === null ? undefined : body, redirect: 'manual',
                                         signal: AbortSignal.timeout(req.timeoutMs) });
                headed = performance.now();
                bytes = new Uint8Array(await res.arrayBuffer());
            } catch (e) {
                error = errorCode(e);
            }
            const ended = performance.now();
            const status = res && !error ? res.status : 0;
            const expected = req.expected
                ? req.expected.some(([lo, hi]) => status >= lo && status <= hi)
                : status >= 200 && status <= 399;
            const tags = { method, url, name: url, status: String(status), expected_response: String(expected),
                           proto: 'HTTP/1.1', scenario: 'default', group: '', ...req.tags };
            if (error)
                tags.error_code = String(error.code);
            record('http_reqs', 1, tags);
            record('http_req_duration', ended - started, tags);
            record('http_req_waiting', headed - started, tags);
            record('http_req_receiving', ended - headed, tags);
            record('http_req_failed', expected ? 0 : 1, tags);
            const location = res && !error ? res.headers.get('location') : null;
            if (location && [301, 302, 303, 307, 308].includes(status) && hop < MAX_REDIRECTS) {
                const next = new URL(location, url);
                //  Go's client (k6's) drops these on a redirect to another host
                if (next.host !== new URL(url).host)
                    for (const k of Object.keys(headers))
                        if (['authorization', 'cookie', 'www-authenticate'].includes(k.toLowerCase()))
                            delete headers[k];
                if (status !== 307 && status !== 308) {
                    method = method === 'HEAD' ? 'HEAD' : 'GET';
                    body = null;
                    for (const k of Object.keys(headers))
                        if (k.toLowerCase() === 'content-type')
                            delete headers[k];
                }
                url = next.href;
                continue;
            }
            const outHeaders = {};
            if (res && !error)
                for (const [k, v] of res.headers)
                    outHeaders[canonical(k)] = v;
            let outBody = null;
            if (bytes && req.responseType === 'binary')
                outBody = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
            else if (bytes && req.responseType === 'text')
                outBody = Buffer.from(bytes).toString('utf8');
            return {
                status, status_text: res && !error ? `${status} ${res.statusText}` : '', url, headers: outHeaders, body: outBody,
                error: error ? error.text : '', error_code: error ? error.code : 0,
                timings: { duration: ended - started, waiting: headed - started, receiving: ended - headed },
            };
        }
    }

    //  VU 0: the options, and whether the script can run at all
    const first = await new Promise((resolve) => {
        const { worker, port } = spawn('options', 0, (m) => {
            if (m.t === 'options' || m.t === 'init-error') {
                resolve(m);
                port.close();
                worker.terminate();
            }
        });
    });
    if (first.t === 'init-error') {
        log('error', first.text);
        process.exit(EXIT_SCRIPT);
    }
    for (const name of first.exports)
        if (name !== 'default' && name !== 'options')
            usage(`the script exports '${name}': only default and options are implemented by this stand-in for k6`);
    if (!first.hasDefault) {
        log('error', 'the script has no default function');
        process.exit(EXIT_SCRIPT);
    }
    const options = first.options;
    for (const key of Object.keys(options))
        if (!['vus', 'duration', 'thresholds'].includes(key))
            usage(`the option '${key}' is not implemented by this stand-in for k6`);
    const invalid = (text) => {
        log('error', text);
        process.exit(EXIT_INVALID_CONFIG);
    };
    const vus = args.vus !== undefined ? args.vus : options.vus !== undefined ? options.vus : 1;
    if (!Number.isInteger(vus) || vus < 1)
        invalid(`vus: ${vus} is not a whole number above 0`);
    let durationMs;
    try {
        durationMs = parseDuration(args.duration !== undefined ? args.duration : options.duration !== undefined ? options.duration : '1s');
    } catch (e) {
        invalid(`duration: ${e.message}`);
    }
    if (!(durationMs > 0))
        invalid('duration: zero; this stand-in runs only the constant-vus executor');
    const thresholds = [];
    for (const [key, list] of Object.entries(options.thresholds || {})) {
        let sel;
        try {
            sel = parseMetricKey(key);
        } catch (e) {
            invalid(`invalid threshold defined on ${key}: ${e.message}`);
        }
        const m = metrics.get(sel.metric);
        if (!m)
            invalid(`invalid threshold defined on ${key}; reason: no metric name "${sel.metric}" found`);
        for (const item of Array.isArray(list) ? list : [list]) {
            if (typeof item !== 'string')
                usage(`threshold ${key}: only threshold strings are implemented by this stand-in (not ${JSON.stringify(item)})`);
            let th;
            try {
                th = parseThreshold(item);
            } catch (e) {
                invalid(`invalid threshold defined on ${key}: ${e.message}`);
            }
            const allowed = AGGREGATIONS[m.type];
            if (!allowed.includes(th.agg === 'p' ? 'p(N)' : th.agg))
                invalid(`invalid threshold defined on ${key}: the aggregation method "${th.source.replace(/\s*(<|>|=|!).*$/, '')}" is not valid for the metric's type ${m.type}`);
            thresholds.push({ key, ...sel, ...th });
        }
    }

    //  The VUs: each its own init context, then all start together
    const pool = [];
    let ready = 0;
    let done = 0;
    let allReady;
    let allDone;
    const readyP = new Promise((r) => { allReady = r; });
    const doneP = new Promise((r) => { allDone = r; });
    for (let vu = 1; vu <= vus; vu++) {
        const entry = spawn('vu', vu, (m) => {
            if (m.t === 'init-error') {
                log('error', m.text);
                process.exit(EXIT_SCRIPT);
            } else if (m.t === 'ready') {
                if (++ready === vus)
                    allReady();
            } else if (m.t === 'done') {
                entry.finished = true;
                if (++done === vus)
                    allDone();
            }
        });
        pool.push(entry);
    }
    await readyP;
    const startedAt = performance.now();
    record('vus', vus, {});
    record('vus_max', vus, {});
    process.stderr.write(`k6-runner: ${vus} VUs for ${fmtDuration(durationMs)} (graceful stop ${fmtDuration(GRACEFUL_STOP_MS)}): ${args.script}\n`);
    Atomics.store(stopFlag, 1, 1);
    Atomics.notify(stopFlag, 1);
    //  k6's progress line, every 5 s
    const progress = setInterval(() => process.stderr.write(`running (${fmtDuration(performance.now() - startedAt)}), ` +
        `${vus - done}/${vus} VUs, ${metrics.get('iterations').samples.length} complete and 0 interrupted iterations\n`), 5000);
    await new Promise((r) => setTimeout(r, durationMs));
    Atomics.store(stopFlag, 0, 1);
    const grace = new Promise((r) => setTimeout(r, GRACEFUL_STOP_MS).unref());
    await Promise.race([doneP, grace]);
    for (const entry of pool) {
        if (!entry.finished)
            interrupted++;
        entry.port.close();
        await entry.worker.terminate();
    }
    clearInterval(progress);
    const durationS = (performance.now() - startedAt) / 1000;
    if (unimplemented)
        process.exit(EXIT_USAGE);

    //  Thresholds, then the summary
    const matches = (tags, want) => Object.entries(want).every(([k, v]) => tags[k] === v);
    const results = thresholds.map((th) => {
        const m = metrics.get(th.metric);
        const samples = m.samples.filter((s) => matches(s.tags, th.tags));
        if (samples.length === 0)
            return { ...th, evaluated: false, crossed: false, value: null, isTime: m.isTime, type: m.type };
        const value = aggValue(aggregate(m.type, samples, durationS), th);
        return { ...th, evaluated: true, crossed: !compare(value, th.op, th.limit), value, isTime: m.isTime, type: m.type };
    });
    const out = [];
    const fmtAggValue = (r) => (r.value === null ? 'no samples: not evaluated'
        : `${r.source.replace(/\s*(<=|>=|===|==|!=|<|>).*$/, '')}=${r.type === 'rate' ? `${(r.value * 100).toFixed(2)}%` : r.isTime ? fmtDuration(r.value) : fmtNumber(r.value)}`);
    if (results.length) {
        out.push('', '  █ THRESHOLDS', '');
        for (const key of [...new Set(results.map((r) => r.key))]) {
            out.push(`    ${key}`);
            for (const r of results.filter((x) => x.key === key))
                out.push(`    ${r.crossed ? '✗' : '✓'} '${r.source}' ${fmtAggValue(r)}`);
            out.push('');
        }
    }
    out.push('', '  █ TOTAL RESULTS', '');
    const checks = aggregate('rate', metrics.get('checks').samples, durationS);
    if (checks.count) {
        const line = (label, value) => `    ${label.padEnd(38, '.')}: ${value}`;
        out.push(line('checks_total', `${checks.count}  ${(checks.count / durationS).toFixed(6)}/s`));
        out.push(line('checks_succeeded', `${(checks.rate * 100).toFixed(2)}% ${checks.passes} out of ${checks.count}`));
        out.push(line('checks_failed', `${((1 - checks.rate) * 100).toFixed(2)}% ${checks.fails} out of ${checks.count}`), '');
        for (const [name, c] of checkCounts) {
            out.push(`    ${c.fails ? '✗' : '✓'} ${name}`);
            if (c.fails)
                out.push(`      ↳  ${Math.floor((100 * c.passes) / (c.passes + c.fails))}% — ✓ ${c.passes} / ✗ ${c.fails}`);
        }
        out.push('');
    }
    const describeMetric = (m, samples) => {
        const a = aggregate(m.type, samples, durationS);
        const v = (x) => (m.isTime ? fmtDuration(x) : fmtNumber(x));
        if (m.type === 'trend')
            return `avg=${v(a.avg)} min=${v(a.min)} med=${v(a.med)} max=${v(a.max)} p(90)=${v(a.p(90))} p(95)=${v(a.p(95))}`;
        if (m.type === 'rate')
            return `${(a.rate * 100).toFixed(2)}% ${a.passes} out of ${a.count}`;
        if (m.type === 'counter')
            return `${fmtNumber(a.count)}  ${a.rate.toFixed(6)}/s`;
        return `${fmtNumber(a.value)}  min=${fmtNumber(a.min)} max=${fmtNumber(a.max)}`;
    };
    const sections = [
        ['CUSTOM', (n) => !(n in BUILTIN)],
        ['HTTP', (n) => n.startsWith('http_')],
        ['EXECUTION', (n) => ['iteration_duration', 'iterations', 'vus', 'vus_max'].includes(n)],
    ];
    const exported = {};
    for (const [title, belongs] of sections) {
        const names = [...metrics.keys()].filter((n) => belongs(n) && metrics.get(n).samples.length).sort();
        if (!names.length)
            continue;
        out.push(`    ${title}`);
        for (const name of names) {
            const m = metrics.get(name);
            out.push(`    ${name.padEnd(38, '.')}: ${describeMetric(m, m.samples)}`);
            //  sub-metrics: k6's own for http_req_duration, and each threshold's filter
            const subs = results.filter((r) => r.metric === name && Object.keys(r.tags).length).map((r) => r.tags);
            if (name === 'http_req_duration')
                subs.unshift({ expected_response: 'true' });
            for (const tags of subs.filter((t, i) => subs.findIndex((u) => JSON.stringify(u) === JSON.stringify(t)) === i)) {
                const label = `{ ${Object.entries(tags).map(([k, v]) => `${k}:${v}`).join(', ')} }`;
                out.push(`      ${label.padEnd(36, '.')}: ${describeMetric(m, m.samples.filter((s) => matches(s.tags, tags)))}`);
            }
        }
        out.push('');
    }
    out.push('', `running (${fmtDuration(durationS * 1000)}), 0/${vus} VUs, ${metrics.get('iterations').samples.length} complete and ` +
        `${interrupted} interrupted iterations`, '');
    process.stdout.write(out.join('\n') + '\n');

    //  --summary-export: k6's (legacy) JSON, the metrics and the root group's checks
    if (args.summaryExport) {
        for (const [name, m] of metrics) {
            if (!m.samples.length)
                continue;
            const a = aggregate(m.type, m.samples, durationS);
            const e = m.type === 'trend' ? { avg: a.avg, min: a.min, med: a.med, max: a.max, 'p(90)': a.p(90), 'p(95)': a.p(95) }
                : m.type === 'rate' ? { passes: a.passes, fails: a.fails, value: a.rate }
                    : m.type === 'counter' ? { count: a.count, rate: a.rate } : { value: a.value, min: a.min, max: a.max };
            const own = results.filter((r) => r.key === name);
            if (own.length)
                e.thresholds = Object.fromEntries(own.map((r) => [r.source, r.crossed]));
            exported[name] = e;
        }
        for (const r of results.filter((x) => x.key !== x.metric)) {
            const m = metrics.get(r.metric);
            const a = aggregate(m.type, m.samples.filter((s) => matches(s.tags, r.tags)), durationS);
            exported[r.key] = exported[r.key] || (m.type === 'trend'
                ? { avg: a.avg, min: a.min, med: a.med, max: a.max, 'p(90)': a.p(90), 'p(95)': a.p(95) }
                : m.type === 'rate' ? { passes: a.passes, fails: a.fails, value: a.rate } : { count: a.count, rate: a.rate });
            exported[r.key].thresholds = { ...(exported[r.key].thresholds || {}), [r.source]: r.crossed };
        }
        const checksOut = {};
        for (const [name, c] of checkCounts)
            checksOut[name] = { name, path: `::${name}`, passes: c.passes, fails: c.fails };
        fs.writeFileSync(args.summaryExport, JSON.stringify({
            root_group: { name: '', path: '', groups: {}, checks: checksOut },
            metrics: exported,
            state: { testRunDurationMs: durationS * 1000, iterationErrors, interruptedIterations: interrupted },
        }, null, 2) + '\n');
    }
    const crossed = [...new Set(results.filter((r) => r.crossed).map((r) => r.key))];
    if (crossed.length) {
        log('error', `thresholds on metrics '${crossed.join(', ')}' have been crossed`);
        process.exit(EXIT_THRESHOLDS);
    }
    process.exit(0);
}

//  Run as a program (the main thread) or as a VU (a worker); imported (the
//  tests of its parsers), nothing runs
if (!isMainThread)
    vuMain();
else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
    await main();
