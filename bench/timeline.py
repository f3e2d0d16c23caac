#!/usr/bin/env python3
"""bench/timeline.py: the timeline's latency through real HTTP (bench/timeline.sh
runs it against a serve it filled; it works against any serve and token).

One keep-alive connection (http.client), one request at a time; each
latency is from sending the request to the last byte of the answer read.
Scenarios and the bar are in bench/timeline.sh. A wrong answer (not 200,
a page not full while a next_cursor says there is more, the walk not
covering the library) fails the run: a fast wrong answer is no answer.
"""
import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse

BAR_MS = 50.0
WALK_PAGES = 1000

FIRST_PAGES = [
    ("created_first", "sort=created_at&limit=100"),
    ("taken_first", "sort=taken_at&limit=100"),
    ("taken_year", "sort=taken_at&limit=100&from=2018-01-01&to=2019-01-01"),
    ("taken_month", "sort=taken_at&limit=100&from=2016-06-01&to=2016-07-01"),
    ("taken_status", "sort=taken_at&limit=100&status=complete"),
    ("taken_tag", "sort=taken_at&limit=100&tag=trip"),
]
#  Reported, not held to the bar: the tag filter is an EXISTS per row of the
#  user's index (as in the created_at list), no index of its own
OUTSIDE_BAR = {"taken_tag"}
WALKS = [
    ("taken_walk", "sort=taken_at&limit=100"),
    ("taken_walk_range", "sort=taken_at&limit=100&from=2012-01-01&to=2020-01-01"),
]


class Client:
    def __init__(self, base, token):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Authorization": "Bearer " + token}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def get(self, query):
        started = time.perf_counter()
        self.conn.request("GET", "/api/v1/photos?" + query, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        ms = (time.perf_counter() - started) * 1000.0
        if response.status != 200:
            raise SystemExit("timeline.py: %s: HTTP %d: %s" % (query, response.status, body[:300]))
        return ms, json.loads(body)


def summary(samples):
    ordered = sorted(samples)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(pct(95), 2),
            "p99_ms": round(pct(99), 2), "max_ms": round(ordered[-1], 2)}


def check_page(name, page):
    items, cursor = page["items"], page["next_cursor"]
    if cursor and len(items) != 100:
        raise SystemExit("timeline.py: %s: %d items and a next_cursor" % (name, len(items)))
    return items, cursor


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--photos", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    client = Client(args.base, args.token)
    scenarios = []
    for name, query in FIRST_PAGES:
        for _ in range(10):
            client.get(query)
        samples = []
        count = None
        for _ in range(args.repeats):
            ms, page = client.get(query)
            items, _ = check_page(name, page)
            count = len(items)
            samples.append(ms)
        scenarios.append(dict(name=name, query=query, items=count, **summary(samples)))
    for name, query in WALKS:
        samples, seen, cursor, pages = [], 0, None, 0
        while pages < WALK_PAGES:
            ms, page = client.get(query + ("&cursor=" + urllib.parse.quote(cursor) if cursor else ""))
            items, cursor = check_page(name, page)
            samples.append(ms)
            seen += len(items)
            pages += 1
            if not cursor:
                break
        if name == "taken_walk" and seen != min(args.photos, WALK_PAGES * 100):
            raise SystemExit("timeline.py: the walk saw %d photos of %d" % (seen, args.photos))
        scenarios.append(dict(name=name, query=query, pages=pages, items=seen, **summary(samples)))
    for s in scenarios:
        s["under_bar"] = s["name"] not in OUTSIDE_BAR
    passed = all(s["p95_ms"] < BAR_MS for s in scenarios if s["under_bar"])
    report = {"backend": args.backend, "photos": args.photos, "scenarios": scenarios, "pass": passed}
    with open(args.json, "w") as out:
        json.dump(report, out, indent=2)
    print("%-12s %-17s %7s %8s %8s %8s %8s" % ("backend", "scenario", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"))
    for s in scenarios:
        print("%-12s %-17s %7d %8.2f %8.2f %8.2f %8.2f%s" % (args.backend, s["name"], s["n"], s["p50_ms"],
                                                           s["p95_ms"], s["p99_ms"], s["max_ms"],
                                                           "" if s["under_bar"] else "  (not held to the bar)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
