#!/usr/bin/env bash
# Configures and builds mailhost. Usage: scripts/build.sh BUILD_DIR [extra cmake args...]
# Uses every core (the reference machine has two) and Ninja if present.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: build.sh BUILD_DIR [cmake args...]}
shift
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" "${gen[@]}" "$@"
else
  cmake -S "$src" -B "$build" "$@" >/dev/null
fi
cmake --build "$build" -j "$(nproc)"
