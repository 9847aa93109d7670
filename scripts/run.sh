#!/usr/bin/env bash
# Build Chorus in release mode and run the server. Arguments go to `chorus serve`:
#
#   scripts/run.sh                                  # 0.0.0.0:3001, echo app
#   scripts/run.sh --port 9001 --app broadcast --deflate shared
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"
chorus_setup_system
echo "run: building chorus (release)" >&2
chorus_swift_build -c release --product chorus
exec .build/release/chorus serve "$@"
