#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's swift-format and the repository's .swift-format
# (4 spaces, 120 columns; why each rule is on or off: README, "Code style").
#
#   scripts/format.sh            rewrite every Swift file in place
#   scripts/format.sh --check    change nothing; list each finding of `swift format lint --strict`
#                                and exit 1 if there is one (scripts/check-source-rules.sh runs this
#                                when CHORUS_FORMAT_CHECK=1)
#
# The files: Package.swift, Sources, Tests, Benchmarks (its sources, not its .build), the fuzz
# harnesses in Fuzz/ and any Swift under scripts/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=format
case ${1:-} in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac

swift=swift
[[ -x /opt/swift/usr/bin/swift ]] && ! command -v swift >/dev/null && swift=/opt/swift/usr/bin/swift

# Build folders (Benchmarks/.build, a scratch path inside the tree) hold checked-out dependencies.
mapfile -d '' files < <(find Package.swift Sources Tests Benchmarks Fuzz scripts -name '*.swift' \
  -not -path '*/.build*' -not -path '*/.swiftpm/*' -print0 | sort -z)

if [[ $mode == format ]]; then
  "$swift" format format --in-place --configuration .swift-format --parallel "${files[@]}"
  echo "format: ${#files[@]} files formatted"
else
  # lint prints one line per finding on stderr and, with --strict, exits non-zero on any.
  if ! "$swift" format lint --strict --configuration .swift-format --parallel "${files[@]}"; then
    echo "format: findings above; run scripts/format.sh to fix them" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files, no finding"
fi
