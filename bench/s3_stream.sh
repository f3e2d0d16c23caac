#!/usr/bin/env bash
#  bench/s3_stream.sh: how long an upload's acknowledgement follows its last
#  byte in S3 mode, side by side: streamed to S3 while it arrives
#  (storage.s3_stream = yes: parts under streams/, then a copy to the
#  address), streamed straight to its address because the client declared
#  its SHA-256 (X-Content-SHA256: no copy), and sent whole after the last
#  byte (storage.s3_stream = no).
#
#  The S3 stand-in (tools/aws/standins.mjs, s3rver) on free ports, and for
#  each round and each setting a fresh `rapidphoto serve` (SQLite) in S3
#  mode on it; a client (python3, one socket) sends each photo at a steady
#  rate, as a phone on a good link would (-r, default 10 MB/s), one upload
#  at a time, and measures from the moment its last byte is handed to the
#  socket to the moment the 202's status line arrives. Each upload's bytes
#  are unique (a counter appended after the JPEG's end), so nothing is
#  deduplicated.
#
#  Usage: bash bench/s3_stream.sh [-b RAPIDPHOTO] [-f PHOTO] [-n UPLOADS] [-R ROUNDS]
#             [-r BYTES_PER_S] [-j RESULTS.json]
#    -f  the photo (default: the corpus's xiaomi_mi9t photo enlarged to
#        63 MP at Q 100 with vips, about 21 MB, as load.sh's 20mb)
#    -n  uploads per round and setting (default 4), -R rounds (default 3)
#  Output: a line per upload, then the medians per setting and their ratio;
#  JSON to bench/results/s3-stream.json.
#  Needs: node and tools/aws/node_modules (tools/bootstrap.sh --test),
#  python3, curl, vips.
set -euo pipefail
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
binary="$repo/build/rapidphoto"
photo=
uploads=4
rounds=3
rate=10000000
results="$repo/bench/results/s3-stream.json"
die () { echo "s3_stream.sh: $*" >&2; exit 1; }
while getopts ":b:f:n:R:r:j:h" opt; do
    case $opt in
        b) binary=$OPTARG ;;
        f) photo=$OPTARG ;;
        n) uploads=$OPTARG ;;
        R) rounds=$OPTARG ;;
        r) rate=$OPTARG ;;
        j) results=$OPTARG ;;
        h) sed -n '/^#  Usage:/,/^#  Needs:/p' "$0" | sed 's/^#  \{0,1\}//'; exit 0 ;;
        *) echo "s3_stream.sh: unknown option (try -h)" >&2; exit 2 ;;
    esac
done
case $binary in /*) ;; *) binary="$PWD/$binary" ;; esac
[ -x "$binary" ] || die "no rapidphoto binary at $binary (build it, or pass -b)"
[ -d "$repo/tools/aws/node_modules/s3rver" ] || die "the S3 stand-in is missing: run tools/bootstrap.sh --test"
for v in "$uploads" "$rounds" "$rate"; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "-n, -R and -r want positive numbers"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/rps3stream.XXXXXX")
serve_pid=
standins_pid=
cleanup () {
    for pid in $serve_pid $standins_pid; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$photo" ]; then
    src="${RP_TESTDATA:-$repo/../shared/testdata}/images/large/xiaomi_mi9t_12mp_orient6.jpg"
    [ -r "$src" ] || die "no -f photo and no corpus photo at $src"
    vips resize "$src" "$work/big.v" 2.3
    vips copy "$work/big.v" "$work/photo.jpg[Q=100]"
    rm -f "$work/big.v"
    photo="$work/photo.jpg"
fi
[ -r "$photo" ] || die "cannot read $photo"

free_port () { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3_port=$(free_port)
node "$repo/tools/aws/standins.mjs" --port "$s3_port" --sqs-port "$(free_port)" --dir "$work/s3" \
    >"$work/standins.log" 2>&1 &
standins_pid=$!
for _ in $(seq 1 150); do grep -q '^ready' "$work/standins.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/standins.log" || die "the stand-ins did not start ($(tail -n 3 "$work/standins.log"))"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3_port"
export RAPIDPHOTO_STORAGE_BACKEND=s3 RAPIDPHOTO_STORAGE_S3_BUCKET=photos
unset RAPIDPHOTO_DB_URL RAPIDPHOTO_CONFIG

#  One client upload: paced, timed from the last byte to the status line
cat >"$work/client.py" <<'EOF'
import hashlib, socket, sys, time
host, port, token, path, rate, tag, declare = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6], sys.argv[7] == "1"
data = open(path, "rb").read() + tag.encode()
digest = f"X-Content-SHA256: {hashlib.sha256(data).hexdigest()}\r\n" if declare else ""
s = socket.create_connection((host, port))
s.sendall((f"POST /api/v1/photos HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: image/jpeg\r\nX-Filename: stream-{tag}.jpg\r\nContent-Length: {len(data)}\r\n"
           f"{digest}Connection: close\r\n\r\n").encode())
chunk = 64 * 1024
start = time.monotonic()
for at in range(0, len(data), chunk):
    s.sendall(data[at:at + chunk])
    due = start + (at + chunk) / rate
    if due > time.monotonic():
        time.sleep(due - time.monotonic())
last = time.monotonic()
answer = b""
while b"\r\n" not in answer:
    got = s.recv(4096)
    if not got:
        break
    answer += got
acked = time.monotonic()
status = answer.split(b" ")[1].decode() if answer.count(b" ") else "none"
print(status, f"{last - start:.3f}", f"{acked - last:.3f}", len(data))
EOF

echo "s3_stream.sh: $(stat -c %s "$photo") bytes at $rate B/s, $uploads uploads x $rounds rounds per setting," \
     "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "              $("$binary" --version 2>&1 | head -n 1)"
: >"$work/runs.txt"
for round in $(seq 1 "$rounds"); do
    for stream in yes declared no; do
        data="$work/data-$round-$stream"
        mkdir -p "$data"
        http_port=$(free_port)
        export RAPIDPHOTO_DATA_DIR="$data" RAPIDPHOTO_HTTP_LISTEN="127.0.0.1:$http_port"
        export RAPIDPHOTO_BROKER_FRONTEND="tcp://127.0.0.1:$(free_port)"
        export RAPIDPHOTO_BROKER_BACKEND="tcp://127.0.0.1:$(free_port)"
        export RAPIDPHOTO_STORAGE_S3_STREAM=$([ "$stream" = no ] && echo no || echo yes)
        "$binary" user add bench --password-stdin <<<"bench password $$" >"$data/user.log" 2>&1 \
            || { cat "$data/user.log" >&2; die "cannot create the user"; }
        token=$("$binary" token bench 2>/dev/null)
        "$binary" serve >"$data/serve.log" 2>&1 &
        serve_pid=$!
        for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done
        curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null || { tail "$data/serve.log" >&2; die "serve not ready"; }
        for i in $(seq 1 "$uploads"); do
            read -r status sending after bytes < <(python3 "$work/client.py" 127.0.0.1 "$http_port" "$token" \
                "$photo" "$rate" "$round-$stream-$i" "$([ "$stream" = declared ] && echo 1 || echo 0)")
            [ "$status" = 202 ] || { tail "$data/serve.log" >&2; die "upload answered $status"; }
            echo "round $round  $stream  upload $i: sent in $sending s, acknowledged $after s after its last byte"
            echo "$stream $after $sending $bytes" >>"$work/runs.txt"
            #  Its processing done before the next, so that only the upload is measured
            sleep 2
        done
        kill -TERM "$serve_pid"; wait "$serve_pid" || true; serve_pid=
    done
done

mkdir -p "$(dirname "$results")"
python3 - "$work/runs.txt" "$results" "$rate" "$("$binary" --version 2>&1 | head -n 1)" \
          "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, statistics, sys, time
runs, out, rate, version, load = sys.argv[1:6]
by = {"yes": [], "declared": [], "no": []}
size = 0
for line in open(runs):
    stream, after, sending, size = line.split()
    by[stream].append(float(after))
med = {k: statistics.median(v) for k, v in by.items()}
names = {"yes": "streamed, then copied", "declared": "streamed to its address (X-Content-SHA256)",
         "no": "sent whole (s3_stream = no)"}
for k in ("yes", "declared", "no"):
    print(f"{names[k]:44}: acknowledged {med[k]:.3f} s after the last byte (median of {len(by[k])}; "
          f"min {min(by[k]):.3f}, max {max(by[k]):.3f})")
ratio = {k: med["no"] / med[k] for k in ("yes", "declared") if med[k]}
print("; ".join(f"{names[k]}: {r:.2f}x sooner than whole" for k, r in ratio.items()))
json.dump({"bench": "s3_stream", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "rapidphoto": version, "load_average_after": load, "bytes": int(size), "rate_bytes_per_s": float(rate),
           "ack_after_last_byte_s": by, "median_s": med, "whole_over": ratio},
          open(out, "w"), indent=2, sort_keys=True)
print(f"results: {out}")
EOF
