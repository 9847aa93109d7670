#!/usr/bin/env bash
# Prepare a machine to build and test Chorus. Idempotent and silent when nothing is missing.
#
#   scripts/setup.sh              system packages + test packages (chromium) + Python test venv (.venv-test/)
#                                 + the official socket.io-client bundle (.venv-test/js/) and Node.js
#   scripts/setup.sh --system     system packages only (what scripts/run.sh needs)
#   source scripts/setup.sh       define chorus_setup_system / chorus_setup_venv and CHORUS_ROOT
#
# System packages come from Debian (zlib for permessage-deflate, pkg-config to find it, hiredis
# for the Redis connections and redis-server for their tests); apt-get
# update runs at most once, and only when something must be installed. The venv holds the
# Python test clients' dependencies (Tests/clients/requirements.txt); a stamp file with the
# requirements' hash skips pip when nothing changed.

CHORUS_ROOT=${CHORUS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CHORUS_VENV=${CHORUS_VENV:-$CHORUS_ROOT/.venv-test}
CHORUS_SYSTEM_PACKAGES=(zlib1g-dev pkg-config libhiredis-dev redis-server)
# Test-only: the dashboard test drives Debian's chromium headless (Tests/clients/dashboard_check.py).
CHORUS_TEST_PACKAGES=(chromium)

# chorus_setup_system [PACKAGE...]: the packages given, or CHORUS_SYSTEM_PACKAGES.
chorus_setup_system() {
  local missing=() pkg sudo=() wanted=("$@")
  ((${#wanted[@]} > 0)) || wanted=("${CHORUS_SYSTEM_PACKAGES[@]}")
  for pkg in "${wanted[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  echo "setup: installing ${missing[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || return 1
}

chorus_setup_venv() {
  local req=$CHORUS_ROOT/Tests/clients/requirements.txt stamp=$CHORUS_VENV/.chorus-requirements
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1) || return 1
  [[ -x $CHORUS_VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]] && return 0
  echo "setup: creating Python test venv in $CHORUS_VENV" >&2
  if [[ ! -x $CHORUS_VENV/bin/python ]]; then
    rm -rf "$CHORUS_VENV"
    if ! python3 -m venv "$CHORUS_VENV" >/dev/null 2>&1; then
      # Debian's own python3 keeps ensurepip in a separate package.
      rm -rf "$CHORUS_VENV"
      chorus_setup_system python3-venv || return 1
      python3 -m venv "$CHORUS_VENV" || return 1
    fi
  fi
  "$CHORUS_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2 || return 1
  "$CHORUS_VENV/bin/python" -c 'import websockets.asyncio.client, socketio, websocket, prometheus_client' || return 1
  echo "$want" >"$stamp"
}

# The official socket.io-client bundle for the connection state recovery tests
# (Tests/clients/recovery.js), placed by ../shared/js-client/get.sh, and a Node.js to run it
# (Debian's nodejs and node-ws when the machine has none).
CHORUS_SIO_JS=${CHORUS_SIO_JS:-$CHORUS_VENV/js/socket.io.min.js}
chorus_setup_js_client() {
  command -v node >/dev/null 2>&1 || chorus_setup_system nodejs node-ws || return 1
  [[ -s $CHORUS_SIO_JS ]] && return 0
  local get=$CHORUS_ROOT/../shared/js-client/get.sh
  if [[ ! -f $get ]]; then
    echo "setup: $get not found: the recovery tests need the official socket.io-client" >&2
    return 1
  fi
  # get.sh downloads with python3 -m pip: the venv's has pip.
  PATH=$CHORUS_VENV/bin:$PATH bash "$get" "$CHORUS_SIO_JS" >/dev/null || return 1
}

# swift build, quiet on success; on failure, the log without the progress lines.
chorus_swift_build() {
  local log rc=0
  log=$(mktemp "${TMPDIR:-/tmp}/chorus-build.XXXXXX")
  (cd "$CHORUS_ROOT" && swift build "$@") >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    echo "build: swift build $* failed ($rc):" >&2
    grep -vE '^\[[0-9]+/[0-9]+\] ' "$log" | tail -n 200 >&2
  fi
  rm -f "$log"
  return "$rc"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  chorus_setup_system
  if [[ ${1:-} != --system ]]; then
    chorus_setup_system "${CHORUS_TEST_PACKAGES[@]}"
    chorus_setup_venv
    chorus_setup_js_client
  fi
fi
