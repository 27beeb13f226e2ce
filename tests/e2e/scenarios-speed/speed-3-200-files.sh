#!/bin/sh
# 3. 200 files of one epoch read one by one: at most 2 token operations.
# After "echo 3 > /proc/sys/vm/drop_caches" the kernel has forgotten every
# file key and asks again for each open: 0 more token operations while the
# token stays logged in (the agent keeps the epoch key).  After the agent's
# Lock the next open asks the token again: one PIN prompt, one operation.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

N=200
tok_speed_start
d=$ETA_WORK/d
upper=$ETA_WORK/upper
tok_make_files "$d/ref" $N
(cd "$d/ref" && md5sum f* > "$ETA_WORK/ref.md5")
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
cp "$d"/ref/* "$upper/" || eta_fail "writing $N files failed"
sync
eta_umount "$upper"

tok_lock
tok_pin unlock right
tok_unlock
tok_pin read none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"

# read_all WHAT: every file once, in order; sets s (seconds) and ops.
read_all() {
    tok_ops_mark
    _t0=$(eta_now)
    (cd "$upper" && md5sum f* > "$ETA_WORK/got.md5") 2> "$ETA_WORK/got.err" ||
        { eta_show "$ETA_WORK/got.err"; eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "$1: reading the $N files failed"; }
    s=$(tok_elapsed "$_t0" "$(eta_now)")
    ops=$(tok_ops_since)
    cmp -s "$ETA_WORK/got.md5" "$ETA_WORK/ref.md5" || eta_fail "$1: files read back wrong"
    tok_info "$1: $N files in $s s, $ops token operation(s)"
}

read_all "first read"
[ "$ops" -le 2 ] || eta_fail "reading $N files of one epoch cost $ops token operations; expected at most 2"

tok_drop_caches
read_all "after drop_caches"
[ "$ops" = 0 ] || eta_fail "after drop_caches, with the token logged in, $ops token operation(s); expected 0"
[ "$(tok_token_state)" = logged-in ] || eta_fail "the token is no longer logged in"

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
