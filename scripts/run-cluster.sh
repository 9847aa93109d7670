#!/usr/bin/env bash
# Try several Chorus nodes on one Redis by hand: starts a local redis-server and N nodes
# (`--adapter redis`, development auth, API token `dev-token`) on consecutive ports, and stops them
# all, by PID, on Ctrl-C or when one of them exits.
#
#   scripts/run-cluster.sh [N]                    # 2 nodes on 3001, 3002; Redis on 6390
#   PORT=4001 REDIS_PORT=6391 scripts/run-cluster.sh 3 --threads 2   # extra arguments go to every node
#
# Then e.g.: connect a client to :3001 and another to :3002 (?userId=alice), and
#   curl -X POST localhost:3002/api/v1/users/alice/notifications -H 'Authorization: Bearer dev-token' \
#        -H 'Content-Type: application/json' -d '{"title":"hi"}'
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"
N=${1:-2}
[[ $# -gt 0 ]] && shift
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N] [chorus serve arguments...]" >&2; exit 2; }
PORT=${PORT:-3001}
REDIS_PORT=${REDIS_PORT:-6390}
BIN=${CHORUS_BIN:-.build/release/chorus}
chorus_setup_system
if [[ -z ${CHORUS_BIN:-} ]]; then
  echo "run-cluster: building chorus (release)" >&2
  chorus_swift_build -c release --product chorus
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "run-cluster: stopped" >&2
}
trap stop INT TERM EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
pids+=($!)
echo "run-cluster: redis-server on 127.0.0.1:$REDIS_PORT (pid $!)" >&2
for ((i = 0; i < N; i++)); do
  "$BIN" serve --port $((PORT + i)) --auth none --api-token dev-token \
    --adapter redis --redis-url "redis://127.0.0.1:$REDIS_PORT" "$@" &
  pids+=($!)
  echo "run-cluster: chorus node $((i + 1)) on :$((PORT + i)) (pid $!)" >&2
done
# Until Ctrl-C, or until any of them exits.
wait -n "${pids[@]}" || true
