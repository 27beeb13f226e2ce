#!/bin/bash
# Install check: configures the project as a distribution package would
# (prefix /usr), installs it into a DESTDIR and verifies the tree, then asks
# the real libecryptfs module loader to find the installed key module.
#
# usage: test-install.sh SOURCE_DIR WORK_DIR LOADER_CHECK
#   LOADER_CHECK: the built tests/install/eta-keymod-loader-check
set -euo pipefail

source_dir=$1
work=$2
loader_check=$3
build="$work/build"
destdir="$work/root"
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

rm -rf "$work"
mkdir -p "$work"
cmake -S "$source_dir" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF \
      -DETA_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; echo "install-check: configure failed"; exit 1; }
cmake --build "$build" -j"$(nproc)" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log"; echo "install-check: build failed"; exit 1; }
DESTDIR="$destdir" cmake --install "$build" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; echo "install-check: install failed"; exit 1; }

keymod_dir=$(sed -n 's/^ETA_KEYMOD_DIR:PATH=//p' "$build/CMakeCache.txt")
[ -n "$keymod_dir" ] || { echo "install-check: no ETA_KEYMOD_DIR in the cache"; exit 1; }
unit_dir=$(pkg-config --define-variable=prefix=/usr --variable=systemduserunitdir systemd \
           2>/dev/null || echo /usr/lib/systemd/user)

expect_file() {
    if [ -f "$destdir$1" ] && [ -s "$destdir$1" ]; then ok "$1"; else not_ok "$1 is missing"; fi
}

# Every file a user or a package needs, where the system looks for it.
expect_file "$keymod_dir/libecryptfs_key_mod_token_agent.so"
expect_file /usr/bin/ecryptfs-token-agent
expect_file /usr/bin/ecryptfs-token
expect_file /usr/share/dbus-1/services/org.ecryptfs.TokenAgent1.service
expect_file /usr/share/dbus-1/interfaces/org.ecryptfs.TokenAgent1.xml
expect_file /etc/xdg/autostart/org.ecryptfs.TokenAgent1.desktop
expect_file /usr/share/applications/org.ecryptfs.TokenAgent1.desktop
expect_file "$unit_dir/ecryptfs-token-agent.service"
expect_file "$unit_dir/ecryptfs-token-ecryptfsd.service"
expect_file "$unit_dir/ecryptfs-token-ecryptfsd.path"
# Enabled for every user: the wants link resolves to the installed path unit.
wants=$destdir$unit_dir/default.target.wants/ecryptfs-token-ecryptfsd.path
if [ -L "$wants" ] && [ "$(readlink "$wants")" = ../ecryptfs-token-ecryptfsd.path ] &&
   [ -f "$wants" ]; then
    ok "ecryptfs-token-ecryptfsd.path is enabled (default.target.wants)"
else
    not_ok "ecryptfs-token-ecryptfsd.path is not enabled: $(ls -l "$wants" 2>&1)"
fi
expect_file /usr/share/metainfo/org.ecryptfs.TokenAgent1.metainfo.xml
for state in no-token locked unlocked asking; do
    expect_file "/usr/share/icons/hicolor/scalable/status/ecryptfs-token-agent-$state-symbolic.svg"
done
expect_file /usr/share/glib-2.0/schemas/org.ecryptfs.TokenAgent.gschema.xml
expect_file /etc/ecryptfs-token-agent/keymod.conf
expect_file /etc/modprobe.d/ecryptfs-token-agent.conf
expect_file /usr/share/man/man1/ecryptfs-token-agent.1
expect_file /usr/share/man/man1/ecryptfs-token.1
expect_file /usr/share/man/man7/ecryptfs-token-agent-keymod.7
for lang in $(grep -v '^#' "$source_dir/po/LINGUAS"); do
    mo="/usr/share/locale/$lang/LC_MESSAGES/ecryptfs-token-agent.mo"
    expect_file "$mo"
    # More than the header: at least ten translated messages.
    if [ -f "$destdir$mo" ] &&
       [ "$(msgunfmt "$destdir$mo" | grep -c '^msgid ')" -gt 10 ]; then
        ok "$mo holds translations"
    else
        not_ok "$mo holds no translations"
    fi
done

# Nothing under the prefix that belongs in /etc, nothing outside the
# package's places.
if [ -d "$destdir/usr/etc" ]; then not_ok "files installed under /usr/etc: $(find "$destdir/usr/etc" -type f)"; fi
stray=$(cd "$destdir" && find . -type f | grep -vE '^\./(usr/(bin|share|lib)|etc)/' || true)
[ -z "$stray" ] && ok "no stray files" || not_ok "stray files: $stray"

# The installed files point at installed paths, never at the build tree.
# (Text files only: debug information names the build tree by design.)
if grep -rIqs -- "$build" "$destdir"; then
    not_ok "the build directory is named in: $(grep -rIls -- "$build" "$destdir" | head -n 3)"
else
    ok "no installed text file names the build directory"
fi
for program in "$destdir"/usr/bin/* "$destdir$keymod_dir"/*.so; do
    if readelf -d "$program" | grep -qE 'RPATH|RUNPATH'; then
        not_ok "$program carries an RPATH"
    else
        ok "$(basename "$program") has no RPATH"
    fi
done
exec_line=$(sed -n 's/^Exec=//p' "$destdir/usr/share/dbus-1/services/org.ecryptfs.TokenAgent1.service")
[ "${exec_line%% *}" = /usr/bin/ecryptfs-token-agent ] && ok "D-Bus service starts /usr/bin/ecryptfs-token-agent" ||
    not_ok "D-Bus service Exec is '$exec_line'"
desktop-file-validate "$destdir/etc/xdg/autostart/org.ecryptfs.TokenAgent1.desktop" &&
    ok "installed autostart entry validates" || not_ok "installed autostart entry does not validate"
glib-compile-schemas --strict --dry-run "$destdir/usr/share/glib-2.0/schemas" &&
    ok "installed schema compiles" || not_ok "installed schema does not compile"
[ ! -e "$destdir/usr/share/glib-2.0/schemas/gschemas.compiled" ] &&
    ok "schemas left for the package's trigger under DESTDIR" ||
    not_ok "gschemas.compiled was written into DESTDIR"

# The installed programs run.
"$destdir/usr/bin/ecryptfs-token" --version | grep -q '^ecryptfs-token ' &&
    ok "installed ecryptfs-token runs" || not_ok "installed ecryptfs-token does not run"
"$destdir/usr/bin/ecryptfs-token-agent" --version | grep -q '^ecryptfs-token-agent ' &&
    ok "installed agent runs" || not_ok "installed agent does not run"

# The real libecryptfs loader scans only its own directory: show it the
# installed one in a private mount namespace, as if the package were in place.
if out=$(unshare --mount --propagation private -- sh -c \
           'mount --bind "$1" "$2" && exec "$3" token-agent' sh \
           "$destdir$keymod_dir" "$keymod_dir" "$loader_check" 2>&1); then
    echo "$out" | sed 's/^/  /'
    if echo "$out" | grep -qx "found: $keymod_dir/libecryptfs_key_mod_token_agent.so" &&
       echo "$out" | grep -qx "param: fingerprint" &&
       echo "$out" | grep -qx "param: padding" &&
       echo "$out" | grep -qx "param: pubkey"; then
        ok "libecryptfs loads the installed key module as token-agent"
    else
        not_ok "libecryptfs found the module, but not as expected"
    fi
else
    echo "$out" | sed 's/^/  /'
    not_ok "libecryptfs did not load the installed key module"
fi

tap_finish
