#!/bin/sh
# 4. The person at the agent's terminal: a wrong PIN, then the right one
# (the agent asks again, saying so) opens the file; a cancelled prompt (an
# empty line) fails the open with EIO and leaves ecryptfsd serving; after a
# later unlock the same file opens intact.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

dir=$TOK_SHARED/aes128
[ -f "$dir/ref/f1.txt" ] || eta_fail "scenario 2 left no files in $dir"
tok_agent start
tok_start_ecryptfsd
upper=$ETA_WORK/upper
tok_mount "$dir/lower" "$upper" "$(tok_opts 16)"

# A wrong PIN, then the right one, within one open.
tok_lock
tok_pin wrong-then-right wrong,right
s=$(tok_read_same "$upper/f1.txt" "$dir/ref/f1.txt") || exit 1
[ "$(tok_token_state)" = logged-in ] || eta_fail "the token is not logged in after the right PIN"
tok_info "wrong PIN, then the right one: the open succeeded in $s s"

# Cancel: EIO, and the daemon goes on.
tok_lock
tok_pin cancel cancel
s=$(tok_read_fails_eio "$upper/f2.txt") || exit 1
tok_require_ecryptfsd "after a cancelled prompt"
grep -q 'the PIN prompt was cancelled' "$ETA_WORK/ecryptfsd.log" ||
    { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "the key module did not log the cancellation"; }
[ "$(tok_token_state)" != logged-in ] || eta_fail "the token is logged in after a cancelled prompt"
tok_info "cancelled prompt: the open failed with EIO after $s s"

# Another file opens fine meanwhile? Not without a PIN: the same file, later.
tok_pin unlock right
s=$(tok_read_same "$upper/f2.txt" "$dir/ref/f2.txt") || exit 1
tok_info "after a later unlock the same file opened intact in $s s"
tok_pin rest none
for f in "$dir"/ref/*; do
    tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null
done
eta_umount "$upper"
tok_require_ecryptfsd "at the end"
exit 0
