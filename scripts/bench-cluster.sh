#!/usr/bin/env bash
# One node against two nodes on Redis, with the same Socket.IO receivers, alternating in one run:
# deliveries/s and latency from chorus-bench (with two nodes also per node: node 1 holds the
# publisher, so node 2's figures are the cross-node ones), and the CPU seconds each chorus node and
# redis-server used during the run (from /proc, summed over nodes; connects included), per delivery
# and, for Redis, per published message.
#
#   scripts/bench-cluster.sh [RECEIVERS] [RATE] [ROUNDS]     # defaults 2000 receivers, 1000 msg/s, 1 round
#   REDIS_SUBSCRIPTION=rooms scripts/bench-cluster.sh ...    # the nodes' --redis-subscription (default pattern)
#   STREAMS=0 scripts/bench-cluster.sh ...                   # without the third run, two nodes on a Redis
#                                                            # stream (--adapter redis-streams)
#
# Release binaries (built if missing, or CHORUS_BIN / CHORUS_BENCH_BIN); ports 3101-3102, Redis 6392.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"
RECEIVERS=${1:-2000}
RATE=${2:-1000}
ROUNDS=${3:-1}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REDIS_SUBSCRIPTION=${REDIS_SUBSCRIPTION:-pattern}
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
      --max-connections-per-user 0 --adapter "$adapter" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
      --redis-subscription "$REDIS_SUBSCRIPTION" >/dev/null &
    node_pids+=($!)
    pids+=($!)
    urls+=(--also-url "ws://127.0.0.1:$((3101 + i))/")
  done
  sleep 1
  local redis_before
  redis_before=$(cpu "$redis_pid")
  for pid in "${node_pids[@]}"; do before+=("$(cpu "$pid")"); done
  echo "== $name"
  local out
  out=$("$BENCH" socketio --url ws://127.0.0.1:3101/ "${urls[@]:2}" --receivers "$RECEIVERS" --publishers 1 \
    --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --max-missed 1 --connect-timeout 300 || true)
  echo "$out"
  local total=0
  for ((i = 0; i < nodes; i++)); do total=$((total + $(cpu "${node_pids[$i]}") - before[i])); done
  local ticks deliveries redis_ticks
  ticks=$(getconf CLK_TCK)
  deliveries=$(awk '/^  deliveries/ { print $2 }' <<<"$out")
  redis_ticks=$(($(cpu "$redis_pid") - redis_before))
  echo "  chorus CPU (all nodes) $(awk -v t=$total -v k="$ticks" 'BEGIN { printf "%.2f", t / k }') s" \
       "($(awk -v t=$total -v k="$ticks" -v d="${deliveries:-0}" 'BEGIN { printf "%.2f", (d > 0 ? t / k * 1e6 / d : 0) }') µs per delivery);" \
       "redis CPU $(awk -v t=$redis_ticks -v k="$ticks" 'BEGIN { printf "%.2f", t / k }') s" \
       "($(awk -v t=$redis_ticks -v k="$ticks" -v m="$(awk -v r="$RATE" -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print r * (w + d) }')" 'BEGIN { printf "%.1f", t / k * 1e6 / m }') µs per published message)"
  for pid in "${node_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
}

for ((r = 1; r <= ROUNDS; r++)); do
  run "one node (memory), round $r" memory 1
  run "two nodes on Redis, round $r" redis 2
  if [[ ${STREAMS:-1} == 1 ]]; then run "two nodes on a Redis stream (--adapter redis-streams), round $r" redis-streams 2; fi
done
