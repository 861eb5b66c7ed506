#!/bin/bash
# race.sh — runs race.py (two mh-serve daemons, SMTP writers, POP3 deleters and a randomly
# killed mh-purge on one spool) for DURATION seconds; exit 0 when nothing was lost,
# fetched twice, left in tmp/ or under-counted. See README.md here.
# Usage: tests/stress/race.sh [DURATION]     (default $DURATION, else 600)
#   MH_BIN: the build's tools directory (default: build/tools beside this tree)
#   MH_STRESS_KEEP=1 keeps the work directory (spool, daemon logs, message-ids.log)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MH_BIN=${MH_BIN:-$here/../../build/tools}
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=python3
exec "$python" "$here/race.py" "${1:-${DURATION:-600}}"
