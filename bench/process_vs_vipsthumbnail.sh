#!/usr/bin/env bash
#  bench/process_vs_vipsthumbnail.sh: throughput of `rapidphoto process`
#  against Debian's vipsthumbnail, in one run, on the same cores.
#
#  Per photo, both tools make a 1440x1440-fitting JPEG q82 preview and a
#  256x256-fitting WebP q80 thumbnail, decoding the original once with
#  shrink-on-load:
#    (a) rapidphoto process --out DIR FILES...   (one process, its own
#        worker pools; also computes SHA-256, reads EXIF and writes
#        DIR/<stem>.json, and fsyncs every file it writes);
#    (b) vipsthumbnail, the way a competent user would run it: one worker
#        process per core (xargs -P), each handling its batch of files in
#        one invocation, the preview from the original and then the
#        thumbnail from the preview, so the original is decoded once:
#          vipsthumbnail -s 1440x1440 -o 'OUT/%s.preview.jpg[Q=82,strip]' files...
#          vipsthumbnail -s 256x256 -o 'OUT/%s.thumbnail.webp[Q=80,strip]' previews...
#        This peer does NOT compute SHA-256, does not read EXIF (beyond the
#        orientation libvips applies), writes no JSON and does not fsync:
#        it does less work than the engine, so the comparison favours it.
#    (c) vipsthumbnail_per_file, the script people usually write: one
#        vipsthumbnail per photo and derivative, each from the original,
#        as many at a time as there are cores (xargs -P):
#          vipsthumbnail -s 1440x1440 -o '%s.preview.jpg[Q=82,strip]' photo.jpg
#          vipsthumbnail -s 256x256 -o '%s.thumbnail.webp[Q=80,strip]' photo.jpg
#        It starts a process and decodes the original once per derivative:
#        the cost an engine that decodes once and stays resident avoids.
#
#  The photos are real 12-megapixel camera JPEGs from ../shared/testdata
#  (copied N times under unique names, each copy made byte-unique by a
#  counter appended after the JPEG's EOI marker, so nothing can be
#  deduplicated or cached by content), or synthetic 12 MP JPEGs made with
#  `vips` when the test corpus is absent (the output says so).
#
#  Method: the photos are read once into the page cache and each tool is
#  warmed up on a few of them; then each tool runs R times, the order
#  alternating between runs, each run into an empty output folder after a
#  `sync`. Wall time (date +%s%N) and user+sys CPU (/usr/bin/time) are
#  measured around the whole command; the median run counts. Every run's
#  outputs are checked (two derivatives per photo, and for rapidphoto the
#  .json with status complete), and the script fails loudly otherwise, so a
#  broken tool cannot win.
#
#  Usage: bash bench/process_vs_vipsthumbnail.sh [-n PHOTOS] [-r RUNS]
#             [-b RAPIDPHOTO] [-c VIPS_CONCURRENCY] [-j RESULTS.json]
#             [-q NOISE_PERCENT] [-S]
#    -n  photos per run (default 40)
#    -r  timed runs per tool (default 3)
#    -b  the rapidphoto binary (default build/rapidphoto under the repo root)
#    -c  VIPS_CONCURRENCY for vipsthumbnail's processes (default
#        "default": left unset, so libvips uses one thread per core in each
#        process; on the 2-core machine this was measured on, that beat
#        VIPS_CONCURRENCY=1 by about 7%, so the peer runs at its best)
#    -j  where to write the JSON results
#        (default bench/results/process_vs_vipsthumbnail.json)
#    -q  noise limit in per cent (default 10): before each run, wait (up to
#        2 minutes) until other processes use less than this share of the
#        machine, and repeat a run (up to 4 times) when they used more
#        during it; 0 turns both off. Runs still noisy are kept and flagged.
#    -S  use synthetic photos even when the test corpus is there
#  RAPIDPHOTO_* settings in the environment (RAPIDPHOTO_POOLS_RESIZE,
#  RAPIDPHOTO_POOLS_EXIF, RAPIDPHOTO_POOLS_VIPS_CONCURRENCY...) reach
#  rapidphoto as usual; the ones set are printed and recorded.
#  Exit status: 0 when the benchmark ran (whether the goal passed or not,
#  see the PASS/FAIL line and "pass" in the JSON), 1 on any error.
#  Needs: bash, coreutils, findutils (xargs), time, libvips-tools.
set -euo pipefail

GOAL=1.5        #  rapidphoto photos/s must be at least this times vipsthumbnail's

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

photos_n=40
runs=3
binary="$repo/build/rapidphoto"
peer_concurrency=default
results="$repo/bench/results/process_vs_vipsthumbnail.json"
force_synthetic=0
noise_limit=10
retries=4

die () {
    echo "process_vs_vipsthumbnail: $*" >&2
    exit 1
}

usage () {
    sed -n '/^#  Usage:/,/^#  Needs:/p' "${BASH_SOURCE[0]}" | sed 's/^#  \{0,1\}//' >&2
    exit "${1:-1}"
}

while getopts ":n:r:b:c:j:q:Sh" opt; do
    case $opt in
        n) photos_n=$OPTARG ;;
        r) runs=$OPTARG ;;
        b) binary=$OPTARG ;;
        c) peer_concurrency=$OPTARG ;;
        j) results=$OPTARG ;;
        q) noise_limit=$OPTARG ;;
        S) force_synthetic=1 ;;
        h) usage 0 ;;
        :) die "-$OPTARG needs a value" ;;
        *) die "unknown option -$OPTARG (try -h)" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument \"$1\" (try -h)"
[[ $photos_n =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not \"$photos_n\""
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number, not \"$runs\""
[[ $noise_limit =~ ^[0-9]+$ ]] || die "-q wants a percentage, not \"$noise_limit\""
[[ $peer_concurrency =~ ^([1-9][0-9]*|default)$ ]] || die "-c wants a positive number or \"default\""

#  Paths given relative are taken from where the script was started
case $binary in /*) ;; *) binary="$PWD/$binary" ;; esac
case $results in /*) ;; *) results="$PWD/$results" ;; esac
[ -x "$binary" ] || die "no rapidphoto binary at $binary (build it, or pass -b)"
for tool in vipsthumbnail vips vipsheader xargs sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install libvips-tools coreutils findutils)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"

cores=$(nproc)
workers=$cores              #  vipsthumbnail worker processes
[ "$workers" -le "$photos_n" ] || workers=$photos_n
batch=$(( (photos_n + workers - 1) / workers ))

work=$(mktemp -d "${TMPDIR:-/tmp}/rpbench.XXXXXX")
cleanup () { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#  ---------------------------------------------------------------- versions
rp_version=$("$binary" --version 2>&1 | head -n 1) || die "$binary --version failed: $rp_version"
rp_vips=$(sed -n 's/.*libvips \([0-9][0-9.]*\).*/\1/p' <<<"$rp_version")
vt_vips=$(vipsthumbnail --vips-version 2>&1 | sed -n 's/^libvips \([0-9][0-9.]*\).*/\1/p')
[ -n "$rp_vips" ] || die "cannot find the libvips version in \"$rp_version\""
[ -n "$vt_vips" ] || die "cannot find vipsthumbnail's libvips version"

#  ------------------------------------------------------------------ photos
testdata="$repo/../shared/testdata/images"
sources=("$testdata/large/xiaomi_mi9t_12mp_orient6.jpg" "$testdata/camera/olympus_e-p3_12mp.jpg")
source_kind=testdata
for s in "${sources[@]}"; do
    [ -r "$s" ] || source_kind=synthetic
done
[ "$force_synthetic" -eq 0 ] || source_kind=synthetic
mkdir -p "$work/src" "$work/photos"
if [ "$source_kind" = synthetic ]; then
    if [ "$force_synthetic" -eq 1 ]; then
        echo "Synthetic photos requested (-S): generating two 12 MP JPEGs with vips."
    else
        echo "The test corpus ($testdata) is absent: generating two synthetic 12 MP JPEGs with vips."
    fi
    #  Blurred noise in three bands: decodes and compresses roughly like a
    #  photo (a few MB at Q 90), unlike flat colour or raw noise.
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

#  N copies, alternating sources, each with a distinct counter after EOI
photos=()
stems=()
for ((i = 1; i <= photos_n; i++)); do
    src=${sources[$(( (i - 1) % ${#sources[@]} ))]}
    base=${src##*/}
    stem=$(printf 'p%04d-%s' "$i" "${base%.*}")
    dest="$work/photos/$stem.jpg"
    cat "$src" >"$dest"
    printf '\nrpbench copy %06d\n' "$i" >>"$dest"
    photos+=("$dest")
    stems+=("$stem")
done
duplicates=$(sha256sum "${photos[@]}" | cut -d' ' -f1 | sort | uniq -d | wc -l)
[ "$duplicates" -eq 0 ] || die "the photo copies are not byte-unique"
printf '%s\0' "${photos[@]}" >"$work/photos.list"
photo_bytes=$(cat "${photos[@]}" | wc -c)

#  The per-file script: OUT FILE -> both derivatives from the original
cat >"$work/vt_one.sh" <<'EOF'
#!/bin/sh
set -e
vipsthumbnail -s 1440x1440 -o "$1/%s.preview.jpg[Q=82,strip]" "$2"
vipsthumbnail -s 256x256 -o "$1/%s.thumbnail.webp[Q=80,strip]" "$2"
EOF

#  vipsthumbnail's worker: OUT FILE... -> previews, then thumbnails of them
cat >"$work/vt_batch.sh" <<'EOF'
#!/bin/sh
set -e
out=$1
shift
vipsthumbnail -s 1440x1440 -o "$out/%s.preview.jpg[Q=82,strip]" "$@"
n=$#
for f; do
    b=${f##*/}
    set -- "$@" "$out/${b%.*}.preview.jpg"
done
shift "$n"
vipsthumbnail -s 256x256 -o "$out/%s.thumbnail.webp[Q=80,strip]" "$@"
EOF

#  ------------------------------------------------------------------- tools
#  The measured command of each tool, given OUT_DIR and a NUL-separated
#  list of photos, in the array `cmd`. The RAPIDPHOTO_* environment
#  reaches rapidphoto untouched.
command_rapidphoto () {
    local list=()
    mapfile -d '' -t list <"$2"
    cmd=("$binary" process --out "$1" "${list[@]}")
}

command_vipsthumbnail () {
    local count per
    count=$(tr -cd '\0' <"$2" | wc -c)
    per=$(( (count + workers - 1) / workers ))
    cmd=(env)
    [ "$peer_concurrency" = default ] || cmd+=("VIPS_CONCURRENCY=$peer_concurrency")
    cmd+=(xargs -0 -a "$2" -P "$workers" -n "$per" sh "$work/vt_batch.sh" "$1")
}

command_vipsthumbnail_per_file () {
    cmd=(env)
    [ "$peer_concurrency" = default ] || cmd+=("VIPS_CONCURRENCY=$peer_concurrency")
    cmd+=(xargs -0 -a "$2" -P "$workers" -n 1 sh "$work/vt_one.sh" "$1")
}

#  The longer side of an image, from its header
long_side () {
    local w h
    w=$(vipsheader -f width "$1") && h=$(vipsheader -f height "$1") || return 1
    echo $(( w > h ? w : h ))
}

#  Check a run's outputs: TOOL OUT_DIR COUNT LOG_PREFIX. Dies on any gap.
check_outputs () {
    local tool=$1 out=$2 count=$3 log=$4 i stem f expected
    local missing=()
    for ((i = 0; i < count; i++)); do
        stem=${stems[$i]}
        if [ "$tool" = rapidphoto ] || [ "$tool" = vipsthumbnail_per_file ]; then
            local wanted=("$stem.preview.jpg" "$stem.thumbnail.webp")
            [ "$tool" = rapidphoto ] && wanted+=("$stem.json")
            for f in "${wanted[@]}"; do
                [ -s "$out/$f" ] || missing+=("$f")
            done
            if [ "$tool" = rapidphoto ] && [ -s "$out/$stem.json" ] && ! grep -q '"status":"complete"' "$out/$stem.json"; then
                missing+=("$stem.json (status is not complete)")
            fi
        else
            for f in "$stem.preview.jpg" "$stem.preview.thumbnail.webp"; do
                [ -s "$out/$f" ] || missing+=("$f")
            done
        fi
    done
    if [ "$tool" = rapidphoto ]; then expected=$(( count * 3 )); else expected=$(( count * 2 )); fi
    local found
    found=$(find "$out" -maxdepth 1 -type f | wc -l)
    if [ "${#missing[@]}" -gt 0 ] || [ "$found" -ne "$expected" ]; then
        echo "process_vs_vipsthumbnail: $tool produced wrong output in $out:" >&2
        echo "  $found files, $expected expected; missing or bad: ${missing[*]:0:10}" >&2
        echo "  last lines of its stderr:" >&2
        tail -n 15 "$log.stderr" | sed 's/^/    /' >&2
        exit 1
    fi
    #  The first photo's derivatives have the right size
    local preview="$out/${stems[0]}.preview.jpg" thumb
    if [ "$tool" != vipsthumbnail ]; then thumb="$out/${stems[0]}.thumbnail.webp"
    else thumb="$out/${stems[0]}.preview.thumbnail.webp"; fi
    [ "$(long_side "$preview")" = 1440 ] || die "$tool: $preview is not 1440 pixels on its longer side"
    [ "$(long_side "$thumb")" = 256 ] || die "$tool: $thumb is not 256 pixels on its longer side"
}

#  CPU seconds the whole machine has spent busy so far (all processes)
clk_tck=$(getconf CLK_TCK)
machine_busy () {
    awk -v hz="$clk_tck" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

#  Wait (up to 2 minutes) until other processes use less than the noise
#  limit, sampled over one second; a no-op with -q 0.
wait_quiet () {
    (( noise_limit > 0 )) || return 0
    local waited=0 b0 b1 busy
    while (( waited < 120 )); do
        b0=$(machine_busy)
        sleep 1
        b1=$(machine_busy)
        busy=$(awk -v a="$b0" -v b="$b1" -v n="$cores" 'BEGIN { printf "%.0f", (b - a) / n * 100 }')
        (( busy >= noise_limit )) || return 0
        waited=$((waited + 1))
    done
    echo "  (the machine stayed busy for 2 minutes; measuring anyway)"
}

#  One timed run: TOOL RUN_NAME LIST_FILE COUNT; sets last_wall, last_cpu
#  (user+sys seconds of the tool and all its children) and last_other (the
#  share of the machine other processes used meanwhile, in per cent: a
#  benchmark on a busy machine measures the other work too).
timed_run () {
    local tool=$1 name=$2 list_file=$3 count=$4
    local out="$work/out-$tool-$name" log="$work/log-$tool-$name"
    local cmd=()
    rm -rf "$out"
    mkdir -p "$out"
    "command_$tool" "$out" "$list_file"
    sync                    #  the previous run's writes are not this run's cost
    local t0 t1 b0 b1 rc=0
    b0=$(machine_busy)
    t0=$(date +%s%N)
    /usr/bin/time -f 'cpu %U %S' -o "$log.time" "${cmd[@]}" >"$log.stdout" 2>"$log.stderr" || rc=$?
    t1=$(date +%s%N)
    b1=$(machine_busy)
    if [ "$rc" -ne 0 ]; then
        echo "process_vs_vipsthumbnail: $tool failed (exit $rc) on run $name; last lines of its stderr:" >&2
        tail -n 15 "$log.stderr" | sed 's/^/    /' >&2
        exit 1
    fi
    check_outputs "$tool" "$out" "$count" "$log"
    last_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    last_cpu=$(awk '$1 == "cpu" { printf "%.2f", $2 + $3 }' "$log.time")
    [ -n "$last_cpu" ] || die "no CPU time measured for $tool"
    last_other=$(awk -v b0="$b0" -v b1="$b1" -v c="$last_cpu" -v w="$last_wall" -v n="$cores" \
        'BEGIN { o = (b1 - b0 - c) / (w * n) * 100; if (o < 0) o = 0; printf "%.0f", o }')
    #  The last rapidphoto log is kept for profiling (duration= per job)
    if [ "$tool" = rapidphoto ]; then cp "$log.stderr" "$work/rapidphoto-last.log"; fi
    rm -rf "$out"
}

median () {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

json_string () {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

json_numbers () {
    local IFS=,
    printf '[%s]' "$*"
}

#  --------------------------------------------------------------- the runs
settings=$(env | grep '^RAPIDPHOTO_' | sort || true)
cpu_model=$(grep -m 1 '^model name' /proc/cpuinfo | sed 's/.*: //' || true)
echo "rapidphoto:     $binary"
echo "                $rp_version"
echo "vipsthumbnail:  libvips $vt_vips, $workers worker processes (xargs -P $workers, $batch photos each)," \
     "VIPS_CONCURRENCY=$peer_concurrency"
echo "libvips:        rapidphoto $rp_vips, vipsthumbnail $vt_vips"
if [ "$source_kind" = synthetic ]; then
    echo "photos:         $photos_n SYNTHETIC 12 MP JPEGs (the test corpus was not used)," \
         "$(( photo_bytes / photos_n / 1024 )) KiB average"
else
    echo "photos:         $photos_n real 12 MP camera JPEGs (${sources[*]##*/}, alternating," \
         "byte-unique copies), $(( photo_bytes / photos_n / 1024 )) KiB average"
fi
echo "cores:          $cores (${cpu_model:-unknown CPU})"
echo "runs:           $runs per tool, alternating order, median counts"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average:   $load_before (1, 5, 15 min, before the warm-up)"
if [ -n "$settings" ]; then
    echo "settings:       $(tr '\n' ' ' <<<"$settings")"
fi
echo

#  Warm-up: the photos into the page cache, then each tool on a few of them
#  (this also proves both tools read the byte-unique copies)
cat "${photos[@]}" >/dev/null
warm_n=$(( photos_n < 4 ? photos_n : 4 ))
head -z -n "$warm_n" "$work/photos.list" >"$work/warm.list"
tools=(rapidphoto vipsthumbnail vipsthumbnail_per_file)
for tool in "${tools[@]}"; do
    wait_quiet
    timed_run "$tool" warmup "$work/warm.list" "$warm_n"
done

declare -A walls cpus others
max_other=0
repeated=0
for ((run = 1; run <= runs; run++)); do
    if (( run % 2 )); then order=(rapidphoto vipsthumbnail vipsthumbnail_per_file)
    else order=(vipsthumbnail_per_file vipsthumbnail rapidphoto); fi
    for tool in "${order[@]}"; do
        for ((attempt = 0; ; attempt++)); do
            wait_quiet
            timed_run "$tool" "$run" "$work/photos.list" "$photos_n"
            (( noise_limit > 0 && last_other > noise_limit && attempt < retries )) || break
            printf '  run %d  %-22s wall %7.3f s  cpu %7.2f s  other processes %3d%% of the machine: repeated\n' \
                "$run" "$tool" "$last_wall" "$last_cpu" "$last_other"
            repeated=$((repeated + 1))
        done
        walls[$tool]+="$last_wall "
        cpus[$tool]+="$last_cpu "
        others[$tool]+="$last_other "
        (( last_other <= max_other )) || max_other=$last_other
        printf '  run %d  %-22s wall %7.3f s  cpu %7.2f s  other processes %3d%% of the machine\n' \
            "$run" "$tool" "$last_wall" "$last_cpu" "$last_other"
    done
done
echo

#  -------------------------------------------------------------- the report
declare -A med_wall med_cpu rate cpu_per_photo
for tool in "${tools[@]}"; do
    # shellcheck disable=SC2086
    med_wall[$tool]=$(median ${walls[$tool]})
    # shellcheck disable=SC2086
    med_cpu[$tool]=$(median ${cpus[$tool]})
    rate[$tool]=$(awk -v n="$photos_n" -v w="${med_wall[$tool]}" 'BEGIN { printf "%.2f", n / w }')
    cpu_per_photo[$tool]=$(awk -v n="$photos_n" -v c="${med_cpu[$tool]}" 'BEGIN { printf "%.3f", c / n }')
done
ratio=$(awk -v a="${rate[rapidphoto]}" -v b="${rate[vipsthumbnail]}" 'BEGIN { printf "%.2f", a / b }')
pass=$(awk -v r="$ratio" -v g="$GOAL" 'BEGIN { print (r >= g) ? "true" : "false" }')
ratio_per_file=$(awk -v a="${rate[rapidphoto]}" -v b="${rate[vipsthumbnail_per_file]}" 'BEGIN { printf "%.2f", a / b }')
pass_per_file=$(awk -v r="$ratio_per_file" -v g="$GOAL" 'BEGIN { print (r >= g) ? "true" : "false" }')

printf '%-22s  %13s  %9s  %12s\n' tool "median wall s" "photos/s" "CPU s/photo"
for tool in "${tools[@]}"; do
    printf '%-22s  %13.3f  %9.2f  %12.3f\n' "$tool" "${med_wall[$tool]}" "${rate[$tool]}" "${cpu_per_photo[$tool]}"
done
echo
if (( repeated > 0 )); then
    echo "$repeated run(s) were repeated because other processes used more than ${noise_limit}% of the machine."
fi
warn_at=$noise_limit
(( warn_at > 0 )) || warn_at=10
if (( max_other > warn_at )); then
    echo "WARNING: other processes used up to ${max_other}% of the machine during the runs;" \
         "wall times are unreliable, CPU s per photo less so. Run again on a quiet machine."
fi
for peer in vipsthumbnail vipsthumbnail_per_file; do
    if [ "$peer" = vipsthumbnail ]; then r=$ratio; p=$pass; else r=$ratio_per_file; p=$pass_per_file; fi
    echo "ratio rapidphoto/$peer (photos/s): ${r}x"
    if [ "$p" = true ]; then
        echo "PASS: rapidphoto is ${r}x $peer, the goal is at least ${GOAL}x"
    else
        echo "FAIL: rapidphoto is ${r}x $peer, the goal is at least ${GOAL}x"
    fi
done

#  ---------------------------------------------------------------- the JSON
mkdir -p "$(dirname "$results")"
settings_json=
while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    settings_json+="${settings_json:+, }$(json_string "$key"): $(json_string "$value")"
done <<<"$settings"
tool_json () {
    local tool=$1
    # shellcheck disable=SC2086
    printf '{"wall_s": %s, "cpu_s": %s, "other_processes_percent": %s, "median_wall_s": %s, "median_cpu_s": %s, "photos_per_s": %s, "cpu_s_per_photo": %s}' \
        "$(json_numbers ${walls[$tool]})" "$(json_numbers ${cpus[$tool]})" "$(json_numbers ${others[$tool]})" "${med_wall[$tool]}" \
        "${med_cpu[$tool]}" "${rate[$tool]}" "${cpu_per_photo[$tool]}"
}
cat >"$results.tmp" <<EOF
{
  "bench": "process_vs_vipsthumbnail",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"cores": $cores, "load_average_before": $(json_string "$load_before"), "max_other_processes_percent": $max_other, "cpu": $(json_string "${cpu_model:-unknown}"), "kernel": $(json_string "$(uname -r)")},
  "versions": {"rapidphoto": $(json_string "$rp_version"), "rapidphoto_libvips": $(json_string "$rp_vips"), "vipsthumbnail_libvips": $(json_string "$vt_vips")},
  "photos": {"n": $photos_n, "source": "$source_kind", "average_bytes": $(( photo_bytes / photos_n ))},
  "r": $runs,
  "noise_limit_percent": $noise_limit,
  "runs_repeated_for_noise": $repeated,
  "vipsthumbnail_setup": {"workers": $workers, "batch": $batch, "vips_concurrency": $(json_string "$peer_concurrency")},
  "rapidphoto_settings": {$settings_json},
  "rapidphoto": $(tool_json rapidphoto),
  "vipsthumbnail": $(tool_json vipsthumbnail),
  "vipsthumbnail_per_file": $(tool_json vipsthumbnail_per_file),
  "ratio_photos_per_s": $ratio,
  "ratio_photos_per_s_per_file": $ratio_per_file,
  "goal": $GOAL,
  "pass": $pass,
  "pass_per_file": $pass_per_file
}
EOF
mv "$results.tmp" "$results"
echo "results: $results"
