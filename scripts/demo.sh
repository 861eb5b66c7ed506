#!/usr/bin/env bash
# The README's main job: installs dependencies (as root), builds mailhost, and runs a
# demo on a fresh spool under /tmp: a domain (an IDN one too), accounts, what
# `mh-user show` tells the user to put in a mail client, then mh-serve on an
# unprivileged loopback port receiving mail from real clients (Python smtplib, curl).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${MH_DEMO_BUILD:-$src/build}

bash "$src/scripts/install-deps.sh"
bash "$src/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Release -DMH_BUILD_TESTS=OFF

spool=$(mktemp -d /tmp/mailhost-demo.XXXXXX)
export MH_SPOOL=$spool
bin=$build/tools
run() { echo "\$ $*"; "$@"; echo; }

echo "== demo spool: $spool"
run "$bin/mh-user/mh-user" domain add example.jp --quota 1G
run "$bin/mh-user/mh-user" domain add 例え.jp
run "$bin/mh-user/mh-user" add taro@example.jp --random-password --name "Taro Yamada"
echo "demo-password" | "$bin/mh-user/mh-user" add hanako@example.jp --password-stdin
run "$bin/mh-user/mh-user" domain list
run "$bin/mh-user/mh-user" list example.jp
run "$bin/mh-user/mh-user" show taro@example.jp
echo "\$ echo demo-password | mh-user auth-test hanako@example.jp"
echo "demo-password" | "$bin/mh-user/mh-user" auth-test hanako@example.jp
echo
echo "== mh-serve: inbound SMTP on loopback"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$spool/mailhost.yaml" <<YAML
hostname: mail.example.jp
listen:
  smtp: "127.0.0.1:$port"
# The demo's clients are on loopback, which has no reverse DNS here: skip that check.
trusted_networks: ["127.0.0.0/8", "::1"]
YAML
"$bin/mh-serve/mh-serve" --check-config && echo "mailhost.yaml ok"
"$bin/mh-serve/mh-serve" 2> "$spool/mh-serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$spool/mh-serve.log" 2>/dev/null && break; sleep 0.1; done

echo "\$ python3 smtplib → taro@example.jp"
python3 - "$port" <<'PY'
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "sender@example.org"; m["To"] = "taro@example.jp"
m["Subject"] = "こんにちは from smtplib"
m.set_content("Hello Taro,\nthis came in through mh-serve.\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    print(s.ehlo()[1].decode())
    print("refused:", s.send_message(m))
PY
echo
printf 'From: curl@example.org\r\nTo: hanako@example.jp\r\nSubject: via curl\r\n\r\nHi Hanako\r\n' > "$spool/curl.eml"
run curl -sS "smtp://127.0.0.1:$port" --mail-from curl@example.org --mail-rcpt hanako@example.jp --upload-file "$spool/curl.eml"
rm -f "$spool/curl.eml"
echo "\$ curl ... --mail-rcpt nobody@example.jp  (unknown account)"
curl -sS "smtp://127.0.0.1:$port" --mail-from x@example.org --mail-rcpt nobody@example.jp -T /dev/null || true
echo
kill -TERM "$serve_pid"; wait "$serve_pid" || true
trap - EXIT
echo "== mh-serve log"; cat "$spool/mh-serve.log"; echo
echo "== taro's Maildir/new"
for f in "$spool"/domains/example.jp/accounts/taro/Maildir/new/*; do echo "--- $(basename "$f")"; cat "$f"; done
echo
if [ -x "$bin/mh-quota/mh-quota" ]; then
  run "$bin/mh-quota/mh-quota" show example.jp
fi
echo "== spool layout"
find "$spool" -path "$spool/run" -prune -o -print | sed "s|$spool|SPOOL|" | sort
echo
echo "demo spool left in $spool (remove it with: rm -rf $spool)"
