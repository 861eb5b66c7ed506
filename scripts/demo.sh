#!/usr/bin/env bash
# The README's main job: installs dependencies (as root), builds mailhost, and runs a
# demo on a fresh spool under /tmp: a domain (an IDN one too), an account with a
# generated password, and what `mh-user show` tells the user to put in a mail client.
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
if [ -x "$bin/mh-quota/mh-quota" ]; then
  echo; run "$bin/mh-quota/mh-quota" show example.jp
fi
echo
echo "== spool layout"
find "$spool" -path "$spool/run" -prune -o -print | sed "s|$spool|SPOOL|" | sort
echo
echo "demo spool left in $spool (remove it with: rm -rf $spool)"
