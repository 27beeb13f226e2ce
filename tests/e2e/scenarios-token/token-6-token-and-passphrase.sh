#!/bin/sh
# 6. One mount with two keys (two ecryptfs_sig): the token's and a
# passphrase's.  Every new file's key is wrapped under both (a tag 1 packet
# with our key id and a tag 3 packet).  With the agent stopped, the files
# open through the passphrase: on the two-key mount (the token's unwrap
# fails and the kernel falls through) and on a passphrase-only mount; with
# the agent back, a token-only mount opens them too.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_agent stop
tok_pin agent-stopped none
tok_start_ecryptfsd
d=$TOK_SHARED/both
rm -rf "$d"
mkdir -p "$d/ref" "$d/lower"
upper=$ETA_WORK/upper
mkdir -p "$upper"

pw=eta-token-e2e-passphrase
printf '%s' "$pw" | ecryptfs-add-passphrase - > "$ETA_WORK/add.log" 2>&1 ||
    { eta_show "$ETA_WORK/add.log"; eta_fail "ecryptfs-add-passphrase failed"; }
psig=$(sed -n 's/.*sig \[\([0-9a-f]\{16\}\)\].*/\1/p' "$ETA_WORK/add.log" | head -n 1)
[ -n "$psig" ] || eta_fail "no sig from ecryptfs-add-passphrase"

# The token's auth token, with the agent stopped: from the certificate.
tok_mount "$ETA_WORK/scratch" "$upper" "$(TOK_FPR_OVERRIDE=$ETA_TOKEN_FPR16 tok_opts 16 ":pubkey=$ETA_TOKEN_CERT")"
eta_umount "$upper"
keyctl search @u user "$ETA_TOKEN_SIG" > /dev/null || eta_fail "the token's auth token is not in @u"

# mount.ecryptfs takes one key= option; the kernel takes many ecryptfs_sig.
# Raw mounts (mount -i), the keys being in root's keyring.
kopts=ecryptfs_cipher=aes,ecryptfs_key_bytes=16
raw_mount() {
    mount -i -t ecryptfs "$d/lower" "$upper" -o "$1,$kopts" > "$ETA_WORK/mount.log" 2>&1 ||
        { eta_show "$ETA_WORK/mount.log"; eta_fail "mount -i -o $1 failed"; }
}
# Candidates are tried last-first: the token's sig last, so it goes first.
raw_mount "ecryptfs_sig=$psig,ecryptfs_sig=$ETA_TOKEN_SIG"
sigs=$(eta_mount_sigs "$upper" | sort | tr '\n' ' ')
want=$(printf '%s\n%s\n' "$psig" "$ETA_TOKEN_SIG" | sort | tr '\n' ' ')
[ "$sigs" = "$want" ] || eta_fail "mount sigs '$sigs', expected '$want'"

printf 'under two keys\n' > "$d/ref/two.txt"
dd if=/dev/urandom of="$d/ref/random.bin" bs=1024 count=20 2> /dev/null
for i in 1 2 3 4 5; do echo "both $i $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$d/ref/b$i.txt"; done
cp "$d"/ref/* "$upper/" || { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "writing on the two-key mount failed"; }
sync
for f in "$d"/ref/*; do
    b=$(basename "$f")
    tok_check_tag1 "$d/lower/$b" "$ETA_TOKEN_SIG"
    tok_key_packets "$d/lower/$b" | grep -q '^3 ' || eta_fail "lower/$b has no tag 3 (passphrase) packet: $(tok_key_packets "$d/lower/$b" | tr '\n' ';')"
done
tok_info "key packets of a two-key file: $(tok_key_packets "$d/lower/two.txt" | tr '\n' ' ')"
eta_umount "$upper"

# Agent stopped, both keys: the token's unwrap fails, the passphrase opens.
raw_mount "ecryptfs_sig=$psig,ecryptfs_sig=$ETA_TOKEN_SIG"
t0=$(eta_now)
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
t1=$(eta_now)
grep -q 'the agent is not running' "$ETA_WORK/ecryptfsd.log" ||
    { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "the token's unwrap was not tried first (no 'agent is not running' in the key module's log)"; }
tok_info "two-key mount, agent stopped: 7 files read through the passphrase in $(tok_elapsed "$t0" "$t1") s"
eta_umount "$upper"

# The passphrase alone.
raw_mount "ecryptfs_sig=$psig"
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
eta_umount "$upper"

# The token alone, with the agent back (a fresh agent: one PIN prompt).
tok_agent start
tok_pin token-only right
raw_mount "ecryptfs_sig=$ETA_TOKEN_SIG"
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
eta_umount "$upper"
tok_require_ecryptfsd "at the end"
exit 0
