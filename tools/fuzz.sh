#!/usr/bin/env bash
# tools/fuzz.sh: build the libFuzzer targets (tests/fuzz) and run them.
#
#   tools/fuzz.sh TARGET SECONDS    run one target for SECONDS
#   tools/fuzz.sh --all SECONDS     run every target, SECONDS each, one per core at a time
#   tools/fuzz.sh --list            name the targets
#
# Builds build-fuzz (CC=clang, -DRP_FUZZ=ON: every layer with coverage,
# ASan and UBSan) when needed, then only the targets it runs. A target reads
# its committed seeds (tests/fuzz/corpus/TARGET, never written to), the
# shared photo corpus for the image targets (../shared/testdata/images, or
# RP_TESTDATA/images), and its scratch corpus build-fuzz/fuzz/corpus/TARGET,
# where the inputs it finds go and which the next run starts from. A crash
# (a sanitizer report, a broken promise of the target, a timeout or running
# out of memory) is written to build-fuzz/fuzz/crashes/TARGET/ and its
# report printed. One process per target, as many targets at once as the
# machine has cores (RP_FUZZ_JOBS=1 runs them in turn); libFuzzer's -jobs
# and -workers are not used.
#
# Prints a line per target (execs/s, edges covered, features, corpus
# entries, crashes) and the log's path; exits 1 when any target crashed.
# Extra libFuzzer flags: FUZZ_FLAGS="-seed=1 ...".
set -euo pipefail
cd "$(dirname "$0")/.."

# Each target: its libFuzzer flags (the largest input, a dictionary,
# whether the shared photo corpus seeds it). Keep in step with
# tests/fuzz/CMakeLists.txt.
targets=(msg broker s3_event sqs sniff exif resize_header tus multipart)
flags_for() {
    case "$1" in
        msg)           echo "-max_len=4096 -dict=tests/fuzz/msg.dict" ;;
        # zmq closes sockets on its own thread, after the input: memory is
        # freed later than libFuzzer's per-input leak check looks (leaks are
        # still checked when the run ends)
        broker)        echo "-max_len=4096 -detect_leaks=0" ;;
        s3_event)      echo "-max_len=8192 -dict=tests/fuzz/s3_event.dict" ;;
        sqs)           echo "-max_len=16384 -dict=tests/fuzz/sqs.dict" ;;
        sniff)         echo "-max_len=4096" ;;
        exif)          echo "-max_len=262144" ;;
        resize_header) echo "-max_len=262144" ;;
        tus)           echo "-max_len=16384 -dict=tests/fuzz/tus.dict" ;;
        multipart)     echo "-max_len=65536 -dict=tests/fuzz/multipart.dict" ;;
        *)             return 1 ;;
    esac
}
uses_photos() { case "$1" in sniff|exif|resize_header) return 0 ;; *) return 1 ;; esac; }

usage() {
    echo "usage: tools/fuzz.sh TARGET SECONDS | --all SECONDS | --list" >&2
    echo "targets: ${targets[*]}" >&2
    exit 2
}

[ $# -ge 1 ] || usage
if [ "$1" = "--list" ]; then
    printf '%s\n' "${targets[@]}"
    exit 0
fi
[ $# -eq 2 ] || usage
[[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || usage
seconds=$2
if [ "$1" = "--all" ]; then
    run=("${targets[@]}")
else
    flags_for "$1" >/dev/null || usage
    run=("$1")
fi

build=build-fuzz
photos="${RP_TESTDATA:-../shared/testdata}/images"

# Configure once (clang); build what is run, incrementally
if ! grep -qs '^RP_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
    command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (tools/bootstrap.sh --test installs it)" >&2; exit 1; }
    echo "fuzz.sh: configuring $build (clang, -DRP_FUZZ=ON)"
    CC=clang cmake -S . -B "$build" -DRP_FUZZ=ON -DRP_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
mkdir -p "$build/fuzz"
build_targets=()
for t in "${run[@]}"; do build_targets+=(--target "fuzz_$t"); done
if ! cmake --build "$build" -j2 "${build_targets[@]}" > "$build/fuzz/build.log" 2>&1; then
    grep -Ev '^\[ *[0-9]+%\]' "$build/fuzz/build.log" | tail -40
    echo "fuzz.sh: the build in $build failed (above; the whole log is $build/fuzz/build.log)" >&2
    exit 1
fi

# One target for its seconds; its line (and its report, if it crashed) go
# to $build/fuzz/$t.out, and $build/fuzz/$t.failed marks a crash
fuzz_one() {
    local t=$1
    local corpus="$build/fuzz/corpus/$t" crashes="$build/fuzz/crashes/$t"
    local log="$build/fuzz/$t.log" out="$build/fuzz/$t.out"
    mkdir -p "$corpus" "$crashes"
    rm -f "$build/fuzz/$t.failed"
    local seeds=("tests/fuzz/corpus/$t")
    if uses_photos "$t"; then
        if [ -d "$photos" ]; then seeds+=("$photos"); else echo "fuzz.sh: $photos is absent: $t starts from its own seeds only" >&2; fi
    fi
    local before after status=0
    before=$(find "$crashes" -type f | wc -l)
    # shellcheck disable=SC2046  # the flags are words
    "$build/tests/fuzz/fuzz_$t" $(flags_for "$t") ${FUZZ_FLAGS:-} -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
        "$corpus" "${seeds[@]}" > "$log" 2>&1 || status=$?
    after=$(find "$crashes" -type f | wc -l)
    # The last status line: "#N DONE cov: C ft: F corp: U/Sb ... exec/s: E ..."
    local last cov ft corp rate
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<< "$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<< "$last")
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -1)
    printf '%-14s %6s execs/s  cov %5s  ft %6s  corpus %-12s crashes %d  (%s)\n' "$t" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$((after - before))" "$log" > "$out"
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        {
            echo "---- $t: exit $status; the report (whole log: $log):"
            grep -Ev '^(#[0-9]+|INFO:|\s*NEW_FUNC|"|Dictionary|###)' "$log" | tail -60
            find "$crashes" -type f -newer "$build/fuzz/build.log" | sed 's/^/crash input: /'
        } >> "$out"
        touch "$build/fuzz/$t.failed"
    fi
}

# Each target is one process on one core: as many at once as there are
# cores (RP_FUZZ_JOBS), each for its full time, reported in the list's order
parallel=${RP_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
failed=()
for ((i = 0; i < ${#run[@]}; i += parallel)); do
    batch=("${run[@]:i:parallel}")
    for t in "${batch[@]}"; do fuzz_one "$t" & done
    wait
    for t in "${batch[@]}"; do
        cat "$build/fuzz/$t.out"
        [ -e "$build/fuzz/$t.failed" ] && failed+=("$t")
    done
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: ${failed[*]} crashed; each input above is a regression test to write" >&2
    exit 1
fi
