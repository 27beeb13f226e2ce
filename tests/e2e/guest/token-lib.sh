# Helpers for the token scenarios (scenarios-token/): ". /usr/share/eta-e2e/token-lib.sh"
# after lib.sh.  The host side is run-token-scenarios.py: it made the
# SoftHSM2 token, runs the agent on a pseudo-terminal and plays the person at
# its keyboard.
#
# Talking to the host driver: the guest writes request lines on the console,
#   ETA-TOKEN AGENT stop|start|restart    stop or (re)start the agent
#   ETA-TOKEN PIN <step> <actions> <n>     how to answer the next PIN prompts
#   ETA-TOKEN INFO <scenario> <text>        a line for the host's report
# and waits for the effect where it can see one (the agent's bus name, the
# token's state through the agent's ListTokens).  The guest cannot type a
# PIN or otherwise drive the agent's terminal: the driver only reads the
# console.  A PIN request must be written before the action that makes the
# agent prompt: the driver reads the console up to its end whenever a prompt
# appears, and the request line got there first.
#
# <actions> is a comma-separated list, one per prompt, in order:
#   right | wrong | cancel    type the PIN / a wrong PIN / an empty line
#   ACTION@MS                 the same, MS milliseconds after the prompt
#   none                      no prompt may appear
# <n> is the number of prompts the step must see (N or MIN-MAX); the driver
# checks it when the next request arrives or the scenario ends, and answers
# any prompt beyond the list with an empty line and a failure.

# From the host (run-token-scenarios.py writes it): ETA_TOKEN_FPR,
# ETA_TOKEN_SIG, ETA_TOKEN_LABEL, ETA_TOKEN_KEY_LABEL, ETA_TOKEN_BITS.
[ -r /etc/eta-token/token.env ] || eta_fail "/etc/eta-token/token.env missing (run through run-token-scenarios.py)"
. /etc/eta-token/token.env
# shellcheck disable=SC2034 # for the scenarios
ETA_TOKEN_CERT=/etc/eta-token/cert.pem
# shellcheck disable=SC2034
ETA_TOKEN_FPR16=$(echo "$ETA_TOKEN_FPR" | cut -c1-16)
# Files shared between scenarios (the /tmp tmpfs survives them).
TOK_SHARED=/tmp/eta/token-shared
mkdir -p "$TOK_SHARED"

TOK_NAME=org.ecryptfs.TokenAgent1
TOK_PATH=/org/ecryptfs/TokenAgent1

tok_host() {
    printf 'ETA-TOKEN %s\n' "$*" > /dev/console
    # The console line reaches the host before anything this scenario does
    # next can reach the agent; the pause is a margin on top.
    usleep 100000
}

tok_info() {
    eta_log "$*"
    tok_host "INFO $ETA_SCENARIO $*"
}

# tok_pin STEP ACTIONS [COUNT]
tok_pin() {
    _n=${3:-}
    if [ -z "$_n" ]; then
        if [ "$2" = none ]; then _n=0; else _n=$(echo "$2" | tr ',' '\n' | wc -l); fi
    fi
    tok_host "PIN $ETA_SCENARIO/$1 $2 $_n"
}

# Seconds (2 decimals) between two eta_now values.
tok_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# tok_between X LOW HIGH: LOW <= X < HIGH
tok_between() { awk -v x="$1" -v l="$2" -v h="$3" 'BEGIN { exit !(x >= l && x < h) }'; }

tok_bus_call() {
    timeout 10 gdbus call --session "$@" > "$ETA_WORK/bus.out" 2>&1
}

tok_agent_on_bus() {
    tok_bus_call --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.NameHasOwner "$TOK_NAME" &&
        grep -q '(true,)' "$ETA_WORK/bus.out"
}

tok_agent_call() {
    _m=$1; shift
    tok_bus_call --dest "$TOK_NAME" --object-path "$TOK_PATH" --method "$TOK_NAME.$_m" "$@"
}

# tok_agent start|stop|restart: ask the host and wait until the bus shows it.
tok_agent() {
    tok_host "AGENT $1"
    _want=true
    [ "$1" = stop ] && _want=false
    _i=0
    while [ $_i -lt 60 ]; do
        if tok_agent_on_bus; then _has=true; else _has=false; fi
        [ "$_has" = "$_want" ] && return 0
        usleep 250000
        _i=$((_i + 1))
    done
    eta_fail "agent $1: the agent's bus name is still $( [ "$_want" = true ] && echo missing || echo owned ) after 15 s"
}

# The token's state as the agent reports it: logged-in, present...
tok_token_state() {
    tok_agent_call ListTokens || { cat "$ETA_WORK/bus.out"; return 1; }
    sed -n "s/.*'state': <'\([a-z-]*\)'>.*/\1/p" "$ETA_WORK/bus.out" | head -n 1
}

# Log the token out (the agent's Lock method) and check it is.
tok_lock() {
    tok_agent_call Lock || eta_fail "Lock failed: $(cat "$ETA_WORK/bus.out")"
    _s=$(tok_token_state)
    if [ -z "$_s" ] || [ "$_s" = logged-in ]; then
        eta_fail "token state after Lock: '$_s'"
    fi
}

# tok_wait_state STATE SECONDS
tok_wait_state() {
    _i=0
    while [ $_i -lt $(($2 * 4)) ]; do
        [ "$(tok_token_state)" = "$1" ] && return 0
        usleep 250000
        _i=$((_i + 1))
    done
    return 1
}

# ecryptfsd with the key module's messages in its log.
tok_start_ecryptfsd() {
    ECRYPTFS_TOKEN_AGENT_KEYMOD_STDERR=1 eta_start_ecryptfsd "$@"
}

# tok_opts KEY_BYTES [MODULE_PARAMS]: mount options for the token key;
# MODULE_PARAMS (":padding=pkcs1", ":pubkey=...") follow the fingerprint.
tok_opts() {
    _fpr=${TOK_FPR_OVERRIDE:-$ETA_TOKEN_FPR}
    echo "key=token-agent:fingerprint=$_fpr${2:-},ecryptfs_cipher=aes,ecryptfs_key_bytes=$1,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache,verbosity=0"
}

# tok_mount LOWER UPPER OPTS: mount and check the token's sig is the mount's.
tok_mount() {
    eta_mount_ecryptfs "$1" "$2" "$3"
    _sigs=$(eta_mount_sigs "$2" | tr '\n' ' ')
    case " $_sigs" in
        *" $ETA_TOKEN_SIG "*) ;;
        *) eta_fail "mount $2: ecryptfs_sig is '$_sigs', expected $ETA_TOKEN_SIG" ;;
    esac
}

# The eCryptfs key packets of a lower file, one per line: "1 KEYID LENGTH KIND"
# (tag 1: public key, key id = 16 hex digits; KIND "epoch" when the encrypted
# key is an epoch packet, starting "ETAE" (keymod/epoch-format.md), else
# "rsa") or "3 - LENGTH" / "11 - LENGTH" (a passphrase's tag 3 and the tag 11
# after it).
# Header: size (8), marker (8), flags (4), extent size (4), extents (2), then
# the packets; lengths are OpenPGP style (1 byte < 192, else 2 bytes).
tok_key_packets() {
    od -An -v -tx1 -j26 -N1200 "$1" | tr ' ' '\n' | grep -v '^$' | awk '
        function hex(x) { return (index("0123456789abcdef", substr(x, 1, 1)) - 1) * 16 + index("0123456789abcdef", substr(x, 2, 1)) - 1 }
        BEGIN { n = 0 }
        { b[n] = hex($1); h[n] = $1; n++ }
        END {
            i = 0
            while (i < n) {
                # packet types: tag 1 0x01, tag 3 0x8c, tag 11 0xed
                tag = b[i]
                if (tag == 1) name = 1
                else if (tag == 140) name = 3
                else if (tag == 237) name = 11
                else break
                l = b[i + 1]
                if (l < 192) { len = l; hl = 1 }
                else if (l < 224) { len = (l - 192) * 256 + b[i + 2] + 192; hl = 2 }
                else break
                body = i + 1 + hl
                if (name == 1) {
                    id = ""
                    for (k = 1; k <= 8; k++) id = id h[body + k]
                    # version, key id, algorithm, then the encrypted key
                    magic = h[body + 10] h[body + 11] h[body + 12] h[body + 13]
                    printf "1 %s %d %s\n", id, len, magic == "45544145" ? "epoch" : "rsa"
                } else printf "%d - %d\n", name, len
                i = body + len
            }
        }'
}

# tok_check_tag1 LOWERFILE SIG [KIND]: the file has a tag 1 packet for SIG
# (key id bytes = the sig) holding either plain RSA of the size a key of
# ETA_TOKEN_BITS gives, or an epoch packet around an RSA(K) of that size:
# header 8, RSA(K), nonce 12, sealed payload (cipher code, FEK, checksum:
# at most 67 bytes), tag 16, and at most 512 bytes in all. KIND "rsa" or
# "epoch" asks for that one only.
tok_check_tag1() {
    _pk=$(tok_key_packets "$1")
    _m=$((ETA_TOKEN_BITS / 8))
    _plain=$((1 + 8 + 1 + _m))
    _min=$((1 + 8 + 1 + 8 + _m + 12 + 1 + 16))
    _max=$((1 + 8 + 1 + 8 + _m + 12 + 67 + 16))
    echo "$_pk" | awk -v id="$2" -v kind="${3:-}" -v plain="$_plain" -v min="$_min" \
            -v max="$_max" '
        $1 == 1 && $2 == id && (kind == "" || kind == $4) {
            if ($4 == "rsa" && $3 == plain) found = 1
            if ($4 == "epoch" && $3 >= min && $3 <= max && $3 - 10 <= 512) found = 1
        }
        END { exit !found }' ||
        eta_fail "$1: no tag 1 packet for key id $2 (${3:-rsa or epoch}: $_plain bytes, or an epoch packet of $_min..$_max); packets: $(echo "$_pk" | tr '\n' ';') header: $(od -An -tx1 -j26 -N16 "$1" | tr -s ' ')"
}

# tok_read_fails_eio FILE: reading FILE must fail with EIO; prints the seconds.
tok_read_fails_eio() {
    _t0=$(eta_now)
    if cat "$1" > "$ETA_WORK/read.out" 2> "$ETA_WORK/read.err"; then
        eta_fail "reading $1 succeeded; expected EIO"
    fi
    _t1=$(eta_now)
    grep -q 'Input/output error' "$ETA_WORK/read.err" ||
        eta_fail "reading $1 failed, but not with EIO: $(cat "$ETA_WORK/read.err")"
    tok_elapsed "$_t0" "$_t1"
}

# tok_read_same FILE REF: FILE reads back as REF; prints the seconds.
tok_read_same() {
    _t0=$(eta_now)
    cat "$1" > "$ETA_WORK/read.out" 2> "$ETA_WORK/read.err" ||
        { eta_show "$ETA_WORK/ecryptfsd.log" >&2; eta_fail "reading $1 failed: $(cat "$ETA_WORK/read.err")"; }
    _t1=$(eta_now)
    cmp -s "$ETA_WORK/read.out" "$2" || eta_fail "$1 does not read back as $2"
    tok_elapsed "$_t0" "$_t1"
}

tok_require_ecryptfsd() {
    eta_ecryptfsd_alive || { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "ecryptfsd died: $1"; }
}

# Kernel messages since the last tok_dmesg_mark.
tok_dmesg_mark() { TOK_DMESG_LINES=$(dmesg | wc -l); }
tok_dmesg_new() { dmesg | tail -n +$((${TOK_DMESG_LINES:-0} + 1)); }
