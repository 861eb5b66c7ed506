#!/bin/bash
# run.sh — one libFuzzer run of a tests/fuzz target: a scratch copy of its committed seed
# corpus grows in /tmp/fuzz-work/TARGET/corpus (the committed one is never written), crash
# inputs land in …/artifacts/, libFuzzer's output in …/fuzz.log; a summary goes to stdout.
# Usage: tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer options]
#   TARGET: smtp_session | pop3_session | spool_yaml | address | mime_walk | mime_names
#   MH_FUZZ_BUILD: the clang build with MH_FUZZ=ON (default: build-fuzz beside this tree)
#   MH_FUZZ_WORK:  where scratch dirs go (default: /tmp/fuzz-work)
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer options]" >&2
  exit 64
fi
target=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${MH_FUZZ_BUILD:-$src/build-fuzz}
binary=$build/tests/fuzz/mh_fuzz_$target
seeds=$src/tests/fuzz/corpus/$target
work=${MH_FUZZ_WORK:-/tmp/fuzz-work}/$target

[ -d "$seeds" ] || { echo "run.sh: no seed corpus $seeds (unknown target '$target'?)" >&2; exit 64; }
[ -x "$binary" ] || { echo "run.sh: $binary missing: build it first (tests/fuzz/README.md)" >&2; exit 1; }

mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$seeds"/* "$work/corpus/"
log=$work/fuzz.log
echo "run.sh: $target for ${seconds}s, pid $$, log $log"

# Every UBSan report is fatal (as in the MH_SANITIZE build); leaks are findings too.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
status=0
# The outer bound: on an out-of-memory report libFuzzer prints a heap profile, which under
# ASan can take hours for a heap of millions of small blocks; never outlive the run by much.
timeout --kill-after=30 $((seconds + 300)) "$binary" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$@" "$work/corpus" >"$log" 2>&1 || status=$?

echo "run.sh: $target finished, exit $status"
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1 || true
echo "corpus: $(ls "$work/corpus" | wc -l) inputs (seeds: $(ls "$seeds" | wc -l))"
if [ -n "$(ls "$work/artifacts")" ]; then
  echo "FINDINGS in $work/artifacts:"
  ls -l "$work/artifacts"
  grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 || true
fi
exit "$status"
