#!/usr/bin/env bash
# Run the whole test suite: unit and end-to-end tests (swift test), then Autobahn conformance.
#
#   scripts/test.sh
#   CHORUS_SKIP_AUTOBAHN=1 scripts/test.sh            # skip conformance (quick local runs)
#   AUTOBAHN_PROFILE=full scripts/test.sh             # every Autobahn case, release build (20-30 min)
#   CHORUS_AUTOBAHN_CASES='1.*,2.*' scripts/test.sh   # chosen Autobahn cases
#   CHORUS_TEST_FILTER=EndToEnd scripts/test.sh       # passed to `swift test --filter`
#   CHORUS_SKIP_FUZZ=1 scripts/test.sh                # skip the fuzzing step (45 s per target)
#   CHORUS_SKIP_SAMPLE=1 scripts/test.sh              # skip building Tests/SamplePackage (Chorus by version)
#   CHORUS_FUZZ_SECONDS=120 scripts/test.sh           # longer fuzzing per target (scripts/fuzz.sh for long runs)
#
# CHORUS_BIN (end-to-end tests) and CHORUS_AUTOBAHN_BIN (conformance) point the suite at another
# server binary, e.g. a stand-in while checking the harness itself. The quick Autobahn profile runs
# against the debug build the tests already use (285 cases in ~50 s here): a second, release build
# of the whole package (SwiftNIO included) would double CI's build time for no protocol coverage.
# The full profile builds and runs the release binary, as the figures in BENCHMARKS.md are.
#
# The end-to-end tests find the server and the Python clients through CHORUS_BIN and
# CHORUS_PYTHON, exported here. Exits non-zero if any step failed; every step runs regardless,
# so one report shows everything that is broken.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"

failed=()
swift_summary="swift test: did not run"
autobahn_summary="autobahn: did not run"
work=$(mktemp -d "${TMPDIR:-/tmp}/chorus-test.XXXXXX")
server_pid=
runner_pid=
sample_pid=

# Ends a process we started and everything it started, children first, by PID.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -KILL "$1" 2>/dev/null
}

cleanup() {
  [[ -n $runner_pid ]] && kill_tree "$runner_pid"
  [[ -n $server_pid ]] && kill_tree "$server_pid"
  [[ -n $sample_pid ]] && kill_tree "$sample_pid"
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
step() { printf '\n==> %s  [+%ds]\n' "$*" $((SECONDS - started)); }

step "setup"
chorus_setup_system || { echo "test: system packages could not be installed" >&2; exit 1; }
chorus_setup_system "${CHORUS_TEST_PACKAGES[@]}" || { echo "test: test packages (chromium) could not be installed" >&2; exit 1; }
chorus_setup_venv || { echo "test: the Python test venv could not be created" >&2; exit 1; }
chorus_setup_js_client || { echo "test: the official socket.io-client or Node.js could not be set up" >&2; exit 1; }
export CHORUS_PYTHON=$CHORUS_VENV/bin/python CHORUS_SIO_JS
export CHORUS_BIN=${CHORUS_BIN:-$CHORUS_ROOT/.build/debug/chorus}

# --- rules of the source tree the compiler does not check ----------------------------------
step "source rules"
"$CHORUS_ROOT/scripts/check-source-rules.sh" || failed+=("source rules (scripts/check-source-rules.sh)")

# --- unit and end-to-end tests -----------------------------------------------------------
step "swift build --build-tests"
if chorus_swift_build --build-tests; then
  step "swift test"
  filter=()
  [[ -n ${CHORUS_TEST_FILTER:-} ]] && filter=(--filter "$CHORUS_TEST_FILTER")
  swift test --skip-build "${filter[@]}" 2>&1 | tee "$work/swift-test.log"
  rc=${PIPESTATUS[0]}
  # Swift Testing's closing line, e.g. "✔ Test run with 42 tests in 9 suites passed after 3.1 seconds."
  swift_summary=$(grep -E 'Test run with [0-9]+ tests?' "$work/swift-test.log" | tail -n 1)
  [[ -n $swift_summary ]] || swift_summary="swift test: no Swift Testing summary line (exit $rc)"
  ((rc == 0)) || failed+=("swift test (exit $rc)")
else
  failed+=("swift build --build-tests")
fi

# --- Chorus as a versioned dependency -------------------------------------------------------
# Tests/SamplePackage depends on Chorus through a git URL and a tag, as another team's package
# would; SwiftPM refuses that if any target uses unsafeFlags. Builds only the sample's products
# (ChorusServer, ChorusWebSocket and swift-crypto/swift-log under them), in .build/sample-package.
# Built beside the fuzzing: the fuzzers run for a fixed time whatever CPU they get, so the sample's
# build (mostly swift-crypto, cold on a fresh machine) costs CI no wall time of its own.
sample_summary="sample package: did not run"
if [[ ${CHORUS_SKIP_SAMPLE:-0} == 1 ]]; then
  sample_summary="sample package: SKIPPED (CHORUS_SKIP_SAMPLE=1)"
else
  step "sample package (Chorus by version), in the background beside the fuzzing"
  sample_started=$SECONDS
  scripts/sample-package.sh >"$work/sample-package.log" 2>&1 &
  sample_pid=$!
fi

# Waits for the sample package's build and records its outcome.
finish_sample() {
  [[ -n $sample_pid ]] || return 0
  local rc=0
  wait "$sample_pid" || rc=$?
  sample_pid=
  step "sample package finished"
  if ((rc == 0)); then
    sample_summary="sample package: built and ran against a 0.0.0-ci tag ($((SECONDS - sample_started)) s, beside the fuzzing)"
  else
    tail -n 20 "$work/sample-package.log"
    failed+=("sample package")
    sample_summary="sample package: FAILED (see above)"
  fi
}

# --- fuzzing ----------------------------------------------------------------------------------
# Each libFuzzer target (Fuzz/*/) for a short while: property checks, not only crashes.
fuzz_summary="fuzz: did not run"
if [[ ${CHORUS_SKIP_FUZZ:-0} == 1 ]]; then
  fuzz_summary="fuzz: SKIPPED (CHORUS_SKIP_FUZZ=1)"
else
  fuzz_failed=()
  for target in $(scripts/fuzz.sh --list); do
    step "fuzz $target (${CHORUS_FUZZ_SECONDS:-45} s)"
    scripts/fuzz.sh "$target" "${CHORUS_FUZZ_SECONDS:-45}" || fuzz_failed+=("$target")
  done
  if ((${#fuzz_failed[@]} > 0)); then
    failed+=("fuzz (${fuzz_failed[*]})")
    fuzz_summary="fuzz: findings in ${fuzz_failed[*]}"
  else
    fuzz_summary="fuzz: $(scripts/fuzz.sh --list | wc -l) targets, no finding"
  fi
fi
finish_sample

# --- Autobahn conformance -------------------------------------------------------------------
# Waits up to $2 seconds for our child $1 to exit and sets exit_status to its status, or to
# "timeout". Not for use in $(...): only this shell can reap its own child.
wait_exit() {
  local pid=$1 limit=$2 i
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    exit_status=timeout
  else
    exit_status=0
    wait "$pid" || exit_status=$?
  fi
}

run_autobahn() {
  local runner=$CHORUS_ROOT/../shared/autobahn/run.sh
  if [[ ${CHORUS_SKIP_AUTOBAHN:-0} == 1 ]]; then
    autobahn_summary="autobahn: SKIPPED (CHORUS_SKIP_AUTOBAHN=1)"
    echo "$autobahn_summary"; return 0
  fi
  if [[ ! -f $runner ]]; then
    autobahn_summary="autobahn: SKIPPED: conformance runner not found at ../shared/autobahn/run.sh"
    echo "$autobahn_summary"; return 0
  fi

  local bin=${CHORUS_AUTOBAHN_BIN:-}
  if [[ -z $bin && ${AUTOBAHN_PROFILE:-quick} == quick && -x $CHORUS_BIN ]]; then
    bin=$CHORUS_BIN
  fi
  if [[ -z $bin ]]; then
    step "swift build -c release --product chorus"
    chorus_swift_build -c release --product chorus || { failed+=("release build"); return 1; }
    bin=.build/release/chorus
  fi

  step "autobahn (profile ${AUTOBAHN_PROFILE:-quick})"
  local out=$work/server.out err=$work/server.err port= i
  : >"$out"  # exists before the server's own redirection does: the port poll below reads it at once
  "$bin" serve --app echo --host 127.0.0.1 --port 0 \
    --max-message-size 67108864 --deflate shared >"$out" 2>"$err" &
  server_pid=$!
  for ((i = 0; i < 300; i++)); do
    port=$(sed -nE 's/^chorus: listening on .*:([0-9]+)$/\1/p' "$out" | head -n 1)
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "autobahn: chorus printed no ready line within 30 s; stdout/stderr:" >&2
    else
      wait_exit "$server_pid" 1
      echo "autobahn: chorus exited ($exit_status) without printing its ready line; stdout/stderr:" >&2
    fi
    cat "$out" "$err" >&2
    failed+=("autobahn (server did not start)")
    autobahn_summary="autobahn: server did not start"
    return 1
  fi
  echo "autobahn: chorus (pid $server_pid) listening on 127.0.0.1:$port"

  local profile=${AUTOBAHN_PROFILE:-quick} limit rc=0
  limit=${AUTOBAHN_TIMEOUT:-$([[ $profile == quick ]] && echo 900 || echo 3000)}
  # In the background (not a pipeline) so that its PID is known and an interrupted run can
  # end it along with the server; tail streams its output meanwhile.
  : >"$work/autobahn.log"
  AUTOBAHN_PROFILE=$profile AUTOBAHN_TIMEOUT=$limit \
    bash "$runner" "ws://127.0.0.1:$port" "${CHORUS_AUTOBAHN_CASES:-*}" >"$work/autobahn.log" 2>&1 &
  runner_pid=$!
  tail -n +1 -f --pid="$runner_pid" "$work/autobahn.log" &
  local tail_pid=$!
  wait "$runner_pid" || rc=$?
  runner_pid=
  wait "$tail_pid"
  autobahn_summary="autobahn: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/autobahn.log" | tail -n 1)"
  ((rc == 0)) || failed+=("autobahn (exit $rc)")

  # Graceful shutdown is part of the contract: SIGTERM, close 1001 to clients, drain, exit 0.
  kill -TERM "$server_pid" 2>/dev/null
  wait_exit "$server_pid" 30
  if [[ $exit_status != 0 ]]; then
    echo "autobahn: chorus did not exit 0 after SIGTERM (status: $exit_status); its stderr ends:" >&2
    tail -n 40 "$err" >&2
    failed+=("chorus shutdown after autobahn (status $exit_status)")
  else
    echo "autobahn: chorus exited 0 after SIGTERM"
  fi
  server_pid=
}
run_autobahn

# --- summary --------------------------------------------------------------------------------
step "summary (after $((SECONDS - started)) s)"
echo "$swift_summary"
echo "$sample_summary"
echo "$fuzz_summary"
echo "$autobahn_summary"
if ((${#failed[@]} > 0)); then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all passed"
