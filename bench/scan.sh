#!/usr/bin/env bash
# scan.sh — issue 12's benchmark: mh-serve's SMTP ingest with virus scanning (clamd
# INSTREAM) on vs off, 4 KiB and 1 MiB clean messages, 8 sessions, in one run; and
# clamd's own time on the same decoded parts, so that what mh-serve adds on top of
# clamd can be told apart from clamd's cost (target: < 10 % of clamd's time).
#
#   bash bench/scan.sh                 # about 5 minutes on an idle 2-CPU machine
#   QUICK=1 bash bench/scan.sh         # a smoke run, under a minute
#
# One run, per size: an untimed warm-up (off, which also sizes the runs so that the
# off run lasts MIN_SECS, then on), then ROUNDS [1] rounds of an off run and an on run
# (order alternating), each with a fresh mh-serve. SESSIONS [8] smtp-source processes,
# one connection each (smtp-source -d), each to its own account. Then clamd alone:
# bench/scan.py's INSTREAM client with SESSIONS threads for MIN_SECS and with 1 thread,
# on the message file as mh-serve sends a clean message (whole, one connection: clamd
# decodes the MIME itself), and `clamdscan --stream` (CLAMDSCAN_RUNS) on the same file.
# clamd is our own, offline, on a socket in WORK, with one local signature (EICAR).
#
# Environment: MH_BUILD or BUILD [build-bench] (configured and built here in Release;
# SKIP_BUILD=1 uses the binaries as they are), WORK [/tmp/mh-bench/scan] (wiped at
# start, removed at the end unless KEEP=1), OUT [bench/out], SIZES ["4k 1m"], SESSIONS,
# ROUNDS, MIN_SECS [10], MSGS_4K / MSGS_1M (fix the messages per run instead of sizing
# them from the warm-up), CLAMDSCAN_RUNS [10], QUICK=1 (MIN_SECS=2, small warm-ups),
# JOBS [1]. Not run by ctest. Loopback only; every process it starts is stopped by PID.

set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${MH_BUILD:-${BUILD:-$ROOT/build-bench}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
WORK=${WORK:-/tmp/mh-bench/scan}
OUT=${OUT:-$HERE/out}
SIZES=${SIZES:-"4k 1m"}
SESSIONS=${SESSIONS:-8}
ROUNDS=${ROUNDS:-1}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then MIN_SECS=${MIN_SECS:-2}; else MIN_SECS=${MIN_SECS:-10}; fi
CLAMDSCAN_RUNS=${CLAMDSCAN_RUNS:-10}
JOBS=${JOBS:-1}
KEEP=${KEEP:-0}
PY=(python3 "$HERE/scan.py")

MH_USER=$BUILD/tools/mh-user/mh-user
MH_SERVE=$BUILD/tools/mh-serve/mh-serve
SPOOL=$WORK/spool
CLAMD_DIR=$WORK/clamd
CLAMD_SOCK=$CLAMD_DIR/clamd.sock
DOMAIN=bench.test
ACCT_DIR=$SPOOL/domains/$DOMAIN/accounts
SENDER=taro.yamada@remote.test
OWNER=$(id -un)                   # as root: mhbench (as in smtp.sh); mh-serve drops to it
[ "$(id -u)" = 0 ] && OWNER=mhbench

mkdir -p "$OUT"
RESULTS=$OUT/scan-$(date +%Y%m%d-%H%M%S).txt
T_START=$(date +%s)
SERVE_PID=
CLAMD_PID=

log() { printf '[scan %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
info() { echo "INFO $*" | emit; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
acct() { printf 'acct%02d@%s' "$1" "$DOMAIN"; }
uptime_now() { uptime | sed 's/^ *//; s/ \+/_/g'; }

# --- processes we start, stopped by PID only ----------------------------------------
stop_pid() {  # PID COMM
    local i
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do [ -d "/proc/$1" ] || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}
stop_serve() { stop_pid "$SERVE_PID" mh-serve; SERVE_PID=; }
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_serve
    stop_pid "$CLAMD_PID" clamd
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
    log "done in $(( $(date +%s) - T_START )) s; results in $RESULTS"
    exit "$rc"
}

build() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        [ -f "$BUILD/build.ninja" ] \
            || cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
                     -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
        log "building mh-serve mh-user in $BUILD (-j$JOBS)"
        nice cmake --build "$BUILD" -j"$JOBS" --target mh-serve mh-user >/dev/null
    fi
    if [ ! -x "$MH_SERVE" ] || [ ! -x "$MH_USER" ]; then die "no mh-serve/mh-user in $BUILD"; fi
}

# --- clamd, offline ------------------------------------------------------------------
# One local signature (MD5:size:name of the 68-byte EICAR string), no freshclam, no
# system service. LogClean: the log line per clean scan counts the scans of a run.
# The socket is world-writable because mh-serve runs as the spool's owner; the
# directories above it are 0755.
start_clamd() {
    local i
    mkdir -p "$CLAMD_DIR/db"
    echo '44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature' >"$CLAMD_DIR/db/eicar.hdb"
    cat >"$CLAMD_DIR/clamd.conf" <<EOF
LocalSocket $CLAMD_SOCK
LocalSocketMode 666
DatabaseDirectory $CLAMD_DIR/db
Foreground yes
LogFile $CLAMD_DIR/clamd.log
PidFile $CLAMD_DIR/clamd.pid
StreamMaxLength 40M
MaxThreads 8
LogClean yes
EOF
    [ "$(id -u)" = 0 ] && echo "User root" >>"$CLAMD_DIR/clamd.conf"
    clamd -c "$CLAMD_DIR/clamd.conf" >"$CLAMD_DIR/clamd.out" 2>&1 </dev/null &
    CLAMD_PID=$!
    for ((i = 0; i < 300; i++)); do
        [ -S "$CLAMD_SOCK" ] && [ "$(clamd_cmd zPING)" = PONG ] && break
        [ -d "/proc/$CLAMD_PID" ] || die "clamd exited: $(tail -3 "$CLAMD_DIR/clamd.out" "$CLAMD_DIR/clamd.log" 2>/dev/null)"
        sleep 0.1
    done
    [ -S "$CLAMD_SOCK" ] || die "clamd made no socket in 30 s (see $CLAMD_DIR/clamd.log)"
    info "clamd pid=$CLAMD_PID version=$(clamd_cmd zVERSION | tr ' ' _)"
}
clamd_cmd() {  # a z-command, its NUL-terminated answer
    python3 -c 'import socket,sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\0"); print(s.recv(4096).rstrip(b"\0").decode())' "$CLAMD_SOCK" "$1" 2>/dev/null || true
}

# --- spool and mh-serve --------------------------------------------------------------
make_spool() {
    local i
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    for ((i = 1; i <= SESSIONS + 1; i++)); do
        echo benchpw | "$MH_USER" --spool "$SPOOL" add "$(acct "$i")" --password-stdin -q
    done
    if [ "$(id -u)" = 0 ]; then
        id "$OWNER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$OWNER"
        chown -R "$OWNER:" "$SPOOL"
    fi
}

# mailhost.yaml of one variant: the same file plus `clamd:` for "on".
configure() {  # off|on
    {
        echo "# bench/scan.sh: SMTP on loopback only; loopback trusted; nothing is sent out"
        echo "listen: { smtp: \"127.0.0.1:$PORT\" }"
        echo 'trusted_networks: ["127.0.0.0/8"]'
        echo "outbound: { hold: true }"
        echo "timeouts: { greet_wait: 0 }"
        [ "$1" = on ] && echo "clamd: { address: \"unix:$CLAMD_SOCK\", timeout: 60s }"
    } >"$SPOOL/mailhost.yaml"
    [ "$(id -u)" = 0 ] && chown "$OWNER:" "$SPOOL/mailhost.yaml"
    "$MH_SERVE" --spool "$SPOOL" --check-config >>"$WORK/mh-serve.log" 2>&1 \
        || die "mh-serve --check-config refuses the '$1' mailhost.yaml (see $WORK/mh-serve.log)"
}

start_serve() {  # off|on
    local i
    configure "$1"
    echo "=== start ($1) $(date +%T) ===" >>"$WORK/mh-serve.log"
    "$MH_SERVE" --spool "$SPOOL" >>"$WORK/mh-serve.log" 2>&1 </dev/null &
    SERVE_PID=$!
    for ((i = 0; i < 150; i++)); do port_open "$PORT" && return 0; sleep 0.1; done
    die "mh-serve does not listen on $PORT (see $WORK/mh-serve.log)"
}

# Before anything is timed: with scanning off an EICAR attachment is stored as sent,
# with it on it is replaced by the notice — otherwise the "on" runs measure nothing.
smoke_test() {  # off|on
    local rc=0
    start_serve "$1"
    "${PY[@]}" smoke --port "$PORT" --msg-file "$WORK/msg-1m.eml" --sender "$SENDER" \
        --rcpt "$(acct $((SESSIONS + 1)))" --maildir "$ACCT_DIR/acct$(printf %02d $((SESSIONS + 1)))/Maildir" \
        --expect-scan "$([ "$1" = on ] && echo 1 || echo 0)" | emit || rc=$?
    stop_serve
    return $rc
}

# One timed run of one variant with a fresh mh-serve.
run_variant() {  # off|on tag msgs round position [name]
    local accounts j name=${6:-scan_$1_$2}
    accounts=
    for ((j = 1; j <= SESSIONS; j++)); do accounts+=${accounts:+,}$(acct "$j"); done
    sync
    start_serve "$1"
    sleep 0.5
    "${PY[@]}" load --name "$name" --run "$4" --position "$5" --port "$PORT" --msgs "$3" \
        --size "$(stat -c %s "$WORK/msg-$2.eml")" --msg-file "$WORK/msg-$2.eml" --sender "$SENDER" \
        --accounts "$accounts" --accounts-dir "$ACCT_DIR" --server-pid "$SERVE_PID" \
        --clamd-pid "$CLAMD_PID" --clamd-log "$CLAMD_DIR/clamd.log" --reuse | emit || true
    stop_serve
}

# Messages per run: fixed (MSGS_4K/MSGS_1M), or enough for the off run (the faster one)
# to last MIN_SECS at the warm-up's rate, a multiple of SESSIONS.
size_runs() {  # tag warmup-name
    local fixed rate
    fixed=MSGS_${1^^}
    if [ -n "${!fixed:-}" ]; then echo "${!fixed}"; return; fi
    rate=$(awk -v n="$2" '$1 == "RESULT" && $2 == "name=" n { for (i = 2; i <= NF; i++) if ($i ~ /^msgs_per_s=/) { sub(/^msgs_per_s=/, "", $i); r = $i } } END { print r + 0 }' "$RESULTS")
    awk -v r="$rate" -v s="$MIN_SECS" -v k="$SESSIONS" 'BEGIN { n = int(r * s * 1.3 / k + 1) * k; if (n < 4 * k) n = 4 * k; print n }'
}

bench_size() {  # tag
    local tag=$1 warm msgs r parts
    warm=$([ "$tag" = 4k ] && echo 2000 || echo 200)
    [ "$QUICK" = 1 ] && warm=$(( warm / 5 ))
    log "$tag: warm-up, scanning off ($warm messages) and on"
    run_variant off "$tag" "$warm" 0 1 "warmup_scan_off_$tag"
    run_variant on "$tag" $(( warm / 4 / SESSIONS * SESSIONS + SESSIONS )) 0 2 "warmup_scan_on_$tag"
    msgs=$(size_runs "$tag" "warmup_scan_off_$tag")
    info "size=$tag msgs_per_run=$msgs sessions=$SESSIONS"
    for ((r = 1; r <= ROUNDS; r++)); do
        info "round=$r size=$tag load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) compiles=$(pgrep -c cc1plus || true)"
        if (( r % 2 )); then
            log "$tag round $r/$ROUNDS: off, then on ($msgs messages each)"
            run_variant off "$tag" "$msgs" "$r" 1; run_variant on "$tag" "$msgs" "$r" 2
        else
            log "$tag round $r/$ROUNDS: on, then off ($msgs messages each)"
            run_variant on "$tag" "$msgs" "$r" 1; run_variant off "$tag" "$msgs" "$r" 2
        fi
    done
    # clamd alone on what mh-serve sends it for a clean message: the message, whole, with
    # the trace header mh-serve puts on top. That header matters: clamd takes a stream
    # that starts with Return-Path:/Received: for mail and decodes its MIME parts (3x the
    # CPU at 1 MiB), while one starting with From: is scanned as plain text.
    parts=("$WORK/msg-$tag.stored")
    {
        printf 'Return-Path: <%s>\nReceived: from sender.test (localhost [127.0.0.1])\n' "$SENDER"
        printf '\tby bench.test (mailhost) with ESMTP id 0123456789ABCDEF0\n\tfor <%s>; %s\n' "$(acct 1)" "$(date -R)"
        printf 'Delivered-To: %s\n' "$(acct 1)"
        cat "$WORK/msg-$tag.eml"
    } >"${parts[0]}"
    log "$tag: clamd alone (INSTREAM, $SESSIONS clients and 1; clamdscan --stream)"
    "${PY[@]}" instream --name "clamd_instream_${tag}_t$SESSIONS" --socket "$CLAMD_SOCK" --threads "$SESSIONS" \
        --secs "$MIN_SECS" --clamd-pid "$CLAMD_PID" --clamd-log "$CLAMD_DIR/clamd.log" --unique 0123456789ABCDEF0 --parts "${parts[@]}" | emit || true
    "${PY[@]}" instream --name "clamd_instream_${tag}_t1" --socket "$CLAMD_SOCK" --threads 1 \
        --secs "$(( MIN_SECS / 2 + 1 ))" --clamd-pid "$CLAMD_PID" --clamd-log "$CLAMD_DIR/clamd.log" --unique 0123456789ABCDEF0 --parts "${parts[@]}" | emit || true
    python3 "$HERE/benchlib.py" time --name "clamdscan_$tag" --runs "$CLAMDSCAN_RUNS" --warmup 1 \
        -- clamdscan --stream --no-summary --config-file="$CLAMD_DIR/clamd.conf" "${parts[@]}" | emit || true
}

# --- main ---------------------------------------------------------------------------
for c in clamd clamdscan smtp-source python3; do command -v "$c" >/dev/null || die "$c is missing"; done
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$WORK"; mkdir -p "$WORK"
info "load_at_start=$(uptime_now)"
CTEST=$(pgrep -c ctest || true)
[ "$CTEST" = 0 ] || log "WARNING: ctest is running ($CTEST processes): the numbers will be noisy"
build
PORT=$(python3 "$HERE/outbound.py" freeports 1)
for tag in 4k 1m; do "${PY[@]}" mkmsg --kind "$tag" --out "$WORK/msg-$tag.eml" | sed "s/^/INFO message=$tag /" | emit; done
info "host kernel=$(uname -r) cpus=$(nproc) mh_serve_built=$(date -r "$MH_SERVE" +%FT%T) build=$BUILD ctest_running=$CTEST"
info "params sizes=${SIZES// /,} sessions=$SESSIONS rounds=$ROUNDS min_secs=$MIN_SECS quick=$QUICK port=$PORT"
log "results -> $RESULTS; logs in $WORK (KEEP=1 keeps them)"
make_spool
start_clamd
smoke_test off || die "scanning off: the smoke test failed (see $WORK/mh-serve.log)"
SCANNING=1
smoke_test on || { SCANNING=0; log "WARNING: mh-serve does not scan (no EICAR notice): the 'on' runs measure nothing"; }
info "scanning_active=$SCANNING"
read -ra SIZE_LIST <<<"$SIZES"
for tag in "${SIZE_LIST[@]}"; do bench_size "$tag"; done
info "load_at_end=$(uptime_now) secs=$(( $(date +%s) - T_START ))"
"${PY[@]}" table --results "$RESULTS" --tags "${SIZE_LIST[@]}" --sessions "$SESSIONS" | emit
[ "$SCANNING" = 1 ] || echo "**mh-serve did not scan in this run: the 'on' column is not a measurement.**" | emit
