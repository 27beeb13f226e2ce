#!/bin/bash
# Run the eCryptfs end-to-end scenarios in a throwaway VM on Debian's real
# kernel (QEMU microvm, TCG unless the CPU has vmx/svm).
#
# usage: run-vm.sh [options]
#  kernel and initramfs
#   --cache DIR            kernel cache for fetch-kernel.sh (default:
#                          $ETA_VM_CACHE or ~/.cache/ecryptfs-token-agent-vm)
#   --kernel-env FILE      use this kernel.env (KVER/VMLINUX/MODROOT), no fetch
#   --initramfs FILE       boot this prebuilt initramfs (no build; the
#                          build options below are then ignored)
#   --keymod PATH          extra key module in the guest's module directory
#   --extra SRC:GUESTPATH  extra file or directory in the guest
#   --bin PATH             extra host program (same path in the guest)
#   --scenarios DIR        more scenario scripts (repeatable)
#   --scenario FILE        one more scenario script (repeatable)
#   --no-default-scenarios leave out tests/e2e/scenarios/
#   --modprobe-conf FILE   the guest's /etc/modprobe.d/ecryptfs-token-agent.conf,
#                          applied when /init loads ecryptfs (default: the
#                          shipped data/ecryptfs-token-agent-modprobe.conf;
#                          "none": no file, the kernel's defaults)
#   --only NAME[,NAME]     run only these scenarios
#  bus
#   --bus-socket PATH      forward guest tcp:10.0.2.100:6000 to this host unix
#                          socket (a D-Bus bus); the guest gets networking and
#                          DBUS_SESSION_BUS_ADDRESS=tcp:host=10.0.2.100,port=6000
#   --host-bus             start a private test bus (host-bus.sh) for the run
#                          and use it as --bus-socket
#   --host-cmd CMD         run CMD (sh -c) on the host during the run, with
#                          DBUS_SESSION_BUS_ADDRESS set to the host bus; it
#                          must be ready when it forks into the background or
#                          print nothing; killed (its process group) at the end
#   --net                  networking without a bus
#  guest
#   --wait-timeout N       ecryptfs_message_wait_timeout=N for the ecryptfs module
#                          (on top of the modprobe file's options)
#   --scenario-timeout S   per-scenario limit in the guest (default 60)
#   --append ARGS          more kernel command line
#   --memory MB            guest RAM (default 384)
#   --debug                kernel messages on the console, init runs with set -x
#  host
#   --timeout S            host-side limit for the whole VM (default 150)
#   --accel tcg|kvm        default: kvm only if /proc/cpuinfo shows vmx/svm
#   --tsc-khz N            host TSC in kHz (default: from dmesg or /proc/cpuinfo)
#   --workdir DIR          keep initramfs and console log here (kept afterwards)
#   --log FILE             console log (default WORKDIR/console.log)
#   --verbose              stream the console while the VM runs
#   --no-skip              a skipped scenario counts as a failure
#
# Exit status: 0 all scenarios passed (or skipped), 1 a scenario failed or the
# markers are missing, 2 the run could not be set up (no qemu, no kernel...).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
t_start=$(date +%s.%N)

cache=${ETA_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecryptfs-token-agent-vm}
kernel_env=
initramfs=
build_args=()
modprobe_conf=$here/../../data/ecryptfs-token-agent-modprobe.conf
only=
bus_socket=
host_bus=0
host_cmd=
net=0
wait_timeout=
scenario_timeout=60
append=
memory=384
debug=0
timeout=150
accel=
tsc_khz=${ETA_TSC_KHZ:-}
workdir=
log=
verbose=0
no_skip=0

die() { echo "run-vm: $*" >&2; exit 2; }
say() { echo "run-vm: $*" >&2; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --cache) cache=$2; shift 2 ;;
        --kernel-env) kernel_env=$2; shift 2 ;;
        --initramfs) initramfs=$2; shift 2 ;;
        --keymod|--extra|--bin|--scenarios|--scenario) build_args+=("$1" "$2"); shift 2 ;;
        --no-default-scenarios) build_args+=("$1"); shift ;;
        --modprobe-conf) modprobe_conf=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --bus-socket) bus_socket=$2; shift 2 ;;
        --host-bus) host_bus=1; shift ;;
        --host-cmd) host_cmd=$2; shift 2 ;;
        --net) net=1; shift ;;
        --wait-timeout) wait_timeout=$2; shift 2 ;;
        --scenario-timeout) scenario_timeout=$2; shift 2 ;;
        --append) append="$append $2"; shift 2 ;;
        --memory) memory=$2; shift 2 ;;
        --debug) debug=1; shift ;;
        --timeout) timeout=$2; shift 2 ;;
        --accel) accel=$2; shift 2 ;;
        --tsc-khz) tsc_khz=$2; shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --verbose|-v) verbose=1; shift ;;
        --no-skip) no_skip=1; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -z "$bus_socket" ] || [ "$host_bus" = 0 ] || die "--bus-socket and --host-bus exclude each other"
[ -z "$host_cmd" ] || [ -n "$bus_socket" ] || [ "$host_bus" = 1 ] || die "--host-cmd needs a bus"

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"

# --- work directory and cleanup ----------------------------------------------
keep_workdir=1
if [ -z "$workdir" ]; then
    workdir=$(mktemp -d "${TMPDIR:-/tmp}/eta-vm.XXXXXX")
    keep_workdir=0
fi
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
log=${log:-$workdir/console.log}
bus_dir=
host_cmd_pid=
tail_pid=
qemu_pid=
ok=0
cleanup() {
    set +e
    if [ -n "$qemu_pid" ]; then
        kill -TERM "$qemu_pid" 2>/dev/null
        wait "$qemu_pid" 2>/dev/null
    fi
    [ -z "$tail_pid" ] || kill "$tail_pid" 2>/dev/null
    if [ -n "$host_cmd_pid" ]; then
        kill -TERM -- "-$host_cmd_pid" 2>/dev/null
        sleep 0.2
        kill -KILL -- "-$host_cmd_pid" 2>/dev/null
    fi
    [ -z "$bus_dir" ] || "$here/host-bus.sh" stop "$bus_dir"
    if [ "$keep_workdir" = 0 ]; then
        if [ "$ok" = 1 ]; then rm -rf "$workdir"; else say "kept $workdir"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- kernel --------------------------------------------------------------------
t_prep=$(date +%s.%N)
if [ -z "$kernel_env" ]; then
    "$here/fetch-kernel.sh" --quiet "$cache" > "$workdir/kernel.env" ||
        die "could not get the kernel (fetch-kernel.sh $cache)"
    kernel_env=$workdir/kernel.env
fi
[ -f "$kernel_env" ] || die "$kernel_env not found"
kver=$(sed -n 's/^KVER=//p' "$kernel_env")
vmlinux=$(sed -n 's/^VMLINUX=//p' "$kernel_env")
[ -f "$vmlinux" ] || die "vmlinux $vmlinux missing (from $kernel_env)"

# --- initramfs -----------------------------------------------------------------
manifest=
if [ -z "$initramfs" ]; then
    initramfs=$workdir/initramfs.cpio
    if [ "$modprobe_conf" != none ]; then
        [ -f "$modprobe_conf" ] || die "modprobe file $modprobe_conf not found"
        build_args+=(--modprobe-conf "$modprobe_conf")
    fi
    "$here/build-initramfs.sh" --quiet --kernel-env "$kernel_env" --output "$initramfs" \
        "${build_args[@]}" || die "build-initramfs.sh failed"
    manifest=$initramfs.scenarios
else
    [ ${#build_args[@]} -eq 0 ] || say "warning: --initramfs given; build options ignored"
    [ -f "$initramfs.scenarios" ] && manifest=$initramfs.scenarios
fi
[ -f "$initramfs" ] || die "initramfs $initramfs missing"
prep_time=$(elapsed "$t_prep")

# --- bus -----------------------------------------------------------------------
bus_id=
if [ "$host_bus" = 1 ]; then
    command -v dbus-daemon >/dev/null || die "dbus-daemon not found"
    "$here/host-bus.sh" start > "$workdir/bus.env" || die "host-bus.sh start failed"
    bus_dir=$(sed -n 's/^ETA_BUS_DIR=//p' "$workdir/bus.env")
    bus_socket=$(sed -n 's/^ETA_BUS_SOCKET=//p' "$workdir/bus.env")
    bus_id=$(sed -n 's/^ETA_BUS_ID=//p' "$workdir/bus.env")
fi
if [ -n "$bus_socket" ]; then
    [ -S "$bus_socket" ] || die "$bus_socket is not a socket"
    command -v socat >/dev/null || die "socat not found (apt-get install socat)"
    case "$bus_socket" in
        *[[:space:]\'\"\\\$\`]*) die "bus socket path must not contain blanks or quotes: $bus_socket" ;;
    esac
    case "$bus_socket" in /*) ;; *) bus_socket=$PWD/$bus_socket ;; esac
    if [ -z "$bus_id" ] && command -v dbus-send >/dev/null; then
        bus_id=$(dbus-send --bus="unix:path=$bus_socket" --print-reply=literal \
                    --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                    org.freedesktop.DBus.GetId 2>/dev/null | tr -d ' ') || bus_id=
    fi
    net=1
fi
if [ -n "$host_cmd" ]; then
    # Own process group, so that everything it starts goes with it.
    DBUS_SESSION_BUS_ADDRESS="unix:path=$bus_socket" ETA_BUS_SOCKET="$bus_socket" \
        setsid sh -c "$host_cmd" > "$workdir/host-cmd.log" 2>&1 < /dev/null &
    host_cmd_pid=$!
fi

# --- QEMU ----------------------------------------------------------------------
if [ -z "$accel" ]; then
    accel=tcg
    if grep -q -w -E 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then accel=kvm; fi
fi
case "$accel" in
    tcg) accel_args=(-accel tcg -cpu max) ;;
    kvm) accel_args=(-accel kvm -cpu host) ;;
    *) die "--accel must be tcg or kvm" ;;
esac

if [ -z "$tsc_khz" ]; then
    # microvm needs ACPI for its virtio-mmio devices; under TCG the kernel
    # then often hangs calibrating its delay loop unless told the TSC rate.
    # The guest TSC ticks at the host's rate.
    kmsg=$(dmesg 2>/dev/null || true)
    mhz=$(sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' <<<"$kmsg" | tail -n1)
    [ -n "$mhz" ] || mhz=$(sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' <<<"$kmsg" | tail -n1)
    [ -n "$mhz" ] || mhz=$(awk -F': *' '/^cpu MHz/ { print $2; exit }' /proc/cpuinfo)
    [ -n "$mhz" ] || die "cannot tell the host TSC rate; pass --tsc-khz"
    tsc_khz=$(awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }')
fi

cmdline="console=ttyS0 panic=-1 tsc_early_khz=$tsc_khz eta_timeout=$scenario_timeout"
[ "$debug" = 1 ] && cmdline="$cmdline eta_debug=1 loglevel=7" || cmdline="$cmdline quiet loglevel=3"
[ "$net" = 1 ] && cmdline="$cmdline eta_net=1"
if [ -n "$bus_socket" ]; then
    cmdline="$cmdline eta_bus=tcp:host=10.0.2.100,port=6000"
    [ -z "$bus_id" ] || cmdline="$cmdline eta_bus_id=$bus_id"
fi
[ -z "$wait_timeout" ] || cmdline="$cmdline ecryptfs.ecryptfs_message_wait_timeout=$wait_timeout"
[ -z "$only" ] || cmdline="$cmdline eta_only=$only"
cmdline="$cmdline$append"

# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
qemu_args=(-M microvm,acpi=on -nodefaults -no-user-config -no-reboot
           "${accel_args[@]}" -smp 1 -m "$memory"
           -display none -monitor none -serial stdio
           -kernel "$vmlinux" -initrd "$initramfs" -append "$cmdline")
if [ "$net" = 1 ]; then
    netdev="user,id=n0,restrict=on"
    if [ -n "$bus_socket" ]; then
        # QEMU option syntax: a literal comma is written twice.
        netdev="$netdev,guestfwd=tcp:10.0.2.100:6000-cmd:socat STDIO UNIX-CONNECT:${bus_socket//,/,,}"
    fi
    qemu_args+=(-netdev "$netdev" -device "virtio-net-device,netdev=n0")
fi
printf '%q ' "$qemu" "${qemu_args[@]}" > "$workdir/qemu.cmd"
echo >> "$workdir/qemu.cmd"

say "kernel $kver, $accel, $(du -h "$initramfs" | cut -f1) initramfs${bus_socket:+, bus $bus_socket}"
: > "$log"
t_vm=$(date +%s.%N)
if [ "$verbose" = 1 ]; then
    tail -n +1 -f "$log" &
    tail_pid=$!
fi
# In the background so that a signal to this script (ctest's timeout) runs
# the cleanup at once; timeout(1) passes it on to QEMU.
timeout -k 5 "$timeout" "$qemu" "${qemu_args[@]}" < /dev/null >> "$log" 2> "$workdir/qemu.stderr" &
qemu_pid=$!
set +e
wait "$qemu_pid"
qrc=$?
set -e
qemu_pid=
vm_time=$(elapsed "$t_vm")
if [ -n "$tail_pid" ]; then
    sleep 0.2
    kill "$tail_pid" 2>/dev/null || true
    wait "$tail_pid" 2>/dev/null || true
    tail_pid=
fi

# --- results -------------------------------------------------------------------
# Markers sit at the start of a line; the serial console adds \r.
markers=$(tr -d '\r' < "$log" |
          grep -a -o -E 'ETA-E2E (READY|BEGIN|TIME|PASS|SKIP|FAIL|FATAL|DONE)( .*)?$' || true)
failed=0
declare -A result reason duration
order=()
while IFS= read -r line; do
    [ -n "$line" ] || continue
    read -r _ kind name rest <<<"$line"
    case "$kind" in
        BEGIN) order+=("$name"); result[$name]=RUNNING ;;
        TIME) duration[$name]=$rest ;;
        PASS) result[$name]=PASS ;;
        SKIP|FAIL)
            name=${name%:}
            result[$name]=$kind
            reason[$name]=$rest
            ;;
    esac
done <<<"$markers"

ready=$(grep -m1 '^ETA-E2E READY' <<<"$markers" || true)
done_line=$(grep -m1 '^ETA-E2E DONE' <<<"$markers" || true)
fatal=$(grep -m1 '^ETA-E2E FATAL' <<<"$markers" || true)
boot=
[ -z "$ready" ] || boot=$(awk '{ printf "%.1f", $4 }' <<<"$ready")

echo "e2e: kernel $kver, accel $accel, guest ready at ${boot:-?} s uptime"
npass=0 nfail=0 nskip=0
for name in "${order[@]}"; do
    r=${result[$name]}
    d=${duration[$name]:-?}
    case "$r" in
        PASS) npass=$((npass + 1)); printf '  PASS  %-32s %6s s\n' "$name" "$d" ;;
        SKIP) nskip=$((nskip + 1)); printf '  SKIP  %-32s %6s s  %s\n' "$name" "$d" "${reason[$name]}"
              [ "$no_skip" = 0 ] || failed=1 ;;
        FAIL) nfail=$((nfail + 1)); failed=1
              printf '  FAIL  %-32s %6s s  %s\n' "$name" "$d" "${reason[$name]}" ;;
        *) nfail=$((nfail + 1)); failed=1
           printf '  FAIL  %-32s %6s    no result (guest died or hung)\n' "$name" "" ;;
    esac
done
# Every scenario put in the initramfs must have reported.
if [ -n "$manifest" ] && [ -f "$manifest" ]; then
    while IFS= read -r name; do
        [ -n "$name" ] || continue
        if [ -n "$only" ]; then
            case ",$only," in *",$name,"*) ;; *) continue ;; esac
        fi
        if [ -z "${result[$name]:-}" ]; then
            printf '  FAIL  %-32s %6s    never started\n' "$name" ""
            nfail=$((nfail + 1)); failed=1
        fi
    done < "$manifest"
fi
if [ -n "$fatal" ]; then
    echo "e2e: guest setup failed: ${fatal#ETA-E2E FATAL }"; failed=1
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "e2e: VM killed after the ${timeout}s host timeout"; failed=1
elif [ "$qrc" != 0 ]; then
    echo "e2e: qemu exited with status $qrc: $(tail -n 3 "$workdir/qemu.stderr" | tr '\n' ' ')"; failed=1
fi
if [ -z "$done_line" ]; then
    echo "e2e: no 'ETA-E2E DONE' marker: the guest did not finish"; failed=1
fi
if [ -z "$ready" ] && [ "$debug" = 0 ]; then
    echo "e2e: the guest never got ready; rerun with --debug for the kernel's boot messages"
fi
if [ ${#order[@]} -eq 0 ] && [ -z "$fatal" ]; then
    echo "e2e: no scenario markers at all"; failed=1
fi
echo "e2e: $npass passed, $nfail failed, $nskip skipped; prepare ${prep_time} s, VM ${vm_time} s, total $(elapsed "$t_start") s"
[ "$keep_workdir" = 0 ] || echo "e2e: console log $log"

if [ "$failed" = 1 ]; then
    if [ "$verbose" = 0 ]; then
        echo "e2e: --- console (last 80 lines of $log) ---"
        tr -d '\r' < "$log" | tail -n 80 | sed 's/^/  | /'
    fi
    [ ! -s "$workdir/qemu.stderr" ] || { echo "e2e: --- qemu stderr ---"; sed 's/^/  | /' "$workdir/qemu.stderr"; }
    [ -z "$host_cmd" ] || { echo "e2e: --- host command log ---"; tail -n 40 "$workdir/host-cmd.log" | sed 's/^/  | /'; }
    exit 1
fi
ok=1
exit 0
