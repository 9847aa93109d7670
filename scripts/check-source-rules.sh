#!/usr/bin/env bash
# Rules of the source tree that the compiler does not check (run by scripts/test.sh):
#  1. No `Unsafe` above the server layer: the applications (ChorusApp, ChorusProxy, chorus) and the
#     Socket.IO server (ChorusSocketIO/Server) use the safe overloads (ChorusServer/SafeSending.swift).
#     One named exception: SessionCore.swift decodes the frames the server lends from its read
#     buffer (`WebSocketMessage` borrows them; copying each would cost a copy per message).
#  2. Every `@unchecked Sendable` says why it is safe, in a comment just above it that contains
#     "Unchecked Sendable:" (or "`@unchecked Sendable`:").
#  3. The Swift files are formatted as .swift-format says (scripts/format.sh --check);
#     CHORUS_FORMAT_CHECK=0 skips it.
# Prints each breach and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0

while IFS= read -r hit; do
  echo "check-source-rules: Unsafe above the server layer: $hit" >&2
  status=1
done < <(grep -rn "Unsafe" Sources/ChorusApp Sources/ChorusProxy Sources/chorus Sources/ChorusSocketIO/Server \
           --include='*.swift' | grep -v '^Sources/ChorusSocketIO/Server/SessionCore.swift:' || true)

while IFS=: read -r file line _; do
  start=$((line > 12 ? line - 12 : 1))
  if ! sed -n "${start},$((line - 1))p" "$file" | grep -Eq 'Unchecked Sendable:|`@unchecked Sendable`:'; then
    echo "check-source-rules: $file:$line: @unchecked Sendable without a comment saying why (\"Unchecked Sendable: ...\")" >&2
    status=1
  fi
done < <(grep -rn "@unchecked Sendable" Sources --include='*.swift' | grep -v '^[^:]*:[0-9]*: *//' || true)

if [[ ${CHORUS_FORMAT_CHECK:-1} == 1 ]]; then
  scripts/format.sh --check >/dev/null || { echo "check-source-rules: not formatted (scripts/format.sh fixes it)" >&2; status=1; }
fi

exit $status
