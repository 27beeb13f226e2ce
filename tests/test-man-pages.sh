#!/bin/bash
# Checks the manual pages as the build writes them from data/man/*.in: each
# has every path filled in, formats without a single groff warning (groff -ww,
# and man --warnings as man-db runs it), renders, has a NAME line whatis can
# read, is installed by data/man/CMakeLists.txt, and still documents what the
# programs offer:
#   - every command that `ecryptfs-token --help` prints is a command in
#     ecryptfs-token.1, and every long option it prints appears there;
#   - every option that `ecryptfs-token-agent --help-all` prints is in the
#     OPTIONS of ecryptfs-token-agent.1;
#   - every key (and group) of data/keymod.conf, every parameter of the key
#     module (the .option names in keymod/eta-keymod.c) and every environment
#     variable the key module reads appears in ecryptfs-token-agent-keymod.7.
# Things documented that the programs do not (yet) print are reported as
# notes, not failures.
#
# usage: tests/test-man-pages.sh ECRYPTFS-TOKEN ECRYPTFS-TOKEN-AGENT SOURCE-DIR MAN-DIR
#   ECRYPTFS-TOKEN        the built command-line tool
#   ECRYPTFS-TOKEN-AGENT  the built agent
#   SOURCE-DIR            the project's source tree
#   MAN-DIR               the pages the build wrote (<build>/data/man)
# Prints TAP-like ok / not ok lines; exits non-zero on any failure. A missing
# tool is a failure, not a skip.
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 ECRYPTFS-TOKEN ECRYPTFS-TOKEN-AGENT SOURCE-DIR MAN-DIR" >&2
    exit 2
fi
cli=$1
agent=$2
src=$(cd "$3" && pwd)
man_dir=$(cd "$4" && pwd)

# Formatting must not depend on the caller's locale or terminal.
export LC_ALL=C.UTF-8
export MANWIDTH=80
# man-db's seccomp sandbox fails in some containers; it guards nothing here.
export MAN_DISABLE_SECCOMP=1
unset MANPAGER PAGER MANOPT MANROFFOPT GROFF_SGR || true

tmp=$(mktemp -d /tmp/eta-man-pages.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
note() { echo "# NOTE: $1"; }

for tool in groff man lexgrog; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        not_ok "$tool is installed (packages groff-base, man-db)"
    fi
done
if [ "$failures" -ne 0 ]; then
    echo "1..$n"
    exit 1
fi

# Plain text for the drift checks: ASCII (so "\-" is "-"), no bold or
# underline, and lines long enough that no option is split across two.
render_text() {
    groff -man -Tascii -P-cbou -rLL=2000n "$1" 2>/dev/null
}

# The lines of section HEADING of a rendered page (headings start at
# column 0; the heading itself is left out).
section() {
    awk -v want="$2" '
        /^[^[:space:]]/ { inside = ($0 == want); next }
        inside { print }
    ' "$1"
}

# Whether TOKEN occurs in FILE as a whole word: not inside a longer option,
# command or variable name.
has_token() {
    grep -Eq -- "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)" "$2"
}

# ---- each page: formats cleanly, renders, is named and installed ----

pages=()
for page in "$man_dir"/*.[1-8]; do
    [ -e "$page" ] && pages+=("$page")
done
for expected in ecryptfs-token-agent.1 ecryptfs-token.1 ecryptfs-token-agent-keymod.7; do
    if [ ! -f "$man_dir/$expected" ]; then
        not_ok "$expected exists in $man_dir"
    fi
done

for page in "${pages[@]}"; do
    name=$(basename "$page")
    title=${name%.*}
    sect=${name##*.}

    if left=$(grep -o '@[A-Za-z0-9_]*@' "$page"); then
        not_ok "$name: every path is filled in" "left as in the template: $(sort -u <<<"$left" | paste -sd' ')"
    else
        ok "$name: every path is filled in"
    fi

    if groff -man -Tutf8 -ww -z "$page" >"$tmp/out" 2>"$tmp/err" && [ ! -s "$tmp/err" ]; then
        ok "$name: groff -man -Tutf8 -ww reports no warning"
    else
        not_ok "$name: groff -man -Tutf8 -ww reports no warning" "$(cat "$tmp/err")"
    fi

    if man --warnings -E UTF-8 -l "$page" >"$tmp/man.txt" 2>"$tmp/err" && [ ! -s "$tmp/err" ]; then
        ok "$name: man --warnings reports nothing"
    else
        not_ok "$name: man --warnings reports nothing" "$(cat "$tmp/err")"
    fi

    if groff -man -Tutf8 -P-cbou "$page" >"$tmp/rendered" 2>"$tmp/err" && [ -s "$tmp/rendered" ] \
            && grep -q '^NAME' "$tmp/rendered" && grep -q '^SYNOPSIS' "$tmp/rendered" \
            && grep -q '^DESCRIPTION' "$tmp/rendered" && grep -q '^SEE ALSO' "$tmp/rendered"; then
        ok "$name: renders, with NAME, SYNOPSIS, DESCRIPTION and SEE ALSO"
    else
        not_ok "$name: renders, with NAME, SYNOPSIS, DESCRIPTION and SEE ALSO" \
               "$(head -c 2000 "$tmp/err" "$tmp/rendered")"
    fi

    th=$(sed -n 's/^\.TH[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\).*/\1 \2/p' "$page" | head -n1)
    th_title=${th% *}
    th_sect=${th#* }
    if [ "${th_title,,}" = "${title,,}" ] && [ "$th_sect" = "$sect" ]; then
        ok "$name: .TH names $title($sect)"
    else
        not_ok "$name: .TH names $title($sect)" ".TH says: $th"
    fi

    if whatis_line=$(lexgrog "$page" 2>&1) && grep -Fq -- "\"$title - " <<<"$whatis_line"; then
        ok "$name: whatis can read its NAME line"
    else
        not_ok "$name: whatis can read its NAME line" "$whatis_line"
    fi

    if grep -Eq -- "(^|[[:space:](/])$name([[:space:])]|\$)" "$src/data/man/CMakeLists.txt"; then
        ok "$name: installed by data/man/CMakeLists.txt"
    else
        not_ok "$name: installed by data/man/CMakeLists.txt"
    fi
done

# ---- ecryptfs-token: commands and options of --help ----

token_page=$man_dir/ecryptfs-token.1
render_text "$token_page" >"$tmp/token.txt"
section "$tmp/token.txt" COMMANDS >"$tmp/token-commands.txt"

if LC_ALL=C "$cli" --help >"$tmp/cli-help" 2>"$tmp/err"; then
    ok "ecryptfs-token --help runs"
else
    not_ok "ecryptfs-token --help runs" "$(cat "$tmp/err" "$tmp/cli-help")"
fi
# The command list: the lines after "Commands:" up to a blank or unindented
# line, at the indentation of the first one (deeper lines continue a command).
awk '
    tolower($0) ~ /^[[:space:]]*commands:?[[:space:]]*$/ { inside = 1; indent = -1; next }
    inside && (/^[[:space:]]*$/ || /^[^[:space:]]/) { inside = 0 }
    inside {
        match($0, /^[[:space:]]*/)
        if (indent < 0) indent = RLENGTH
        if (RLENGTH == indent && $1 ~ /^[a-z][a-z0-9-]*$/) print $1
    }
' "$tmp/cli-help" | sort -u >"$tmp/cli-commands"
if [ -s "$tmp/cli-commands" ]; then
    ok "ecryptfs-token --help lists commands ($(paste -sd' ' "$tmp/cli-commands"))"
else
    not_ok "ecryptfs-token --help lists commands under a \"Commands:\" line" "$(cat "$tmp/cli-help")"
fi

# Commands the page documents: the tags of its COMMANDS section.
awk '
    /^[[:space:]]*$/ { next }
    { match($0, /^[[:space:]]*/); if (min == "" || RLENGTH < min) min = RLENGTH; line[NR] = $0; ind[NR] = RLENGTH; first[NR] = $1 }
    END { for (i in line) if (ind[i] == min) print first[i] }
' "$tmp/token-commands.txt" | sort -u >"$tmp/page-commands"

missing=$(comm -23 "$tmp/cli-commands" "$tmp/page-commands")
if [ -z "$missing" ]; then
    ok "every command of ecryptfs-token --help is in ecryptfs-token.1's COMMANDS"
else
    not_ok "every command of ecryptfs-token --help is in ecryptfs-token.1's COMMANDS" \
           "missing: $(paste -sd' ' <<<"$missing")"
fi
extra=$(comm -13 "$tmp/cli-commands" "$tmp/page-commands")
if [ -n "$extra" ] && [ -s "$tmp/cli-commands" ]; then
    note "ecryptfs-token.1 documents commands that ecryptfs-token --help does not list: $(paste -sd' ' <<<"$extra")"
fi

grep -Eo -- '--[a-z][a-z0-9-]*' "$tmp/cli-help" | sort -u >"$tmp/cli-options" || true
missing=
while read -r option; do
    has_token "$option" "$tmp/token.txt" || missing="$missing $option"
done <"$tmp/cli-options"
if [ -z "$missing" ]; then
    ok "every option in ecryptfs-token --help is in ecryptfs-token.1 ($(paste -sd' ' "$tmp/cli-options"))"
else
    not_ok "every option in ecryptfs-token --help is in ecryptfs-token.1" "missing:$missing"
fi

# ---- ecryptfs-token-agent: the options of --help-all ----

agent_page=$man_dir/ecryptfs-token-agent.1
render_text "$agent_page" >"$tmp/agent.txt"
section "$tmp/agent.txt" OPTIONS >"$tmp/agent-options.txt"

if LC_ALL=C "$agent" --help-all >"$tmp/agent-help" 2>"$tmp/err"; then
    ok "ecryptfs-token-agent --help-all runs"
else
    not_ok "ecryptfs-token-agent --help-all runs" "$(cat "$tmp/err" "$tmp/agent-help")"
fi
# Option lines start with a dash: "  -p, --provider=PATH   Load ...".
awk '/^[[:space:]]+-/ { print $1, $2 }' "$tmp/agent-help" |
    grep -Eo -- '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' | tr -d ' ,' | sort -u >"$tmp/agent-opts"
if grep -q -- '^--' "$tmp/agent-opts"; then
    ok "ecryptfs-token-agent --help-all lists options ($(paste -sd' ' "$tmp/agent-opts"))"
else
    not_ok "ecryptfs-token-agent --help-all lists long options" "$(cat "$tmp/agent-help")"
fi
missing=
while read -r option; do
    has_token "$option" "$tmp/agent-options.txt" || missing="$missing $option"
done <"$tmp/agent-opts"
if [ -z "$missing" ]; then
    ok "every option of ecryptfs-token-agent --help-all is in ecryptfs-token-agent.1's OPTIONS"
else
    not_ok "every option of ecryptfs-token-agent --help-all is in ecryptfs-token-agent.1's OPTIONS" \
           "missing:$missing"
fi
extra=
while read -r option; do
    grep -qxF -- "$option" "$tmp/agent-opts" || extra="$extra $option"
done < <(grep -Eo -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' "$tmp/agent-options.txt" |
             grep -Eo -- '--[a-z][a-z0-9-]*' | sort -u)
if [ -n "$extra" ]; then
    note "ecryptfs-token-agent.1 documents options that --help-all does not list:$extra"
fi

# ---- the key module: config keys, parameters, environment ----

keymod_page=$man_dir/ecryptfs-token-agent-keymod.7
render_text "$keymod_page" >"$tmp/keymod.txt"
section "$tmp/keymod.txt" PARAMETERS >"$tmp/keymod-params.txt"

conf=$src/data/keymod.conf
sed -n 's/^[[:space:]]*\([A-Za-z0-9_.-]\{1,\}\)[[:space:]]*=.*/\1/p' "$conf" | sort -u >"$tmp/conf-keys"
sed -n 's/^[[:space:]]*\(\[[^]]*\]\)[[:space:]]*$/\1/p' "$conf" | sort -u >"$tmp/conf-groups"
if [ -s "$tmp/conf-keys" ]; then
    ok "data/keymod.conf has keys ($(paste -sd' ' "$tmp/conf-keys"))"
else
    not_ok "data/keymod.conf has keys"
fi
missing=
while read -r key; do
    has_token "$key" "$tmp/keymod.txt" || missing="$missing $key"
done <"$tmp/conf-keys"
while read -r group; do
    grep -qF -- "$group" "$tmp/keymod.txt" || missing="$missing $group"
done <"$tmp/conf-groups"
if [ -z "$missing" ]; then
    ok "every key and group of data/keymod.conf is in ecryptfs-token-agent-keymod.7"
else
    not_ok "every key and group of data/keymod.conf is in ecryptfs-token-agent-keymod.7" \
           "missing:$missing"
fi

sed -n 's/.*\.option[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$src/keymod/eta-keymod.c" |
    sort -u >"$tmp/params"
for param in fingerprint padding pubkey; do
    if ! grep -qx -- "$param" "$tmp/params"; then
        not_ok "keymod/eta-keymod.c declares the parameter $param (.option = \"$param\")"
    fi
done
missing=
while read -r param; do
    grep -Eq -- "^[[:space:]]+$param=" "$tmp/keymod-params.txt" || missing="$missing $param"
done <"$tmp/params"
if [ -z "$missing" ]; then
    ok "every key module parameter is in ecryptfs-token-agent-keymod.7's PARAMETERS ($(paste -sd' ' "$tmp/params"))"
else
    not_ok "every key module parameter is in ecryptfs-token-agent-keymod.7's PARAMETERS" \
           "missing:$missing"
fi

grep -ohE -- 'getenv[[:space:]]*\([[:space:]]*"[A-Z0-9_]+"' "$src"/keymod/*.c |
    grep -oE -- '"[A-Z0-9_]+"' | tr -d '"' | sort -u >"$tmp/keymod-env"
missing=
while read -r var; do
    has_token "$var" "$tmp/keymod.txt" || missing="$missing $var"
done <"$tmp/keymod-env"
if [ -s "$tmp/keymod-env" ] && [ -z "$missing" ]; then
    ok "every environment variable the key module reads is in ecryptfs-token-agent-keymod.7 ($(paste -sd' ' "$tmp/keymod-env"))"
else
    not_ok "every environment variable the key module reads is in ecryptfs-token-agent-keymod.7" \
           "missing:$missing"
fi

echo "1..$n"
if [ "$failures" -ne 0 ]; then
    echo "# $failures of $n checks failed" >&2
    exit 1
fi
