# Helpers for guest scenario scripts: ". /usr/share/eta-e2e/lib.sh".
#
# A scenario is a busybox sh script run by /init with stdin /dev/null and
# these in its environment:
#   ETA_SCENARIO   its name           ETA_WORK   an empty private directory
#   ETA_RESULT     where eta_fail/eta_skip leave the reason
#   ETA_NET        1 when the guest has a network (eth0, 10.0.2.15/24)
#   ETA_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS   the host test bus, when given
#   ETA_BUS_ID     the host bus's id (org.freedesktop.DBus.GetId), when known
#   ETA_KEYMOD_DIR the key module directory
# Exit 0 = PASS, 77 = SKIP, anything else = FAIL (reason from eta_fail, else
# the exit status).  /init cleans up after each scenario: unmounts eCryptfs,
# kills leftover processes, clears root's user keyring.

# /init exports ETA_KEYMOD_DIR; a script started otherwise reads it where
# build-initramfs.sh wrote it.
# shellcheck source=/dev/null
[ -n "${ETA_KEYMOD_DIR:-}" ] || . /usr/share/eta-e2e/paths
ETA_ECRYPTFS_MAGIC=3c81b7f5

eta_log() { echo "[$ETA_SCENARIO] $*"; }

eta_fail() {
    echo "$*" > "$ETA_RESULT"
    echo "[$ETA_SCENARIO] FAIL: $*"
    exit 1
}

eta_skip() {
    echo "$*" > "$ETA_RESULT"
    exit 77
}

# Print the last lines of a log file, indented, if it has any.
eta_show() {
    [ -s "$1" ] || return 0
    echo "[$ETA_SCENARIO] --- $1 ---"
    tail -n "${2:-20}" "$1" | sed 's/^/    /'
}

# eta_check DESCRIPTION CMD...: run CMD, output to $ETA_WORK/last.log; fail
# with DESCRIPTION and the output when it fails.
eta_check() {
    _d=$1; shift
    if ! "$@" > "$ETA_WORK/last.log" 2>&1; then
        eta_show "$ETA_WORK/last.log"
        eta_fail "$_d: $(tail -n 1 "$ETA_WORK/last.log")"
    fi
}

# Monotonic seconds (float) since boot.
eta_now() { cut -d' ' -f1 /proc/uptime; }

# eta_start_ecryptfsd [ARGS...]: ecryptfsd -f in the background as the
# current user, stderr in $ETA_WORK/ecryptfsd.log; returns once the daemon
# holds /dev/ecryptfs open (it has loaded the key modules by then).
# Sets ETA_ECRYPTFSD_PID.  The environment (DBUS_SESSION_BUS_ADDRESS...) is
# inherited.
eta_start_ecryptfsd() {
    ecryptfsd -f "$@" < /dev/null > "$ETA_WORK/ecryptfsd.log" 2>&1 &
    ETA_ECRYPTFSD_PID=$!
    echo "$ETA_ECRYPTFSD_PID" > "$ETA_WORK/ecryptfsd.pid"
    _i=0
    while [ $_i -lt 100 ]; do
        if ! kill -0 "$ETA_ECRYPTFSD_PID" 2>/dev/null; then
            eta_show "$ETA_WORK/ecryptfsd.log"
            eta_fail "ecryptfsd exited at start"
        fi
        for _fd in /proc/$ETA_ECRYPTFSD_PID/fd/*; do
            [ "$(readlink "$_fd" 2>/dev/null)" = /dev/ecryptfs ] && return 0
        done
        usleep 50000
        _i=$((_i + 1))
    done
    eta_show "$ETA_WORK/ecryptfsd.log"
    eta_fail "ecryptfsd did not open /dev/ecryptfs within 5 s"
}

eta_ecryptfsd_alive() {
    [ -n "$ETA_ECRYPTFSD_PID" ] && kill -0 "$ETA_ECRYPTFSD_PID" 2>/dev/null &&
        ! grep -q '^State:.*Z' "/proc/$ETA_ECRYPTFSD_PID/status" 2>/dev/null
}

# Stop the daemon (SIGTERM) and wait for it; prints its exit status.
eta_stop_ecryptfsd() {
    [ -n "$ETA_ECRYPTFSD_PID" ] || return 0
    kill "$ETA_ECRYPTFSD_PID" 2>/dev/null
    wait "$ETA_ECRYPTFSD_PID"
    _rc=$?
    ETA_ECRYPTFSD_PID=
    return $_rc
}

# eta_mount_ecryptfs LOWER UPPER OPTIONS: mount through mount.ecryptfs with
# stdin /dev/null (nothing may prompt); output in $ETA_WORK/mount.log.
eta_mount_ecryptfs() {
    mkdir -p "$1" "$2"
    if ! mount -t ecryptfs "$1" "$2" -o "$3" < /dev/null > "$ETA_WORK/mount.log" 2>&1; then
        eta_show "$ETA_WORK/mount.log"
        eta_show "$ETA_WORK/ecryptfsd.log"
        dmesg | tail -n 5 | sed 's/^/    dmesg: /'
        eta_fail "mount -t ecryptfs $1 $2 failed: $(tail -n 1 "$ETA_WORK/mount.log")"
    fi
    grep -q " $2 ecryptfs " /proc/mounts || eta_fail "$2 not in /proc/mounts after mount"
}

eta_umount() {
    umount "$1" > "$ETA_WORK/umount.log" 2>&1 ||
        eta_fail "umount $1 failed: $(tail -n 1 "$ETA_WORK/umount.log")"
    ! grep -q " $1 ecryptfs " /proc/mounts || eta_fail "$1 still mounted"
}

# The ecryptfs_sig=... values of the mount on UPPER, one per line.
eta_mount_sigs() {
    awk -v m="$1" '$2 == m && $3 == "ecryptfs" { print $4 }' /proc/mounts |
        tr ',' '\n' | sed -n 's/^ecryptfs_sig=//p'
}

# eta_is_ecryptfs_file FILE [PLAINTEXT_SIZE]: the lower file carries the
# eCryptfs header: 8-byte big-endian plaintext size, then the marker
# (4 random bytes X, then X xor 0x3c81b7f5).
eta_is_ecryptfs_file() {
    # shellcheck disable=SC2046 # one word per byte
    set -- "$1" "${2:-}" $(od -An -v -tx1 -N16 "$1")
    [ $# -eq 18 ] || return 1
    _size=$((0x$3$4$5$6$7$8$9${10}))
    _m1=$((0x${11}${12}${13}${14}))
    _m2=$((0x${15}${16}${17}${18}))
    [ $((_m1 ^ 0x$ETA_ECRYPTFS_MAGIC)) -eq "$_m2" ] || return 1
    [ -z "$2" ] || [ "$_size" -eq "$2" ]
}

# eta_file_size FILE
eta_file_size() { wc -c < "$1" | tr -d ' '; }

# ---- The ecryptfs module's settings ----
ETA_MODPROBE_CONF=/etc/modprobe.d/ecryptfs-token-agent.conf

# eta_modprobe_option NAME [DEFAULT]: the value the shipped modprobe file
# ($ETA_MODPROBE_CONF, "options ecryptfs NAME=VALUE ...") gives NAME, else
# DEFAULT.
eta_modprobe_option() {
    _v=
    [ -r "$ETA_MODPROBE_CONF" ] &&
        _v=$(sed -e 's/#.*//' "$ETA_MODPROBE_CONF" |
             awk -v n="$1" '$1 == "options" && $2 == "ecryptfs" {
                 for (i = 3; i <= NF; i++) if (index($i, n "=") == 1) v = substr($i, length(n) + 2)
             } END { print v }')
    echo "${_v:-${2:-}}"
}

# The kernel's ecryptfs_message_wait_timeout as the shipped file sets it
# (the kernel's default, 3 s, without one).
eta_wait_timeout() { eta_modprobe_option ecryptfs_message_wait_timeout 3; }

# eta_ecryptfs_buf_len: the ecryptfs_message_buf_len the loaded module uses
# (the module hides its parameters from sysfs). Posing as the daemon of the
# current user, it writes one response for a context index no module can
# have; the kernel refuses it with "maximum allowable is [buf_len - 1]".
# Needs /dev/ecryptfs free for this user: no ecryptfsd of ours running.
eta_ecryptfs_buf_len() {
    _mark=$(dmesg | wc -l)
    exec 3<> /dev/ecryptfs || return 1
    # RESPONSE (103), seq 1, length 8, struct ecryptfs_message
    # { index 0x7fffffff, data_len 0 } (host order).
    printf '\147\000\000\000\001\010\377\377\377\177\000\000\000\000' >&3 2> /dev/null
    exec 3>&-
    dmesg | tail -n +$((_mark + 1)) |
        sed -n 's/.*at index \[2147483647\]; maximum allowable is \[\([0-9]*\)\].*/\1/p' |
        head -n 1 | awk '$1 != "" { print $1 + 1 }'
}
