#!/bin/sh
# 2. 100 files written in one epoch, then opened all at once with the token
# logged in (token speed: run-token-scenarios.py --token-speed).  ecryptfsd
# serves them one at a time; the first costs one token operation and the
# agent keeps the epoch's key, so the rest do not wait for the token.  What
# must hold: no open fails, none for want of a kernel message context (the
# modprobe file's ecryptfs_message_buf_len), ecryptfsd lives, at most 2
# token operations.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

N=100
tok_speed_start
d=$ETA_WORK/d
upper=$ETA_WORK/upper
tok_make_files "$d/ref" $N
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
cp "$d"/ref/* "$upper/" || eta_fail "writing $N files failed"
sync
eta_umount "$upper"
tok_check_tag1 "$d/lower/f001" "$ETA_TOKEN_SIG" epoch
id1=$(tok_epoch_id "$d/lower/f001")
idn=$(tok_epoch_id "$d/lower/f$N")
[ -n "$id1" ] && [ "$id1" = "$idn" ] || eta_fail "f001 and f$N are not of one epoch ('$id1', '$idn')"

# Logged in, no epoch key known yet (Lock forgets them all).
tok_lock
tok_pin unlock right
tok_unlock
tok_pin parallel none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
tok_dmesg_mark
tok_ops_mark
t0=$(eta_now)
failed=$(cd "$d/ref" && tok_parallel_read "$upper" "$d/ref" f*)
t1=$(eta_now)
ops=$(tok_ops_since)
tok_info "$N parallel opens at ${ETA_TOKEN_SPEED_MS} ms per token operation: $failed failed, $ops token operation(s), $(tok_elapsed "$t0" "$t1") s"
if [ "$failed" != 0 ]; then
    for e in "$ETA_WORK"/par/*.err; do [ -s "$e" ] && { head -n 1 "$e"; break; }; done
    tok_dmesg_new | tail -n 5 | sed 's/^/    dmesg: /'
fi
tok_dmesg_new | grep -q 'free context list is empty' &&
    eta_fail "the kernel ran out of message contexts ($failed of $N opens failed)"
tok_require_ecryptfsd "after $N parallel opens"
[ "$failed" = 0 ] || eta_fail "$failed of $N parallel opens failed"
[ "$ops" -le 2 ] || eta_fail "$N opens of one epoch cost $ops token operations; expected at most 2"
eta_umount "$upper"
exit 0
