#!/bin/sh
# 9. (Known product issue; run-token-scenarios.py --known-bugs.)  The
# padding lives in the auth token, whose key id (sig) does not depend on it,
# and mount.ecryptfs keeps an auth token already in the keyring under that
# sig.  What must hold: a mount with padding=pkcs1 writes PKCS#1 v1.5 files
# (or refuses).  What happens: with an OAEP auth token for the key already in
# @u (any earlier mount), padding=pkcs1 is silently ignored: new files are
# OAEP, and they do not open through a real PKCS#1 auth token.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_agent start
tok_start_ecryptfsd
upper=$ETA_WORK/upper
tok_pin any right 0-1
# An ordinary OAEP mount first: its auth token stays in @u.
tok_mount "$ETA_WORK/oaep" "$upper" "$(tok_opts 16)"
eta_umount "$upper"
# Then a mount that asks for PKCS#1.
tok_mount "$ETA_WORK/pkcs1" "$upper" "$(tok_opts 16 :padding=pkcs1)"
echo "meant to be PKCS#1" > "$ETA_WORK/ref.txt"
cp "$ETA_WORK/ref.txt" "$upper/x.txt" || eta_fail "write failed"
sync
eta_umount "$upper"
# Read it through an auth token that really is PKCS#1.
keyctl clear @u
tok_mount "$ETA_WORK/pkcs1" "$upper" "$(tok_opts 16 :padding=pkcs1)"
if ! cat "$upper/x.txt" > "$ETA_WORK/got.txt" 2> "$ETA_WORK/err.txt"; then
    grep 'key module' "$ETA_WORK/ecryptfsd.log" | tail -n 1 | sed 's/^/    /'
    eta_fail "a file written on a padding=pkcs1 mount does not open through a PKCS#1 auth token ($(cat "$ETA_WORK/err.txt")): the mount used the OAEP auth token already in @u"
fi
cmp -s "$ETA_WORK/got.txt" "$ETA_WORK/ref.txt" || eta_fail "x.txt reads back wrong"
eta_umount "$upper"
exit 0
