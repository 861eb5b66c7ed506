#!/usr/bin/env bash
# smtp.sh — issue 4's measurements: mh-serve's SMTP ingest side by side with Postfix, in
# pairs run by the shared harness (../shared/bench/baseline.sh, its MH_SERVE hook), and
# mh-serve's memory (RSS) idle and while it holds 1,000 idle connections and mail flows.
#   bash bench/smtp.sh                  # as root; REPS=3 SMTP_MSGS=1000: about 5 minutes
# Environment: BUILD, BASELINE, WORK (wiped), OUT, REPS [3] (rounds), SIZES ["4096 102400"],
# SMTP_SESSIONS ["1 8 32"], SMTP_MSGS [1000], MH_SMTP_PORT [2526], IDLE_CONNS [1000],
# SKIP_BUILD=1, KEEP=1 keeps WORK; other variables baseline.sh reads (SMTP_PORT, ...)
# pass through. PARTS ["pairs floor memory syscalls"]: floor = the shared fsbench.c
# (write+fsync+rename+fsync of new/, FS_JOBS ["1 8"] writers, FS_FILES [2000] files) in
# every round on WORK's file system; syscalls = `strace -c -f` attached to mh-serve while
# STRACE_MSGS [200] messages arrive over STRACE_SESSIONS [8] sessions (per-delivery counts).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
BASELINE=${BASELINE:-$ROOT/../shared/bench/baseline.sh}
# Outside /tmp/mhbench, which baseline.sh wipes at start and end.
WORK=${WORK:-/tmp/mh-bench/smtp}
OUT=${OUT:-$HERE/out}
REPS=${REPS:-3}
SMTP_MSGS=${SMTP_MSGS:-1000}
export MH_SMTP_PORT=${MH_SMTP_PORT:-2526}          # also read by baseline.sh
IDLE_CONNS=${IDLE_CONNS:-1000}
SIZES=${SIZES:-"4096 102400"}                   # the harness's defaults
SMTP_SESSIONS=${SMTP_SESSIONS:-"1 8 32"}
KEEP=${KEEP:-0}
PARTS=${PARTS:-"pairs floor memory syscalls"}
FS_JOBS=${FS_JOBS:-"1 8"}
FS_FILES=${FS_FILES:-2000}
FSBENCH_SRC=${FSBENCH_SRC:-$(dirname "$BASELINE")/fsbench.c}
STRACE_MSGS=${STRACE_MSGS:-200}
STRACE_SESSIONS=${STRACE_SESSIONS:-8}
(( STRACE_MSGS <= SMTP_MSGS )) || STRACE_MSGS=$SMTP_MSGS    # one account per message
BENCH=(python3 "$HERE/benchlib.py")

MH_USER=$BUILD/tools/mh-user/mh-user
MH_SERVE=$BUILD/tools/mh-serve/mh-serve
SPOOL=$WORK/spool
DOMAIN=bench.test
BENCH_USER=mhbench              # baseline.sh's Maildir owner; our spool belongs to it too
SENDER=sender@example.invalid

mkdir -p "$OUT"
RESULTS=$OUT/smtp-$(date +%Y%m%d-%H%M%S).txt
SERVE_PID=

log() { printf '[smtp %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
info() { echo "INFO $*" | emit; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
want() { [[ " $PARTS " == *" $1 "* ]]; }

# Stops the mh-serve this script started (by its PID, and only if it is still mh-serve).
stop_serve() {
    local i
    [ -n "$SERVE_PID" ] && [ "$(cat "/proc/$SERVE_PID/comm" 2>/dev/null)" = mh-serve ] || return 0
    kill -TERM "$SERVE_PID"
    for ((i = 0; i < 150; i++)); do [ -d "/proc/$SERVE_PID" ] || break; sleep 0.1; done
    [ -d "/proc/$SERVE_PID" ] && kill -KILL "$SERVE_PID"
    SERVE_PID=
}
cleanup() { stop_serve; [ "$KEEP" = 1 ] || rm -rf "$WORK"; }

build() {
    [ "${SKIP_BUILD:-0}" = 1 ] && return 0
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    nice -n 10 cmake --build "$BUILD" -j 2 --target mh-user mh-serve >/dev/null   # any generator
}

# The spool mh-serve delivers into. smtp-source -N sends message i of a run to
# "<i>u@bench.test" (i = 1..SMTP_MSGS; Postfix's map sends those to u000..u499), so the
# spool has exactly those accounts, made with the real tool. Loopback is trusted (no
# reverse-DNS lookups, like Postfix's mynetworks); connections are raised from 1000 to
# 1100 so that mail still flows while the memory test holds 1,000 idle ones.
make_spool() {
    local i
    rm -rf "$WORK"; mkdir -p "$WORK"
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    for ((i = 1; i <= SMTP_MSGS; i++)); do
        echo benchpw | "$MH_USER" --spool "$SPOOL" add "${i}u@$DOMAIN" --password-stdin -q
    done
    cat >"$SPOOL/mailhost.yaml" <<EOF
# bench/smtp.sh: SMTP on loopback only; loopback trusted (no reverse-DNS lookups)
listen: { smtp: "127.0.0.1:$MH_SMTP_PORT" }
trusted_networks: ["127.0.0.0/8"]
limits: { connections: 1100 }
# Postfix's smtpd greets at once (postscreen, which waits, is not in its bench set-up).
timeouts: { greet_wait: 0 }
EOF
    # Started as root, mh-serve drops to the spool's owner, as in production; Postfix's
    # virtual(8) writes as this same user.
    id "$BENCH_USER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$BENCH_USER"
    chown -R "$BENCH_USER:" "$SPOOL"
    "$MH_SERVE" --spool "$SPOOL" --check-config >/dev/null || die "bad $SPOOL/mailhost.yaml"
}

# One measurement pair: Postfix, then mh-serve, on one size and session count, by one run
# of the harness (REPS=1). Pairing each configuration seconds apart, instead of running
# Postfix's whole matrix and then ours, means a burst of load from elsewhere on the
# machine hits both sides of a pair; the per-pair ratios show how much it moved.
# The hook waits for both ports, but this spool opens no POP3 listener (pop3.sh measures
# POP3): both name the SMTP port, and TESTS=smtp runs no POP3 workload. The harness
# counts the files in any new/ below MH_MAILDIR_ROOT, i.e. in our Maildirs.
run_pair() {  # round size sessions
    local pair_file=$WORK/pair.txt
    RESULTS_FILE=$pair_file TESTS=smtp REPS=1 SMTP_MSGS=$SMTP_MSGS SIZES=$2 SMTP_SESSIONS=$3 \
    MH_SERVE=$MH_SERVE MH_SERVE_ARGS="--spool '$SPOOL'" \
    MH_POP3_PORT=$MH_SMTP_PORT MH_MAILDIR_ROOT=$SPOOL/domains \
        bash "$BASELINE" >/dev/null 2>>"$WORK/harness.log" \
        || { log "WARNING: the harness failed:"; tail -5 "$WORK/harness.log" >&2; }
    if [ ! -e "$WORK/info-done" ]; then
        grep '^INFO ' "$pair_file" | grep -v '^INFO params' | emit >/dev/null || true
        touch "$WORK/info-done"
    fi
    # The single measurements, numbered by round; the medians come from table().
    grep '^RESULT ' "$pair_file" | grep -v ' stat=median ' | sed "s/ run=1 / run=$1 /" | emit || true
    stop_leftover
}

# baseline.sh stops its mh-serve by PID after checking the process name, which it reads
# right after the fork and so may read as "bash": then the server is left running. Stop
# such a leftover (the mh-serve listening on our port and serving our spool) by its PID.
stop_leftover() {
    local pid
    pid=$(ss -ltnpH "sport = :$MH_SMTP_PORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
    [ -n "$pid" ] || return 0
    if [ "$(cat "/proc/$pid/comm")" = mh-serve ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$SPOOL"; then
        log "WARNING: the harness left mh-serve pid $pid running; stopping it"
        SERVE_PID=$pid; stop_serve
    else
        die "port $MH_SMTP_PORT is in use by pid $pid"
    fi
}

start_serve() {
    local i
    stop_leftover
    "$MH_SERVE" --spool "$SPOOL" 2>>"$WORK/mh-serve.log" </dev/null &
    SERVE_PID=$!
    for ((i = 0; i < 100; i++)); do port_open "$MH_SMTP_PORT" && return 0; sleep 0.1; done
    die "mh-serve does not listen on $MH_SMTP_PORT (see $WORK/mh-serve.log)"
}

# RSS of a fresh mh-serve, after a burst of load, and while it holds IDLE_CONNS idle
# connections (greeting read, EHLO answered) from 127.0.0.10 and up, at most 40 per
# address (limits.connections_per_ip stays at its default of 50). While they are held
# smtp-source delivers 100 messages; then every idle connection must still answer NOOP.
measure_memory() {
    start_serve
    python3 - "$SERVE_PID" "$MH_SMTP_PORT" "$IDLE_CONNS" "$SPOOL/domains" "$SENDER" \
        "u@$DOMAIN" "$SMTP_MSGS" <<'EOF' | emit
import os, resource, socket, subprocess, sys, time
pid, port, conns, root, sender, to, accounts = (int(sys.argv[1]), int(sys.argv[2]),
    int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))

def status():
    with open(f"/proc/{pid}/status") as f:
        kv = dict(line.split(":", 1) for line in f)
    return {k: int(kv[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon", "Threads")}

def result(state, ok=1, **extra):
    s = status()
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    kv = dict(name="mhserve_rss", state=state, rss_kb=s["VmRSS"], hwm_kb=s["VmHWM"],
              anon_kb=s["RssAnon"], threads=s["Threads"], fds=fds, **extra, ok=ok)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)

def delivered():
    return sum(len(files) for d, _, files in os.walk(root) if os.path.basename(d) == "new")

def send(msgs, sessions, size):
    want = delivered() + msgs
    rc = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(msgs), "-l", str(size),
                         "-N", "-f", sender, "-t", to, "-M", "mhbench.client",
                         f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL).returncode
    return rc == 0 and delivered() == want

def reply(f):                      # the last line of a (multi-line) reply
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line

time.sleep(0.5)
result("idle_fresh")
burst = min(500, accounts)        # smtp-source -N: one account per message of a run
ok = send(burst, 32, 102400)
time.sleep(0.5)
result("idle_after_load", ok=int(ok), load=f"{burst}x100KiB_c32")

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, conns + 256), hard), hard))
held = []
t0 = time.perf_counter()
for i in range(conns):
    s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                 source_address=(f"127.0.0.{10 + i // 40}", 0))
    f = s.makefile("rb")
    greeting = reply(f)
    s.sendall(b"EHLO idle.client\r\n")
    ehlo = reply(f)
    if not (greeting.startswith(b"220") and ehlo.startswith(b"250")):
        print(f"connection {i}: {greeting!r} {ehlo!r}", file=sys.stderr)
        sys.exit(1)
    held.append((s, f))
open_s = time.perf_counter() - t0
time.sleep(1)
result(f"idle_conns_{conns}", conns=conns, open_s=f"{open_s:.2f}")
ok = send(min(100, accounts), 4, 4096)
alive = 0
for s, f in held:
    s.sendall(b"NOOP\r\n")
    alive += reply(f).startswith(b"250")
result(f"idle_conns_{conns}_after_mail", ok=int(ok and alive == conns), conns=conns,
       mail_flowed=int(ok), alive=alive)
for s, f in held:
    s.sendall(b"QUIT\r\n")
    s.close()
EOF
    stop_serve
}

# The durability floor next to each round's pairs, on the file system mh-serve's spool is
# on: fsbench.c writes, fsyncs, renames into new/ and fsyncs new/, as a safe delivery does.
# msgs_per_s and accept_msgs_per_s repeat files_per_s so that table rows can set mh-serve's
# rates against it.
run_floor() {  # round
    local j line dir=$WORK/fs
    for j in $FS_JOBS; do
        rm -rf "$dir"; mkdir -p "$dir"; sync
        line=$("$OUT/fsbench" "$dir/Maildir" "$FS_FILES" 4096 fsync+dir "$j") || log "WARNING: fsbench failed: $line"
        local rate=${line##*files_per_s=}; rate=${rate%% *}
        echo "RESULT name=fs_fsyncdir_j$j run=$1 size=4096 $line msgs_per_s=$rate accept_msgs_per_s=$rate" | emit
    done
    rm -rf "$dir"
}

# System calls per delivered message: strace -c -f attached to a running mh-serve (so its
# start-up is not counted) while smtp-source sends STRACE_MSGS messages of 4 KiB.
measure_syscalls() {
    local before after n spid out=$WORK/strace.txt
    start_serve
    before=$(find "$SPOOL/domains" -path '*/new/*' -type f | wc -l)
    strace -c -f -o "$out" -p "$SERVE_PID" 2>>"$WORK/strace.log" &
    spid=$!
    sleep 1         # strace attaches to every thread
    smtp-source -s "$STRACE_SESSIONS" -m "$STRACE_MSGS" -l 4096 -N -f "$SENDER" -t "u@$DOMAIN" \
        -M mhbench.client "127.0.0.1:$MH_SMTP_PORT" >/dev/null || log "WARNING: smtp-source failed"
    after=$(find "$SPOOL/domains" -path '*/new/*' -type f | wc -l)
    kill -INT "$spid"; wait "$spid" || true
    stop_serve
    n=$(( after - before ))
    (( n > 0 )) || { log "WARNING: nothing delivered under strace"; return 0; }
    # strace -c's table: % time, seconds, usecs/call, calls, [errors,] syscall
    awk -v n="$n" -v sess="$STRACE_SESSIONS" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
        printf "RESULT name=syscalls syscall=%s calls=%d per_msg=%.2f errors=%d msgs=%d sessions=%d ok=1\n",
            $NF, $4, $4 / n, (NF == 6 ? $5 : 0), n, sess }
        $NF == "total" { printf "RESULT name=syscalls_total calls=%d per_msg=%.1f msgs=%d sessions=%d ok=1\n", $4, $4 / n, n, sess }' \
        "$out" | emit >/dev/null
    echo "| syscall | calls per delivered message ($n msgs, $STRACE_SESSIONS sessions, 4 KiB) |" | emit
    echo "| --- | --- |" | emit
    grep '^RESULT name=syscalls ' "$RESULTS" | sed 's/.*syscall=\([^ ]*\).*per_msg=\([^ ]*\).*/\2 \1/' \
        | sort -rn | head -15 | awk '{ printf "| %s | %s |\n", $2, $1 }' | emit
    grep '^RESULT name=syscalls_total ' "$RESULTS" | sed 's/.*per_msg=\([^ ]*\).*/| (all) | \1 |/' | emit
}

size_tag() { if (( $1 % 1024 == 0 )); then echo "$(( $1 / 1024 ))k"; else echo "${1}b"; fi; }

# Medians and their ratio (benchlib), then the ratio of each pair and their median. The
# "at_250" ratios put mh-serve's accept rate over Postfix's delivered rate: mh-serve says
# 250 only once the message is fsynced in new/, so for it smtp-source's exit already is
# "in Maildir/new", while the harness's completion poll (a walk of the whole tree, ~0.1 s
# over our 1,000 accounts, ~0.04 s over Postfix's 500) still adds to its delivered time.
table() {
    local rows=() size s target tag
    for size in $SIZES; do
        for s in $SMTP_SESSIONS; do
            tag=$(size_tag "$size"); target=; [ "$s" != 1 ] && target=">=4"
            rows+=(--row "$tag c$s;mhserve_smtp_${tag}_c$s;postfix_smtp_${tag}_c$s;msgs_per_s;$target")
        done
    done
    "${BENCH[@]}" table --results "$RESULTS" --header-a "mh-serve msgs/s" --header-b "Postfix msgs/s" \
        "${rows[@]}" | emit
    if want floor && [[ " $SIZES " == *" 4096 "* ]]; then
        rows=()
        for s in $SMTP_SESSIONS; do
            local j=8 target=">=0.8"
            [ "$s" = 1 ] && { j=1; target=">=0.9"; }
            [[ " $FS_JOBS " == *" $j "* ]] || continue
            rows+=(--row "4k c$s (delivered);mhserve_smtp_4k_c$s;fs_fsyncdir_j$j;msgs_per_s;$target")
            rows+=(--row "4k c$s (at 250);mhserve_smtp_4k_c$s;fs_fsyncdir_j$j;accept_msgs_per_s;$target")
        done
        "${BENCH[@]}" table --results "$RESULTS" --header-a "mh-serve msgs/s" \
            --header-b "floor files/s (fsync+dir, 1 writer for c1, else 8)" "${rows[@]}" | emit
    fi
    awk '/^RESULT name=(postfix|mhserve)_smtp_/ {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        side = (v["name"] ~ /^postfix/) ? "p" : "m"; cfg = v["name"]; sub(/^[a-z]+_smtp_/, "", cfg)
        rate[cfg, v["run"], side] = v["msgs_per_s"]; acc[cfg, v["run"], side] = v["accept_msgs_per_s"]
        if (!(cfg in seen)) { seen[cfg] = 1; order[++n] = cfg }
        if (v["run"] > runs) runs = v["run"] }
    function median(x, m,   i, j, t) {
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
        return (m == 0) ? 0 : (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2 }
    END {
        for (k = 1; k <= n; k++) {
            cfg = order[k]; m = 0; list = ""; list250 = ""
            for (r = 1; r <= runs; r++)
                if ((cfg, r, "p") in rate && (cfg, r, "m") in rate && rate[cfg, r, "p"] > 0) {
                    x[++m] = rate[cfg, r, "m"] / rate[cfg, r, "p"]
                    y[m] = acc[cfg, r, "m"] / rate[cfg, r, "p"]
                    list = list (m > 1 ? "," : "") sprintf("%.2f", x[m])
                    list250 = list250 (m > 1 ? "," : "") sprintf("%.2f", y[m]) }
            printf "RESULT name=pair_ratio config=%s pairs=%d ratios=%s median=%.3g ratios_at_250=%s median_at_250=%.3g\n",
                cfg, m, list, median(x, m), list250, median(y, m) }
    }' "$RESULTS" | emit
    awk '/^RESULT name=mhserve_rss /{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        limit = (v["state"] ~ /^idle_conns/) ? 100 : 20
        printf "| mh-serve RSS %-26s | %6.1f MB | peak %6.1f MB | target < %d MB | %s |\n",
            v["state"], v["rss_kb"] / 1024, v["hwm_kb"] / 1024, limit,
            (v["rss_kb"] / 1024 < limit && v["ok"] == 1) ? "ok" : "MISSED" }' "$RESULTS" | emit
}

[ "$(id -u)" = 0 ] || die "run as root (the harness starts Postfix)"
[ -r "$BASELINE" ] || die "no harness at $BASELINE (set BASELINE)"
trap cleanup EXIT
build
if want floor; then
    cc -O2 -Wall -o "$OUT/fsbench" "$FSBENCH_SRC" || die "cannot build fsbench from $FSBENCH_SRC"
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "spool with $SMTP_MSGS accounts in $SPOOL"
make_spool
info "params reps=$REPS sizes=${SIZES// /,} smtp_sessions=${SMTP_SESSIONS// /,} smtp_msgs=$SMTP_MSGS idle_conns=$IDLE_CONNS cpus=$(nproc) load_at_start=${LOAD_BEFORE// /,}"
log "results -> $RESULTS; harness log -> $WORK/harness.log"
for ((round = 1; round <= REPS; round++)); do
    info "round=$round load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
    for size in $SIZES; do
        for sessions in $SMTP_SESSIONS; do
            log "round $round/$REPS: $size bytes, $sessions sessions: Postfix, then mh-serve"
            want pairs && run_pair "$round" "$size" "$sessions"
        done
    done
    want floor && { log "round $round/$REPS: fsbench floor"; run_floor "$round"; }
done
want pairs && { grep -q '^RESULT name=mhserve_smtp_.* ok=1' "$RESULTS" || die "no mh-serve SMTP results"; }
want memory && { log "memory: idle and $IDLE_CONNS idle connections"; measure_memory; }
want syscalls && { log "syscalls: strace -c -f, $STRACE_MSGS messages"; measure_syscalls; }
info "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
table
log "results in $RESULTS"
