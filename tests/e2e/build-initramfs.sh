#!/bin/bash
# Build the (uncompressed newc cpio) initramfs of the eCryptfs VM test.
#
# usage: build-initramfs.sh --output FILE (--kernel-env FILE | --modroot DIR --kver KVER)
#            [--keymod PATH]... [--extra SRC:GUESTPATH]... [--bin PATH]...
#            [--scenarios DIR]... [--scenario FILE]... [--no-default-scenarios]
#            [--modprobe-conf FILE] [--quiet]
#
#   --kernel-env FILE   kernel.env printed by fetch-kernel.sh (KVER, MODROOT)
#   --keymod PATH       an extra eCryptfs key module, copied into
#                       /usr/lib/<multiarch>/ecryptfs/ (with its libraries)
#   --extra SRC:GUEST   copy a host file or directory to GUEST; ELF files get
#                       their shared-library closure too
#   --bin PATH          a host program, copied to the same path (plus closure)
#   --scenarios DIR     add every scenario script in DIR (files not starting
#                       with '.' or '_'); they run in name order, a ".sh"
#                       suffix is dropped from the name
#   --scenario FILE     add one scenario script
#   --no-default-scenarios   leave out tests/e2e/scenarios/
#   --modprobe-conf FILE     the guest's /etc/modprobe.d/ecryptfs-token-agent.conf
#                       (run-vm.sh gives the shipped data/ecryptfs-token-agent-modprobe.conf;
#                       busybox modprobe applies its "options" lines when /init loads ecryptfs)
#
# Contents: busybox-static (all applets), a /bin/mount wrapper, ecryptfsd,
# mount.ecryptfs, umount.ecryptfs, ecryptfs-add-passphrase, ecryptfs-manager,
# keyctl, gdbus, dbus-send, libecryptfs with the passphrase module, NSS's
# dlopened libsoftokn3/libfreebl3/libfreeblpriv3, the ldd closure of all of
# them, /etc/passwd (root, eta:1000), group, nsswitch.conf, the trimmed
# module tree, the guest /init, /usr/share/eta-e2e/lib.sh and
# /usr/share/eta-e2e/paths (the key module directory, for /init and lib.sh).
# Libraries keep their host paths: <multiarch> is the host's triplet.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

output=
kernel_env=
modroot=
kver=
quiet=0
default_scenarios=1
keymods=()
extras=()
bins=()
scenario_dirs=()
scenario_files=()
modprobe_conf=

die() { echo "build-initramfs: $*" >&2; exit 1; }
say() { [ "$quiet" = 1 ] || echo "build-initramfs: $*" >&2; }

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null) ||
    die "cannot tell the multiarch triplet (dpkg-architecture from dpkg-dev, or gcc)"
keymod_dir=/usr/lib/$multiarch/ecryptfs

while [ $# -gt 0 ]; do
    case "$1" in
        --output|-o) output=$2; shift 2 ;;
        --kernel-env) kernel_env=$2; shift 2 ;;
        --modroot) modroot=$2; shift 2 ;;
        --kver) kver=$2; shift 2 ;;
        --keymod) keymods+=("$2"); shift 2 ;;
        --extra) extras+=("$2"); shift 2 ;;
        --bin) bins+=("$2"); shift 2 ;;
        --scenarios) scenario_dirs+=("$2"); shift 2 ;;
        --scenario) scenario_files+=("$2"); shift 2 ;;
        --no-default-scenarios) default_scenarios=0; shift ;;
        --modprobe-conf) modprobe_conf=$2; shift 2 ;;
        --quiet|-q) quiet=1; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$output" ] || die "--output FILE is required"
if [ -n "$kernel_env" ]; then
    [ -f "$kernel_env" ] || die "$kernel_env not found"
    kver=$(sed -n 's/^KVER=//p' "$kernel_env")
    modroot=$(sed -n 's/^MODROOT=//p' "$kernel_env")
fi
[ -n "$kver" ] && [ -n "$modroot" ] || die "need --kernel-env or --modroot and --kver"
[ -f "$modroot/lib/modules/$kver/modules.dep" ] || die "no modules.dep under $modroot/lib/modules/$kver"
[ "$default_scenarios" = 0 ] || scenario_dirs=("$here/scenarios" "${scenario_dirs[@]}")

for tool in cpio ldd; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
ldd "$busybox" 2>&1 | grep -q '=>' &&
    die "$busybox is dynamically linked; install busybox-static"

root=$(mktemp -d "${TMPDIR:-/tmp}/eta-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

# usrmerged layout, like the host: /bin /sbin /lib /lib64 point into /usr, so
# a library copied to the path ldd prints lands in one place.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,proc,sys,dev,tmp,run,root,mnt,scenarios} \
         "$root/home/eta" "$root$keymod_dir" "$root/usr/share/eta-e2e"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"

declare -A copied

# copy_file HOSTPATH [GUESTPATH]: copy (dereferenced), keep the mode.
copy_file() {
    local src=$1 dst=${2:-$1}
    [ -z "${copied[$dst]:-}" ] || return 0
    [ -e "$src" ] || die "$src not found"
    mkdir -p "$root$(dirname "$dst")"
    cp -L --preserve=mode "$src" "$root$dst"
    copied[$dst]=1
}

# copy_lib HOSTPATH: the same path in the guest, keeping a final symlink a
# symlink (libfoo.so.1 -> libfoo.so.1.2.3) so nothing is stored twice.
copy_lib() {
    local src=$1 target next
    [ -z "${copied[$src]:-}" ] || return 0
    if [ -L "$src" ]; then
        target=$(readlink "$src")
        case "$target" in
            /*) next=$target ;;
            *) next=$(dirname "$src")/$target ;;
        esac
        mkdir -p "$root$(dirname "$src")"
        ln -sfn "$target" "$root$src"
        copied[$src]=1
        copy_lib "$next"
    else
        copy_file "$src"
    fi
}

is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; }

# copy_closure FILE: the shared libraries FILE needs, at the paths ldd
# resolves on the host (the guest loader finds them there too).
copy_closure() {
    local f=$1 line lib
    is_elf "$f" || return 0
    local out
    out=$(ldd "$f" 2>&1) || {
        case "$out" in
            *"not a dynamic executable"*|*"statically linked"*) return 0 ;;
        esac
        die "ldd $f failed: $out"
    }
    if grep -q 'not found' <<<"$out"; then
        die "ldd $f: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
    fi
    while read -r line; do
        case "$line" in
            *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
            /*) lib=${line%% (*} ;;
            *) continue ;;
        esac
        copy_lib "$lib"
    done <<<"$out"
}

# add_elf HOSTPATH [GUESTPATH]
add_elf() {
    copy_file "$1" "${2:-$1}"
    copy_closure "$1"
}

first_existing() {
    local p
    for p in "$@"; do [ -e "$p" ] && { echo "$p"; return 0; }; done
    return 1
}

say "populating $root"

# busybox and its applets (real files installed later win over applet links).
copy_file "$busybox" /usr/bin/busybox
install -m 0755 "$here/guest/mount" "$root/usr/bin/mount"
copied[/usr/bin/mount]=1

# eCryptfs userspace.
add_elf /usr/bin/ecryptfsd
add_elf "$(first_existing /sbin/mount.ecryptfs /usr/sbin/mount.ecryptfs)" /usr/sbin/mount.ecryptfs
add_elf "$(first_existing /sbin/umount.ecryptfs /usr/sbin/umount.ecryptfs)" /usr/sbin/umount.ecryptfs
add_elf /usr/bin/ecryptfs-add-passphrase
add_elf /usr/bin/ecryptfs-manager
add_elf "$(first_existing /bin/keyctl /usr/bin/keyctl)" /usr/bin/keyctl
passmod=$keymod_dir/libecryptfs_key_mod_passphrase.so
[ -f "$passmod" ] || die "$passmod missing (ecryptfs-utils); libecryptfs needs a copy or it crashes at exit"
add_elf "$passmod"

# NSS (libecryptfs's crypto) dlopens its soft token; the .chk files keep the
# FIPS self-check quiet.
for lib in libsoftokn3.so libfreebl3.so libfreeblpriv3.so; do
    p=$(first_existing "/usr/lib/$multiarch/$lib" "/usr/lib/$multiarch/nss/$lib") ||
        die "$lib not found (libnss3)"
    add_elf "$p"
    chk=${p%.so}.chk
    [ -f "$chk" ] && copy_file "$chk"
done

# D-Bus clients for the bus check.
[ -x /usr/bin/gdbus ] || die "/usr/bin/gdbus not found (libglib2.0-bin)"
add_elf /usr/bin/gdbus
if p=$(first_existing /usr/bin/dbus-send); then add_elf "$p"; fi

# Key modules under test.
for m in "${keymods[@]}"; do
    [ -f "$m" ] || die "key module $m not found"
    case "$m" in *.so) ;; *) die "key module $m: libecryptfs only loads *.so" ;; esac
    add_elf "$m" "$keymod_dir/$(basename "$m")"
done

for b in "${bins[@]}"; do
    [ -f "$b" ] || die "--bin $b not found"
    add_elf "$b"
done

for spec in "${extras[@]}"; do
    src=${spec%%:*}
    dst=${spec#*:}
    [ "$src" != "$spec" ] && [ -n "$src" ] && [[ "$dst" == /* ]] ||
        die "--extra wants SRC:/GUEST/PATH, got $spec"
    [ -e "$src" ] || die "--extra source $src not found"
    if [ -d "$src" ]; then
        mkdir -p "$root$dst"
        cp -a "$src/." "$root$dst/"
        while IFS= read -r -d '' f; do copy_closure "$f"; done < <(find "$src" -type f -print0)
    else
        copy_file "$src" "$dst"
        copy_closure "$src"
    fi
done

# Modules.
mkdir -p "$root/usr/lib/modules"
cp -a "$modroot/lib/modules/$kver" "$root/usr/lib/modules/"

# Scenarios.
add_scenario() {
    local f=$1 base
    base=$(basename "$f")
    case "$base" in .*|_*) return 0 ;; esac
    [ ! -e "$root/scenarios/$base" ] || die "two scenarios named $base"
    install -m 0755 "$f" "$root/scenarios/$base"
}
for d in "${scenario_dirs[@]}"; do
    [ -d "$d" ] || die "scenario directory $d not found"
    for f in "$d"/*; do [ -f "$f" ] && add_scenario "$f"; done
done
for f in "${scenario_files[@]}"; do
    [ -f "$f" ] || die "scenario $f not found"
    add_scenario "$f"
done
[ -n "$(ls -A "$root/scenarios")" ] || die "no scenarios"

# Guest scripts and config.
install -m 0755 "$here/guest/init" "$root/init"
install -m 0644 "$here/guest/lib.sh" "$root/usr/share/eta-e2e/lib.sh"
# The guest cannot ask dpkg: it is told where libecryptfs looks for modules.
printf 'ETA_KEYMOD_DIR=%s\n' "$keymod_dir" > "$root/usr/share/eta-e2e/paths"
if [ -n "$modprobe_conf" ]; then
    [ -f "$modprobe_conf" ] || die "--modprobe-conf $modprobe_conf not found"
    install -D -m 0644 "$modprobe_conf" "$root/etc/modprobe.d/ecryptfs-token-agent.conf"
fi
cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
eta:x:1000:1000:eta test user:/home/eta:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
eta:x:1000:
nogroup:x:65534:
EOF
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files
EOF
echo "127.0.0.1 localhost" > "$root/etc/hosts"
: > "$root/etc/fstab"
ln -s /proc/mounts "$root/etc/mtab"
# GLib wants a machine id for some D-Bus paths.
echo 0123456789abcdef0123456789abcdef > "$root/etc/machine-id"

# Applet links for everything not provided as a real file.
for applet in $("$busybox" --list); do
    [ -e "$root/usr/bin/$applet" ] || [ -e "$root/usr/sbin/$applet" ] ||
        ln -s busybox "$root/usr/bin/$applet"
done

mkdir -p "$(dirname "$output")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
     cpio -o -H newc -R 0:0 --quiet) > "$output.tmp"
mv -f "$output.tmp" "$output"
# The scenario names, in run order, for run-vm.sh to check every one reported.
ls "$root/scenarios" | LC_ALL=C sort | sed 's/\.sh$//' > "$output.scenarios"
say "wrote $output ($(du -h "$output" | cut -f1), $(find "$root" -mindepth 1 | wc -l) entries)"
