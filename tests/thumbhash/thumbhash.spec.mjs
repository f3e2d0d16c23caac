// tests/thumbhash/thumbhash.spec.mjs: the engine's ThumbHash encoder
// (engine/thumbhash.c) against the reference (npm thumbhash, Evan Wallace's
// rgbaToThumbHash), byte for byte, on the same RGBA bytes.
//
//   corpus     every photo of ../shared/testdata the engine decodes (camera/,
//              large/, orientation/, formats/, synthetic/; read its README):
//              thumbhash_rgba (tests/thumbhash/rgba.c) makes the pixels the
//              resize job makes its placeholder from, once, and hashes them
//              with the C encoder; the reference hashes the same file of
//              bytes; the hashes must be equal
//   synthetic  pixels made here that photos rarely have: transparency (the
//              alpha path), 1-pixel sides, 100 x 100, flat colours, noise
//
// Run by ctest: RP_THUMBHASH_RGBA names the tool, RP_TESTDATA the corpus
// (absent: the corpus case says it skipped).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const here = import.meta.dirname;
if (!fs.existsSync(path.join(here, 'node_modules', 'thumbhash'))) {
  throw new Error('tests/thumbhash/node_modules is missing: run tools/bootstrap.sh --test');
}
const { rgbaToThumbHash, thumbHashToRGBA } = await import('thumbhash');

const tool = process.env.RP_THUMBHASH_RGBA;
if (!tool || !fs.existsSync(tool)) throw new Error('RP_THUMBHASH_RGBA must name the thumbhash_rgba tool (run through ctest)');
const sourceDir = process.env.RP_SOURCE_DIR || path.resolve(here, '../..');
const testdata = process.env.RP_TESTDATA || path.resolve(sourceDir, '..', 'shared', 'testdata');
const corpus = fs.existsSync(path.join(testdata, 'images', 'camera')) ? path.join(testdata, 'images') : null;
//  The folders of photos a person would upload; malformed/ and adversarial/
//  are refusals, tested elsewhere (here they would compare nothing)
const FOLDERS = ['camera', 'large', 'orientation', 'formats', 'synthetic'];

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
let work;

before(() => { work = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-thumbhash-')); });
after(() => { if (work) fs.rmSync(work, { recursive: true, force: true }); });

describe('the C encoder against the reference, on the corpus', { skip: corpus ? false : `skipped: the corpus (${testdata}) is absent` }, () => {
  test('every decodable photo: the same hash from the same RGBA bytes', () => {
    const files = FOLDERS.flatMap((folder) => {
      const dir = path.join(corpus, folder);
      return fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((f) => path.join(dir, f)) : [];
    });
    const out = execFileSync(tool, [work, ...files], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, files.length, 'one line a file');
    let compared = 0;
    const refused = [];
    const byFolder = {};
    for (const line of lines) {
      if (line.error) {
        refused.push(`${path.relative(corpus, line.file)}: ${line.error}`);
        continue;
      }
      const rgba = fs.readFileSync(line.rgba);
      assert.equal(rgba.length, line.width * line.height * 4, `${line.file}: RGBA size`);
      assert.ok(line.width <= 100 && line.height <= 100 && Math.max(line.width, line.height) >= 1, `${line.file}: ${line.width}x${line.height} fits 100x100`);
      const reference = b64(rgbaToThumbHash(line.width, line.height, rgba));
      assert.equal(line.thumbhash, reference, `${path.relative(corpus, line.file)} (${line.width}x${line.height}): C ${line.thumbhash}, reference ${reference}`);
      compared++;
      const folder = path.relative(corpus, line.file).split(path.sep)[0];
      byFolder[folder] = (byFolder[folder] || 0) + 1;
    }
    console.log(`# ${compared} corpus photos compared byte for byte, all equal (${JSON.stringify(byFolder)}); ` +
      `${refused.length} files the engine refuses (not images it takes): ${refused.map((r) => r.split(':')[0]).join(', ')}`);
    //  Every camera photo is one the engine takes
    const cameraCount = fs.readdirSync(path.join(corpus, 'camera')).length;
    assert.equal(byFolder.camera, cameraCount, `every camera/ photo compared: ${refused.join('; ')}`);
    assert.ok(compared >= 30, `only ${compared} photos compared`);
  });
});

//  A deterministic generator, so a failure is the same on every run
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the C encoder against the reference, on pixels made here', () => {
  test('alpha, extreme sizes, flat and noisy pixels: the same hash', () => {
    const random = rng(14);
    const cases = [];
    const add = (name, w, h, pixel) => {
      const rgba = new Uint8Array(w * h * 4);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgba.set(pixel(x, y), (y * w + x) * 4);
      cases.push({ name, w, h, rgba });
    };
    const byte = () => Math.floor(random() * 256);
    add('1x1 opaque', 1, 1, () => [200, 30, 90, 255]);
    add('1x1 transparent', 1, 1, () => [0, 0, 0, 0]);
    add('100x100 noise', 100, 100, () => [byte(), byte(), byte(), 255]);
    add('100x1 gradient', 100, 1, (x) => [x * 2, 255 - x * 2, 128, 255]);
    add('1x100 gradient', 1, 100, (x, y) => [y, y * 2, 255 - y, 255]);
    add('flat grey 64x48', 64, 48, () => [128, 128, 128, 255]);
    add('fully transparent 40x30', 40, 30, () => [10, 20, 30, 0]);
    add('alpha ramp 100x75', 100, 75, (x, y) => [x * 2, y * 3, 90, Math.round((x / 99) * 255)]);
    add('alpha circle 80x80', 80, 80, (x, y) => [250, 200, 10, (x - 40) ** 2 + (y - 40) ** 2 < 900 ? 255 : 0]);
    for (let i = 0; i < 60; i++) {
      const w = 1 + Math.floor(random() * 100);
      const h = 1 + Math.floor(random() * 100);
      const alpha = i % 3 === 0;
      const base = [byte(), byte(), byte()];
      add(`random ${i} ${w}x${h}${alpha ? ' alpha' : ''}`, w, h, (x, y) => [
        (base[0] + x * 3 + byte() % 16) & 255, (base[1] + y * 5) & 255, (base[2] ^ byte() % 8) & 255,
        alpha ? byte() : 255]);
    }
    const args = ['--raw'];
    cases.forEach((c, i) => {
      const file = path.join(work, `raw-${i}.rgba`);
      fs.writeFileSync(file, c.rgba);
      args.push(String(c.w), String(c.h), file);
    });
    const hashes = execFileSync(tool, args, { encoding: 'utf8' }).trim().split('\n');
    assert.equal(hashes.length, cases.length);
    cases.forEach((c, i) => {
      const reference = rgbaToThumbHash(c.w, c.h, c.rgba);
      assert.equal(hashes[i], b64(reference), `${c.name}: C ${hashes[i]}, reference ${b64(reference)}`);
      thumbHashToRGBA(Buffer.from(hashes[i], 'base64'));     // and it decodes
    });
    console.log(`# ${cases.length} made-up pictures compared byte for byte, all equal (${cases.filter((c) => c.rgba.some((v, k) => k % 4 === 3 && v < 255)).length} with transparency)`);
  });

  test('the encoder refuses what the reference refuses: a side over 100', () => {
    const file = path.join(work, 'big.rgba');
    fs.writeFileSync(file, new Uint8Array(101 * 10 * 4));
    assert.throws(() => rgbaToThumbHash(101, 10, new Uint8Array(101 * 10 * 4)));
    assert.equal(execFileSync(tool, ['--raw', '101', '10', file], { encoding: 'utf8' }).trim(), 'refused');
  });
});
