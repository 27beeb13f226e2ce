#!/bin/bash
# Fetch Debian's standard amd64 kernel for the real-kernel VM test, without
# installing it.
#
# usage: fetch-kernel.sh [--package NAME] [--module NAME]... [--quiet] CACHE_DIR
#
# Downloads (apt-get download, reused when present) the image package that
# linux-image-amd64 depends on (never the -cloud- flavour: it has no
# eCryptfs), unpacks it with dpkg -x, extracts an uncompressed vmlinux with a
# PVH entry (what QEMU's microvm boots fastest), and builds a trimmed module
# tree holding ecryptfs, ecb and the virtio_mmio/virtio_net closure, indexed
# with depmod -b.  The full unpacked tree (~400 MB) is deleted afterwards.
#
# Result, in CACHE_DIR/<package>_<version>/ and printed on stdout as
# shell-sourceable lines (also saved as CACHE_DIR/kernel.env):
#   KVER=6.1.0-NN-amd64
#   VMLINUX=/abs/path/vmlinux
#   MODROOT=/abs/path/modroot        (holds lib/modules/$KVER)
#
# Without apt metadata (offline), an already prepared kernel in CACHE_DIR is
# reused; with nothing usable it fails loudly (exit 1).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
package=
quiet=0
extra_modules=()

die() { echo "fetch-kernel: $*" >&2; exit 1; }
say() { [ "$quiet" = 1 ] || echo "fetch-kernel: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --package) package=$2; shift 2 ;;
        --module) extra_modules+=("$2"); shift 2 ;;
        --quiet|-q) quiet=1; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || die "usage: fetch-kernel.sh [--package NAME] [--module NAME]... CACHE_DIR"

mkdir -p "$1"
cache=$(cd "$1" && pwd)
for tool in dpkg-deb python3 flock; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# One preparation at a time per cache (ctest -j, parallel builds).
exec 9>"$cache/.lock"
flock 9

emit() {   # $1 = prepared dir
    local env="$1/kernel.env"
    [ -f "$env" ] || die "internal: $env missing"
    cp "$env" "$cache/kernel.env.tmp" && mv -f "$cache/kernel.env.tmp" "$cache/kernel.env"
    cat "$env"
}

# --- which package -----------------------------------------------------------
# One apt-cache call (each rebuilds apt's cache when pkgcache.bin is off):
# "Depends: linux-image-6.1.0-NN-amd64 (= 6.1.x-y)", the signed image.
want_version=
if [ -z "$package" ]; then
    dep=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
          sed -n 's/^Depends: //p' | head -n1 | tr ',|' '\n\n' |
          sed 's/^ *//' | grep '^linux-image-' | grep -v -- '-cloud-' | head -n1 || true)
    package=${dep%% *}
    case "$dep" in
        *"(= "*")"*) want_version=${dep#*"(= "}; want_version=${want_version%%)*} ;;
    esac
else
    want_version=$(apt-cache policy "$package" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n1 || true)
    [ "$want_version" != "(none)" ] || want_version=
fi
if [ -z "$package" ]; then
    # Offline or no apt lists: reuse whatever was prepared before.
    prepared=$(ls -d "$cache"/linux-image-*/.complete 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$prepared" ]; then
        say "apt-cache cannot resolve linux-image-amd64; reusing $(dirname "$prepared")"
        emit "$(dirname "$prepared")"
        exit 0
    fi
    die "cannot resolve the package linux-image-amd64 depends on (run apt-get update?) and nothing cached in $cache"
fi
case "$package" in
    *-cloud-*) die "$package is the cloud flavour (no eCryptfs); pick the standard one" ;;
esac

# --- download (or reuse) -----------------------------------------------------
mkdir -p "$cache/debs"
deb=$(ls "$cache/debs/${package}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "$deb" ] && [ -n "$want_version" ]; then
    have_version=$(dpkg-deb -f "$deb" Version)
    if [ "$have_version" != "$want_version" ]; then
        say "cached $deb is $have_version, apt offers $want_version: downloading"
        deb=
    fi
fi
if [ -z "$deb" ]; then
    say "apt-get download $package"
    # As root, apt would drop to _apt and warn that it cannot write here.
    sandbox=()
    [ "$(id -u)" != 0 ] || sandbox=(-o APT::Sandbox::User=root)
    (cd "$cache/debs" && apt-get download -q "${sandbox[@]}" "$package" >&2) ||
        die "apt-get download $package failed"
    deb=$(ls "$cache/debs/${package}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$deb" ] || die "apt-get download left no ${package}_*.deb in $cache/debs"
fi
version=$(dpkg-deb -f "$deb" Version)
out="$cache/${package}_${version}"

if [ -f "$out/.complete" ]; then
    missing=0
    for m in "${extra_modules[@]}"; do
        m=${m//-/_}
        grep -q "/${m//_/[-_]}\.ko[.a-z]*:" "$out/modroot/lib/modules/"*/modules.dep || missing=1
    done
    if [ "$missing" = 0 ]; then
        say "reusing $out"
        emit "$out"
        exit 0
    fi
fi

# --- unpack ------------------------------------------------------------------
say "unpacking $(basename "$deb")"
rm -rf "$out" "$cache/.unpack"
mkdir -p "$cache/.unpack" "$out"
trap 'rm -rf "$cache/.unpack"' EXIT
dpkg -x "$deb" "$cache/.unpack"
root="$cache/.unpack"

vmlinuz=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $deb"
kver=${vmlinuz##*/vmlinuz-}
moddir="$root/lib/modules/$kver"
[ -d "$moddir" ] || die "no lib/modules/$kver in $deb"

say "extracting vmlinux (PVH entry) from $(basename "$vmlinuz")"
python3 "$here/extract-vmlinux.py" "$vmlinuz" "$out/vmlinux"

# --- module closure ----------------------------------------------------------
# name -> relative path, from the files themselves ('-' and '_' are the same
# in module names).
declare -A path_of
while IFS= read -r rel; do
    base=${rel##*/}
    base=${base%%.ko*}
    path_of[${base//-/_}]=$rel
done < <(cd "$moddir" && find kernel -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

modcat() {   # print a module file uncompressed
    case "$1" in
        *.ko.xz) xz -dc "$1" ;;
        *.ko.zst) zstd -dc "$1" ;;
        *.ko.gz) gzip -dc "$1" ;;
        *) cat "$1" ;;
    esac
}
depends_of() {   # "depends=a,b" from the .modinfo strings
    modcat "$moddir/$1" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '
}

declare -A wanted
queue=(ecryptfs ecb virtio_mmio virtio_net "${extra_modules[@]}")
while [ ${#queue[@]} -gt 0 ]; do
    name=${queue[0]//-/_}
    queue=("${queue[@]:1}")
    [ -n "$name" ] || continue
    [ -z "${wanted[$name]:-}" ] || continue
    rel=${path_of[$name]:-}
    if [ -z "$rel" ]; then
        if grep -q "/${name//_/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null; then
            continue   # built into the kernel
        fi
        die "module $name not found in $deb"
    fi
    wanted[$name]=$rel
    for dep in $(depends_of "$rel"); do
        queue+=("$dep")
    done
done

tree="$out/modroot/lib/modules/$kver"
mkdir -p "$tree"
for name in "${!wanted[@]}"; do
    rel=${wanted[$name]}
    mkdir -p "$tree/$(dirname "$rel")"
    cp "$moddir/$rel" "$tree/$rel"
done
for f in modules.builtin modules.builtin.modinfo; do
    [ -f "$moddir/$f" ] && cp "$moddir/$f" "$tree/"
done
# modules.order restricted to what we keep (depmod uses it for ordering).
if [ -f "$moddir/modules.order" ]; then
    (cd "$tree" && find kernel -name '*.ko*' | sed 's/\.\(xz\|zst\|gz\)$//') |
        grep -F -x -f - "$moddir/modules.order" > "$tree/modules.order" || true
fi

# depmod: kmod's if installed, else busybox's (busybox-static is required
# anyway for the initramfs).
depmod_cmd=
for d in depmod /sbin/depmod /usr/sbin/depmod; do
    if command -v "$d" >/dev/null 2>&1; then depmod_cmd=$d; break; fi
done
if [ -n "$depmod_cmd" ]; then
    "$depmod_cmd" -b "$out/modroot" "$kver"
elif command -v busybox >/dev/null 2>&1; then
    busybox depmod -b "$out/modroot" "$kver"
else
    die "no depmod (kmod) and no busybox"
fi
[ -s "$tree/modules.dep" ] || die "depmod produced no modules.dep"

cp "$root/boot/config-$kver" "$out/config" 2>/dev/null || true
cat > "$out/kernel.env" <<EOF
KVER=$kver
VMLINUX=$out/vmlinux
MODROOT=$out/modroot
EOF
touch "$out/.complete"
say "prepared $out (modules: ${!wanted[*]})"
emit "$out"
