#!/usr/bin/env bash
# Build Chorus in release mode and run the server. Arguments go to `chorus serve`:
#
#   scripts/run.sh                                  # the realtime (Socket.IO) gateway on 0.0.0.0:3001, development auth
#   scripts/run.sh --auth jwt --jwt-secret-file /etc/chorus/jwt.key --api-token-file /etc/chorus/api.token
#   scripts/run.sh --port 9001 --app broadcast
#
# With no arguments the gateway starts in development mode (`--auth none`: the user id is taken from
# the `userId` query parameter, as the original gateway did) so that it runs out of the box; it says
# so in its log. Production deployments pass their JWT key and API token explicitly.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$CHORUS_ROOT"
chorus_setup_system
echo "run: building chorus (release)" >&2
chorus_swift_build -c release --product chorus
if [[ $# -eq 0 ]]; then
  echo "run: no arguments: development mode (--auth none); see README for production flags" >&2
  set -- --auth none
fi
exec .build/release/chorus serve "$@"
