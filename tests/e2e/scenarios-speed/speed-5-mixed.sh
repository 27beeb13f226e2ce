#!/bin/sh
# 5. One folder holding plain RSA files (written on a mount with
# wrap=per-file, one token operation each, as the upstream modules write
# them) and epoch files (one operation for the epoch): a plain mount reads
# them all, at 3 + 1 token operations.  Then the token+passphrase fallback:
# a mount with the token's and a passphrase's sig writes epoch files under
# both keys; with the agent stopped the passphrase opens them.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_speed_start
d=$ETA_WORK/d
upper=$ETA_WORK/upper
tok_make_files "$d/ref" 3 p
tok_make_files "$d/ref" 5 e
tok_pin write none
# The wrap mode lives in the auth token (one per sig in @u): a fresh one
# for each mount.
keyctl clear @u
tok_mount "$d/lower" "$upper" "$(tok_opts 16 :wrap=per-file)"
cp "$d"/ref/p* "$upper/" || eta_fail "writing on the wrap=per-file mount failed"
sync
eta_umount "$upper"
keyctl clear @u
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
cp "$d"/ref/e* "$upper/" || eta_fail "writing on the epoch mount failed"
sync
eta_umount "$upper"
for f in "$d"/lower/p*; do tok_check_tag1 "$f" "$ETA_TOKEN_SIG" rsa; done
for f in "$d"/lower/e*; do tok_check_tag1 "$f" "$ETA_TOKEN_SIG" epoch; done

tok_lock
tok_pin unlock right
tok_unlock
tok_pin read none
keyctl clear @u
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
tok_ops_mark
t0=$(eta_now)
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
ops=$(tok_ops_since)
tok_info "3 plain RSA + 5 epoch files read in $(tok_elapsed "$t0" "$(eta_now)") s: $ops token operation(s)"
[ "$ops" = 4 ] || eta_fail "3 per-file files and one epoch cost $ops token operations; expected 4"
eta_umount "$upper"

# --- the token and a passphrase, on one mount.
pw=eta-speed-passphrase
printf '%s' "$pw" | ecryptfs-add-passphrase - > "$ETA_WORK/add.log" 2>&1 ||
    { eta_show "$ETA_WORK/add.log"; eta_fail "ecryptfs-add-passphrase failed"; }
psig=$(sed -n 's/.*sig \[\([0-9a-f]\{16\}\)\].*/\1/p' "$ETA_WORK/add.log" | head -n 1)
[ -n "$psig" ] || eta_fail "no sig from ecryptfs-add-passphrase"
keyctl search @u user "$ETA_TOKEN_SIG" > /dev/null || eta_fail "the token's auth token is not in @u"
b=$ETA_WORK/both
mkdir -p "$b/lower" "$b/ref"
tok_make_files "$b/ref" 5 b
raw_mount() {
    mkdir -p "$upper"
    mount -i -t ecryptfs "$b/lower" "$upper" -o "$1,ecryptfs_cipher=aes,ecryptfs_key_bytes=16" \
        > "$ETA_WORK/mount.log" 2>&1 ||
        { eta_show "$ETA_WORK/mount.log"; eta_fail "mount -i -o $1 failed"; }
}
# Candidates are tried last-first: the token's sig last, so it goes first.
raw_mount "ecryptfs_sig=$psig,ecryptfs_sig=$ETA_TOKEN_SIG"
cp "$b"/ref/* "$upper/" || eta_fail "writing on the two-key mount failed"
sync
eta_umount "$upper"
for f in "$b"/lower/*; do
    tok_check_tag1 "$f" "$ETA_TOKEN_SIG" epoch
    tok_key_packets "$f" | grep -q '^3 ' || eta_fail "$f has no tag 3 (passphrase) packet"
done
tok_agent stop
raw_mount "ecryptfs_sig=$psig,ecryptfs_sig=$ETA_TOKEN_SIG"
for f in "$b"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
grep -q 'the agent is not running' "$ETA_WORK/ecryptfsd.log" ||
    { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "the token's unwrap was not tried first"; }
tok_info "two-key mount, agent stopped: 5 epoch files read through the passphrase"
eta_umount "$upper"
tok_agent start
tok_require_ecryptfsd "at the end"
exit 0
