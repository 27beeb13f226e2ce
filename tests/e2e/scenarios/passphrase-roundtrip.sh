#!/bin/sh
# Passphrase-only round trip through the real kernel: add the passphrase,
# mount, write, check the lower files are eCryptfs ciphertext, unmount,
# remount, read back.  ecryptfsd runs throughout so that a key module that
# breaks the daemon's start (or its module loading) shows up here too.
. /usr/share/eta-e2e/lib.sh

pw=eta-e2e-passphrase-1
lower=$ETA_WORK/lower
upper=$ETA_WORK/upper
opts="key=passphrase:passphrase_passwd=$pw,ecryptfs_cipher=aes,ecryptfs_key_bytes=16"
opts="$opts,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache"

eta_start_ecryptfsd

printf '%s' "$pw" | ecryptfs-add-passphrase - > "$ETA_WORK/add.log" 2>&1 ||
    { eta_show "$ETA_WORK/add.log"; eta_fail "ecryptfs-add-passphrase failed"; }
sig=$(sed -n 's/.*sig \[\([0-9a-f]\{16\}\)\].*/\1/p' "$ETA_WORK/add.log" | head -n 1)
[ -n "$sig" ] || { eta_show "$ETA_WORK/add.log"; eta_fail "no sig in ecryptfs-add-passphrase output"; }
keyctl search @u user "$sig" > /dev/null 2>&1 || eta_fail "key $sig not in @u"
eta_log "passphrase sig $sig"

eta_mount_ecryptfs "$lower" "$upper" "$opts"
msigs=$(eta_mount_sigs "$upper")
[ "$msigs" = "$sig" ] || eta_fail "mount uses ecryptfs_sig '$msigs', expected $sig"

text="eCryptfs end-to-end plaintext $$"
printf '%s\n' "$text" > "$upper/hello.txt" || eta_fail "write hello.txt"
dd if=/dev/urandom of="$ETA_WORK/random.ref" bs=1024 count=100 2>/dev/null
cp "$ETA_WORK/random.ref" "$upper/random.bin" || eta_fail "write random.bin"
sync

[ -f "$lower/hello.txt" ] || eta_fail "no lower/hello.txt (filename crypto should be off)"
grep -q -F "$text" "$lower/hello.txt" && eta_fail "plaintext visible in the lower file"
eta_is_ecryptfs_file "$lower/hello.txt" $((${#text} + 1)) ||
    eta_fail "lower/hello.txt has no eCryptfs header: $(od -An -tx1 -N16 "$lower/hello.txt")"
eta_is_ecryptfs_file "$lower/random.bin" 102400 || eta_fail "lower/random.bin has no eCryptfs header"
cmp -s "$lower/random.bin" "$ETA_WORK/random.ref" && eta_fail "lower/random.bin is the plaintext"
eta_log "lower files: hello.txt $(eta_file_size "$lower/hello.txt") bytes, random.bin $(eta_file_size "$lower/random.bin") bytes"

eta_umount "$upper"
[ ! -e "$upper/hello.txt" ] || eta_fail "upper still shows hello.txt after umount"

eta_mount_ecryptfs "$lower" "$upper" "$opts"
got=$(cat "$upper/hello.txt") || eta_fail "read hello.txt after remount"
[ "$got" = "$text" ] || eta_fail "hello.txt reads back as '$got'"
cmp -s "$upper/random.bin" "$ETA_WORK/random.ref" || eta_fail "random.bin differs after remount"
eta_umount "$upper"

eta_ecryptfsd_alive || { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "ecryptfsd died during the test"; }
eta_stop_ecryptfsd
rc=$?
if [ $rc -ge 128 ] && [ $rc != 143 ]; then
    eta_show "$ETA_WORK/ecryptfsd.log"
    eta_fail "ecryptfsd ended by signal $((rc - 128)) on SIGTERM"
fi
exit 0
