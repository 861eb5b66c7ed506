#!/usr/bin/env bash
# speed.sh — issue 14's speed targets side by side in one run, one table at the end with the
# machine's load before and after. It runs the existing scripts with the issue's settings:
# pop3.sh (C client, Dovecot tuned, client-alone check, handshake latency with an ECDSA
# P-256 and then an RSA-2048 pair) and smtp.sh (Postfix pairs, fsync floor, RSS, strace).
#   bash bench/speed.sh              # as root; REPS=3: about 25 minutes on an idle 2-core VM
#   QUICK=1 bash bench/speed.sh      # a smoke run: REPS=1 and small counts, about 3 minutes
# Environment: BUILD [build-bench], SKIP_BUILD=1, QUICK=1, REPS, POP_MSGS, HS_N, SMTP_MSGS,
# FS_FILES, STRACE_MSGS, PARTS ["pop3 hs-ec hs-rsa smtp"], OUT [bench/out/speed-TIME].

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    : "${REPS:=1}" "${POP_MSGS:=200}" "${HS_N:=50}" "${SMTP_MSGS:=200}" "${FS_FILES:=400}" "${STRACE_MSGS:=100}"
fi
REPS=${REPS:-3}
POP_MSGS=${POP_MSGS:-2000}          # per mailbox: a 1-client drain of Dovecot lasts ~0.5 s
HS_N=${HS_N:-500}
SMTP_MSGS=${SMTP_MSGS:-1000}
FS_FILES=${FS_FILES:-2000}
STRACE_MSGS=${STRACE_MSGS:-200}
PARTS=${PARTS:-"pop3 hs-ec hs-rsa smtp"}
OUT=${OUT:-$HERE/out/speed-$(date +%Y%m%d-%H%M%S)}
SKIP_BUILD=${SKIP_BUILD:-0}
ALL=$OUT/all-results.txt
T0=$(date +%s)

log() { printf '[speed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
want() { [[ " $PARTS " == *" $1 "* ]]; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Each part is one of the existing scripts, its results file in OUT; a failed part is
# reported and the others still run. The first part builds, the later ones reuse it.
part() {  # label script env...
    local label=$1 script=$2 rc=0
    shift 2
    log "$label: $script (load $(load))"
    env OUT="$OUT" REPS="$REPS" SKIP_BUILD="$SKIP_BUILD" "$@" bash "$HERE/$script" \
        >"$OUT/$label.out" 2>"$OUT/$label.err" || rc=$?
    SKIP_BUILD=1
    [ "$rc" = 0 ] || log "WARNING: $label failed (rc=$rc), see $OUT/$label.err"
    echo "INFO part=$label rc=$rc load_after=$(load | tr ' ' ,)" >>"$OUT/parts.txt"
}

pop3_env=(SIZES=4096 DOVECOT_VARIANTS=tuned)
table() {  # title field row...   (benchlib's A/B table over every part's results)
    local title=$1
    shift
    printf '\n%s\n' "$title"
    python3 "$HERE/benchlib.py" table --results "$ALL" "$@" | grep -v '^RESULT '
}

summary() {
    local c m
    cat "$OUT"/pop3-*.txt "$OUT"/smtp-*.txt 2>/dev/null >"$ALL" || true
    echo
    echo "== issue 14 speed targets ($(date '+%F %H:%M'), $(nproc) CPUs, REPS=$REPS, QUICK=$QUICK)"
    echo "load before: $LOAD_BEFORE"
    echo "load after:  $(uptime)"
    sed 's/^INFO /  /' "$OUT/parts.txt"
    table "SMTP ingest, 4 KiB (messages/s; mh-serve's 250 = fsynced in new/)" \
        --header-a "mh-serve" --header-b "anchor" \
        --row "c8 vs Postfix;mhserve_smtp_4k_c8;postfix_smtp_4k_c8;msgs_per_s;>=4" \
        --row "c32 vs Postfix;mhserve_smtp_4k_c32;postfix_smtp_4k_c32;msgs_per_s;>=4" \
        --row "c8 at 250 vs floor (8 writers);mhserve_smtp_4k_c8;fs_fsyncdir_j8;accept_msgs_per_s;>=0.8" \
        --row "c32 at 250 vs floor (8 writers);mhserve_smtp_4k_c32;fs_fsyncdir_j8;accept_msgs_per_s;>=0.8" \
        --row "c1 at 250 vs floor (1 writer);mhserve_smtp_4k_c1;fs_fsyncdir_j1;accept_msgs_per_s;>=0.9" \
        --row "c8 delivered vs floor (8 writers);mhserve_smtp_4k_c8;fs_fsyncdir_j8;msgs_per_s;>=0.8" \
        --row "c1 delivered vs floor (1 writer);mhserve_smtp_4k_c1;fs_fsyncdir_j1;msgs_per_s;>=0.9"
    local rows=() alone=()
    for m in plain tls; do
        for c in 1 8; do
            local target=">=1.5"; [ "$m" = tls ] && target=">=1.2"
            rows+=(--row "$m c$c;mhserve_pop3_4k_${m}_c_c$c;dovecot_tuned_pop3_4k_${m}_c_c$c;msgs_per_s;$target")
            # login (a yescrypt check each) and QUIT (the expunge) weigh heavily at 4 KiB
            rows+=(--row "$m c$c RETR phase only;mhserve_pop3_4k_${m}_c_c$c;dovecot_tuned_pop3_4k_${m}_c_c$c;retr_msgs_per_s;")
            rows+=(--row "$m c$c QUIT s (expunge);mhserve_pop3_4k_${m}_c_c$c;dovecot_tuned_pop3_4k_${m}_c_c$c;quit_s;")
            alone+=(--row "$m c$c vs mh-serve;memory_pop3_4k_${m}_c_c$c;mhserve_pop3_4k_${m}_c_c$c;msgs_per_s;>=3")
            alone+=(--row "$m c$c vs Dovecot;memory_pop3_4k_${m}_c_c$c;dovecot_tuned_pop3_4k_${m}_c_c$c;msgs_per_s;>=3")
            alone+=(--row "$m c$c python client, alone;memory_pop3_4k_${m}_c_c$c;memory_pop3_4k_${m}_pipelined_c$c;msgs_per_s;")
        done
    done
    table "POP3 drain, 4 KiB, pipelined C client (messages/s, $POP_MSGS per mailbox)" \
        --header-a "mh-serve" --header-b "Dovecot tuned" "${rows[@]}"
    table "Is the client the limit? pop3drain against its in-memory server (messages/s)" \
        --header-a "client alone" --header-b "server" "${alone[@]}"
    rows=()
    for k in ec rsa; do
        for q in hslat hslat_qa; do
            for f in ms_median ms_p90; do
                rows+=(--row "pop3s $k ${q#hslat} $f;mhserve_${q}_pop3s_$k;dovecot_tuned_${q}_pop3s_$k;$f;<=1.0")
                rows+=(--row "smtps $k ${q#hslat} $f;mhserve_${q}_smtps_$k;postfix_${q}_smtps_$k;$f;<=1.0")
            done
        done
    done
    table "TLS connect-to-greeting latency, ms, $HS_N sequential connections (ec = P-256, rsa = RSA-2048; _qa = client TCP_QUICKACK, the server's own time)" \
        --header-a "mh-serve" --header-b "Dovecot tuned / Postfix" "${rows[@]}"
    printf '\nmh-serve RSS\n'
    grep -h '^| mh-serve RSS' "$OUT"/smtp-*.txt 2>/dev/null || echo "(no RSS results)"
    printf '\nSystem calls per delivered message (strace -c -f, top 15)\n'
    sed -n '/^| syscall /,/^| (all)/p' "$OUT"/smtp-*.txt 2>/dev/null || echo "(no strace results)"
    echo
    echo "parts' own tables: $OUT/*.out; all results: $ALL; $(( $(date +%s) - T0 )) s"
}

[ "$(id -u)" = 0 ] || { log "run as root (Dovecot, Postfix, mh-serve's privilege drop, drop_caches)"; exit 1; }
mkdir -p "$OUT"
: >"$OUT/parts.txt"
LOAD_BEFORE=$(uptime)
log "results in $OUT; load: $LOAD_BEFORE"
if want pop3; then
    part pop3 pop3.sh "${pop3_env[@]}" TESTS="pop3 selftest hslat" CERT_KIND=ec MSGS="$POP_MSGS" \
        CLIENTS="1 8" MODES="plain tls" POP_CLIENTS="c pipelined" HS_N="$HS_N"
elif want hs-ec; then
    part hs-ec pop3.sh "${pop3_env[@]}" TESTS=hslat CERT_KIND=ec MSGS=10 HS_N="$HS_N"
fi
want hs-rsa && part hs-rsa pop3.sh "${pop3_env[@]}" TESTS=hslat CERT_KIND=rsa MSGS=10 HS_N="$HS_N"
want smtp && part smtp smtp.sh SIZES=4096 SMTP_SESSIONS="1 8 32" SMTP_MSGS="$SMTP_MSGS" \
    FS_FILES="$FS_FILES" STRACE_MSGS="$STRACE_MSGS" PARTS="pairs floor memory syscalls"
summary | tee "$OUT/summary.txt"
