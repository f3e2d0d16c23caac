#!/usr/bin/env bash
# tools/test.sh: set up and run every test suite, on a fresh Debian 12 machine
# or a developer's. Installs what is missing (tools/bootstrap.sh --test),
# builds with warnings as errors, runs the suites with ctest, then builds
# the container image and runs it (the container stage: podman, as root),
# then builds again with AddressSanitizer + UBSan (and LeakSanitizer) and
# runs the suites once more, then runs the suites that start `rapidphoto`
# against one built with ThreadSanitizer, then each fuzz target
# (tests/fuzz) for a bounded time.
#
#   tools/test.sh                  every pass and stage
#   tools/test.sh --quick          the normal build only
#   tools/test.sh --no-container   all but the container stage
#
# RP_FUZZ_SECONDS sets each fuzz target's time (default 20; 0 skips the stage).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 container=1
for arg in "$@"; do
    case "$arg" in
        --quick)        quick=1; container=0 ;;
        --no-container) container=0 ;;
        *)              echo "usage: tools/test.sh [--quick] [--no-container]" >&2; exit 2 ;;
    esac
done
if [ "$container" = 1 ] && [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the container stage runs podman as root: run as root, or pass --no-container" >&2
    exit 2
fi

tools/bootstrap.sh --test

# The layers (README, Architecture): an include that runs upward fails here
tools/check-layers.sh

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -d ../shared/testdata/images ]; then
    echo "test.sh: ../shared/testdata is absent: the tests that need the shared photo corpus will say they were skipped" >&2
fi

# Configure and build in a folder; any failure (a compile error under
# -Werror, a link error) stops here, whatever that folder held before.
build_in() {
    local dir=$1; shift
    local configure=() targets=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --target) targets+=(--target "$2"); shift 2 ;;
            *)        configure+=("$1"); shift ;;
        esac
    done
    echo "== build ($dir: ${configure[*]})"
    if ! cmake -S . -B "$dir" -DRP_WERROR=ON -DRP_TESTS=ON "${configure[@]}" >/dev/null; then
        echo "test.sh: configuring $dir failed (above)" >&2
        exit 1
    fi
    local status=0
    cmake --build "$dir" -j"$jobs" "${targets[@]}" > "$dir/build.log" 2>&1 || status=$?
    grep -Ev '^\[ *[0-9]+%\]|^-- ' "$dir/build.log" || true
    if [ "$status" -ne 0 ]; then
        echo "test.sh: the build in $dir failed (above; the whole log is $dir/build.log)" >&2
        exit 1
    fi
}

# Each pass's ctest runs every label, the rollback test included
# (tests/rollback/rollback.sh): it builds the previous release once into
# build-rollback/ (8 to 18 s on two busy cores), which both passes then
# share; the suite itself takes 3 s (5 to 6 s under ASan).
run_pass() {
    local dir=$1; shift
    build_in "$dir" "$@"
    echo "== test ($dir)"
    # Two suites at a time (they mostly wait on what they started); those
    # that time something run alone (CMakeLists.txt, "suites side by side").
    # The container tests have a stage of their own.
    (cd "$dir" && ctest --output-on-failure --timeout 900 -j2 -LE container)
}

# The container image, built from this source and run for real: podman and
# the Debian base images (tools/container.sh setup: cached between runs),
# then the tests labelled "container" (the image build first, then the image
# on SQLite, in S3 mode, and the registry rehearsal). Registered in the
# normal build folder; nothing is recompiled.
container_stage() {
    local t0=$SECONDS
    echo "== container (podman: the image and its tests)"
    tools/container.sh setup
    cmake -S . -B build -DRP_CONTAINER_TESTS=ON >/dev/null
    (cd build && ctest --output-on-failure -L container)
    echo "== container stage: $((SECONDS - t0)) s"
}

# A throwaway PostgreSQL for the store contract suite, stopped on the way out
RP_TEST_PG_URL=$(tools/pg.sh start)
export RP_TEST_PG_URL
trap 'tools/pg.sh stop >/dev/null 2>&1 || true' EXIT

run_pass build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$container" = 1 ]; then
    container_stage
fi
if [ "$quick" = 0 ]; then
    # LeakSanitizer is on for every suite and every `rapidphoto` they
    # start (CMakeLists.txt, RP_SANITIZER_ENV; tests/lsan.supp says what
    # may be suppressed): a leak fails the pass.
    run_pass build-asan -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON
    # Both passes link the bundled libvips 8.18 (the default); Debian's
    # libvips 8.14 (-DRP_VIPS=debian) takes other code paths in
    # actors/resize, so the engine is built against it too and the resize
    # suite (every format, orientation, colour, broken files) runs on it.
    build_in build-debian-vips -DRP_VIPS=debian -DCMAKE_BUILD_TYPE=RelWithDebInfo \
             --target rapidphoto --target test_resize
    (cd build-debian-vips && ctest --output-on-failure --timeout 900 -R '^test_resize$')
    # ThreadSanitizer: the engine's threads (gateway, broker, workers, the
    # pipeline, the SQS bridges) in a `rapidphoto` built with -DRP_TSAN=ON,
    # driven by the normal build's suites that start it (CMakeLists.txt,
    # RP_TESTS_THREADS), tus_client, cli, metrics_emf, lambda_runtime and bench_load; Criterion itself cannot
    # run under TSan. A race fails the suite; tests/tsan.supp names the
    # third-party hand-overs TSan cannot see. Measured on 2 shared cores:
    # 13-15 s to build, 165-200 s to run (the ASan pass: 280-340 s to run).
    run_pass build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_TSAN=ON -DRP_TSAN_SUITES="$PWD/build"

    # Fuzzing: every libFuzzer target in turn, from its seeds and what
    # earlier runs found (build-fuzz, clang). A crash fails the run and
    # prints its input and report: it becomes a regression test.
    fuzz_seconds=${RP_FUZZ_SECONDS:-20}
    if [ "$fuzz_seconds" -gt 0 ]; then
        echo "== fuzz (build-fuzz: each of $(tools/fuzz.sh --list | wc -l) targets for $fuzz_seconds s)"
        tools/fuzz.sh --all "$fuzz_seconds"
    fi
fi
echo "== all test suites passed"
