#!/usr/bin/env bash
#  bench/phash_search.sh: near-duplicate search over 100,000 or 1,000,000 stored
#  hashes in a real database, through the band indexes (engine/phash.h).
#
#  bench/phash_search.sh sqlite [COUNT] [QUERIES]
#  bench/phash_search.sh 'postgresql://...' [COUNT] [QUERIES]
#                                    (default 1000000 photos, 2000 queries)
#
#  The library: one user, COUNT complete photos "p0000000".., each with a
#  random 64-bit hash (uniform, seeded), except that every 1000th photo
#  "pN000" has a twin "pN001" 1 to 8 bits away. Loaded with the sqlite3
#  CLI or psql (COPY) after `rapidphoto migrate` made the schema, in a
#  temporary folder (SQLite) or a fresh schema "bench_phash" (PostgreSQL).
#  bench/rp_phash_search then runs the queries through rp_db_photo_similar
#  and prints time per query (p50/p95/max), the candidates the band
#  indexes handed back per query against COUNT, and whether every planted
#  twin was found.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${RP_BUILD:-$here/../build}"
target="${1:?sqlite or a postgresql:// URL}"
count="${2:-1000000}"
queries="${3:-2000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$count" > "$work/photos.csv" <<'PY'
import random, sys
count = int(sys.argv[1])
rng = random.Random(14)
out = sys.stdout
prev = 0
for n in range(count):
    h = rng.getrandbits(64)
    if n % 1000 == 1:                   #  the twin of photo n - 1
        h = prev
        for bit in rng.sample(range(64), 1 + (n // 1000) % 8):
            h ^= 1 << bit
    prev = h
    b = [(h >> s) & 0x1fffff for s in (43, 22, 1)]     #  engine/phash.h's bands
    out.write(f"p{n:07d},{n:064x},{h:016x},{b[0]},{b[1]},{b[2]}\n")
PY
user="0123456789abcdef0123456789abcdef"
if [ "$target" = sqlite ]; then
    url="sqlite:$work/bench.db"
    RAPIDPHOTO_DB_URL="$url" "$build/rapidphoto" migrate >/dev/null
    sqlite3 "$work/bench.db" <<SQL
.mode csv
CREATE TEMP TABLE load (id, sha256, phash, b0, b1, b2);
.import $work/photos.csv load
BEGIN;
INSERT INTO users (id, name, password_hash, created_at) VALUES ('$user', 'bench', 'x', '2026-12-02T00:00:00.000Z');
INSERT INTO batches (id, user_id, created_at) VALUES ('bench', '$user', '2026-12-02T00:00:00.000Z');
INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, bytes, next_attempt_at, created_at,
                    updated_at, phash, phash_b0, phash_b1, phash_b2)
SELECT id, '$user', 'bench', id || '.jpg', 'complete', sha256, 1000, '2026-12-02T00:00:00.000Z',
       '2026-12-02T00:00:00.000Z', '2026-12-02T00:00:00.000Z', phash, CAST (b0 AS INTEGER),
       CAST (b1 AS INTEGER), CAST (b2 AS INTEGER) FROM load;
COMMIT;
ANALYZE;
SQL
else
    psql -q "$target" -c "DROP SCHEMA IF EXISTS bench_phash CASCADE" -c "CREATE SCHEMA bench_phash"
    case "$target" in *\?*) url="$target&options=-csearch_path%3Dbench_phash" ;;
                      *) url="$target?options=-csearch_path%3Dbench_phash" ;; esac
    RAPIDPHOTO_DB_URL="$url" "$build/rapidphoto" migrate >/dev/null
    psql -q "$url" <<SQL
INSERT INTO users (id, name, password_hash) VALUES ('$user', 'bench', 'x');
INSERT INTO batches (id, user_id) VALUES ('bench', '$user');
CREATE TEMP TABLE load (id text, sha256 text, phash text, b0 int, b1 int, b2 int);
\copy load FROM '$work/photos.csv' WITH (FORMAT csv)
INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, bytes, phash,
                    phash_b0, phash_b1, phash_b2)
SELECT id, '$user', 'bench', id || '.jpg', 'complete', sha256, 1000, phash, b0, b1, b2 FROM load;
ANALYZE photos;
SQL
fi
"$build/bench/rp_phash_search" "$url" "$user" "$count" "$queries"
