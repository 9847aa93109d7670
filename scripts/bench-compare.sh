#!/usr/bin/env bash
# Runs the fan-out scenarios against chorus and the peers in alternation, in one session, and prints
# a table with ratios (Chorus ÷ peer) of deliveries/s and server CPU µs per delivery, and the same as
# an SVG chart beside the run's JSON lines (scripts/bench-chart.py).
# Scenarios: RECEIVERS_LIST x SIZES x WINDOWS x DEFLATES (defaults: 1000 10000 x 64 1024 x 16 1 x off on).
# Env: SERVERS (default "chorus node-ws hummingbird"), DURATION (10), WARMUP (2), and the lists above.
# A server that cannot start (e.g. chorus before its broadcast app lands) is reported and skipped.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SERVERS="${SERVERS:-chorus node-ws hummingbird}"
RECEIVERS_LIST="${RECEIVERS_LIST:-1000 10000}"
SIZES="${SIZES:-64 1024}"
WINDOWS="${WINDOWS:-16 1}"
DEFLATES="${DEFLATES:-off on}"
export DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}"
mkdir -p bench-results
RUN="bench-results/compare-$(date +%Y%m%d-%H%M%S).jsonl"
swift build -c release --product chorus-bench >/dev/null || exit 1
if [[ " $SERVERS " == *" chorus "* ]]; then
  if ! swift build -c release --product chorus >/dev/null 2>&1 || ! .build/release/chorus serve --help 2>&1 | grep -q -- "--app"; then
    echo "bench-compare: chorus serve --app broadcast is not available yet: skipping chorus" >&2
    SERVERS="${SERVERS//chorus/}"
  fi
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
HEADER=1
for r in $RECEIVERS_LIST; do for s in $SIZES; do for w in $WINDOWS; do for d in $DEFLATES; do
  for srv in $SERVERS; do
    args=(--window "$w")
    [ "$d" = on ] && args+=(--deflate)
    before=$(wc -l < bench-results/fanout.jsonl 2>/dev/null || echo 0)
    HEADER=$HEADER scripts/bench-fanout.sh "$srv" "$r" "$s" "${args[@]}" || echo "$srv $r $s w$w $d: failed"
    HEADER=0
    after=$(wc -l < bench-results/fanout.jsonl 2>/dev/null || echo 0)
    [ "$after" -gt "$before" ] && tail -1 bench-results/fanout.jsonl >> "$RUN"
    sleep 1
  done
done; done; done; done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$RUN" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda j: (j["receivers"], j["size"], j["window"], j["deflate"])
by = {}
for j in rows: by.setdefault(key(j), {})[j["server"]] = j
peers = sorted({j["server"] for j in rows} - {"chorus"})
hdr = "%-28s" % "scenario" + "".join("%14s %10s" % (s + " del/s", "us/del") for s in ["chorus"] + peers)
hdr += "".join("%16s %14s" % ("del/s C/" + p, "us/del C/" + p) for p in peers)
print(hdr)
for k in sorted(by):
    r = by[k]; name = "%dr %dB w%d %s" % (k[0], k[1], k[2], "deflate" if k[3] else "plain")
    line = "%-28s" % name
    for s in ["chorus"] + peers:
        j = r.get(s)
        line += "%14s %10s" % (("%.0f" % j["deliveries_per_s"]) if j else "-", ("%.2f" % j["server_cpu_us_per_delivery"]) if j and "server_cpu_us_per_delivery" in j else "-")
    c = r.get("chorus")
    for p in peers:
        j = r.get(p)
        if c and j and j["deliveries_per_s"] > 0 and j.get("server_cpu_us_per_delivery"):
            line += "%16.2f %14.2f" % (c["deliveries_per_s"] / j["deliveries_per_s"], c["server_cpu_us_per_delivery"] / j["server_cpu_us_per_delivery"])
        else:
            line += "%16s %14s" % ("-", "-")
    print(line)
PY
# The same results as a chart (deliveries/s and server CPU per delivery, side by side).
python3 scripts/bench-chart.py "$RUN" -o "${RUN%.jsonl}.svg" --title "Fan-out, $(date +%Y-%m-%d) (load average $(cut -d' ' -f1 /proc/loadavg))"
