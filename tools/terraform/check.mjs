#!/usr/bin/env node
// tools/terraform/check.mjs: infrastructure/ checked offline, without a
// terraform binary or an AWS account.
//
//   node tools/terraform/check.mjs [REPO]        (REPO: the checkout, default this one)
//
// What it checks, and what it does not:
// - Every .tf and .tfvars file parses with HashiCorp's HCL parser (the Go
//   hcl library compiled to WebAssembly: npm @cdktf/hcl2json, pinned here).
// - Every resource type, data source, argument and nested block is in the
//   provider's schema (provider-schema.json: hashicorp/aws and
//   hashicorp/random at the versions versions.tf pins, extracted by
//   extract-schema.mjs); every required argument or block is there; a
//   literal is of a plausible type (no "abc" for a number).
// - versions.tf's constraints admit the schema's provider versions, and
//   required_version admits 1.9 and nothing older.
// - Every reference resolves: var.*, local.*, module.<m>.<output>,
//   data.<type>.<name>.<attribute>, <type>.<name>.<attribute> (an argument
//   or attribute of that type), each/count only where for_each/count is,
//   indexes only on resources with count/for_each; a dynamic block's
//   iterator inside it.
// - A module call passes only the module's variables and every one that
//   has no default; each tfvars file sets only declared variables, with
//   values of their type, and every variable without a default.
// - deploy/ecs (when in the tree): every placeholder of the templates is
//   filled, every field Terraform reads from them is there, every secret
//   has a source, and the engine defaults Terraform repeats match
//   engine/config.c.
// - IAM: the actions of the task roles equal the AWS calls in the engine
//   (engine/aws/s3.c, engine/aws/sqs.c, their callers), each on the
//   resource the engine calls it on; the execution role's equal what ECS
//   needs. One missing or one more fails, and so does IAM granted outside
//   modules/iam.
// - Lambda (when infrastructure/ has an aws_lambda_function): the function
//   runs `rapidphoto lambda` from the image (package_type Image,
//   image_config command ["lambda"], a command app/main.c has); every SQS
//   event source mapping invokes an alias (never $LATEST), takes the
//   ingest queue and has function_response_types ["ReportBatchItemFailures"]
//   (`rapidphoto lambda` answers batchItemFailures: without it Lambda
//   deletes a batch's failures with its successes). The function's role
//   (aws_iam_role.lambda) is granted exactly: the engine's S3 actions; its
//   calls on the events queue; on the ingest queue what the event source
//   mapping does (ReceiveMessage, DeleteMessage, ChangeMessageVisibility,
//   GetQueueAttributes) plus any call `rapidphoto lambda` makes itself
//   (a source file named *lambda*, or the SQS bridges if the command
//   starts them); logs:CreateLogStream/PutLogEvents; X-Ray's write actions
//   when tracing is Active; the VPC network interface actions when it has
//   a vpc_config; kms:Decrypt when its environment has a kms_key_arn.
// Not checked: anything `terraform plan` evaluates (functions, conditions,
// the values of expressions beyond literals), and anything AWS decides.
//
// Output: a summary of what was checked and counted, then each error as
// "file:line: where: what". Exit 0 when none, 1 otherwise, 2 on wrong usage.
import { readFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { join, dirname, relative, resolve, basename } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const hcl = await import(join(here, "node_modules/@cdktf/hcl2json/lib/index.js")).catch(() => {
    console.error("check.mjs: @cdktf/hcl2json is not installed: run tools/bootstrap.sh --test (or npm ci --omit=dev in tools/terraform)");
    process.exit(2);
});
const schema = JSON.parse(readFileSync(join(here, "provider-schema.json"), "utf8"));
const refCache = new Map();     // expression -> its references, across checks

// The check of one checkout: { errors: ["file:line: where: what"], lines:
// the summary }. The command line below prints them; the checker's own
// tests (tests/terraform) call it on spoiled copies.
export async function check(repoDir) {
    const repo = resolve(repoDir);
    const infra = join(repo, "infrastructure");
    const errors = [];
    const notes = [];
    const count = { files: 0, tfvars: 0, modules: 0, resources: 0, data: 0, calls: 0, arguments: 0, blocks: 0,
                    references: 0, variables: 0, outputs: 0, locals: 0, tfvarsKeys: 0, ecs: 0, lambda: 0 };
    const refKinds = {};

    // ---------------------------------------------------------------------------
    // Where: file and line, for messages

    const texts = new Map();
    const rel = (file) => relative(repo, file);
    function lineOf(file, ...patterns) {
        const lines = (texts.get(file) || "").split("\n");
        let at = 0;
        for (const p of patterns) {
            const i = lines.findIndex((l, n) => n >= at && p.test(l));
            if (i < 0) break;
            at = i;
        }
        return at + 1;
    }
    const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    function error(file, line, where, what) {
        errors.push(`${rel(file)}:${line}: ${where}: ${what}`);
    }

    // The closest known name, for "did you mean"
    function closest(name, names) {
        let best = null, bestd = Infinity;
        for (const n of names) {
            const d = distance(name, n);
            if (d < bestd) { bestd = d; best = n; }
        }
        return best !== null && bestd <= Math.max(2, Math.floor(name.length / 4)) ? ` (did you mean ${best}?)` : "";
    }
    function distance(a, b) {
        const m = Array.from({ length: a.length + 1 }, (_, i) => [i]);
        for (let j = 1; j <= b.length; j++) m[0][j] = j;
        for (let i = 1; i <= a.length; i++)
            for (let j = 1; j <= b.length; j++)
                m[i][j] = Math.min(m[i - 1][j] + 1, m[i][j - 1] + 1, m[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        return m[a.length][b.length];
    }

    // ---------------------------------------------------------------------------
    // Parse every module folder

    function tfFiles(dir, ext) {
        const out = [];
        for (const e of readdirSync(dir).sort()) {
            const p = join(dir, e);
            if (statSync(p).isDirectory()) {
                if (e !== ".terraform") out.push(...tfFiles(p, ext));
            } else if (e.endsWith(ext)) out.push(p);
        }
        return out;
    }

    async function parseFile(file) {
        const text = readFileSync(file, "utf8");
        texts.set(file, text);
        try {
            return await hcl.parse(basename(file), text);
        } catch (e) {
            error(file, 1, "HCL", `does not parse: ${String(e.message || e).split("\n")[0]}`);
            return null;
        }
    }

    if (!existsSync(infra)) return { errors: [`${infra}: does not exist`], lines: [] };

    const modules = new Map();      // dir -> module
    function moduleOf(dir) {
        if (!modules.has(dir)) {
            modules.set(dir, { dir, variables: {}, locals: {}, outputs: {}, resources: {}, data: {}, calls: {},
                               providers: {}, terraform: [] });
        }
        return modules.get(dir);
    }

    const TOP = new Set(["terraform", "provider", "variable", "locals", "output", "resource", "data", "module"]);
    for (const file of tfFiles(infra, ".tf")) {
        count.files++;
        const json = await parseFile(file);
        if (!json) continue;
        const mod = moduleOf(dirname(file));
        for (const [key, value] of Object.entries(json)) {
            if (!TOP.has(key)) {
                error(file, lineOf(file, new RegExp(`^${esc(key)}\\b`)), key, "a block this check does not know");
                continue;
            }
            if (key === "terraform") mod.terraform.push(...value.map((body) => ({ body, file })));
            else if (key === "locals") {
                for (const block of value)
                    for (const [name, expr] of Object.entries(block)) {
                        if (name in mod.locals) error(file, lineOf(file, new RegExp(`^\\s*${name}\\s*=`)), `local.${name}`, "defined twice");
                        mod.locals[name] = { expr, file };
                    }
            } else if (key === "resource" || key === "data") {
                for (const [type, named] of Object.entries(value))
                    for (const [name, bodies] of Object.entries(named))
                        (key === "resource" ? mod.resources : mod.data)[`${type}.${name}`] = { type, name, body: bodies[0], file, kind: key };
            } else if (key === "provider") {
                for (const [name, bodies] of Object.entries(value)) mod.providers[name] = { body: bodies[0], file };
            } else {
                const target = { variable: mod.variables, output: mod.outputs, module: mod.calls }[key];
                for (const [name, bodies] of Object.entries(value)) target[name] = { body: bodies[0], file };
            }
        }
    }

    // ---------------------------------------------------------------------------
    // Types of values: the schema's codes, and variable type constraints

    const isExpr = (v) => typeof v === "string" && v.includes("${");
    const BLOCK = /^!?@/;

    // A literal against a schema type code: an error string, or null
    function literalFits(code, v) {
        code = code.replace(/^!/, "");
        if (isExpr(v) || code === "a") return null;
        if (code === "s") return typeof v === "object" && v !== null ? "a string" : null;
        if (code === "n") return typeof v === "number" || (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)) ? null : "a number";
        if (code === "b") return typeof v === "boolean" || v === "true" || v === "false" ? null : "true or false";
        if (code.startsWith("[")) {
            if (!Array.isArray(v)) return "a list";
            for (const x of v) { const e = literalFits(code.slice(1, -1), x); if (e) return `a list of ${e}s`; }
            return null;
        }
        if (code.startsWith("{")) {
            if (typeof v !== "object" || v === null || Array.isArray(v)) return "a map";
            for (const x of Object.values(v)) { const e = literalFits(code.slice(1, -1), x); if (e) return `a map of ${e}s`; }
            return null;
        }
        return null;
    }

    // "string", "list(string)", "object({ a = number })", "map(any)"... as a tree
    function parseType(text) {
        let s = text.replace(/^\$\{|\}$/g, "").trim(), i = 0;
        const ws = () => { while (/\s|,/.test(s[i] || "")) i++; };
        const word = () => { ws(); const m = /^[a-z_][a-z0-9_]*/i.exec(s.slice(i)); if (!m) throw new Error(`bad type at "${s.slice(i)}"`); i += m[0].length; return m[0]; };
        const expect = (c) => { ws(); if (s[i] !== c) throw new Error(`expected ${c} in type ${s}`); i++; };
        function type() {
            const w = word();
            if (["string", "number", "bool", "any"].includes(w)) return { kind: w };
            if (["list", "set", "map"].includes(w)) { expect("("); const e = type(); expect(")"); return { kind: w, of: e }; }
            if (w === "optional") { expect("("); const e = type(); ws(); if (s[i] === ",") { i++; depthSkip(); } expect(")"); return { ...e, optional: true }; }
            if (w === "object") {
                expect("("); expect("{"); const attrs = {};
                for (ws(); s[i] !== "}"; ws()) { const k = word(); expect("="); attrs[k] = type(); }
                expect("}"); expect(")"); return { kind: "object", attrs };
            }
            if (w === "tuple") { expect("("); expect("["); const items = []; for (ws(); s[i] !== "]"; ws()) items.push(type()); expect("]"); expect(")"); return { kind: "tuple", items }; }
            throw new Error(`unknown type ${w}`);
        }
        function depthSkip() { let d = 0; while (i < s.length && !(d === 0 && s[i] === ")")) { if ("([{".includes(s[i])) d++; if (")]}".includes(s[i])) d--; i++; } }
        const t = type(); ws();
        if (i !== s.length) throw new Error(`trailing text in type ${s}`);
        return t;
    }

    // A value (tfvars, a default) against a type: an error string, or null
    function valueFits(t, v, path = "") {
        if (isExpr(v) || t.kind === "any" || v === null) return null;
        const at = path ? ` at ${path}` : "";
        switch (t.kind) {
            case "string": return typeof v === "object" ? `must be a string${at}` : null;
            case "number": return typeof v === "number" || (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)) ? null : `must be a number${at}, not ${JSON.stringify(v)}`;
            case "bool": return typeof v === "boolean" || v === "true" || v === "false" ? null : `must be true or false${at}, not ${JSON.stringify(v)}`;
            case "list": case "set": case "tuple":
                if (!Array.isArray(v)) return `must be a list${at}, not ${JSON.stringify(v)}`;
                for (let k = 0; k < v.length; k++) { const e = valueFits(t.kind === "tuple" ? t.items[k] || { kind: "any" } : t.of, v[k], `${path}[${k}]`); if (e) return e; }
                return null;
            case "map":
                if (typeof v !== "object" || Array.isArray(v)) return `must be a map${at}`;
                for (const [k, x] of Object.entries(v)) { const e = valueFits(t.of, x, `${path}.${k}`); if (e) return e; }
                return null;
            case "object":
                if (typeof v !== "object" || Array.isArray(v)) return `must be an object${at}`;
                for (const k of Object.keys(v)) if (!(k in t.attrs)) return `has no attribute ${k}${at} (it has ${Object.keys(t.attrs).join(", ")})`;
                for (const [k, at2] of Object.entries(t.attrs)) {
                    if (!(k in v)) { if (!at2.optional) return `lacks attribute ${k}${at}`; continue; }
                    const e = valueFits(at2, v[k], `${path}.${k}`); if (e) return e;
                }
                return null;
        }
        return null;
    }

    // ---------------------------------------------------------------------------
    // References

    const refsToCheck = [];     // { mod, file, line, where, expr, scope }
    function collectRefs(mod, file, line, where, value, scope) {
        if (typeof value === "string") { if (value.includes("${")) refsToCheck.push({ mod, file, line, where, expr: value, scope }); }
        else if (Array.isArray(value)) value.forEach((v) => collectRefs(mod, file, line, where, v, scope));
        else if (value && typeof value === "object") for (const v of Object.values(value)) collectRefs(mod, file, line, where, v, scope);
    }

    const segmentsOf = (ref) => ref.match(/"[^"]*"|[^.]+/g);
    const indexSeg = (s) => /^"|^\d+$/.test(s);

    function attributesOf(kind, type) {
        const s = schema[kind === "resource" ? "resource" : "data"][type];
        if (!s) return null;
        return new Set([...Object.keys(s).filter((k) => k !== "="), ...(s["="] ? s["="].split(" ") : []), "id"]);
    }

    function checkRef(r, ref) {
        const seg = segmentsOf(ref);
        const { mod, scope } = r;
        const fail = (what) => error(r.file, r.line, r.where, `${ref}: ${what}`);
        const head = seg[0];
        const kind = ["var", "local", "module", "data", "each", "count", "path"].includes(head) ? head
            : scope.iterators.has(head) ? "iterator" : "resource";
        refKinds[kind] = (refKinds[kind] || 0) + 1;
        count.references++;
        if (scope.iterators.has(head)) {
            if (!["key", "value"].includes(seg[1])) fail(`a dynamic block's iterator has key and value only`);
            return;
        }
        switch (head) {
            case "var":
                if (!(seg[1] in mod.variables)) fail(`no variable ${seg[1]} in ${rel(mod.dir) || "."}${closest(seg[1], Object.keys(mod.variables))}`);
                return;
            case "local":
                if (!(seg[1] in mod.locals)) fail(`no local ${seg[1]} in ${rel(mod.dir)}${closest(seg[1], Object.keys(mod.locals))}`);
                else ecsPath(r, seg);
                return;
            case "each":
                if (!scope.forEach) fail("each is only for a block with for_each");
                else if (!["key", "value"].includes(seg[1])) fail("each has key and value only");
                else if (seg[1] === "value" && scope.template) ecsPath(r, seg);
                return;
            case "count":
                if (!scope.count) fail("count.index is only for a block with count");
                else if (seg[1] !== "index") fail("count has index only");
                return;
            case "path":
                if (!["module", "root", "cwd"].includes(seg[1])) fail("path has module, root and cwd");
                return;
            case "terraform":
                if (seg[1] !== "workspace") fail("terraform.workspace only");
                return;
            case "self":
                if (!scope.self) fail("self only in provisioners, connections and conditions");
                return;
            case "module": {
                const call = mod.calls[seg[1]];
                if (!call) { fail(`no module ${seg[1]}${closest(seg[1], Object.keys(mod.calls))}`); return; }
                const target = modules.get(resolve(mod.dir, call.body.source));
                if (target && seg[2] && !indexSeg(seg[2]) && !(seg[2] in target.outputs))
                    fail(`module ${seg[1]} has no output ${seg[2]}${closest(seg[2], Object.keys(target.outputs))}`);
                return;
            }
            case "data": {
                const key = `${seg[1]}.${seg[2]}`;
                const d = mod.data[key];
                if (!d) { fail(`no data source ${key} here${closest(key, Object.keys(mod.data))}`); return; }
                instanceRef(r, ref, d, seg.slice(3), "data");
                return;
            }
            default: {
                if (!/_/.test(head)) { fail(`unknown name ${head}`); return; }
                const key = `${head}.${seg[1]}`;
                const res = mod.resources[key];
                if (!res) { fail(`no resource ${key} here${closest(key, Object.keys(mod.resources))}`); return; }
                instanceRef(r, ref, res, seg.slice(2), "resource");
            }
        }
    }

    // <type>.<name>[index].<attribute>: the index as count/for_each say, the attribute in the schema
    function instanceRef(r, ref, block, rest, kind) {
        if (!rest.length) return;                    // the whole resource (a splat, length(), for_each)
        const multi = "count" in block.body || "for_each" in block.body;
        let i = 0;
        if (indexSeg(rest[0])) {
            if (!multi) { error(r.file, r.line, r.where, `${ref}: ${block.type}.${block.name} has no count or for_each to index`); return; }
            i = 1;
        } else if (multi) {
            error(r.file, r.line, r.where, `${ref}: ${block.type}.${block.name} has ${"count" in block.body ? "count" : "for_each"}: name an instance`);
            return;
        }
        const attr = rest[i];
        if (!attr) return;
        const attrs = attributesOf(kind, block.type);
        if (attrs && !attrs.has(attr)) error(r.file, r.line, r.where, `${ref}: ${block.type} has no attribute ${attr}${closest(attr, attrs)}`);
    }

    // ---------------------------------------------------------------------------
    // Schema checks of one block body

    const META = new Set(["count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"]);

    function checkBody(mod, file, headerRe, where, body, sch, scope) {
        const present = new Set();
        for (const [key, value] of Object.entries(body)) {
            const line = lineOf(file, headerRe, new RegExp(`^\\s*(dynamic\\s+")?${esc(key)}"?\\s*[={]`));
            if (scope.top && META.has(key)) {
                if (key === "lifecycle") {
                    for (const l of value) {
                        for (const [k, v] of Object.entries(l)) {
                            if (!["create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by", "precondition", "postcondition"].includes(k))
                                error(file, line, `${where}.lifecycle`, `unknown lifecycle argument ${k}`);
                            else if (k === "ignore_changes") {
                                const names = (Array.isArray(v) ? v : String(v).replace(/^\$\{\[|\]\}$/g, "").split(","))
                                    .map((x) => String(x).replace(/^\$\{|\}$/g, "").trim()).filter(Boolean);
                                for (const n of names) if (!(n in sch) && n !== "all") error(file, line, `${where}.lifecycle`, `ignore_changes names ${n}, no argument of this type`);
                            } else if (k === "precondition" || k === "postcondition") {
                                for (const c of v) collectRefs(mod, file, line, `${where}.lifecycle.${k}`, c, { ...scope, self: k === "postcondition" });
                            } else collectRefs(mod, file, line, `${where}.lifecycle`, v, scope);
                        }
                    }
                } else if (key === "provider") {
                    // provider = aws.alias: not used here
                } else collectRefs(mod, file, line, `${where}.${key}`, value, scope);
                continue;
            }
            if (key === "dynamic") {
                for (const [name, dyns] of Object.entries(value)) {
                    const code = sch[name];
                    if (!code || !BLOCK.test(code)) { error(file, line, where, `dynamic "${name}": no nested block ${name}${closest(name, Object.keys(sch))}`); continue; }
                    present.add(name);
                    for (const d of dyns) {
                        const iterator = d.iterator || name;
                        collectRefs(mod, file, line, `${where}.dynamic.${name}.for_each`, d.for_each, scope);
                        if (!("for_each" in d)) error(file, line, `${where}.dynamic.${name}`, "for_each is required");
                        const inner = { ...scope, top: false, iterators: new Set([...scope.iterators, iterator]) };
                        for (const content of d.content || []) {
                            count.blocks++;
                            checkBody(mod, file, headerRe, `${where}.${name}`, content, schema.block[code.replace(/^!?@\*?/, "")], inner);
                        }
                    }
                }
                continue;
            }
            const code = sch[key];
            if (code === undefined) {
                const computed = sch["="] ? sch["="].split(" ") : [];
                if (computed.includes(key)) error(file, line, where, `${key} is read-only (an attribute, not an argument)`);
                else error(file, line, where, `unknown argument ${key}${closest(key, Object.keys(sch).filter((k) => k !== "="))}`);
                continue;
            }
            present.add(key);
            count.arguments++;
            if (BLOCK.test(code)) {
                if (!Array.isArray(value) || value.some((b) => typeof b !== "object" || b === null)) {
                    error(file, line, where, `${key} is a nested block: write ${key} { ... }`);
                    continue;
                }
                if (!code.includes("@*") && value.length > 1) error(file, line, where, `${key}: at most one block`);
                for (const b of value) {
                    count.blocks++;
                    checkBody(mod, file, headerRe, `${where}.${key}`, b, schema.block[code.replace(/^!?@\*?/, "")], { ...scope, top: false });
                }
                continue;
            }
            if (Array.isArray(value) && value.length && value.every((b) => b && typeof b === "object" && !Array.isArray(b)) && /^!?[snb{]/.test(code)) {
                error(file, line, where, `${key} is an argument: write ${key} = ...`);
                continue;
            }
            const wrong = literalFits(code, value);
            if (wrong) error(file, line, where, `${key} must be ${wrong}, not ${JSON.stringify(value)}`);
            collectRefs(mod, file, line, `${where}.${key}`, value, scope);
        }
        for (const [key, code] of Object.entries(sch)) {
            if (code.startsWith("!") && !present.has(key))
                error(file, lineOf(file, headerRe), where, `required ${BLOCK.test(code) ? "block" : "argument"} ${key} is missing`);
        }
    }

    // ---------------------------------------------------------------------------
    // Each module

    let rootVersions = null;
    const ECS = { dir: join(repo, "deploy/ecs"), td: null, svc: null };
    loadEcs();

    for (const mod of modules.values()) {
        count.modules++;
        const modName = rel(mod.dir);
        const baseScope = { top: true, iterators: new Set(), forEach: false, count: false };

        for (const { body, file } of mod.terraform) {
            for (const [k, v] of Object.entries(body)) {
                if (k === "required_version") checkRequiredVersion(file, v);
                else if (k === "required_providers") checkRequiredProviders(file, v[0]);
                else if (k !== "backend") error(file, lineOf(file, new RegExp(`^\\s*${k}\\b`)), "terraform", `unknown setting ${k}`);
            }
            if (mod.dir === infra) rootVersions = body;
        }

        for (const [name, { body, file }] of Object.entries(mod.providers)) {
            const sch = schema.provider[name];
            const re = new RegExp(`^provider\\s+"${esc(name)}"`);
            if (!sch) { error(file, lineOf(file, re), `provider ${name}`, "not a provider in provider-schema.json"); continue; }
            const { alias, ...rest } = body;
            checkBody(mod, file, re, `provider.${name}`, rest, sch, { ...baseScope, top: false });
        }

        for (const [name, { body, file }] of Object.entries(mod.variables)) {
            count.variables++;
            const re = new RegExp(`^variable\\s+"${esc(name)}"`);
            for (const k of Object.keys(body))
                if (!["type", "default", "description", "validation", "sensitive", "nullable", "ephemeral"].includes(k))
                    error(file, lineOf(file, re), `var.${name}`, `unknown argument ${k}`);
            if (!body.description) error(file, lineOf(file, re), `var.${name}`, "no description");
            let t = { kind: "any" };
            if (!body.type) error(file, lineOf(file, re), `var.${name}`, "no type");
            else {
                try { t = parseType(body.type); } catch (e) { error(file, lineOf(file, re), `var.${name}`, `type: ${e.message}`); }
            }
            mod.variables[name].typeTree = t;
            if ("default" in body) {
                const wrong = valueFits(t, body.default);
                if (wrong) error(file, lineOf(file, re, /default/), `var.${name}`, `default ${wrong}`);
            }
            for (const v of body.validation || [])
                collectRefs(mod, file, lineOf(file, re, /condition/), `var.${name}.validation`, v, baseScope);
        }

        for (const [name, { expr, file }] of Object.entries(mod.locals)) {
            count.locals++;
            collectRefs(mod, file, lineOf(file, new RegExp(`^\\s*${esc(name)}\\s*=`)), `local.${name}`, expr, baseScope);
        }

        for (const [name, { body, file }] of Object.entries(mod.outputs)) {
            count.outputs++;
            const re = new RegExp(`^output\\s+"${esc(name)}"`);
            if (!("value" in body)) error(file, lineOf(file, re), `output.${name}`, "no value");
            if (!body.description) error(file, lineOf(file, re), `output.${name}`, "no description");
            collectRefs(mod, file, lineOf(file, re), `output.${name}`, body, baseScope);
        }

        for (const block of [...Object.values(mod.resources), ...Object.values(mod.data)]) {
            const { type, name, body, file, kind } = block;
            kind === "resource" ? count.resources++ : count.data++;
            const re = new RegExp(`^${kind}\\s+"${esc(type)}"\\s+"${esc(name)}"`);
            const where = `${kind === "data" ? "data." : ""}${type}.${name}`;
            const provider = type.split("_")[0];
            if (!rootProviders().includes(provider))
                error(file, lineOf(file, re), where, `provider ${provider} is not in required_providers`);
            const sch = schema[kind][type];
            if (!sch) {
                const version = schema.providers[provider] ? schema.providers[provider].version : "";
                error(file, lineOf(file, re), where, `no ${kind === "data" ? "data source" : "resource type"} ${type} ` +
                      `in ${provider} ${version}${closest(type, Object.keys(schema[kind]))}`);
                continue;
            }
            if ("count" in body && "for_each" in body) error(file, lineOf(file, re), where, "count and for_each together");
            const template = templateOf(mod, body);
            checkBody(mod, file, re, where, body, sch, { ...baseScope, forEach: "for_each" in body, count: "count" in body, template });
        }

        for (const [name, { body, file }] of Object.entries(mod.calls)) {
            count.calls++;
            const re = new RegExp(`^module\\s+"${esc(name)}"`);
            if (!body.source || !/^\.\.?\//.test(body.source)) { error(file, lineOf(file, re), `module.${name}`, "source must be a local ./modules/... folder"); continue; }
            const target = modules.get(resolve(mod.dir, body.source)) || (existsSync(resolve(mod.dir, body.source)) ? null : undefined);
            if (target === undefined) { error(file, lineOf(file, re), `module.${name}`, `source ${body.source} does not exist`); continue; }
            const targetMod = target || moduleOf(resolve(mod.dir, body.source));
            for (const [k, v] of Object.entries(body)) {
                if (["source", "version", "providers", "count", "for_each", "depends_on"].includes(k)) {
                    if (k !== "source") collectRefs(mod, file, lineOf(file, re), `module.${name}.${k}`, v, baseScope);
                    continue;
                }
                count.arguments++;
                const line = lineOf(file, re, new RegExp(`^\\s*${esc(k)}\\s*=`));
                if (!(k in targetMod.variables)) error(file, line, `module.${name}`, `${body.source} has no variable ${k}${closest(k, Object.keys(targetMod.variables))}`);
                collectRefs(mod, file, line, `module.${name}.${k}`, v, baseScope);
            }
            for (const [v, decl] of Object.entries(targetMod.variables))
                if (!("default" in decl.body) && !(v in body))
                    error(file, lineOf(file, re), `module.${name}`, `variable ${v} of ${body.source} has no default and is not passed`);
        }
    }

    function rootProviders() {
        const body = rootVersions && rootVersions.required_providers ? rootVersions.required_providers[0] : {};
        return Object.keys(body);
    }

    // ---------------------------------------------------------------------------
    // Versions: a constraint against a version, as Terraform reads it

    function admits(constraint, version) {
        const v = version.split(".").map(Number);
        const cmp = (a, b) => { for (let i = 0; i < 3; i++) { if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) - (b[i] || 0); } return 0; };
        return constraint.split(",").every((part) => {
            const m = /^\s*(~>|>=|<=|!=|>|<|=)?\s*(\d+(?:\.\d+){0,2})\s*$/.exec(part);
            if (!m) throw new Error(`cannot read constraint "${part.trim()}"`);
            const op = m[1] || "=", w = m[2].split(".").map(Number);
            const c = cmp(v, w);
            switch (op) {
                case "=": return c === 0;
                case "!=": return c !== 0;
                case ">": return c > 0;
                case ">=": return c >= 0;
                case "<": return c < 0;
                case "<=": return c <= 0;
                case "~>": {
                    if (c < 0) return false;
                    const upper = w.slice(0, Math.max(1, w.length - 1));
                    return upper.every((x, i) => v[i] === x);
                }
            }
            return false;
        });
    }

    function checkRequiredVersion(file, v) {
        const line = lineOf(file, /required_version/);
        try {
            if (!admits(v, "1.9.0") || admits(v, "1.8.99")) error(file, line, "terraform.required_version", `"${v}" must admit 1.9 and nothing older (>= 1.9: cross-variable validation)`);
        } catch (e) { error(file, line, "terraform.required_version", e.message); }
    }

    function checkRequiredProviders(file, providers) {
        for (const [name, p] of Object.entries(providers)) {
            const line = lineOf(file, new RegExp(`^\\s*${name}\\s*=`));
            const s = schema.providers[name];
            if (!s) { error(file, line, `required_providers.${name}`, "no schema for this provider in provider-schema.json"); continue; }
            if (p.source !== s.source) error(file, line, `required_providers.${name}`, `source ${p.source}, the schema is ${s.source}'s`);
            try {
                if (!p.version || !admits(p.version, s.version))
                    error(file, line, `required_providers.${name}`, `version "${p.version}" does not admit ${s.version}, the version whose schema is checked (tools/terraform/extract-schema.mjs)`);
            } catch (e) { error(file, line, `required_providers.${name}`, e.message); }
        }
    }

    // ---------------------------------------------------------------------------
    // deploy/ecs: the templates Terraform reads

    function loadEcs() {
        if (!existsSync(ECS.dir)) return;
        const sample = { ENV: "dev", AWS_REGION: "us-east-1", AWS_ACCOUNT_ID: "123456789012", IMAGE_TAG: "v0.0.0" };
        const read = (group) => {
            const out = {};
            for (const f of readdirSync(join(ECS.dir, group)).filter((f) => f.endsWith(".json")).sort()) {
                const file = join(ECS.dir, group, f);
                const text = readFileSync(file, "utf8");
                texts.set(file, text);
                const names = [...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]);
                try {
                    out[f.replace(/\.json$/, "")] = { file, names: new Set(names), json: JSON.parse(text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, n) => sample[n] || `terraform:${n}`)) };
                } catch (e) { error(file, 1, "deploy/ecs", `not JSON once filled: ${e.message}`); }
            }
            return out;
        };
        ECS.td = read("task-definitions");
        ECS.svc = read("services");
    }

    // Which template each.value stands for in a resource: for_each over
    // var.task_definitions or local.services
    function templateOf(mod, body) {
        if (!ECS.td || typeof body.for_each !== "string") return null;
        if (body.for_each === "${var.task_definitions}") return "td";
        if (body.for_each === "${local.services}") return "svc";
        return null;
    }

    // A path into the templates: each.value.<...>, local.task_definitions.<role>.<...>,
    // local.containers.<role>.<...>, local.environment.<role>."KEY"
    function ecsPath(r, seg) {
        if (!ECS.td) return;
        let docs, rest;
        if (seg[0] === "each") {
            docs = Object.entries(r.scope.template === "td" ? ECS.td : ECS.svc).map(([k, d]) => [k, d.json]);
            rest = seg.slice(2);
        } else if (["task_definitions", "containers", "environment"].includes(seg[1]) && r.mod.dir === infra && seg[2] && !indexSeg(seg[2])) {
            const t = ECS.td[seg[2]];
            if (!t) { error(r.file, r.line, r.where, `${seg.join(".")}: no deploy/ecs/task-definitions/${seg[2]}.json`); return; }
            const c = t.json.containerDefinitions[0];
            const doc = seg[1] === "task_definitions" ? t.json : seg[1] === "containers" ? c
                : Object.fromEntries(c.environment.map((e) => [`"${e.name}"`, e.value]));
            docs = [[seg[2], doc]];
            rest = seg.slice(3).map((s) => (seg[1] === "environment" ? s : s.replace(/^"|"$/g, "")));
        } else return;
        if (!rest.length) return;
        count.ecs++;
        const guarded = /\btry\(/.test(r.expr);
        for (const [name, doc] of docs) {
            let v = doc;
            for (const s of rest) {
                const key = /^\d+$/.test(s) ? Number(s) : seg[1] === "environment" ? s : s.replace(/^"|"$/g, "");
                if (v === null || typeof v !== "object" || !(key in v)) {
                    const group = r.scope && r.scope.template === "svc" ? "services" : "task-definitions";
                    if (!guarded) error(r.file, r.line, r.where, `${seg.join(".")}: deploy/ecs/${group}/${name}.json has no ${rest.join(".")}`);
                    v = undefined;
                    break;
                }
                v = v[key];
            }
        }
    }

    function checkEcs() {
        const root = modules.get(infra);
        const compute = modules.get(join(infra, "modules/compute"));
        if (!ECS.td) {
            notes.push("deploy/ecs: not in this tree: the templates Terraform reads (their placeholders, the fields and secrets it takes) were not checked");
            return;
        }
        const vars = root && root.locals.ecs_vars && typeof root.locals.ecs_vars.expr === "object" ? Object.keys(root.locals.ecs_vars.expr) : [];
        for (const [role, t] of Object.entries(ECS.td)) {
            count.ecs++;
            for (const n of t.names)
                if (!vars.includes(n))
                    error(t.file, lineOf(t.file, new RegExp(`\\$\\{${n}\\}`)), `task definition ${role}`,
                          `placeholder \${${n}} is not in local.ecs_vars (infrastructure/main.tf)`);
            for (const s of t.json.containerDefinitions[0].secrets || []) {
                const gen = compute && compute.locals.generated_secrets ? Object.keys(compute.locals.generated_secrets.expr) : [];
                const op = compute && compute.locals.operator_secrets ? compute.locals.operator_secrets.expr : [];
                if (!gen.includes(s.name) && !op.includes(s.name))
                    error(t.file, lineOf(t.file, new RegExp(`"${s.name}"`)), `task definition ${role}`,
                          `secret ${s.name}: neither generated_secrets nor operator_secrets in modules/compute say where its value comes from`);
                if (!/^arn:aws:ssm:[^:]+:\d+:parameter\//.test(s.valueFrom))
                    error(t.file, lineOf(t.file, new RegExp(`"${s.name}"`)), `task definition ${role}`, `secret ${s.name} is not an SSM parameter ARN: Terraform makes SSM parameters`);
            }
        }
        const servicesExpr = compute && compute.locals.services ? String(compute.locals.services.expr) : "";
        const filled = new Set([...vars, ...[...servicesExpr.matchAll(/\b([A-Z][A-Z0-9_]*)\s*=/g)].map((m) => m[1])]);
        for (const [role, t] of Object.entries(ECS.svc)) {
            count.ecs++;
            for (const n of t.names)
                if (!filled.has(n))
                    error(t.file, lineOf(t.file, new RegExp(`\\$\\{${n}\\}`)), `service ${role}`,
                          `placeholder \${${n}} is filled neither by local.ecs_vars nor in modules/compute`);
            if (!ECS.td[role]) error(t.file, 1, `service ${role}`, `no task-definitions/${role}.json beside it`);
        }
    }

    // Defaults Terraform repeats from engine/config.c:
    // lookup(local.environment.<role>, "RAPIDPHOTO_<SECTION>_<KEY>", "<default>")
    function checkEngineDefaults() {
        const configC = join(repo, "engine/config.c");
        if (!existsSync(configC)) { error(configC, 1, "engine", "engine/config.c not found"); return; }
        const defaults = {};
        for (const m of readFileSync(configC, "utf8").matchAll(/^\s*(?:STR|INT|ENUM|BOOL)\s*\("(\w+)",\s*"(\w+)",.*"([^"]*)"\),\s*$/gm))
            defaults[`${m[1]}_${m[2]}`.toUpperCase()] = m[3];
        for (const mod of modules.values())
            for (const [name, { expr, file }] of Object.entries(mod.locals))
                for (const m of JSON.stringify(expr).matchAll(/lookup\(local\.environment\.\w+, \\"RAPIDPHOTO_(\w+)\\", \\"([^\\]*)\\"\)/g)) {
                    count.ecs++;
                    const key = m[1];
                    if (!(key in defaults)) error(file, lineOf(file, new RegExp(`^\\s*${name}\\s*=`)), `local.${name}`, `RAPIDPHOTO_${key} is no setting of engine/config.c`);
                    else if (defaults[key] !== m[2])
                        error(file, lineOf(file, new RegExp(`^\\s*${name}\\s*=`)), `local.${name}`,
                              `RAPIDPHOTO_${key}'s default is "${defaults[key]}" in engine/config.c, not "${m[2]}"`);
                }
    }

    // ---------------------------------------------------------------------------
    // tfvars

    async function checkTfvars() {
        const root = modules.get(infra);
        const dir = join(infra, "environments");
        const files = existsSync(dir) ? tfFiles(dir, ".tfvars") : [];
        if (!files.length) error(dir, 1, "environments", "no .tfvars files");
        for (const file of files) {
            count.tfvars++;
            const json = await parseFile(file);
            if (!json) continue;
            for (const [k, v] of Object.entries(json)) {
                count.tfvarsKeys++;
                const line = lineOf(file, new RegExp(`^\\s*${esc(k)}\\s*=`));
                const decl = root.variables[k];
                if (!decl) { error(file, line, k, `not a variable of infrastructure/${closest(k, Object.keys(root.variables))}`); continue; }
                if (isExpr(v)) { error(file, line, k, "tfvars take values, not expressions"); continue; }
                const wrong = valueFits(decl.typeTree || { kind: "any" }, v);
                if (wrong) error(file, line, k, wrong);
            }
            for (const [k, decl] of Object.entries(root.variables))
                if (!("default" in decl.body) && !(k in json)) error(file, 1, k, "no default, and not set here: plan would ask for it");
        }
    }

    // ---------------------------------------------------------------------------
    // IAM against the engine's AWS calls

    // The S3 and SQS API operations the engine's clients name, as IAM grants them
    const S3_IAM = {
        PutObject: ["s3:PutObject"], CreateMultipartUpload: ["s3:PutObject"], UploadPart: ["s3:PutObject"],
        CompleteMultipartUpload: ["s3:PutObject"], AbortMultipartUpload: ["s3:AbortMultipartUpload"],
        GetObject: ["s3:GetObject"],
        // A HEAD of a missing key answers 404 only with s3:ListBucket (403 otherwise)
        HeadObject: ["s3:GetObject", "s3:ListBucket"],
        DeleteObject: ["s3:DeleteObject"],
        // An upload streamed under streams/ is copied to its address: read the source, write the copy
        CopyObject: ["s3:GetObject", "s3:PutObject"],
        // The expiry sweep lists what presigned uploads left under uploads/
        ListObjectsV2: ["s3:ListBucket"],
    };
    const S3_METHODS = { PUT: "PutObject", GET: "GetObject", HEAD: "HeadObject", DELETE: "DeleteObject" };
    const SQS_IAM = {
        ReceiveMessage: "sqs:ReceiveMessage", DeleteMessage: "sqs:DeleteMessage", DeleteMessageBatch: "sqs:DeleteMessage",
        ChangeMessageVisibility: "sqs:ChangeMessageVisibility", ChangeMessageVisibilityBatch: "sqs:ChangeMessageVisibility",
        SendMessage: "sqs:SendMessage", SendMessageBatch: "sqs:SendMessage", GetQueueAttributes: "sqs:GetQueueAttributes",
        GetQueueUrl: "sqs:GetQueueUrl",
    };
    // What ECS needs to start a task: pull from a private repository, awslogs, SSM secrets
    const EXECUTION = ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                       "ecr:GetDownloadUrlForLayer", "logs:CreateLogStream", "logs:PutLogEvents", "ssm:GetParameters"];
    // The resource each action of a task role must be granted on (the iam module's variables)
    const RESOURCE_OF = (action) =>
        action === "s3:ListBucket" ? "${var.bucket_arn}"
        : action.startsWith("s3:") ? "${var.bucket_arn}/${var.s3_prefix}*"
        : null;

    function sourceFiles(dirs) {
        const out = [];
        for (const d of dirs) {
            const p = join(repo, d);
            if (existsSync(p)) out.push(...tfFiles(p, ".c"));
        }
        return out;
    }
    const where = (file, index) => `${rel(file)}:${readFileSync(file, "utf8").slice(0, index).split("\n").length}`;

    function engineCalls() {
        const calls = { s3: new Map(), sqs: { ingest: new Map(), events: new Map() }, sqsAt: [] };   // operation -> first place; every {queue, op, file}
        const add = (map, op, place) => { if (!map.has(op)) map.set(op, place); };
        const s3c = join(repo, "engine/aws/s3.c"), sqsc = join(repo, "engine/aws/sqs.c");
        for (const f of [s3c, sqsc]) if (!existsSync(f)) { error(f, 1, "engine", "not found: the IAM check reads it"); return null; }
        const s3text = readFileSync(s3c, "utf8");
        for (const m of s3text.matchAll(/s_perform\s*\(\s*self\s*,\s*"(\w+)"/g)) {
            const op = S3_METHODS[m[1]] || (m[1] === "LIST" ? "ListObjectsV2" : m[1]);
            if (!S3_IAM[op]) error(s3c, where(s3c, m.index).split(":")[1], "engine S3 call", `${m[1]}: check.mjs does not know its IAM action (add it to S3_IAM)`);
            else add(calls.s3, op, where(s3c, m.index));
        }
        // Presigned URLs act with the signer's rights
        for (const f of sourceFiles(["library", "gateway", "actors", "app"]))
            for (const m of readFileSync(f, "utf8").matchAll(/rp_s3_(?:mirror_)?presign\s*\([^,]+,\s*"(\w+)"/g)) {
                const op = S3_METHODS[m[1]];
                if (!op) error(f, where(f, m.index).split(":")[1], "engine S3 presign", `${m[1]}: not a method check.mjs maps`);
                else add(calls.s3, op, where(f, m.index));
            }
        // rp_sqs_<function> -> the actions it sends
        const sqsText = readFileSync(sqsc, "utf8");
        const fnActions = {};
        const defs = [...sqsText.matchAll(/^(rp_sqs_\w+)\s*\(/gm)];
        defs.forEach((d, i) => {
            const body = sqsText.slice(d.index, i + 1 < defs.length ? defs[i + 1].index : undefined);
            fnActions[d[1]] = [...body.matchAll(/s_call\s*\(\s*self\s*,\s*"(\w+)"/g)].map((m) => m[1]);
        });
        for (const f of sourceFiles(["library", "gateway", "actors", "app"]))
            for (const m of readFileSync(f, "utf8").matchAll(/\b(rp_sqs_\w+)\s*\(\s*[^,()]+,\s*([^,()]+),/g)) {
                const actions = fnActions[m[1]];
                if (!actions || !actions.length) continue;     // not an SQS request (new, destroy, ...)
                const queue = /ingest_queue_url/.test(m[2]) ? "ingest" : /events_queue_url/.test(m[2]) ? "events" : null;
                if (!queue) { error(f, where(f, m.index).split(":")[1], "engine SQS call", `${m[1]} on ${m[2].trim()}: neither the ingest nor the events queue`); continue; }
                for (const a of actions) {
                    if (!SQS_IAM[a]) error(sqsc, 1, "engine SQS call", `${a}: check.mjs does not know its IAM action (add it to SQS_IAM)`);
                    else { add(calls.sqs[queue], a, `${where(f, m.index)} (${m[1]})`); calls.sqsAt.push({ queue, op: a, file: rel(f), place: `${where(f, m.index)} (${m[1]})` }); }
                }
            }
        return calls;
    }

    // Does `rapidphoto <command>` start the SQS bridges? Its function (app/main.c's
    // table) or a static helper it calls, three deep, calls rp_bridges_start.
    function commandRunsBridges(command) {
        const main = join(repo, "app/main.c");
        const m = new RegExp(`\\{\\s*"${esc(command)}"\\s*,\\s*(\\w+)\\s*\\}`).exec(readFileSync(main, "utf8"));
        if (!m) return null;
        const files = sourceFiles(["app"]).map((f) => readFileSync(f, "utf8")).join("\n");
        const bodyOf = (fn) => {
            const d = new RegExp(`^${esc(fn)}\\s*\\([^;]*?\\)\\s*\\{`, "m").exec(files);
            if (!d) return "";
            const end = files.indexOf("\n}", d.index);
            return files.slice(d.index, end);
        };
        const seen = new Set();
        const runs = (fn, depth) => {
            if (seen.has(fn) || depth > 3) return false;
            seen.add(fn);
            const body = bodyOf(fn);
            if (/\brp_bridges_start\s*\(/.test(body)) return true;
            return [...body.matchAll(/\b(s_\w+)\s*\(/g)].some((c) => runs(c[1], depth + 1));
        };
        return runs(m[1], 0);
    }

    function checkIam() {
        const iam = modules.get(join(infra, "modules/iam"));
        if (!iam) { error(join(infra, "modules/iam"), 1, "iam", "no iam module"); return null; }
        const calls = engineCalls();
        if (!calls) return null;

        // Rights are granted in the iam module only, where they are compared
        const IAM_GRANTS = /^aws_iam_(role_policy|role_policy_attachment|policy_attachment|policy|role|user_policy|group_policy)$/;
        for (const mod of modules.values()) {
            if (mod === iam) continue;
            for (const r of Object.values(mod.resources))
                if (IAM_GRANTS.test(r.type))
                    error(r.file, lineOf(r.file, new RegExp(`"${r.type}"\\s+"${r.name}"`)), `${r.type}.${r.name}`, "IAM outside modules/iam, where the check compares roles with the engine's calls");
        }

        // The policy documents and which role each is attached to: the
        // execution role is aws_iam_role.execution, the task roles
        // aws_iam_role.task["<role>"], each granted by aws_iam_role_policy
        // resources naming one of them and one aws_iam_policy_document
        const docs = {};
        for (const d of Object.values(iam.data).filter((d) => d.type === "aws_iam_policy_document")) {
            docs[d.name] = (d.body.statement || []).map((s) => ({
                actions: s.actions || [], resources: [].concat(s.resources || []), effect: s.effect || "Allow",
                other: Object.keys(s).filter((k) => ["not_actions", "not_resources"].includes(k)), sid: s.sid || "",
                file: d.file, line: lineOf(d.file, new RegExp(`^data\\s+"aws_iam_policy_document"\\s+"${d.name}"`), new RegExp(`sid\\s*=\\s*"${esc(s.sid || "")}"`)),
            }));
        }
        const granted = {};        // role -> [{action, resources, file, line}]
        for (const r of Object.values(iam.resources)) {
            if (r.type === "aws_iam_role_policy_attachment" || r.type === "aws_iam_policy_attachment" || ("managed_policy_arns" in r.body))
                error(r.file, lineOf(r.file, new RegExp(`"${r.name}"`)), `${r.type}.${r.name}`, "a managed policy: the roles' rights must be the inline ones the check compares");
            if (r.type !== "aws_iam_role_policy") continue;
            const role = /aws_iam_role\.task\["(\w+)"\]/.exec(r.body.role) ? /aws_iam_role\.task\["(\w+)"\]/.exec(r.body.role)[1]
                : /aws_iam_role\.execution\b/.test(r.body.role) ? "execution"
                : /aws_iam_role\.lambda\b/.test(r.body.role) ? "lambda" : null;
            const doc = /data\.aws_iam_policy_document\.(\w+)\.json/.exec(r.body.policy);
            const line = lineOf(r.file, new RegExp(`"aws_iam_role_policy"\\s+"${r.name}"`));
            if (!role || !doc || !docs[doc[1]]) { error(r.file, line, `aws_iam_role_policy.${r.name}`, "role or policy this check cannot follow"); continue; }
            granted[role] = granted[role] || [];
            for (const s of docs[doc[1]]) {
                if (s.effect !== "Allow" || s.other.length) error(s.file, s.line, `policy ${doc[1]}`, "task and execution roles are granted with Allow, actions and resources only");
                for (const a of s.actions) granted[role].push({ action: a, resources: s.resources, file: s.file, line: s.line, doc: doc[1] });
            }
        }

        // What each role needs
        const s3 = new Map();       // IAM action -> why
        for (const [op, place] of calls.s3) for (const a of S3_IAM[op]) if (!s3.has(a)) s3.set(a, `S3 ${op} at ${place}`);
        const sqs = new Map();      // IAM action -> {queue, why}
        for (const queue of ["ingest", "events"])
            for (const [op, place] of calls.sqs[queue]) {
                const a = SQS_IAM[op];
                const k = `${a}@${queue}`;
                if (!sqs.has(k)) sqs.set(k, { action: a, queue, why: `SQS ${op} on the ${queue} queue at ${place}` });
            }

        const roles = { api: "gateway", pipeline: "pipeline" };
        if (ECS.td) for (const [role, t] of Object.entries(ECS.td)) roles[role] = (t.json.containerDefinitions[0].command || [])[0];
        const needed = {};
        for (const [role, command] of Object.entries(roles)) {
            let bridges = commandRunsBridges(command);
            if (bridges === null) {
                if (ECS.td) error(join(repo, "app/main.c"), 1, `role ${role}`, `rapidphoto has no command ${command} (deploy/ecs/task-definitions/${role}.json)`);
                else notes.push(`IAM: rapidphoto has no "${command}" command in this tree: the ${role} role is taken to run the SQS bridges (deploy/ecs settles it once in the tree)`);
                bridges = role === "pipeline";
            }
            needed[role] = new Map();
            for (const [a, why] of s3) needed[role].set(a, { resource: RESOURCE_OF(a), why });
            if (bridges) for (const { action, queue, why } of sqs.values()) {
                const k = action;
                const prev = needed[role].get(k);
                const resource = `\${var.${queue}_queue_arn}`;
                needed[role].set(k, prev ? { resource: [].concat(prev.resource, resource), why: `${prev.why}; ${why}` } : { resource, why });
            }
        }
        // A task with the X-Ray daemon beside the engine (deploy/ecs's
        // xray-daemon container): the daemon sends with the task role,
        // and X-Ray's actions take no resource but "*"
        if (ECS.td) for (const [role, t] of Object.entries(ECS.td)) {
            const daemon = (t.json.containerDefinitions || []).slice(1).some((c) => c.name === "xray-daemon");
            if (daemon && needed[role])
                for (const a of ["xray:PutTraceSegments", "xray:PutTelemetryRecords"])
                    needed[role].set(a, { resource: "*", why: `the xray-daemon container of deploy/ecs/task-definitions/${role}.json` });
        }
        needed.execution = new Map(EXECUTION.map((a) => [a, { resource: a === "ecr:GetAuthorizationToken" ? "*" : null, why: "ECS starting a task" }]));
        if (ECS.td && !Object.values(ECS.td).some((t) => (t.json.containerDefinitions[0].secrets || []).length)) needed.execution.delete("ssm:GetParameters");
        const lambdaNeed = lambdaNeeds(calls, s3);
        if (lambdaNeed) needed.lambda = lambdaNeed;
        else if (granted.lambda) error(join(iam.dir, "main.tf"), lineOf(join(iam.dir, "main.tf"), /"aws_iam_role"\s+"lambda"/), "role lambda", "granted rights, but infrastructure/ has no Lambda function");

        const summary = {};
        for (const [role, need] of Object.entries(needed)) {
            const have = granted[role] || [];
            const iamFile = join(iam.dir, "main.tf");
            for (const [a, { why }] of need)
                if (!have.some((g) => g.action === a))
                    error(iamFile, 1, `role ${role}`, `not granted ${a}, which the engine needs: ${why}`);
            for (const g of have) {
                if (!need.has(g.action)) {
                    error(g.file, g.line, `role ${role} (policy ${g.doc})`, `granted ${g.action}, which the engine never needs in this role`);
                    continue;
                }
                const want = need.get(g.action).resource;
                if (want === null) {
                    if (g.resources.includes("*")) error(g.file, g.line, `role ${role}`, `${g.action} on "*": name the resource`);
                    continue;
                }
                const wantSet = [].concat(want).sort().join(" "), haveSet = [...g.resources].sort().join(" ");
                if (wantSet !== haveSet) error(g.file, g.line, `role ${role} (policy ${g.doc})`, `${g.action} on ${haveSet || "nothing"}: the engine calls it on ${wantSet} only`);
            }
            summary[role] = [...new Set(have.map((g) => g.action))].sort();
        }
        return { calls, summary };
    }

    // ---------------------------------------------------------------------------
    // Lambda: the image-processor function, its event source mappings, and
    // what its role needs

    // What the event source mapping of an SQS queue does with the
    // function's role (Lambda's SQS poller)
    const ESM_SQS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"];
    // AWSLambdaVPCAccessExecutionRole's actions: the function's network interfaces
    const LAMBDA_VPC = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"];
    const LAMBDA = { functions: [], mappings: [] };

    function allOf(type) {
        const out = [];
        for (const mod of modules.values())
            for (const r of Object.values(mod.resources)) if (r.type === type) out.push({ ...r, mod });
        return out;
    }
    const first = (v) => (Array.isArray(v) ? v[0] : v) || {};
    const literalList = (v) => (Array.isArray(v) ? v : typeof v === "string" && !isExpr(v) ? [v] : null);

    function checkLambda() {
        LAMBDA.functions = allOf("aws_lambda_function");
        LAMBDA.mappings = allOf("aws_lambda_event_source_mapping");
        if (!LAMBDA.functions.length && !LAMBDA.mappings.length) return;
        const main = join(repo, "app/main.c");
        const hasCommand = existsSync(main) && /\{\s*"lambda"\s*,\s*\w+\s*\}/.test(readFileSync(main, "utf8"));
        if (!hasCommand) notes.push("Lambda: rapidphoto has no \"lambda\" command in this tree: the function's role is checked against the engine's S3 and events-queue calls and the event source mapping's needs");
        for (const f of LAMBDA.functions) {
            const line = lineOf(f.file, new RegExp(`"aws_lambda_function"\\s+"${f.name}"`));
            const where = `aws_lambda_function.${f.name}`;
            count.lambda++;
            if (f.body.package_type !== "Image") error(f.file, line, where, `package_type ${JSON.stringify(f.body.package_type)}: the function is the image (package_type = "Image"; the zip is the runbook's update-function-code --zip-file)`);
            const command = literalList(first(f.body.image_config).command);
            if (!command || command.length !== 1 || command[0] !== "lambda")
                error(f.file, line, where, `image_config.command ${JSON.stringify(command)}: must be ["lambda"] (the image's entrypoint is rapidphoto, its default command serve)`);
            if (f.body.publish !== true && f.body.publish !== "true") error(f.file, line, where, "publish = true: the alias needs a published version");
        }
        for (const m of LAMBDA.mappings) {
            const line = lineOf(m.file, new RegExp(`"aws_lambda_event_source_mapping"\\s+"${m.name}"`));
            const where = `aws_lambda_event_source_mapping.${m.name}`;
            count.lambda++;
            const types = literalList(m.body.function_response_types) || [];
            if (!types.includes("ReportBatchItemFailures"))
                error(m.file, line, where, "function_response_types lacks ReportBatchItemFailures: `rapidphoto lambda` answers batchItemFailures, which Lambda ignores without it, deleting a batch's failed records with the rest");
            if (!/^\$\{aws_lambda_alias\.\w+\.arn\}$/.test(String(m.body.function_name)))
                error(m.file, line, where, `function_name ${m.body.function_name}: invoke an alias (aws_lambda_alias.<name>.arn), which releases and rollbacks move, never the function's $LATEST`);
            if (!/ingest_queue_arn/.test(String(m.body.event_source_arn)))
                error(m.file, line, where, `event_source_arn ${m.body.event_source_arn}: the ingest queue (S3 notifications) is the only one the engine takes records from`);
        }
        for (const a of allOf("aws_lambda_alias")) {
            count.lambda++;
            if (!/aws_lambda_function\.\w+\.version/.test(String(a.body.function_version)))
                error(a.file, lineOf(a.file, new RegExp(`"aws_lambda_alias"\\s+"${a.name}"`)), `aws_lambda_alias.${a.name}`, `function_version ${a.body.function_version}: a published version (aws_lambda_function.<name>.version), not $LATEST`);
        }
        LAMBDA.hasCommand = hasCommand;
    }

    // The function's role: null when there is no function
    function lambdaNeeds(calls, s3) {
        if (!LAMBDA.functions.length) return null;
        const need = new Map();
        const set = (a, resource, why) => {
            const prev = need.get(a);
            need.set(a, prev ? { resource: [...new Set([].concat(prev.resource, resource))], why: `${prev.why}; ${why}` } : { resource, why });
        };
        for (const [a, why] of s3) set(a, RESOURCE_OF(a), why);
        for (const [op, place] of calls.sqs.events) set(SQS_IAM[op], "${var.events_queue_arn}", `SQS ${op} on the events queue at ${place}`);
        // The engine's own ingest-queue calls, where `rapidphoto lambda` makes them
        const bridges = LAMBDA.hasCommand && commandRunsBridges("lambda");
        for (const c of calls.sqsAt)
            if (c.queue === "ingest" && (bridges || /lambda/i.test(c.file)))
                set(SQS_IAM[c.op], "${var.ingest_queue_arn}", `SQS ${c.op} on the ingest queue at ${c.place}`);
        if (LAMBDA.mappings.length)
            for (const a of ESM_SQS) set(a, "${var.ingest_queue_arn}", "the ingest queue's event source mapping (Lambda's SQS poller acts with the function's role)");
        for (const a of ["logs:CreateLogStream", "logs:PutLogEvents"]) set(a, null, "Lambda writing the function's log");
        for (const f of LAMBDA.functions) {
            const fwhere = `aws_lambda_function.${f.name}`;
            if (first(f.body.tracing_config).mode === "Active")
                for (const a of ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]) set(a, "*", `${fwhere}: tracing_config mode Active`);
            if (f.body.vpc_config) for (const a of LAMBDA_VPC) set(a, "*", `${fwhere}: vpc_config (the function's network interfaces)`);
            if (f.body.kms_key_arn) set("kms:Decrypt", null, `${fwhere}: its environment encrypted with kms_key_arn`);
        }
        return need;
    }

    // ---------------------------------------------------------------------------
    // Run the checks that need every module read

    await checkTfvars();
    checkEcs();
    checkEngineDefaults();
    checkLambda();
    const iamResult = checkIam();
    // The parser's references of an expression; a plain traversal ("${var.x}",
    // "${aws_iam_role.task[\"api\"].arn}") is read here, the rest (calls, for
    // expressions, templates) by the parser, which knows their scopes
    async function referencesOf(file, expr) {
        const plain = /^\$\{([a-z_][\w-]*(?:\.[\w-]+|\["[^"]*"\]|\[\d+\])*)\}$/i.exec(expr);
        if (plain) return [plain[1].replace(/\["([^"]*)"\]/g, '."$1"').replace(/\[(\d+)\]/g, ".$1")];
        if (!refCache.has(expr)) refCache.set(expr, (await hcl.getReferencesInExpression(basename(file), expr)).map((x) => x.value));
        return refCache.get(expr);
    }
    for (const r of refsToCheck) {
        let refs;
        try { refs = await referencesOf(r.file, r.expr); }
        catch (e) { error(r.file, r.line, r.where, `expression does not parse: ${e.message}`); continue; }
        for (const ref of refs) checkRef(r, ref);
    }

    // ---------------------------------------------------------------------------
    // Report

    const p = schema.providers;
    const lines = [];
    lines.push(`terraform check: ${rel(infra)}/: ${count.files} .tf files in ${count.modules} modules, ${count.tfvars} .tfvars files; ` +
               `schema ${Object.values(p).map((x) => `${x.source} ${x.version}`).join(", ")}`);
    lines.push(`  resources ${count.resources}, data sources ${count.data}, module calls ${count.calls}, variables ${count.variables}, locals ${count.locals}, outputs ${count.outputs}`);
    lines.push(`  arguments ${count.arguments} and nested blocks ${count.blocks} checked against the schema (names, required ones, literal types)`);
    lines.push(`  references ${count.references} resolved (${Object.entries(refKinds).sort().map(([k, n]) => `${k} ${n}`).join(", ")})`);
    lines.push(`  tfvars: ${count.tfvarsKeys} settings declared and typed`);
    lines.push(`  Lambda: ${LAMBDA.functions.length} functions, ${LAMBDA.mappings.length} event source mappings, ${count.lambda} function, alias and mapping settings checked`);
    lines.push(`  deploy/ecs: ${ECS.td ? `${Object.keys(ECS.td).length} task definitions, ${Object.keys(ECS.svc).length} services, ${count.ecs} placeholders, fields, secrets and defaults checked` : "absent"}`);
    if (iamResult) {
        const { calls, summary } = iamResult;
        const sqsOps = ["ingest", "events"].map((q) => `${q}: ${[...calls.sqs[q].keys()].join(" ")}`).join("; ");
        const total = Object.values(summary).reduce((n, a) => n + a.length, 0);
        lines.push(`  IAM: the engine calls S3 ${[...calls.s3.keys()].join(" ")}; SQS ${sqsOps}`);
        lines.push(`  IAM: ${total} actions granted, each needed: ${Object.entries(summary).map(([r, a]) => `${r} ${a.length} (${a.join(" ")})`).join("; ")}`);
    }
    for (const n of notes) lines.push(`  note: ${n}`);
    return { errors, lines };
}

// ---------------------------------------------------------------------------
// The command line

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    if (process.argv.length > 3 || /^-/.test(process.argv[2] || "")) {
        console.error("usage: node tools/terraform/check.mjs [REPO]");
        process.exit(2);
    }
    const { errors, lines } = await check(process.argv[2] || join(here, "../.."));
    for (const l of lines) console.log(l);
    for (const e of errors) console.log(`ERROR ${e}`);
    console.log(errors.length ? `terraform check: ${errors.length} error${errors.length > 1 ? "s" : ""}` : "terraform check: no errors");
    process.exit(errors.length ? 1 : 0);
}
