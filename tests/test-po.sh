#!/bin/bash
# Checks the translations: every catalogue compiles cleanly and is complete
# (nothing untranslated or fuzzy), every string the sources mark is in every
# catalogue, every source that marks strings is listed in po/POTFILES.in, and
# the build tree holds the compiled catalogues and the translated data files.
#
# usage: tests/test-po.sh SOURCE-DIR BUILD-DIR METAINFO-ITS
#   SOURCE-DIR    the project's top directory
#   BUILD-DIR     the top build directory (holds locale/ and data/)
#   METAINFO-ITS  AppStream's ITS rules for metainfo files
# Prints TAP-like ok / not ok lines; exits non-zero on any failure. A missing
# tool is a failure, not a skip. When a check says strings are missing:
#   cmake --build BUILD-DIR --target update-po
# merges the new strings into po/*.po, to be translated there.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 SOURCE-DIR BUILD-DIR METAINFO-ITS" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
its=$3
package=ecryptfs-token-agent
app_id=org.ecryptfs.TokenAgent1

tmp=$(mktemp -d /tmp/eta-po-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

missing_tools=()
for tool in msgfmt msgcmp xgettext gettext; do
    command -v "$tool" >/dev/null 2>&1 || missing_tools+=("$tool")
done
if [ ${#missing_tools[@]} -gt 0 ]; then
    not_ok "gettext tools present (missing: ${missing_tools[*]}; tests/install-deps.sh installs them)"
    echo "# $failures of $n checks failed"
    exit 1
fi
ok "gettext tools present"

# --- LINGUAS names exactly the catalogues in po/ ------------------------------
mapfile -t linguas < <(sed -e 's/#.*//' "$src/po/LINGUAS" | tr -s ' \t' '\n\n' | sed '/^$/d')
mapfile -t po_langs < <(cd "$src/po" && ls -1 -- *.po 2>/dev/null | sed 's/\.po$//')
if [ ${#linguas[@]} -eq 0 ]; then
    not_ok "po/LINGUAS names at least one language"
elif [ "$(printf '%s\n' "${linguas[@]}" | sort)" = "$(printf '%s\n' "${po_langs[@]}" | sort)" ]; then
    ok "po/LINGUAS (${linguas[*]}) names exactly the catalogues po/*.po"
else
    not_ok "po/LINGUAS names exactly the catalogues po/*.po" \
        "LINGUAS: ${linguas[*]}"$'\n'"po/*.po: ${po_langs[*]}"
fi

# --- every catalogue compiles cleanly and is complete -------------------------
for lang in "${po_langs[@]}"; do
    po=$src/po/$lang.po
    if out=$(msgfmt --check --statistics -o /dev/null "$po" 2>&1) \
            && ! grep -qiE 'warning|error' <<<"$out"; then
        ok "msgfmt --check $lang.po: $out"
    else
        not_ok "msgfmt --check $lang.po" "$out"
    fi
    if grep -qE '[0-9]+ (fuzzy translation|untranslated message)' <<<"$out"; then
        not_ok "$lang.po has no fuzzy or untranslated message" "$out"
    else
        ok "$lang.po has no fuzzy or untranslated message"
    fi
    if grep -q "^\"Language: $lang\\\\n\"" "$po" \
            && grep -q '^"Plural-Forms: nplurals=[0-9]; plural=.*;\\n"' "$po" \
            && grep -q '^"Content-Type: text/plain; charset=UTF-8\\n"' "$po"; then
        ok "$lang.po header names the language, its plural forms and UTF-8"
    else
        not_ok "$lang.po header names the language, its plural forms and UTF-8"
    fi
done

# --- the strings the sources mark are all translated -------------------------
pot=$tmp/$package.pot
if out=$(bash "$src/po/make-pot.sh" "$src" "$pot" "$its" 2>&1); then
    ok "the template extracts from po/POTFILES.in ($(grep -c '^msgid ' "$pot") entries)"
    for lang in "${po_langs[@]}"; do
        po=$src/po/$lang.po
        # Every msgid of the template has a finished translation.
        if out=$(msgcmp "$po" "$pot" 2>&1); then
            ok "$lang.po translates every string of the sources"
        else
            not_ok "$lang.po translates every string of the sources" \
                "$(grep -v 'warning: this message is not used' <<<"$out")"
        fi
        # And holds no string the sources no longer have (update-po makes
        # those obsolete, which is fine).
        if out=$(msgcmp --use-untranslated --use-fuzzy "$pot" "$po" 2>&1); then
            ok "$lang.po has no string the sources no longer mark"
        else
            not_ok "$lang.po has no string the sources no longer mark" \
                "$(grep -v 'warning: this message is not used' <<<"$out")"
        fi
    done
else
    not_ok "the template extracts from po/POTFILES.in" "$out"
fi

# --- every source that marks strings is in POTFILES.in -----------------------
mapfile -t listed < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$src/po/POTFILES.in")
unlisted=()
cd "$src"
while IFS= read -r f; do
    printf '%s\n' "${listed[@]}" | grep -qxF "$f" || unlisted+=("$f")
done < <({
    grep -lE '(^|[^[:alnum:]_])(N?C?_|g_dngettext|g_dpgettext2?|ngettext)[[:space:]]*\(' \
        agent/*.c agent/*.h ui/*.c ui/*.h keymod/*.c keymod/*.h 2>/dev/null || true
    grep -l 'translatable="yes"' ui/*.ui 2>/dev/null || true
    ls -1 data/*.desktop data/*.metainfo.xml data/*.gschema.xml data/*.gschema.xml.in \
        2>/dev/null || true
} | sort -u)
cd - >/dev/null
if [ ${#unlisted[@]} -eq 0 ]; then
    ok "po/POTFILES.in lists every source with translatable strings"
else
    not_ok "po/POTFILES.in lists every source with translatable strings" \
        "not listed: ${unlisted[*]}"
fi

# --- the build tree holds what the tests and the install use -----------------
for lang in "${po_langs[@]}"; do
    mo=$build/locale/$lang/LC_MESSAGES/$package.mo
    if [ -f "$mo" ] && [ ! "$mo" -ot "$src/po/$lang.po" ]; then
        ok "$mo is built and current"
    else
        not_ok "$mo is built and current (cmake --build rebuilds it)"
    fi
done
# The catalogue is found where ECRYPTFS_TOKEN_AGENT_LOCALEDIR points tests.
if [ -f "$build/locale/de/LC_MESSAGES/$package.mo" ]; then
    shown=$(TEXTDOMAINDIR=$build/locale LANGUAGE=de LC_ALL=C.UTF-8 \
            gettext -d "$package" "Unlock Token")
    if [ "$shown" = "Token entsperren" ]; then
        ok "the built German catalogue translates \"Unlock Token\""
    else
        not_ok "the built German catalogue translates \"Unlock Token\"" "got: $shown"
    fi
fi

desktop=$build/data/$app_id.desktop
metainfo=$build/data/$app_id.metainfo.xml
for lang in "${po_langs[@]}"; do
    if [ -f "$desktop" ] && grep -q "^Name\[$lang\]=" "$desktop" \
            && grep -q "^Comment\[$lang\]=" "$desktop"; then
        ok "$app_id.desktop in the build tree has Name and Comment in $lang"
    else
        not_ok "$app_id.desktop in the build tree has Name and Comment in $lang"
    fi
    if [ -f "$metainfo" ] && [ "$(grep -c "xml:lang=\"$lang\"" "$metainfo")" -ge 3 ]; then
        ok "$app_id.metainfo.xml in the build tree has name, summary and description in $lang"
    else
        not_ok "$app_id.metainfo.xml in the build tree has name, summary and description in $lang"
    fi
done

if [ "$failures" -ne 0 ]; then
    echo "# $failures of $n checks failed"
    exit 1
fi
echo "# all $n checks passed"
