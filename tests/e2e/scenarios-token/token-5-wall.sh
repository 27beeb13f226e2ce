#!/bin/sh
# 5. The 3-second wall.  The ecryptfs module is reloaded with the kernel's
# default wait, ecryptfs_message_wait_timeout=3 (on top of the shipped
# modprobe file, which raises it), and the key module given the budget that
# goes with it, unwrap_timeout_ms=2500.  A PIN typed after the budget fails
# the open with EIO before the kernel gives up, ecryptfsd keeps running, and
# the late PIN still unlocks the token: the next open works without a
# prompt.  With a budget above the kernel's wait the kernel gives up first,
# at 3 s (which also shows the wait the module was loaded with: its
# parameter is not in sysfs).  Then the module is reloaded with
# ecryptfs_message_wait_timeout=15 and the key module given
# unwrap_timeout_ms=14000 (ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF): a PIN typed
# after 5 s opens the file.  At the end the module is loaded as /init does,
# with the modprobe file's settings alone.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

dir=$TOK_SHARED/aes128
[ -f "$dir/ref/f5.txt" ] || eta_fail "scenario 2 left no files in $dir"
tok_agent start
upper=$ETA_WORK/upper

# reload_ecryptfs [WAIT]: unload and load the module (everything unmounted,
# no daemon).
reload_ecryptfs() {
    rmmod ecryptfs > "$ETA_WORK/rmmod.log" 2>&1 ||
        eta_fail "rmmod ecryptfs failed: $(cat "$ETA_WORK/rmmod.log"); $(grep ecryptfs /proc/modules)"
    [ ! -e /sys/module/ecryptfs ] || eta_fail "ecryptfs still loaded after rmmod"
    [ ! -e /dev/ecryptfs ] || eta_fail "/dev/ecryptfs still there after rmmod"
    modprobe ecryptfs ${1:+ecryptfs_message_wait_timeout=$1} ||
        eta_fail "modprobe ecryptfs ${1:+ecryptfs_message_wait_timeout=$1} failed"
    _i=0
    while [ ! -c /dev/ecryptfs ] && [ $_i -lt 40 ]; do usleep 50000; _i=$((_i + 1)); done
    [ -c /dev/ecryptfs ] || eta_fail "/dev/ecryptfs did not come back after modprobe"
    eta_log "ecryptfs reloaded${1:+ with ecryptfs_message_wait_timeout=$1}"
}

# --- the kernel's default wait (3 s), its budget (2.5 s): the PIN comes at 4 s.
reload_ecryptfs 3
printf '[keymod]\nunwrap_timeout_ms=2500\n' > "$ETA_WORK/keymod-2500.conf"
ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF=$ETA_WORK/keymod-2500.conf tok_start_ecryptfsd
tok_mount "$dir/lower" "$upper" "$(tok_opts 16)"
tok_lock
tok_pin slow right@4000
tok_dmesg_mark
s=$(tok_read_fails_eio "$upper/f3.txt") || exit 1
tok_info "wait 3 s, budget 2.5 s, PIN at 4 s: EIO after $s s"
tok_require_ecryptfsd "after the budget ran out"
grep -q 'did not answer in time' "$ETA_WORK/ecryptfsd.log" ||
    { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "the key module did not log the timeout"; }
# ecryptfsd answered (a failure) before the kernel stopped waiting.
tok_dmesg_new > "$ETA_WORK/dmesg-slow"
grep -q 'Failed to receive tag 65 packet' "$ETA_WORK/dmesg-slow" &&
    { eta_show "$ETA_WORK/dmesg-slow"; eta_fail "the kernel's wait ran out before ecryptfsd answered"; }
grep -q 'Failed to parse tag 65 packet' "$ETA_WORK/dmesg-slow" ||
    { eta_show "$ETA_WORK/dmesg-slow"; eta_fail "the kernel got no failure answer from ecryptfsd"; }
# The kernel messages above say who gave up first; the time only shows the
# module waited its budget (the guest's own overhead comes on top).
tok_between "$s" 2.3 4.0 ||
    eta_fail "the open failed after $s s; expected at the key module's 2.5 s budget"
tok_wait_state logged-in 10 || eta_fail "the late PIN did not log the token in"
tok_pin after-late-pin none
s=$(tok_read_same "$upper/f3.txt" "$dir/ref/f3.txt") || exit 1
tok_require_ecryptfsd "serving the next open"
tok_info "the next open, after the late PIN: $s s, no prompt"
eta_umount "$upper"
eta_stop_ecryptfsd

# --- a budget above the kernel's wait: the kernel gives up at its 3 s.
printf '[keymod]\nunwrap_timeout_ms=8000\n' > "$ETA_WORK/keymod-8s.conf"
ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF=$ETA_WORK/keymod-8s.conf tok_start_ecryptfsd
tok_mount "$dir/lower" "$upper" "$(tok_opts 16)"
tok_lock
tok_pin beyond-wait right@4000
tok_dmesg_mark
s=$(tok_read_fails_eio "$upper/f4.txt") || exit 1
tok_info "wait 3 s, budget 8 s, PIN at 4 s: EIO after $s s (the kernel's wait)"
tok_between "$s" 2.9 4.0 || eta_fail "the open failed after $s s; expected at the kernel's 3 s wait"
tok_dmesg_new | grep -q 'Failed to receive tag 65 packet' ||
    { tok_dmesg_new; eta_fail "no 'Failed to receive tag 65 packet': the kernel did not time out"; }
tok_wait_state logged-in 10 || eta_fail "the late PIN did not log the token in"
# The late answer is refused by the kernel; ecryptfsd goes on.
_i=0
while ! grep -q 'Failed to send eCryptfs miscdev message' "$ETA_WORK/ecryptfsd.log" && [ $_i -lt 20 ]; do
    usleep 100000; _i=$((_i + 1))
done
grep -q 'Failed to send eCryptfs miscdev message' "$ETA_WORK/ecryptfsd.log" ||
    { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "ecryptfsd did not try to deliver the late answer"; }
tok_require_ecryptfsd "after its late answer was refused"
tok_pin after-refused none
s=$(tok_read_same "$upper/f4.txt" "$dir/ref/f4.txt") || exit 1
tok_info "the next open, after the refused late answer: $s s"
eta_umount "$upper"
eta_stop_ecryptfsd

# --- a 15 s wait and a 14 s budget: the PIN comes at 5 s.
reload_ecryptfs 15
printf '[keymod]\nunwrap_timeout_ms=14000\n' > "$ETA_WORK/keymod-14s.conf"
ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF=$ETA_WORK/keymod-14s.conf tok_start_ecryptfsd
tok_mount "$dir/lower" "$upper" "$(tok_opts 16)"
tok_lock
tok_pin slow-15s right@5000
tok_dmesg_mark
s=$(tok_read_same "$upper/f5.txt" "$dir/ref/f5.txt") || exit 1
tok_dmesg_new | grep -q 'tag 65' && { tok_dmesg_new; eta_fail "kernel complaints about the slow unwrap"; }
tok_info "wait 15 s, budget 14 s, PIN at 5 s: the open succeeded in $s s"
tok_between "$s" 4.9 14 || eta_fail "the open took $s s; expected 5 s (the typing delay) to 14 s"
tok_require_ecryptfsd "after the slow PIN"
eta_umount "$upper"
eta_stop_ecryptfsd

reload_ecryptfs
exit 0
