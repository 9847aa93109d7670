#!/usr/bin/env bash
# Usage: scripts/bench-proxy.sh [RECEIVERS] [PUBLISHERS] [WINDOW]
# What --proxy-message costs: `chorus-bench socketio` (message:send in, message:new out) against
# `chorus serve --app realtime --auth none --threads 1`, first without a proxy, then with
# --proxy-message pointing at scripts/bench-proxy-backend.py (a local backend that answers at once,
# echoing the content so the generator's timestamps survive). Prints one row per run and the
# difference: latency added per message (p50/p99) and messages/s. Servers are started on free loopback
# ports and stopped by PID. Env: DURATION=10, WARMUP=2, SIZE=64, CHORUS_BIN (default
# .build/release/chorus), BENCH_BIN (default .build/release/chorus-bench). Full JSON lines are appended to bench-results/proxy.jsonl.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RECEIVERS="${1:-100}"; PUBLISHERS="${2:-10}"; WINDOW="${3:-4}"
DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-2}"; SIZE="${SIZE:-64}"
CHORUS_BIN="${CHORUS_BIN:-.build/release/chorus}"
BENCH="${BENCH_BIN:-.build/release/chorus-bench}"
[ -x "$CHORUS_BIN" ] || swift build -c release --product chorus >/dev/null
[ -x "$BENCH" ] || swift build -c release --product chorus-bench >/dev/null
mkdir -p bench-results

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# wait_for FILE SED-EXPR PID: prints the first capture once the process wrote it.
wait_for() {
  local v=""
  for _ in $(seq 300); do
    v="$(sed -n "$2" "$1" | head -1)"
    [ -n "$v" ] && { echo "$v"; return 0; }
    kill -0 "$3" 2>/dev/null || { echo "bench-proxy: process $3 exited: $(tail -3 "$1")" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-proxy: no ready line in $1" >&2; return 1
}

python3 scripts/bench-proxy-backend.py >bench-results/proxy-backend.log 2>&1 &
BPID=$!; PIDS+=("$BPID")
BPORT="$(wait_for bench-results/proxy-backend.log 's/^LISTENING \([0-9]*\)$/\1/p' "$BPID")"

run() {  # run off|on
  local log="bench-results/proxy-chorus-$1.log" cmd=("$CHORUS_BIN" serve --host 127.0.0.1 --port 0 --app realtime --auth none
    --threads 1 --deflate off --log-level error)
  [ "$1" = on ] && cmd+=(--proxy-message "http://127.0.0.1:$BPORT/message" --proxy-max-per-socket $((WINDOW * 2)))
  "${cmd[@]}" >"$log" 2>&1 &
  local spid=$!
  local port; port="$(wait_for "$log" 's/^chorus: listening on .*:\([0-9][0-9]*\)$/\1/p' "$spid")"
  local out
  out="$("$BENCH" socketio --url "ws://127.0.0.1:$port/socket.io/" --receivers "$RECEIVERS" --publishers "$PUBLISHERS" \
    --window "$WINDOW" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --server-pid "$spid" --json \
    2>bench-results/proxy-bench-stderr.log || true)"
  kill "$spid"; wait "$spid" 2>/dev/null || true
  local json; json="$(printf '%s\n' "$out" | grep '^{' | tail -1)"
  [ -n "$json" ] || { echo "bench-proxy: chorus-bench failed: $(tail -3 bench-results/proxy-bench-stderr.log)" >&2; printf '%s\n' "$out" >&2; exit 1; }
  printf '%s\n' "$json" | python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); j["proxy"]=sys.argv[1]; print(json.dumps(j))' "$1" \
    | tee -a bench-results/proxy.jsonl
}

OFF="$(run off)"; ON="$(run on)"
python3 - "$OFF" "$ON" <<'EOF'
import json, sys
off, on = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%-6s %9s %10s %11s %13s %9s %9s %8s %9s" % ("proxy", "receivers", "publishers", "messages/s", "deliveries/s",
      "p50 us", "p99 us", "missed", "srv cpu%"))
for name, j in (("off", off), ("on", on)):
    print("%-6s %9d %10d %11.0f %13.0f %9.0f %9.0f %8d %9.0f" % (name, j["receivers"], j["publishers"], j["messages_per_s"],
          j["deliveries_per_s"], j["latency_us_p50"], j["latency_us_p99"], j["missed"],
          100 * j.get("server_cpu_s", float("nan")) / j["measured_s"]))
print("added by --proxy-message: p50 %+.0f us, p99 %+.0f us; messages/s %.0f -> %.0f (%.0f%%)" % (
    on["latency_us_p50"] - off["latency_us_p50"], on["latency_us_p99"] - off["latency_us_p99"],
    off["messages_per_s"], on["messages_per_s"], 100 * on["messages_per_s"] / max(off["messages_per_s"], 1)))
EOF
