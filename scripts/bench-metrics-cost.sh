#!/usr/bin/env bash
# Usage: scripts/bench-metrics-cost.sh [ROUNDS] [SERVER] [RECEIVERS] [SIZE] [extra bench-fanout args]
# What Prometheus scraping costs the fan-out: ROUNDS (default 5) alternating pairs of
# `scripts/bench-fanout.sh SERVER RECEIVERS SIZE` (defaults: chorus 2000 64) with metrics unscraped
# (METRICS=off: the loops' counters are always kept, nobody reads them) and scraped once a second
# (METRICS=scrape), the order flipped every round. Prints each run, then per mode the medians of
# deliveries/s and server CPU µs per delivery, the ratio on/off and the load average of the runs.
# The same env as bench-fanout.sh (DURATION, WARMUP, WINDOW, CHORUS_BIN, ...).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-5}"; SERVER="${2:-chorus}"; RECEIVERS="${3:-2000}"; SIZE="${4:-64}"; shift $(( $# < 4 ? $# : 4 ))
mkdir -p bench-results
RUN="bench-results/metrics-cost-$(date +%Y%m%d-%H%M%S).jsonl"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
HEADER=1
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="off scrape"; else order="scrape off"; fi
  for mode in $order; do
    before=$(wc -l < bench-results/fanout.jsonl 2>/dev/null || echo 0)
    METRICS=$mode HEADER=$HEADER scripts/bench-fanout.sh "$SERVER" "$RECEIVERS" "$SIZE" "$@" || echo "round $round $mode: failed"
    HEADER=0
    after=$(wc -l < bench-results/fanout.jsonl 2>/dev/null || echo 0)
    [ "$after" -gt "$before" ] && tail -1 bench-results/fanout.jsonl >> "$RUN"
    sleep 1
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RUN" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for j in rows:
    if j.get("exit_code") == 0:
        by.setdefault(j["metrics"], []).append(j)
print("%-8s %5s %14s %12s %9s %12s" % ("metrics", "runs", "deliveries/s", "srv us/del", "scrapes", "load avg"))
med = {}
for mode in ("off", "scrape"):
    rs = by.get(mode, [])
    if not rs:
        continue
    d = statistics.median(r["deliveries_per_s"] for r in rs)
    c = statistics.median(r["server_cpu_us_per_delivery"] for r in rs if "server_cpu_us_per_delivery" in r)
    loads = [r["load_average"] for r in rs]
    med[mode] = (d, c)
    print("%-8s %5d %14.0f %12.3f %9.0f %5.1f-%-5.1f" % (mode, len(rs), d, c, statistics.median(r["scrapes"] for r in rs), min(loads), max(loads)))
if len(med) == 2:
    print("scrape/off: deliveries/s %+.1f %%, server CPU per delivery %+.1f %%" % (
        100 * (med["scrape"][0] / med["off"][0] - 1), 100 * (med["scrape"][1] / med["off"][1] - 1)))
print("runs: " + sys.argv[1])
PY
