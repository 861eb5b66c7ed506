#!/usr/bin/env bash
# harness.sh — runs the shared anchor harness (../shared/bench/baseline.sh) with our
# mh-purge and mh-quota plugged into its MH_PURGE_CMD / MH_QUOTA_CMD hooks, so find/du and
# our tools run on the same trees in the same run (RESULT names mh_purge_*, mh_quota_*).
#   bash bench/harness.sh                  # as root; TESTS=purge REPS=3: ~4 min
# Environment: BUILD, BASELINE (path of baseline.sh), HOOK_SPOOL, SKIP_BUILD=1, and every
# variable baseline.sh reads (TESTS, REPS, PURGE_FILES, RESULTS_FILE, ...).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
BASELINE=${BASELINE:-$ROOT/../shared/bench/baseline.sh}
# Must be outside $BENCH_TMP (baseline.sh wipes it) but on the same filesystem (renames).
HOOK_SPOOL=${HOOK_SPOOL:-/tmp/mh-bench/harness-spool}
MH_USER=$BUILD/tools/mh-user/mh-user

log() { printf '[harness %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    make -C "$BUILD" -j2 mh-user mh-quota mh-purge >/dev/null
fi
[ -r "$BASELINE" ] || die "no harness at $BASELINE (set BASELINE)"

# The hook account: its Maildir is removed; harness-hook.sh renames the harness's tree in.
rm -rf "$HOOK_SPOOL"; mkdir -p "$HOOK_SPOOL"
"$MH_USER" --spool "$HOOK_SPOOL" domain add harness.test -q
echo "bench-password-1" | "$MH_USER" --spool "$HOOK_SPOOL" add purge@harness.test --password-stdin -q
rm -rf "$HOOK_SPOOL/domains/harness.test/accounts/purge/Maildir"
trap 'rm -rf "$HOOK_SPOOL"' EXIT

export MH_HOOK_SPOOL=$HOOK_SPOOL
export MH_HOOK_PURGE=$BUILD/tools/mh-purge/mh-purge MH_HOOK_QUOTA=$BUILD/tools/mh-quota/mh-quota
export MH_PURGE_CMD="bash $HERE/harness-hook.sh purge"
export MH_QUOTA_CMD="bash $HERE/harness-hook.sh quota"
export TESTS=${TESTS:-purge}
log "MH_PURGE_CMD='$MH_PURGE_CMD' MH_QUOTA_CMD='$MH_QUOTA_CMD' TESTS='$TESTS'"
bash "$BASELINE"
