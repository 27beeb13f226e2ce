#!/bin/sh
# 3. Remount and read with the agent running: the first open asks for the
# PIN (typed by the host), every file reads back identical.  Then AES-256
# (OAEP) and PKCS#1 v1.5 padding (padding=pkcs1 as a mount parameter), each
# written, remounted and read.  The PKCS#1 file's epoch packet names PKCS#1
# (the padding really is what the mount asked for), and it opens through an
# OAEP auth token too: the packet, not the auth token, tells the padding.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

dir=$TOK_SHARED/aes128
[ -f "$dir/ref/hello.txt" ] || eta_fail "scenario 2 left no files in $dir"
tok_agent start
tok_start_ecryptfsd
upper=$ETA_WORK/upper

# --- AES-128, OAEP: the files scenario 2 wrote with the agent stopped.
tok_pin unlock right
tok_mount "$dir/lower" "$upper" "$(tok_opts 16)"
s=$(tok_read_same "$upper/hello.txt" "$dir/ref/hello.txt") || exit 1
tok_info "AES-128/OAEP: first open with the PIN typed at once: $s s"
tok_pin read none
for f in "$dir"/ref/*; do
    tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null
done
eta_umount "$upper"
mkdir -p "$ETA_WORK/u2"
eta_mount_ecryptfs "$dir/lower-pubkey" "$ETA_WORK/u2" "$(tok_opts 16)"
tok_read_same "$ETA_WORK/u2/pub.txt" "$dir/ref/f1.txt" > /dev/null
eta_umount "$ETA_WORK/u2"

# write_remount_read NAME KEY_BYTES MODULE_PARAMS
write_remount_read() {
    d=$TOK_SHARED/$1
    rm -rf "$d"
    mkdir -p "$d/ref"
    tok_mount "$d/lower" "$upper" "$(tok_opts "$2" "$3")"
    dd if=/dev/urandom of="$d/ref/random.bin" bs=1000 count=33 2> /dev/null
    echo "$1 text" > "$d/ref/text.txt"
    cp "$d/ref/random.bin" "$d/ref/text.txt" "$upper/" || eta_fail "$1: write failed"
    sync
    tok_check_tag1 "$d/lower/random.bin" "$ETA_TOKEN_SIG"
    eta_umount "$upper"
    tok_mount "$d/lower" "$upper" "$(tok_opts "$2" "$3")"
    t=$(tok_read_same "$upper/random.bin" "$d/ref/random.bin") || exit 1
    tok_read_same "$upper/text.txt" "$d/ref/text.txt" > /dev/null
    eta_umount "$upper"
    tok_info "$1: written, remounted, read back (first open $t s)"
}

# --- AES-256, OAEP (token still logged in: no prompt).
tok_pin aes256 none
write_remount_read aes256 32 ""

# --- PKCS#1 v1.5.  The auth token for our sig is already in @u with OAEP,
# and mount.ecryptfs keeps an existing key: clear it first.
keyctl clear @u
tok_pin pkcs1 none
write_remount_read pkcs1 16 ":padding=pkcs1"

# The PKCS#1 file's key really is wrapped with PKCS#1 v1.5: its epoch packet
# says so (padding byte 02), the AES-256 file's says OAEP (01).
p=$(tok_epoch_padding "$TOK_SHARED/pkcs1/lower/text.txt")
[ "$p" = pkcs1 ] || eta_fail "the padding=pkcs1 file's epoch packet says '$p'"
p=$(tok_epoch_padding "$TOK_SHARED/aes256/lower/text.txt")
[ "$p" = oaep ] || eta_fail "the OAEP file's epoch packet says '$p'"
# Through an OAEP auth token the PKCS#1 file opens all the same: the epoch
# packet names its padding (plain RSA: scenario 9).
keyctl clear @u
tok_pin other-padding none
tok_mount "$TOK_SHARED/pkcs1/lower" "$upper" "$(tok_opts 16)"
s=$(tok_read_same "$upper/text.txt" "$TOK_SHARED/pkcs1/ref/text.txt") || exit 1
tok_info "a PKCS#1 epoch file through an OAEP auth token opens in $s s"
eta_umount "$upper"
# ... and with padding=pkcs1.
keyctl clear @u
tok_pin pkcs1-again none
tok_mount "$TOK_SHARED/pkcs1/lower" "$upper" "$(tok_opts 16 ":padding=pkcs1")"
tok_read_same "$upper/text.txt" "$TOK_SHARED/pkcs1/ref/text.txt" > /dev/null
eta_umount "$upper"
tok_require_ecryptfsd "at the end"
exit 0
