#!/usr/bin/env bash
# One node against two nodes on Redis, with the same Socket.IO receivers, alternating in one run:
# deliveries/s and latency from chorus-bench, and the CPU seconds each chorus node and redis-server
# used during the run (from /proc, summed over nodes).
#
#   scripts/bench-cluster.sh [RECEIVERS] [RATE] [ROUNDS]     # defaults 2000 receivers, 1000 msg/s, 1 round
#
# Release binaries (built if missing, or CHORUS_BIN / CHORUS_BENCH_BIN); ports 3101-3102, Redis 6392.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"
RECEIVERS=${1:-2000}
RATE=${2:-1000}
ROUNDS=${3:-1}
BIN=${CHORUS_BIN:-.build/release/chorus}
BENCH=${CHORUS_BENCH_BIN:-.build/release/chorus-bench}
[[ -x $BIN ]] || chorus_swift_build -c release --product chorus
[[ -x $BENCH ]] || chorus_swift_build -c release --product chorus-bench
REDIS_PORT=6392

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

cpu() {  # utime+stime of a PID, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
redis_pid=$!
pids+=("$redis_pid")
sleep 0.5

run() {  # run NAME ADAPTER NODES
  local name=$1 adapter=$2 nodes=$3 node_pids=() urls=() before=() i
  for ((i = 0; i < nodes; i++)); do
    "$BIN" serve --port $((3101 + i)) --threads 1 --auth none --log-level warning \
      --adapter "$adapter" --redis-url "redis://127.0.0.1:$REDIS_PORT" >/dev/null &
    node_pids+=($!)
    pids+=($!)
    urls+=(--also-url "ws://127.0.0.1:$((3101 + i))/")
  done
  sleep 1
  local redis_before
  redis_before=$(cpu "$redis_pid")
  for pid in "${node_pids[@]}"; do before+=("$(cpu "$pid")"); done
  echo "== $name"
  "$BENCH" socketio --url ws://127.0.0.1:3101/ "${urls[@]:2}" --receivers "$RECEIVERS" --publishers 1 \
    --rate "$RATE" --duration 10 --warmup 2 --max-missed 1 || true
  local total=0
  for ((i = 0; i < nodes; i++)); do total=$((total + $(cpu "${node_pids[$i]}") - before[i])); done
  local ticks
  ticks=$(getconf CLK_TCK)
  echo "  chorus CPU (all nodes) $(awk -v t=$total -v k="$ticks" 'BEGIN { printf "%.2f", t / k }') s;" \
       "redis CPU $(awk -v t=$(($(cpu "$redis_pid") - redis_before)) -v k="$ticks" 'BEGIN { printf "%.2f", t / k }') s"
  for pid in "${node_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
}

for ((r = 1; r <= ROUNDS; r++)); do
  run "one node (memory), round $r" memory 1
  run "two nodes on Redis, round $r" redis 2
done
