#!/usr/bin/env bash
# Usage: scripts/bench-fanout.sh SERVER RECEIVERS SIZE [extra chorus-bench fanout args]
#   SERVER: chorus | chorus-sio | node-ws | hummingbird
#   chorus-sio runs `chorus serve --app realtime --auth none` and `chorus-bench socketio` (Socket.IO room
#   fan-out: message:send in, message:new out); the others the raw WebSocket `fanout`.
# Starts the server on a free loopback port, runs `chorus-bench fanout` against it with --server-pid,
# stops the server by PID and prints one table row. `--deflate` among the extra args turns on
# permessage-deflate in the server too. Defaults (override with env): WINDOW=16 (unless --rate or
# --window is given), DURATION=10, WARMUP=2, PUBLISHERS=1, CHORUS_THREADS=1, CHORUS_BIN (another
# chorus binary, e.g. an older build, for A/B runs; default .build/release/chorus), CHORUS_ARGS (more
# `chorus serve` flags, e.g. CHORUS_ARGS="--recovery-window 0" for chorus-sio without recovery),
# METRICS=scrape (chorus servers: also open --metrics-port and fetch /metrics once a second during the
# run, as Prometheus would; the JSON line then carries "metrics": "scrape" and the number of scrapes).
# The full JSON line is appended to bench-results/fanout.jsonl. HEADER=1 prints the column header first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SERVER="${1:?server: chorus|chorus-sio|node-ws|hummingbird}"; RECEIVERS="${2:?receivers}"; SIZE="${3:?size}"; shift 3
EXTRA=("$@")
WINDOW="${WINDOW:-16}"; DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-2}"; PUBLISHERS="${PUBLISHERS:-1}"
CHORUS_THREADS="${CHORUS_THREADS:-1}"
CHORUS_BIN="${CHORUS_BIN:-.build/release/chorus}"
mkdir -p bench-results
LOG="bench-results/server-$SERVER.log"

DEFLATE=off
HAS_LOAD_MODE=0
for a in "${EXTRA[@]}"; do
  case "$a" in --deflate) DEFLATE=on ;; --rate|--window) HAS_LOAD_MODE=1 ;; esac
done

BENCH=".build/release/chorus-bench"
BENCH_MODE=fanout; URL_PATH=/
[ -x "$BENCH" ] || swift build -c release --product chorus-bench >/dev/null

case "$SERVER" in
  chorus)
    [ -x "$CHORUS_BIN" ] || swift build -c release --product chorus >/dev/null
    CMD=("$CHORUS_BIN" serve --host 127.0.0.1 --port 0 --app broadcast --threads "$CHORUS_THREADS")
    if [ "$DEFLATE" = on ]; then CMD+=(--deflate shared); else CMD+=(--deflate off); fi
    # shellcheck disable=SC2206
    [ -n "${CHORUS_ARGS:-}" ] && CMD+=($CHORUS_ARGS)
    ;;
  chorus-sio)
    [ -x "$CHORUS_BIN" ] || swift build -c release --product chorus >/dev/null
    CMD=("$CHORUS_BIN" serve --host 127.0.0.1 --port 0 --app realtime --auth none --threads "$CHORUS_THREADS")
    if [ "$DEFLATE" = on ]; then CMD+=(--deflate shared); else CMD+=(--deflate off); fi
    # shellcheck disable=SC2206
    [ -n "${CHORUS_ARGS:-}" ] && CMD+=($CHORUS_ARGS)
    BENCH_MODE=socketio; URL_PATH=/socket.io/
    ;;
  node-ws)
    if [ ! -d /usr/share/nodejs/ws ]; then
      (apt-get install -y -qq node-ws >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq node-ws >/dev/null 2>&1; }) \
        || { echo "bench-fanout: cannot install node-ws" >&2; exit 1; }
    fi
    CMD=(node Benchmarks/Peers/node-ws/broadcast.js --host 127.0.0.1 --port 0 --deflate "$DEFLATE")
    ;;
  hummingbird)
    HB=Benchmarks/Peers/hummingbird/hb-broadcast
    if [ ! -x "$HB/.build-peer/release/hb-broadcast" ]; then
      echo "bench-fanout: building the hummingbird peer (several minutes)..." >&2
      (cd "$HB" && swift build -c release --scratch-path .build-peer >/dev/null)
    fi
    CMD=("$HB/.build-peer/release/hb-broadcast" --host 127.0.0.1 --port 0 --deflate "$DEFLATE")
    ;;
  *) echo "unknown server $SERVER" >&2; exit 1 ;;
esac

METRICS="${METRICS:-off}"
if [ "$METRICS" = scrape ]; then
  case "$SERVER" in chorus|chorus-sio) CMD+=(--metrics-port 0) ;; *) echo "bench-fanout: METRICS=scrape needs a chorus server" >&2; exit 1 ;; esac
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"${CMD[@]}" >"$LOG" 2>&1 &
SPID=$!
SCRAPER=""
cleanup() { if [ -n "$SCRAPER" ]; then kill "$SCRAPER" 2>/dev/null; wait "$SCRAPER" 2>/dev/null || true; fi
  if kill -0 "$SPID" 2>/dev/null; then kill "$SPID" 2>/dev/null; for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$SPID" 2>/dev/null || true; fi; wait "$SPID" 2>/dev/null || true; }
trap cleanup EXIT
PORT=""
for _ in $(seq 300); do
  PORT="$(sed -n 's/^chorus: listening on .*:\([0-9][0-9]*\)$/\1/p' "$LOG" | head -1)"
  [ -n "$PORT" ] && break
  kill -0 "$SPID" 2>/dev/null || { echo "bench-fanout: $SERVER exited: $(tail -3 "$LOG")" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "bench-fanout: $SERVER did not print its ready line" >&2; exit 1; }
SCRAPES_FILE="bench-results/scrapes.count"
if [ "$METRICS" = scrape ]; then
  MPORT="$(sed -n 's/^chorus: metrics on .*:\([0-9][0-9]*\)$/\1/p' "$LOG" | head -1)"
  [ -n "$MPORT" ] || { echo "bench-fanout: no metrics listener line in $LOG" >&2; exit 1; }
  : > "$SCRAPES_FILE"
  # One scrape a second, each a whole /metrics body (discarded), counted.
  ( while curl -sf -o /dev/null "http://127.0.0.1:$MPORT/metrics"; do echo >> "$SCRAPES_FILE"; sleep 1; done ) &
  SCRAPER=$!
fi

ARGS=("$BENCH_MODE" --url "ws://127.0.0.1:$PORT$URL_PATH" --receivers "$RECEIVERS" --publishers "$PUBLISHERS" --size "$SIZE"
      --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SPID" --json)
[ "$HAS_LOAD_MODE" = 1 ] || ARGS+=(--window "$WINDOW")
# Above ~20k connections per source address the ephemeral ports run short: spread over more addresses.
if [ "$RECEIVERS" -ge 5000 ]; then ARGS+=(--source-addresses 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5); fi
set +e
OUT="$("$BENCH" "${ARGS[@]}" "${EXTRA[@]}" 2>"bench-results/bench-stderr.log")"
RC=$?
set -e
JSON="$(printf '%s\n' "$OUT" | grep '^{' | tail -1)"
if [ -z "$JSON" ]; then
  echo "bench-fanout: chorus-bench failed (rc $RC): $(tail -3 bench-results/bench-stderr.log)" >&2
  printf '%s\n' "$OUT" >&2
  exit 1
fi
SCRAPES=0
if [ -n "$SCRAPER" ]; then kill "$SCRAPER" 2>/dev/null; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""; SCRAPES=$(wc -l < "$SCRAPES_FILE"); fi
printf '%s\n' "$JSON" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read()); j["server"] = sys.argv[1]; j["exit_code"] = int(sys.argv[2])
j["metrics"] = sys.argv[4]; j["scrapes"] = int(sys.argv[5]); j["load_average"] = float(open("/proc/loadavg").read().split()[0])
open("bench-results/fanout.jsonl", "a").write(json.dumps(j) + "\n")
mode = "w%d" % j["window"] if j["window"] else "r%d" % j["rate"]
hdr = "%-12s %9s %6s %6s %7s %13s %9s %9s %10s %9s %9s %8s %3s" % ("server","receivers","size","mode","deflate","deliveries/s","p50 us","p99 us","missed","srv us/d","srv cpu%","gen cpu%","rc")
if sys.argv[3] == "1": print(hdr)
print("%-12s %9d %6d %6s %7s %13.0f %9.0f %9.0f %10d %9.3f %9.0f %8.0f %3d" % (
  sys.argv[1], j["receivers"], j["size"], mode, "on" if j["deflate"] else "off", j["deliveries_per_s"],
  j["latency_us_p50"], j["latency_us_p99"], j["missed"], j.get("server_cpu_us_per_delivery", float("nan")),
  100 * j.get("server_cpu_s", float("nan")) / j["measured_s"], 100 * j["generator_cpu_s"] / j["measured_s"], int(sys.argv[2])))
' "$SERVER" "$RC" "${HEADER:-0}" "$METRICS" "$SCRAPES"
