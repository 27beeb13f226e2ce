#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan) in a
# CMake tree of their own and runs each for a bounded time on a scratch copy
# of its seed corpus (tests/fuzz/corpus/<target>/; only --make-seeds writes
# to the repository). The CTest test `fuzz` runs it briefly; run it longer by
# hand.
#
# Fails, with the reason, when clang or libFuzzer is missing, when a target
# does not build, or when a target crashes, leaks, hangs or breaks one of its
# invariants. Never skips. A failing input is kept in
# <build-dir>/artifacts/<target>/ with the command that replays it.
#
# usage: tests/fuzz/run-fuzzers.sh [--build-dir DIR] [--seconds N] [--jobs N]
#                                  [--keep-corpus DIR] [--make-seeds] [TARGET...]
#   --build-dir DIR    the fuzz build tree (default: build-fuzz in the repository)
#   --seconds N        run time per target (default 20)
#   --jobs N           targets run at once (default: the number of CPUs, at most 2)
#   --keep-corpus DIR  keep the grown corpora in DIR/<target>/ (to merge by hand)
#   --make-seeds       rewrite tests/fuzz/corpus/ with eta-fuzz-make-seeds, then stop
#   TARGET...          only these targets (blob, auth-tok, ...; default: all)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build_dir="$top/build-fuzz"
seconds=20
jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt 2 ] && jobs=2
keep_corpus=
make_seeds=0
only=()

fail() {
    echo "run-fuzzers: FAIL: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --build-dir) build_dir=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --keep-corpus) keep_corpus=$2; shift 2 ;;
        --make-seeds) make_seeds=1; shift ;;
        -h|--help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) fail "unknown option $1 (see --help)" ;;
        *) only+=("$1"); shift ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || fail "--seconds needs a positive number"
[[ "$jobs" =~ ^[0-9]+$ ]] && [ "$jobs" -gt 0 ] || fail "--jobs needs a positive number"

# ---- the compiler: clang with libFuzzer, ASan and UBSan ----
clang=$(command -v clang || command -v clang-14) ||
    fail "clang is not installed (tests/install-deps.sh installs clang and libclang-rt-14-dev)"
probe=$(mktemp -d /tmp/eta-fuzz-probe.XXXXXX)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput (const char *d, unsigned long n) { return 0; }\n' >"$probe/p.c"
"$clang" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1 ||
    fail "$clang cannot link a libFuzzer program (libclang-rt-14-dev missing?): $(cat "$probe/log")"
rm -rf "$probe"
trap - EXIT

# ---- build ----
mkdir -p "$build_dir" || fail "cannot create $build_dir"
log="$build_dir/build.log"
if ! { CC="$clang" cmake -S "$here" -B "$build_dir" -DETA_FUZZ=ON -DCMAKE_BUILD_TYPE= \
           -DCMAKE_C_COMPILER="$clang" &&
       cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 1)"; } >"$log" 2>&1; then
    cat "$log" >&2
    fail "the fuzz targets did not build (log above, also in $log)"
fi
if grep -q 'warning:' "$log"; then
    grep -B2 -A4 'warning:' "$log" >&2
    echo "run-fuzzers: warning: the clang build has warnings (above); fix them" >&2
fi

if [ "$make_seeds" = 1 ]; then
    "$build_dir/eta-fuzz-make-seeds" "$here/corpus" || fail "eta-fuzz-make-seeds failed"
    exit 0
fi

mapfile -t targets <"$build_dir/fuzz-targets.txt"
[ ${#targets[@]} -gt 0 ] || fail "no fuzz targets listed in $build_dir/fuzz-targets.txt"
if [ ${#only[@]} -gt 0 ]; then
    for t in "${only[@]}"; do
        printf '%s\n' "${targets[@]}" | grep -qx -- "$t" || fail "no fuzz target $t (${targets[*]})"
    done
    targets=("${only[@]}")
fi
for t in "${targets[@]}"; do
    [ -d "$here/corpus/$t" ] && [ -n "$(ls -A "$here/corpus/$t")" ] ||
        fail "target $t has no seed corpus in $here/corpus/$t"
done

# ---- run ----
scratch=$(mktemp -d /tmp/eta-fuzz.XXXXXX) || fail "cannot make a scratch directory"
trap 'rm -rf "$scratch"' EXIT

# GLib without its slice allocator, so that ASan and LeakSanitizer see every
# block; every sanitizer report is fatal.
export G_SLICE=always-malloc G_DEBUG=gc-friendly
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
symbolizer=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"
unset DBUS_SESSION_BUS_ADDRESS

run_target() {
    local t=$1 dir="$scratch/$1"
    rm -rf "$build_dir/artifacts/$t"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -- "$here/corpus/$t"/* "$dir/corpus/"
    # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: memory
    # use that only an attack would cause. Both count as failures.
    "$build_dir/fuzz-$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        "$dir/corpus" >"$dir/log" 2>&1
    echo $? >"$dir/status"
}

start=$SECONDS
running=0
for t in "${targets[@]}"; do
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=()
for t in "${targets[@]}"; do
    dir="$scratch/$t"
    status=$(cat "$dir/status" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1)
    if [ "$status" = 0 ] && ! grep -qE '^==[0-9]+==ERROR|runtime error:|invariant broken' "$dir/log"; then
        echo "run-fuzzers: $t: ok, ${runs:-?} inputs, ${cov:-cov: ?} in ${seconds} s"
        if [ -n "$keep_corpus" ]; then
            mkdir -p "$keep_corpus/$t" && cp -- "$dir/corpus"/* "$keep_corpus/$t/"
        fi
        continue
    fi
    failed+=("$t")
    saved="$build_dir/artifacts/$t"
    mkdir -p "$saved"
    cp -- "$dir/artifacts"/* "$saved/" 2>/dev/null
    echo "run-fuzzers: $t: FAILED (exit status $status); its output:" >&2
    grep -v '^#[0-9]' "$dir/log" | tail -n 80 >&2
    for a in "$saved"/*; do
        [ -e "$a" ] && echo "run-fuzzers: $t: replay with: $build_dir/fuzz-$t $a" >&2
    done
done
echo "run-fuzzers: ${#targets[@]} targets in $((SECONDS - start)) s"
[ ${#failed[@]} -eq 0 ] || fail "fuzz targets failed: ${failed[*]}"
exit 0
