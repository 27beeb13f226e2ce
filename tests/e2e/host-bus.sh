#!/bin/bash
# A private, throwaway D-Bus message bus on the host for the VM test.
#
# usage: host-bus.sh start [DIR]   start a bus; prints shell-sourceable lines:
#            ETA_BUS_DIR=...      private directory (0700), created if not given
#            ETA_BUS_SOCKET=...   the unix socket (DIR/bus)
#            ETA_BUS_ADDRESS=...  its D-Bus address
#            ETA_BUS_PID=...      the dbus-daemon's pid
#            ETA_BUS_ID=...       the bus id (org.freedesktop.DBus.GetId)
#        host-bus.sh stop DIR      stop that bus and remove DIR
#
# TEST-ONLY settings: the bus listens only on a unix socket in a private
# directory, but accepts ANONYMOUS authentication (<allow_anonymous/>) because
# the guest reaches it over TCP (QEMU guestfwd + socat), where GDBus will not
# use EXTERNAL.  Never use this configuration outside tests.

set -euo pipefail

die() { echo "host-bus: $*" >&2; exit 1; }

cmd=${1:-}
case "$cmd" in
start)
    command -v dbus-daemon >/dev/null || die "dbus-daemon not found (package dbus-daemon)"
    if [ -n "${2:-}" ]; then
        dir=$2
        mkdir -p "$dir"
    else
        # Short path: unix socket paths are limited to 107 bytes.
        dir=$(mktemp -d /tmp/eta-bus.XXXXXX)
    fi
    dir=$(cd "$dir" && pwd)
    chmod 0700 "$dir"
    [ ${#dir} -lt 95 ] || die "$dir is too long for a unix socket path"
    rm -f "$dir/bus" "$dir/pid" "$dir/address"
    cat > "$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- eCryptfs token agent VM test bus. TEST ONLY: anonymous clients. -->
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <auth>ANONYMOUS</auth>
  <allow_anonymous/>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    # --fork returns once the bus listens; address and pid go to files.
    dbus-daemon --config-file="$dir/bus.conf" --fork --nopidfile \
        --print-address=3 --print-pid=4 3>"$dir/address" 4>"$dir/pid" </dev/null >/dev/null ||
        die "dbus-daemon failed to start"
    pid=$(head -n1 "$dir/pid")
    address=$(head -n1 "$dir/address")
    [ -n "$pid" ] && [ -n "$address" ] && [ -S "$dir/bus" ] || die "dbus-daemon gave no address/pid"
    id=
    if command -v dbus-send >/dev/null; then
        id=$(dbus-send --bus="$address" --print-reply=literal --dest=org.freedesktop.DBus \
                /org/freedesktop/DBus org.freedesktop.DBus.GetId 2>/dev/null | tr -d ' ') || true
    fi
    printf 'ETA_BUS_DIR=%s\nETA_BUS_SOCKET=%s\nETA_BUS_ADDRESS=%s\nETA_BUS_PID=%s\nETA_BUS_ID=%s\n' \
        "$dir" "$dir/bus" "$address" "$pid" "$id"
    ;;
stop)
    dir=${2:-}
    [ -n "$dir" ] && [ -d "$dir" ] || die "usage: host-bus.sh stop DIR"
    if [ -f "$dir/pid" ]; then
        pid=$(head -n1 "$dir/pid")
        # Only our daemon: check it is a dbus-daemon started with our config.
        if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
                grep -q -- "--config-file=$dir/bus.conf"; then
            kill "$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    ;;
*)
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
