#!/usr/bin/env bash
#  bench/phash_matrix.sh: how well the perceptual hash (engine/phash.h)
#  tells near-duplicates from different photos, on variants made from the
#  corpus's camera photos into a temporary folder (never kept, never
#  committed).
#
#  bench/phash_matrix.sh [BUILD_DIR]       (default: build)
#
#  For each photo of ../shared/testdata/images/camera, turned upright
#  (ImageMagick's -auto-orient) as the engine shows it:
#    must match   resized to 50 %, 25 %, 800 px and 320 px wide; JPEG at
#                 quality 95, 75, 50, 30; PNG, WebP (80), HEIC (60, when
#                 ImageMagick writes it), TIFF; metadata stripped
#    must not     centre crops keeping 90, 80, 70 and 50 % of each side
#                 (a crop beyond a stated fraction is another picture),
#                 except of a uniform frame (the corpus's blanked Samsung
#                 photo: any crop of one flat grey is the same flat grey);
#                 every other photo of the corpus
#  Each file is hashed by bench/rp_phash_files (the resize actor's own
#  path). The report: the distance of each kind of variant to its source
#  (min / median / max), the distances between different photos, the
#  confusion matrix at every threshold from 4 to 16 bits, and the
#  threshold engine/phash.h uses.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
corpus="${RP_TESTDATA:-$here/../../shared/testdata}/images/camera"
tool="$build/bench/rp_phash_files"
[ -x "$tool" ] || { echo "phash_matrix: build $tool first (cmake --build build)" >&2; exit 1; }
[ -d "$corpus" ] || { echo "phash_matrix: no corpus at $corpus; skipped" >&2; exit 77; }
command -v convert >/dev/null || { echo "phash_matrix: ImageMagick's convert is needed" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/in" "$work/out"
heic=1
convert -size 16x16 xc:gray "$work/probe.heic" 2>/dev/null || heic=0
n=0
for src in "$corpus"/*.jpg "$corpus"/*.jpeg; do
    [ -f "$src" ] || continue
    n=$((n + 1))
    s="s$(printf %02d $n)"
    d="$work/in/$s"
    convert "$src" -auto-orient -quality 95 "${d}__source.jpg"
    up="${d}__source.jpg"
    echo "$s $(basename "$src")" >> "$work/legend.txt"
    convert "$up" -resize 50% -quality 90 "${d}__match_resize50.jpg"
    convert "$up" -resize 25% -quality 90 "${d}__match_resize25.jpg"
    convert "$up" -resize 800x -quality 90 "${d}__match_resize800.jpg"
    convert "$up" -resize 320x -quality 90 "${d}__match_resize320.jpg"
    for q in 95 75 50 30; do
        convert "$src" -auto-orient -quality $q "${d}__match_jpeg$q.jpg"
    done
    convert "$up" "${d}__match_png.png"
    convert "$up" -quality 80 "${d}__match_webp.webp"
    [ $heic = 1 ] && convert "$up" -quality 60 "${d}__match_heic.heic"
    convert "$up" -compress lzw "${d}__match_tiff.tif"
    convert "$up" -strip -quality 95 "${d}__match_stripped.jpg"
    if [ "$(convert "$up" -format '%[fx:maxima-minima]' info:)" = 0 ]; then
        echo "$s uniform frame: no crops made" >> "$work/legend.txt"
        continue
    fi
    for keep in 90 80 70 50; do
        convert "$up" -gravity center -crop "${keep}%x${keep}%+0+0" +repage -quality 90 \
            "${d}__crop_crop$keep.jpg"
    done
done
"$tool" "$work/out" "$work/in"/* > "$work/hashes.txt" || true
cat "$work/legend.txt"
[ -n "${RP_MATRIX_KEEP:-}" ] && cp "$work/hashes.txt" "$RP_MATRIX_KEEP"
python3 - "$work/hashes.txt" "$(sed -n 's/^#define RP_PHASH_THRESHOLD \([0-9]*\).*/\1/p' "$here/../engine/phash.h")" <<'PY'
import sys, os, re, statistics
lines = open(sys.argv[1]).read().split("\n")
chosen = int(sys.argv[2])
hashes, errors = {}, []
for line in lines:
    if not line: continue
    if line.startswith("error "): errors.append(line); continue
    h, path = line.split(" ", 1)
    hashes[os.path.basename(path)] = int(h, 16)
for e in errors: print("REFUSED:", e)
def dist(a, b): return bin(a ^ b).count("1")
sources = {k.split("__")[0]: v for k, v in hashes.items() if "__source" in k}
kinds = {}
for name, h in hashes.items():
    s, rest = name.split("__", 1)
    kind = rest.rsplit(".", 1)[0]
    if kind == "source": continue
    kinds.setdefault(kind, []).append(dist(h, sources[s]))
print(f"{len(sources)} photos, {len(hashes)} files hashed, {len(errors)} refused")
print("distance to its source (bits): kind  min  median  max")
for kind in sorted(kinds, key=lambda k: (k.split("_")[0] != "match", k)):
    d = kinds[kind]
    print(f"  {kind:22s} {min(d):3d} {statistics.median(d):6.1f} {max(d):4d}")
names = sorted(sources)
diff = [dist(sources[a], sources[b]) for i, a in enumerate(names) for b in names[i+1:]]
#  every variant against every other photo's source too
for name, h in hashes.items():
    s = name.split("__")[0]
    if "__source" in name: continue
    diff += [dist(h, sources[o]) for o in names if o != s]
print(f"different photos ({len(diff)} pairs): min {min(diff)} median {statistics.median(diff)} max {max(diff)}")
print("at the chosen threshold, the variants on the wrong side:")
for name, h in sorted(hashes.items()):
    s, rest = name.split("__", 1)
    if rest.startswith("source"): continue
    d = dist(h, sources[s])
    if (rest.startswith("match_") and d > chosen) or (rest.startswith("crop_") and d <= chosen):
        print(f"  {name} distance {d}")
must = [d for k, v in kinds.items() if k.startswith("match_") for d in v]
crops = {k: v for k, v in kinds.items() if k.startswith("crop_")}
print("threshold  TP  FN  | crops matched (90/80/70/50 % kept) | different photos FP  TN")
#  TP/FN: must-match variants within / beyond the threshold; FP/TN: pairs
#  of different photos within / beyond it
for t in range(4, 17):
    tp = sum(d <= t for d in must); fn = len(must) - tp
    cm = "/".join(str(sum(d <= t for d in crops.get(f"crop_crop{k}", []))) for k in (90, 80, 70, 50))
    fp = sum(d <= t for d in diff); tn = len(diff) - fp
    mark = "  <- chosen" if t == chosen else ""
    print(f"  {t:3d}     {tp:3d} {fn:3d}  | {cm:>20s} of {len(crops.get('crop_crop90', []))} each | {fp:5d} {tn:5d}{mark}")
PY
