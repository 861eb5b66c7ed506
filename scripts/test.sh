#!/usr/bin/env bash
# The README's test command: installs dependencies (as root), builds with
# AddressSanitizer + UndefinedBehaviorSanitizer, starts the services the tests need,
# and runs every test (Catch2 unit tests and the CLI/interop tests) with ctest.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${MH_TEST_BUILD:-$src/build-test}

bash "$src/scripts/install-deps.sh" --with-tests
bash "$src/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Debug -DMH_SANITIZE=ON -DMH_BUILD_TESTS=ON
# The Debian package's Release build, here with every core rather than inside ctest beside
# the other tests; the package.deb test then finds it built (tests/package/).
if [ "$(id -u)" -eq 0 ]; then bash "$src/scripts/package.sh" >/dev/null; fi

# Sanitizer reports must fail the run; leak checking stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest -j "$(nproc)" --output-on-failure --timeout 900 "$@"
