#!/usr/bin/env bash
# tools/test.sh: set up and run every test suite, on a fresh Debian 12 machine
# or a developer's. Installs what is missing (tools/bootstrap.sh --test),
# builds with warnings as errors, runs the suites with ctest, then builds
# again with AddressSanitizer + UBSan and runs them once more.
#
#   tools/test.sh            both passes
#   tools/test.sh --quick    the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

tools/bootstrap.sh --test

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -d ../shared/testdata/images ]; then
    echo "test.sh: ../shared/testdata is absent: the tests that need the shared photo corpus will say they were skipped" >&2
fi

run_pass() {
    local dir=$1; shift
    echo "== build ($dir: $*)"
    cmake -S . -B "$dir" -DRP_WERROR=ON -DRP_TESTS=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" 2>&1 | grep -Ev '^\[ *[0-9]+%\]|^-- ' || true
    test -x "$dir/rapidphoto" || { echo "test.sh: build failed in $dir" >&2; exit 1; }
    echo "== test ($dir)"
    # One suite at a time: several start real servers and time their failovers
    (cd "$dir" && ctest --output-on-failure --timeout 900)
}

# A throwaway PostgreSQL for the store contract suite, stopped on the way out
RP_TEST_PG_URL=$(tools/pg.sh start)
export RP_TEST_PG_URL
trap 'tools/pg.sh stop >/dev/null 2>&1 || true' EXIT

run_pass build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$quick" = 0 ]; then
    # glib and libvips keep process-lifetime caches that LeakSanitizer reports;
    # ctest sets ASAN_OPTIONS=detect_leaks=0 for every suite.
    run_pass build-asan -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON
    # Both passes link the bundled libvips 8.18 (the default); Debian's
    # libvips 8.14 (-DRP_VIPS=debian) takes other code paths in
    # actors/resize, so the engine is built against it too and the resize
    # suite (every format, orientation, colour, broken files) runs on it.
    echo "== build (build-debian-vips: -DRP_VIPS=debian, resize suite)"
    cmake -S . -B build-debian-vips -DRP_WERROR=ON -DRP_TESTS=ON -DRP_VIPS=debian \
          -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build-debian-vips -j"$jobs" --target rapidphoto test_resize 2>&1 \
        | grep -Ev '^\[ *[0-9]+%\]|^-- ' || true
    test -x build-debian-vips/test_resize || { echo "test.sh: build failed in build-debian-vips" >&2; exit 1; }
    (cd build-debian-vips && ctest --output-on-failure --timeout 900 -R '^test_resize$')
fi
echo "== all test suites passed"
