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

# ---- The fault PKCS#11 module under the agent ----
# With run-token-scenarios.py --fault-module the agent runs on
# libeta-fault-pkcs11.so wrapping SoftHSM2 (token.env: ETA_TOKEN_FAULT=1,
# ETA_TOKEN_SPEED_MS = the delay of every decryption, ETA_TOKEN_BACKUP_LABEL
# = a second token holding the same key, or empty), and the host's
# fault-bus.py serves the module's counters and control keys on the bus.
TOK_FAULT_NAME=org.ecryptfs.TestFault1
TOK_FAULT_PATH=/org/ecryptfs/TestFault1

tok_fault_require() {
    [ "${ETA_TOKEN_FAULT:-0}" = 1 ] ||
        eta_fail "needs the agent on the fault module (run-token-scenarios.py --fault-module)"
    tok_fault_call GetControl ||
        eta_fail "the host's fault-bus.py does not answer: $(cat "$ETA_WORK/fault.out")"
}

tok_fault_call() {
    _m=$1; shift
    timeout 10 gdbus call --session --dest "$TOK_FAULT_NAME" --object-path "$TOK_FAULT_PATH" \
        --method "$TOK_FAULT_NAME.$_m" "$@" > "$ETA_WORK/fault.out" 2>&1
}

# tok_fault_counter NAME: a counter of the module ("decrypt_calls", ...).
tok_fault_counter() {
    tok_fault_call GetCounter "$1" || eta_fail "GetCounter $1: $(cat "$ETA_WORK/fault.out")"
    sed -n 's/^(uint64 \([0-9]*\),)$/\1/p' "$ETA_WORK/fault.out"
}

# tok_fault_status KEY: a status key ("present", "absent_tokens", ...).
tok_fault_status() {
    tok_fault_call GetStatus "$1" || eta_fail "GetStatus $1: $(cat "$ETA_WORK/fault.out")"
    sed -n "s/^('\(.*\)',)$/\1/p" "$ETA_WORK/fault.out"
}

# tok_fault_set KEY VALUE: a control key ("" removes it), for example
# tok_fault_set absent_tokens "$ETA_TOKEN_LABEL" to pull the token out.
tok_fault_set() {
    tok_fault_call Set "$1" "$2" || eta_fail "Set $1=$2: $(cat "$ETA_WORK/fault.out")"
}

# Token operations (C_Decrypt calls on any token) so far.
tok_token_ops() { tok_fault_counter decrypt_calls; }
# tok_ops_mark, then tok_ops_since: the operations in between.
tok_ops_mark() { TOK_OPS_MARK=$(tok_token_ops); }
tok_ops_since() { echo $(($(tok_token_ops) - ${TOK_OPS_MARK:-0})); }

# tok_unlock: log in to a token holding the key without decrypting anything
# (the agent's Unlock); the caller asks for the PIN step first.
tok_unlock() {
    tok_agent_call Unlock "$ETA_TOKEN_FPR" "@a{sv} {}" ||
        eta_fail "Unlock failed: $(cat "$ETA_WORK/bus.out")"
}

# tok_logged_in_label: the label of a token the agent has logged in, if any.
tok_logged_in_label() {
    tok_agent_call ListTokens || return 1
    tr '{' '\n' < "$ETA_WORK/bus.out" | grep "'state': <'logged-in'>" |
        sed -n "s/.*'label': <'\([^']*\)'>.*/\1/p" | head -n 1
}

# tok_token_listed LABEL: the agent lists a token with that label.
tok_token_listed() {
    tok_agent_call ListTokens || return 1
    grep -q "'label': <'$1'>" "$ETA_WORK/bus.out"
}

# The key module's budget for the kernel's wait (the shipped modprobe
# file's), in ms: five sixths of it (3 s: 2500, 30 s: 25000).  ecryptfsd
# reads nothing else while one unwrap waits, and the opens queued behind it
# age meanwhile: when a prompt outlives the budget, the rest of the wait is
# what ecryptfsd has to fail the queue fast before it goes stale (measured:
# 100 opens behind an unanswered PIN prompt killed ecryptfsd with 0.5 s
# left in 3 runs of 6, with 5 s left in none of 3).
tok_budget_ms() { echo $(($(eta_wait_timeout) * 1000 * 5 / 6)); }

# tok_keymod_conf FILE [LINE...]: a key module config with that budget
# (tok_budget_ms) and LINEs after it.
tok_keymod_conf() {
    _f=$1; shift
    { echo '[keymod]'
      echo "unwrap_timeout_ms=$(tok_budget_ms)"
      for _l in "$@"; do echo "$_l"; done
    } > "$_f"
}

# tok_parallel_read UPPER REF NAME...: opens UPPER/NAME for every NAME at
# once (one process each) and compares each with REF/NAME; prints how many
# failed (read error or different content). Errors in $ETA_WORK/par/*.err.
tok_parallel_read() {
    _u=$1 _r=$2; shift 2
    rm -rf "$ETA_WORK/par"
    mkdir -p "$ETA_WORK/par"
    _pids=
    for _n in "$@"; do
        (if cat "$_u/$_n" > "$ETA_WORK/par/$_n" 2> "$ETA_WORK/par/$_n.err" &&
                cmp -s "$ETA_WORK/par/$_n" "$_r/$_n"; then
             echo 0
         else
             echo 1
         fi > "$ETA_WORK/par/$_n.rc") &
        _pids="$_pids $!"
    done
    # shellcheck disable=SC2086 # one pid a word; not "wait" alone: ecryptfsd is a job too
    wait $_pids
    cat "$ETA_WORK"/par/*.rc | grep -c -v '^0$'
}

# tok_make_files DIR N [PREFIX]: N small different files DIR/PREFIXnnn.
tok_make_files() {
    mkdir -p "$1"
    _seed=$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')
    awk -v n="$2" -v dir="$1" -v p="${3:-f}" -v seed="$_seed" 'BEGIN {
        srand(seed)
        for (i = 1; i <= n; i++) {
            f = sprintf("%s/%s%03d", dir, p, i)
            s = p i ":"
            for (k = 0; k < 12; k++) s = s sprintf("%08x", int(rand() * 4294967295))
            print s > f
            close(f)
        }
    }'
}

# tok_epoch_id LOWERFILE: a digest of the RSA(K) in the file's first tag 1
# packet when it holds an epoch packet (keymod/epoch-format.md): files of one
# epoch share it. Prints nothing for plain RSA.
tok_epoch_id() {
    _hex=$(od -An -v -tx1 -j26 -N1200 "$1" | tr -s ' \n' '  ')
    # shellcheck disable=SC2086 # one byte a word
    set -- $_hex
    [ "$1" = 01 ] || return 0
    _l=$((0x$2))
    if [ $_l -lt 192 ]; then _hl=1; else _hl=2; fi
    # tag, length, version, key id (8), algorithm: then the encrypted key
    shift $((1 + _hl + 1 + 8 + 1))
    [ "$1$2$3$4" = 45544145 ] || return 0
    _kl=$((0x$7$8))
    shift 8
    echo "$@" | cut -d' ' -f1-"$_kl" | md5sum | cut -c1-16
}

# tok_drop_caches: the kernel forgets unused inodes, so the next open of an
# eCryptfs file reads its header and asks for its key again.
tok_drop_caches() {
    sync
    echo 3 > /proc/sys/vm/drop_caches
}

# tok_speed_start [LINE...]: for the scenarios at token speed: the agent on
# the fault module, ecryptfsd with a key module config whose budget matches
# the kernel's wait (tok_keymod_conf, LINEs added), and the start of the
# operation count (tok_ops_mark).
tok_speed_start() {
    tok_fault_require
    tok_agent start
    tok_keymod_conf "$ETA_WORK/keymod.conf" "$@"
    ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF=$ETA_WORK/keymod.conf tok_start_ecryptfsd
    tok_ops_mark
}

# tok_epoch_padding LOWERFILE: the padding of RSA(K) in the file's epoch
# packet, "oaep" (01) or "pkcs1" (02); nothing for plain RSA.
tok_epoch_padding() {
    # shellcheck disable=SC2046 # one byte a word
    set -- $(od -An -v -tx1 -j26 -N40 "$1")
    [ "$1" = 01 ] || return 0
    if [ $((0x$2)) -lt 192 ]; then shift 2; else shift 3; fi
    shift 10
    [ "$1$2$3$4" = 45544145 ] || return 0
    case $6 in 01) echo oaep ;; 02) echo pkcs1 ;; *) echo "unknown-$6" ;; esac
}
