#!/usr/bin/env bash
# Soak a running build: churn, floods, slow consumers and API emits for DURATION seconds, then
# report descriptor and memory drift (issue 11).
#
#   scripts/soak.sh DURATION_SECONDS        e.g. scripts/soak.sh 1800
#
# Builds nothing: CHORUS_BIN (default .build/release/chorus if present, else .build/debug/chorus).
# Starts `chorus serve --app realtime` and `--app broadcast` on free loopback ports, stops them by
# PID at the end. Prints one JSON line (fds/RSS idle, after warm-up, peak, end; load counts) and
# exits 1 if a server died or kept descriptors after every client left. SOAK_ARGS adds options of
# scripts/soak.py (--rate, --sample, --settle, --warmup, --fd-tolerance, --verbose).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ $# -ne 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/soak.sh DURATION_SECONDS" >&2
  exit 2
fi
bin=${CHORUS_BIN:-}
if [[ -z $bin ]]; then
  bin=.build/debug/chorus
  [[ -x .build/release/chorus ]] && bin=.build/release/chorus
fi
[[ -x $bin ]] || { echo "soak: $bin not found (swift build -c release --product chorus, or set CHORUS_BIN)" >&2; exit 2; }
python=${CHORUS_PYTHON:-}
if [[ -z $python ]]; then
  python=python3
  [[ -x .venv-test/bin/python ]] && python=.venv-test/bin/python
fi
# shellcheck disable=SC2086
exec "$python" scripts/soak.py --bin "$bin" --duration "$1" ${SOAK_ARGS:-}
