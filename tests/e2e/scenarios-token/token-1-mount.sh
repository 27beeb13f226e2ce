#!/bin/sh
# 1. Mount with the token's key while the token is locked: the key module
# gets the public key from the agent (ResolveKey never needs a PIN), nothing
# prompts (stdin /dev/null, verbosity=0; the host fails the step on any PIN
# prompt), and the mount's ecryptfs_sig is the key id the host computed.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_agent_on_bus || eta_fail "the agent is not on the bus at the start"
tok_lock
tok_pin mount none
tok_start_ecryptfsd

lower=$TOK_SHARED/mount1/lower
upper=$ETA_WORK/upper
t0=$(eta_now)
tok_mount "$lower" "$upper" "$(tok_opts 16)"
t1=$(eta_now)
msigs=$(eta_mount_sigs "$upper")
[ "$msigs" = "$ETA_TOKEN_SIG" ] || eta_fail "ecryptfs_sig '$msigs', expected exactly $ETA_TOKEN_SIG"
grep -i -q -E 'pin|passphrase:|selection' "$ETA_WORK/mount.log" &&
    { eta_show "$ETA_WORK/mount.log"; eta_fail "mount.ecryptfs printed a prompt"; }
tok_info "mount with the agent's public key: $(tok_elapsed "$t0" "$t1") s, ecryptfs_sig=$msigs"

# The auth token in root's user keyring: the key module's, under our sig.
id=$(keyctl search @u user "$ETA_TOKEN_SIG" 2> /dev/null) || eta_fail "no key $ETA_TOKEN_SIG in @u"
keyctl pipe "$id" > "$ETA_WORK/authtok" || eta_fail "keyctl pipe $id failed"
grep -a -q token-agent "$ETA_WORK/authtok" || eta_fail "the auth token does not name the token-agent module"

# Write and read back within the mount (the key is still in the kernel).
echo "written right after the mount" > "$upper/first.txt" || eta_fail "write first.txt"
[ "$(cat "$upper/first.txt")" = "written right after the mount" ] || eta_fail "first.txt reads back wrong"
tok_check_tag1 "$lower/first.txt" "$ETA_TOKEN_SIG"
eta_umount "$upper"

# A 16-digit fingerprint prefix names the same key.
keyctl clear @u
TOK_FPR_OVERRIDE=$ETA_TOKEN_FPR16 tok_mount "$lower" "$upper" "$(TOK_FPR_OVERRIDE=$ETA_TOKEN_FPR16 tok_opts 16)"
eta_umount "$upper"

# A key no token holds: the mount fails, at once and without a prompt.
keyctl clear @u
if mount -t ecryptfs "$lower" "$upper" -o "$(TOK_FPR_OVERRIDE=00000000000000000000000000000000 tok_opts 16)" \
        < /dev/null > "$ETA_WORK/bad-mount.log" 2>&1; then
    eta_fail "mount with an unknown fingerprint succeeded"
fi
grep -q " $upper ecryptfs " /proc/mounts && eta_fail "mounted with an unknown fingerprint"

state=$(tok_token_state)
[ "$state" != logged-in ] || eta_fail "the token got logged in by a mount"
tok_require_ecryptfsd "after the mounts"
exit 0
