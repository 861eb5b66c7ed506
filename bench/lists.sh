#!/usr/bin/env bash
# lists.sh — the lists issue's measurement: one post to a list of MEMBERS [5,000]
# members, LOCAL [2,500] local accounts and the rest remote at DOMAINS [50] remote
# domains, relayed to an aiosmtpd sink (relay.host). Timed from the 250 to the post's
# DATA until
#   local   every local copy is durable: mh-serve's "distributed as LIST #N" log line,
#           written after the copies are linked and their new/ directories fsynced
#           (cross-checked by the archive file's link count, and every member's Maildir
#           walked afterwards: exactly one copy each);
#   remote  the sink has accepted the post for every remote member (each exactly once).
# mh-serve's peak RSS (VmHWM) at the end of each run. Anchor, in the same run on the
# same disk: the shared fsbench.c (cc -O2), FS_FILES [2,000] files of 4,096 B with 8
# writers, "fsync" and "fsync+dir", one of each before every timed post.
# Targets: local copies/s >= 0.5 x fsbench fsync (8 writers); peak RSS < 64 MB.
#
#   bash bench/lists.sh                    # about 2-3 minutes after the build
#   REPS=1 bash bench/lists.sh             # a quick check
#
# Environment: BUILD [build-bench-lists] (Release, configured and built here with
# -j$JOBS [1]: mh-serve mh-user mh-list; SKIP_BUILD=1 uses the binaries as they are),
# WORK [/tmp/mh-bench/lists] (wiped at start, removed at the end unless KEEP=1), OUT
# [bench/out], REPS [3], WARMUP [1] (untimed posts first), LOCAL, MEMBERS, DOMAINS,
# SIZE [4096] (the post), FS_FILES, FSBENCH_SRC [../shared/bench/fsbench.c].
# Not run by ctest. Loopback only; ports are picked free at start; every process it
# starts is stopped by its PID (the sink lives inside lists.py).

set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench-lists}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
WORK=${WORK:-/tmp/mh-bench/lists}
OUT=${OUT:-$HERE/out}
REPS=${REPS:-3}
WARMUP=${WARMUP:-1}
MEMBERS=${MEMBERS:-5000}
LOCAL=${LOCAL:-2500}
REMOTE=$((MEMBERS - LOCAL))
DOMAINS=${DOMAINS:-50}
SIZE=${SIZE:-4096}
FS_FILES=${FS_FILES:-2000}
JOBS=${JOBS:-1}
KEEP=${KEEP:-0}
FSBENCH_SRC=${FSBENCH_SRC:-$ROOT/../shared/bench/fsbench.c}
PY=(python3 "$HERE/lists.py")
BENCH=(python3 "$HERE/benchlib.py")

MH_USER=$BUILD/tools/mh-user/mh-user
MH_LIST=$BUILD/tools/mh-list/mh-list
MH_SERVE=$BUILD/tools/mh-serve/mh-serve
SPOOL=$WORK/spool
DOMAIN=bench.test
LIST=ml@$DOMAIN
NAME=list_post_$MEMBERS
FSB=$WORK/fsbench
FSDIR=$WORK/fs                    # fsbench's Maildir: same file system as the spool

mkdir -p "$OUT"
RESULTS=$OUT/lists-$(date +%Y%m%d-%H%M%S).txt
T_START=$(date +%s)

log() { printf '[lists %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
info() { echo "INFO $*" | emit; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
    log "done in $(( $(date +%s) - T_START )) s; results in $RESULTS"
    exit "$rc"
}

build() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        [ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] \
            || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
        log "building mh-serve mh-user mh-list in $BUILD (-j$JOBS)"
        cmake --build "$BUILD" -j"$JOBS" --target mh-serve mh-user mh-list >"$WORK/build.log" 2>&1 \
            || die "build failed (see $WORK/build.log; KEEP=1 keeps it)"
    fi
    [ -x "$MH_SERVE" ] && [ -x "$MH_USER" ] && [ -x "$MH_LIST" ] || die "no mh-serve/mh-user/mh-list in $BUILD"
    [ -r "$FSBENCH_SRC" ] || die "no fsbench source at $FSBENCH_SRC (set FSBENCH_SRC)"
    cc -O2 -o "$FSB" "$FSBENCH_SRC" || die "cannot build fsbench"
}

# LOCAL accounts: u0000 made by mh-user (real yescrypt hash), the others cp -a copies of
# its directory (byte for byte what mh-user writes; the name is only the directory's),
# read back through `mh-user list`. The list (policy anyone) gets every member in one
# `mh-list members add` from stdin.
make_spool() {
    local i t0 n
    t0=$(date +%s)
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    echo benchpw | "$MH_USER" --spool "$SPOOL" add "u0000@$DOMAIN" --password-stdin -q
    local acc=$SPOOL/domains/$DOMAIN/accounts
    for ((i = 1; i < LOCAL; i++)); do cp -a "$acc/u0000" "$acc/$(printf 'u%04d' "$i")"; done
    n=$("$MH_USER" --spool "$SPOOL" list "$DOMAIN" --names | wc -l)
    [ "$n" = "$LOCAL" ] || die "mh-user list sees $n accounts, not $LOCAL"
    "$MH_LIST" --spool "$SPOOL" create "$LIST" --policy anyone -q
    "${PY[@]}" members --local "$LOCAL" --remote "$REMOTE" --domains "$DOMAINS" --domain "$DOMAIN" \
        | "$MH_LIST" --spool "$SPOOL" members add "$LIST" -q
    n=$("$MH_LIST" --spool "$SPOOL" members list "$LIST" | wc -l)
    [ "$n" = "$MEMBERS" ] || die "the list has $n members, not $MEMBERS"
    cat >"$SPOOL/mailhost.yaml" <<EOF
# bench/lists.sh: SMTP on loopback only; loopback trusted; remote mail to the sink
hostname: mx.bench.test
listen: { smtp: "127.0.0.1:$PORT" }
trusted_networks: ["127.0.0.0/8"]
relay: { host: "127.0.0.1:$SINK_PORT", tls: none }
outbound: { retry: [1s], give_up: 1d, timeout: 60s, connect_timeout: 5s }
limits: { sending_per_hour: 1000000 }
timeouts: { greet_wait: 0 }  # per-message connections: measure delivery, not the pregreet wait
EOF
    "$MH_SERVE" --spool "$SPOOL" --check-config >/dev/null 2>>"$WORK/mh-serve.log" \
        || die "mh-serve --check-config refuses $SPOOL/mailhost.yaml (see $WORK/mh-serve.log)"
    mkdir -p "$FSDIR"
    sync
    info "spool accounts=$LOCAL members=$MEMBERS remote_domains=$DOMAINS secs=$(( $(date +%s) - t0 ))"
}

fsbench() {  # MODE NAME RUN
    rm -rf "$FSDIR"; mkdir -p "$FSDIR/tmp" "$FSDIR/new" "$FSDIR/cur"; sync
    "${BENCH[@]}" record --name "$2" --run "$3" -- "$FSB" "$FSDIR" "$FS_FILES" 4096 "$1" 8 | emit || true
    rm -rf "$FSDIR"; sync
}

post() {  # NAME RUN
    sync
    "${PY[@]}" run --name "$1" --run "$2" --serve "$MH_SERVE" --spool "$SPOOL" --log "$WORK/mh-serve.log" \
        --port "$PORT" --sink-port "$SINK_PORT" --list "$LIST" --poster "poster$2-$1@client.test" \
        --local "$LOCAL" --remote "$REMOTE" --domains "$DOMAINS" --size "$SIZE" | emit || true
}

# --- main ---------------------------------------------------------------------------
command -v cc >/dev/null || die "cc is missing"
python3 -c 'import sys; sys.path.append("/usr/lib/python3/dist-packages"); import aiosmtpd' 2>/dev/null \
    || die "python3-aiosmtpd is missing"
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$WORK"; mkdir -p "$WORK"
build
mapfile -t PORTS < <("${PY[@]}" freeports 2)
PORT=${PORTS[0]}; SINK_PORT=${PORTS[1]}
info "host kernel=$(uname -r) cpus=$(nproc) mh_serve_built=$(date -r "$MH_SERVE" +%FT%T) build=$BUILD fs=$(df --output=source,fstype "$WORK" | tail -1 | tr -s ' ' ,)"
info "params reps=$REPS warmup=$WARMUP members=$MEMBERS local=$LOCAL remote=$REMOTE domains=$DOMAINS size=$SIZE fs_files=$FS_FILES load_at_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) compiles=$(pgrep -c cc1plus || true)"
log "results -> $RESULTS; scratch in $WORK (KEEP=1 keeps it)"
make_spool
for ((r = 1; r <= WARMUP; r++)); do
    log "warm-up post $r/$WARMUP"
    post "warmup_$NAME" "$r"
done
for ((r = 1; r <= REPS; r++)); do
    info "round=$r load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) compiles=$(pgrep -c cc1plus || true)"
    log "round $r/$REPS: fsbench fsync, fsync+dir (8 writers), then one post to $MEMBERS members"
    fsbench fsync fsbench_fsync_c8 "$r"
    fsbench fsync+dir fsbench_fsyncdir_c8 "$r"
    post "$NAME" "$r"
done
info "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) secs=$(( $(date +%s) - T_START ))"
"${PY[@]}" table --results "$RESULTS" --list-name "$NAME" --local "$LOCAL" --remote "$REMOTE" | emit
