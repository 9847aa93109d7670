#!/usr/bin/env bash
# Fuzz one parser with libFuzzer for a while.
#
#   scripts/fuzz.sh TARGET SECONDS      e.g. scripts/fuzz.sh HTTPParser 60
#   scripts/fuzz.sh --list              the targets (folders of Fuzz/)
#   scripts/fuzz.sh --coverage TARGET   line/region coverage of TARGET's source files by its corpus
#
# A target is a folder Fuzz/TARGET/ holding
#   harness.swift   defines LLVMFuzzerTestOneInput (with @_cdecl); checks properties and traps
#                   (precondition / fatalError) when one does not hold
#   sources.txt     the source files it needs, one per line, relative to the repository root
#                   (blank lines and # comments ignored)
#   flags.txt       optional: extra swiftc flags, one per line (e.g. -I Sources/CZlib, -lz)
#   options.txt     optional: libFuzzer options, one per line (e.g. -max_len=1024); FUZZ_ARGS
#                   comes after them, so it overrides them
#   corpus/         the seed corpus (libFuzzer adds what it finds to a copy, not to the repository)
#
# SwiftPM cannot build fuzz targets, so the harness and the sources are compiled together into
# one module with `swiftc -sanitize=fuzzer,address`. SWIFT_BACKTRACE=enable=no keeps Swift's crash
# handler from hiding the sanitizer's report. Exits non-zero on a finding (crash, leak, timeout,
# failed property); the input that found it is left in .build/fuzz/TARGET/ as crash-* / timeout-*.
#
# FUZZ_JOBS=N runs N workers (default 1); FUZZ_ARGS adds libFuzzer options.
#
# Speed: ASan records a stack trace for every malloc and free (to name them in a use-after-free
# report); that is 25-30 % of a Swift harness's time, so the fuzzing loop runs with
# ASAN_OPTIONS=malloc_context_size=0 (detection is unchanged: every bad access is still caught).
# On a finding the script replays the input once with full stacks (malloc_context_size=30) so the
# report names the allocation. An ASAN_OPTIONS set by the caller is used as it is.
#
# --coverage rebuilds the harness without libFuzzer and with -profile-generate
# -profile-coverage-mapping, plus scripts/fuzz-replay.swift (a main that runs every file of the
# corpus once), replays .build/fuzz/TARGET/corpus (what the last fuzz run found, or the seeds), then
# llvm-profdata merge + llvm-cov report over the files of sources.txt (the harness excluded).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ ${1:-} == --list ]]; then
  for d in Fuzz/*/; do [[ -f $d/harness.swift ]] && basename "$d"; done
  exit 0
fi
coverage=
if [[ ${1:-} == --coverage && $# -eq 2 ]]; then
  coverage=1
  set -- "$2" 0
fi
if [[ $# -ne 2 || ! $2 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS   (targets: $(ls Fuzz | tr '\n' ' '))" >&2
  exit 2
fi
target=$1 seconds=$2
dir=Fuzz/$target
[[ -f $dir/harness.swift && -f $dir/sources.txt ]] || { echo "fuzz: $dir/harness.swift and $dir/sources.txt needed" >&2; exit 2; }

swiftc=swiftc
[[ -x /opt/swift/usr/bin/swiftc ]] && ! command -v swiftc >/dev/null && swiftc=/opt/swift/usr/bin/swiftc

mapfile -t sources < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$dir/sources.txt" | grep -v '^$')
flags=() options=()
[[ -f $dir/options.txt ]] && mapfile -t options < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$dir/options.txt" | grep -v '^$')
[[ -f $dir/flags.txt ]] && mapfile -t flags < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$dir/flags.txt" | grep -v '^$')
for s in "${sources[@]}"; do [[ -f $s ]] || { echo "fuzz: $dir/sources.txt names a missing file: $s" >&2; exit 2; }; done

out=.build/fuzz/$target
mkdir -p "$out/corpus"

if [[ -n $coverage ]]; then
  # The profile format is the toolchain's: its own llvm-profdata/llvm-cov (a distribution's older
  # llvm-profdata says "unsupported instrumentation profile format version").
  llvm_bin=
  [[ -x /opt/swift/usr/bin/llvm-profdata ]] && llvm_bin=/opt/swift/usr/bin/
  [[ -d $dir/corpus ]] && cp -n "$dir/corpus/"* "$out/corpus/" 2>/dev/null || true
  echo "fuzz: building $target for coverage"
  rm -f "$out"/coverage-*.profraw "$out/replay"
  "$swiftc" -profile-generate -profile-coverage-mapping -parse-as-library -Onone -module-name "Fuzz$target" \
    "${flags[@]}" "$dir/harness.swift" "${sources[@]}" scripts/fuzz-replay.swift -Xlinker -export-dynamic \
    -o "$out/replay" 2>&1 | grep -v -e 'Cannot export local symbol' || true
  [[ -x $out/replay ]] || { echo "fuzz: coverage build failed" >&2; exit 2; }
  LLVM_PROFILE_FILE="$out/coverage-%p.profraw" SWIFT_BACKTRACE=enable=no "$out/replay" "$out/corpus"
  "${llvm_bin}llvm-profdata" merge -sparse "$out"/coverage-*.profraw -o "$out/coverage.profdata"
  "${llvm_bin}llvm-cov" report "$out/replay" -show-branch-summary=false -instr-profile="$out/coverage.profdata" "${sources[@]}"
  exit 0
fi
# Rebuild only when the harness, its sources or its flags changed.
stamp=$(cat "$dir/harness.swift" "$dir/sources.txt" "${sources[@]}" $([[ -f $dir/flags.txt ]] && echo "$dir/flags.txt") | sha256sum | cut -c1-16)
if [[ ! -x $out/fuzzer || $(cat "$out/stamp" 2>/dev/null) != "$stamp" ]]; then
  echo "fuzz: building $target (${#sources[@]} source files)"
  # -O: libFuzzer wants speed; ASan stays on. ld.gold's "cannot export local symbol" notes are noise.
  # The old binary goes first: a failed build must not leave it to be run as if it were this one.
  rm -f "$out/fuzzer" "$out/stamp"
  "$swiftc" -sanitize=fuzzer,address -parse-as-library -O -module-name "Fuzz$target" \
    "${flags[@]}" "$dir/harness.swift" "${sources[@]}" -o "$out/fuzzer" 2>&1 \
    | grep -v -e 'Cannot export local symbol' || true
  [[ ${PIPESTATUS[0]} == 0 && -x $out/fuzzer ]] || { echo "fuzz: build failed" >&2; exit 2; }
  echo "$stamp" >"$out/stamp"
fi

# Work on a copy of the seed corpus so that a run does not grow the repository.
[[ -d $dir/corpus ]] && cp -n "$dir/corpus/"* "$out/corpus/" 2>/dev/null || true
echo "fuzz: $target for ${seconds}s"
cd "$out"
rc=0
started=$(date +%s)
ASAN_OPTIONS=${ASAN_OPTIONS-malloc_context_size=0} SWIFT_BACKTRACE=enable=no ./fuzzer -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${FUZZ_JOBS:+-jobs=$FUZZ_JOBS -workers=$FUZZ_JOBS} \
  "${options[@]}" ${FUZZ_ARGS:-} corpus >fuzz.log 2>&1 || rc=$?
grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|SUMMARY|Fatal error|Precondition|Test unit written' fuzz.log | head -n 30 || true
echo "fuzz: wall time $(($(date +%s) - started)) s"
# libFuzzer exits 72 when stopped by SIGINT (e.g. a long run cut at a deadline): not a finding.
if ((rc == 72)) && grep -q 'libFuzzer: run interrupted' fuzz.log; then
  echo "fuzz: $target interrupted, no finding"
  exit 130
fi
if ((rc != 0)); then
  echo "fuzz: $target FOUND A PROBLEM (exit $rc); the log is $out/fuzz.log" >&2
  tail -n 60 fuzz.log >&2
  # The loop ran without allocation stacks: replay the finding once with them.
  finding=$(ls -t crash-* leak-* timeout-* oom-* 2>/dev/null | head -n 1 || true)
  if [[ -n $finding && -z ${ASAN_OPTIONS+set} ]]; then
    echo "fuzz: replaying $out/$finding with full stacks (replay.log)" >&2
    ASAN_OPTIONS=malloc_context_size=30 SWIFT_BACKTRACE=enable=no ./fuzzer -timeout=10 -rss_limit_mb=2048 \
      "$finding" >replay.log 2>&1 || true
    grep -E 'ERROR|SUMMARY|Fatal error|Precondition' replay.log | head -n 10 >&2 || true
  fi
  exit 1
fi
echo "fuzz: $target: no finding"
