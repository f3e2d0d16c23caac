#!/usr/bin/env bash
#  bench/load.sh: start a fresh `rapidphoto serve`, drive it with rp_load
#  (bench/load.c) through one scenario, stop it.
#
#  A temporary data folder (SQLite, local disk), free ports for HTTP and the
#  broker, a user "bench" and a token from `rapidphoto token`; the engine's
#  pid goes to rp_load for its CPU and memory figures. RAPIDPHOTO_* settings
#  in the environment reach serve as usual (printed and recorded).
#
#  Scenarios (photos, clients, what):
#    brief   100 x ~2 MB, 100 clients: real 8 MP phone JPEGs from the corpus
#            (apple_iphone6_gps.jpg 1.96 MB, hmd_nokia8.3_gps.jpg 2.19 MB);
#            also checks the issue's bar: all complete in < 10 s, peak RSS < 300 MB
#    12mp    1,000 x 12 MP camera JPEGs (xiaomi_mi9t 4.1 MB, olympus_e-p3 2.9 MB), 50 clients
#    20mb    50 x ~21 MB JPEGs (the xiaomi photo enlarged to 63 MP at Q 100 with vips), 25 clients
#    sse     the brief's uploads with 1,000 idle event streams open meanwhile
#    smoke   10 small JPEGs (made with vips), 5 clients: what the ctest runs
#  Each source is made unique per photo by rp_load (a COM segment), so
#  deduplication skips nothing. Without the corpus (../shared/testdata),
#  synthetic JPEGs of the same pixel size are made with vips, and the
#  output says so.
#
#  Roles (-r): `serve` (default) runs everything in one process, which
#  rp_load watches. `split` runs the two roles of a deployment split in two
#  (deploy/ecs): a `pipeline` started first and a `gateway` with no broker
#  (broker.frontend empty, as its task definition says) on one data
#  folder; rp_load watches the gateway, and the pipeline's peak resident
#  size (VmHWM) is read when the run ends and added to the report
#  ("pipeline_vm_hwm_mb"), for sizing each role's task.
#
#  S3 mode (-A): the stand-ins of tools/aws/standins.mjs (s3rver, bucket
#  "photos") started on free ports beside serve, and serve switched to
#  storage.backend = s3 on them (the database stays SQLite): every upload
#  is acknowledged once the stand-in has its object. RAPIDPHOTO_STORAGE_S3_STREAM=no
#  in the environment compares with uploads sent whole.
#
#  Usage: bash bench/load.sh [-s SCENARIO] [-r serve|split] [-n PHOTOS] [-c CLIENTS]
#             [-i IDLE_SSE] [-b RAPIDPHOTO] [-l RP_LOAD] [-j RESULTS.json]
#             [-f PHOTO.jpg]... [-S] [-A] [-k] [-- RP_LOAD_OPTIONS...]
#    -s  scenario (default brief)
#    -r  roles: serve (default) or split (a gateway and a pipeline)
#    -n, -c, -i  override the scenario's photos, clients, idle event streams
#    -b  the rapidphoto binary (default build/rapidphoto)
#    -l  rp_load (default: bench/rp_load in the binary's build folder)
#    -j  the JSON report (default bench/results/load-SCENARIO.json)
#    -f  a source JPEG instead of the scenario's (repeat for several)
#    -S  synthetic photos even when the corpus is there
#    -A  S3 mode on the stand-ins (tools/bootstrap.sh --test installs them)
#    -k  keep the temporary folder (data, serve.log) and say where
#  Exit status: rp_load's (0 every threshold met, 1 missed or error), 2 usage.
#  Needs: bash, python3 (free ports), curl, libvips-tools (vips) for the
#  synthetic and 20 MB photos.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

scenario=brief
roles=serve
photos=
clients=
idle=
binary="$repo/build/rapidphoto"
rp_load=
results=
force_synthetic=0
s3=0
keep=0
given=()

die () { echo "load.sh: $*" >&2; exit 1; }
usage () {
    sed -n '/^#  Usage:/,/^#  Needs:/p' "${BASH_SOURCE[0]}" | sed 's/^#  \{0,1\}//' >&2
    exit "${1:-2}"
}

while getopts ":s:r:n:c:i:b:l:j:f:SAkh" opt; do
    case $opt in
        s) scenario=$OPTARG ;;
        r) roles=$OPTARG ;;
        n) photos=$OPTARG ;;
        c) clients=$OPTARG ;;
        i) idle=$OPTARG ;;
        b) binary=$OPTARG ;;
        l) rp_load=$OPTARG ;;
        j) results=$OPTARG ;;
        f) case $OPTARG in /*) given+=("$OPTARG") ;; *) given+=("$PWD/$OPTARG") ;; esac ;;
        S) force_synthetic=1 ;;
        A) s3=1 ;;
        k) keep=1 ;;
        h) usage 0 ;;
        :) echo "load.sh: -$OPTARG needs a value" >&2; exit 2 ;;
        *) echo "load.sh: unknown option -$OPTARG (try -h)" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
extra=("$@")
case $roles in serve|split) ;; *) echo "load.sh: -r takes serve or split, not \"$roles\"" >&2; exit 2 ;; esac

case $binary in /*) ;; *) binary="$PWD/$binary" ;; esac
[ -x "$binary" ] || die "no rapidphoto binary at $binary (build it, or pass -b)"
[ -n "$rp_load" ] || rp_load="$(dirname "$binary")/bench/rp_load"
case $rp_load in /*) ;; *) rp_load="$PWD/$rp_load" ;; esac
[ -x "$rp_load" ] || die "no rp_load at $rp_load (cmake --build builds it, or pass -l)"
[ -n "$results" ] || results="$repo/bench/results/load-$scenario.json"
case $results in /*) ;; *) results="$PWD/$results" ;; esac
for tool in python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done

testdata="$repo/../shared/testdata/images"
[ -z "${RP_TESTDATA:-}" ] || testdata="$RP_TESTDATA/images"
bounds=()
case $scenario in
    brief) n=100; c=100; i=0; want=("camera/apple_iphone6_gps.jpg" "camera/hmd_nokia8.3_gps.jpg")
           synth="3264x2448 4000x3000"; bounds=(--complete-max 10 --rss-max 300) ;;
    12mp)  n=1000; c=50; i=0; want=("large/xiaomi_mi9t_12mp_orient6.jpg" "camera/olympus_e-p3_12mp.jpg")
           synth="4000x3000 4032x3024" ;;
    20mb)  n=50; c=25; i=0; want=("large/xiaomi_mi9t_12mp_orient6.jpg"); synth="9200x6900" ;;
    sse)   n=100; c=100; i=1000; want=("camera/apple_iphone6_gps.jpg" "camera/hmd_nokia8.3_gps.jpg")
           synth="3264x2448 4000x3000" ;;
    smoke) n=10; c=5; i=0; want=(); synth="1600x1200 1200x1600" ;;
    *) echo "load.sh: unknown scenario \"$scenario\" (brief, 12mp, 20mb, sse, smoke)" >&2; exit 2 ;;
esac
[ -z "$photos" ] || n=$photos
[ -z "$clients" ] || c=$clients
[ -z "$idle" ] || i=$idle
for v in "$n" "$c"; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "photos and clients want positive numbers, not \"$v\""; done
[[ $i =~ ^[0-9]+$ ]] || die "-i wants a number, not \"$i\""

work=$(mktemp -d "${TMPDIR:-/tmp}/rpload.XXXXXX")
serve_pid=
pipeline_pid=
standins_pid=
cleanup () {
    local pid
    for pid in $serve_pid $pipeline_pid $standins_pid; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$keep" = 1 ]; then echo "load.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#  ---------------------------------------------------------------- photos
#  Blurred noise in three bands: decodes and compresses roughly like a photo
make_synthetic () {     #  out width height seed quality
    command -v vips >/dev/null || die "vips is missing (apt-get install libvips-tools)"
    local t=$work/synth band
    for band in 0 1 2; do
        vips gaussnoise "$t-n$band.v" "$2" "$3" --mean 128 --sigma 70 --seed $(( $4 * 3 + band ))
        vips gaussblur "$t-n$band.v" "$t-b$band.v" 2
    done
    vips bandjoin "$t-b0.v $t-b1.v $t-b2.v" "$t-rgb.v"
    vips cast "$t-rgb.v" "$t-u8.v" uchar
    vips copy "$t-u8.v" "$1[Q=$5]" --interpretation srgb
    rm -f "$t"-*.v
}
sources=()
source_kind=testdata
for w in "${want[@]}"; do [ -r "$testdata/$w" ] || source_kind=synthetic; done
[ "${#want[@]}" -gt 0 ] || source_kind=synthetic
[ "$force_synthetic" = 0 ] || source_kind=synthetic
if [ "${#given[@]}" -gt 0 ]; then
    source_kind=given
    sources=("${given[@]}")
elif [ "$source_kind" = testdata ]; then
    if [ "$scenario" = 20mb ]; then
        #  63 MP at Q 100: about 21 MB of real photo content
        vips resize "$testdata/${want[0]}" "$work/big.v" 2.3
        vips copy "$work/big.v" "$work/xiaomi_63mp.jpg[Q=100]"
        rm -f "$work/big.v"
        sources=("$work/xiaomi_63mp.jpg")
    else
        for w in "${want[@]}"; do sources+=("$testdata/$w"); done
    fi
else
    [ "$scenario" = smoke ] || echo "load.sh: synthetic photos (the corpus at $testdata was not used)"
    k=0
    for size in $synth; do
        k=$((k + 1))
        q=90; [ "$scenario" = 20mb ] && q=100
        make_synthetic "$work/synthetic_$size.jpg" "${size%x*}" "${size#*x}" "$k" "$q"
        sources+=("$work/synthetic_$size.jpg")
    done
fi

#  ----------------------------------------------------------------- serve
#  Random below the ephemeral range and bindable: port 0 asked twice in a
#  row can hand the same port back (the HTTP port equal to the broker's)
free_port () {
    python3 -c '
import random, socket
high = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(10000):
    port = random.randrange(10000, high if high > 11000 else 32768)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break'
}
http_port=$(free_port)
export RAPIDPHOTO_DATA_DIR="$work/data"
export RAPIDPHOTO_HTTP_LISTEN="127.0.0.1:$http_port"
export RAPIDPHOTO_BROKER_FRONTEND="tcp://127.0.0.1:$(free_port)"
export RAPIDPHOTO_BROKER_BACKEND="tcp://127.0.0.1:$(free_port)"
unset RAPIDPHOTO_DB_URL RAPIDPHOTO_CONFIG
#  One load generator is every client, at one address, as one user: the
#  gateway's per-address and per-user bounds (README, "Limits") would turn
#  most of it away. Raised for the run; they are reported with the settings.
if [ "$i" -gt 0 ] || [ "$c" -gt 200 ]; then
    export RAPIDPHOTO_HTTP_MAX_CONNECTIONS_PER_ADDRESS=0
    export RAPIDPHOTO_HTTP_MAX_STREAMS_PER_USER=$((i + 16))
    export RAPIDPHOTO_HTTP_MAX_STREAMS=$((i + 16))
    export RAPIDPHOTO_HTTP_MAX_CONNECTIONS=$((i + c + 1024))
fi
mkdir -p "$work/data"
if [ "$s3" = 1 ]; then
    [ -d "$repo/tools/aws/node_modules/s3rver" ] || die "the S3 stand-in is missing: run tools/bootstrap.sh --test"
    s3_port=$(free_port)
    node "$repo/tools/aws/standins.mjs" --port "$s3_port" --sqs-port "$(free_port)" --dir "$work/s3" \
        >"$work/standins.log" 2>&1 &
    standins_pid=$!
    for _ in $(seq 1 150); do
        grep -q '^ready' "$work/standins.log" 2>/dev/null && break
        kill -0 "$standins_pid" 2>/dev/null || { cat "$work/standins.log" >&2; die "the stand-ins exited at start"; }
        sleep 0.1
    done
    grep -q '^ready' "$work/standins.log" || die "the stand-ins are not ready after 15 s ($work/standins.log)"
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3_port"
    export RAPIDPHOTO_STORAGE_BACKEND=s3 RAPIDPHOTO_STORAGE_S3_BUCKET=photos
fi
settings=$(env | grep '^RAPIDPHOTO_' | grep -v -e '^RAPIDPHOTO_DATA_DIR=' -e '^RAPIDPHOTO_HTTP_LISTEN=' \
           -e '^RAPIDPHOTO_BROKER_FRONTEND=' -e '^RAPIDPHOTO_BROKER_BACKEND=' | sort || true)

"$binary" user add bench --password-stdin <<<"bench password $$" >"$work/user.log" 2>&1 \
    || { cat "$work/user.log" >&2; die "cannot create the user"; }
token=$("$binary" token bench 2>"$work/token.log") || { cat "$work/token.log" >&2; die "cannot make a token"; }

#  The gateway may hold many sockets (idle streams): the same limit as ours
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
#  await NAME PID LOG URL: until URL answers 2xx (30 s at most), or NAME exits
await () {
    for _ in $(seq 1 300); do
        curl -sf "$4" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; die "$1 exited at start"; }
        sleep 0.1
    done
    curl -sf "$4" >/dev/null || { tail -n 20 "$3" >&2; die "$1 is not ready after 30 s"; }
}
if [ "$roles" = split ]; then
    #  The pipeline first (it applies the migrations the gateway then finds),
    #  its /healthz on a port of its own; then the gateway, without a broker
    health_port=$(free_port)
    RAPIDPHOTO_HTTP_LISTEN="127.0.0.1:$health_port" "$binary" pipeline >"$work/pipeline.log" 2>&1 &
    pipeline_pid=$!
    await pipeline "$pipeline_pid" "$work/pipeline.log" "http://127.0.0.1:$health_port/healthz"
    RAPIDPHOTO_BROKER_FRONTEND= "$binary" gateway >"$work/serve.log" 2>&1 &
    serve_pid=$!
    await gateway "$serve_pid" "$work/serve.log" "http://127.0.0.1:$http_port/readyz"
else
    "$binary" serve >"$work/serve.log" 2>&1 &
    serve_pid=$!
    await serve "$serve_pid" "$work/serve.log" "http://127.0.0.1:$http_port/readyz"
fi

echo "load.sh: scenario $scenario, $roles pid $serve_pid${pipeline_pid:+ (pipeline pid $pipeline_pid)} on port $http_port, $(nproc) cores," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "         $("$binary" --version 2>&1 | head -n 1)"
[ -z "$settings" ] || echo "         settings: $(tr '\n' ' ' <<<"$settings")"
mkdir -p "$(dirname "$results")"
source_args=()
for s in "${sources[@]}"; do source_args+=(--source "$s"); done
rc=0
"$rp_load" --url "http://127.0.0.1:$http_port" --token "$token" --pid "$serve_pid" \
    --photos "$n" --clients "$c" --idle-sse "$i" --label "$scenario" --json "$results.tmp" \
    "${source_args[@]}" "${bounds[@]}" "${extra[@]}" || rc=$?
[ -s "$results.tmp" ] || { tail -n 20 "$work/serve.log" >&2; die "rp_load wrote no report (exit $rc)"; }
pipeline_hwm=
if [ -n "$pipeline_pid" ]; then
    pipeline_hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$pipeline_pid/status" 2>/dev/null || true)
    echo "load.sh: the pipeline's peak resident size (VmHWM): ${pipeline_hwm:-unknown} MB"
fi

#  The report, with the machine and the settings beside it
python3 - "$results.tmp" "$results" "$source_kind" "$settings" "$(cut -d' ' -f1-3 /proc/loadavg)" \
          "$("$binary" --version 2>&1 | head -n 1)" "$(nproc)" "$roles" "$pipeline_hwm" <<'EOF'
import json, sys
src, dst, kind, settings, load, version, cores, roles, pipeline_hwm = sys.argv[1:10]
report = json.load(open(src))
report["roles"] = roles
if pipeline_hwm:
    report["pipeline_vm_hwm_mb"] = float(pipeline_hwm)
report["source_kind"] = kind
report["machine"] = {"cores": int(cores), "load_average_after": load}
report["rapidphoto"] = version
report["settings"] = dict(line.split("=", 1) for line in settings.splitlines() if "=" in line)
json.dump(report, open(dst, "w"), indent=2, sort_keys=True)
EOF
rm -f "$results.tmp"

#  Stop each process as an operator would (SIGTERM) and judge its exit: a
#  crash or a sanitizer report fails the run, whatever the figures said
#  stop NAME PID LOG: 0 when it exited cleanly
stop () {
    local name=$1 pid=$2 log=$3 status=0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "load.sh: $name did not stop within 30 s of SIGTERM" >&2
        return 1
    fi
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "load.sh: $name exited with status $status" >&2
        return 1
    fi
    if grep -q -e 'AddressSanitizer' -e 'runtime error' -e 'LeakSanitizer' "$log"; then
        echo "load.sh: $name reported sanitizer errors:" >&2
        grep -A 12 -e 'AddressSanitizer' -e 'runtime error' "$log" | head -n 40 >&2
        return 1
    fi
    if grep -q ' ERROR ' "$log"; then
        echo "load.sh: $name logged errors (first lines):" >&2
        grep ' ERROR ' "$log" | head -n 5 >&2
    fi
}
stop "$([ "$roles" = split ] && echo gateway || echo serve)" "$serve_pid" "$work/serve.log" || rc=1
serve_pid=
if [ -n "$pipeline_pid" ]; then
    stop pipeline "$pipeline_pid" "$work/pipeline.log" || rc=1
    pipeline_pid=
fi
echo "results: $results"
exit "$rc"
