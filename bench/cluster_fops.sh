#!/usr/bin/env bash
# cluster_fops.sh — where GlusterFS ingest time goes: the brick operations (gluster volume
# profile) per fsbench file and per mh-serve delivery, on a fresh two-mount volume.
#   bash bench/cluster_fops.sh       # as root, needs FUSE and glusterfs-server; about 1 minute
# Environment: BUILD [build-bench] (Release mh-serve and mh-user, built by cluster.sh), N [200].
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-$ROOT/build-bench}
N=${N:-200}
SESSIONS=8

if [ "${1:-}" != --inside ]; then
    mkdir -p "$HERE/out"
    cc -O2 -o "$HERE/out/fsbench" "$ROOT/../shared/bench/fsbench.c"
    exec python3 "$ROOT/tests/cluster/glusterfixture.py" run -- bash "$HERE/cluster_fops.sh" --inside
fi

# The operations the brick served since the last call, by kind, and their total.
fops() {
    gluster volume profile "$GLUSTER_VOLUME" info incremental | awk '
        /Fop/ { p = 1; next }
        p && NF >= 8 && $NF ~ /^[A-Z]+$/ { c[$NF] += $(NF - 1) }
        END { t = 0; for (k in c) { printf "%s=%d ", k, c[k]; t += c[k] }; printf "TOTAL=%d\n", t }'
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

gluster volume profile "$GLUSTER_VOLUME" start >/dev/null
mkdir -p "$MNT1/fsbench/tmp" "$MNT1/fsbench/new"
fops >/dev/null
"$HERE/out/fsbench" "$MNT1/fsbench" "$N" 4096 fsync+dir "$SESSIONS" | tail -1
echo "RESULT name=cluster_fops_fsbench files=$N $(fops)"

S=$MNT1/spool
"$BUILD/tools/mh-user/mh-user" --spool "$S" domain add bench.test -q
for ((i = 0; i < SESSIONS; i++)); do
    echo benchpw | "$BUILD/tools/mh-user/mh-user" --spool "$S" add "u$i@bench.test" --password-stdin -q
done
printf 'hostname: bench.test\ntrusted_networks: ["127.0.0.0/8"]\n' >"$S/mailhost.yaml"
PORT=$(free_port)
"$BUILD/tools/mh-serve/mh-serve" --spool "$S" --hostname h1 --listen "smtp=127.0.0.1:$PORT" 2>"$HERE/out/cluster-fops-h1.log" &
H=$!
trap 'kill $H 2>/dev/null || true' EXIT
for _ in $(seq 300); do grep -q "listening for smtp" "$HERE/out/cluster-fops-h1.log" && break; sleep 0.1; done
# A first message per account, so the counted ones find every file made and cached.
for ((i = 0; i < SESSIONS; i++)); do
    smtp-source -s 1 -m 1 -l 4096 -f s@example.invalid -t "u$i@bench.test" "127.0.0.1:$PORT"
done
fops >/dev/null
CLIENTS=()
for ((i = 0; i < SESSIONS; i++)); do
    smtp-source -s 1 -m $((N / SESSIONS)) -l 4096 -f s@example.invalid -t "u$i@bench.test" "127.0.0.1:$PORT" &
    CLIENTS+=($!)
done
wait "${CLIENTS[@]}"
echo "RESULT name=cluster_fops_delivery deliveries=$((N / SESSIONS * SESSIONS)) $(fops)"
