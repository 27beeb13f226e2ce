#!/bin/sh
# The guest reaches the host's private test bus through QEMU's guestfwd
# (tcp:10.0.2.100:6000 -> socat -> unix socket), as a real message-bus client
# (Hello, then a call to the bus driver), with both GDBus and libdbus.
. /usr/share/eta-e2e/lib.sh

[ "$ETA_NET" = 1 ] || eta_skip "no network (run-vm.sh without --bus-socket/--host-bus)"
[ -n "$ETA_BUS_ADDRESS" ] || eta_skip "no bus address given"
[ "$DBUS_SESSION_BUS_ADDRESS" = "$ETA_BUS_ADDRESS" ] ||
    eta_fail "DBUS_SESSION_BUS_ADDRESS not exported by /init"

t0=$(eta_now)
eta_check "gdbus GetId on $ETA_BUS_ADDRESS" \
    gdbus call --address "$ETA_BUS_ADDRESS" --dest org.freedesktop.DBus \
        --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.GetId
t1=$(eta_now)
id=$(sed -n "s/^('\([0-9a-f]*\)',)\$/\1/p" "$ETA_WORK/last.log")
[ -n "$id" ] || eta_fail "unexpected GetId reply: $(cat "$ETA_WORK/last.log")"
if [ -n "$ETA_BUS_ID" ] && [ "$id" != "$ETA_BUS_ID" ]; then
    eta_fail "bus id $id is not the host test bus ($ETA_BUS_ID)"
fi
eta_log "gdbus: bus id $id in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s"

# The session-bus default (what a key module in ecryptfsd would use).
eta_check "gdbus on the session bus" \
    gdbus call --session --dest org.freedesktop.DBus \
        --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.GetNameOwner \
        org.freedesktop.DBus

# ecryptfsd (where a key module runs) inherits the bus address from /init.
eta_start_ecryptfsd
tr '\0' '\n' < "/proc/$ETA_ECRYPTFSD_PID/environ" | grep -q -x -F "DBUS_SESSION_BUS_ADDRESS=$ETA_BUS_ADDRESS" ||
    eta_fail "ecryptfsd's environment lacks DBUS_SESSION_BUS_ADDRESS=$ETA_BUS_ADDRESS"
eta_stop_ecryptfsd

if command -v dbus-send > /dev/null; then
    # --bus= (a message bus, with Hello); --address= would be peer-to-peer.
    eta_check "dbus-send ListNames" \
        dbus-send --bus="$ETA_BUS_ADDRESS" --print-reply --dest=org.freedesktop.DBus \
            /org/freedesktop/DBus org.freedesktop.DBus.ListNames
    grep -q 'org.freedesktop.DBus' "$ETA_WORK/last.log" || eta_fail "ListNames reply lacks org.freedesktop.DBus"
fi

exit 0
