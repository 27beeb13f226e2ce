#!/bin/bash
# Extracts the translatable strings of every file po/POTFILES.in names into a
# message template. The one place the xgettext options live: the `pot` target
# and the po-check test both run this.
#
# usage: po/make-pot.sh SOURCE-DIR OUTPUT.pot METAINFO-ITS [VERSION]
#   SOURCE-DIR    the project's top directory (POTFILES.in paths are relative to it)
#   OUTPUT.pot    the template to write
#   METAINFO-ITS  AppStream's ITS rules for metainfo files (the appstream
#                 package ships /usr/share/gettext/its/metainfo.its)
#   VERSION       the package version for the header
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
    echo "usage: $0 SOURCE-DIR OUTPUT.pot METAINFO-ITS [VERSION]" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
out=$(readlink -f "$2")
its=$3
version=${4:-}
package=ecryptfs-token-agent

for tool in xgettext; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "make-pot: $tool is missing (Debian package gettext)" >&2
        exit 1
    fi
done
if [ ! -f "$its" ]; then
    echo "make-pot: no ITS rules for metainfo at $its (Debian package appstream)" >&2
    exit 1
fi

c_files=() ui_files=() desktop_files=() metainfo_files=() gschema_files=()
while IFS= read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    if [ ! -f "$src/$line" ]; then
        echo "make-pot: po/POTFILES.in names $line, which does not exist" >&2
        exit 1
    fi
    case $line in
        *.c | *.h) c_files+=("$line") ;;
        *.ui) ui_files+=("$line") ;;
        *.desktop | *.desktop.in) desktop_files+=("$line") ;;
        *.metainfo.xml | *.metainfo.xml.in) metainfo_files+=("$line") ;;
        *.gschema.xml | *.gschema.xml.in) gschema_files+=("$line") ;;
        *)
            echo "make-pot: no extraction rule for $line (po/make-pot.sh knows .c .h .ui" \
                 ".desktop .metainfo.xml .gschema.xml .gschema.xml.in)" >&2
            exit 1
            ;;
    esac
done <"$src/po/POTFILES.in"

common=(--from-code=UTF-8 --add-comments=TRANSLATORS --package-name="$package" --force-po)
if [ -n "$version" ]; then
    common+=(--package-version="$version")
fi

tmp=$(mktemp -d /tmp/eta-make-pot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# xgettext, quiet about the bug address the project does not have.
run_xgettext() {
    if ! xgettext "$@" 2>"$tmp/stderr"; then
        cat "$tmp/stderr" >&2
        exit 1
    fi
    grep -v -e 'msgid-bugs-address' -e "'Makevars' file" -e 'MSGID_BUGS_ADDRESS' \
        "$tmp/stderr" >&2 || true
}
cd "$src"
# Each kind of file in its own pass; the passes after the first join it.
run_xgettext "${common[@]}" --language=C \
    --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 \
    --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 \
    --flag=g_strdup_printf:1:c-format --flag=g_string_append_printf:2:c-format \
    --flag=g_string_printf:2:c-format --flag=g_printerr:1:c-format \
    --flag=g_print:1:c-format --flag=g_set_error:4:c-format \
    -o "$tmp/all.pot" ${c_files[@]+"${c_files[@]}"}
if [ ${#ui_files[@]} -gt 0 ]; then
    run_xgettext "${common[@]}" --join-existing --language=Glade -o "$tmp/all.pot" "${ui_files[@]}"
fi
if [ ${#desktop_files[@]} -gt 0 ]; then
    run_xgettext "${common[@]}" --join-existing --language=Desktop -o "$tmp/all.pot" \
        "${desktop_files[@]}"
fi
if [ ${#metainfo_files[@]} -gt 0 ]; then
    run_xgettext "${common[@]}" --join-existing --its="$its" -o "$tmp/all.pot" \
        "${metainfo_files[@]}"
fi
# GSettings schemas: xgettext picks the rules GLib and gettext ship by the root
# element; the summaries and descriptions are shown by settings editors.
if [ ${#gschema_files[@]} -gt 0 ]; then
    run_xgettext "${common[@]}" --join-existing -o "$tmp/all.pot" "${gschema_files[@]}"
fi
mv "$tmp/all.pot" "$out"
