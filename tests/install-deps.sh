#!/bin/bash
# Installs every Debian 12 package that building, testing (unit tests, the
# ecryptfsd harness, the real-kernel VM test), the demo and the coming GUI
# work need. Run as root (or a user with sudo). Idempotent; silent unless
# something fails, in which case apt's output is printed and the exit status
# is non-zero.
#
# usage: tests/install-deps.sh
#   ETA_APT_FORCE=1  run apt-get update/install even when all packages are
#                    already installed (the default skips apt then, so that
#                    reruns are fast and work offline)
set -euo pipefail

packages=(
    # build
    build-essential cmake pkg-config
    libglib2.0-dev libglib2.0-bin          # gio, gdbus-codegen, gdbus
    libjson-glib-dev                       # ecryptfs-token --json
    libpkcs11-helper1-dev libssl-dev libecryptfs-dev libkeyutils-dev
    libp11-kit-dev                         # p11-kit's proxy path (pkg-config)
    # runtime of the tests and the demo
    ecryptfs-utils                         # ecryptfsd, passphrase key module
    softhsm2 opensc p11-kit p11-kit-modules  # token, pkcs11-tool, proxy
    keyutils                               # keyctl
    procps                                 # pgrep (tests/test-cli.c)
    systemd                                # systemd-analyze, a user manager for the ecryptfsd units
    dbus dbus-daemon dbus-bin              # private session buses, dbus-send
    openssl util-linux socat
    python3-gi                             # a bus client as another user (tests/test-epoch-unwrap.c)
    # real-kernel VM test (tests/e2e)
    qemu-system-x86 busybox-static cpio ca-certificates
    python3 xz-utils zstd kmod             # extract-vmlinux.py, modules, depmod
    # GUI work and GUI tests
    libgtk-4-dev xvfb xauth python3-pyatspi at-spi2-core
    libsecret-1-dev gnome-keyring imagemagick
    desktop-file-utils appstream           # data file validation (tests/test-data-files.sh)
    gettext gettext-base                   # catalogues, po/make-pot.sh, tests/test-po.sh
    groff-base man-db                      # manual page checks (tests/test-man-pages.sh)
    valgrind                               # agent and ecryptfsd memory checks (tests/test-fault-load.c)
    # fuzz targets (tests/fuzz): clang, libFuzzer and the sanitizer runtimes,
    # llvm-symbolizer for readable reports
    clang libclang-rt-14-dev llvm
)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: run as root (apt-get needs it)" >&2
        exit 1
    fi
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ] && [ "${ETA_APT_FORCE:-0}" != 1 ]; then
    exit 0
fi

log=$(mktemp /tmp/eta-install-deps.XXXXXX.log)
trap 'rm -f "$log"' EXIT

apt_opts=(-q -o DPkg::Lock::Timeout=600)
if ! "${sudo[@]}" apt-get "${apt_opts[@]}" update >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get update failed (log above)" >&2
    exit 1
fi
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" install -y --no-install-recommends "${packages[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get install failed (log above); wanted: ${missing[*]}" >&2
    exit 1
fi
