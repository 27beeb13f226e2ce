#!/bin/sh
# The guided demo's guest side (tests/demo.sh through tests/e2e/run-demo.py):
# mount an eCryptfs directory with the key on the token, write a file,
# unmount, remount and read it back.  The read needs the token's private
# key: the agent on the host asks the person for the PIN.  Nobody types for
# the person here; the host relays the guest's "ETA-DEMO SAY" lines and
# prints the "ETA-DEMO CONTENT" lines (the file as read after the remount).
# The VM runs with ecryptfs_message_wait_timeout=15 (run-vm.sh --wait-timeout)
# and the key module gets unwrap_timeout_ms=14000, so a person has about 14 s
# to type the PIN; if the open still fails, the demo waits for the token to
# be unlocked by the late PIN and opens the file again.
. /usr/share/eta-e2e/lib.sh
. /usr/share/eta-e2e/token-lib.sh

say() { printf 'ETA-DEMO SAY %s\n' "$*" > /dev/console; }
text="This file was written through eCryptfs with the key on the token."
lower=/tmp/eta/demo/lower
upper=/tmp/eta/demo/secret
mkdir -p "$lower" "$upper"

tok_agent_on_bus || eta_fail "the agent is not on the bus"
printf '[keymod]\nunwrap_timeout_ms=14000\n' > "$ETA_WORK/keymod.conf"
ECRYPTFS_TOKEN_AGENT_KEYMOD_CONF=$ETA_WORK/keymod.conf tok_start_ecryptfsd
say "guest: ecryptfsd runs with the key module (unwrap budget 14 s; kernel wait 15 s)"

opts=$(tok_opts 16)
say "guest: mount -t ecryptfs $lower $upper -o key=token-agent:fingerprint=$ETA_TOKEN_FPR,..."
tok_mount "$lower" "$upper" "$opts"
say "guest: mounted (ecryptfs_sig $ETA_TOKEN_SIG); no PIN needed: writing uses the public key"
echo "$text" > "$upper/secret.txt" || eta_fail "writing $upper/secret.txt failed"
sync
tok_check_tag1 "$lower/secret.txt" "$ETA_TOKEN_SIG"
say "guest: wrote $upper/secret.txt; on disk it is ciphertext: $(od -An -tx1 -j8192 -N16 "$lower/secret.txt" | tr -s ' ')..."
eta_umount "$upper"
keyctl clear @u
say "guest: unmounted and cleared the keyring; remounting"
tok_mount "$lower" "$upper" "$opts"
say "guest: cat $upper/secret.txt -- the agent now asks for the token's PIN on your terminal"
if ! cat "$upper/secret.txt" > "$ETA_WORK/read.out" 2> "$ETA_WORK/read.err"; then
    say "guest: the open failed ($(cat "$ETA_WORK/read.err")): no PIN within the 14 s budget"
    say "guest: waiting up to 120 s for the token to be unlocked (type the PIN), then opening it again"
    tok_wait_state logged-in 120 || eta_fail "the token was not unlocked"
    cat "$upper/secret.txt" > "$ETA_WORK/read.out" 2> "$ETA_WORK/read.err" ||
        { eta_show "$ETA_WORK/ecryptfsd.log"; eta_fail "reading the file failed: $(cat "$ETA_WORK/read.err")"; }
fi
while IFS= read -r line; do
    printf 'ETA-DEMO CONTENT %s\n' "$line" > /dev/console
done < "$ETA_WORK/read.out"
[ "$(cat "$ETA_WORK/read.out")" = "$text" ] || eta_fail "the file did not read back as written"
eta_umount "$upper"
eta_stop_ecryptfsd
exit 0
