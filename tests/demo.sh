#!/bin/bash
# A guided demo of the whole unwrap path, on a throwaway SoftHSM2 token:
#   ecryptfsd (real, driven by the harness as the kernel would) -> our key
#   module -> D-Bus -> ecryptfs-token-agent -> PIN prompt on this terminal ->
#   RSA decrypt on the token -> the file key comes back.
# When QEMU can run, the same path starts in Debian's real kernel instead: a
# VM mounts an eCryptfs directory with key=token-agent:fingerprint=..., writes
# a file, remounts and reads it back (tests/e2e/run-demo.py).
#
# usage (as root, on Debian 12, in a terminal): bash tests/demo.sh
# You will be asked for the demo token's PIN; the script prints it first.
# Everything it creates (token, bus, agent, keys, temp files) is removed at
# exit. Builds into build-demo/ in the repository.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-demo"
bus_name=org.ecryptfs.TokenAgent1

step=0
say() { step=$((step + 1)); printf '\n\033[1m==> %d. %s\033[0m\n' "$step" "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\n\033[1;31mdemo: %s\033[0m\n' "$*" >&2; exit 1; }

if [ ! -t 0 ]; then
    echo "demo: this demo needs a terminal: the agent asks for the token's PIN on it." >&2
    echo "demo: run it from an interactive shell: bash tests/demo.sh" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "demo: run as root (it installs packages and runs ecryptfsd in a private mount namespace)." >&2
    exit 2
fi

tmp=
bus_pid=
agent_pid=
sig=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
        kill "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
    if [ -n "$bus_pid" ]; then
        kill "$bus_pid" 2>/dev/null || true
    fi
    if [ -n "$sig" ]; then
        keyctl purge user "$sig" >/dev/null 2>&1 || true
    fi
    if [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
    stty echo 2>/dev/null || true   # in case the PIN prompt was interrupted
    if [ "$status" -eq 0 ]; then
        printf '\nDemo finished; the token, the agent, its bus and the key were removed.\n'
    else
        printf '\nDemo stopped (status %d); everything it started was removed.\n' "$status" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Installing the Debian packages the project needs (quiet unless it fails)"
bash "$repo/tests/install-deps.sh"
# SoftHSM2's and eCryptfs' modules live in this system's multiarch directory.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
softhsm=/usr/lib/$multiarch/softhsm/libsofthsm2.so
ecryptfs_mod_dir=/usr/lib/$multiarch/ecryptfs
passphrase_mod=$ecryptfs_mod_dir/libecryptfs_key_mod_passphrase.so

tmp=$(mktemp -d /tmp/eta-demo.XXXXXX)
chmod 755 "$tmp"

say "Building the agent, the key module and the ecryptfsd harness into build-demo/ (about a minute)"
if ! { cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON &&
       cmake --build "$build" -j"$(nproc)" --target \
           ecryptfs-token-agent ecryptfs-token eta_keymod eta-kernel-player eta-ecryptfsd-shim
     } >"$tmp/build.log" 2>&1; then
    tail -n 60 "$tmp/build.log" >&2
    die "the build failed (last lines above)"
fi
agent="$build/agent/ecryptfs-token-agent"
cli="$build/agent/ecryptfs-token"
keymod="$build/keymod/libecryptfs_key_mod_token_agent.so"
player="$build/tests/harness/eta-kernel-player"
for f in "$agent" "$cli" "$keymod" "$player"; do
    [ -e "$f" ] || die "the build did not produce $f"
done
note "built: $(basename "$agent"), $(basename "$cli"), $(basename "$keymod"), $(basename "$player")"

say "Making a demo token in SoftHSM2 (software PKCS#11 token) with one RSA-2048 key"
pin=$(printf '%06d' $(( (RANDOM * 32768 + RANDOM) % 1000000 )))
so_pin=$(printf '%08d' $(( (RANDOM * 32768 + RANDOM) % 100000000 )))
token_out=$(ETA_SOFTHSM_MODULE=$softhsm "$repo/tests/fixtures/make-token.sh" \
            "$tmp/token" "Demo Token" "$pin" "$so_pin" "Demo key:2048:01") ||
    die "make-token.sh failed"
read -r _ fingerprint <<<"$token_out"
[ -n "${fingerprint:-}" ] || die "make-token.sh printed no fingerprint: $token_out"
export SOFTHSM2_CONF="$tmp/token/softhsm2.conf"
note "token \"Demo Token\", key \"Demo key\", fingerprint $fingerprint"
printf '\n'
printf '    \033[1;7m                                             \033[0m\n'
printf '    \033[1;7m   The demo token'"'"'s PIN is:   %s         \033[0m\n' "$pin"
printf '    \033[1;7m   Type it when asked "PIN for Demo Token".  \033[0m\n'
printf '    \033[1;7m                                             \033[0m\n'

# The real-kernel demo when QEMU can run: a VM with Debian's kernel mounts an
# eCryptfs directory with the key on the token (tests/e2e/run-demo.py).
vm_kernel_env=
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    say "Fetching Debian's kernel into build-demo/vm-cache for a real-kernel demo (once; a few minutes)"
    note "QEMU is here, so the demo boots Debian's own kernel (with eCryptfs) in a throwaway VM."
    if "$repo/tests/e2e/fetch-kernel.sh" --quiet "$build/vm-cache" >"$tmp/fetch-kernel.log" 2>&1 &&
            [ -f "$build/vm-cache/kernel.env" ]; then
        vm_kernel_env="$build/vm-cache/kernel.env"
        note "kernel: $(sed -n 's/^KVER=//p' "$vm_kernel_env")"
    else
        tail -n 5 "$tmp/fetch-kernel.log" | sed 's/^/    /'
        note "The kernel could not be fetched: falling back to the ecryptfsd round trip."
    fi
else
    say "qemu-system-x86_64 not found: the demo uses the ecryptfsd round trip instead of a VM"
fi
if [ -n "$vm_kernel_env" ]; then
    say "Real-kernel demo: the agent on a private test bus, a VM whose ecryptfsd reaches it over TCP"
    note "In the VM: mount an eCryptfs directory with key=token-agent:fingerprint=$fingerprint,"
    note "write a secret file, unmount, remount, and open it: only the open needs the private key."
    note "The VM loads eCryptfs with ecryptfs_message_wait_timeout=15 and gives the key module"
    note "unwrap_timeout_ms=14000 (in real use: 3 s and 2.5 s), so you have about 14 s to type the PIN;"
    note "if you are slower, the first open fails and the guest opens the file again once you typed it."
    agent_args=(--terminal)
    if [ -n "${DISPLAY:-}" ]; then
        agent_args=()
        printf '    When asked, type \033[1m%s\033[0m in the agent'"'"'s PIN dialog for Demo Token (DISPLAY is set).\n' "$pin"
    else
        printf '    When asked "PIN for Demo Token" on this terminal, type \033[1m%s\033[0m.\n' "$pin"
    fi
    if ! /usr/bin/python3 "$repo/tests/e2e/run-demo.py" "${agent_args[@]}" \
            --agent "$agent" --cli "$cli" --keymod "$keymod" \
            --fingerprint "$fingerprint" --token-label "Demo Token" --key-label "Demo key" \
            --kernel-env "$vm_kernel_env" --workdir "$tmp/vm"; then
        die "the real-kernel demo failed (details above)"
    fi
    say "Success: the real kernel's eCryptfs opened the file with the key on the token (via ecryptfsd, the key module, D-Bus and the agent)"
    exit 0
fi

# gdbus call … NameHasOwner: prints "(true,)" / "(false,)", fails if no bus.
name_has_owner() {
    gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.NameHasOwner "$bus_name" 2>/dev/null
}
need_bus=1
if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
    if ! owner=$(name_has_owner); then
        say "Your session bus ($DBUS_SESSION_BUS_ADDRESS) is out of reach: using a private one"
    elif [ "$owner" = "(true,)" ]; then
        say "An agent already serves your session bus: using a private bus for the demo"
    else
        say "Using your session bus ($DBUS_SESSION_BUS_ADDRESS)"
        need_bus=0
    fi
else
    say "Starting a private D-Bus session bus (none is set in this shell)"
fi
if [ "$need_bus" = 1 ]; then
    dbus-daemon --session --fork --print-address=3 --print-pid=4 \
        3>"$tmp/bus.address" 4>"$tmp/bus.pid" </dev/null >/dev/null ||
        die "dbus-daemon failed to start"
    bus_pid=$(head -n1 "$tmp/bus.pid")
    DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$tmp/bus.address")
    export DBUS_SESSION_BUS_ADDRESS
    if [ -z "$bus_pid" ] || [ -z "$DBUS_SESSION_BUS_ADDRESS" ]; then
        die "dbus-daemon gave no address/pid"
    fi
    note "bus $DBUS_SESSION_BUS_ADDRESS (pid $bus_pid)"
fi

say "Starting the agent in the background; it will ask for the PIN on this terminal"
note "$agent --terminal --provider $softhsm"
"$agent" --terminal --provider "$softhsm" > >(sed -u 's/^/    [agent] /') 2>&1 &
agent_pid=$!
for _ in $(seq 1 150); do
    [ "$(name_has_owner || true)" = "(true,)" ] && break
    kill -0 "$agent_pid" 2>/dev/null || die "the agent exited before taking $bus_name"
    sleep 0.2
done
[ "$(name_has_owner || true)" = "(true,)" ] || die "the agent did not take $bus_name within 30 s"
note "the agent (pid $agent_pid) owns $bus_name"

say "Asking the agent which keys it sees (ecryptfs-token list; no PIN needed)"
"$cli" list | sed 's/^/    /'

say "Adding the key to the user keyring (ecryptfs-token add-key), as a mount would"
note "linking the user keyring into the session keyring: ecryptfsd finds keys through it"
keyctl link @u @s >/dev/null 2>&1 ||
    note "(keyctl link @u @s failed; it is usually linked already)"
# The public key copy for root's mount helpers goes to a temp dir, not ~/.local.
add_out=$(XDG_DATA_HOME="$tmp/xdg-data" "$cli" add-key "$fingerprint") ||
    die "ecryptfs-token add-key failed"
printf '    %s\n' "${add_out//$'\n'/$'\n'    }"
sig=$(sed -n 's/^ecryptfs_sig: \([0-9a-f]\{16\}\)$/\1/p' <<<"$add_out" | head -n1)
[ -n "$sig" ] || die "add-key printed no ecryptfs_sig"

say "Preparing a key-module directory for ecryptfsd: our module plus eCryptfs' passphrase module"
moddir="$tmp/keymods"
mkdir -m 755 "$moddir"
cp "$keymod" "$passphrase_mod" "$moddir/"
note "$moddir (bind-mounted over $ecryptfs_mod_dir in ecryptfsd's private namespace)"

say "Raising the key module's unwrap budget for the demo (2500 ms -> 60000 ms)"
note "In real use the kernel waits only 3 s for ecryptfsd, so the module gives up after 2.5 s"
note "and the agent unlocks the token early. This demo does not involve the kernel's 3 s"
note "wait, so it lets the module wait while you type the PIN."
printf '[keymod]\nunwrap_timeout_ms=60000\n' >"$tmp/keymod.conf"
export ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF="$tmp/keymod.conf"

say "Round trip through the real ecryptfsd: wrap a random file key (tag 66), unwrap it (tag 64)"
note "The wrap uses only the public key. The unwrap goes to the agent, which needs the"
printf '    token'"'"'s PIN: type \033[1m%s\033[0m when asked "PIN for Demo Token".\n' "$pin"
if ! "$player" --module-dir "$moddir" roundtrip "$sig" --key-bytes 32 --timeout-ms 60000 2>&1 |
        sed 's/^/    /'; then
    die "the round trip through ecryptfsd failed (details above)"
fi

say "Success: the file key came back through ecryptfsd, the key module, D-Bus, the agent and the token"
