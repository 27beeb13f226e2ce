#!/bin/bash
# Checks the desktop-session data files: the XDG autostart entry, the AppStream
# metainfo, the systemd user unit and the D-Bus session service file, and that
# a call to the agent's bus name starts the agent through that service file.
#
# usage: tests/test-data-files.sh AGENT-BINARY DATA-BUILD-DIR SOFTHSM-MODULE
#   AGENT-BINARY    the built ecryptfs-token-agent
#   DATA-BUILD-DIR  the build tree's data/ (holds the configured .service files
#                   and the translated desktop entry and metainfo, as installed)
#   SOFTHSM-MODULE  SoftHSM2's libsofthsm2.so, the activated agent's provider
# Prints TAP-like ok / not ok lines; exits non-zero on any failure. A missing
# tool is a failure, not a skip.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 AGENT-BINARY DATA-BUILD-DIR SOFTHSM-MODULE" >&2
    exit 2
fi
agent=$(readlink -f "$1")
build_data=$2
softhsm=$3

app_id=org.ecryptfs.TokenAgent1
object_path=/org/ecryptfs/TokenAgent1

# The translated copies po/ writes are what is installed: validate those.
desktop=$build_data/$app_id.desktop
metainfo=$build_data/$app_id.metainfo.xml
dbus_service=$build_data/$app_id.service
unit=$build_data/ecryptfs-token-agent.service

tmp=$(mktemp -d /tmp/eta-data-files.XXXXXX)
daemon_pid=
agent_pid=

cleanup() {
    if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
        kill "$agent_pid" 2>/dev/null || true
    fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    # The agent is the daemon's child, not ours: wait for it to go.
    if [ -n "$agent_pid" ]; then
        for _ in $(seq 50); do
            kill -0 "$agent_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$agent_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

# --- the files exist ---------------------------------------------------------
for f in "$desktop" "$metainfo" "$dbus_service" "$unit" "$agent" \
         "$build_data/ecryptfs-token-ecryptfsd.service" "$build_data/ecryptfs-token-ecryptfsd.path"; do
    if [ -f "$f" ]; then ok "exists: $f"; else not_ok "exists: $f"; fi
done

# --- XDG autostart entry -----------------------------------------------------
if need desktop-file-validate "desktop-file-validate $app_id.desktop"; then
    if out=$(desktop-file-validate "$desktop" 2>&1) && [ -z "$out" ]; then
        ok "desktop-file-validate $app_id.desktop"
    else
        not_ok "desktop-file-validate $app_id.desktop" "$out"
    fi
fi
# Autostart-Phase makes systemd's autostart generator skip the entry, and the
# autostart copy must be an ordinary launch, not D-Bus activation.
for key in X-GNOME-Autostart-Phase DBusActivatable; do
    if grep -q "^$key=" "$desktop"; then
        not_ok "$app_id.desktop does not set $key"
    else
        ok "$app_id.desktop does not set $key"
    fi
done
if grep -qx 'Exec=ecryptfs-token-agent' "$desktop" && grep -qx 'NoDisplay=true' "$desktop"; then
    ok "$app_id.desktop runs ecryptfs-token-agent and is hidden from menus"
else
    not_ok "$app_id.desktop runs ecryptfs-token-agent and is hidden from menus"
fi

# --- AppStream metainfo ------------------------------------------------------
if need appstreamcli "appstreamcli validate $app_id.metainfo.xml"; then
    if out=$(appstreamcli validate --no-net "$metainfo" 2>&1); then
        ok "appstreamcli validate --no-net $app_id.metainfo.xml"
    else
        not_ok "appstreamcli validate --no-net $app_id.metainfo.xml" "$out"
    fi
fi

# --- D-Bus session service file ----------------------------------------------
if grep -qx "Name=$app_id" "$dbus_service"; then
    ok "$app_id.service names the bus name"
else
    not_ok "$app_id.service names the bus name" "$(cat "$dbus_service" 2>&1)"
fi
if grep -Eq '^Exec=/[^ ]*/ecryptfs-token-agent --gapplication-service$' "$dbus_service"; then
    ok "$app_id.service runs the agent binary by absolute path in service mode"
else
    not_ok "$app_id.service runs the agent binary by absolute path in service mode" \
        "$(cat "$dbus_service" 2>&1)"
fi
if grep -qx 'SystemdService=ecryptfs-token-agent.service' "$dbus_service"; then
    ok "$app_id.service hands over to ecryptfs-token-agent.service"
else
    not_ok "$app_id.service hands over to ecryptfs-token-agent.service"
fi
if grep -q '@' "$dbus_service" "$unit"; then
    not_ok "configured service files have no @VARIABLES@ left" "$(grep '@' "$dbus_service" "$unit")"
else
    ok "configured service files have no @VARIABLES@ left"
fi

# --- ecryptfsd with the session: its user service and path unit ---------------
ecryptfsd_service=$build_data/ecryptfs-token-ecryptfsd.service
ecryptfsd_path=$build_data/ecryptfs-token-ecryptfsd.path
if grep -qx 'ExecStart=/usr/bin/ecryptfsd -f' "$ecryptfsd_service" &&
   grep -qx 'KeyringMode=shared' "$ecryptfsd_service" &&
   grep -qx 'Restart=on-failure' "$ecryptfsd_service"; then
    ok "ecryptfs-token-ecryptfsd.service runs ecryptfsd -f, its keyring reaching the user's, restarted on failure"
else
    not_ok "ecryptfs-token-ecryptfsd.service runs ecryptfsd -f, its keyring reaching the user's, restarted on failure" \
        "$(cat "$ecryptfsd_service")"
fi
if grep -qx 'PathExists=/dev/ecryptfs' "$ecryptfsd_path" &&
   grep -qx 'Unit=ecryptfs-token-ecryptfsd.service' "$ecryptfsd_path" &&
   grep -qx 'WantedBy=default.target' "$ecryptfsd_path" &&
   grep -q '^ConditionPathExists=/.*/libecryptfs_key_mod_token_agent.so$' "$ecryptfsd_path"; then
    ok "ecryptfs-token-ecryptfsd.path starts it once /dev/ecryptfs exists, where the key module is installed"
else
    not_ok "ecryptfs-token-ecryptfsd.path starts it once /dev/ecryptfs exists, where the key module is installed" \
        "$(cat "$ecryptfsd_path")"
fi
if grep -q '@' "$ecryptfsd_service" "$ecryptfsd_path"; then
    not_ok "the ecryptfsd units have no @VARIABLES@ left" "$(grep '@' "$ecryptfsd_service" "$ecryptfsd_path")"
else
    ok "the ecryptfsd units have no @VARIABLES@ left"
fi
if need systemd-analyze "systemd-analyze --user verify ecryptfs-token-ecryptfsd.{service,path}"; then
    mkdir -p "$tmp/ecryptfsd-units" "$tmp/run"
    chmod 700 "$tmp/run"
    # --man=no: the pages Documentation= names are installed with the
    # package (install-check looks for them), not on this machine.
    cp "$ecryptfsd_service" "$ecryptfsd_path" "$tmp/ecryptfsd-units/"
    if out=$(XDG_RUNTIME_DIR=$tmp/run SYSTEMD_LOG_LEVEL=notice \
                timeout 60 systemd-analyze --user verify --man=no \
                "$tmp/ecryptfsd-units/ecryptfs-token-ecryptfsd.path" \
                "$tmp/ecryptfsd-units/ecryptfs-token-ecryptfsd.service" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze --user verify ecryptfs-token-ecryptfsd.{service,path}"
    else
        not_ok "systemd-analyze --user verify ecryptfs-token-ecryptfsd.{service,path}" "$out"
    fi
fi

# --- systemd user unit -------------------------------------------------------
if grep -qx "BusName=$app_id" "$unit" && grep -qx 'Type=dbus' "$unit"; then
    ok "ecryptfs-token-agent.service is Type=dbus with BusName=$app_id"
else
    not_ok "ecryptfs-token-agent.service is Type=dbus with BusName=$app_id"
fi
if need systemd-analyze "systemd-analyze --user verify ecryptfs-token-agent.service"; then
    # ExecStart names the installed path, which need not exist yet: verify a
    # copy whose ExecStart is the built agent. systemd-analyze warns about
    # unknown keys without failing, so any output counts as a failure.
    mkdir -p "$tmp/unit" "$tmp/run"
    chmod 700 "$tmp/run"
    sed -E "s#^ExecStart=[^ ]*/ecryptfs-token-agent #ExecStart=$agent #" \
        "$unit" >"$tmp/unit/ecryptfs-token-agent.service"
    if out=$(XDG_RUNTIME_DIR=$tmp/run SYSTEMD_LOG_LEVEL=notice \
                timeout 60 systemd-analyze --user verify \
                "$tmp/unit/ecryptfs-token-agent.service" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze --user verify ecryptfs-token-agent.service"
    else
        not_ok "systemd-analyze --user verify ecryptfs-token-agent.service" "$out"
    fi
fi

# --- a call to the bus name starts the agent ---------------------------------
activation() {
    need dbus-daemon "D-Bus activation starts the agent" || return 0
    need gdbus "D-Bus activation starts the agent" || return 0

    mkdir -p "$tmp/services" "$tmp/softhsm-tokens"
    sed -E "s#^Exec=.*#Exec=$agent --gapplication-service --provider $softhsm --terminal#" \
        "$dbus_service" >"$tmp/services/$app_id.service"
    # SoftHSM with an empty token directory of its own.
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$tmp/softhsm-tokens" >"$tmp/softhsm2.conf"
    cat >"$tmp/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/bus</listen>
  <servicedir>$tmp/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    local address=unix:path=$tmp/bus
    # Activated services inherit the daemon's environment: they must find this
    # bus as their session bus, and no display.
    (
        export DBUS_SESSION_BUS_ADDRESS=$address SOFTHSM2_CONF=$tmp/softhsm2.conf
        unset DISPLAY WAYLAND_DISPLAY
        exec dbus-daemon --config-file="$tmp/session.conf" --nofork --nopidfile \
            >"$tmp/dbus-daemon.log" 2>&1
    ) &
    daemon_pid=$!
    for _ in $(seq 100); do
        [ -S "$tmp/bus" ] && break
        sleep 0.1
    done
    if [ ! -S "$tmp/bus" ]; then
        not_ok "private session bus starts" "$(cat "$tmp/dbus-daemon.log")"
        return 0
    fi
    ok "private session bus starts"

    local out
    if out=$(gdbus call --address "$address" --dest org.freedesktop.DBus \
                --object-path /org/freedesktop/DBus \
                --method org.freedesktop.DBus.NameHasOwner "$app_id" 2>&1) \
            && [ "$out" = "(false,)" ]; then
        ok "$app_id has no owner before the call"
    else
        not_ok "$app_id has no owner before the call" "$out"
    fi

    if out=$(timeout 60 gdbus call --address "$address" --timeout 30 \
                --dest "$app_id" --object-path "$object_path" \
                --method "$app_id.ListTokens" 2>&1); then
        ok "ListTokens on $app_id succeeds through activation: $out"
    else
        not_ok "ListTokens on $app_id succeeds through activation" \
            "$out"$'\n'"$(cat "$tmp/dbus-daemon.log")"
        return 0
    fi

    local pid
    if pid=$(gdbus call --address "$address" --dest org.freedesktop.DBus \
                --object-path /org/freedesktop/DBus \
                --method org.freedesktop.DBus.GetConnectionUnixProcessID \
                "$app_id" 2>&1) \
            && pid=$(sed -E 's/^\(uint32 ([0-9]+),\)$/\1/' <<<"$pid") \
            && [[ $pid =~ ^[0-9]+$ ]]; then
        agent_pid=$pid
        local exe
        exe=$(readlink -f "/proc/$agent_pid/exe" 2>/dev/null || true)
        if [ "$exe" = "$agent" ] && kill -0 "$agent_pid" 2>/dev/null; then
            ok "the agent process ($agent_pid, $exe) owns $app_id"
        else
            not_ok "the agent process owns $app_id" \
                "owner pid $agent_pid runs '${exe:-nothing}', wanted $agent"
        fi
    else
        not_ok "the agent process owns $app_id" "$pid"
    fi
}
activation

if [ "$failures" -ne 0 ]; then
    echo "# $failures of $n checks failed"
    exit 1
fi
echo "# all $n checks passed"
