#!/bin/bash
# The whole test suite, as CI runs it (run as root on Debian 12):
#   installs the dependencies, configures build-ci with warnings as errors,
#   builds, runs every CTest test one at a time (they use root, mount
#   namespaces and a private bus each), and exits with ctest's status.
# The last line printed is "N passed, N failed"; a skipped test counts as
# failed.
#
# usage: bash tests/run-tests.sh [extra ctest arguments, e.g. -R harness/]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-ci"

die() { echo "run-tests: $*" >&2; exit 1; }

echo "run-tests: installing dependencies"
bash "$repo/tests/install-deps.sh" || die "installing dependencies failed"

echo "run-tests: configuring $build"
cmake -S "$repo" -B "$build" -DETA_WERROR=ON -DBUILD_TESTING=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo || die "configure failed"

echo "run-tests: building"
cmake --build "$build" -j"$(nproc)" || die "build failed"

log="$build/ctest-output.log"
echo "run-tests: running the tests (log: $log)"
status=0
(cd "$build" && ctest --output-on-failure --timeout 600 -j1 "$@") 2>&1 | tee "$log" ||
    status=${PIPESTATUS[0]}

summary=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
if [ -z "$summary" ]; then
    echo "run-tests: ctest printed no summary (status $status); no tests ran?" >&2
    echo "0 passed, 0 failed"
    [ "$status" -ne 0 ] || status=1
    exit "$status"
fi
failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
# A skipped test proved nothing: it counts as failed, and fails the run.
skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log" || true)
if [ "$skipped" -gt 0 ]; then
    echo "run-tests: $skipped test(s) were skipped; counted as failed" >&2
    failed=$((failed + skipped))
    [ "$status" -ne 0 ] || status=1
fi
echo "$((total - failed)) passed, $failed failed"
exit "$status"
