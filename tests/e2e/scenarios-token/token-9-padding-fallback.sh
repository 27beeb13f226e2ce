#!/bin/sh
# 9. The padding a file's key was wrapped with need not be the auth token's.
# The key id does not depend on the padding, and mount.ecryptfs keeps an
# auth token already in @u under that id, so a mount's padding= can go
# unused.  What holds: a plain RSA ciphertext (wrap=per-file, as the
# upstream modules write) that fails with the auth token's padding is tried
# with the other one, so plain OAEP and PKCS#1 v1.5 files open through
# either auth token; an epoch file names its padding itself.  And the case
# that used to lose files: with an OAEP auth token kept in @u, a mount asking
# for padding=pkcs1 writes files that then open through a real PKCS#1 auth
# token.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_agent start
tok_start_ecryptfsd
upper=$ETA_WORK/upper
d=$ETA_WORK/d
mkdir -p "$d"
tok_pin any right 0-1

# write NAME MODULE_PARAMS: one file on a fresh auth token with those params.
write() {
    keyctl clear @u
    tok_mount "$d/$1" "$upper" "$(tok_opts 16 "$2")"
    echo "written with $2" > "$d/$1.ref"
    cp "$d/$1.ref" "$upper/x.txt" || eta_fail "$1: write failed"
    sync
    eta_umount "$upper"
}
# read_through NAME MODULE_PARAMS: opens it through a fresh auth token.
read_through() {
    keyctl clear @u
    tok_mount "$d/$1" "$upper" "$(tok_opts 16 "$2")"
    if ! cat "$upper/x.txt" > "$ETA_WORK/got.txt" 2> "$ETA_WORK/err.txt"; then
        grep 'key module' "$ETA_WORK/ecryptfsd.log" | tail -n 1 | sed 's/^/    /'
        eta_fail "the $1 file does not open through an auth token with '$2': $(cat "$ETA_WORK/err.txt")"
    fi
    cmp -s "$ETA_WORK/got.txt" "$d/$1.ref" || eta_fail "the $1 file reads back wrong through '$2'"
    eta_umount "$upper"
}

write oaep-plain ":wrap=per-file"
write pkcs1-plain ":padding=pkcs1:wrap=per-file"
tok_check_tag1 "$d/oaep-plain/x.txt" "$ETA_TOKEN_SIG" rsa
tok_check_tag1 "$d/pkcs1-plain/x.txt" "$ETA_TOKEN_SIG" rsa
read_through oaep-plain ":padding=pkcs1"
read_through pkcs1-plain ""
tok_info "plain RSA files open through the other padding's auth token (OAEP through PKCS#1, PKCS#1 through OAEP)"

# An OAEP auth token kept in @u by an earlier mount...
keyctl clear @u
tok_mount "$d/earlier" "$upper" "$(tok_opts 16)"
eta_umount "$upper"
# ... then a mount that asks for PKCS#1 (mount.ecryptfs keeps the key).
tok_mount "$d/kept" "$upper" "$(tok_opts 16 :padding=pkcs1)"
echo "meant to be PKCS#1" > "$d/kept.ref"
cp "$d/kept.ref" "$upper/x.txt" || eta_fail "write failed"
sync
eta_umount "$upper"
tok_info "padding=pkcs1 with an OAEP auth token kept in @u wrote a '$(tok_epoch_padding "$d/kept/x.txt")' epoch packet"
read_through kept ":padding=pkcs1"
read_through kept ""
tok_require_ecryptfsd "at the end"
exit 0
