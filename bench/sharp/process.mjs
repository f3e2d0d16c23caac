// bench/sharp/process.mjs: the sharp peer of bench/compare.sh, doing the
// engine's work per photo with sharp (libvips under Node), as a Node
// service would (Immich makes its thumbnails this way):
//   SHA-256 of the file's bytes (node:crypto), EXIF read (sharp's metadata
//   gives the EXIF block, exif-reader parses it), a JPEG q82 preview
//   fitting 1440x1440 (decoded once with shrink-on-load, upright by EXIF
//   orientation, metadata stripped) and a WebP q80 thumbnail fitting
//   256x256 made from the preview; OUT/<stem>.preview.jpg,
//   OUT/<stem>.thumbnail.webp and OUT/<stem>.json (sha256, size, EXIF).
// Like the engine's defaults on 2 cores: one libvips thread per image
// (sharp.concurrency(1)) and JOBS photos at a time, so all cores work.
// Unlike the engine it does not fsync what it writes.
//
// Usage: node process.mjs --out DIR [--jobs N] FILE...
// Exit: 0 all done, 1 a photo failed (the reason on stderr), 2 usage.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import exifReader from 'exif-reader';

const args = process.argv.slice(2);
let out = null;
let jobs = availableParallelism();
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out') out = args[++i];
  else if (args[i] === '--jobs') jobs = Number(args[++i]);
  else files.push(args[i]);
}
if (!out || !files.length || !(jobs >= 1)) {
  console.error('usage: node process.mjs --out DIR [--jobs N] FILE...');
  process.exit(2);
}
sharp.concurrency(1);
sharp.cache(false);

function exifSummary (block) {
  if (!block) return null;
  try {
    const e = exifReader(block);
    const p = e.Photo || {}, i = e.Image || {};
    return { make: i.Make ?? null, model: i.Model ?? null, orientation: i.Orientation ?? null,
             exposure_time: p.ExposureTime ?? null, f_number: p.FNumber ?? null,
             iso: p.ISOSpeedRatings ?? null, focal_length: p.FocalLength ?? null,
             taken_at: p.DateTimeOriginal ?? null };
  } catch (err) {
    return { error: String(err.message || err) };
  }
}

async function one (file) {
  const stem = basename(file, extname(file));
  const bytes = await readFile(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const meta = await sharp(bytes).metadata();
  const exif = exifSummary(meta.exif);
  const preview = await sharp(bytes)
    .rotate()
    .resize(1440, 1440, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 82 })
    .toBuffer();
  await writeFile(join(out, `${stem}.preview.jpg`), preview);
  await sharp(preview)
    .resize(256, 256, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80 })
    .toFile(join(out, `${stem}.thumbnail.webp`));
  await writeFile(join(out, `${stem}.json`), JSON.stringify({
    file, status: 'complete', sha256, bytes: bytes.length, width: meta.width, height: meta.height, exif
  }));
}

let next = 0, failed = 0;
async function worker () {
  while (next < files.length) {
    const file = files[next++];
    try {
      await one(file);
    } catch (err) {
      failed++;
      console.error(`process.mjs: ${file}: ${err.message || err}`);
    }
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));
process.exit(failed ? 1 : 0);
