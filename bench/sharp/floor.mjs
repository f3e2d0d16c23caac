// bench/sharp/floor.mjs: the CPU of the engine's work itself for one
// photo on libvips 8.18.7, with nothing around it, beside what sharp's
// way spends, per source photo. It answers "how far can the engine get
// ahead of sharp when both stand on the same libvips": no further than
// sharp's cost over this floor.
//
// Measured in this one Node process, one photo at a time, one libvips
// thread (sharp.concurrency(1), as both tools run on 2 cores), the CPU of
// each step by process.cpuUsage, the median of ROUNDS rounds that take
// every step in turn, after a warm-up:
//   entropy    decoding at 1/8 scale (shrink-on-load 8): the Huffman
//              decode every tool pays whatever it makes, no preview
//   decode     the decode the 1440 preview needs: shrink-on-load, upright,
//              reduced to fit 1440x1440 (Lanczos 3), into memory
//   preview    that image as JPEG q82 (no optimised coding, the engine's)
//   thumbnail  that image to fit 256x256, as WebP q80 (effort 4)
//   sha256     the file's SHA-256 (OpenSSL, as the engine)
//   floor      decode + preview + thumbnail + sha256: the work itself, with
//              nothing around it (no EXIF, no file writes, no placeholder,
//              no perceptual hash, no process, no queue)
//   sharp      bench/sharp/process.mjs's work for one photo (SHA-256,
//              metadata and EXIF, its preview with optimised coding, the
//              thumbnail from the preview), files written to a temporary
//              folder
// and what a tool would have to spend per photo to be 1.3x sharp's
// photos/s (sharp / 1.3), beside the floor.
//
// Usage: node floor.mjs [--rounds N] [--json FILE] PHOTO...
// Exit: 0, 1 on a photo sharp cannot read, 2 usage.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import exifReader from 'exif-reader';

const args = process.argv.slice(2);
let rounds = 8;
let jsonOut = null;
const photos = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else if (args[i] === '--json') jsonOut = args[++i];
  else photos.push(args[i]);
}
if (!photos.length || !(rounds >= 1)) {
  console.error('usage: node floor.mjs [--rounds N] [--json FILE] PHOTO...');
  process.exit(2);
}
sharp.concurrency(1);
sharp.cache(false);
const work = mkdtempSync(join(tmpdir(), 'rp-floor-'));

//  CPU ms per call of each step: one warm-up call each, then `rounds`
//  rounds of one call of every step in turn (so a slower minute of the
//  machine weighs on every step alike), the median of each
async function cpuMs (steps) {
  for (const fn of Object.values(steps)) await fn();
  const each = Object.fromEntries(Object.keys(steps).map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, fn] of Object.entries(steps)) {
      const c0 = process.cpuUsage();
      await fn();
      const c = process.cpuUsage(c0);
      each[name].push((c.user + c.system) / 1000);
    }
  }
  const median = (v) => {
    v.sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  return Object.fromEntries(Object.entries(each).map(([k, v]) => [k, median(v)]));
}

const rows = [];
for (const file of photos) {
  const bytes = readFileSync(file);
  let meta;
  try {
    meta = await sharp(bytes).metadata();
  } catch (err) {
    console.error(`floor.mjs: ${file}: ${err.message || err}`);
    process.exit(1);
  }
  const upright = (meta.orientation || 1) >= 5;
  const width = upright ? meta.height : meta.width;
  const height = upright ? meta.width : meta.height;
  const stem = basename(file, extname(file));
  const box = { fit: 'inside', withoutEnlargement: true };
  const decoded = await sharp(bytes).rotate().resize(1440, 1440, box).raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: decoded.info.width, height: decoded.info.height, channels: decoded.info.channels } };
  const ms = await cpuMs({
    //  1/16 of each side: shrink-on-load 8 whatever sharp's margin, then a tiny reduce
    entropy: () => sharp(bytes).resize(Math.max(1, Math.floor(meta.width / 16)),
      Math.max(1, Math.floor(meta.height / 16)), { fit: 'fill' }).raw().toBuffer(),
    decode: () => sharp(bytes).rotate().resize(1440, 1440, box).raw().toBuffer(),
    preview: () => sharp(decoded.data, raw).jpeg({ quality: 82, optimiseCoding: false }).toBuffer(),
    thumbnail: () => sharp(decoded.data, raw).resize(256, 256, box).webp({ quality: 80 }).toBuffer(),
    sha256: async () => createHash('sha256').update(bytes).digest('hex'),
    sharp: async () => {
      //  bench/sharp/process.mjs's one(), the file read included
      const b = readFileSync(file);
      const sha256 = createHash('sha256').update(b).digest('hex');
      const m = await sharp(b).metadata();
      let exif = null;
      try { exif = m.exif ? exifReader(m.exif) : null; } catch { exif = null; }
      const preview = await sharp(b).rotate().resize(1440, 1440, box).jpeg({ quality: 82 }).toBuffer();
      writeFileSync(join(work, `${stem}.preview.jpg`), preview);
      await sharp(preview).resize(256, 256, box).webp({ quality: 80 }).toFile(join(work, `${stem}.thumbnail.webp`));
      writeFileSync(join(work, `${stem}.json`), JSON.stringify({ sha256, exif: exif ? Object.keys(exif) : null }));
    }
  });
  ms.floor = ms.decode + ms.preview + ms.thumbnail + ms.sha256;
  rows.push({ photo: stem, width, height, mp: (width * height) / 1e6, ms });
}
rmSync(work, { recursive: true, force: true });

const f1 = (v) => v.toFixed(1);
console.log(`libvips ${sharp.versions.vips} through sharp ${sharp.versions.sharp}, one thread, ` +
  `CPU ms per photo (median of ${rounds}):`);
const head = ['photo', 'size', 'entropy', 'decode', 'preview', 'thumbnail', 'sha256', 'floor', 'sharp',
  'sharp/1.3', 'floor/(sharp/1.3)'];
console.log(`${head[0].padEnd(42)}${head[1].padStart(10)}` + head.slice(2).map((h, i) =>
  h.padStart(i === 8 ? 18 : 10)).join(''));
for (const r of rows) {
  const need = r.ms.sharp / 1.3;
  console.log(`${r.photo.padEnd(42)}${`${r.width}x${r.height}`.padStart(10)}` +
    [r.ms.entropy, r.ms.decode, r.ms.preview, r.ms.thumbnail, r.ms.sha256, r.ms.floor, r.ms.sharp, need]
      .map((v) => f1(v).padStart(10)).join('') + `${(r.ms.floor / need).toFixed(2)}x`.padStart(18));
}
console.log('floor = decode + preview + thumbnail + sha256; sharp/1.3 = what 1.3x sharp\'s photos/s allows; ' +
  'above 1.00x the bar is out of reach on this libvips whatever is built around it');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ vips: sharp.versions.vips, sharp: sharp.versions.sharp, rounds, rows }, null, 2) + '\n');
