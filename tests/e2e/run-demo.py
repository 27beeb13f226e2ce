#!/usr/bin/python3
"""The real-kernel part of tests/demo.sh: a person types the PIN.

Host side of tests/e2e/scenarios-demo/demo.sh.  Unlike run-token-scenarios.py
it types nothing: the agent runs in the demo's own terminal session (it
inherits the terminal and opens /dev/tty for its PIN prompt), or shows its
GTK dialog when DISPLAY is set.
  1. starts a private test bus (host-bus.sh),
  2. starts ecryptfs-token-agent on it with the test-only
     ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS=1 (the guest reaches the bus
     over TCP with ANONYMOUS authentication), on the token SOFTHSM2_CONF names,
  3. asks `ecryptfs-token list` for the key's ECRYPTFS_SIG,
  4. boots the VM (run-vm.sh --wait-timeout 15 ... --scenarios scenarios-demo)
     and relays the guest's "ETA-DEMO SAY" lines, then prints the file's
     content from the "ETA-DEMO CONTENT" lines of the console log.

usage: run-demo.py --agent PATH --cli PATH --keymod PATH --fingerprint HEX
           --token-label LABEL [--cache DIR] [--workdir DIR] [--terminal]
Exit status: 0 the file was read back, 1 the scenario failed, 2 set-up failed.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# In the multiarch directory, which Debian's python3 knows.
SOFTHSM = "/usr/lib/%s/softhsm/libsofthsm2.so" % sysconfig.get_config_var("MULTIARCH")
BUS_NAME = "org.ecryptfs.TokenAgent1"


class SetupError(Exception):
    pass


def note(text):
    print("    " + text, flush=True)


def name_has_owner(env):
    out = subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                          "--object-path", "/org/freedesktop/DBus", "--method",
                          "org.freedesktop.DBus.NameHasOwner", BUS_NAME],
                         env=env, capture_output=True, text=True)
    return out.stdout.strip() == "(true,)"


def relay(stream, log):
    """The agent's own messages, prefixed, on the terminal (its PIN prompt
    goes to /dev/tty directly)."""
    for raw in iter(stream.readline, b""):
        log.write(raw)
        line = raw.decode("utf-8", "replace").rstrip("\n")
        sys.stdout.write("    [agent] %s\n" % line)
        sys.stdout.flush()


def run(args):
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    for path in (args.agent, args.cli, args.keymod, SOFTHSM):
        if not os.path.exists(path):
            raise SetupError("%s not found" % path)
    conf = os.environ.get("SOFTHSM2_CONF")
    if not conf:
        raise SetupError("SOFTHSM2_CONF is not set (the demo token)")

    bus_dir = agent = vm = None
    try:
        out = subprocess.run([os.path.join(HERE, "host-bus.sh"), "start"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SetupError("host-bus.sh start failed: " + out.stderr)
        bus = dict(l.split("=", 1) for l in out.stdout.splitlines() if "=" in l)
        bus_dir, bus_socket = bus["ETA_BUS_DIR"], bus["ETA_BUS_SOCKET"]
        address = "unix:path=" + bus_socket
        note("host: private test bus %s (the VM reaches it over TCP)" % address)

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DBUS_", "ECRYPTFS_TOKEN_AGENT"))}
        env.update({"DBUS_SESSION_BUS_ADDRESS": address,
                    "ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS": "1"})
        cmd = [args.agent]
        if args.terminal:
            cmd.append("--terminal")
        cmd += ["--provider", SOFTHSM]
        note("host: starting the agent: ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS=1 "
             + " ".join(cmd))
        note("      (test-only setting: the guest's bus connection is anonymous)")
        # Same session and process group as the demo: the agent's PIN prompt
        # opens the demo's terminal (/dev/tty); its messages are relayed.
        agent = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        agent_log = open(os.path.join(workdir, "agent.log"), "wb", buffering=0)
        threading.Thread(target=relay, args=(agent.stdout, agent_log), daemon=True).start()
        deadline = time.monotonic() + 30
        while not name_has_owner(env):
            if agent.poll() is not None:
                raise SetupError("the agent exited at start (status %d)" % agent.returncode)
            if time.monotonic() > deadline:
                raise SetupError("the agent did not take %s within 30 s" % BUS_NAME)
            time.sleep(0.2)

        out = subprocess.run([args.cli, "list"], env=env, capture_output=True, text=True,
                             timeout=30)
        line = next((l for l in out.stdout.splitlines()
                     if l.startswith(args.fingerprint)), None)
        if out.returncode != 0 or line is None:
            raise SetupError("ecryptfs-token list does not show %s:\n%s%s"
                             % (args.fingerprint, out.stdout, out.stderr))
        sig = line.split()[1]
        note("host: the key's ECRYPTFS_SIG is %s (ecryptfs-token list)" % sig)

        env_file = os.path.join(workdir, "token.env")
        with open(env_file, "w") as f:
            f.write("ETA_TOKEN_FPR=%s\nETA_TOKEN_SIG=%s\nETA_TOKEN_BITS=%d\n"
                    "ETA_TOKEN_LABEL='%s'\nETA_TOKEN_KEY_LABEL='%s'\n"
                    % (args.fingerprint, sig, args.bits, args.token_label, args.key_label))

        vm_dir = os.path.join(workdir, "vm")
        os.makedirs(vm_dir, exist_ok=True)
        console = os.path.join(vm_dir, "console.log")
        if os.path.exists(console):
            os.unlink(console)
        cmd = [os.path.join(HERE, "run-vm.sh"),
               "--workdir", vm_dir, "--log", console,
               "--keymod", args.keymod, "--bus-socket", bus_socket,
               "--wait-timeout", "15",
               "--no-default-scenarios", "--scenarios", os.path.join(HERE, "scenarios-demo"),
               "--extra", "%s:/etc/eta-token/token.env" % env_file,
               "--extra", "%s:/usr/share/eta-e2e/token-lib.sh"
               % os.path.join(HERE, "guest", "token-lib.sh"),
               "--scenario-timeout", "240", "--timeout", "420", "--no-skip"]
        if args.kernel_env:
            cmd += ["--kernel-env", args.kernel_env]
        elif args.cache:
            cmd += ["--cache", args.cache]
        note("host: booting the VM (Debian's kernel, QEMU; up to a minute without KVM)")
        note("      console log: %s" % console)
        vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                              stdout=open(os.path.join(workdir, "run-vm.log"), "w"),
                              stderr=subprocess.STDOUT)
        pos, partial, content, result = 0, "", [], None
        while True:
            finished = vm.poll() is not None
            try:
                with open(console, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            pos += len(data)
            lines = (partial + data.decode("utf-8", "replace")).split("\n")
            partial = lines.pop()
            for l in lines:
                l = l.replace("\r", "")
                m = re.search(r"ETA-DEMO (SAY|CONTENT) ?(.*)$", l)
                if m and m.group(1) == "SAY":
                    note(m.group(2))
                elif m:
                    content.append(m.group(2))
                m = re.search(r"ETA-E2E (READY|PASS|FAIL|SKIP|FATAL)(.*)$", l)
                if m and m.group(1) == "READY":
                    note("guest: Debian's kernel is up%s" % m.group(2))
                elif m:
                    result = (m.group(1), m.group(2).strip())
            if finished:
                break
            time.sleep(0.1)
        vm_rc = vm.returncode
        vm = None
        if content:
            print("\n    The file, as the guest read it after the remount:", flush=True)
            print("    ------------------------------------------------------------------")
            for l in content:
                print("    " + l)
            print("    ------------------------------------------------------------------",
                  flush=True)
        if vm_rc == 0 and result and result[0] == "PASS" and content:
            return 0
        print("demo VM: failed (run-vm.sh status %d, guest: %s)"
              % (vm_rc, " ".join(result) if result else "no result"), file=sys.stderr)
        with open(os.path.join(workdir, "run-vm.log"), errors="replace") as f:
            for l in f.read().splitlines()[-15:]:
                print("  | " + l, file=sys.stderr)
        try:
            with open(console, errors="replace") as f:
                for l in f.read().splitlines()[-25:]:
                    print("  console| " + l, file=sys.stderr)
        except OSError:
            pass
        return 1
    finally:
        if vm is not None and vm.poll() is None:
            vm.terminate()
            vm.wait()
        if agent is not None and agent.poll() is None:
            agent.terminate()
            try:
                agent.wait(10)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        if bus_dir:
            subprocess.run([os.path.join(HERE, "host-bus.sh"), "stop", bus_dir])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", required=True)
    p.add_argument("--cli", required=True)
    p.add_argument("--keymod", required=True)
    p.add_argument("--fingerprint", required=True)
    p.add_argument("--token-label", default="Demo Token")
    p.add_argument("--key-label", default="Demo key")
    p.add_argument("--bits", type=int, default=2048)
    p.add_argument("--cache")
    p.add_argument("--kernel-env")
    p.add_argument("--workdir", default="/tmp/eta-demo-vm")
    p.add_argument("--terminal", action="store_true",
                   help="start the agent with --terminal (no GTK dialog)")
    args = p.parse_args()

    def on_signal(signum, frame):
        raise SetupError("killed by signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run(args)
    except SetupError as e:
        print("demo VM: set-up failed: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
