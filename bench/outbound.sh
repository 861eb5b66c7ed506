#!/usr/bin/env bash
# outbound.sh — issue 9's measurements of mh-serve's outbound queue, in one run:
#   1. throughput: MSGS [1,000] × SIZE [4 KiB] submitted over SESSIONS [8] SMTP sessions,
#      through the queue, relayed to Postfix's smtp-sink; timed from the first submission
#      until the sink has received the last message. mh-serve (submission + AUTH, relay:
#      the sink) against Postfix as a relay (relayhost = the same sink; the client is in
#      mynetworks, no AUTH). REPS [3] pairs, the order alternating; target: ratio >= 2.
#   2. RSS of mh-serve with QUEUE_N [100,000] entries queued (target < 64 MB): the entries
#      are written straight into SPOOL/queue/ in libspool's format (bench/outbound.py
#      mkqueue), the daemon stopped. Two states: "deferred" (every entry's next_attempt
#      is an hour away: the runner reads the whole queue and waits) and "relay_down"
#      (every entry due, relay.host a port nobody listens on: the runner tries them all,
#      RSS_WAIT [40] s at most).
#   3. seconds from the start of mh-serve until the sink has the first message, with the
#      QUEUE_N entries due (target < 2 s), FIRST_REPS [3] times with a warm page cache and
#      (DROP_CACHES=1, the default) as many after drop_caches.
#
#   bash bench/outbound.sh                    # as root; about 3–4 minutes
#   REPS=1 QUEUE_N=10000 bash bench/outbound.sh
#
# Environment: MH_BUILD [build-rel] (mh-serve, mh-user; built only when missing), WORK
# [/tmp/mh-bench/outbound] (wiped at start, removed at the end unless KEEP=1), OUT
# [bench/out], REPS, MSGS, SIZE, SESSIONS, QUEUE_N, RSS_WAIT, FIRST_REPS, DROP_CACHES,
# TESTS ["throughput rss first"], SIDES ["postfix mhserve"], THROUGHPUT_FS [root] (or
# loop), MH_LISTENER [submission] (or smtp), RELAY_TLS [none] (or opportunistic;
# smtp-sink offers no STARTTLS), QFS_SIZE [4G]. Not run by ctest.
# Loopback only; ports are picked free at start. Everything it starts is stopped by PID.

set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
MH_BUILD=${MH_BUILD:-build-rel}
case $MH_BUILD in /*) ;; *) MH_BUILD=$ROOT/$MH_BUILD ;; esac
WORK=${WORK:-/tmp/mh-bench/outbound}
OUT=${OUT:-$HERE/out}
REPS=${REPS:-3}
MSGS=${MSGS:-1000}
SIZE=${SIZE:-4096}
SESSIONS=${SESSIONS:-8}
QUEUE_N=${QUEUE_N:-100000}
RSS_WAIT=${RSS_WAIT:-40}
FIRST_REPS=${FIRST_REPS:-3}
DROP_CACHES=${DROP_CACHES:-1}
TESTS=${TESTS:-"throughput rss first"}
SIDES=${SIDES:-"postfix mhserve"}       # throughput: "postfix" alone needs no mh-serve
MH_LISTENER=${MH_LISTENER:-submission}
RELAY_TLS=${RELAY_TLS:-none}
QFS_SIZE=${QFS_SIZE:-4G}          # sparse image for the 100,000-entry queue
THROUGHPUT_FS=${THROUGHPUT_FS:-root}  # "loop": the throughput runs on that image too
KEEP=${KEEP:-0}
PY=(python3 "$HERE/outbound.py")

MH_USER=$MH_BUILD/tools/mh-user/mh-user
MH_SERVE=$MH_BUILD/tools/mh-serve/mh-serve
SPOOL=$WORK/spool                 # throughput; the 100,000-entry tests use $QFS/spool
QFS=$WORK/qfs                     # an ext4 image, loop-mounted (see mount_qfs)
QFS_MOUNTED=0
PF=$WORK/postfix
PF_ETC=$PF/etc
PF_Q=$PF/queue
DOMAIN=bench.test
SENDER=sender@$DOMAIN
PASSWORD=benchpw
RCPT=someone@remote.test          # not hosted here: mh-serve and Postfix relay it
OWNER=mhbench                     # the spool's owner (as in smtp.sh); mh-serve drops to it
SINK_USER=nobody

mkdir -p "$OUT"
RESULTS=$OUT/outbound-$(date +%Y%m%d-%H%M%S).txt
T_START=$(date +%s)
SERVE_PID=
PF_STARTED=0

log() { printf '[outbound %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
info() { echo "INFO $*" | emit; }
want() { [[ " $TESTS " == *" $1 "* ]]; }
side() { [[ " $SIDES " == *" $1 "* ]]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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
# The mh-serve that outbound.py first started (it stops it itself; this is for Ctrl-C).
stop_first_pid() {
    local f=$WORK/first.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f"); rm -f "$f"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mh-serve ] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$SPOOL" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    sleep 1
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mh-serve ]; then kill -KILL "$pid" 2>/dev/null || true; fi
}
stop_postfix() {
    local pid i
    [ "$PF_STARTED" = 1 ] || return 0
    PF_STARTED=0
    pid=$(tr -d ' \n' <"$PF_Q/pid/master.pid" 2>/dev/null || true)
    postfix -c "$PF_ETC" stop >>"$WORK/postfix.log" 2>&1 || true
    [ -n "$pid" ] || return 0
    for ((i = 0; i < 100; i++)); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = master ]; then kill -KILL "$pid" 2>/dev/null || true; fi
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_serve; stop_first_pid; stop_postfix
    # smtp-sink and client processes are children of outbound.py, which stops them; a
    # killed outbound.py leaves its sink: stop ours (listening on our sink port) by PID.
    local p
    for p in $(ss -ltnpH "sport = :${SINK_PORT:-0}" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = smtp-sink ]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    if [ "$QFS_MOUNTED" = 1 ]; then
        sync
        if umount "$QFS" 2>/dev/null || { sleep 2; umount "$QFS"; }; then
            QFS_MOUNTED=0
        else
            log "WARNING: cannot unmount $QFS; $WORK is left in place"; KEEP=1
        fi
    fi
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
    log "done in $(( $(date +%s) - T_START )) s; results in $RESULTS"
    exit "$rc"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- binaries -----------------------------------------------------------------------
binaries() {
    if [ ! -x "$MH_SERVE" ] || [ ! -x "$MH_USER" ]; then
        log "no mh-serve/mh-user in $MH_BUILD: building them (Release)"
        cmake -S "$ROOT" -B "$MH_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$MH_BUILD" -j2 --target mh-serve mh-user >/dev/null
    fi
    if [ ! -x "$MH_SERVE" ] || [ ! -x "$MH_USER" ]; then die "no mh-serve/mh-user in $MH_BUILD"; fi
}

# --- mh-serve -----------------------------------------------------------------------
# The 100,000-entry queue lives on a file system of its own: an ext4 image in WORK,
# loop-mounted (fsync and drop_caches behave as on the disk below it). The root file
# system here is mounted with "discard": every unlink waits for the block device
# (~1.6 ms each), so removing 200,000 queue files afterwards would take five minutes;
# the image goes with one umount and one unlink. Created with the inode tables written
# (no lazy init thread writing in the background while we measure).
mount_qfs() {
    mkdir -p "$QFS"
    truncate -s "$QFS_SIZE" "$WORK/qfs.img"
    mkfs.ext4 -q -F -N $(( QUEUE_N * 2 + 20000 )) -E lazy_itable_init=0,lazy_journal_init=0,nodiscard \
        "$WORK/qfs.img" || die "mkfs.ext4 $WORK/qfs.img failed"
    mount -o loop "$WORK/qfs.img" "$QFS" || die "cannot loop-mount $WORK/qfs.img"
    QFS_MOUNTED=1
    info "queue_fs $(findmnt -rno SOURCE,FSTYPE,OPTIONS "$QFS" | tr ' ' :) size=$QFS_SIZE"
}

make_spool() {
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    echo "$PASSWORD" | "$MH_USER" --spool "$SPOOL" add "$SENDER" --password-stdin -q
    id "$OWNER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$OWNER"
    chown -R "$OWNER:" "$SPOOL"
}

# write_config RELAY_PORT [RETRY]: mailhost.yaml. No sending limit; loopback trusted (no
# reverse-DNS lookups) and, by default, allowed to log in without TLS.
write_config() {
    local retry=${2:-}
    cat >"$SPOOL/mailhost.yaml" <<EOF
# bench/outbound.sh
hostname: mh-bench.localdomain
listen: { $MH_LISTENER: "127.0.0.1:$MH_PORT" }
trusted_networks: ["127.0.0.0/8"]
relay: { host: "127.0.0.1:$1", tls: $RELAY_TLS }
outbound: { concurrency: 20${retry:+, retry: [$retry]} }
limits: { sending_per_hour: 0 }
EOF
    chown "$OWNER:" "$SPOOL/mailhost.yaml"
    "$MH_SERVE" --spool "$SPOOL" --check-config >/dev/null 2>>"$WORK/mh-serve.log" \
        || die "mh-serve --check-config refuses $SPOOL/mailhost.yaml (see $WORK/mh-serve.log)"
}

start_serve() {
    local i
    echo "=== start $(date +%T) ===" >>"$WORK/mh-serve.log"
    SERVE_T0=$EPOCHREALTIME
    "$MH_SERVE" --spool "$SPOOL" >>"$WORK/mh-serve.log" 2>&1 </dev/null &
    SERVE_PID=$!
    for ((i = 0; i < 150; i++)); do port_open "$MH_PORT" && return 0; sleep 0.1; done
    die "mh-serve does not listen on $MH_PORT (see $WORK/mh-serve.log)"
}

clear_mh_queue() {
    find "$SPOOL/queue" -maxdepth 1 -type f \( -name '*.env' -o -name '*.msg' \) -delete
    rm -rf "$SPOOL/queue/corrupt"
}

# --- Postfix as a relay -------------------------------------------------------------
# Its own config dir and queue under WORK (like ../shared/bench/baseline.sh): smtpd on
# 127.0.0.1:PF_PORT, nothing local (mydestination empty), everything to
# relayhost = [127.0.0.1]:SINK_PORT, the client relays as a member of mynetworks. All
# performance settings keep their defaults (concurrency 20 per destination, connection
# cache on demand, in_flow_delay 1s). Postfix has no fsync switch.
setup_postfix() {
    mkdir -p "$PF_ETC" "$PF_Q" "$PF/data"
    cat >"$PF_ETC/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_Q
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = pf-bench.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
local_recipient_maps =
relayhost = [127.0.0.1]:$SINK_PORT
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
EOF
    cat >"$PF_ETC/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
local      unix  -       n       n       -       -       local
virtual    unix  -       n       n       -       -       virtual
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
EOF
    chown postfix "$PF/data"
    postfix -c "$PF_ETC" check >>"$WORK/postfix.log" 2>&1 || die "postfix check failed (see $WORK/postfix.log)"
}

start_postfix() {
    local i
    postfix -c "$PF_ETC" start >>"$WORK/postfix.log" 2>&1 </dev/null || die "postfix start failed (see $WORK/postfix.log)"
    PF_STARTED=1
    for ((i = 0; i < 100; i++)); do port_open "$PF_PORT" && return 0; sleep 0.1; done
    die "Postfix does not listen on $PF_PORT"
}

clear_pf_queue() {
    postsuper -c "$PF_ETC" -d ALL >>"$WORK/postfix.log" 2>&1 || true
}

# --- 1. throughput ------------------------------------------------------------------
run_postfix() {  # run
    start_postfix
    sleep 1
    "${PY[@]}" throughput --name postfix_outbound_4k_c8 --run "$1" --port "$PF_PORT" \
        --msgs "$MSGS" --size "$SIZE" --sessions "$SESSIONS" --sender "$SENDER" --rcpt "$RCPT" \
        --sink-port "$SINK_PORT" --sink-user "$SINK_USER" | emit || true
    stop_postfix
    clear_pf_queue
}
run_mhserve() {  # run
    write_config "$SINK_PORT"
    start_serve
    sleep 1
    "${PY[@]}" throughput --name mhserve_outbound_4k_c8 --run "$1" --port "$MH_PORT" \
        --user "$SENDER" --password "$PASSWORD" --server-pid "$SERVE_PID" \
        --msgs "$MSGS" --size "$SIZE" --sessions "$SESSIONS" --sender "$SENDER" --rcpt "$RCPT" \
        --sink-port "$SINK_PORT" --sink-user "$SINK_USER" | emit || true
    stop_serve
    clear_mh_queue
}
test_throughput() {
    local r
    setup_postfix
    for ((r = 1; r <= REPS; r++)); do
        info "throughput round=$r load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
        sync
        if (( r % 2 )); then
            log "throughput $r/$REPS: Postfix, then mh-serve"
            if side postfix; then run_postfix "$r"; sync; fi
            if side mhserve; then run_mhserve "$r"; fi
        else
            log "throughput $r/$REPS: mh-serve, then Postfix"
            if side mhserve; then run_mhserve "$r"; sync; fi
            if side postfix; then run_postfix "$r"; fi
        fi
    done
}

# --- 2. RSS with QUEUE_N queued -----------------------------------------------------
mkqueue() { "${PY[@]}" mkqueue --spool "$SPOOL" --state "$WORK/queue-state.json" --n "$QUEUE_N" "$@" >/dev/null; }

test_rss() {
    local off
    write_config "$DEAD_PORT" 1h
    log "RSS: $QUEUE_N entries, all deferred by an hour (the runner reads them all and waits)"
    mkqueue --repair --defer 3600; sync
    start_serve
    "${PY[@]}" watch --pid "$SERVE_PID" --start "$SERVE_T0" --state deferred --expect "$QUEUE_N" --max-wait 120 --idle 3 | emit || true
    stop_serve
    log "RSS: $QUEUE_N entries due, relay.host 127.0.0.1:$DEAD_PORT (nobody listens), retry 1h"
    mkqueue --repair --rewrite-all --defer 0; sync
    off=$(stat -c %s "$WORK/mh-serve.log")
    start_serve
    "${PY[@]}" watch --pid "$SERVE_PID" --start "$SERVE_T0" --state relay_down --expect "$QUEUE_N" --max-wait "$RSS_WAIT" \
        --log "$WORK/mh-serve.log" --log-offset "$off" --pattern ' status=' | emit || true
    stop_serve
}

# --- 3. start → first delivery with QUEUE_N queued ---------------------------------
test_first() {
    local r cache
    write_config "$SINK_PORT"
    for ((r = 1; r <= FIRST_REPS; r++)); do
        for cache in warm cold; do
            [ "$cache" = cold ] && [ "$DROP_CACHES" != 1 ] && continue
            mkqueue --repair --defer 0; sync
            if [ "$cache" = cold ]; then drop_caches; fi
            log "first delivery $r/$FIRST_REPS, $cache cache"
            "${PY[@]}" first --name "mhserve_first_delivery_$cache" --run "$r" --entries "$QUEUE_N" \
                --sink-port "$SINK_PORT" --sink-user "$SINK_USER" --log "$WORK/mh-serve.log" \
                --pidfile "$WORK/first.pid" -- "$MH_SERVE" --spool "$SPOOL" | emit || true
            rm -f "$WORK/first.pid"
        done
    done
}

# --- main ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (Postfix, drop_caches, mh-serve dropping to the spool owner)"
for c in smtp-sink postfix postsuper ss python3; do command -v "$c" >/dev/null || die "$c is missing"; done
trap cleanup EXIT
trap 'exit 130' INT TERM
NEED_MH=1
[ "$TESTS" = throughput ] && ! side mhserve && NEED_MH=0
if [ "$NEED_MH" = 1 ]; then binaries; fi
if mountpoint -q "$QFS" 2>/dev/null; then umount "$QFS" || die "$QFS (an earlier run's) is still mounted"; fi
rm -rf "$WORK"; mkdir -p "$WORK"
read -r MH_PORT PF_PORT SINK_PORT DEAD_PORT <<<"$("${PY[@]}" freeports 4 | tr "\n" " ")"
info "host kernel=$(uname -r) cpus=$(nproc) postfix=$(postconf -d -h mail_version 2>/dev/null) mh_serve=$("$MH_SERVE" --version 2>/dev/null | head -1 | tr ' ' _) mh_serve_built=$(date -r "$MH_SERVE" +%FT%T 2>/dev/null) git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo +dirty) build=$MH_BUILD"
info "params reps=$REPS msgs=$MSGS size=$SIZE sessions=$SESSIONS queue_n=$QUEUE_N rss_wait=$RSS_WAIT first_reps=$FIRST_REPS listener=$MH_LISTENER relay_tls=$RELAY_TLS throughput_fs=$THROUGHPUT_FS ports=mh:$MH_PORT,pf:$PF_PORT,sink:$SINK_PORT,dead:$DEAD_PORT load_at_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
log "results -> $RESULTS; logs in $WORK (KEEP=1 keeps them)"

if [ "$THROUGHPUT_FS" = loop ]; then
    # Throughput on the loop-mounted ext4 too (no "discard"): both sides' queues there.
    mount_qfs
    SPOOL=$QFS/spool-throughput; PF=$QFS/postfix; PF_ETC=$PF/etc; PF_Q=$PF/queue
fi
if want throughput; then
    if [ "$NEED_MH" = 1 ]; then make_spool; fi
    test_throughput
fi
if want rss || want first; then
    if [ "$QFS_MOUNTED" = 0 ]; then mount_qfs; fi
    SPOOL=$QFS/spool
    make_spool
    log "queue: writing $QUEUE_N entries of $SIZE bytes into $SPOOL/queue"
    defer=0
    if want rss; then defer=3600; fi   # test_rss starts with the deferred state
    mkqueue --size "$SIZE" --rcpt "$RCPT" --sender "$SENDER" --defer "$defer"
    sync
fi
if want rss; then test_rss; fi
if want first; then test_first; fi

info "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) secs=$(( $(date +%s) - T_START ))"
"${PY[@]}" table --results "$RESULTS" | emit
if grep -q 'RESULT name=mhserve_' "$RESULTS"; then
    log "mh-serve log: $(grep -c ' status=sent' "$WORK/mh-serve.log" || true) sent, $(grep -c ' status=deferred' "$WORK/mh-serve.log" || true) deferred lines"
fi
