#!/bin/sh
# 3. 200 files of one epoch read one by one: at most 2 token operations.
# After "echo 3 > /proc/sys/vm/drop_caches" the kernel has forgotten every
# file key and asks again for each open: 0 more token operations while the
# token stays logged in (the agent keeps the epoch key).  After the agent's
# Lock the next open asks the token again: one PIN prompt, one operation.
# The same reads at SoftHSM2's speed, in the same boot, are the baseline:
# past the first (cold) open, which pays the epoch's one token operation, an
# open at the run's token speed takes at most 1.5 times as long.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

N=200
MAX_RATIO=1.5
tok_speed_start
tok_fault_call GetControl || eta_fail "GetControl: $(cat "$ETA_WORK/fault.out")"
speed=$(sed -n 's/.*delay_ms=\([0-9]*\).*/\1/p' "$ETA_WORK/fault.out")
[ -n "$speed" ] || eta_fail "the run sets no token speed (delay_ms): $(cat "$ETA_WORK/fault.out")"
d=$ETA_WORK/d
upper=$ETA_WORK/upper
tok_make_files "$d/ref" $N
(cd "$d/ref" && md5sum f* > "$ETA_WORK/ref.md5")
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
cp "$d"/ref/* "$upper/" || eta_fail "writing $N files failed"
sync
eta_umount "$upper"

# read_all WHAT: the first file alone (cold: it may cost the epoch's token
# operation), then every file once, in order; sets first and rest (seconds)
# and ops.
read_all() {
    tok_ops_mark
    first=$(tok_read_same "$upper/f001" "$d/ref/f001") || exit 1
    _t0=$(eta_now)
    (cd "$upper" && md5sum f* > "$ETA_WORK/got.md5") 2> "$ETA_WORK/got.err" ||
        { eta_show "$ETA_WORK/got.err"; eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "$1: reading the $N files failed"; }
    rest=$(tok_elapsed "$_t0" "$(eta_now)")
    ops=$(tok_ops_since)
    cmp -s "$ETA_WORK/got.md5" "$ETA_WORK/ref.md5" || eta_fail "$1: files read back wrong"
    tok_info "$1: the first file in $first s, then all $N in $rest s, $ops token operation(s)"
}

# at_most_ratio WHAT SLOW BASE: SLOW / BASE <= MAX_RATIO.
at_most_ratio() {
    _r=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 99) }')
    tok_info "$1: ${speed} ms token ${2} s, SoftHSM2 ${3} s, ratio $_r (at most $MAX_RATIO)"
    awk -v r="$_r" -v m="$MAX_RATIO" 'BEGIN { exit !(r <= m) }' ||
        eta_fail "$1: an open at $speed ms per token operation took $_r times as long as at SoftHSM2's speed; expected at most $MAX_RATIO"
}

# The baseline: the fault module without its delay is SoftHSM2's speed.
tok_lock
tok_fault_set delay_ms ""
tok_pin unlock right
tok_unlock
tok_pin read none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
read_all "SoftHSM2 speed, first read"
base_first_read=$rest
tok_drop_caches
read_all "SoftHSM2 speed, after drop_caches"
base_again=$rest
eta_umount "$upper"

tok_lock
tok_fault_set delay_ms "$speed"
tok_pin unlock right
tok_unlock
tok_pin read none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"

read_all "first read"
[ "$ops" -le 2 ] || eta_fail "reading $N files of one epoch cost $ops token operations; expected at most 2"
at_most_ratio "first read" "$rest" "$base_first_read"

tok_drop_caches
read_all "after drop_caches"
[ "$ops" = 0 ] || eta_fail "after drop_caches, with the token logged in, $ops token operation(s); expected 0"
[ "$(tok_token_state)" = logged-in ] || eta_fail "the token is no longer logged in"
at_most_ratio "after drop_caches" "$rest" "$base_again"

tok_lock
tok_drop_caches
tok_pin after-lock right
tok_ops_mark
s=$(tok_read_same "$upper/f001" "$d/ref/f001") || exit 1
ops=$(tok_ops_since)
tok_info "after Lock: the next open asked for the PIN and took $s s, $ops token operation(s)"
[ "$ops" = 1 ] || eta_fail "the first open after Lock cost $ops token operations; expected 1"
tok_require_ecryptfsd "at the end"
eta_umount "$upper"
exit 0
