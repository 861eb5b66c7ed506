#!/usr/bin/env bash
# The README's main job: installs dependencies (as root), builds mailhost, and runs the
# whole story on a fresh spool under /tmp: a domain and accounts made with mh-user,
# mh-serve on unprivileged loopback ports (SMTP, submission, SMTPS, POP3, POP3S; TLS
# with the self-signed certificate it makes on first start), mail sent by real clients
# (Python smtplib over submission + STARTTLS + AUTH, curl over plain SMTP), fetched and
# deleted by fetchmail over POP3S, and the quota back to zero; one mail to a remote
# address goes out through the outbound queue to a relay (aiosmtpd standing in for the
# provider's smarthost).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${MH_DEMO_BUILD:-$src/build}

bash "$src/scripts/install-deps.sh" --with-demo
bash "$src/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Release -DMH_BUILD_TESTS=OFF

spool=$(mktemp -d /tmp/mailhost-demo.XXXXXX)
export MH_SPOOL=$spool
bin=$build/tools
run() { echo "\$ $*"; "$@"; echo; }

echo "== demo spool: $spool"
run "$bin/mh-user/mh-user" domain add example.jp --quota 1G
run "$bin/mh-user/mh-user" domain add 例え.jp
taro_password=taro-demo-pw
echo "\$ echo … | mh-user add taro@example.jp --password-stdin --name \"Taro Yamada\""
echo "$taro_password" | "$bin/mh-user/mh-user" add taro@example.jp --password-stdin --name "Taro Yamada"
run "$bin/mh-user/mh-user" add jiro@example.jp --random-password
echo "demo-password" | "$bin/mh-user/mh-user" add hanako@example.jp --password-stdin
run "$bin/mh-user/mh-user" domain list
run "$bin/mh-user/mh-user" list example.jp
run "$bin/mh-user/mh-user" show taro@example.jp
echo "\$ echo demo-password | mh-user auth-test hanako@example.jp"
echo "demo-password" | "$bin/mh-user/mh-user" auth-test hanako@example.jp
echo
echo "== mh-serve on loopback"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp=$(free_port) submission=$(free_port) smtps=$(free_port) pop3=$(free_port) pop3s=$(free_port)
relay=$(free_port)
# The smarthost: aiosmtpd prints what it receives (Debian's python3, where the package is).
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$relay" -c aiosmtpd.handlers.Debugging > "$spool/relay.out" 2>&1 &
relay_pid=$!
cat > "$spool/mailhost.yaml" <<YAML
hostname: mail.example.jp
listen:
  smtp: "127.0.0.1:$smtp"
  submission: "127.0.0.1:$submission"
  smtps: "127.0.0.1:$smtps"
  pop3: "127.0.0.1:$pop3"
  pop3s: "127.0.0.1:$pop3s"
# The demo's clients are on loopback, which has no reverse DNS here: skip that check.
trusted_networks: ["127.0.0.0/8", "::1"]
# Remote mail leaves through this smarthost (the demo's has no STARTTLS).
relay: { host: "127.0.0.1:$relay", tls: none }
YAML
cat "$spool/mailhost.yaml"
"$bin/mh-serve/mh-serve" --check-config
"$bin/mh-serve/mh-serve" 2> "$spool/mh-serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" "$relay_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ "$(grep -c listening "$spool/mh-serve.log" 2>/dev/null)" -ge 5 ] && break; sleep 0.1; done
echo

echo "\$ python3 smtplib: submission + STARTTLS + AUTH as hanako → taro@example.jp"
python3 - "$submission" <<'PY'
import smtplib, ssl, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "hanako@example.jp"; m["To"] = "taro@example.jp"
m["Subject"] = "こんにちは from smtplib"
m.set_content("Hello Taro,\nthis went through submission with STARTTLS and AUTH.\n")
tls = ssl.create_default_context()
tls.check_hostname = False
tls.verify_mode = ssl.CERT_NONE   # the demo's certificate is the self-signed one
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.starttls(context=tls)
    print(s.ehlo()[1].decode())
    s.login("hanako@example.jp", "demo-password")
    print("refused:", s.send_message(m))
PY
echo
printf 'From: curl@example.org\r\nTo: taro@example.jp\r\nSubject: via curl\r\n\r\nHi Taro, from outside.\r\n' > "$spool/curl.eml"
run curl -sS "smtp://127.0.0.1:$smtp" --mail-from curl@example.org --mail-rcpt taro@example.jp --upload-file "$spool/curl.eml"
rm -f "$spool/curl.eml"
echo "\$ curl ... --mail-rcpt nobody@example.jp  (unknown account)"
curl -sS "smtp://127.0.0.1:$smtp" --mail-from x@example.org --mail-rcpt nobody@example.jp -T /dev/null || true
echo
run "$bin/mh-quota/mh-quota" show taro@example.jp
echo "\$ curl -k pop3s://127.0.0.1:$pop3s/ --user taro@example.jp:…   (LIST over POP3S)"
curl -sS -k "pop3s://127.0.0.1:$pop3s/" --user "taro@example.jp:$taro_password"
echo

echo "\$ python3 smtplib: hanako → friend@example.net (remote: queued, then sent to the relay)"
python3 - "$submission" <<'PY'
import smtplib, ssl, sys
tls = ssl.create_default_context(); tls.check_hostname = False; tls.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.starttls(context=tls)
    s.login("hanako@example.jp", "demo-password")
    print(s.sendmail("hanako@example.jp", ["friend@example.net"],
                     "From: hanako@example.jp\r\nTo: friend@example.net\r\nSubject: out\r\n\r\nvia the queue\r\n"))
PY
for _ in $(seq 100); do grep -q 'to=<friend@example.net> .*status=sent' "$spool/mh-serve.log" && break; sleep 0.1; done
grep 'queue .*friend@example.net' "$spool/mh-serve.log"
run "$bin/mh-serve/mh-serve" queue list
echo "== what the relay received"; cat "$spool/relay.out"; echo

echo "\$ fetchmail over POP3S (no keep): taro's mail → $spool/fetched.mbox"
home=$(mktemp -d)
cat > "$home/.fetchmailrc" <<RC
poll 127.0.0.1 service $pop3s protocol pop3 uidl timeout 30
  user "taro@example.jp" password "$taro_password" ssl no sslcertck no keep
  mda "/bin/sh -c 'cat >> $spool/fetched.mbox'"
RC
chmod 600 "$home/.fetchmailrc"
# The certificate is mh-serve's self-signed one, hence "no sslcertck" (and its warnings).
HOME=$home fetchmail --nodetach --nosyslog -f "$home/.fetchmailrc"
rm -rf "$home"
echo
kill -TERM "$serve_pid"; wait "$serve_pid" || true
kill "$relay_pid" 2>/dev/null || true
trap - EXIT
echo "== what fetchmail fetched"; cat "$spool/fetched.mbox"; echo
echo "== taro's Maildir and quota after the fetch (deleted at QUIT)"
ls -A "$spool"/domains/example.jp/accounts/taro/Maildir/new "$spool"/domains/example.jp/accounts/taro/Maildir/cur
run "$bin/mh-quota/mh-quota" show example.jp
echo "== mh-serve log"; cat "$spool/mh-serve.log"; echo
echo "== spool layout"
find "$spool" -path "$spool/run" -prune -o -print | sed "s|$spool|SPOOL|" | sort
echo
echo "demo spool left in $spool (remove it with: rm -rf $spool)"
