#!/usr/bin/env bash
# Installs everything mailhost needs to build and test on a bare Debian 12 machine.
# Run as root. Idempotent: packages already present are left alone.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev libyaml-cpp-dev libssl-dev libcurl4-openssl-dev libicu-dev
  libcrypt-dev nlohmann-json3-dev libfmt-dev catch2
  libasio-dev libc-ares-dev
)
# Real peers the tests drive: clients we did not write, and readers of our Maildirs.
test_pkgs=(
  python3 bsdextrautils util-linux procps hyperfine mutt
  swaks curl dnsmasq-base man-db groff-base dovecot-core
)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--with-tests" ]; then
  want+=("${test_pkgs[@]}")
fi

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
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
