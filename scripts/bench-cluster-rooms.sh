#!/usr/bin/env bash
# The two subscription modes side by side (--redis-subscription pattern, then rooms, alternating):
# ROOMS Socket.IO clients, each alone in its own room, spread over 2 nodes on one local
# redis-server; MESSAGES emitter-style broadcasts, one room each, published straight into Redis.
# Prints what each node received and dropped, its subscriptions and CPU, and Redis's CPU per
# published message (scripts/bench-cluster-rooms.py does the clients and the counting).
#
#   scripts/bench-cluster-rooms.sh [ROOMS] [MESSAGES] [RATE] [ROUNDS]   # defaults 1000 20000 2000 1
#
# Release binary (built if missing, or CHORUS_BIN); ports 3121-3122, Redis 6395.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"
ROOMS=${1:-1000}
MESSAGES=${2:-20000}
RATE=${3:-2000}
ROUNDS=${4:-1}
BIN=${CHORUS_BIN:-.build/release/chorus}
[[ -x $BIN ]] || chorus_swift_build -c release --product chorus
chorus_setup_venv
REDIS_PORT=6395
TOKEN=bench-token

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

run() {  # run MODE
  local mode=$1 node_pids=() args=() i
  redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
  local redis_pid=$!
  pids+=("$redis_pid")
  sleep 0.5
  for ((i = 0; i < 2; i++)); do
    "$BIN" serve --port $((3121 + i)) --threads 1 --auth none --api-token "$TOKEN" --log-level warning \
      --max-connections-per-user 0 --adapter redis --redis-url "redis://127.0.0.1:$REDIS_PORT" \
      --redis-subscription "$mode" >/dev/null &
    node_pids+=($!)
    pids+=($!)
    args+=(--url "ws://127.0.0.1:$((3121 + i))" --pid "${node_pids[$i]}")
  done
  sleep 1
  "$CHORUS_VENV/bin/python" scripts/bench-cluster-rooms.py "${args[@]}" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --redis-pid "$redis_pid" --api-token "$TOKEN" --rooms "$ROOMS" --messages "$MESSAGES" --rate "$RATE" \
    --label "--redis-subscription $mode" || true
  for pid in "${node_pids[@]}" "$redis_pid"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
}

for ((r = 1; r <= ROUNDS; r++)); do
  run pattern
  run rooms
done
