#!/bin/sh
# 8. A burst of opens while the token is locked and the PIN comes late.
# ecryptfsd serves one request at a time and the kernel's 3 s clock of every
# queued request runs meanwhile.  What must hold: ecryptfsd survives, and
# once the token is unlocked files open.  Once one unwrap has run out of
# time, the key module asks the agent not to wait behind the open prompt, so
# the rest of the burst fails at once instead of expiring in the kernel into
# error frames (nine of which would end ecryptfsd).
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

N=12
tok_agent start
tok_start_ecryptfsd
d=$ETA_WORK/d
mkdir -p "$d/ref"
upper=$ETA_WORK/upper
tok_pin write none
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"
for i in $(seq 1 $((N + 2))); do echo "burst file $i" > "$d/ref/p$i"; done
cp "$d"/ref/* "$upper/" || eta_fail "write failed"
eta_umount "$upper"
tok_mount "$d/lower" "$upper" "$(tok_opts 16)"

tok_lock
# One prompt for the whole burst, answered at 6 s (after every budget).
tok_pin burst right@6000 1
t0=$(eta_now)
pids=
for i in $(seq 1 $N); do
    (cat "$upper/p$i" > "$ETA_WORK/out$i" 2> "$ETA_WORK/err$i"; echo $? > "$ETA_WORK/rc$i") &
    pids="$pids $!"
done
# shellcheck disable=SC2086 # one pid a word; not "wait" alone: ecryptfsd is a job too
wait $pids
t1=$(eta_now)
failed=$(cat "$ETA_WORK"/rc* | grep -c -v '^0$')
tok_info "$N parallel opens, PIN at 6 s: $failed failed, the burst took $(tok_elapsed "$t0" "$t1") s"
tok_wait_state logged-in 15 || eta_fail "the PIN did not log the token in"
sleep 3
if ! eta_ecryptfsd_alive; then
    grep -E 'threshold|Error while receiving' "$ETA_WORK/ecryptfsd.log" | sort | uniq -c | sed 's/^/    /'
    eta_fail "ecryptfsd died after a burst of $N opens during a late PIN: $(grep -c 'Error while receiving' "$ETA_WORK/ecryptfsd.log") receive errors, '$(grep -o 'Messaging error threshold[^;]*' "$ETA_WORK/ecryptfsd.log" | head -n 1)'"
fi
tok_pin after none
tok_read_same "$upper/p$((N + 1))" "$d/ref/p$((N + 1))" > /dev/null
eta_umount "$upper"
exit 0
