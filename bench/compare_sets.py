#!/usr/bin/env python3
"""bench/compare_sets.py: the per-camera table of `bench/compare.sh -P`.

Usage: python3 bench/compare_sets.py OUT.json SET.json...

Each SET.json is one compare.sh report (one source photo, or the mixed
set); prints a row per set (size, megapixels, photos per run, each
tool's net photos/s, process and http over sharp, the engine's CPU s per
photo), the tools' median start-up, PASS/FAIL against the bars (process
>= 1.3x, http >= 1.1x sharp on every set), and writes them all to
OUT.json.
"""
import json, os, sys
out, paths = sys.argv[1], sys.argv[2:]
sets = []
for p in paths:
    r = json.load(open(p))
    t = r["tools"]
    row = {"set": os.path.basename(p)[:-5], "photos": r["photos"], "tools": t}
    for name in ("rapidphoto", "http"):
        if name in t and "sharp" in t:
            row[name + "_over_sharp_net"] = round(t[name]["net_photos_per_s"] / t["sharp"]["net_photos_per_s"], 2)
            row[name + "_over_sharp"] = round(t[name]["photos_per_s"] / t["sharp"]["photos_per_s"], 2)
    sets.append(row)
def cell(row, tool, key, fmt):
    v = row["tools"].get(tool, {}).get(key)
    return fmt % v if v is not None else "-"
print()
print("per set, net photos/s (start-up apart; the http path from its first upload):")
print("%-44s %11s %8s %6s %8s %8s %8s %9s %9s %8s" % ("set", "size", "MP", "photos", "sharp", "process", "http",
      "process/", "http/", "CPU s/"))
print("%-44s %11s %8s %6s %8s %8s %8s %9s %9s %8s" % ("", "", "", "", "", "", "", "sharp", "sharp", "photo"))
for row in sets:
    ph = row["photos"]
    mp = ph.get("megapixels")
    cpu_mp = row["tools"].get("rapidphoto", {}).get("cpu_s_per_photo")
    print("%-44s %11s %8s %6s %8s %8s %8s %9s %9s %8s" % (
        row["set"][:44], ph.get("size", "-"), "%.2f" % mp if mp else "-", ph.get("n", "-"),
        cell(row, "sharp", "net_photos_per_s", "%.2f"), cell(row, "rapidphoto", "net_photos_per_s", "%.2f"),
        cell(row, "http", "net_photos_per_s", "%.2f"),
        "%.2fx" % row["rapidphoto_over_sharp_net"] if "rapidphoto_over_sharp_net" in row else "-",
        "%.2fx" % row["http_over_sharp_net"] if "http_over_sharp_net" in row else "-",
        "%.3f" % cpu_mp if cpu_mp else "-"))
starts = {}
for row in sets:
    for name, t in row["tools"].items():
        if t.get("startup_s") is not None:
            starts.setdefault(name, []).append(t["startup_s"])
print("start-up (median over the sets, s): " + ", ".join("%s %.3f" % (k, sorted(v)[len(v) // 2]) for k, v in starts.items()))
for name, bar in (("rapidphoto", 1.3), ("http", 1.1)):
    key = name + "_over_sharp_net"
    rows = [r for r in sets if key in r]
    if rows:
        low = min(rows, key=lambda r: r[key])
        ok = all(r[key] >= bar for r in rows)
        print("%s: %s >= %.1fx sharp on every set (lowest %.2fx, %s)" % ("PASS" if ok else "FAIL",
              "rapidphoto process" if name == "rapidphoto" else "the http path", bar, low[key], low["set"]))
json.dump({"bench": "compare-cameras", "sets": sets}, open(out, "w"), indent=2)
print("results: " + out + " (each set's: " + os.path.dirname(paths[0]) + "/)")
