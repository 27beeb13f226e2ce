#!/bin/sh
# The ecryptfs module runs with the shipped modprobe file's settings: run-vm.sh
# puts data/ecryptfs-token-agent-modprobe.conf at
# /etc/modprobe.d/ecryptfs-token-agent.conf and /init loads ecryptfs with a
# plain "modprobe ecryptfs", which reads it.  The module keeps its
# parameters out of sysfs (permissions 0), so the message buffer length is
# read back from the kernel's own refusal of an impossible context index;
# any parameter sysfs does show must equal the file's value.  (The wait is
# measured where a key module and an agent are at hand: scenarios-speed/.)
. /usr/share/eta-e2e/lib.sh

[ -f "$ETA_MODPROBE_CONF" ] || eta_skip "no $ETA_MODPROBE_CONF (run-vm.sh --modprobe-conf none)"
grep -q '^options ecryptfs ' "$ETA_MODPROBE_CONF" ||
    eta_fail "$ETA_MODPROBE_CONF has no 'options ecryptfs' line"
want_len=$(eta_modprobe_option ecryptfs_message_buf_len)
want_wait=$(eta_modprobe_option ecryptfs_message_wait_timeout)
[ -n "$want_len" ] || eta_fail "$ETA_MODPROBE_CONF sets no ecryptfs_message_buf_len"
[ -n "$want_wait" ] || eta_fail "$ETA_MODPROBE_CONF sets no ecryptfs_message_wait_timeout"
eta_log "the shipped file: ecryptfs_message_buf_len=$want_len ecryptfs_message_wait_timeout=$want_wait"

# Whatever sysfs shows (nothing, with Debian's 6.1) is the file's.
shown=0
for p in /sys/module/ecryptfs/parameters/*; do
    [ -f "$p" ] || continue
    name=${p##*/}
    want=$(eta_modprobe_option "$name")
    [ -n "$want" ] || continue
    got=$(cat "$p")
    [ "$got" = "$want" ] || eta_fail "/sys/module/ecryptfs/parameters/$name is $got; the modprobe file says $want"
    shown=$((shown + 1))
done
eta_log "$shown of the file's parameters shown in sysfs"

# No daemon holds /dev/ecryptfs for root here: pose as one.
got_len=$(eta_ecryptfs_buf_len) || eta_fail "could not open /dev/ecryptfs"
[ -n "$got_len" ] || { dmesg | tail -n 5; eta_fail "the kernel did not tell its message buffer length"; }
[ "$got_len" = "$want_len" ] ||
    eta_fail "the loaded module has ecryptfs_message_buf_len=$got_len; the modprobe file says $want_len"
eta_log "the loaded module's ecryptfs_message_buf_len is $got_len"
exit 0
