#!/usr/bin/env bash
# package_test.sh — ctest `package.deb`: builds dist/mailhost_*.deb (scripts/package.sh),
# checks its files, control data and unit (dpkg-deb, lintian, systemd-analyze), then
# installs, uses and purges it in a throwaway Debian 12 root made by debootstrap.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: package.deb needs root (debootstrap, chroot)" >&2
  exit 77
fi

work=$(mktemp -d /var/tmp/mh-package.XXXXXX)
root=$work/root
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" || true; done
  # --one-file-system: never delete through a mount that failed to go.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
times=()
started=$SECONDS
step() { times+=("$1 $((SECONDS - started))s"); started=$SECONDS; echo "== $2"; }
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
expect_in() {  # expect_in NEEDLE TEXT WHAT
  grep -qF -- "$1" <<<"$2" || fail "$3: no \"$1\" in:"$'\n'"$2"
}

# The suite's mirror, from this machine's apt sources (deb822 or one-line), so no
# mirror's name is written here; MH_DEBIAN_MIRROR overrides it.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v RS= '{ uri = ""; suite = 0
                  for (i = 1; i <= NF; i++) { if ($i == "URIs:") uri = $(i + 1); if ($i == "bookworm") suite = 1 }
                  if (suite && uri != "") { print uri; exit } }' "$f"
  done
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") { print $i; exit } }'
}

echo "== building the package"
deb=$(bash "$src/scripts/package.sh" | tail -n 1)
version=$(sed -n 's/^project(mailhost VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ "$deb" = "$src/dist/mailhost_${version}_amd64.deb" ] || fail "package.sh made '$deb', not mailhost_${version}_amd64.deb"
step build "checking the package's control data and files"

info=$(dpkg-deb -I "$deb")
expect_in "Package: mailhost" "$info" "control"
expect_in "Version: $version" "$info" "control"
for dep in adduser libc6 libssl3 libcurl4 libgmime-3.0-0 libarchive13 libc-ares2; do
  grep -Eq "^ Depends:.*\b$dep\b" <<<"$info" || fail "control: no dependency on $dep in:"$'\n'"$info"
done
for script in postinst prerm postrm; do
  grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$script " <<<"$info" || fail "control: $script missing or not executable"
done

files=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
want=(./lib/systemd/system/mailhost.service ./usr/share/doc/mailhost/README.md
      ./usr/share/doc/mailhost/copyright ./usr/share/doc/mailhost/changelog.gz)
for tool in mh-user mh-quota mh-purge mh-filter mh-list mh-serve; do want+=("./usr/sbin/$tool"); done
for page in "$src"/man/*.[58]; do
  name=$(basename "$page"); want+=("./usr/share/man/man${name##*.}/$name.gz")
done
for comp in "$src"/completions/*; do
  name=$(basename "$comp")
  if [ -d "$src/tools/${name%.bash}" ]; then name=${name%.bash}; fi  # a tool's, by its name
  want+=("./usr/share/bash-completion/completions/$name")
done
for f in "${want[@]}"; do grep -qxF -- "$f" <<<"$files" || fail "dpkg-deb -c: $f missing"; done
grep -q '^./var/spool' <<<"$files" && fail "the spool must not be a file of the package (dpkg would remove it)"

# lintian's errors fail the test; its overrides (if any) are shipped in the package with
# their reasons, so they are read here too.
lintian --fail-on error --tag-display-limit 0 "$deb" || fail "lintian reports errors"

# verify looks for ExecStart='s binary and the Documentation= pages on this machine: lay
# the package's /usr/sbin over it in a mount namespace of the check's own, and point man
# at its pages. An unknown key is only a warning (exit 0): any output fails.
dpkg-deb -x "$deb" "$work/unpacked"
# shellcheck disable=SC2016  # $1 is the inner shell's
verify=$(unshare --mount --propagation private bash -c \
  'mount -t overlay overlay -o "lowerdir=$1/usr/sbin:/usr/sbin" /usr/sbin &&
   MANPATH=$1/usr/share/man systemd-analyze verify "$1/lib/systemd/system/mailhost.service"' _ "$work/unpacked" 2>&1) ||
  fail "systemd-analyze verify rejects mailhost.service: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify warns about mailhost.service: $verify"
step checks "making a Debian 12 root with debootstrap"

mirror=${MH_DEBIAN_MIRROR:-$(debian_mirror)}
mirror=${mirror%%$'\n'*}
[ -n "$mirror" ] || fail "no bookworm mirror in /etc/apt/sources.list*; set MH_DEBIAN_MIRROR"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap from $mirror"; }
step debootstrap "installing the package with apt-get"

cp "$deb" "$root/tmp/"
in_root apt-get update -qq
in_root apt-get install -y -qq "/tmp/$(basename "$deb")" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "apt-get install"; }
step install "checking the installed package"

in_root getent passwd mailhost >/dev/null || fail "no user mailhost"
in_root getent group mailhost >/dev/null || fail "no group mailhost"
[ "$(in_root stat -c '%U:%G %a' /var/spool/mailhost)" = "mailhost:mailhost 750" ] ||
  fail "/var/spool/mailhost: $(in_root stat -c '%U:%G %a' /var/spool/mailhost)"
expect_in "$version" "$(in_root mh-serve --version)" "mh-serve --version"
expect_in "Usage: mh-user" "$(in_root mh-user --help)" "mh-user --help"
for tool in mh-quota mh-purge mh-filter mh-list; do in_root "$tool" --help >/dev/null || fail "$tool --help"; done
# Each tool's completion loads from its installed place (with the helper file it sources).
for tool in mh-user mh-quota mh-purge mh-filter mh-list mh-serve; do
  in_root bash -c "source /usr/share/bash-completion/completions/$tool && complete -p $tool" >/dev/null ||
    fail "the installed completion of $tool does not load"
done
# Installing twice (a reinstall runs postinst again) changes nothing and fails nothing.
in_root apt-get install -y -qq --reinstall "/tmp/$(basename "$deb")" >"$work/reinstall.log" 2>&1 ||
  { cat "$work/reinstall.log" >&2; fail "apt-get install --reinstall"; }

# A configuration like an operator's, then a domain, an account and one mail through SMTP.
printf 'hostname: mx.test\ntrusted_networks: ["127.0.0.0/8"]\n' >"$root/var/spool/mailhost/mailhost.yaml"
in_root chown mailhost:mailhost /var/spool/mailhost/mailhost.yaml
chmod 0640 "$root/var/spool/mailhost/mailhost.yaml"
expect_in "/var/spool/mailhost/mailhost.yaml: ok" "$(in_root mh-serve --check-config)" "mh-serve --check-config"
in_root mh-user domain add example.org >/dev/null
in_root mh-user add alice@example.org --password-stdin <<<"correct horse" >/dev/null
session=$(printf '%s\r\n' "EHLO client.test" "MAIL FROM:<bob@remote.test>" "RCPT TO:<alice@example.org>" \
  DATA "Subject: packaged" "" "kept after purge" . QUIT |
  in_root mh-serve --stdio smtp --client-ip 127.0.0.1)
expect_in "250 2.0.0" "$session" "SMTP delivery"
maildir=$root/var/spool/mailhost/domains/example.org/accounts/alice/Maildir/new
mail=$(ls "$maildir")
[ "$(wc -w <<<"$mail")" -eq 1 ] || fail "expected one mail in $maildir, found: $mail"
[ "$(stat -c %u "$root/var/spool/mailhost/domains/example.org")" = "$(stat -c %u "$root/var/spool/mailhost")" ] ||
  fail "the tools wrote as another user than the spool owner"

# The daemon as the unit starts it (systemd is not PID 1 here): root with only the
# unit's capability bounding set and no new privileges, on the default ports 25, 587,
# 465, 110, 995 of a network namespace of its own (no clash with this machine's).
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$src/packaging/mailhost.service" |
  tr ' ' '\n' | sed 's/^CAP_//' | tr '[:upper:]' '[:lower:]' | sed 's/^/+/' | paste -sd,)
mailhost_uid=$(in_root id -u mailhost)
greeting=$(unshare --net bash -s "$root" "$caps" "$work/serve.log" <<'NETNS'
  set -euo pipefail
  root=$1 caps=$2 log=$3
  ip link set lo up
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setpriv --bounding-set "-all,$caps" \
    --inh-caps -all --no-new-privs mh-serve --spool /var/spool/mailhost 2>"$log" &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid || true' EXIT
  for _ in $(seq 600); do grep -q 'listening for pop3s' "$log" && break; sleep 0.1; done
  echo "uid $(stat -c %u /proc/$pid)"
  for port in 25 587 110; do
    exec 3<>/dev/tcp/127.0.0.1/$port
    read -r line <&3
    echo "$port ${line%$'\r'}"
    exec 3<&-
  done
NETNS
) || { cat "$work/serve.log" >&2; fail "mh-serve under the unit's capabilities"; }
expect_in "uid $mailhost_uid" "$greeting" "mh-serve's user after the switch"
expect_in "25 220 mx.test ESMTP mailhost" "$greeting" "SMTP greeting on port 25"
expect_in "587 220 mx.test ESMTP mailhost" "$greeting" "submission greeting on port 587"
expect_in "110 +OK" "$greeting" "POP3 greeting on port 110"
[ -s "$root/var/spool/mailhost/tls/key.pem" ] || fail "mh-serve made no TLS key in the spool"

purge=$(in_root apt-get purge -y mailhost 2>&1) || { echo "$purge" >&2; fail "apt-get purge"; }
expect_in "/var/spool/mailhost (mail, accounts, TLS keys) was left in place" "$purge" "purge message"
[ -f "$maildir/$mail" ] || fail "purge removed the mail"
grep -q "kept after purge" "$maildir/$mail" || fail "the mail's body changed"
in_root getent passwd mailhost >/dev/null || fail "purge removed the user mailhost (its files remain)"
[ ! -e "$root/usr/sbin/mh-serve" ] || fail "purge left /usr/sbin/mh-serve"
step use-and-purge "done"

echo "package.deb: times: ${times[*]}"
