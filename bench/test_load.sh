#!/usr/bin/env bash
#  bench/test_load.sh (ctest bench_load): run the real rp_load against a
#  real `rapidphoto serve` through bench/load.sh's smoke scenario (10
#  photos, 5 clients), then check that the JSON report is sane: every photo
#  acknowledged and complete, the counts add up, the latencies and engine
#  figures are positive, the stage breakdown is there. No timing is judged.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RP_BINARY:?set RP_BINARY to the rapidphoto binary}"
: "${RP_LOAD:?set RP_LOAD to the rp_load binary}"
out=$(mktemp -d "${TMPDIR:-/tmp}/rp-test-load.XXXXXX")
trap 'rm -rf "$out"' EXIT

#  Wrong usage is refused with status 2 and a reason
rc=0
"$RP_LOAD" --photos 3 2>"$out/usage.txt" || rc=$?
[ "$rc" = 2 ] || { echo "rp_load without --url exited $rc, not 2"; exit 1; }
grep -q -- '--url' "$out/usage.txt" || { echo "the usage error does not name --url"; exit 1; }

#  Generous thresholds: this checks behaviour on a shared (or ASan) machine
rc=0
bash "$here/load.sh" -s smoke -b "$RP_BINARY" -l "$RP_LOAD" -j "$out/report.json" \
    -- --p95-max 60 --timeout 240 || rc=$?
[ -s "$out/report.json" ] || { echo "no report written (load.sh exited $rc)"; exit 1; }
cat "$out/report.json"
python3 - "$out/report.json" "$rc" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
fails = []
def check(cond, what):
    if not cond:
        fails.append(what)
p = r["photos"]
check(p["requested"] == 10, "10 photos requested")
check(p["acknowledged"] == 10, "all 10 acknowledged, got %d" % p["acknowledged"])
check(p["complete"] == 10, "all 10 complete, got %d" % p["complete"])
check(p["failed"] == 0 and p["upload_errors"] == 0 and p["unfinished"] == 0, "no failure")
check(p["duplicates"] == 0, "unique photos are not duplicates")
check(r["clients"] == 5, "5 clients")
check(r["finished"] is True, "finished before the timeout")
lat = r["ack_latency_s"]
check(0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], "ordered positive latencies: %s" % lat)
check(r["all_complete_s"] >= r["all_acknowledged_s"] > 0, "complete after acknowledged")
check(r["photos_per_s"] > 0 and r["upload_mb_per_s"] > 0, "positive throughput")
e = r["engine"]
check(e.get("pid", 0) > 0, "the engine's pid was used: %s" % e)
check(e.get("cpu_s", 0) > 0 and e.get("cpu_s_per_photo", 0) > 0, "the engine's CPU was measured")
check(e.get("vm_hwm_mb", 0) > 0 and e.get("peak_rss_mb_sampled", 0) > 0, "the engine's memory was measured")
st = r["stages"]
for stage in ("upload", "read", "hash", "exif", "jobs", "database"):
    check(stage in st and st[stage]["count"] == 10 and st[stage]["ms_per_photo"] >= 0,
          "stage %s counted for 10 photos: %s" % (stage, st.get(stage)))
check(r["failed_percent"] == 0, "0 %% failed")
check(r["pass"] is True and rc == 0, "PASS and exit 0 (exit %d)" % rc)
check(r["thresholds"]["p95_ok"] and r["thresholds"]["failed_ok"], "thresholds met")
if fails:
    print("bench_load: the report is not sane:\n  " + "\n  ".join(fails))
    sys.exit(1)
print("bench_load: report sane")
PY
