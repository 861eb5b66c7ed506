#!/usr/bin/env bash
# store.sh — issue 3's measurements, each side by side with its anchor in one run:
#   usage    mh-quota show / recalc ADDRESS  vs  du -sb of that 100,000-message Maildir
#   purge    mh-purge ADDRESS --older-than 30d  vs  find DIR -mtime +30 -type f -delete
#            on an identical copy (cold and warm caches)
#   deliver  N sequential libspool deliveries (bench/deliver_bench)  vs  fsbench.c (the
#            physical floor: write + fsync + rename) in the same spool tree
#   bash bench/store.sh                 # as root for the cold-cache runs; ~10 min idle
# Environment: TESTS ["usage purge deliver"], REPS [3], MESSAGES [100000], SIZE [4096],
# OLD_DAYS [40], CUTOFF_DAYS [30], DELIVERIES [2000], BUILD, WORK (wiped), OUT,
# FSBENCH_SRC, DROP_CACHES [1], KEEP=1 keeps WORK, SKIP_BUILD=1.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
WORK=${WORK:-/tmp/mh-bench/store}
OUT=${OUT:-$HERE/out}
TESTS=${TESTS:-"usage purge deliver"}
REPS=${REPS:-3}
MESSAGES=${MESSAGES:-100000}
SIZE=${SIZE:-4096}
OLD_DAYS=${OLD_DAYS:-40}
CUTOFF_DAYS=${CUTOFF_DAYS:-30}
DELIVERIES=${DELIVERIES:-2000}
DROP_CACHES=${DROP_CACHES:-1}
KEEP=${KEEP:-0}
FSBENCH_SRC=${FSBENCH_SRC:-$ROOT/../shared/bench/fsbench.c}
BENCH=(python3 "$HERE/benchlib.py")

MH_USER=$BUILD/tools/mh-user/mh-user
MH_QUOTA=$BUILD/tools/mh-quota/mh-quota
MH_PURGE=$BUILD/tools/mh-purge/mh-purge
DELIVER_BENCH=$BUILD/bench/deliver_bench
FSBENCH=$OUT/fsbench

SPOOL=$WORK/spool
DOMAIN=bench.test
PURGE_ADDR=purge@$DOMAIN            # holds the 100,000-message Maildir
DELIVER_ADDR=deliver@$DOMAIN        # deliver_bench delivers here
FLOOR_ADDR=floor@$DOMAIN            # fsbench writes into this account's Maildir
MASTER=$WORK/master/Maildir         # pristine test Maildir, copied for every run
FIND_DIR=$WORK/find/Maildir         # the identical copy find works on
PWFILE=$WORK/password

mkdir -p "$OUT"
RESULTS=$OUT/store-$(date +%Y%m%d-%H%M%S).txt

log() { printf '[store %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
want() { [[ " $TESTS " == *" $1 "* ]]; }
maildir_of() { echo "$SPOOL/domains/$DOMAIN/accounts/${1%@*}/Maildir"; }
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }

build() {
    [ "${SKIP_BUILD:-0}" = 1 ] && return 0
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMH_BUILD_BENCH=ON >/dev/null
    make -C "$BUILD" -j2 mh-user mh-quota mh-purge deliver_bench >/dev/null
}

cold_ok() { [ "$DROP_CACHES" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; }
cache_modes() { if cold_ok; then echo "cold warm"; else echo warm; fi; }
# Sets CACHE_ARGS: the benchlib time options that give cache state $1 (cold or warm).
set_cache_args() { CACHE_ARGS=(); if [ "$1" = cold ]; then CACHE_ARGS=(--drop-caches); fi; }

# "BYTES MESSAGES" of an account as mh-quota reports it.
quota_usage() { "$MH_QUOTA" --spool "$SPOOL" show "$1" --json | "${BENCH[@]}" usage; }

setup_spool() {
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    local a
    for a in "$PURGE_ADDR" "$DELIVER_ADDR" "$FLOOR_ADDR"; do
        "$MH_USER" --spool "$SPOOL" add "$a" --password-stdin -q <"$PWFILE"
    done
}

# Fresh identical copies of the master Maildir: one in the account, one for find.
install_copies() {
    local md; md=$(maildir_of "$PURGE_ADDR")
    rm -rf "$md" "$FIND_DIR"
    mkdir -p "$(dirname "$FIND_DIR")"
    cp -a "$MASTER" "$md"
    cp -a "$MASTER" "$FIND_DIR"
    sync
}

# ------------------------------------------------------------------ usage
test_usage() {
    local md mode want_bytes got
    md=$(maildir_of "$PURGE_ADDR")
    install_copies
    want_bytes=$(( MESSAGES * SIZE ))
    got=$(quota_usage "$PURGE_ADDR")
    [ "$got" = "$want_bytes $MESSAGES" ] || die "mh-quota show says '$got', expected '$want_bytes $MESSAGES'"
    for mode in $(cache_modes); do
        set_cache_args "$mode"
        [ "$mode" = warm ] && du -sb "$md" >/dev/null
        {
            "${BENCH[@]}" time --name "du_$mode" --runs 5 --warmup 0 "${CACHE_ARGS[@]}" --capture-first bytes \
                -- du -sb "$md"
            "${BENCH[@]}" time --name "quota_show_$mode" --runs 20 --warmup 0 "${CACHE_ARGS[@]}" \
                -- "$MH_QUOTA" --spool "$SPOOL" show "$PURGE_ADDR"
            "${BENCH[@]}" time --name "quota_recalc_$mode" --runs 5 --warmup 0 "${CACHE_ARGS[@]}" \
                -- "$MH_QUOTA" --spool "$SPOOL" recalc "$PURGE_ADDR"
            # Context: the same on an empty account (no dependence on the message count),
            # and what merely starting mh-quota costs (--version touches no spool file).
            "${BENCH[@]}" time --name "quota_show_empty_$mode" --runs 20 --warmup 0 "${CACHE_ARGS[@]}" \
                -- "$MH_QUOTA" --spool "$SPOOL" show "$DELIVER_ADDR"
            "${BENCH[@]}" time --name "quota_version_$mode" --runs 20 --warmup 0 "${CACHE_ARGS[@]}" \
                -- "$MH_QUOTA" --version
        } | emit
    done
    got=$(quota_usage "$PURGE_ADDR")
    [ "$got" = "$want_bytes $MESSAGES" ] || die "after recalc mh-quota show says '$got'"
    log "usage: mh-quota agrees with the files ($got)"
}

# ------------------------------------------------------------------ purge
# One rep: both copies fresh and in the same cache state; who goes first alternates.
purge_once() {  # rep mode
    local r=$1 mode=$2 md left_mh left_find first
    set_cache_args "$mode"
    md=$(maildir_of "$PURGE_ADDR")
    install_copies
    [ "$mode" = warm ] && du -sb "$md" "$FIND_DIR" >/dev/null
    local mh_cmd=("${BENCH[@]}" time --name "purge_mh_$mode" --runs 1 --run-offset $((r - 1)) --sync "${CACHE_ARGS[@]}"
                  -- "$MH_PURGE" --spool "$SPOOL" "$PURGE_ADDR" --older-than "${CUTOFF_DAYS}d" --quiet)
    local find_cmd=("${BENCH[@]}" time --name "purge_find_$mode" --runs 1 --run-offset $((r - 1)) --sync "${CACHE_ARGS[@]}"
                    -- find "$FIND_DIR" -mtime "+$CUTOFF_DAYS" -type f -delete)
    if (( r % 2 )); then first=mh-purge; "${mh_cmd[@]}" | emit; "${find_cmd[@]}" | emit
    else first="find"; "${find_cmd[@]}" | emit; "${mh_cmd[@]}" | emit; fi
    left_mh=$("${BENCH[@]}" count --dir "$md")
    left_find=$("${BENCH[@]}" count --dir "$FIND_DIR")
    local keep=$(( MESSAGES - (MESSAGES + 1) / 2 ))
    echo "RESULT name=purge_check_$mode run=$r first=$first left_mh=$left_mh left_find=$left_find expect=$keep ok=$([ "$left_mh" = "$keep" ] && [ "$left_find" = "$keep" ] && echo 1 || echo 0)" | emit
    [ "$left_mh" = "$keep" ] || log "WARNING: mh-purge left $left_mh messages, expected $keep"
    local got; got=$(quota_usage "$PURGE_ADDR")
    [ "$got" = "$(( keep * SIZE )) $keep" ] || log "WARNING: after mh-purge mh-quota shows '$got', expected '$(( keep * SIZE )) $keep'"
}

test_purge() {
    local r mode
    for ((r = 1; r <= REPS; r++)); do
        for mode in $(cache_modes); do
            log "purge rep $r ($mode)"
            purge_once "$r" "$mode"
        done
    done
}

# ---------------------------------------------------------------- deliver
fresh_account() {
    "$MH_USER" --spool "$SPOOL" del "$1" --force -q
    "$MH_USER" --spool "$SPOOL" add "$1" --password-stdin -q <"$PWFILE"
}

deliver_ours() {  # rep
    "${BENCH[@]}" record --name deliver_libspool --run "$1" \
        -- "$DELIVER_BENCH" "$SPOOL" "$DELIVER_ADDR" "$DELIVERIES" "$SIZE" | emit
}

deliver_floor() {  # rep mode
    "${BENCH[@]}" record --name "deliver_floor_${2/+/}" --run "$1" \
        -- "$FSBENCH" "$(maildir_of "$FLOOR_ADDR")" "$DELIVERIES" "$SIZE" "$2" 1 | emit
}

# Every rep starts from empty accounts; who goes first alternates.
test_deliver() {
    local r got want="$(( DELIVERIES * SIZE )) $DELIVERIES"
    for ((r = 1; r <= REPS; r++)); do
        log "deliver rep $r: $DELIVERIES × $SIZE bytes"
        fresh_account "$DELIVER_ADDR"; fresh_account "$FLOOR_ADDR"; sync
        if (( r % 2 )); then deliver_ours "$r"; sync; fi
        deliver_floor "$r" fsync
        fresh_account "$FLOOR_ADDR"; sync
        deliver_floor "$r" fsync+dir
        if (( r % 2 == 0 )); then sync; deliver_ours "$r"; fi
        got=$(quota_usage "$DELIVER_ADDR")
        [ "$got" = "$want" ] || log "WARNING: after delivery mh-quota shows '$got', expected '$want'"
        [ "$("${BENCH[@]}" count --dir "$(maildir_of "$DELIVER_ADDR")")" = "$DELIVERIES" ] \
            || log "WARNING: $DELIVER_ADDR does not hold $DELIVERIES messages"
    done
}

# ------------------------------------------------------------------- main
trap cleanup EXIT
build
for b in "$MH_USER" "$MH_QUOTA" "$MH_PURGE"; do [ -x "$b" ] || die "no $b (see bench/README.md)"; done
if want deliver; then
    [ -x "$DELIVER_BENCH" ] || die "no $DELIVER_BENCH (configure with -DMH_BUILD_BENCH=ON)"
    [ -r "$FSBENCH_SRC" ] || die "no fsbench source at $FSBENCH_SRC (set FSBENCH_SRC)"
    cc -O2 -o "$FSBENCH" "$FSBENCH_SRC"
fi
cold_ok || log "cold-cache runs skipped (need root and DROP_CACHES=1)"
rm -rf "$WORK"; mkdir -p "$WORK"
echo "bench-password-1" >"$PWFILE"
echo "INFO host kernel=$(uname -r) cpus=$(nproc) load=$(cut -d" " -f1 /proc/loadavg) fs=$(findmnt -no FSTYPE -T "$WORK" | head -1) work=$WORK reps=$REPS messages=$MESSAGES size=$SIZE old_days=$OLD_DAYS cutoff_days=$CUTOFF_DAYS deliveries=$DELIVERIES" | emit
setup_spool
if want usage || want purge; then
    log "building the $MESSAGES-message master Maildir"
    "${BENCH[@]}" mkmaildir --dir "$MASTER" --n "$MESSAGES" --size "$SIZE" --old-days "$OLD_DAYS" >/dev/null
fi
want usage && test_usage
want purge && test_purge
want deliver && test_deliver

log "medians (A/B per row)"
rows=()
for mode in $(cache_modes); do
    want usage && rows+=(
        --row "usage $mode: du -sb / mh-quota show;du_$mode;quota_show_$mode;secs;>=100"
        --row "usage $mode: mh-quota show full / empty account;quota_show_$mode;quota_show_empty_$mode;secs;<=1.5"
        --row "usage $mode: mh-quota show / mh-quota --version;quota_show_$mode;quota_version_$mode;secs;"
        --row "usage $mode: mh-quota recalc / du -sb;quota_recalc_$mode;du_$mode;secs;<=1.5")
    want purge && rows+=(
        --row "purge $mode: mh-purge / find;purge_mh_$mode;purge_find_$mode;secs;<=1.2"
        --row "purge $mode incl. sync: mh-purge / find;purge_mh_$mode;purge_find_$mode;secs_incl_sync;<=1.2")
done
want deliver && rows+=(
    --row "delivery rate: libspool / fsbench fsync;deliver_libspool;deliver_floor_fsync;files_per_s;>=0.8"
    --row "delivery rate: libspool / fsbench fsync+dir;deliver_libspool;deliver_floor_fsyncdir;files_per_s;>=0.8")
"${BENCH[@]}" table --results "$RESULTS" "${rows[@]}" | emit
log "results -> $RESULTS"
