#!/bin/sh
# 7. 200 files written on a token mount, remounted and read back with the
# token unlocked: all identical.  The same on a passphrase-only mount, and
# the time per open of both.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

N=200
tok_agent start
tok_start_ecryptfsd
ref=$ETA_WORK/ref
mkdir -p "$ref"
# 200 different files (~330 bytes), made in one go.
seed=$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')
awk -v n=$N -v dir="$ref" -v seed="$seed" 'BEGIN {
    srand(seed)
    for (i = 1; i <= n; i++) {
        f = sprintf("%s/f%03d", dir, i)
        s = "file " i ":"
        for (k = 0; k < 40; k++) s = s sprintf("%08x", int(rand() * 4294967295))
        print s > f
        close(f)
    }
}' || eta_fail "making the reference files failed"
[ "$(ls "$ref" | wc -l)" = $N ] || eta_fail "expected $N reference files, got $(ls "$ref" | wc -l)"
(cd "$ref" && md5sum f* > "$ETA_WORK/ref.md5")
upper=$ETA_WORK/upper

# run_set NAME OPTS: write, remount, read back; sets w_s and r_s (seconds).
run_set() {
    lower=$ETA_WORK/$1-lower
    eta_mount_ecryptfs "$lower" "$upper" "$2"
    t0=$(eta_now)
    cp "$ref"/f* "$upper/" || { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "$1: writing $N files failed"; }
    echo unlock > "$upper/unlock.txt"
    sync
    t1=$(eta_now)
    w_s=$(tok_elapsed "$t0" "$t1")
    [ "$(ls "$lower" | wc -l)" = $((N + 1)) ] || eta_fail "$1: $(ls "$lower" | wc -l) lower files, expected $((N + 1))"
    eta_umount "$upper"
    eta_mount_ecryptfs "$lower" "$upper" "$2"
    # The first open unlocks the token if it must (not timed).
    [ "$(cat "$upper/unlock.txt")" = unlock ] || eta_fail "$1: unlock.txt reads back wrong"
    [ "$1" = token ] && tok_pin read-200 none
    t0=$(eta_now)
    (cd "$upper" && md5sum f* > "$ETA_WORK/$1.md5") 2> "$ETA_WORK/$1.err" ||
        { eta_show "$ETA_WORK/$1.err"; eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "$1: reading the $N files failed"; }
    t1=$(eta_now)
    r_s=$(tok_elapsed "$t0" "$t1")
    cmp -s "$ETA_WORK/$1.md5" "$ETA_WORK/ref.md5" ||
        eta_fail "$1: $(diff "$ETA_WORK/ref.md5" "$ETA_WORK/$1.md5" | grep -c '^+f') of $N files differ after the remount"
    eta_umount "$upper"
}
per() { awk -v s="$1" -v n=$N 'BEGIN { printf "%.1f", s * 1000 / n }'; }

tok_pin unlock right 0-1
run_set token "$(tok_opts 16)"
tw=$w_s tr=$r_s
tok_require_ecryptfsd "after $N token files"

pw=eta-token-e2e-200
run_set passphrase "key=passphrase:passphrase_passwd=$pw,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache"
pw_=$w_s pr=$r_s

tok_info "$N files, token:      write $tw s ($(per "$tw") ms/file), read after remount $tr s ($(per "$tr") ms/open)"
tok_info "$N files, passphrase: write $pw_ s ($(per "$pw_") ms/file), read after remount $pr s ($(per "$pr") ms/open)"
tok_info "token/passphrase per-open ratio: $(awk -v a="$tr" -v b="$pr" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }')"
exit 0
