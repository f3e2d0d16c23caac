#!/usr/bin/env bash
#  bench/compare.sh: photos per second of the engine and of what users
#  would run instead, on the same photos and the same cores, in one run.
#
#  Per photo every tool makes a JPEG q82 preview fitting 1440x1440 and a
#  WebP q80 thumbnail fitting 256x256 (from the preview where the tool
#  allows), from real 12-megapixel camera JPEGs of ../shared/testdata
#  (xiaomi_mi9t_12mp_orient6.jpg, olympus_e-p3_12mp.jpg, alternating),
#  copied N times and made byte-unique (a counter after the EOI marker), so
#  nothing is deduplicated or cached by content:
#    rapidphoto    `rapidphoto process --out DIR FILES...`: its pools (resize
#                  and EXIF), SHA-256, EXIF, a JSON per photo, fsync
#    http          the full HTTP path: a fresh `rapidphoto serve` (SQLite,
#                  local disk) driven by rp_load (bench/load.sh) with the
#                  same sources: upload, durable store, SHA-256, EXIF, both
#                  derivatives, the database row; timed from the first
#                  upload to the last photo complete on the event stream
#    sharp         bench/sharp/process.mjs (sharp 0.35.5, its own libvips
#                  8.18): SHA-256, EXIF (exif-reader), both derivatives,
#                  a JSON per photo, two photos at a time, no fsync
#    vipsthumbnail Debian's vipsthumbnail batched, one process per core,
#                  the thumbnail from the preview; no hash, EXIF or fsync
#    imagemagick   ImageMagick's convert, one process per photo and
#                  derivative (the thumbnail from the preview), as many at
#                  a time as cores, MAGICK_THREAD_LIMIT=1, with the
#                  jpeg:size hint (shrink-on-load); no hash, EXIF or fsync
#  Each tool runs R times (order alternating), each run into an empty
#  folder after `sync`; the median run counts. Start-up is measured apart:
#  each command-line tool also runs R times on one tiny photo (64x48), and
#  its median is the tool's start-up (loading libraries, starting pools,
#  stopping), reported apart and taken off the wall time for the net
#  photos/s, the per-photo rate of a tool already running (the http path
#  is timed from the first upload, after serve started, so it has none). Wall time and user+sys CPU
#  are measured around the command (for http: rp_load's time to complete
#  and the serve process's CPU). Every run's outputs are checked, so a
#  broken tool cannot win. Ratios are the engine's photos/s (rapidphoto
#  process) over each tool's; the bar: on net photos/s, http >= 1.1 x
#  sharp, rapidphoto >= 1.3 x sharp.
#
#  Per camera (-P): the whole comparison once per source photo of the
#  corpus's camera/ and large/ folders (every camera, from 100x68 EXIF
#  samples to 12 MP), then once on all of them mixed (round-robin), each
#  set's JSON beside the results; then one table, a row per set. A photo
#  under 2 MP gets more copies, 2 MP over its pixels times as many (at
#  most 16 times), so that small photos' work outweighs the start-up.
#
#  Usage: bash bench/compare.sh [-n PHOTOS] [-r RUNS] [-b RAPIDPHOTO]
#             [-l RP_LOAD] [-t TOOLS] [-j RESULTS.json] [-S] [-f PHOTO]... [-P]
#    -n  photos per run (default 40; 16 with -P)
#    -r  timed runs per tool (default 3)
#    -b  the rapidphoto binary (default build/rapidphoto)
#    -l  rp_load (default bench/rp_load in the binary's build folder)
#    -t  comma-separated tools (default rapidphoto,http,sharp,vipsthumbnail,imagemagick)
#    -j  the JSON results (default bench/results/compare.json)
#    -S  synthetic 12 MP photos even when the corpus is there
#    -f  a source photo instead of the two defaults (repeat for several:
#        copies alternate between them)
#    -P  per camera: every photo of camera/ and large/ in turn, then mixed
#        (tools default to rapidphoto,http,sharp; JSON: bench/results/
#        compare-cameras.json, each set's beside it)
#  RAPIDPHOTO_* settings in the environment reach rapidphoto and serve.
#  Exit status: 0 when the benchmark ran (see PASS/FAIL), 1 on any error.
#  Needs: bash, coreutils, findutils, time, python3, curl, libvips-tools,
#  imagemagick, node (bench/sharp/install.sh installs sharp).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

photos_n=40
runs=3
binary="$repo/build/rapidphoto"
rp_load=
tools_arg=rapidphoto,http,sharp,vipsthumbnail,imagemagick
results="$repo/bench/results/compare.json"
force_synthetic=0
user_sources=()
per_camera=0
tools_given=0
photos_given=0
results_given=0

die () { echo "compare.sh: $*" >&2; exit 1; }
usage () {
    sed -n '/^#  Usage:/,/^#  Needs:/p' "${BASH_SOURCE[0]}" | sed 's/^#  \{0,1\}//' >&2
    exit "${1:-1}"
}
while getopts ":n:r:b:l:t:j:f:SPh" opt; do
    case $opt in
        n) photos_n=$OPTARG; photos_given=1 ;;
        r) runs=$OPTARG ;;
        b) binary=$OPTARG ;;
        l) rp_load=$OPTARG ;;
        t) tools_arg=$OPTARG; tools_given=1 ;;
        j) results=$OPTARG; results_given=1 ;;
        f) user_sources+=("$OPTARG") ;;
        S) force_synthetic=1 ;;
        P) per_camera=1 ;;
        h) usage 0 ;;
        :) die "-$OPTARG needs a value" ;;
        *) die "unknown option -$OPTARG (try -h)" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument \"$1\" (try -h)"
if [ "$per_camera" = 1 ]; then
    [ "$photos_given" = 1 ] || photos_n=16
    [ "$tools_given" = 1 ] || tools_arg=rapidphoto,http,sharp
    [ "$results_given" = 1 ] || results="$repo/bench/results/compare-cameras.json"
    [ "${#user_sources[@]}" -eq 0 ] || die "-P takes its photos from the corpus: drop -f"
    [ "$force_synthetic" = 0 ] || die "-P needs the corpus: drop -S"
fi
[[ $photos_n =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not \"$photos_n\""
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number, not \"$runs\""
case $binary in /*) ;; *) binary="$PWD/$binary" ;; esac
case $results in /*) ;; *) results="$PWD/$results" ;; esac
[ -x "$binary" ] || die "no rapidphoto binary at $binary (build it, or pass -b)"
[ -n "$rp_load" ] || rp_load="$(dirname "$binary")/bench/rp_load"
case $rp_load in /*) ;; *) rp_load="$PWD/$rp_load" ;; esac
IFS=, read -r -a tools <<<"$tools_arg"
for tool in "${tools[@]}"; do
    case $tool in
        rapidphoto|vipsthumbnail) ;;
        http) [ -x "$rp_load" ] || die "no rp_load at $rp_load (build it, or pass -l)" ;;
        sharp) command -v node >/dev/null || die "node is missing (tools/bootstrap.sh --test)"
               [ -d "$script_dir/sharp/node_modules/sharp" ] || die "sharp is not installed: run bash bench/sharp/install.sh" ;;
        imagemagick) command -v convert >/dev/null || die "ImageMagick's convert is missing (apt-get install imagemagick)" ;;
        *) die "unknown tool \"$tool\" (rapidphoto, http, sharp, vipsthumbnail, imagemagick)" ;;
    esac
done
for t in vipsthumbnail vips vipsheader xargs sha256sum python3; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
convert_bin=convert
[ -x /usr/bin/convert-im6.q16 ] && convert_bin=/usr/bin/convert-im6.q16     #  the real one, not a wrapper

#  ------------------------------------------------------------- per camera
#  This script again for each set, then a row per set from their JSONs
if [ "$per_camera" = 1 ]; then
    testdata="$repo/../shared/testdata/images"
    [ -d "$testdata/camera" ] && [ -d "$testdata/large" ] \
        || die "-P needs the corpus's camera/ and large/ folders at $testdata (../shared/testdata)"
    mapfile -t cameras < <(find "$testdata/camera" "$testdata/large" -maxdepth 1 -type f \
                               \( -iname '*.jpg' -o -iname '*.jpeg' \) | sort)
    [ "${#cameras[@]}" -gt 0 ] || die "no JPEGs in $testdata/camera or $testdata/large"
    sets_dir="${results%.json}"
    mkdir -p "$sets_dir"
    set_jsons=()
    common=(-n "$photos_n" -r "$runs" -b "$binary" -l "$rp_load" -t "$tools_arg")
    k=0
    for camera in "${cameras[@]}" mixed; do
        k=$((k + 1))
        if [ "$camera" = mixed ]; then
            name=mixed
            files=()
            for c in "${cameras[@]}"; do files+=(-f "$c"); done
            #  every camera 4 times (at least), so that one run is more
            #  than a second of work and the big photos do not all land
            #  at its end
            (( photos_n >= 4 * ${#cameras[@]} )) || files+=(-n $(( 4 * ${#cameras[@]} )))
        else
            name=$(basename "${camera%.*}")
            files=(-f "$camera")
            #  Small photos take more copies (up to 16 times as many), so
            #  that the work outweighs the start-up taken off it: 16 photos
            #  of 100x70 are a few hundredths of a second for every tool
            pixels=$(( $(vipsheader -f width "$camera") * $(vipsheader -f height "$camera") ))
            scale=$(( 2000000 / (pixels > 0 ? pixels : 1) ))
            (( scale >= 1 )) || scale=1
            (( scale <= 16 )) || scale=16
            (( scale == 1 )) || files+=(-n $(( photos_n * scale )))
        fi
        echo "== set $k of $(( ${#cameras[@]} + 1 )): $name"
        if ! bash "${BASH_SOURCE[0]}" "${common[@]}" "${files[@]}" -j "$sets_dir/$name.json" \
            | sed -n -e '/^tool /,/^(net:/p' -e '/^PASS\|^FAIL\|^WARNING/p'; then
            die "the $name set failed (its reason above; alone: bash bench/compare.sh ${files[*]})"
        fi
        set_jsons+=("$sets_dir/$name.json")
    done
    python3 "$script_dir/compare_sets.py" "$results" "${set_jsons[@]}"
    exit 0
fi

cores=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/rpcompare.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#  ------------------------------------------------------------------ photos
testdata="$repo/../shared/testdata/images"
sources=("$testdata/large/xiaomi_mi9t_12mp_orient6.jpg" "$testdata/camera/olympus_e-p3_12mp.jpg")
source_kind=testdata
for s in "${sources[@]}"; do [ -r "$s" ] || source_kind=synthetic; done
[ "$force_synthetic" = 0 ] || source_kind=synthetic
if [ "${#user_sources[@]}" -gt 0 ]; then
    [ "$force_synthetic" = 0 ] || die "-S and -f exclude each other"
    for s in "${user_sources[@]}"; do [ -r "$s" ] || die "cannot read the photo $s"; done
    sources=("${user_sources[@]}")
    source_kind=given
fi
mkdir -p "$work/src" "$work/photos"
if [ "$source_kind" = synthetic ]; then
    echo "compare.sh: synthetic 12 MP JPEGs made with vips (the corpus at $testdata was not used)"
    make_synthetic () {     #  out width height seed
        local t=$work/src/t band
        for band in 0 1 2; do
            vips gaussnoise "$t-n$band.v" "$2" "$3" --mean 128 --sigma 70 --seed $(( $4 * 3 + band ))
            vips gaussblur "$t-n$band.v" "$t-b$band.v" 2
        done
        vips bandjoin "$t-b0.v $t-b1.v $t-b2.v" "$t-rgb.v"
        vips cast "$t-rgb.v" "$t-u8.v" uchar
        vips copy "$t-u8.v" "$1[Q=90]" --interpretation srgb
        rm -f "$t"-*.v
    }
    sources=("$work/src/synthetic_4000x3000.jpg" "$work/src/synthetic_4032x3024.jpg")
    make_synthetic "${sources[0]}" 4000 3000 1
    make_synthetic "${sources[1]}" 4032 3024 2
fi
photos=()
stems=()
for ((i = 1; i <= photos_n; i++)); do
    src=${sources[$(( (i - 1) % ${#sources[@]} ))]}
    stem=$(printf 'photo_%04d' "$i")
    cp "$src" "$work/photos/$stem.jpg"
    printf 'rapidphoto-bench %d' "$i" >>"$work/photos/$stem.jpg"     #  after EOI: unique bytes
    photos+=("$work/photos/$stem.jpg")
    stems+=("$stem")
done
[ "$(sha256sum "${photos[@]}" | cut -d' ' -f1 | sort | uniq -d | wc -l)" -eq 0 ] || die "copies are not byte-unique"
printf '%s\0' "${photos[@]}" >"$work/photos.list"
photo_bytes=$(cat "${photos[@]}" | wc -c)
cat "${photos[@]}" >/dev/null       #  into the page cache

#  ---------------------------------------------------------- tool commands
cat >"$work/vt_batch.sh" <<'EOF'
#!/bin/sh
set -e
out=$1
shift
vipsthumbnail -s '1440x1440>' -o "$out/%s.preview.jpg[Q=82,strip]" "$@"
n=$#
for f; do
    b=${f##*/}
    set -- "$@" "$out/${b%.*}.preview.jpg"
done
shift "$n"
vipsthumbnail -s '256x256>' -o "$out/%s.thumbnail.webp[Q=80,strip]" "$@"
EOF
cat >"$work/im_one.sh" <<EOF
#!/bin/sh
set -e
b=\${2##*/}
s=\${b%.*}
$convert_bin -define jpeg:size=2880x2880 "\$2" -auto-orient -resize '1440x1440>' -strip -quality 82 "\$1/\$s.preview.jpg"
$convert_bin "\$1/\$s.preview.jpg" -resize '256x256>' -strip -quality 80 "\$1/\$s.thumbnail.webp"
EOF

#  Sets `cmd` for TOOL OUT LIST
command_for () {
    local tool=$1 out=$2 list_file=$3 list=() per
    mapfile -d '' -t list <"$list_file"
    case $tool in
        rapidphoto) cmd=("$binary" process --out "$out" "${list[@]}") ;;
        sharp) cmd=(node "$script_dir/sharp/process.mjs" --out "$out" --jobs "$cores" "${list[@]}") ;;
        vipsthumbnail)
            per=$(( (${#list[@]} + cores - 1) / cores ))
            cmd=(xargs -0 -a "$list_file" -P "$cores" -n "$per" sh "$work/vt_batch.sh" "$out") ;;
        imagemagick)
            cmd=(env MAGICK_THREAD_LIMIT=1 xargs -0 -a "$list_file" -P "$cores" -n 1 sh "$work/im_one.sh" "$out") ;;
    esac
}

long_side () {
    local w h
    w=$(vipsheader -f width "$1") && h=$(vipsheader -f height "$1") || return 1
    echo $(( w > h ? w : h ))
}

check_outputs () {      #  TOOL OUT COUNT LOG
    local tool=$1 out=$2 count=$3 log=$4 i stem thumb missing=()
    for ((i = 0; i < count; i++)); do
        stem=${stems[$i]}
        thumb=$stem.thumbnail.webp
        [ "$tool" = vipsthumbnail ] && thumb=$stem.preview.thumbnail.webp
        for f in "$stem.preview.jpg" "$thumb"; do [ -s "$out/$f" ] || missing+=("$f"); done
        if [ "$tool" = rapidphoto ] || [ "$tool" = sharp ]; then
            grep -q '"status":"complete"' "$out/$stem.json" 2>/dev/null || missing+=("$stem.json (not complete)")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "compare.sh: $tool left missing or bad outputs: ${missing[*]:0:8}" >&2
        tail -n 15 "$log.stderr" | sed 's/^/    /' >&2
        exit 1
    fi
    [ "$(long_side "$out/${stems[0]}.preview.jpg")" = "$want_preview" ] \
        || die "$tool: the preview is not $want_preview pixels long"
    #  The first photo's (want_* are its sizes)
    thumb=${stems[0]}.thumbnail.webp
    [ "$tool" = vipsthumbnail ] && thumb=${stems[0]}.preview.thumbnail.webp
    [ "$(long_side "$out/$thumb")" = "$want_thumb" ] || die "$tool: the thumbnail is not $want_thumb pixels long"
}

#  What the first photo's derivatives measure: fitted, never enlarged
first_long=$(long_side "${sources[0]}") || die "cannot read the size of ${sources[0]}"
want_preview=$(( first_long < 1440 ? first_long : 1440 ))
want_thumb=$(( want_preview < 256 ? want_preview : 256 ))
if [ "${#sources[@]}" -eq 1 ]; then
    photo_size="$(vipsheader -f width "${sources[0]}")x$(vipsheader -f height "${sources[0]}")"
    photo_mp=$(awk -v s="$photo_size" 'BEGIN { split (s, d, "x"); printf "%.2f", d[1] * d[2] / 1e6 }')
else
    photo_size=mixed
    photo_mp=None
fi

#  The start-up photo: 64x48, so that the run is the tool starting and stopping
vips black "$work/src/startup.v" 64 48 --bands 3
vips copy "$work/src/startup.v" "$work/src/startup.jpg[Q=90]" --interpretation srgb
rm -f "$work/src/startup.v"
printf '%s\0' "$work/src/startup.jpg" >"$work/startup.list"

clk_tck=$(getconf CLK_TCK)
machine_busy () {
    awk -v hz="$clk_tck" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

#  One timed run: TOOL NAME LIST COUNT -> last_wall, last_cpu, last_other
timed_run () {
    local tool=$1 name=$2 list_file=$3 count=$4
    local out="$work/out-$tool-$name" log="$work/log-$tool-$name" rc=0 b0 b1 t0 t1
    rm -rf "$out"; mkdir -p "$out"
    sync
    b0=$(machine_busy)
    if [ "$tool" = http ]; then
        local src_args=()
        for s in "${sources[@]}"; do src_args+=(-f "$s"); done
        local c=$count; (( c <= 100 )) || c=100
        t0=$(date +%s%N)
        bash "$script_dir/load.sh" -s 12mp -n "$count" -c "$c" -b "$binary" -l "$rp_load" \
            -j "$log.json" "${src_args[@]}" -- --quiet --p95-max 1000 \
            >"$log.stdout" 2>"$log.stderr" || rc=$?
        t1=$(date +%s%N)
        b1=$(machine_busy)
        [ -s "$log.json" ] || { tail -n 20 "$log.stderr" "$log.stdout" >&2; die "http run $name wrote no report"; }
        read -r last_wall last_cpu ok < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
p = r["photos"]
ok = p["complete"] == p["requested"] and r["finished"]
print(r["all_complete_s"], r["engine"].get("cpu_s", -1), "ok" if ok else "bad")' "$log.json")
        [ "$ok" = ok ] || { cat "$log.stdout" >&2; die "http run $name: not every photo completed"; }
        cp "$log.json" "$work/http-last.json"
    else
        command_for "$tool" "$out" "$list_file"
        t0=$(date +%s%N)
        /usr/bin/time -f 'cpu %U %S' -o "$log.time" "${cmd[@]}" >"$log.stdout" 2>"$log.stderr" || rc=$?
        t1=$(date +%s%N)
        b1=$(machine_busy)
        if [ "$rc" -ne 0 ]; then
            echo "compare.sh: $tool failed (exit $rc) on run $name:" >&2
            tail -n 15 "$log.stderr" | sed 's/^/    /' >&2
            exit 1
        fi
        check_outputs "$tool" "$out" "$count" "$log"
        last_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        last_cpu=$(awk '$1 == "cpu" { printf "%.2f", $2 + $3 }' "$log.time")
        [ "$tool" = rapidphoto ] && cp "$log.stdout" "$work/rapidphoto-last.jsonl"
    fi
    #  Over the whole command (for http: serve's start and stop, and rp_load
    #  itself, count as other processes)
    local elapsed
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    last_other=$(awk -v b0="$b0" -v b1="$b1" -v c="$last_cpu" -v w="$elapsed" -v n="$cores" \
        'BEGIN { o = (b1 - b0 - c) / (w * n) * 100; if (o < 0) o = 0; printf "%.0f", o }')
    rm -rf "$out"
}

#  The tool on the start-up photo alone: last_startup, last_startup_cpu
startup_run () {
    local tool=$1 out="$work/out-startup" log="$work/log-startup-$1" rc=0 t0 t1
    rm -rf "$out"; mkdir -p "$out"
    sync
    command_for "$tool" "$out" "$work/startup.list"
    t0=$(date +%s%N)
    /usr/bin/time -f 'cpu %U %S' -o "$log.time" "${cmd[@]}" >"$log.stdout" 2>"$log.stderr" || rc=$?
    t1=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
        echo "compare.sh: $tool failed (exit $rc) on the start-up photo:" >&2
        tail -n 15 "$log.stderr" | sed 's/^/    /' >&2
        exit 1
    fi
    last_startup=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    last_startup_cpu=$(awk '$1 == "cpu" { printf "%.2f", $2 + $3 }' "$log.time")
    rm -rf "$out"
}

median () {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

#  ------------------------------------------------------------------ runs
rp_version=$("$binary" --version 2>&1 | head -n 1)
vt_vips=$(vipsthumbnail --vips-version 2>&1 | sed -n 's/^libvips \([0-9][0-9.]*\).*/\1/p')
sharp_versions=$(cd "$script_dir/sharp" && node -e 'const s = require("sharp"); process.stdout.write(s.versions.sharp + " (libvips " + s.versions.vips + ")")' 2>/dev/null || echo unknown)
im_version=$($convert_bin -version 2>/dev/null | sed -n '1s/^Version: ImageMagick \([^ ]*\).*/\1/p')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
settings=$(env | grep '^RAPIDPHOTO_' | sort || true)
echo "rapidphoto:     $rp_version"
echo "sharp:          $sharp_versions; vipsthumbnail: libvips $vt_vips; ImageMagick: ${im_version:-unknown}"
echo "photos:         $photos_n $source_kind JPEGs (${sources[*]##*/}; $photo_size; byte-unique copies)," \
     "$(( photo_bytes / photos_n / 1024 )) KiB average"
echo "cores:          $cores ($(grep -m 1 '^model name' /proc/cpuinfo | sed 's/.*: //'))"
echo "load average:   $load_before (1, 5, 15 min, before); runs: $runs per tool, alternating order"
[ -z "$settings" ] || echo "settings:       $(tr '\n' ' ' <<<"$settings")"
echo

#  Warm-up on 4 photos (not timed; http warms up in its own serve)
warm_n=$(( photos_n < 4 ? photos_n : 4 ))
head -z -n "$warm_n" "$work/photos.list" >"$work/warm.list"
for tool in "${tools[@]}"; do
    [ "$tool" = http ] || timed_run "$tool" warmup "$work/warm.list" "$warm_n"
done

declare -A walls cpus others startups startup_cpus
max_other=0
for ((run = 1; run <= runs; run++)); do
    order=("${tools[@]}")
    if (( run % 2 == 0 )); then
        order=()
        for ((k = ${#tools[@]} - 1; k >= 0; k--)); do order+=("${tools[$k]}"); done
    fi
    for tool in "${order[@]}"; do
        timed_run "$tool" "$run" "$work/photos.list" "$photos_n"
        walls[$tool]+="$last_wall "
        cpus[$tool]+="$last_cpu "
        others[$tool]+="$last_other "
        (( last_other <= max_other )) || max_other=$last_other
        printf '  run %d  %-14s wall %7.3f s  cpu %7.2f s  other processes %3d%% of the machine\n' \
            "$run" "$tool" "$last_wall" "$last_cpu" "$last_other"
        if [ "$tool" != http ]; then
            startup_run "$tool"
            startups[$tool]+="$last_startup "
            startup_cpus[$tool]+="$last_startup_cpu "
            printf '  run %d  %-14s start-up %5.3f s  cpu %5.2f s\n' "$run" "$tool" "$last_startup" "$last_startup_cpu"
        fi
    done
done
echo

declare -A med_wall med_cpu med_startup med_startup_cpu rate net cpp ratio
for tool in "${tools[@]}"; do
    # shellcheck disable=SC2086
    med_wall[$tool]=$(median ${walls[$tool]})
    # shellcheck disable=SC2086
    med_cpu[$tool]=$(median ${cpus[$tool]})
    med_startup[$tool]=0; med_startup_cpu[$tool]=0
    if [ "$tool" != http ]; then
        # shellcheck disable=SC2086
        med_startup[$tool]=$(median ${startups[$tool]})
        # shellcheck disable=SC2086
        med_startup_cpu[$tool]=$(median ${startup_cpus[$tool]})
    fi
    rate[$tool]=$(awk -v n="$photos_n" -v w="${med_wall[$tool]}" 'BEGIN { printf "%.2f", n / w }')
    #  Net of start-up; a run shorter than its start-up (noise) keeps the gross rate
    net[$tool]=$(awk -v n="$photos_n" -v w="${med_wall[$tool]}" -v s="${med_startup[$tool]}" \
        'BEGIN { d = w - s; if (d <= 0) d = w; printf "%.2f", n / d }')
    cpp[$tool]=$(awk -v n="$photos_n" -v c="${med_cpu[$tool]}" -v s="${med_startup_cpu[$tool]}" \
        'BEGIN { d = c - s; if (d <= 0) d = c; printf "%.3f", d / n }')
done
engine_rate=${net[rapidphoto]:-}
printf '%-14s  %13s  %10s  %9s  %9s  %12s  %16s\n' tool "median wall s" "start-up s" "photos/s" "net ph/s" \
    "CPU s/photo" "engine's ratio"
for tool in "${tools[@]}"; do
    if [ -n "$engine_rate" ]; then
        ratio[$tool]=$(awk -v a="$engine_rate" -v b="${net[$tool]}" 'BEGIN { printf "%.2f", a / b }')
    else
        ratio[$tool]=null
    fi
    printf '%-14s  %13.3f  %10.3f  %9.2f  %9.2f  %12.3f  %15sx\n' "$tool" "${med_wall[$tool]}" "${med_startup[$tool]}" \
        "${rate[$tool]}" "${net[$tool]}" "${cpp[$tool]}" "${ratio[$tool]}"
done
echo "(net: start-up apart; engine's ratio: rapidphoto process net photos/s over the tool's; CPU s/photo net of" \
     "start-up; http is timed from its first upload, its CPU is the serve process's)"
(( max_other <= 10 )) || echo "WARNING: other processes used up to ${max_other}% of the machine during the runs:" \
    "wall times are unreliable, CPU s per photo less so. Run again on a quiet machine."

bar_http=null; bar_process=null
if [ -n "${net[sharp]:-}" ] && [ -n "${net[http]:-}" ]; then
    r=$(awk -v a="${net[http]}" -v b="${net[sharp]}" 'BEGIN { printf "%.2f", a / b }')
    bar_http=$(awk -v r="$r" 'BEGIN { print (r >= 1.1) ? "true" : "false" }')
    echo "$([ "$bar_http" = true ] && echo PASS || echo FAIL): http path is ${r}x sharp's net photos/s (the bar: >= 1.1x)"
fi
if [ -n "${net[sharp]:-}" ] && [ -n "$engine_rate" ]; then
    r=$(awk -v a="$engine_rate" -v b="${net[sharp]}" 'BEGIN { printf "%.2f", a / b }')
    bar_process=$(awk -v r="$r" 'BEGIN { print (r >= 1.3) ? "true" : "false" }')
    echo "$([ "$bar_process" = true ] && echo PASS || echo FAIL): rapidphoto process is ${r}x sharp's net photos/s (the bar: >= 1.3x)"
fi

#  Where the time goes (ms per photo, as the workers measured; wall, not CPU)
echo
python3 - "$work/rapidphoto-last.jsonl" "$work/http-last.json" >"$work/stages.json" <<'EOF'
import json, os, sys
out = {}
path = sys.argv[1]
if os.path.exists(path):
    sums, n = {}, 0
    for line in open(path):
        t = json.loads(line).get("timings") or {}
        n += 1
        for k, v in t.items():
            sums[k[:-3] if k.endswith("_ms") else k] = sums.get(k[:-3] if k.endswith("_ms") else k, 0) + v
    out["rapidphoto"] = {k: round(v / n, 2) for k, v in sums.items()} if n else {}
if os.path.exists(sys.argv[2]):
    st = json.load(open(sys.argv[2])).get("stages", {})
    out["http"] = {k: v["ms_per_photo"] for k, v in st.items()}
print(json.dumps(out))
EOF
python3 - "$work/stages.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
if s:
    names = []
    for t in s.values():
        names += [k for k in t if k not in names]
    print("stage breakdown, ms per photo (last run):  " + "  ".join("%12s" % t for t in s))
    for k in names:
        print("  %-38s  " % k + "  ".join("%12s" % (("%.2f" % s[t][k]) if k in s[t] else "-") for t in s))
    print("  (upload = receive + SHA-256 + fsync + row until the 202; jobs = from submitting the jobs to the"
          " last answer, queueing included)")
EOF

#  ------------------------------------------------------------------ JSON
mkdir -p "$(dirname "$results")"
{
    for tool in "${tools[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "${walls[$tool]}" "${cpus[$tool]}" \
            "${others[$tool]}" "${med_wall[$tool]}" "${med_cpu[$tool]}" "${rate[$tool]}" "${cpp[$tool]}" \
            "${med_startup[$tool]}" "${med_startup_cpu[$tool]}" "${net[$tool]}"
    done
} >"$work/tools.tsv"
python3 - "$work/tools.tsv" "$work/stages.json" "$results" <<EOF
import json, sys
tools = {}
for line in open(sys.argv[1]):
    name, walls, cpus, others, mw, mc, rate, cpp, su, suc, net = line.rstrip("\n").split("\t")
    tools[name] = {"wall_s": [float(x) for x in walls.split()], "cpu_s": [float(x) for x in cpus.split()],
                   "other_processes_percent": [int(x) for x in others.split()],
                   "median_wall_s": float(mw), "median_cpu_s": float(mc), "photos_per_s": float(rate),
                   "startup_s": None if name == "http" else float(su),
                   "startup_cpu_s": None if name == "http" else float(suc),
                   "net_photos_per_s": float(net), "cpu_s_per_photo": float(cpp)}
engine = tools.get("rapidphoto", {}).get("net_photos_per_s")
for t in tools.values():
    t["engine_ratio"] = round(engine / t["net_photos_per_s"], 2) if engine else None
report = {
    "bench": "compare", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "machine": {"cores": $cores, "load_average_before": "$load_before",
                "load_average_after": "$(cut -d' ' -f1-3 /proc/loadavg)", "max_other_processes_percent": $max_other,
                "kernel": "$(uname -r)"},
    "versions": {"rapidphoto": "$rp_version", "sharp": "$sharp_versions", "vipsthumbnail_libvips": "$vt_vips",
                 "imagemagick": "${im_version:-unknown}"},
    "photos": {"n": $photos_n, "source": "$source_kind", "average_bytes": $(( photo_bytes / photos_n )),
               "files": "${sources[*]##*/}".split(), "size": "$photo_size", "megapixels": $photo_mp},
    "runs": $runs,
    "settings": dict(l.split("=", 1) for l in """$settings""".splitlines() if "=" in l),
    "tools": tools,
    "stages_ms_per_photo": json.load(open(sys.argv[2])),
    "bar": {"http_at_least_1_1x_sharp": json.loads("$bar_http"),
            "process_at_least_1_3x_sharp": json.loads("$bar_process")},
}
json.dump(report, open(sys.argv[3], "w"), indent=2)
EOF
echo "results: $results"
