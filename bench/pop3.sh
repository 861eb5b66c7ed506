#!/usr/bin/env bash
# pop3.sh — POP3 retrieval and TLS handshake rates: mh-serve against Dovecot's POP3 server
# (and Postfix's smtpd for SMTPS), same Maildir copy, same client, same run.
#   bash bench/pop3.sh                              # as root; about 10 minutes
#   REPS=1 MSGS=100 bash bench/pop3.sh              # a quick check
#   CLIENTS="1 4" MODES="plain tls stls" bash bench/pop3.sh
# Workload per run: USER/PASS, LIST, RETR every message (read fully), DELE every message,
# QUIT, on a mailbox of MSGS messages of SIZE bytes delivered by libspool
# (mh-test-deliver) and cp -a'd into each server's mailbox before every run.
# Environment: BUILD [build-bench], SKIP_BUILD=1, MH_SERVE (binary; default $BUILD's),
# WORK [/tmp/mh-bench/pop3] (wiped), OUT [bench/out], KEEP=1 keeps WORK, TESTS
# ["pop3 handshake"], REPS [3], MSGS [1000], SIZES ["4096 102400"], MODES ["plain tls"]
# (plain | tls = implicit TLS on the pop3s port | stls), POP_CLIENTS ["pipelined poplib"],
# CLIENTS ["1"] (concurrent sessions, each on its own mailbox), WINDOW [0] (pipelined
# client: RETR/DELE commands in flight, 0 = all), DOVECOT_VARIANTS ["default tuned"],
# HS_SECS [5], HS_CONC ["1 4"], HS_QUICKACK [1] (client TCP_QUICKACK, see pop3bench.py),
# POP_CLIENTS may name "c" (bench/pop3drain.c, compiled with cc into bench/out/), TESTS may
# add "selftest" (the clients against pop3drain's in-memory server on MEM_PORT [2150],
# TLS on +1) and "hslat" (pop3drain's sequential connect-to-greeting latency, HS_N [500]
# connections per server and rep), CERT_KIND [ec] (ec = P-256, rsa = RSA-2048),
# HS_OPENSSL=1 (also openssl s_time), PROFILE=1 (profile the
# clients once), ports: DC_POP3_PORT [2130] DC_POP3S_PORT [2131] (default variant; the
# tuned one uses +2), PF_SMTPS_PORT [2134], MH_POP3_PORT [2140] MH_POP3S_PORT [2141]
# MH_SMTPS_PORT [2142] MH_SMTP_PORT [2143].

set -euo pipefail
umask 022       # Dovecot's login and mail processes must traverse WORK

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
WORK=${WORK:-/tmp/mh-bench/pop3}
OUT=${OUT:-$HERE/out}
KEEP=${KEEP:-0}
TESTS=${TESTS:-"pop3 handshake"}
REPS=${REPS:-3}
MSGS=${MSGS:-1000}
SIZES=${SIZES:-"4096 102400"}
MODES=${MODES:-"plain tls"}
POP_CLIENTS=${POP_CLIENTS:-"pipelined poplib"}
CLIENTS=${CLIENTS:-1}
WINDOW=${WINDOW:-0}
DOVECOT_VARIANTS=${DOVECOT_VARIANTS:-"default tuned"}
HS_SECS=${HS_SECS:-5}
HS_CONC=${HS_CONC:-"1 4"}
HS_OPENSSL=${HS_OPENSSL:-0}
HS_QUICKACK=${HS_QUICKACK:-1}
HS_N=${HS_N:-500}
CERT_KIND=${CERT_KIND:-ec}
MEM_PORT=${MEM_PORT:-2150}
PROFILE=${PROFILE:-0}
DC_POP3_PORT=${DC_POP3_PORT:-2130}
DC_POP3S_PORT=${DC_POP3S_PORT:-2131}
PF_SMTPS_PORT=${PF_SMTPS_PORT:-2134}
MH_POP3_PORT=${MH_POP3_PORT:-2140}
MH_POP3S_PORT=${MH_POP3S_PORT:-2141}
MH_SMTPS_PORT=${MH_SMTPS_PORT:-2142}
MH_SMTP_PORT=${MH_SMTP_PORT:-2143}     # not measured; see make_spool

MH_USER=$BUILD/tools/mh-user/mh-user
MH_DELIVER=$BUILD/tests/mh-test-deliver
MH_SERVE_GIVEN=${MH_SERVE:+1}
MH_SERVE=${MH_SERVE:-$BUILD/tools/mh-serve/mh-serve}
MH_COMM=$(basename "$MH_SERVE" | cut -c1-15)    # its /proc/PID/comm, checked before a kill
P=(python3 "$HERE/pop3bench.py")
DRAIN=$OUT/pop3drain                            # the C client (bench/pop3drain.c)

DOMAIN=bench.test
PASSWORD=benchpw
BENCH_USER=mhbench              # owns both servers' Maildirs (as in ../shared/bench)
HOSTNAME_=mhbench.localdomain
SPOOL=$WORK/spool
DC=$WORK/dovecot
PF=$WORK/postfix
CERT=$WORK/tls/cert.pem
KEY=$WORK/tls/key.pem
MAXC=1; for c in $CLIENTS; do (( c > MAXC )) && MAXC=$c; done

mkdir -p "$OUT"
RESULTS=$OUT/pop3-$(date +%Y%m%d-%H%M%S).txt
MH_PID=
MEM_PIDS=()         # pop3drain's in-memory servers (TESTS=selftest)
DC_PIDS=()          # "pid" of each Dovecot master we started
PF_PID=
MH_POP3=0 MH_POP3S=0 MH_STLS=0 MH_SMTPS=0
T0=$(date +%s)

log() { printf '[pop3 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
emit() { tee -a "$RESULTS"; }
info() { echo "INFO $*" | emit; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
size_tag() { if (( $1 % 1024 == 0 )); then echo "$(( $1 / 1024 ))k"; else echo "${1}b"; fi; }
want() { [[ " $TESTS " == *" $1 "* ]]; }

# Stops one process we started, by PID, if its name is still COMM; waits for it to go.
stop_pid() {  # pid comm
    local pid=$1 comm=$2 i
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
    # (a child stopped right after its fork is still "bash" until its exec: wait a little)
    # (it may also be exiting already, e.g. after the terminal's SIGINT)
    for ((i = 0; i < 20; i++)); do
        [ -d "/proc/$pid" ] || return 0
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && break
        sleep 0.1
    done
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || { log "pid $pid is not $comm, left alone"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
    log "WARNING: $comm pid $pid ignored SIGTERM for 10 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    stop_pid "$MH_PID" "$MH_COMM"
    for pid in "${MEM_PIDS[@]}"; do stop_pid "$pid" pop3drain; done
    # A Dovecot master stops its children itself; so does Postfix's master.
    for pid in "${DC_PIDS[@]}"; do stop_pid "$pid" dovecot; done
    stop_pid "$PF_PID" master
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    log "done in $(( $(date +%s) - T0 )) s; results in $RESULTS"
    exit "$rc"
}

# ------------------------------------------------------------------ build
# mh-user and mh-test-deliver are needed; mh-serve is optional: while its POP3 code is being
# written it may not compile, and then its part is skipped (a stale binary is not used).
MH_SERVE_BUILT=1
build() {
    if [ "${SKIP_BUILD:-0}" = 1 ]; then return 0; fi
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMH_BUILD_TESTS=ON >"$WORK/build.log" 2>&1 \
            || die "cmake failed (see $WORK/build.log)"
    fi
    nice -n 10 cmake --build "$BUILD" -j 2 --target mh-user mh-test-deliver >>"$WORK/build.log" 2>&1 \
        || die "cannot build mh-user and mh-test-deliver (see $WORK/build.log)"
    if [ -z "$MH_SERVE_GIVEN" ] && ! nice -n 10 cmake --build "$BUILD" -j 2 --target mh-serve >>"$WORK/build.log" 2>&1; then
        MH_SERVE_BUILT=0
        log "WARNING: mh-serve does not build now: $(grep -m1 -E 'error' "$WORK/build.log" | cut -c1-200 || true)"
    fi
}

# The C client: built every run (a second with -O2), so it always matches its source.
build_drain() {
    cc -O2 -Wall -Wextra -o "$DRAIN" "$HERE/pop3drain.c" -lssl -lcrypto 2>"$WORK/pop3drain-cc.log" \
        || die "cannot build $DRAIN (libssl-dev installed? see $WORK/pop3drain-cc.log)"
}

install_packages() {
    local missing=()
    command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/pop3 ] || missing+=(dovecot-core dovecot-pop3d)
    command -v postfix >/dev/null || missing+=(postfix)
    command -v openssl >/dev/null || missing+=(openssl)
    [ -r /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} from Debian"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$WORK/apt.log" 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$WORK/apt.log" 2>&1; } \
        || die "apt-get install ${missing[*]} failed (see $WORK/apt.log)"
}

# ------------------------------------------------------------------ data
# The spool: accounts u1..uMAXC (the mailboxes drained) and fill<SIZE> (one per size, the
# master copy). mh-test-deliver delivers MSGS copies of one message into fill<SIZE> with
# libspool, so the names, modes and maildirsize are exactly mailhost's.
make_spool() {
    local i size
    "$MH_USER" --spool "$SPOOL" domain add "$DOMAIN" -q
    chown -R "$BENCH_USER:" "$SPOOL"      # from now on the tools act as this owner
    for ((i = 1; i <= MAXC; i++)); do
        echo "$PASSWORD" | "$MH_USER" --spool "$SPOOL" add "u$i@$DOMAIN" --password-stdin -q
    done
    for size in $SIZES; do
        echo "$PASSWORD" | "$MH_USER" --spool "$SPOOL" add "fill$size@$DOMAIN" --password-stdin -q
        "${P[@]}" mkmsg --size "$size" --out "$WORK/msg-$size.eml"
        "$MH_DELIVER" --spool "$SPOOL" --repeat "$MSGS" -q "fill$size@$DOMAIN" <"$WORK/msg-$size.eml" \
            || die "mh-test-deliver into fill$size@$DOMAIN failed"
        [ "$(find "$(fill_maildir "$size")/new" -type f | wc -l)" = "$MSGS" ] || die "fill$size: not $MSGS messages in new/"
        log "fill$size@$DOMAIN: $MSGS messages of $size bytes, e.g. $(find "$(fill_maildir "$size")/new" -type f -printf "%f\n" -quit)"
    done
    mkdir -p "$SPOOL/tls"
    cp "$CERT" "$SPOOL/tls/cert.pem"; cp "$KEY" "$SPOOL/tls/key.pem"; chmod 600 "$SPOOL/tls/key.pem"
    cat >"$SPOOL/mailhost.yaml" <<EOF
# bench/pop3.sh: loopback only; the same certificate as Dovecot and Postfix
hostname: $HOSTNAME_
listen:
  smtp: "127.0.0.1:$MH_SMTP_PORT"             # not measured: lets a build without POP3 start and name what it does not serve
  pop3: "127.0.0.1:$MH_POP3_PORT"
  pop3s: "127.0.0.1:$MH_POP3S_PORT"
  smtps: "127.0.0.1:$MH_SMTPS_PORT"
tls: { cert: tls/cert.pem, key: tls/key.pem }
trusted_networks: ["127.0.0.0/8"]           # no reverse-DNS lookups (Postfix: mynetworks)
auth: { allow_plaintext: ["127.0.0.1/32"] } # USER/PASS without TLS on loopback, like Dovecot
EOF
    chown -R "$BENCH_USER:" "$SPOOL"
}
fill_maildir() { echo "$SPOOL/domains/$DOMAIN/accounts/fill$1/Maildir"; }
mh_maildir() { echo "$SPOOL/domains/$DOMAIN/accounts/u$1/Maildir"; }
dc_maildir() { echo "$DC/home/u$1/Maildir"; }

make_cert() {
    mkdir -p "$WORK/tls"
    local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    [ "$CERT_KIND" = rsa ] && newkey=(-newkey rsa:2048)
    openssl req -x509 "${newkey[@]}" -nodes -days 30 \
        -subj "/CN=$HOSTNAME_" -addext "subjectAltName=DNS:$HOSTNAME_" \
        -keyout "$KEY" -out "$CERT" >"$WORK/openssl.log" 2>&1 || die "openssl req failed"
    chmod 600 "$KEY"
}

# Before every run: the mailboxes of TARGET (dc|mh) for C sessions become fresh copies of
# fill<SIZE>'s Maildir. Dovecot's gets new/ and cur/ (cp -a), so it also loses its index
# and uidlist files; ours gets the whole Maildir (with maildirsize), as libspool left it.
restore() {  # target size c
    local src i dst
    src=$(fill_maildir "$2")
    for ((i = 1; i <= $3; i++)); do
        if [ "$1" = mh ]; then
            dst=$(mh_maildir "$i"); rm -rf "$dst"; cp -a "$src" "$dst"
        else
            dst=$(dc_maildir "$i"); rm -rf "$dst"; mkdir -p "$dst/tmp"
            cp -a "$src/new" "$src/cur" "$dst/"
            chown "$BENCH_USER:" "$dst" "$dst/tmp"; chmod 700 "$dst" "$dst/tmp"
        fi
    done
    sync; sleep 0.3
}

# ------------------------------------------------------------------ Dovecot
# Debian's defaults (dovecot-core 2.3) except: POP3 only, on loopback and our ports; virtual
# users from a passwd-file holding the same yescrypt hashes as our account.yaml (scheme
# CRYPT = libxcrypt's crypt(3), the same cost per login); Maildir in ~/Maildir; our
# certificate. mail_fsync stays at its default (optimized). Loopback counts as a secured
# connection, so plaintext USER/PASS works without TLS (disable_plaintext_auth = yes, the
# default). "tuned": Dovecot's documented high-performance login mode.
setup_dovecot() {
    local i hash v port sport
    mkdir -p "$DC"
    : >"$DC/passwd"
    for ((i = 1; i <= MAXC; i++)); do
        hash=$(sed -n 's/^password: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$SPOOL/domains/$DOMAIN/accounts/u$i/account.yaml")
        [ -n "$hash" ] || die "no password hash in u$i's account.yaml"
        echo "u$i@$DOMAIN:{CRYPT}$hash::::::" >>"$DC/passwd"
        mkdir -p "$DC/home/u$i"; chown "$BENCH_USER:" "$DC/home/u$i"
    done
    chmod 640 "$DC/passwd"; chgrp dovecot "$DC/passwd" 2>/dev/null || true
    for v in $DOVECOT_VARIANTS; do
        port=$(dc_port "$v" plain); sport=$(dc_port "$v" tls)
        mkdir -p "$DC/$v/state"
        {
            cat <<EOF
# bench/pop3.sh: Dovecot "$v"
protocols = pop3
listen = 127.0.0.1
base_dir = $DC/$v/run
state_dir = $DC/$v/state
instance_name = mh-pop3bench-$v
log_path = $DC/$v/dovecot.log
ssl = yes
ssl_cert = <$CERT
ssl_key = <$KEY
ssl_min_protocol = TLSv1.2
EOF
            [ -r /usr/share/dovecot/dh.pem ] && echo "ssl_dh = </usr/share/dovecot/dh.pem"   # as Debian's 10-ssl.conf
            cat <<EOF
auth_mechanisms = plain
first_valid_uid = $VUID
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=CRYPT $DC/passwd
}
userdb {
  driver = static
  args = uid=$VUID gid=$VGID home=$DC/home/%n
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $sport
    ssl = yes
  }
EOF
            if [ "$v" = tuned ]; then
                printf '  service_count = 0\n  process_min_avail = 2\n'
            fi
            echo "}"
            if [ "$v" = tuned ]; then
                printf 'service pop3 {\n  service_count = 100\n  process_min_avail = 4\n  process_limit = 100\n}\n'
            fi
        } >"$DC/dovecot-$v.conf"
    done
}
dc_port() {  # variant plain|tls
    local off=0
    [ "$1" = tuned ] && off=2
    if [ "$2" = tls ]; then echo $(( DC_POP3S_PORT + off )); else echo $(( DC_POP3_PORT + off )); fi
}

start_dovecot() {  # variant
    local i pid
    dovecot -c "$DC/dovecot-$1.conf" >>"$DC/$1-start.log" 2>&1 </dev/null \
        || die "dovecot ($1) does not start: $(tail -3 "$DC/$1-start.log")"
    for ((i = 0; i < 100; i++)); do [ -s "$DC/$1/run/master.pid" ] && break; sleep 0.1; done
    pid=$(tr -d ' \n' <"$DC/$1/run/master.pid")
    DC_PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do port_open "$(dc_port "$1" tls)" && break; sleep 0.1; done
    sleep 0.5       # process_min_avail processes
    "${P[@]}" probe --port "$(dc_port "$1" plain)" >"$WORK/probe.txt" 2>&1 || die "dovecot ($1): $(cat "$WORK/probe.txt")"
    info "dovecot_$1 pop3 $(cat "$WORK/probe.txt")"
    "${P[@]}" probe --tls --port "$(dc_port "$1" tls)" >"$WORK/probe.txt" 2>&1 || die "dovecot ($1) pop3s: $(cat "$WORK/probe.txt")"
    info "dovecot_$1 pop3s $(cat "$WORK/probe.txt")"
    log "dovecot ($1) master pid $pid on 127.0.0.1:$(dc_port "$1" plain) and :$(dc_port "$1" tls)"
}

# ------------------------------------------------------------------ Postfix
# As ../shared/bench/baseline.sh starts it (own config dir, loopback, chroot = n), with only
# an SMTPS listener: smtpd with -o smtpd_tls_wrappermode=yes. TLS settings as in Debian's
# default main.cf (security level may, a session cache), plus tlsmgr in master.cf.
setup_postfix() {
    mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
    chown postfix "$PF/data"
    cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = $HOSTNAME_
mydomain = localdomain
myorigin = \$myhostname
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
smtpd_tls_cert_file = $CERT
smtpd_tls_key_file = $KEY
smtpd_tls_security_level = may
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
EOF
    cat >"$PF/etc/master.cf" <<EOF
127.0.0.1:$PF_SMTPS_PORT inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
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
    postfix -c "$PF/etc" check >>"$PF/postfix.log" 2>&1 || die "postfix check failed (see $PF/postfix.log)"
}

start_postfix() {
    local i
    postfix -c "$PF/etc" start >>"$PF/postfix.log" 2>&1 </dev/null || die "postfix start failed (see $PF/postfix.log)"
    for ((i = 0; i < 100; i++)); do [ -s "$PF/queue/pid/master.pid" ] && break; sleep 0.1; done
    PF_PID=$(tr -d ' \n' <"$PF/queue/pid/master.pid")
    for ((i = 0; i < 100; i++)); do port_open "$PF_SMTPS_PORT" && break; sleep 0.1; done
    "${P[@]}" probe --tls --expect 220 --port "$PF_SMTPS_PORT" >"$WORK/probe.txt" 2>&1 \
        || die "postfix smtps: $(cat "$WORK/probe.txt")"
    info "postfix smtps $(cat "$WORK/probe.txt")"
    log "postfix master pid $PF_PID on 127.0.0.1:$PF_SMTPS_PORT (smtps)"
}

# ------------------------------------------------------------------ mh-serve
# Starts mh-serve and finds out which of its listeners work. Nothing is faked: a service
# that does not answer with its greeting is skipped, and said so.
start_mhserve() {
    local i why=""
    if [ "$MH_SERVE_BUILT" = 0 ]; then
        why="mh-serve does not build (see $WORK/build.log)"
    elif [ ! -x "$MH_SERVE" ]; then
        why="no binary $MH_SERVE"
    elif ! "$MH_SERVE" --spool "$SPOOL" --check-config >"$WORK/mh-serve-check.log" 2>&1; then
        why="--check-config failed: $(tail -1 "$WORK/mh-serve-check.log")"
    fi
    if [ -z "$why" ]; then
        "$MH_SERVE" --spool "$SPOOL" >>"$WORK/mh-serve.log" 2>&1 </dev/null &
        MH_PID=$!
        for ((i = 0; i < 100; i++)); do
            port_open "$MH_POP3_PORT" && port_open "$MH_POP3S_PORT" && port_open "$MH_SMTPS_PORT" && break
            [ -d "/proc/$MH_PID" ] || break
            sleep 0.1
        done
        sleep 0.2
        if [ ! -d "/proc/$MH_PID" ]; then
            why="mh-serve exited: $(tail -1 "$WORK/mh-serve.log")"; MH_PID=
        else
            if "${P[@]}" probe --port "$MH_POP3_PORT" >"$WORK/probe.txt" 2>&1; then
                MH_POP3=1; info "mhserve pop3 $(cat "$WORK/probe.txt")"
                grep -q ' STLS' "$WORK/probe.txt" && MH_STLS=1
            fi
            if "${P[@]}" probe --tls --port "$MH_POP3S_PORT" >"$WORK/probe.txt" 2>&1; then
                MH_POP3S=1; info "mhserve pop3s $(cat "$WORK/probe.txt")"
            fi
            if "${P[@]}" probe --tls --expect 220 --port "$MH_SMTPS_PORT" >"$WORK/probe.txt" 2>&1; then
                MH_SMTPS=1; info "mhserve smtps $(cat "$WORK/probe.txt")"
            fi
            why="the listener does not answer ($(grep -m1 -iE 'warning|error' "$WORK/mh-serve.log" | cut -c1-160 || true))"
        fi
    fi
    [ "$MH_POP3" = 1 ] || { log "mh-serve: POP3 not available, skipped: $why"; info "mhserve pop3=unavailable"; }
    [ "$MH_POP3" = 1 ] && [ "$MH_POP3S" = 0 ] && { log "mh-serve: POP3S not available, its TLS runs skipped"; info "mhserve pop3s=unavailable"; }
    [ "$MH_POP3" = 1 ] && [ "$MH_STLS" = 0 ] && [[ " $MODES " == *" stls "* ]] && log "mh-serve: no STLS in CAPA, its stls runs skipped"
    [ "$MH_SMTPS" = 1 ] || { log "mh-serve: SMTPS not available, skipped"; info "mhserve smtps=unavailable"; }
    if [ "$MH_POP3$MH_POP3S$MH_SMTPS" = 000 ] && [ -n "$MH_PID" ]; then stop_pid "$MH_PID" "$MH_COMM"; MH_PID=; fi
    [ -n "$MH_PID" ] && log "mh-serve pid $MH_PID: pop3=$MH_POP3 pop3s=$MH_POP3S stls=$MH_STLS smtps=$MH_SMTPS"
    return 0
}

# ------------------------------------------------------------------ runs
prefix_of() { case $1 in mh) echo mhserve ;; dc-default) echo dovecot ;; dc-*) echo "dovecot_${1#dc-}" ;; pf) echo postfix ;; esac; }

# One timed drain of TARGET (mh | dc-VARIANT).
pop3_run() {  # rep target size mode client c
    local rep=$1 t=$2 size=$3 mode=$4 client=$5 c=$6 port users="" dirs="" i name
    if [ "$t" = mh ]; then
        [ "$mode" = tls ] && port=$MH_POP3S_PORT || port=$MH_POP3_PORT
    else
        port=$(dc_port "${t#dc-}" "$mode")
    fi
    restore "${t%%-*}" "$size" "$c"
    for ((i = 1; i <= c; i++)); do
        users+="${users:+,}u$i@$DOMAIN"
        if [ "$t" = mh ]; then dirs+="${dirs:+,}$(mh_maildir "$i")"; else dirs+="${dirs:+,}$(dc_maildir "$i")"; fi
    done
    name="$(prefix_of "$t")_pop3_$(size_tag "$size")_${mode}_${client}_c$c"
    if [ "$client" = c ]; then          # implicit TLS or plain; it has no STLS
        [ "$mode" = stls ] && { log "pop3drain has no STLS: $name skipped"; return 0; }
        local flags=()
        [ "$mode" = tls ] && flags+=(--tls)
        (( WINDOW > 0 )) && flags+=(--window "$WINDOW")
        "$DRAIN" drain --name "$name" --run "$rep" --port "$port" "${flags[@]}" \
            --users "$users" --password "$PASSWORD" --expect-per-user "$MSGS" --left-dirs "$dirs" \
            | emit || true
        return 0
    fi
    "${P[@]}" drain --name "$name" --run "$rep" --port "$port" --mode "$mode" --client "$client" \
        --users "$users" --password "$PASSWORD" --expect-per-user "$MSGS" --left-dirs "$dirs" \
        --window "$WINDOW" | emit || true
}

pop3_targets() {  # rep mode -> the targets of this run, order alternating by rep
    local t=() v
    for v in $DOVECOT_VARIANTS; do t+=("dc-$v"); done
    if [ "$MH_POP3" = 1 ] && { [ "$2" = plain ] || { [ "$2" = tls ] && [ "$MH_POP3S" = 1 ]; } || { [ "$2" = stls ] && [ "$MH_STLS" = 1 ]; }; }; then
        if (( $1 % 2 )); then t+=(mh); else t=(mh "${t[@]}"); fi
    fi
    echo "${t[@]}"
}

test_pop3() {
    local rep size mode client c t
    for ((rep = 1; rep <= REPS; rep++)); do
        info "pop3 rep=$rep load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
        for size in $SIZES; do
            for mode in $MODES; do
                for client in $POP_CLIENTS; do
                    for c in $CLIENTS; do
                        log "pop3 rep $rep/$REPS: $MSGS x $size B, $mode, $client, $c session(s): $(pop3_targets "$rep" "$mode")"
                        for t in $(pop3_targets "$rep" "$mode"); do
                            pop3_run "$rep" "$t" "$size" "$mode" "$client" "$c"
                        done
                    done
                done
            done
        done
    done
}

# Is the Python client the bottleneck? One profiled session of each client against the
# first Dovecot variant, plain, per size (not timed; the profile goes to stderr).
profile_clients() {
    local size client v
    v=${DOVECOT_VARIANTS%% *}
    for size in $SIZES; do
        for client in $POP_CLIENTS; do
            restore dc "$size" 1
            log "profile: $client, $size B, Dovecot $v"
            "${P[@]}" drain --profile --name profile --port "$(dc_port "$v" plain)" --client "$client" \
                --users "u1@$DOMAIN" --password "$PASSWORD" 2>&1 | grep -v '^$' | head -30 >&2 || true
        done
    done
}

hs_targets() {  # rep -> "target:service:port:greeting" items, order alternating by rep
    local t=() v
    for v in $DOVECOT_VARIANTS; do t+=("dc-$v:pop3s:$(dc_port "$v" tls):+OK"); done
    t+=("pf:smtps:$PF_SMTPS_PORT:220")
    [ "$MH_POP3S" = 1 ] && t+=("mh:pop3s:$MH_POP3S_PORT:+OK")
    [ "$MH_SMTPS" = 1 ] && t+=("mh:smtps:$MH_SMTPS_PORT:220")
    if (( $1 % 2 == 0 )); then
        local r=() i
        for ((i = ${#t[@]} - 1; i >= 0; i--)); do r+=("${t[i]}"); done
        t=("${r[@]}")
    fi
    echo "${t[@]}"
}

test_handshake() {
    local rep c item t svc port greet
    for ((rep = 1; rep <= REPS; rep++)); do
        info "handshake rep=$rep load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
        for c in $HS_CONC; do
            log "handshakes rep $rep/$REPS: $c client(s), ${HS_SECS}s each"
            for item in $(hs_targets "$rep"); do
                IFS=: read -r t svc port greet <<<"$item"
                "${P[@]}" handshake --name "$(prefix_of "$t")_hs_${svc}_c$c" --run "$rep" --port "$port" \
                    --secs "$HS_SECS" --conc "$c" --greeting "$greet" --quickack "$HS_QUICKACK" | emit || true
            done
        done
        for item in $(hs_targets "$rep"); do
            IFS=: read -r t svc port greet <<<"$item"
            "${P[@]}" latency --name "$(prefix_of "$t")_hs_${svc}_latency" --run "$rep" --port "$port" \
                --n 20 --greeting "$greet" | emit || true
        done
        if [ "$HS_OPENSSL" = 1 ]; then
            for item in $(hs_targets "$rep"); do
                IFS=: read -r t svc port greet <<<"$item"
                "${P[@]}" stime --name "$(prefix_of "$t")_hs_${svc}_stime" --run "$rep" --port "$port" \
                    --secs "$HS_SECS" | emit || true
            done
        fi
    done
}

# Is the client the limit? Each client drains pop3drain's in-memory server (same message
# count and size, plain and implicit TLS with the same certificate) like a real server;
# the table sets that rate against mh-serve's and Dovecot's.
start_memserver() {  # size plain|tls
    local port=$MEM_PORT args=(--msgs "$MSGS" --size "$1")
    [ "$2" = tls ] && { port=$(( MEM_PORT + 1 )); args+=(--cert "$CERT" --key "$KEY"); }
    "$DRAIN" serve --port "$port" "${args[@]}" 2>>"$WORK/memserver.log" </dev/null &
    MEM_PIDS+=("$!")
    local i
    for ((i = 0; i < 50; i++)); do port_open "$port" && return 0; sleep 0.1; done
    die "pop3drain serve does not listen on $port (see $WORK/memserver.log)"
}

test_selftest() {
    local rep size mode client c users i port name pid
    for size in $SIZES; do
        start_memserver "$size" plain
        start_memserver "$size" tls
        for ((rep = 1; rep <= REPS; rep++)); do
            for mode in $MODES; do
                [ "$mode" = stls ] && continue
                port=$MEM_PORT; [ "$mode" = tls ] && port=$(( MEM_PORT + 1 ))
                for client in $POP_CLIENTS; do
                    for c in $CLIENTS; do
                        users=""; for ((i = 1; i <= c; i++)); do users+="${users:+,}u$i"; done
                        name="memory_pop3_$(size_tag "$size")_${mode}_${client}_c$c"
                        log "selftest rep $rep/$REPS: $name"
                        if [ "$client" = c ]; then
                            "$DRAIN" drain --name "$name" --run "$rep" --port "$port" \
                                $([ "$mode" = tls ] && echo --tls) --users "$users" --password x \
                                --expect-per-user "$MSGS" | emit || true
                        else
                            "${P[@]}" drain --name "$name" --run "$rep" --port "$port" --mode "$mode" \
                                --client "$client" --users "$users" --password x \
                                --expect-per-user "$MSGS" --window "$WINDOW" | emit || true
                        fi
                    done
                done
            done
        done
        for pid in "${MEM_PIDS[@]}"; do stop_pid "$pid" pop3drain; done
        MEM_PIDS=()
    done
}

# Latency of one connection at a time, HS_N per server and rep, the servers taking turns
# (order reversed every other rep): connect() to the greeting after a full handshake,
# with the client's ordinary delayed ACKs (what a mail client sees) and with TCP_QUICKACK
# ("hslat_qa": the server's own time; see quickack() in pop3drain.c).
test_hslat() {
    local rep item t svc port greet
    for ((rep = 1; rep <= REPS; rep++)); do
        info "hslat rep=$rep cert=$CERT_KIND load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
        for item in $(hs_targets "$rep"); do
            IFS=: read -r t svc port greet <<<"$item"
            log "hslat rep $rep/$REPS: $t $svc, $HS_N connections, $CERT_KIND key"
            "$DRAIN" handshake --name "$(prefix_of "$t")_hslat_${svc}_$CERT_KIND" --run "$rep" \
                --port "$port" --n "$HS_N" --greeting "$greet" | emit || true
            "$DRAIN" handshake --name "$(prefix_of "$t")_hslat_qa_${svc}_$CERT_KIND" --run "$rep" \
                --port "$port" --n "$HS_N" --greeting "$greet" --quickack | emit || true
        done
    done
}

tables() {
    local size mode client c tag rows=() anchors="" v n hs=() dcs=""
    for v in $DOVECOT_VARIANTS; do anchors+="${anchors:+,}Dovecot $v"; done
    if want pop3; then
        for size in $SIZES; do
            tag=$(size_tag "$size")
            for mode in $MODES; do
                for client in $POP_CLIENTS; do
                    for c in $CLIENTS; do
                        n="pop3_${tag}_${mode}_${client}_c$c"
                        rows+=(--row "$tag $mode $client c$c;mhserve_$n$(for v in $DOVECOT_VARIANTS; do printf ';%s_%s' "$(prefix_of "dc-$v")" "$n"; done)")
                    done
                done
            done
        done
        "${P[@]}" table --results "$RESULTS" --pairs --field msgs_per_s --anchors "$anchors" --target ">=1.0" \
            --title "POP3 drain, messages/s: login to the last QUIT reply (median of $REPS; $MSGS msgs per session)" \
            "${rows[@]}" | emit
        "${P[@]}" table --results "$RESULTS" --pairs --field MB_per_s --anchors "$anchors" --target ">=1.0" \
            --title "POP3 drain, MB/s of the octets LIST reports (median of $REPS)" "${rows[@]}" | emit
        "${P[@]}" table --results "$RESULTS" --pairs --field retr_msgs_per_s --anchors "$anchors" \
            --title "RETR phase only, messages/s (the server streaming the messages; median of $REPS)" \
            "${rows[@]}" | emit
        "${P[@]}" table --results "$RESULTS" --field quit_s --anchors "$anchors" \
            --title "QUIT phase, seconds (the expunge of $MSGS messages: renames, unlinks, index updates; median of $REPS)" \
            "${rows[@]}" | emit
        "${P[@]}" table --results "$RESULTS" --field client_cpu_pct --anchors "$anchors" \
            --title "POP3 client CPU, % of the run's wall time (100 = one core busy)" "${rows[@]}" | emit
    fi
    if want selftest; then
        rows=()
        for size in $SIZES; do
            for mode in $MODES; do
                for client in $POP_CLIENTS; do
                    for c in $CLIENTS; do
                        n="pop3_$(size_tag "$size")_${mode}_${client}_c$c"
                        rows+=(--row "$(size_tag "$size") $mode $client c$c;memory_$n;mhserve_$n$(for v in $DOVECOT_VARIANTS; do printf ';%s_%s' "$(prefix_of "dc-$v")" "$n"; done)")
                    done
                done
            done
        done
        "${P[@]}" table --results "$RESULTS" --field msgs_per_s --header-a "client alone" \
            --header-a-short alone --anchors "mh-serve,$anchors" --target ">=3" \
            --title "Client alone (pop3drain's in-memory server) against the real servers, msgs/s (median of $REPS)" \
            "${rows[@]}" | emit
    fi
    if want hslat; then
        local f qa
        for qa in hslat hslat_qa; do
            dcs=""
            for v in $DOVECOT_VARIANTS; do dcs+=";$(prefix_of "dc-$v")_${qa}_pop3s_$CERT_KIND"; done
            for f in ms_median ms_p90; do
                "${P[@]}" table --results "$RESULTS" --field "$f" --anchors "$anchors,Postfix" --target "<=1.0" \
                    --title "TLS connect-to-greeting latency ($CERT_KIND key$([ "$qa" = hslat_qa ] && echo ', client TCP_QUICKACK')), $f over $HS_N sequential connections (median of $REPS)" \
                    --row "pop3s;mhserve_${qa}_pop3s_$CERT_KIND$dcs;" \
                    --row "smtps;mhserve_${qa}_smtps_$CERT_KIND$(for v in $DOVECOT_VARIANTS; do printf ';'; done);postfix_${qa}_smtps_$CERT_KIND" | emit
            done
        done
        dcs=""
    fi
    if want handshake; then
        for v in $DOVECOT_VARIANTS; do dcs+=";$(prefix_of "dc-$v")_hs_pop3s_cC"; done
        for c in $HS_CONC; do
            hs+=(--row "pop3s c$c;mhserve_hs_pop3s_c$c${dcs//cC/c$c};")
            hs+=(--row "smtps c$c;mhserve_hs_smtps_c$c$(for v in $DOVECOT_VARIANTS; do printf ';'; done);postfix_hs_smtps_c$c")
        done
        if [ "$HS_OPENSSL" = 1 ]; then
            hs+=(--row "pop3s s_time;mhserve_hs_pop3s_stime${dcs//_cC/_stime};")
            hs+=(--row "smtps s_time;mhserve_hs_smtps_stime$(for v in $DOVECOT_VARIANTS; do printf ';'; done);postfix_hs_smtps_stime")
        fi
        "${P[@]}" table --results "$RESULTS" --title "TLS handshakes/s (connect + full handshake + greeting; median of $REPS x ${HS_SECS}s; quickack=$HS_QUICKACK)" \
            --field hs_per_s --anchors "$anchors,Postfix" "${hs[@]}" | emit
        "${P[@]}" table --results "$RESULTS" --title "TLS connect-to-greeting latency, ms (one connection at a time, ordinary delayed ACKs; median of $REPS x 20)" \
            --field ms_median --anchors "$anchors,Postfix" \
            --row "pop3s;mhserve_hs_pop3s_latency${dcs//_cC/_latency};" \
            --row "smtps;mhserve_hs_smtps_latency$(for v in $DOVECOT_VARIANTS; do printf ';'; done);postfix_hs_smtps_latency" | emit
    fi
}

# ------------------------------------------------------------------ main
[ "$(id -u)" = 0 ] || die "run as root (Dovecot and Postfix masters, mh-serve's privilege drop)"
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in "$DC_POP3_PORT" "$DC_POP3S_PORT" $(( DC_POP3_PORT + 2 )) $(( DC_POP3S_PORT + 2 )) \
         "$PF_SMTPS_PORT" "$MH_POP3_PORT" "$MH_POP3S_PORT" "$MH_SMTPS_PORT" "$MH_SMTP_PORT" \
         "$MEM_PORT" $(( MEM_PORT + 1 )); do
    port_open "$p" && die "port 127.0.0.1:$p is in use"
done
rm -rf "$WORK"; mkdir -p "$WORK"; chmod 755 "$WORK"
: >"$RESULTS"
install_packages
id "$BENCH_USER" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$BENCH_USER"
VUID=$(id -u "$BENCH_USER"); VGID=$(id -g "$BENCH_USER")
log "building in $BUILD"
build
build_drain
make_cert
log "spool $SPOOL: $MSGS messages per size ($SIZES), $MAXC mailbox(es)"
make_spool
setup_dovecot
setup_postfix
info "host kernel=$(uname -r) cpus=$(nproc) tmp_fs=$(findmnt -no FSTYPE -T "$WORK" | head -1) load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
info "versions dovecot=$(dovecot --version | cut -d' ' -f1) postfix=$(postconf -c "$PF/etc" -h mail_version 2>/dev/null) openssl=$(openssl version | cut -d' ' -f2) python=$(python3 -c 'import platform;print(platform.python_version())') mh_serve=$MH_SERVE"
info "params reps=$REPS msgs=$MSGS sizes=${SIZES// /,} modes=${MODES// /,} pop_clients=${POP_CLIENTS// /,} clients=${CLIENTS// /,} window=$WINDOW dovecot_variants=${DOVECOT_VARIANTS// /,} hs_secs=$HS_SECS hs_conc=${HS_CONC// /,} hs_quickack=$HS_QUICKACK mail_fsync=optimized(default)"
for v in $DOVECOT_VARIANTS; do start_dovecot "$v"; done
{ want handshake || want hslat; } && start_postfix
start_mhserve
log "results -> $RESULTS"
[ "$PROFILE" = 1 ] && profile_clients
want pop3 && test_pop3
want handshake && test_handshake
want hslat && test_hslat
want selftest && test_selftest
info "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
tables
