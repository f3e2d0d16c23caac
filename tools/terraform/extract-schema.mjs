#!/usr/bin/env node
// tools/terraform/extract-schema.mjs: the Terraform providers' schemas, out
// of the prebuilt cdktf provider packages, into provider-schema.json.
//
// No terraform binary can be fetched here, so `terraform providers schema
// -json` cannot be run. The cdktf packages (@cdktf/provider-aws wraps
// hashicorp/aws, @cdktf/provider-random hashicorp/random; the provider
// version each wraps is in its package.json, "cdktf.provider") are generated
// from that very schema and ship it in their .jsii metadata: each resource or
// data source is a class documented "Represents a {@link
// .../docs/resources/<name> aws_<name>}", its constructor takes a Config
// struct, one property per argument (optional or not), each documented
// with a link ending "#<argument>"; a nested block is a struct of its own,
// typed alone (at most one block) or as a list.
//
// This reads those packages (the devDependencies in package.json, 400 MB:
// `npm ci` here, without --omit=dev) and writes provider-schema.json, which
// is committed; the check (check.mjs) needs only that file. Run it again
// when the provider pin in infrastructure/versions.tf moves (the .jsii is
// 130 MB of JSON: give node the memory to read it):
//
//   cd tools/terraform && npm ci && node --max-old-space-size=6000 extract-schema.mjs
//
// The file: {"providers": {name: {source, version, package}},
//   "provider": {name: schema}, "resource": {type: schema},
//   "data": {type: schema}, "block": {id: schema}}; a schema maps each
// argument to a type code: s string, n number, b bool, a any, [x] list or
// set of x, {x} map of x, @id one nested block, @*id a list of them; a
// leading ! marks a required argument. A resource's or data source's "="
// lists, space-separated, the attributes that are only read (arn, ...).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const packages = [
    { name: "aws", package: "@cdktf/provider-aws" },
    { name: "random", package: "@cdktf/provider-random" },
];

const out = { providers: {}, provider: {}, resource: {}, data: {}, block: {} };
const bySchema = new Map();
const unnamed = [];

for (const p of packages) {
    const dir = join(here, "node_modules", p.package);
    const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const provider = meta.cdktf && meta.cdktf.provider;
    if (!provider) throw new Error(`${p.package}: no cdktf.provider in its package.json`);
    out.providers[p.name] = {
        source: provider.name.replace(/^[^/]+\//, ""),      // hashicorp/aws: the host dropped
        version: provider.version,
        package: `${p.package}@${meta.version}`,
    };
    const jsii = JSON.parse(readFileSync(join(dir, ".jsii"), "utf8"));
    const types = jsii.types;

    // The argument's Terraform name: the anchor of its documentation link,
    // or "<name> block." for nested blocks, or (a few arguments documented
    // in words) the camelCase name taken back to snake_case.
    const argName = (prop) => {
        const text = `${prop.docs.summary || ""} ${prop.docs.remarks || ""}`;
        let m = text.match(/\{@link https:\/\/[^/\s]+\/providers\/\S+#([a-z0-9_]+) /);
        if (m) return m[1];
        m = text.match(/^([a-z0-9_]+) block\./);
        if (m) return m[1];
        const snake = prop.name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
        if (/[0-9]/.test(snake)) unnamed.push(`${p.name}: ${prop.name} -> ${snake}`);
        return snake;
    };

    // A nested block's id: its struct's name; blocks of the same arguments
    // (every "timeouts" of create/update/delete...) share the first one's
    const structIds = new Map();
    const structCode = (fqn) => {
        if (structIds.has(fqn)) return structIds.get(fqn);
        const schema = schemaOf(fqn);
        const key = JSON.stringify(schema);
        let id = bySchema.get(key);
        if (!id) {
            id = `${p.name}.${fqn.replace(/^.*\./, "")}`;
            if (id in out.block) throw new Error(`two nested blocks named ${id}`);
            out.block[id] = schema;
            bySchema.set(key, id);
        }
        structIds.set(fqn, id);
        return id;
    };

    const code = (type) => {
        if (type.primitive) {
            return { string: "s", number: "n", boolean: "b", any: "a", json: "a", date: "s" }[type.primitive];
        }
        if (type.union) {
            const real = type.union.types.filter((t) => t.fqn !== "cdktf.IResolvable");
            if (real.length === 1) return code(real[0]);
            return "a";
        }
        if (type.collection) {
            const inner = type.collection.elementtype;
            if (type.collection.kind === "array" && inner.fqn && types[inner.fqn] && types[inner.fqn].datatype) {
                return `@*${structCode(inner.fqn)}`;
            }
            const c = code(inner);
            return type.collection.kind === "map" ? `{${c}}` : `[${c}]`;
        }
        if (type.fqn) {
            const t = types[type.fqn];
            if (t && t.datatype) return `@${structCode(type.fqn)}`;
            return "a";
        }
        throw new Error(`unknown jsii type ${JSON.stringify(type)}`);
    };

    // A struct's properties, with those of the provider's own structs it extends
    function schemaOf(fqn) {
        const t = types[fqn];
        const schema = {};
        for (const parent of t.interfaces || []) {
            if (types[parent]) Object.assign(schema, schemaOf(parent));
        }
        for (const prop of t.properties || []) {
            schema[argName(prop)] = (prop.optional ? "" : "!") + code(prop.type);
        }
        return Object.fromEntries(Object.entries(schema).sort(([a], [b]) => a.localeCompare(b)));
    }

    for (const [fqn, t] of Object.entries(types)) {
        if (t.kind !== "class" || !t.initializer) continue;
        const summary = (t.docs && t.docs.summary) || "";
        const config = (t.initializer.parameters || []).find((x) => x.name === "config");
        if (!config) continue;
        let m = summary.match(/^Represents a \{@link \S+\/docs\/(resources|data-sources)\/\S+ (\S+)\}/);
        if (m) {
            const kind = m[1] === "resources" ? "resource" : "data";
            const schema = schemaOf(config.type.fqn);
            // What may be read besides the arguments: the class's getters
            // (not the fooInput ones), as one space-separated "=" entry
            const computed = (t.properties || [])
                .filter((x) => !x.static && !/Input$/.test(x.name) && x.name !== "fqn" && x.name !== "node")
                .map((x) => x.name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase())
                .filter((x) => !(x in schema));
            if (computed.length) schema["="] = [...new Set(computed)].sort().join(" ");
            out[kind][m[2]] = schema;
            continue;
        }
        m = summary.match(/^Represents a \{@link \S+\/docs (\S+)\}/);
        if (m && m[1] === p.name) out.provider[p.name] = schemaOf(config.type.fqn);
    }
    if (!out.provider[p.name]) throw new Error(`${p.package}: no provider configuration class found`);
}

// One entry a line: a reviewable diff when the provider moves
const sortKeys = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
let text = "{\n";
const sections = Object.keys(out);
sections.forEach((section, i) => {
    const entries = Object.entries(sortKeys(out[section]));
    text += `${JSON.stringify(section)}: {\n`;
    text += entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(",\n");
    text += `\n}${i < sections.length - 1 ? "," : ""}\n`;
});
text += "}\n";
JSON.parse(text);   // what we wrote reads back
writeFileSync(join(here, "provider-schema.json"), text);
const count = (s) => Object.keys(out[s]).length;
console.log(`provider-schema.json: ${Object.entries(out.providers).map(([n, v]) => `${v.source} ${v.version}`).join(", ")}; ` +
            `${count("resource")} resources, ${count("data")} data sources, ${count("block")} nested blocks, ${text.length} bytes`);
if (unnamed.length) console.log(`named from their camelCase (digits: check by hand): ${unnamed.join("; ")}`);
