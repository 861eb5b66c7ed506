#!/usr/bin/env bash
# cluster.sh — issue 14 part 1's speed target: on a fresh GlusterFS volume mounted twice
# (tests/cluster/glusterfixture.py), the fsync'd-delivery floor with 8 writers (fsbench)
# against mh-serve's SMTP ingest of 4 KiB messages over 8 sessions split between two
# daemons (h1 on mount 1, h2 on mount 2); target >= 0.5x the floor. Then strace -f -c of
# h1 over STRACE_MSGS deliveries: path-lookup syscalls (lstat/openat/statx ...) per delivery.
#   bash bench/cluster.sh        # as root; about 3 minutes
# Environment: BUILD [build-bench], SKIP_BUILD=1, MSGS [400] (ingest), FS_COUNT [400],
# STRACE_MSGS [100], OUT [bench/out], MH_SERVE (another binary, same options).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
OUT=${OUT:-$HERE/out}
MSGS=${MSGS:-400}
FS_COUNT=${FS_COUNT:-400}
STRACE_MSGS=${STRACE_MSGS:-100}
SESSIONS=8
SIZE=4096
TARGET=0.5
DOMAIN=bench.test
MH_USER=$BUILD/tools/mh-user/mh-user
MH_SERVE=${MH_SERVE:-$BUILD/tools/mh-serve/mh-serve}
FSBENCH_SRC=$ROOT/../shared/bench/fsbench.c

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- outside the volume: build, then run the rest with the volume up -----------------

if [ "${1:-}" != --inside ]; then
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "Release build in $BUILD"
        cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
        nice cmake --build "$BUILD" -j1 --target mh-user mh-serve >/dev/null
    fi
    mkdir -p "$OUT"
    cc -O2 -o "$OUT/fsbench" "$FSBENCH_SRC"
    export RESULTS=$OUT/cluster-$(date +%Y%m%d-%H%M%S).txt
    exec python3 "$ROOT/tests/cluster/glusterfixture.py" run -- bash "$HERE/cluster.sh" --inside
fi

# --- inside: MNT1, MNT2 are two mounts of one fresh volume ----------------------------

result() { echo "RESULT $*" | tee -a "$RESULTS"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
delivered() { find "$MNT1/spool/domains/$DOMAIN/accounts" -path '*/new/*' -type f | wc -l; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

log "floor: fsbench, $FS_COUNT files of $SIZE bytes, fsync+dir, $SESSIONS writers on mount 1"
mkdir -p "$MNT1/fsbench/tmp" "$MNT1/fsbench/new"
floor_line=$("$OUT/fsbench" "$MNT1/fsbench" "$FS_COUNT" "$SIZE" fsync+dir "$SESSIONS")
floor=$(sed -n 's/.*files_per_s=\([0-9.]*\).*/\1/p' <<<"$floor_line")
result "name=cluster_fsbench_floor $floor_line"

log "spool on mount 1: $SESSIONS accounts; daemons h1 (mount 1) and h2 (mount 2)"
"$MH_USER" --spool "$MNT1/spool" domain add "$DOMAIN" -q
for ((i = 0; i < SESSIONS; i++)); do
    echo benchpw | "$MH_USER" --spool "$MNT1/spool" add "u$i@$DOMAIN" --password-stdin -q
done
printf 'hostname: bench.test\ntrusted_networks: ["127.0.0.0/8"]\n' >"$MNT1/spool/mailhost.yaml"
P1=$(free_port); P2=$(free_port)
"$MH_SERVE" --spool "$MNT1/spool" --hostname h1 --listen "smtp=127.0.0.1:$P1" 2>"$OUT/cluster-h1.log" &
H1=$!; PIDS+=("$H1")
"$MH_SERVE" --spool "$MNT2/spool" --hostname h2 --listen "smtp=127.0.0.1:$P2" 2>"$OUT/cluster-h2.log" &
PIDS+=($!)
for i in $(seq 600); do
    grep -q "listening for smtp on 127.0.0.1:$P1" "$OUT/cluster-h1.log" &&
        grep -q "listening for smtp on 127.0.0.1:$P2" "$OUT/cluster-h2.log" && break
    sleep 0.1
done

# One smtp-source per session and account, half of them on each daemon: 250 comes only
# once the message is fsynced in new/, so the last exit is the end of the run.
ingest() {  # ingest MSGS PORTS... -> seconds
    local n=$1; shift
    local ports=("$@") start end k
    start=$(date +%s.%N)
    for ((k = 0; k < SESSIONS; k++)); do
        smtp-source -s 1 -m $((n / SESSIONS)) -l "$SIZE" -f sender@example.invalid -t "u$k@$DOMAIN" \
            -M bench.client "127.0.0.1:${ports[k % ${#ports[@]}]}" >/dev/null &
    done
    wait
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

log "ingest: $MSGS messages of $SIZE bytes, $SESSIONS sessions over h1 and h2"
before=$(delivered)
secs=$(ingest "$MSGS" "$P1" "$P2")
got=$(( $(delivered) - before ))
rate=$(echo "scale=1; $got / $secs" | bc)
result "name=cluster_smtp_ingest msgs=$got secs=$secs msgs_per_s=$rate ok=$([ "$got" = "$MSGS" ] && echo 1 || echo 0)"

log "strace -f -c of h1 over $STRACE_MSGS deliveries"
# The process that holds h1's port (H1 itself, unless MH_SERVE is a wrapper).
LISTENER=$(ss -Hltnp "sport = :$P1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
strace -f -c -o "$OUT/cluster-strace.txt" -p "${LISTENER:-$H1}" 2>/dev/null &
ST=$!
sleep 2
strace_secs=$(ingest "$STRACE_MSGS" "$P1")
kill -INT "$ST"; wait "$ST" || true
traced=$((STRACE_MSGS / SESSIONS * SESSIONS))  # what the smtp-source runs sent
per_delivery() { awk -v want="$1" -v n="$traced" '$NF == want { printf "%.1f", $4 / n }' "$OUT/cluster-strace.txt"; }
line="name=cluster_syscalls_per_delivery deliveries=$traced"
for sc in lstat newfstatat statx stat openat openat2 open getdents64 fsync fdatasync rename renameat renameat2 \
    link linkat unlink unlinkat flock fcntl total; do
    v=$(per_delivery "$sc"); [ -n "$v" ] && line+=" $sc=$v"
done
result "$line secs=$strace_secs"

ratio=$(echo "scale=2; $rate / $floor" | bc)
printf '\n%-44s %10s %10s %7s %7s %s\n' measure "mh-serve/s" "floor/s" ratio target ""
printf '%-44s %10s %10s %7s %7s %s\n' "SMTP ingest 4 KiB, 8 sessions, 2 daemons" "$rate" "$floor" "$ratio" "$TARGET" \
    "$(echo "$ratio >= $TARGET" | bc | sed 's/1/ok/;s/0/MISSED/')"
log "results in $RESULTS, strace table in $OUT/cluster-strace.txt"
