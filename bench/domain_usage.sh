#!/usr/bin/env bash
# domain_usage.sh — issue 14: safe delivery into one account of a domain with a quota,
# with 10 and with 10,000 accounts in the domain. The domain's usage record
# (domains/D/domainsize) makes the quota check one small read; before it, the check summed
# every account's maildirsize under the quota lock (O(accounts) per delivery).
# Target: equal within noise. Runs as root or the spool's owner; nothing here asserts.
#   COUNT deliveries per run [2000], SIZE bytes [4096], REPS interleaved pairs [3],
#   BUILD [build-bench, Release], SKIP_BUILD=1, WORK [/tmp/mh-bench/domain-usage], KEEP=1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${BUILD:-$src/build-bench}
work=${WORK:-/tmp/mh-bench/domain-usage}
count=${COUNT:-2000}
size=${SIZE:-4096}
reps=${REPS:-3}

if [ -z "${SKIP_BUILD:-}" ]; then
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMH_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target deliver_bench mh-user >/dev/null
fi
mhuser=$build/tools/mh-user/mh-user
deliver=$build/bench/deliver_bench
rm -rf "$work"
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# A domain with a quota and N accounts. The accounts after the first are copies of it: the
# same files mh-user makes, without 10,000 password hashes.
make_spool() {
  local dir=$1 n=$2
  "$mhuser" --spool "$dir" --quiet domain add big.test --quota 100G
  echo bench-pw | "$mhuser" --spool "$dir" --quiet add a0@big.test --password-stdin
  local accounts=$dir/domains/big.test/accounts
  for ((i = 1; i < n; i++)); do cp -a "$accounts/a0" "$accounts/a$i"; done
}

for n in 10 10000; do make_spool "$work/spool-$n" "$n"; done
echo "INFO accounts=10,10000 count=$count size=$size reps=$reps load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
for ((r = 1; r <= reps; r++)); do
  for n in 10 10000; do
    line=$("$deliver" "$work/spool-$n" a0@big.test "$count" "$size")
    echo "RESULT name=deliver_quota_accounts_$n run=$r $line"
  done
done | tee "$work/results.txt"
python3 - "$work/results.txt" <<'PY'
import re, statistics, sys
rates = {}
for line in open(sys.argv[1]):
    m = re.search(r"name=deliver_quota_accounts_(\d+) .*files_per_s=([\d.]+)", line)
    if m:
        rates.setdefault(int(m.group(1)), []).append(float(m.group(2)))
small, big = statistics.median(rates[10]), statistics.median(rates[10000])
print(f"deliveries/s, domain with a quota: 10 accounts {small:.1f}, 10,000 accounts {big:.1f}, "
      f"ratio {big / small:.2f} (target: equal within noise)")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
