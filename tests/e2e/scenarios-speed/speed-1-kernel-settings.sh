#!/bin/sh
# 1. The kernel waits as the shipped modprobe file says (run-vm.sh puts it
# at /etc/modprobe.d/, /init's plain "modprobe ecryptfs" applies it).  The
# module shows no parameters in sysfs; any it shows must be the file's.  The
# message buffer length comes from the kernel's refusal of an impossible
# context index; the wait from an open queued while ecryptfsd is stopped:
# with a wait above 4 s it is still waiting at 4 s and succeeds once the
# daemon goes on, with a short one it fails with EIO when the wait ends.
# The shipped key module config's budget must go with the wait.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

[ -f "$ETA_MODPROBE_CONF" ] || eta_fail "no $ETA_MODPROBE_CONF in the guest"
want_len=$(eta_modprobe_option ecryptfs_message_buf_len)
want_wait=$(eta_modprobe_option ecryptfs_message_wait_timeout)
[ -n "$want_len" ] && [ -n "$want_wait" ] ||
    eta_fail "$ETA_MODPROBE_CONF lacks ecryptfs_message_buf_len or ecryptfs_message_wait_timeout"
for p in /sys/module/ecryptfs/parameters/*; do
    [ -f "$p" ] || continue
    want=$(eta_modprobe_option "${p##*/}")
    [ -z "$want" ] || [ "$(cat "$p")" = "$want" ] ||
        eta_fail "$p is $(cat "$p"); the modprobe file says $want"
done
got_len=$(eta_ecryptfs_buf_len) || eta_fail "could not open /dev/ecryptfs"
[ "$got_len" = "$want_len" ] ||
    eta_fail "the loaded module has ecryptfs_message_buf_len=${got_len:-?}; the file says $want_len"

tok_speed_start
d=$TOK_SHARED/speed-settings
rm -rf "$d"
mkdir -p "$d/ref"
upper=$ETA_WORK/upper
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
echo "queued behind a stopped daemon" > "$d/ref/q.txt"
cp "$d/ref/q.txt" "$upper/" || eta_fail "write failed"
eta_umount "$upper"
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
tok_pin unlock right 0-1
tok_unlock

kill -STOP "$ETA_ECRYPTFSD_PID"
t0=$(eta_now)
(cat "$upper/q.txt" > "$ETA_WORK/q.out" 2> "$ETA_WORK/q.err"; echo $? > "$ETA_WORK/q.rc") &
reader=$!
if [ "$want_wait" -gt 4 ]; then
    sleep 4
    [ ! -f "$ETA_WORK/q.rc" ] ||
        { kill -CONT "$ETA_ECRYPTFSD_PID"; eta_fail "the open ended after $(tok_elapsed "$t0" "$(eta_now)") s with the daemon stopped: the kernel waits less than the file's ${want_wait} s ($(cat "$ETA_WORK/q.err"))"; }
    kill -CONT "$ETA_ECRYPTFSD_PID"
    wait "$reader"
    t1=$(eta_now)
    [ "$(cat "$ETA_WORK/q.rc")" = 0 ] && cmp -s "$ETA_WORK/q.out" "$d/ref/q.txt" ||
        eta_fail "the open queued for 4 s failed after the daemon went on: $(cat "$ETA_WORK/q.err")"
    tok_info "wait ${want_wait} s (from the modprobe file): an open queued 4 s behind a stopped ecryptfsd opened after $(tok_elapsed "$t0" "$t1") s"
else
    wait "$reader"
    t1=$(eta_now)
    kill -CONT "$ETA_ECRYPTFSD_PID"
    s=$(tok_elapsed "$t0" "$t1")
    [ "$(cat "$ETA_WORK/q.rc")" != 0 ] || eta_fail "the open succeeded with the daemon stopped"
    tok_between "$s" "$((want_wait - 1)).9" "$((want_wait + 1))" ||
        eta_fail "the open failed after $s s; the file's wait is ${want_wait} s"
    tok_info "wait ${want_wait} s (from the modprobe file): EIO after $s s with ecryptfsd stopped"
fi
tok_info "ecryptfs_message_buf_len $got_len (from the modprobe file), key module budget $(sed -n 's/^unwrap_timeout_ms=//p' "$ETA_WORK/keymod.conf") ms"

# The key module's shipped budget (data/keymod.conf) goes with that wait:
# below it, and leaving ecryptfsd time to fail a queue fast (tok_budget_ms).
shipped=/etc/eta-token/keymod.conf
[ -r "$shipped" ] || eta_fail "no $shipped (run-token-scenarios.py copies data/keymod.conf)"
budget=$(sed -n 's/^unwrap_timeout_ms=\([0-9]*\).*/\1/p' "$shipped" | tail -n 1)
want=$(tok_budget_ms)
[ "${budget:-2500}" = "$want" ] ||
    eta_fail "data/keymod.conf has unwrap_timeout_ms=${budget:-unset (2500)}; with the shipped ecryptfs_message_wait_timeout=$want_wait it should be $want"
sleep 1
tok_require_ecryptfsd "after being stopped and continued"
eta_umount "$upper"
exit 0
