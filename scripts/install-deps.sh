#!/usr/bin/env bash
# Installs everything mailhost needs to build and test on a bare Debian 12 machine.
# Run as root. Idempotent: packages already present are left alone.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev libyaml-cpp-dev libssl-dev libcurl4-openssl-dev libicu-dev
  libcrypt-dev nlohmann-json3-dev catch2
  libasio-dev libc-ares-dev
  libgmime-3.0-dev libarchive-dev
)
# The demo's mail clients (README main job): send with Python/curl, fetch with fetchmail.
demo_pkgs=(python3 curl openssl fetchmail ca-certificates python3-aiosmtpd)
# Real peers the tests drive: clients we did not write, readers of our Maildirs, and
# Postfix for its smtp-source load generator and smtp-sink relay/MX peer (installed
# unconfigured, never started as an MTA), aiosmtpd for peers with per-recipient replies,
# rspamd (started per test on loopback, offline, never as the system service) and
# Pigeonhole (dovecot-sieve: sievec/sieve-test check our exported Sieve scripts);
# strace injects faults at an exact system call (test_quota_crash: kill between the
# quota record and the link into new/); clamd (clamav-daemon, started per test class on
# a socket in the test folder with a one-line local signature file, never as the system
# service and never with freshclam) and clamdscan for the scanning benchmark.
# The package test (tests/package/): file (CPack finds the binaries for dpkg-shlibdeps
# with it), lintian, systemd (systemd-analyze verify; not PID 1 needed), debootstrap with
# the archive keyring and gpgv (a throwaway Debian 12 root to install the .deb into).
# The cluster test (tests/cluster/): glusterfs-server (glusterd, gluster) and its FUSE
# client (mount.glusterfs): one volume mounted twice stands for two hosts on one spool;
# glusterd is started by the test itself and stopped after, never as a system service.
test_pkgs=(
  "${demo_pkgs[@]}" bsdextrautils util-linux procps hyperfine mutt
  swaks libnet-ssleay-perl libio-socket-ssl-perl dnsmasq-base man-db groff-base dovecot-core postfix
  rspamd dovecot-sieve
  strace
  clamav-daemon clamdscan
  file lintian systemd debootstrap debian-archive-keyring gpgv
  glusterfs-server glusterfs-client
)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --with-tests) want+=("${test_pkgs[@]}") ;;
  --with-demo) want+=("${demo_pkgs[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root" >&2
    exit 77
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Postfix only lends its smtp-source: no configuration, so it never runs as an MTA.
  if command -v debconf-set-selections >/dev/null 2>&1; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The tests start their own offline clamd; the packaged services would only try to
# download signatures (freshclam) and load them (clamd, ~1 GB): keep them off.
if [ "$(id -u)" -eq 0 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now clamav-freshclam.service clamav-daemon.service clamav-daemon.socket >/dev/null 2>&1 || true
  systemctl disable --now glusterd.service >/dev/null 2>&1 || true
fi
