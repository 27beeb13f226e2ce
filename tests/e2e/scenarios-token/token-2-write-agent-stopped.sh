#!/bin/sh
# 2. Files are created while the agent is STOPPED (the host stops it): the
# key module wraps each new file's key locally.  The lower files are
# ciphertext whose header carries a tag 1 packet with our key id.  A second
# mount made with the agent stopped takes the public key from pubkey=.
# Leaves its files (and plaintext copies) for the next scenarios.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_pin write none
tok_start_ecryptfsd
dir=$TOK_SHARED/aes128
rm -rf "$dir"
mkdir -p "$dir/ref"
lower=$dir/lower
upper=$ETA_WORK/upper
tok_mount "$lower" "$upper" "$(tok_opts 16)"

tok_agent stop
t0=$(eta_now)
printf 'hello from the guest, written with the agent stopped\n' > "$dir/ref/hello.txt"
dd if=/dev/urandom of="$dir/ref/random.bin" bs=1024 count=100 2> /dev/null
for i in 1 2 3 4 5 6 7 8; do
    echo "file $i: $(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$dir/ref/f$i.txt"
done
for f in "$dir"/ref/*; do
    cp "$f" "$upper/" || { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "writing $(basename "$f") with the agent stopped failed"; }
done
sync
t1=$(eta_now)
tok_info "10 files written with the agent stopped in $(tok_elapsed "$t0" "$t1") s"
tok_require_ecryptfsd "while writing"
# Still readable in this mount: the kernel keeps the file keys it made.
cmp -s "$upper/random.bin" "$dir/ref/random.bin" || eta_fail "random.bin reads back wrong before the remount"

for f in "$dir"/ref/*; do
    b=$(basename "$f")
    [ -f "$lower/$b" ] || eta_fail "no lower/$b (filename crypto is off)"
    eta_is_ecryptfs_file "$lower/$b" "$(eta_file_size "$f")" ||
        eta_fail "lower/$b has no eCryptfs header: $(od -An -tx1 -N16 "$lower/$b")"
    cmp -s "$lower/$b" "$f" && eta_fail "lower/$b is the plaintext"
    tok_check_tag1 "$lower/$b" "$ETA_TOKEN_SIG"
done
grep -a -q -F "hello from the guest" "$lower/hello.txt" && eta_fail "plaintext visible in lower/hello.txt"
tok_info "lower/hello.txt key packets: $(tok_key_packets "$lower/hello.txt" | tr '\n' ' ')"
eta_umount "$upper"

# With the agent stopped and no public key saved, a mount fails...
keyctl clear @u
if mount -t ecryptfs "$dir/lower-pubkey" "$upper" -o "$(tok_opts 16)" \
        < /dev/null > "$ETA_WORK/stopped-mount.log" 2>&1; then
    eta_fail "mount without the agent and without pubkey= succeeded"
fi
# ... and pubkey= (the certificate) makes it work.
mkdir -p "$dir/lower-pubkey"
tok_mount "$dir/lower-pubkey" "$upper" "$(TOK_FPR_OVERRIDE=$ETA_TOKEN_FPR16 tok_opts 16 ":pubkey=$ETA_TOKEN_CERT")"
cp "$dir/ref/f1.txt" "$upper/pub.txt" || eta_fail "write on the pubkey= mount"
sync
tok_check_tag1 "$dir/lower-pubkey/pub.txt" "$ETA_TOKEN_SIG"
eta_umount "$upper"
tok_require_ecryptfsd "at the end"
exit 0
