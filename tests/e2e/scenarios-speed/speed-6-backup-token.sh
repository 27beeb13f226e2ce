#!/bin/sh
# 6. A backup token: a second token holding the same key pair (the host
# imported it into both).  Files open through the token the agent logged in
# to; once that token is pulled out (the fault module's absent_tokens) the
# same files open through the other one: one PIN prompt, one token
# operation for the epoch.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

[ -n "${ETA_TOKEN_BACKUP_LABEL:-}" ] ||
    eta_fail "no backup token (run-token-scenarios.py --backup-token)"
tok_speed_start
tok_token_listed "$ETA_TOKEN_LABEL" && tok_token_listed "$ETA_TOKEN_BACKUP_LABEL" ||
    eta_fail "the agent does not list both tokens: $(cat "$ETA_WORK/bus.out")"
d=$ETA_WORK/d
upper=$ETA_WORK/upper
tok_make_files "$d/ref" 10
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
cp "$d"/ref/* "$upper/" || eta_fail "writing failed"
sync
eta_umount "$upper"

tok_lock
tok_pin unlock right
tok_unlock
first=$(tok_logged_in_label)
[ -n "$first" ] || eta_fail "no token logged in after Unlock: $(cat "$ETA_WORK/bus.out")"
if [ "$first" = "$ETA_TOKEN_LABEL" ]; then other=$ETA_TOKEN_BACKUP_LABEL; else other=$ETA_TOKEN_LABEL; fi
tok_pin read none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
tok_ops_mark
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
ops=$(tok_ops_since)
tok_info "10 files opened through '$first': $ops token operation(s)"
[ "$ops" -le 2 ] || eta_fail "10 files of one epoch cost $ops token operations"

# Pull the first token out; wait until the agent no longer lists it.
tok_fault_set absent_tokens "$first"
i=0
while tok_token_listed "$first" && [ $i -lt 60 ]; do usleep 250000; i=$((i + 1)); done
tok_token_listed "$first" && eta_fail "the agent still lists '$first' 15 s after it was pulled out"
tok_token_listed "$other" || eta_fail "the agent does not list '$other' any more"
tok_info "'$first' pulled out; the agent noticed within $((i / 4)) s"

tok_drop_caches
tok_pin backup right
tok_ops_mark
for f in "$d"/ref/*; do tok_read_same "$upper/$(basename "$f")" "$f" > /dev/null; done
ops=$(tok_ops_since)
now=$(tok_logged_in_label)
tok_info "the same 10 files opened through '$now': $ops token operation(s)"
[ "$now" = "$other" ] || eta_fail "the token logged in now is '$now'; expected '$other'"
[ "$ops" -le 2 ] && [ "$ops" -ge 1 ] || eta_fail "reading through the backup token cost $ops token operations; expected 1"
eta_umount "$upper"
tok_fault_set absent_tokens ""
tok_require_ecryptfsd "at the end"
exit 0
