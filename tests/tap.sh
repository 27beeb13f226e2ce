# TAP-style checks for the shell tests: source it, call ok/not_ok (and need
# for a tool), end with tap_finish. A missing tool is a failed check, never a
# skip.
failures=0
n=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); failures=$((failures + 1))
    echo "not ok $n - $1"
    if [ $# -gt 1 ] && [ -n "$2" ]; then
        sed 's/^/#   /' <<<"$2"
    fi
}
need() {
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    not_ok "$2 (tool '$1' is missing; tests/install-deps.sh installs it)"
    return 1
}
tap_finish() {
    echo "1..$n"
    if [ "$failures" -ne 0 ]; then
        echo "# $failures of $n checks failed"
        exit 1
    fi
    echo "# all $n checks passed"
    exit 0
}
