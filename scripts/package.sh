#!/usr/bin/env bash
# Builds the Debian package dist/mailhost_VERSION_amd64.deb with CPack (cmake/Packaging.cmake):
# a Release build in its own directory, then cpack. Usage: scripts/package.sh [BUILD_DIR]
# (default build-package/; MH_PACKAGE_JOBS limits the build's parallel jobs).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-package}
dist=$src/dist

gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
command -v ccache >/dev/null 2>&1 && gen+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# /usr prefix: the paths of the unit, the man pages and the postinst are Debian's.
cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DMH_BUILD_TESTS=OFF -DMH_SANITIZE=OFF -DMH_FUZZ=OFF -DMH_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${MH_PACKAGE_JOBS:-$(nproc)}"

# CPack stages in the build directory; only the .deb goes to dist/.
rm -f "$build"/mailhost_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
mkdir -p "$dist"
deb=$(ls "$build"/mailhost_*.deb)
cp "$deb" "$dist/"
echo "$dist/$(basename "$deb")"
