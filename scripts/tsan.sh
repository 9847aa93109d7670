#!/usr/bin/env bash
# Run tests under ThreadSanitizer and summarise what it reports. By hand only: a cold TSan build
# takes 15-25 minutes and the run is several times slower than a plain one, so it is not part of
# scripts/test.sh or CI.
#
#   scripts/tsan.sh                 build, then the concurrency-heavy suites (the default filter)
#   scripts/tsan.sh 'FILTER'        build, then `swift test --filter FILTER`
#   scripts/tsan.sh --all           build, then the whole suite
#   scripts/tsan.sh --summary DIR   only summarise report files already in DIR
#
# The build goes to .build-tsan (so the normal .build is untouched). The end-to-end tests run the
# TSan-built `chorus` (CHORUS_BIN), so races inside the server process are caught too: every
# process writes its reports to its own file, $CHORUS_TSAN_DIR/r.PID (default
# /tmp/chorus-tsan-<time>), instead of stderr, which the tests capture and mostly discard.
# exitcode=0 keeps TSan from turning a server's exit status into 66, which shutdown tests check;
# the script itself exits 1 when there is any report, 2 when tests failed and nothing was reported.
# scripts/tsan-suppressions.txt lists the reports known to be false positives, each with why.
#
# Timing-sensitive tests (deadlines of a few hundred milliseconds) may fail under TSan's slowdown;
# read a failure before calling it a finding.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

default_filter='ChorusServerTests|RecoveryServerTests|LoopQueueTests|RedisAdapterTests|RoomSubscriptionTests|ConcurrentEmitTests'

if [[ ${1:-} == --summary ]]; then
  exec python3 scripts/tsan-summary.py "${2:?usage: scripts/tsan.sh --summary DIR}"
fi
filter_args=(--filter "${1:-$default_filter}")
[[ ${1:-} == --all ]] && filter_args=()

source scripts/setup.sh
chorus_setup_system || exit 1
chorus_setup_venv || exit 1
chorus_setup_js_client || exit 1

reports=${CHORUS_TSAN_DIR:-/tmp/chorus-tsan-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$reports"
started=$SECONDS

echo "==> swift build --build-tests --sanitize=thread --scratch-path .build-tsan"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan 2>&1 | grep -E "error:|Build complete" | tail -20
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "tsan: build failed" >&2; exit 1; }
echo "    built in $((SECONDS - started)) s"

export CHORUS_BIN=$root/.build-tsan/debug/chorus
export CHORUS_PYTHON=${CHORUS_PYTHON:-$CHORUS_VENV/bin/python} CHORUS_SIO_JS
symbolizer=$(command -v llvm-symbolizer || true)
[[ -x $(dirname "$(command -v swift)")/llvm-symbolizer ]] && symbolizer=$(dirname "$(command -v swift)")/llvm-symbolizer
export TSAN_OPTIONS="log_path=$reports/r halt_on_error=0 exitcode=0 history_size=4 suppressions=$root/scripts/tsan-suppressions.txt${symbolizer:+ external_symbolizer_path=$symbolizer}"
export SWIFT_BACKTRACE=enable=no

echo "==> swift test --sanitize=thread ${filter_args[*]}   (reports: $reports)"
run_started=$SECONDS
swift test --skip-build --sanitize=thread --scratch-path .build-tsan "${filter_args[@]}" 2>&1 \
  | tee "$reports.swift-test.log" | grep -E "^(✘|✔ Test run|Test run)|recorded an issue" | tail -40
test_status=${PIPESTATUS[0]}
echo "    ran in $((SECONDS - run_started)) s, swift test exit status $test_status"

python3 scripts/tsan-summary.py "$reports"
echo "(the test log is $reports.swift-test.log)"
if compgen -G "$reports/r.*" >/dev/null && grep -qE "(WARNING|ERROR): ThreadSanitizer" "$reports"/r.*; then exit 1; fi
[[ $test_status -eq 0 ]] || exit 2
# exitcode=0 hides a test process that died (e.g. the sanitizer crashed): it leaves no summary line.
grep -qE "Test run with [0-9]+ tests?" "$reports.swift-test.log" || {
  echo "tsan: the test run ended without its summary line: the test process died" >&2
  exit 2
}
