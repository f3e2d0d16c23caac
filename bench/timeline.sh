#!/usr/bin/env bash
#  bench/timeline.sh: a page of 100 of the timeline (GET /api/v1/photos
#  ?sort=taken_at) from a library of 100,000 photos, through real HTTP to a
#  running `rapidphoto serve`, on SQLite and on PostgreSQL.
#
#  The library: a fresh database made by `rapidphoto migrate` (so the V8
#  triggers and indexes are the real ones), one user, then N photo rows
#  (default 100,000) inserted in bulk SQL in one transaction: 90% with a
#  date taken spread over 2010..2025 (half of them with an offset from
#  -08:00 to +09:00, the rest without), 10% without; upload times spread
#  over the last year; 2% failed, the rest complete; every 50th tagged
#  "trip". The triggers fill taken_sort as EXIF commits would. Then serve
#  starts on it (SQLite in a temporary data folder; PostgreSQL in a fresh
#  database on the server given), and bench/timeline.py measures, per
#  scenario, the latency of each request on one keep-alive connection:
#    created_first    sort=created_at, first page (as before this change)
#    taken_first      sort=taken_at, first page
#    taken_year       sort=taken_at&from=2018-01-01&to=2019-01-01
#    taken_month      sort=taken_at&from=2016-06-01&to=2016-07-01
#    taken_status     sort=taken_at&status=complete (the status index)
#    taken_tag        sort=taken_at&tag=trip (1 photo in 50)
#    taken_walk       sort=taken_at, every page of the library through its
#                     cursors, 1,000 pages deep: the deep cursors
#    taken_walk_range the same within from=2012-01-01&to=2020-01-01
#  Each first-page scenario is asked R times (default 200) after 10
#  unmeasured warm-up requests; p50, p95, p99 and max in ms. The bar: p95 <
#  50 ms for every scenario but taken_tag (PASS/FAIL), which is reported
#  only: a tag filter has no index of its own (an EXISTS per row, as in the
#  created_at list). The load average is recorded before and after, for a
#  shared machine. Report: bench/results/timeline.json.
#
#  Usage: bash bench/timeline.sh [-b RAPIDPHOTO] [-n PHOTOS] [-r REPEATS]
#             [-p POSTGRESQL_URL | -P] [-j RESULTS.json] [-k]
#    -b  the rapidphoto binary (default build/rapidphoto)
#    -n  photos in the library (default 100000)
#    -r  requests per first-page scenario (default 200)
#    -p  a PostgreSQL server to bench on too (default $RP_TEST_PG_URL); the
#        schema bench_timeline is made afresh in its database and dropped at
#        the end
#    -P  SQLite only
#    -j  the JSON report (default bench/results/timeline.json)
#    -k  keep the temporary folder (data, serve.log) and say where
#  Exit status: 0 every p95 under the bar, 1 one over or an error, 2 usage.
#  Needs: bash, python3, curl, sqlite3 (CLI), psql for PostgreSQL.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

binary="$repo/build/rapidphoto"
photos=100000
repeats=200
pg_url="${RP_TEST_PG_URL:-}"
results="$repo/bench/results/timeline.json"
keep=0
die () { echo "timeline.sh: $*" >&2; exit 1; }
while getopts "b:n:r:p:Pj:kh" opt; do
    case $opt in
        b) binary=$OPTARG ;;
        n) photos=$OPTARG ;;
        r) repeats=$OPTARG ;;
        p) pg_url=$OPTARG ;;
        P) pg_url= ;;
        j) results=$OPTARG ;;
        k) keep=1 ;;
        h) sed -n '2,41p' "$0" | sed 's/^#  \{0,1\}//'; exit 0 ;;
        *) exit 2 ;;
    esac
done
case $binary in /*) ;; *) binary="$PWD/$binary" ;; esac
[ -x "$binary" ] || die "no rapidphoto binary at $binary (build it, or pass -b)"
[[ $photos =~ ^[0-9]+$ ]] && [ "$photos" -ge 1000 ] || { echo "timeline.sh: -n: at least 1000" >&2; exit 2; }
[[ $repeats =~ ^[0-9]+$ ]] && [ "$repeats" -ge 20 ] || { echo "timeline.sh: -r: at least 20" >&2; exit 2; }

work=$(mktemp -d /tmp/rp-bench-timeline-XXXXXX)
serve_pid=
pg_db_made=
cleanup () {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
    fi
    if [ -n "$pg_db_made" ]; then
        psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS bench_timeline CASCADE" >/dev/null 2>&1 || true
    fi
    if [ "$keep" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port () { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

#  The rows, in SQL both backends take: $1 user id, $2 rows. Each photo's
#  numbers come from its index i by fixed arithmetic, so every run (and
#  both backends) holds the same library.
#    taken_at: 2010-01-01 + (i * 7919 mod 5,000 days) + (i * 104729 mod 86,400) s
#    offset:   i mod 2 = 0: "(i mod 18) - 8" hours (-08:00..+09:00); else none
#    none:     i mod 10 = 3
#    created:  now - (i * 0.3 s): the newest first is i = 1
bulk_sqlite () {
    cat <<EOF
PRAGMA journal_mode = WAL;
BEGIN;
INSERT INTO batches (id, user_id, created_at) VALUES ('benchbatch', '$1', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, bytes, content_type, width, height,
                    taken_at, attempts, next_attempt_at, created_at, updated_at)
SELECT printf ('%032x', i), '$1', 'benchbatch', 'IMG_' || i || '.jpg',
       CASE WHEN i % 50 = 7 THEN 'failed' ELSE 'complete' END,
       printf ('%064x', i), 2000000, 'image/jpeg', 4000, 3000,
       CASE WHEN i % 10 = 3 THEN NULL
            ELSE strftime ('%Y-%m-%dT%H:%M:%S', '2010-01-01', '+' || ((i * 7919) % 5000) || ' days',
                           '+' || ((i * 104729) % 86400) || ' seconds')
                 || CASE WHEN i % 2 = 0 THEN printf ('%+03d:00', (i % 18) - 8) ELSE '' END END,
       1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
       strftime ('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i * 0.3) || ' seconds'),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM n;
WITH RECURSIVE n (i) AS (SELECT 50 UNION ALL SELECT i + 50 FROM n WHERE i + 50 <= $2)
INSERT INTO tags (photo_id, tag) SELECT printf ('%032x', i), 'trip' FROM n;
COMMIT;
ANALYZE;
EOF
}
bulk_pg () {
    cat <<EOF
BEGIN;
INSERT INTO batches (id, user_id) VALUES ('benchbatch', '$1');
INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, bytes, content_type, width, height,
                    taken_at, attempts, next_attempt_at, created_at, updated_at)
SELECT lpad (to_hex (i), 32, '0'), '$1', 'benchbatch', 'IMG_' || i || '.jpg',
       CASE WHEN i % 50 = 7 THEN 'failed' ELSE 'complete' END,
       lpad (to_hex (i), 64, '0'), 2000000, 'image/jpeg', 4000, 3000,
       CASE WHEN i % 10 = 3 THEN NULL
            ELSE to_char (timestamp '2010-01-01' + ((i * 7919) % 5000) * interval '1 day'
                          + ((i::bigint * 104729) % 86400) * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS')
                 || CASE WHEN i % 2 = 0
                         THEN CASE WHEN (i % 18) - 8 < 0 THEN '-' ELSE '+' END
                              || lpad (abs ((i % 18) - 8)::text, 2, '0') || ':00'
                         ELSE '' END END,
       1, now (), now () - i * interval '300 milliseconds', now ()
FROM generate_series (1, $2) AS i;
INSERT INTO tags (photo_id, tag) SELECT lpad (to_hex (i), 32, '0'), 'trip' FROM generate_series (50, $2, 50) AS i;
COMMIT;
ANALYZE;
EOF
}

await () {
    for _ in $(seq 1 300); do
        curl -sf "$2" >/dev/null 2>&1 && return 0
        kill -0 "$1" 2>/dev/null || { tail -n 20 "$work/serve.log" >&2; die "serve exited at start"; }
        sleep 0.1
    done
    die "serve is not ready after 30 s"
}

#  One backend: $1 name, $2 db url ("" for SQLite in the data folder)
bench () {
    local name=$1 url=$2
    local data="$work/$name"
    mkdir -p "$data"
    export RAPIDPHOTO_DATA_DIR="$data"
    local port; port=$(free_port)
    export RAPIDPHOTO_HTTP_LISTEN="127.0.0.1:$port"
    export RAPIDPHOTO_BROKER_FRONTEND="tcp://127.0.0.1:$(free_port)"
    export RAPIDPHOTO_BROKER_BACKEND="tcp://127.0.0.1:$(free_port)"
    unset RAPIDPHOTO_CONFIG
    if [ -n "$url" ]; then export RAPIDPHOTO_DB_URL="$url"; else unset RAPIDPHOTO_DB_URL; fi
    "$binary" migrate >"$work/$name-migrate.log" 2>&1 || { cat "$work/$name-migrate.log" >&2; die "$name: migrate failed"; }
    "$binary" user add bench --password-stdin <<<"bench password $$" >"$work/$name-user.log" 2>&1 \
        || { cat "$work/$name-user.log" >&2; die "$name: cannot add the user"; }
    local token; token=$("$binary" token bench 2>"$work/$name-token.log") || die "$name: cannot make a token"
    local started=$SECONDS user_id
    if [ -n "$url" ]; then
        user_id=$(psql -qtA "$url" -c "SELECT id FROM users WHERE name = 'bench'")
        bulk_pg "$user_id" "$photos" | psql -q -v ON_ERROR_STOP=1 "$url" >"$work/$name-bulk.log" 2>&1 \
            || { cat "$work/$name-bulk.log" >&2; die "$name: bulk insert failed"; }
    else
        user_id=$(sqlite3 "$data/rapidphoto.db" "SELECT id FROM users WHERE name = 'bench'")
        bulk_sqlite "$user_id" "$photos" | sqlite3 -bail "$data/rapidphoto.db" >"$work/$name-bulk.log" 2>&1 \
            || { cat "$work/$name-bulk.log" >&2; die "$name: bulk insert failed"; }
    fi
    echo "$name: $photos photos in $((SECONDS - started)) s"
    "$binary" serve >"$work/serve-$name.log" 2>&1 &
    serve_pid=$!
    await "$serve_pid" "http://127.0.0.1:$port/readyz"
    python3 "$script_dir/timeline.py" --base "http://127.0.0.1:$port" --token "$token" --backend "$name" \
        --photos "$photos" --repeats "$repeats" --json "$work/$name.json"
    kill -TERM "$serve_pid"
    wait "$serve_pid" || die "$name: serve exited with $?"
    serve_pid=
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "timeline bench: $("$binary" --version 2>&1 | head -n 1), $(nproc) cores, $photos photos, $repeats requests per first page"
echo "load average before: $load_before"
bench sqlite ""
parts=("$work/sqlite.json")
if [ -n "$pg_url" ]; then
    psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS bench_timeline CASCADE; CREATE SCHEMA bench_timeline" >/dev/null
    pg_db_made=1
    #  The same database, the new schema first on the search path
    case $pg_url in *\?*) bench_url="$pg_url&" ;; *) bench_url="$pg_url?" ;; esac
    bench_url="${bench_url}options=-csearch_path%3Dbench_timeline"
    bench postgresql "$bench_url"
    parts+=("$work/postgresql.json")
else
    echo "postgresql: skipped (no -p URL and RP_TEST_PG_URL unset)"
fi
mkdir -p "$(dirname "$results")"
python3 - "$results" "$("$binary" --version 2>&1 | head -n 1)" "$(nproc)" "$load_before" "${parts[@]}" <<'EOF'
import json, sys
out, version, cores, load_before, parts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5:]
runs = [json.load(open(p)) for p in parts]
report = {"version": version, "cores": cores, "bar_p95_ms": 50, "backends": runs,
          "loadavg_before": load_before, "loadavg_after": open("/proc/loadavg").read().split()[:3],
          "pass": all(r["pass"] for r in runs)}
json.dump(report, open(out, "w"), indent=2)
print("load average before: %s, after: %s" % (" ".join(load_before), " ".join(report["loadavg_after"])))
print("report: " + out)
print("PASS" if report["pass"] else "FAIL", "(p95 < 50 ms for every scenario but taken_tag, on every backend)")
sys.exit(0 if report["pass"] else 1)
EOF
