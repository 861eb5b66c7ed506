#!/usr/bin/env bash
# provision.sh — issue 2's measurement: mh-user per-account operations must cost the same
# on a spool of 1,000 domains × 100 accounts as on a spool of 1 domain × 1 account (O(1)).
# Builds the big spool fast by copying one real account made by `mh-user add` (see README).
#
#   bash bench/provision.sh            # ~3 min; results in bench/out/provision-*.txt
# Environment: BUILD (build dir, default build-bench), WORK (scratch dir, wiped),
# DOMAINS [1000], ACCOUNTS [100], RUNS [20], WARMUP [2], KEEP=1 keeps the spools,
# SKIP_BUILD=1 uses the binaries as they are.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
WORK=${WORK:-/tmp/mh-bench/provision}
OUT=${OUT:-$HERE/out}
DOMAINS=${DOMAINS:-1000}
ACCOUNTS=${ACCOUNTS:-100}
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-2}
KEEP=${KEEP:-0}
BENCH=(python3 "$HERE/benchlib.py")
MH_USER=$BUILD/tools/mh-user/mh-user

mkdir -p "$OUT"
RESULTS=$OUT/provision-$(date +%Y%m%d-%H%M%S).txt
SMALL=$WORK/small        # 1 domain × 1 account: also the template for the big spool
BIG=$WORK/big
PWFILE=$WORK/password    # --password-stdin input (a bench password, not a secret)

log() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
SOLO_DOMAIN=solo.bench.test
domain_name() { printf 'd%04d.bench.test' "$1"; }
account_name() { printf 'u%03d' "$1"; }

build() {
    [ "${SKIP_BUILD:-0}" = 1 ] && return 0
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    make -C "$BUILD" -j2 mh-user >/dev/null
}

cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }

# The template: one domain and one account made by the real tool (real yescrypt hash).
make_small_spool() {
    "$MH_USER" --spool "$SMALL" domain add "$(domain_name 0)" -q
    "$MH_USER" --spool "$SMALL" add "$(account_name 0)@$(domain_name 0)" --password-stdin -q <"$PWFILE"
}

# Every domain is a cp -a of one staged domain directory, whose accounts are cp -a
# copies of the template account: byte-for-byte what mh-user writes.
make_big_spool() {
    local stage=$WORK/stage-domain i t0 secs
    t0=$(date +%s%3N)
    cp -a "$SMALL/domains/$(domain_name 0)" "$stage"
    for ((i = 1; i < ACCOUNTS; i++)); do
        cp -a "$stage/accounts/$(account_name 0)" "$stage/accounts/$(account_name "$i")"
    done
    cp -a "$SMALL" "$BIG"                     # skeleton: queue/ run/locks/ tls/
    rm -rf "$BIG/domains/$(domain_name 0)"
    for ((i = 0; i < DOMAINS; i++)); do
        cp -a "$stage" "$BIG/domains/$(domain_name "$i")"
    done
    rm -rf "$stage"
    # One more domain holding a single account: `show` sums its domain's usage, so this
    # separates "grows with the spool" from "grows with the accounts of one domain".
    cp -a "$SMALL/domains/$(domain_name 0)" "$BIG/domains/$SOLO_DOMAIN"
    sync
    secs=$(( ($(date +%s%3N) - t0) / 1000 ))
    log "big spool: $DOMAINS domains × $ACCOUNTS accounts (+ $SOLO_DOMAIN × 1) written in $secs s"
    echo "INFO provision_secs=$secs domains=$DOMAINS accounts_per_domain=$ACCOUNTS" | emit
}

# Reads the big spool back through mh-user: every domain with all its accounts, a few
# account lists in full, and the copied hash still verifies.
verify_big_spool() {
    local d mid last
    mid=$(domain_name $((DOMAINS / 2))); last=$(domain_name $((DOMAINS - 1)))
    "$MH_USER" --spool "$BIG" domain list --json | python3 -c '
import json, sys
doms = json.load(sys.stdin)["domains"]
want_d, want_a = int(sys.argv[1]), int(sys.argv[2])
bad = [d["domain"] for d in doms if d["accounts"] != (1 if d["domain"] == sys.argv[3] else want_a)]
assert len(doms) == want_d + 1 and not bad, (len(doms), bad[:5])' "$DOMAINS" "$ACCOUNTS" "$SOLO_DOMAIN" \
        || die "domain list of the big spool is wrong"
    for d in "$(domain_name 0)" "$mid" "$last"; do
        "$MH_USER" --spool "$BIG" list "$d" --json | python3 -c '
import json, sys
accts = json.load(sys.stdin)["accounts"]
names = sorted(a["address"] for a in accts)
want = sorted("u%03d@%s" % (i, sys.argv[2]) for i in range(int(sys.argv[1])))
assert names == want and all(a["state"] == "active" for a in accts), names[:3]' "$ACCOUNTS" "$d" \
            || die "mh-user list $d is wrong"
    done
    "$MH_USER" --spool "$BIG" auth-test "$(account_name $((ACCOUNTS - 1)))@$last" -q <"$PWFILE" \
        || die "the copied password hash does not verify"
    log "verified: $DOMAINS domains × $ACCOUNTS accounts readable by mh-user, hash verifies"
}

# One timed run of OP on the spool TAG (small|big); RUN 0 is an untimed warm-up. What the
# operation changed is undone afterwards, untimed, so every run starts from the same spool.
time_one() {  # op tag run
    local op=$1 tag=$2 run=$3 spool dom acct
    if [ "$tag" = small ]; then spool=$SMALL dom=$(domain_name 0) acct=$(account_name 0)
    elif [ "$op" = show_solo ]; then spool=$BIG dom=$SOLO_DOMAIN acct=$(account_name 0)
    else spool=$BIG dom=$(domain_name $((DOMAINS / 2))) acct=$(account_name $((ACCOUNTS / 2))); fi
    local u=("$MH_USER" --spool "$spool")
    local t=("${BENCH[@]}" time --name "${op}_$tag" --runs 1 --run-offset $((run - 1)))
    case $op in
        add)        "${t[@]}" --stdin "$PWFILE" -- "${u[@]}" add "newacct@$dom" --password-stdin -q
                    "${u[@]}" del "newacct@$dom" --force -q ;;
        domain_add) "${t[@]}" -- "${u[@]}" domain add newdomain.bench.test -q
                    "${u[@]}" domain del newdomain.bench.test --force -q ;;
        suspend)    "${t[@]}" -- "${u[@]}" suspend "$acct@$dom" -q
                    "${u[@]}" resume "$acct@$dom" -q ;;
        show|show_solo) "${t[@]}" -- "${u[@]}" show "$acct@$dom" ;;
        show_json)  "${t[@]}" -- "${u[@]}" show "$acct@$dom" --json ;;
        show_cold)  "${t[@]}" --drop-caches -- "${u[@]}" show "$acct@$dom" ;;
    esac
}

op_label() {
    case $1 in
        add)        echo "mh-user add (yescrypt)" ;;
        domain_add) echo "mh-user domain add" ;;
        suspend)    echo "mh-user suspend" ;;
        show)       echo "mh-user show (domain of $ACCOUNTS)" ;;
        show_json)  echo "mh-user show --json (domain of $ACCOUNTS)" ;;
        show_solo)  echo "mh-user show (1-account domain)" ;;
        show_cold)  echo "mh-user show, cold cache (domain of $ACCOUNTS)" ;;
    esac
}

# Small and big runs alternate (ABBA...), so load from anything else on the machine
# falls on both sides alike.
measure() {  # op runs
    local op=$1 runs=$2 r
    if [ "$op" != show_cold ]; then
        for ((r = 0; r < WARMUP; r++)); do time_one "$op" small 0 >/dev/null; time_one "$op" big 0 >/dev/null; done
    fi
    for ((r = 1; r <= runs; r++)); do
        if (( r % 2 )); then time_one "$op" small "$r"; time_one "$op" big "$r"
        else time_one "$op" big "$r"; time_one "$op" small "$r"; fi
    done | emit
}

trap cleanup EXIT
build
[ -x "$MH_USER" ] || die "no $MH_USER (build it: make -C $BUILD mh-user)"
rm -rf "$WORK"; mkdir -p "$WORK"
echo "bench-password-1" >"$PWFILE"
echo "INFO host kernel=$(uname -r) cpus=$(nproc) load=$(cut -d" " -f1 /proc/loadavg) fs=$(findmnt -no FSTYPE -T "$WORK" | head -1) runs=$RUNS warmup=$WARMUP" | emit

make_small_spool
make_big_spool
verify_big_spool

OPS="add domain_add suspend show show_json show_solo"
[ -w /proc/sys/vm/drop_caches ] && OPS="$OPS show_cold"
rows=()
for op in $OPS; do
    log "timing $op: small spool (1 × 1) vs big spool ($DOMAINS × $ACCOUNTS)"
    if [ "$op" = show_cold ]; then measure "$op" $(( RUNS < 10 ? RUNS : 10 )); else measure "$op" "$RUNS"; fi
    rows+=(--row "$(op_label "$op");${op}_big;${op}_small;secs;<=1.5")
done

log "medians, ratio = big / small (O(1): about 1)"
"${BENCH[@]}" table --results "$RESULTS" --header-a "big spool" --header-b "small spool" "${rows[@]}" | emit
log "results -> $RESULTS"
