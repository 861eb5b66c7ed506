#!/usr/bin/env bash
# filters.sh — issue 10's measurements: what an account's filters cost mh-serve's SMTP
# ingest. In one run, interleaved:
#   A  every account has a filters.yaml with 10 forward profiles and 5 rules (delete/
#      bounce), none of whose conditions match the message (bench/filters.py yaml), so
#      each message is checked against all 15 and then stored as without filters;
#   B  the same accounts with no filters.yaml (the plain delivery path).
# MSGS [2,000] messages of SIZE [4,096] bytes per run, from SESSIONS [8] smtp-source
# processes started together, each sending to its own account (the same SESSIONS
# accounts in every run; ROTATE=1: the next ones each round) with one connection per
# message, as the shared harness's smtp-source runs (REUSE=1: one per session, -d).
# WARMUP [1] untimed rounds, then REPS [6] rounds of an A run and a B run, the order
# alternating; mh-serve is started fresh for every run. Target: median msgs/s A / B
# >= 0.9. mh-serve's CPU time per message (/proc/PID/task/*/schedstat; user/system
# from /proc/PID/stat) is reported too: it isolates the filters' cost from everything
# both variants share (fsyncs, the client, the scheduler).
# Then, when mh-filter builds, `mh-filter test ADDRESS < message` on a 4 KiB, 3 MB and
# 30 MB message and `mh-filter --version` (MH_FILTER_RUNS [5] runs each, one warm-up).
#
#   bash bench/filters.sh                 # as root; about 2 minutes
#   REPS=2 MSGS=400 bash bench/filters.sh # a quick check
#
# Environment: BUILD [build-bench] (configured and built here: mh-serve, mh-user, and
# mh-filter if it builds; SKIP_BUILD=1 uses the binaries as they are), WORK
# [/tmp/mh-bench/filters] (wiped at start, removed at the end unless KEEP=1), OUT
# [bench/out], REPS, WARMUP, MSGS, SIZE, SESSIONS, ACCOUNTS [50], REUSE [0], ROTATE [0],
# BIG_SIZES_MB ["3 30"], MH_FILTER_RUNS, TESTS ["smtp mhfilter"], JOBS [1] (build
# parallelism). Not run by ctest. Loopback only; the port is picked free at start;
# every process it starts is stopped by its PID.

set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
WORK=${WORK:-/tmp/mh-bench/filters}
OUT=${OUT:-$HERE/out}
REPS=${REPS:-6}                   # even: each variant goes first equally often
MSGS=${MSGS:-2000}
SIZE=${SIZE:-4096}
SESSIONS=${SESSIONS:-8}
ACCOUNTS=${ACCOUNTS:-50}
REUSE=${REUSE:-0}
ROTATE=${ROTATE:-0}
WARMUP=${WARMUP:-1}               # untimed rounds (recorded as warmup_*) before the REPS
BIG_SIZES_MB=${BIG_SIZES_MB:-"3 30"}
MH_FILTER_RUNS=${MH_FILTER_RUNS:-5}
TESTS=${TESTS:-"smtp mhfilter"}
JOBS=${JOBS:-1}
KEEP=${KEEP:-0}
PY=(python3 "$HERE/filters.py")
BENCH=(python3 "$HERE/benchlib.py")

MH_USER=$BUILD/tools/mh-user/mh-user
MH_SERVE=$BUILD/tools/mh-serve/mh-serve
MH_FILTER=$BUILD/tools/mh-filter/mh-filter
SPOOL=$WORK/spool
DOMAIN=bench.test
ACCT_DIR=$SPOOL/domains/$DOMAIN/accounts   # one directory per account
PARK=$WORK/parked                 # variant B: the accounts' filters.yaml, moved aside
SENDER=taro.yamada@remote.test
OWNER=mhbench                     # the spool's owner (as in smtp.sh); mh-serve drops to it
NAME_A=mhserve_filters_4k_c8
NAME_B=mhserve_nofilters_4k_c8
[ "$SIZE" = 4096 ] && [ "$SESSIONS" = 8 ] || { NAME_A=mhserve_filters_${SIZE}b_c$SESSIONS; NAME_B=mhserve_nofilters_${SIZE}b_c$SESSIONS; }

mkdir -p "$OUT"
RESULTS=$OUT/filters-$(date +%Y%m%d-%H%M%S).txt
T_START=$(date +%s)
SERVE_PID=
HAVE_MH_FILTER=0

log() { printf '[filters %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
info() { echo "INFO $*" | emit; }
want() { [[ " $TESTS " == *" $1 "* ]]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
acct() { printf 'acct%02d@%s' "$1" "$DOMAIN"; }

# --- processes we start, stopped by PID only ----------------------------------------
stop_serve() {
    local i pid=$SERVE_PID
    [ -n "$pid" ] || return 0
    SERVE_PID=
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mh-serve ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_serve
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
    log "done in $(( $(date +%s) - T_START )) s; results in $RESULTS"
    exit "$rc"
}

# --- binaries -----------------------------------------------------------------------
# mh-filter is optional: the SMTP runs write filters.yaml themselves and need only
# mh-serve and mh-user.
build() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        [ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] \
            || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        log "building mh-serve mh-user in $BUILD (-j$JOBS)"
        cmake --build "$BUILD" -j"$JOBS" --target mh-serve mh-user >/dev/null
        if want mhfilter; then
            cmake --build "$BUILD" -j"$JOBS" --target mh-filter >"$WORK/mh-filter-build.log" 2>&1 \
                || log "mh-filter does not build (see $WORK/mh-filter-build.log); its timings are skipped"
        fi
    fi
    [ -x "$MH_SERVE" ] && [ -x "$MH_USER" ] || die "no mh-serve/mh-user in $BUILD"
    if want mhfilter && [ -x "$MH_FILTER" ] && "$MH_FILTER" --version >/dev/null 2>&1; then HAVE_MH_FILTER=1; fi
}

# --- the spool ----------------------------------------------------------------------
# ACCOUNTS accounts made with the real tool (yescrypt hashes; nobody logs in), plus
# probe@, whose filter does match: the smoke test below shows that the daemon applies
# filters to our message at all. SMTP on loopback only, loopback trusted (no reverse-DNS
# lookups), the outbound queue held (nothing leaves; no condition matches anyway).
make_spool() {
    local i
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    for ((i = 1; i <= ACCOUNTS; i++)); do
        echo benchpw | "$MH_USER" --spool "$SPOOL" add "$(acct "$i")" --password-stdin -q
    done
    echo benchpw | "$MH_USER" --spool "$SPOOL" add "probe@$DOMAIN" --password-stdin -q
    cat >"$SPOOL/mailhost.yaml" <<EOF
# bench/filters.sh: SMTP on loopback only; loopback trusted; nothing is sent out
listen: { smtp: "127.0.0.1:$PORT" }
trusted_networks: ["127.0.0.0/8"]
outbound: { hold: true }
timeouts: { greet_wait: 0 }  # per-message connections: measure delivery, not the pregreet wait
EOF
    id "$OWNER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$OWNER"
    chown -R "$OWNER:" "$SPOOL"
    "$MH_SERVE" --spool "$SPOOL" --check-config >/dev/null 2>>"$WORK/mh-serve.log" \
        || die "mh-serve --check-config refuses $SPOOL/mailhost.yaml (see $WORK/mh-serve.log)"
}

# filters.yaml as the spool owner would have it; the file the tool writes has the same
# content model (mh-filter show reads it back below when it is built).
put_filters() {  # FILE ADDRESS
    local dir=$ACCT_DIR/${2%@*}
    install -o "$OWNER" -g "$(id -gn "$OWNER")" -m 0640 "$1" "$dir/filters.yaml"
}
# Variant A and B differ by renames only: each account's filters.yaml is written once
# (filters_on) and then moved between the account and PARK, on the same file system.
# Rewriting or deleting 50 files before a run would free blocks, and on a file system
# mounted with "discard" (as this machine's root is) the trims could land in the
# next run's fsyncs; a rename frees nothing.
filters_on() {
    local i n
    for ((i = 1; i <= ACCOUNTS; i++)); do
        n=acct$(printf %02d "$i")
        if [ -e "$PARK/$n.yaml" ]; then mv "$PARK/$n.yaml" "$ACCT_DIR/$n/filters.yaml"
        elif [ ! -e "$ACCT_DIR/$n/filters.yaml" ]; then put_filters "$WORK/filters.yaml" "$n@$DOMAIN"; fi
    done
}
filters_off() {
    local i n
    mkdir -p "$PARK"
    for ((i = 1; i <= ACCOUNTS; i++)); do
        n=acct$(printf %02d "$i")
        if [ -e "$ACCT_DIR/$n/filters.yaml" ]; then mv "$ACCT_DIR/$n/filters.yaml" "$PARK/$n.yaml"; fi
    done
}

start_serve() {
    local i
    echo "=== start $(date +%T) ===" >>"$WORK/mh-serve.log"
    "$MH_SERVE" --spool "$SPOOL" >>"$WORK/mh-serve.log" 2>&1 </dev/null &
    SERVE_PID=$!
    for ((i = 0; i < 150; i++)); do port_open "$PORT" && return 0; sleep 0.1; done
    die "mh-serve does not listen on $PORT (see $WORK/mh-serve.log)"
}

new_count() { find "$1/Maildir/new" -type f | wc -l; }

# Before anything is timed: the filters file must load and mean what we think. probe@
# gets the benchmark's filters plus one rule that matches the message ("subject contains
# 週次報告", the decoded Subject): a message to it must be discarded, one to acct01@
# without filters stored. With mh-filter: `show` must accept the file, and `test` must
# find no match for acct01@ and rule 1 for probe@.
smoke_test() {
    local probe=probe@$DOMAIN
    # The probe's file: the matching rule first, then the benchmark's own rules/profiles.
    python3 - "$WORK/filters.yaml" "$WORK/probe.yaml" <<'EOF'
import sys
src = open(sys.argv[1], encoding="utf-8").read()
out = src.replace("rules:\n", 'rules:\n  - {if: "subject contains 週次報告", action: delete}\n', 1)
open(sys.argv[2], "w", encoding="utf-8").write(out)
EOF
    put_filters "$WORK/probe.yaml" "$probe"
    if [ "$HAVE_MH_FILTER" = 1 ]; then
        put_filters "$WORK/filters.yaml" "$(acct 1)"
        "$MH_FILTER" --spool "$SPOOL" show "$(acct 1)" >"$WORK/mh-filter-show.txt" 2>&1 \
            || die "mh-filter show refuses the benchmark's filters.yaml: $(tail -3 "$WORK/mh-filter-show.txt")"
        "$MH_FILTER" --spool "$SPOOL" test "$(acct 1)" --sender "$SENDER" <"$WORK/msg.eml" >"$WORK/mh-filter-test.txt" 2>&1 \
            || die "mh-filter test failed: $(tail -3 "$WORK/mh-filter-test.txt")"
        grep -q '^step: none' "$WORK/mh-filter-test.txt" \
            || die "mh-filter test: a benchmark filter matches the message: $(head -1 "$WORK/mh-filter-test.txt")"
        "$MH_FILTER" --spool "$SPOOL" test "$probe" --sender "$SENDER" <"$WORK/msg.eml" >"$WORK/mh-filter-probe.txt" 2>&1 || true
        grep -q '^step: rule 1 ' "$WORK/mh-filter-probe.txt" \
            || die "mh-filter test: probe@'s rule 1 does not match: $(head -1 "$WORK/mh-filter-probe.txt")"
        rm -f "$ACCT_DIR/acct01/filters.yaml"
    fi
    start_serve
    local before_p before_a
    before_p=$(new_count "$ACCT_DIR/probe"); before_a=$(new_count "$ACCT_DIR/acct01")
    smtp-source -s 1 -m 1 -F "$WORK/msg.eml" -f "$SENDER" -t "$probe" -M mhbench.client "127.0.0.1:$PORT" \
        || die "smtp-source to $probe failed"
    smtp-source -s 1 -m 1 -F "$WORK/msg.eml" -f "$SENDER" -t "$(acct 1)" -M mhbench.client "127.0.0.1:$PORT" \
        || die "smtp-source to $(acct 1) failed"
    stop_serve
    [ "$(new_count "$ACCT_DIR/probe")" = "$before_p" ] \
        || die "probe@'s matching rule did not discard the message: filters are not applied (see $WORK/mh-serve.log)"
    [ "$(new_count "$ACCT_DIR/acct01")" = $((before_a + 1)) ] || die "the message to $(acct 1) was not stored"
    grep -q 'filters=' "$WORK/mh-serve.log" || log "WARNING: mh-serve's log does not name the filter that fired"
    info "smoke_test probe_discarded=1 plain_stored=1"
}

# One run of one variant: fresh mh-serve, then the load. Every run sends to the same
# SESSIONS accounts (ROTATE=1: each round to the next SESSIONS of them). With rotation
# the first run of each round, into Maildirs the previous round did not touch, came
# out 5-15 % slower than the second, so the pair ratios split by order; without it
# the two orders agree.
run_variant() {  # a|b round position(1: first of its round, 2: second) [name]
    local name accounts j first=0
    if [ "$1" = a ]; then filters_on; name=$NAME_A; else filters_off; name=$NAME_B; fi
    name=${4:-$name}
    [ "$ROTATE" = 1 ] && first=$(( ($2 - 1) * SESSIONS ))
    accounts=
    for ((j = 0; j < SESSIONS; j++)); do
        accounts+=${accounts:+,}$(acct $(( (first + j) % ACCOUNTS + 1 )))
    done
    sync
    start_serve
    sleep 0.5
    "${PY[@]}" load --name "$name" --run "$2" --port "$PORT" --msgs "$MSGS" --size "$MSG_BYTES" \
        --msg-file "$WORK/msg.eml" --sender "$SENDER" --accounts "$accounts" --accounts-dir "$ACCT_DIR" \
        --server-pid "$SERVE_PID" --position "$3" $([ "$REUSE" = 1 ] && echo --reuse) | emit || true
    stop_serve
}

test_smtp() {
    local r
    # WARMUP rounds first, recorded under their own names and left out of the tables:
    # the first runs on a fresh spool came out 10-25 % slower than the rest.
    for ((r = 1; r <= WARMUP; r++)); do
        log "warm-up round $r/$WARMUP"
        run_variant a "$r" 1 "warmup_$NAME_A"; run_variant b "$r" 2 "warmup_$NAME_B"
    done
    for ((r = 1; r <= REPS; r++)); do
        info "round=$r load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) compiles=$(pgrep -c cc1plus || true)"
        if (( r % 2 )); then
            log "round $r/$REPS: A (filters), then B (none)"
            run_variant a "$r" 1; run_variant b "$r" 2
        else
            log "round $r/$REPS: B (none), then A (filters)"
            run_variant b "$r" 1; run_variant a "$r" 2
        fi
    done
    # A filter that fired would have changed the message's fate: none may.
    local fired
    fired=$(grep 'filters=' "$WORK/mh-serve.log" | grep -vc "probe@$DOMAIN" || true)
    [ "$fired" = 0 ] || log "WARNING: a filter fired $fired times during the timed runs (see $WORK/mh-serve.log)"
    info "filters_fired=$fired"
}

# mh-filter test ADDRESS < message: start-up, the filters' load, the header read and the
# rest of stdin counted. The 30 MB message's size fires the `size > 20M` rule; the
# smaller ones go through all 15 conditions.
test_mhfilter() {
    local mb f bytes
    filters_on
    # The start-up floor: the same binary doing nothing.
    "${BENCH[@]}" time --name mhfilter_test_version --runs "$MH_FILTER_RUNS" --warmup 1 \
        -- "$MH_FILTER" --version | sed "s/\$/ bytes=0/" | emit || true
    for f in 4k $BIG_SIZES_MB; do
        if [ "$f" = 4k ]; then bytes=$MSG_BYTES; cp "$WORK/msg.eml" "$WORK/test-4k.eml"; mb=4k
        else mb=${f}M; bytes=$(( f * 1000 * 1000 )); "${PY[@]}" mkmsg --size "$bytes" --out "$WORK/test-$mb.eml" >/dev/null; fi
        "$MH_FILTER" --spool "$SPOOL" test "$(acct 1)" --sender "$SENDER" <"$WORK/test-$mb.eml" >"$WORK/mh-filter-test-$mb.txt" 2>&1 || true
        info "mhfilter_test size=$mb verdict=$(head -1 "$WORK/mh-filter-test-$mb.txt" | tr ' ' _)"
        "${BENCH[@]}" time --name "mhfilter_test_$mb" --runs "$MH_FILTER_RUNS" --warmup 1 --stdin "$WORK/test-$mb.eml" \
            -- "$MH_FILTER" --spool "$SPOOL" test "$(acct 1)" --sender "$SENDER" | sed "s/\$/ bytes=$bytes/" | emit || true
    done
    filters_off
}

# --- main ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (mh-serve drops to the spool owner)"
for c in smtp-source python3; do command -v "$c" >/dev/null || die "$c is missing"; done
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$WORK"; mkdir -p "$WORK"
build
PORT=$(python3 "$HERE/outbound.py" freeports 1)
"${PY[@]}" yaml >"$WORK/filters.yaml"
MSG_BYTES=$("${PY[@]}" mkmsg --size "$SIZE" --out "$WORK/msg.eml" | cut -d= -f2)
info "host kernel=$(uname -r) cpus=$(nproc) mh_serve_built=$(date -r "$MH_SERVE" +%FT%T) mh_filter=$HAVE_MH_FILTER build=$BUILD"
info "params reps=$REPS warmup=$WARMUP msgs=$MSGS size=$MSG_BYTES sessions=$SESSIONS accounts=$ACCOUNTS reuse=$REUSE rotate=$ROTATE port=$PORT load_at_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) compiles=$(pgrep -c cc1plus || true)"
log "results -> $RESULTS; logs in $WORK (KEEP=1 keeps them)"
log "spool with $ACCOUNTS accounts in $SPOOL"
make_spool
smoke_test
if want smtp; then test_smtp; fi
if want mhfilter; then
    if [ "$HAVE_MH_FILTER" = 1 ]; then test_mhfilter; else info "mhfilter_test skipped=not_built"; fi
fi
info "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) secs=$(( $(date +%s) - T_START ))"
if want smtp; then
    "${BENCH[@]}" table --results "$RESULTS" --header-a "A: filters msgs/s" --header-b "B: none msgs/s" \
        --row "$SIZE B c$SESSIONS msgs/s;$NAME_A;$NAME_B;msgs_per_s;>=0.9" \
        --row "mh-serve CPU µs/msg;$NAME_A;$NAME_B;cpu_us_per_msg;" | emit
fi
"${PY[@]}" table --results "$RESULTS" --a "$NAME_A" --b "$NAME_B" | emit
