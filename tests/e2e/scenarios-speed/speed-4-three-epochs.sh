#!/bin/sh
# 4. Files written across three epochs (epoch_files=5 in the key module's
# config, 15 files): each epoch has its own RSA(K), and reading them all
# costs exactly three token operations.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

tok_speed_start epoch_files=5
d=$ETA_WORK/d
upper=$ETA_WORK/upper
tok_make_files "$d/ref" 15
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
# One at a time, in order: the key module wraps each at its creation.
for f in "$d"/ref/*; do
    cp "$f" "$upper/" || eta_fail "writing $(basename "$f") failed"
done
sync
eta_umount "$upper"

ids=
for f in "$d"/lower/*; do
    tok_check_tag1 "$f" "$ETA_TOKEN_SIG" epoch
    ids="$ids $(tok_epoch_id "$f")"
done
n_ids=$(echo "$ids" | tr ' ' '\n' | grep -v '^$' | sort -u | wc -l)
tok_info "15 files written with epoch_files=5: $n_ids epoch(s): $(echo "$ids" | tr ' ' '\n' | grep -v '^$' | uniq -c | awk '{ printf "%s ", $1 }')files each"
[ "$n_ids" = 3 ] || eta_fail "15 files with epoch_files=5 made $n_ids epochs; expected 3"

tok_lock
tok_pin unlock right
tok_unlock
tok_pin read none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
tok_ops_mark
t0=$(eta_now)
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
ops=$(tok_ops_since)
tok_info "reading the 15 files: $ops token operation(s) in $(tok_elapsed "$t0" "$(eta_now)") s"
[ "$ops" = 3 ] || eta_fail "reading three epochs' files cost $ops token operations; expected 3"
eta_umount "$upper"
tok_require_ecryptfsd "at the end"
exit 0
