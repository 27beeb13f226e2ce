#!/usr/bin/python3
"""The token-agent key module against the real kernel, in one VM.

Host side of the token scenarios (tests/e2e/scenarios-token/):
  1. makes a SoftHSM2 token (tests/fixtures/make-token.sh),
  2. starts a private test bus (host-bus.sh),
  3. starts ecryptfs-token-agent on a pseudo-terminal, with the test-only
     ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS=1 (the guest reaches the bus
     over TCP with ANONYMOUS authentication, which carries no uid),
  4. asks `ecryptfs-token list` for the key's ECRYPTFS_SIG and checks it
     against an independent computation from the certificate,
  5. boots ONE VM (run-vm.sh --keymod ... --bus-socket ...) running every
     token scenario in order, and meanwhile plays the person at the agent's
     keyboard: it reads the guest console for requests (guest/token-lib.sh:
     "ETA-TOKEN AGENT stop|start|restart", "ETA-TOKEN PIN step actions n")
     and the agent's terminal for PIN prompts, and types the PIN, a wrong
     PIN or an empty line (cancel), at once or after a delay.
The guest can only write to its console; nothing it does reaches the agent's
terminal.  Host-side checks (prompt counts, "Wrong PIN" on the retry, no
unexpected prompt) are reported per scenario next to the guest's verdict.

With --fault-module the agent runs on libeta-fault-pkcs11.so wrapping
SoftHSM2 (tests/fault-pkcs11/README.md): --token-speed MS makes every
decryption take MS milliseconds, as on a real token, and fault-bus.py serves
the module's counters and control keys on the test bus
(org.ecryptfs.TestFault1), so a guest scenario can count token operations or
pull a token out.  --backup-token adds a second token, "Backup Token", holding
the same key (imported into both).

usage: run-token-scenarios.py --agent PATH --cli PATH --keymod PATH
           [--cache DIR] [--workdir DIR] [--only NAMES] [--verbose]
           [--timeout S] [--known-bugs] [--scenario-dir DIR]
           [--fault-module PATH [--token-speed MS] [--backup-token]]
           [-- more run-vm.sh arguments]
Exit status: 0 all passed, 1 a scenario or host check failed, 2 set-up failed.
"""

import argparse
import errno
import hashlib
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
# In the multiarch directory, which Debian's python3 knows.
SOFTHSM = "/usr/lib/%s/softhsm/libsofthsm2.so" % sysconfig.get_config_var("MULTIARCH")
TOKEN_LABEL = "Test Token"
BACKUP_LABEL = "Backup Token"
KEY_LABEL = "VM key"
KEY_BITS = 2048
USER_PIN = "1234"
SO_PIN = "5678"
WRONG_PIN = "0000"
# The agent's terminal prompt: "PIN for <token label> (empty line cancels): ",
# without a newline (it waits on that line).  Matched loosely: the text after
# the label may change.
PROMPT_RE = re.compile(r"PIN for (?:%s|%s)[^\n]*?: "
                       % (re.escape(TOKEN_LABEL), re.escape(BACKUP_LABEL)))
RETRY_RE = re.compile(r"wrong PIN", re.I)
BUS_NAME = "org.ecryptfs.TokenAgent1"

T0 = time.monotonic()


def stamp():
    return "%7.2f" % (time.monotonic() - T0)


class SetupError(Exception):
    pass


class Log:
    """The driver's own event log (also echoed with --verbose)."""

    def __init__(self, path, verbose):
        self.file = open(path, "w", buffering=1)
        self.verbose = verbose

    def __call__(self, text):
        line = "[%s] %s" % (stamp(), text)
        self.file.write(line + "\n")
        if self.verbose:
            print("token-driver: " + line, flush=True)


# --------------------------------------------------------------------------
# The key id, computed independently of the product (ECRYPTFS-FACTS.md).

def openpgp_sig(n, e):
    nbits, ebits = n.bit_length(), e.bit_length()
    nbytes, ebytes = (nbits + 7) // 8, (ebits + 7) // 8
    length = 10 + nbytes + ebytes
    data = (bytes([0x99]) + length.to_bytes(2, "big") + bytes([4, 0, 0, 0, 0, 2])
            + nbits.to_bytes(2, "big") + n.to_bytes(nbytes, "big")
            + ebits.to_bytes(2, "big") + e.to_bytes(ebytes, "big"))
    return hashlib.sha1(data).hexdigest()[:16]


def check_sig_vectors():
    got = openpgp_sig((1 << 2047) | 0xF1, 65537)
    if got != "e244166fe88486ac":
        raise SetupError("key id self-test: got %s for the 2048-bit vector" % got)
    got = openpgp_sig((1 << 1023) | 1, 3)
    if got != "12263612046e807a":
        raise SetupError("key id self-test: got %s for the 1024-bit vector" % got)


def cert_sig(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-modulus", "-text"],
                         check=True, capture_output=True, text=True).stdout
    n = int(re.search(r"^Modulus=([0-9A-Fa-f]+)$", out, re.M).group(1), 16)
    e = int(re.search(r"Exponent: (\d+)", out).group(1))
    return openpgp_sig(n, e), n.bit_length()


# --------------------------------------------------------------------------
# The agent on a pseudo-terminal.

class Agent:
    def __init__(self, path, env, transcript, log, provider=SOFTHSM):
        self.path = path
        self.provider = provider
        self.env = env
        self.transcript = open(transcript, "wb", buffering=0)
        self.log = log
        self.pid = None
        self.fd = None
        self.text = ""        # everything read since this instance started
        self.scanned = 0      # prompts handled in self.text
        self.starts = 0

    def running(self):
        return self.pid is not None

    def start(self, timeout=15.0):
        if self.running():
            return
        self.starts += 1
        self.transcript.write(("\n===== agent start #%d at %s =====\n"
                               % (self.starts, stamp())).encode())
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(self.path, [self.path, "--provider", self.provider], self.env)
            finally:
                os._exit(127)
        os.set_blocking(fd, False)
        self.pid, self.fd = pid, fd
        self.text = ""
        self.scanned = 0
        deadline = time.monotonic() + timeout
        while "serving %s" % BUS_NAME not in self.text:
            if time.monotonic() > deadline:
                raise SetupError("the agent did not announce itself within %.0f s:\n%s"
                                 % (timeout, self.text[-2000:]))
            if not self.poll(0.1) and self.exited():
                raise SetupError("the agent exited at start:\n" + self.text[-2000:])
        self.log("agent #%d started (pid %d)" % (self.starts, pid))

    def exited(self):
        if self.pid is None:
            return True
        pid, _ = os.waitpid(self.pid, os.WNOHANG)
        return pid != 0

    def poll(self, timeout):
        """Reads what the agent printed; True if anything came."""
        if self.fd is None:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno in (errno.EIO, errno.EAGAIN):
                return False
            raise
        if not data:
            return False
        self.transcript.write(data)
        self.text += data.decode("utf-8", "replace")
        return True

    def new_prompts(self):
        """[(retry?, text before the prompt)] for prompts not yet handled."""
        found = []
        while True:
            m = PROMPT_RE.search(self.text, self.scanned)
            if m is None:
                return found
            before = self.text[self.scanned:m.start()]
            found.append((RETRY_RE.search(before) is not None, before))
            self.scanned = m.end()

    def prompt_waiting(self):
        return PROMPT_RE.search(self.text, self.scanned) is not None

    def type(self, line):
        os.write(self.fd, (line + "\n").encode())

    def stop(self):
        if not self.running():
            return
        pid = self.pid
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        status = None
        while time.monotonic() < deadline:
            self.poll(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        try:
            while self.poll(0):
                pass
        except OSError:
            pass
        os.close(self.fd)
        self.pid = self.fd = None
        self.log("agent stopped (pid %d, wait status %s)" % (pid, status))


# --------------------------------------------------------------------------
# Scenario bookkeeping.

class Step:
    def __init__(self, scenario, name, actions, count):
        self.scenario = scenario
        self.name = name
        self.actions = [] if actions == "none" else actions.split(",")
        if "-" in count:
            lo, hi = count.split("-", 1)
            self.min, self.max = int(lo), int(hi)
        else:
            self.min = self.max = int(count)
        self.prompts = []        # (seconds since T0, retry?, action)
        self.checked = False


class Scenario:
    def __init__(self, name):
        self.name = name
        self.guest = "RUNNING"
        self.reason = ""
        self.seconds = None
        self.host_failures = []
        self.info = []
        self.prompts = 0


class Driver:
    def __init__(self, agent, log):
        self.agent = agent
        self.log = log
        self.scenarios = {}
        self.order = []
        self.current = None          # Scenario
        self.step = None             # Step
        self.pending = []            # (due, action, step)
        self.console_pos = 0
        self.console_partial = ""
        self.global_failures = []

    # -- failures are charged to the scenario they happen in
    def fail(self, text, scenario=None):
        sc = scenario or self.current
        self.log("HOST CHECK FAILED%s: %s" % (" [%s]" % sc.name if sc else "", text))
        if sc:
            sc.host_failures.append(text)
        else:
            self.global_failures.append(text)

    def check_step(self):
        st = self.step
        if st is None or st.checked:
            return
        st.checked = True
        n = len(st.prompts)
        sc = self.scenarios.get(st.scenario)
        if not st.min <= n <= st.max:
            want = str(st.min) if st.min == st.max else "%d-%d" % (st.min, st.max)
            self.fail("step %s: %d PIN prompt(s), expected %s" % (st.name, n, want), sc)
        else:
            self.log("step %s: %d prompt(s) as expected" % (st.name, n))

    # -- the guest console
    def read_console(self, path):
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.console_pos:      # run-vm.sh truncated it
                    self.console_pos = 0
                    self.console_partial = ""
                f.seek(self.console_pos)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.console_pos += len(data)
        text = self.console_partial + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self.console_partial = lines.pop()
        for line in lines:
            self.console_line(line.replace("\r", ""))

    def console_line(self, line):
        m = re.search(r"(ETA-E2E|ETA-TOKEN) (.*)$", line)
        if not m:
            return
        kind, rest = m.group(1), m.group(2).strip()
        words = rest.split()
        if not words:
            return
        if kind == "ETA-E2E":
            self.e2e_marker(words, rest)
        else:
            self.token_request(words, rest)

    def e2e_marker(self, words, rest):
        verb = words[0]
        name = words[1].rstrip(":") if len(words) > 1 else ""
        if verb == "BEGIN":
            self.check_step()
            self.step = None
            sc = Scenario(name)
            self.scenarios[name] = sc
            self.order.append(name)
            self.current = sc
            self.log("scenario %s begins" % name)
        elif verb == "TIME" and name in self.scenarios:
            self.scenarios[name].seconds = words[2] if len(words) > 2 else None
        elif verb in ("PASS", "FAIL", "SKIP") and name in self.scenarios:
            self.check_step()
            self.step = None
            sc = self.scenarios[name]
            sc.guest = verb
            sc.reason = rest.split(":", 1)[1].strip() if ":" in rest else ""
            self.log("scenario %s: guest says %s %s" % (name, verb, sc.reason))
            self.current = None
        elif verb == "FATAL":
            self.global_failures.append("guest set-up failed: " + rest)

    def token_request(self, words, rest):
        verb = words[0]
        self.log("guest asks: " + rest)
        if verb == "AGENT" and len(words) == 2:
            what = words[1]
            try:
                if what in ("stop", "restart"):
                    for _due, act, st in self.pending:
                        self.fail("step %s: the agent was stopped before '%s' was typed"
                                  % (st.name, act))
                    self.pending = []
                    self.agent.stop()
                if what in ("start", "restart"):
                    self.agent.start()
            except SetupError as e:
                self.fail("agent %s: %s" % (what, e))
            if what not in ("stop", "start", "restart"):
                self.fail("unknown agent request: " + rest)
        elif verb == "PIN" and len(words) == 4:
            self.check_step()
            scenario = words[1].split("/", 1)[0]
            self.step = Step(scenario, words[1], words[2], words[3])
        elif verb == "INFO" and len(words) >= 2:
            sc = self.scenarios.get(words[1])
            if sc:
                sc.info.append(rest.split(None, 2)[2] if len(words) > 2 else "")
        else:
            self.fail("malformed request from the guest: " + rest)

    # -- the agent's terminal
    def handle_prompts(self, console_path):
        prompts = self.agent.new_prompts()
        if not prompts:
            return
        # Whatever made the agent prompt came after the guest's request line:
        # read the console to its end first.
        self.read_console(console_path)
        for retry, _before in prompts:
            st = self.step
            sc = self.current
            if sc:
                sc.prompts += 1
            if st is None or st.checked or len(st.prompts) >= len(st.actions):
                self.fail("unexpected PIN prompt%s (step %s); answered with an empty line"
                          % (" (retry)" if retry else "", st.name if st else "none"))
                if st is not None and not st.checked:
                    st.prompts.append((time.monotonic() - T0, retry, "cancel"))
                self.agent.type("")
                continue
            action = st.actions[len(st.prompts)]
            if len(st.prompts) > 0 and st.actions[len(st.prompts) - 1].startswith("wrong") \
                    and not retry:
                self.fail("step %s: the prompt after a wrong PIN does not say "
                          "it was wrong" % st.name)
            st.prompts.append((time.monotonic() - T0, retry, action))
            what, _, delay = action.partition("@")
            if what not in ("right", "wrong", "cancel"):
                self.fail("step %s: unknown action %s; cancelling" % (st.name, action))
                what = "cancel"
            due = time.monotonic() + (int(delay) / 1000.0 if delay else 0)
            self.log("prompt #%d of step %s%s -> %s" % (len(st.prompts), st.name,
                                                        " (retry)" if retry else "", action))
            self.pending.append((due, what, st))
        self.run_pending()

    def run_pending(self):
        now = time.monotonic()
        keep = []
        for due, what, st in self.pending:
            if due > now:
                keep.append((due, what, st))
                continue
            if not self.agent.running():
                self.fail("step %s: the agent is gone; could not answer (%s)" % (st.name, what))
                continue
            self.agent.type({"right": USER_PIN, "wrong": WRONG_PIN, "cancel": ""}[what])
            self.log("typed %s for step %s" % ({"right": "the PIN", "wrong": "a wrong PIN",
                                                "cancel": "an empty line"}[what], st.name))
        self.pending = keep

    def next_timeout(self):
        if not self.pending:
            return 0.05
        return max(0.0, min(0.05, min(d for d, _, _ in self.pending) - time.monotonic()))


# --------------------------------------------------------------------------
# Tokens.

def make_tokens(token_dir, labels, same_cert=False):
    """SoftHSM2 tokens with these labels, all holding the SAME key pair (made
    in software, imported into each, then destroyed), as
    tests/fixtures/make-token.sh does for one token.  Each token gets its own
    self-signed certificate for the key (CN=<key label>, then
    CN=<key label> (<token label>)), or with SAME_CERT all the first one:
    pkcs11-helper takes a certificate whose subject is another one's issuer
    for an issuer, and identical self-signed certificates on two tokens then
    hide the key from the agent.  Returns the key's fingerprint; writes
    TOKEN_DIR/softhsm2.conf and TOKEN_DIR/01.cert.pem (the first token's)."""
    os.makedirs(os.path.join(token_dir, "tokens"))
    conf = os.path.join(token_dir, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                "slots.removable = false\nlog.level = ERROR\n" % token_dir)
    env = dict(os.environ, SOFTHSM2_CONF=conf)

    def sh(*cmd):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SetupError("%s failed: %s%s" % (" ".join(cmd[:3]), out.stdout, out.stderr))
        return out.stdout

    for label in labels:
        sh("softhsm2-util", "--init-token", "--free", "--label", label,
           "--so-pin", SO_PIN, "--pin", USER_PIN)
    work = os.path.join(token_dir, "keygen")
    os.makedirs(work)
    key_pem, key_der = os.path.join(work, "key.pem"), os.path.join(work, "key.der")
    cert = os.path.join(token_dir, "01.cert.pem")
    cert_der, pub_der = os.path.join(work, "cert.der"), os.path.join(token_dir, "01.pub.der")
    try:
        sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % KEY_BITS,
           "-out", key_pem)
        sh("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", key_pem, "-outform", "DER",
           "-out", key_der)
        sh("openssl", "req", "-x509", "-new", "-key", key_pem, "-subj", "/CN=" + KEY_LABEL,
           "-days", "3650", "-outform", "PEM", "-out", cert)
        sh("openssl", "x509", "-in", cert, "-outform", "DER", "-out", cert_der)
        sh("openssl", "pkey", "-in", key_pem, "-pubout", "-outform", "DER", "-out", pub_der)
        for n, label in enumerate(labels):
            this_cert = cert_der
            if n > 0 and not same_cert:
                this_cert = os.path.join(work, "cert%d.der" % n)
                sh("openssl", "req", "-x509", "-new", "-key", key_pem,
                   "-subj", "/CN=%s (%s)" % (KEY_LABEL, label), "-days", "3650",
                   "-outform", "DER", "-out", this_cert)
            for obj, kind, extra in ((key_der, "privkey", ["--usage-decrypt"]),
                                     (this_cert, "cert", [])):
                sh("pkcs11-tool", "--module", SOFTHSM, "--token-label", label, "--login",
                   "--pin", USER_PIN, "--write-object", obj, "--type", kind, "--id", "01",
                   "--label", KEY_LABEL, *extra)
    finally:
        # The private key exists only on the tokens from here on.
        for f in (key_pem, key_der):
            if os.path.exists(f):
                with open(f, "r+b") as fh:
                    fh.write(b"\0" * os.path.getsize(f))
                os.unlink(f)
        shutil.rmtree(work, ignore_errors=True)
    with open(pub_der, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def start_fault_bus(workdir, env, control, status, log):
    """fault-bus.py on the test bus; returns its Popen once it owns its name."""
    logf = open(os.path.join(workdir, "fault-bus.log"), "w")
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fault-bus.py"),
                             "--control", control, "--status", status],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=logf, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if "ready" in line:
                log("fault-bus.py serves the fault module's counters (pid %d)" % proc.pid)
                return proc
            if not line:
                break
        if proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    logf.close()
    with open(os.path.join(workdir, "fault-bus.log")) as f:
        raise SetupError("fault-bus.py did not start (python3-gi?):\n" + f.read()[-2000:])


def run(args):
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    log = Log(os.path.join(workdir, "driver.log"), args.verbose)
    check_sig_vectors()
    for tool in ("softhsm2-util", "pkcs11-tool", "openssl", "dbus-daemon", "socat"):
        if shutil.which(tool) is None:
            raise SetupError("%s not found (tests/install-deps.sh)" % tool)
    for path in (args.agent, args.cli, args.keymod, SOFTHSM):
        if not os.path.exists(path):
            raise SetupError("%s not found" % path)
    if (args.token_speed is not None or args.backup_token) and not args.fault_module:
        raise SetupError("--token-speed and --backup-token need --fault-module")
    if args.fault_module and not os.path.exists(args.fault_module):
        raise SetupError("fault module %s not found (target eta-fault-pkcs11)" % args.fault_module)
    scenario_dir = os.path.abspath(args.scenario_dir or os.path.join(HERE, "scenarios-token"))
    if not os.path.isdir(scenario_dir):
        raise SetupError("scenario directory %s not found" % scenario_dir)

    # The token (and its backup, holding the same key).
    token_dir = os.path.join(workdir, "token")
    shutil.rmtree(token_dir, ignore_errors=True)
    if args.backup_token:
        fingerprint = make_tokens(token_dir, [TOKEN_LABEL, BACKUP_LABEL],
                                  same_cert=args.backup_same_cert)
    else:
        out = subprocess.run([os.path.join(SOURCE_ROOT, "tests/fixtures/make-token.sh"),
                              token_dir, TOKEN_LABEL, USER_PIN, SO_PIN,
                              "%s:%d:01" % (KEY_LABEL, KEY_BITS)],
                             env=dict(os.environ, ETA_SOFTHSM_MODULE=SOFTHSM),
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SetupError("make-token.sh failed: " + out.stderr)
        fingerprint = out.stdout.split()[1]
    cert = os.path.join(token_dir, "01.cert.pem")
    log("token made: key %s%s" % (fingerprint, ", on two tokens" if args.backup_token else ""))

    bus_dir = None
    agent = None
    vm = None
    fault_bus = None
    try:
        out = subprocess.run([os.path.join(HERE, "host-bus.sh"), "start"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SetupError("host-bus.sh start failed: " + out.stderr)
        bus = dict(l.split("=", 1) for l in out.stdout.splitlines() if "=" in l)
        bus_dir, bus_socket = bus["ETA_BUS_DIR"], bus["ETA_BUS_SOCKET"]
        address = "unix:path=" + bus_socket
        log("bus %s" % address)

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DBUS_", "XDG_", "ECRYPTFS_TOKEN_AGENT"))}
        env.update({"DBUS_SESSION_BUS_ADDRESS": address,
                    "SOFTHSM2_CONF": os.path.join(token_dir, "softhsm2.conf"),
                    "ECRYPTFS_TOKEN_AGENT_TEST_ALLOW_ANONYMOUS": "1",
                    "TERM": "dumb", "LANG": "C.UTF-8",
                    "GSETTINGS_BACKEND": "memory"})
        agent_env = dict(env)
        provider = SOFTHSM
        if args.fault_module:
            # The agent alone loads the fault module: one process writes its
            # status file.  fault-bus.py shows it to the guest.
            control = os.path.join(workdir, "fault.control")
            status = os.path.join(workdir, "fault.status")
            for f in (control, status):
                if os.path.exists(f):
                    os.unlink(f)
            with open(control, "w") as f:
                f.write("counters_epoch=0\n")
                if args.token_speed:
                    f.write("delay_ops=decrypt\ndelay_ms=%d\n" % args.token_speed)
            agent_env.update({"ETA_FAULT_PKCS11_CONTROL": control,
                              "ETA_FAULT_PKCS11_STATUS": status,
                              "ETA_FAULT_PKCS11_WRAPPED": SOFTHSM})
            provider = os.path.abspath(args.fault_module)
            fault_bus = start_fault_bus(workdir, env, control, status, log)
            log("agent on the fault module, decrypt %s"
                % ("%d ms per operation" % args.token_speed if args.token_speed
                   else "at SoftHSM2's speed"))
        agent = Agent(args.agent, agent_env, os.path.join(workdir, "agent-terminal.log"), log,
                      provider)
        agent.start()

        # The key id: what the agent says, and what the certificate gives.
        out = subprocess.run([args.cli, "list"], env=env, capture_output=True, text=True,
                             timeout=30)
        agent.poll(0)
        line = next((l for l in out.stdout.splitlines() if l.startswith(fingerprint)), None)
        if out.returncode != 0 or line is None:
            raise SetupError("ecryptfs-token list does not show %s:\n%s%s"
                             % (fingerprint, out.stdout, out.stderr))
        sig = line.split()[1]
        want_sig, bits = cert_sig(cert)
        if sig != want_sig or bits != KEY_BITS:
            raise SetupError("ecryptfs-token list gives sig %s for %s; the certificate "
                             "gives %s (%d bits)" % (sig, fingerprint, want_sig, bits))
        log("key id (ECRYPTFS_SIG) %s, checked against the certificate" % sig)

        env_file = os.path.join(workdir, "token.env")
        with open(env_file, "w") as f:
            f.write("ETA_TOKEN_FPR=%s\nETA_TOKEN_SIG=%s\nETA_TOKEN_BITS=%d\n"
                    "ETA_TOKEN_LABEL='%s'\nETA_TOKEN_KEY_LABEL='%s'\n"
                    % (fingerprint, sig, KEY_BITS, TOKEN_LABEL, KEY_LABEL))
            # The fault module (token-lib.sh's tok_fault_* functions).
            f.write("ETA_TOKEN_FAULT=%d\nETA_TOKEN_SPEED_MS=%d\nETA_TOKEN_BACKUP_LABEL='%s'\n"
                    % (1 if args.fault_module else 0, args.token_speed or 0,
                       BACKUP_LABEL if args.backup_token else ""))

        vm_dir = os.path.join(workdir, "vm")
        os.makedirs(vm_dir, exist_ok=True)
        console = os.path.join(vm_dir, "console.log")
        if os.path.exists(console):
            os.unlink(console)
        cmd = [os.path.join(HERE, "run-vm.sh"),
               "--workdir", vm_dir, "--log", console,
               "--keymod", args.keymod, "--bus-socket", bus_socket,
               "--no-default-scenarios", "--scenarios", scenario_dir,
               "--extra", "%s:/etc/eta-token/token.env" % env_file,
               "--extra", "%s:/etc/eta-token/cert.pem" % cert,
               "--extra", "%s:/etc/eta-token/keymod.conf"
               % os.path.join(SOURCE_ROOT, "data", "keymod.conf"),
               "--extra", "%s:/usr/share/eta-e2e/token-lib.sh"
               % os.path.join(HERE, "guest", "token-lib.sh"),
               "--scenario-timeout", str(args.scenario_timeout),
               "--timeout", str(args.timeout), "--no-skip"]
        if args.cache:
            cmd += ["--cache", args.cache]
        if args.known_bugs:
            cmd += ["--scenarios", os.path.join(HERE, "scenarios-token-known-bugs")]
        if args.only:
            cmd += ["--only", args.only]
        if args.verbose:
            cmd += ["--verbose"]
        cmd += args.vm_args
        log("run: " + " ".join(cmd))
        driver = Driver(agent, log)
        vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        while True:
            got = agent.poll(driver.next_timeout())
            driver.read_console(console)
            if got or agent.prompt_waiting():
                driver.handle_prompts(console)
            driver.run_pending()
            if agent.running() and agent.exited():
                driver.fail("the agent died (pid %d)" % agent.pid)
                agent.pid = None
                os.close(agent.fd)
                agent.fd = None
            if vm.poll() is not None:
                break
        vm_rc = vm.returncode
        vm = None
        driver.read_console(console)
        driver.check_step()
        return report(driver, vm_rc, workdir, log)
    finally:
        if vm is not None and vm.poll() is None:
            vm.terminate()
            vm.wait()
        if agent is not None:
            agent.stop()
        if fault_bus is not None:
            fault_bus.terminate()
            fault_bus.wait()
        if bus_dir:
            subprocess.run([os.path.join(HERE, "host-bus.sh"), "stop", bus_dir])


def report(driver, vm_rc, workdir, log):
    failed = vm_rc != 0
    print("e2e-token: host view (driver log %s/driver.log, agent terminal "
          "%s/agent-terminal.log)" % (workdir, workdir))
    for name in driver.order:
        sc = driver.scenarios[name]
        ok = sc.guest == "PASS" and not sc.host_failures
        failed = failed or not ok
        print("  %-4s  %-34s %6s s  prompts %d%s" % (
            "PASS" if ok else "FAIL", name, sc.seconds or "?", sc.prompts,
            "" if sc.guest in ("PASS", "FAIL") else "  guest: " + sc.guest))
        if sc.guest == "FAIL":
            print("        guest: %s" % sc.reason)
        for f in sc.host_failures:
            print("        host: %s" % f)
        for i in sc.info:
            print("        %s" % i)
    for f in driver.global_failures:
        failed = True
        print("  host: %s" % f)
    if not driver.order:
        failed = True
        print("  no token scenario ran")
    if failed:
        for title, path in (("driver log", "driver.log"),
                            ("agent terminal", "agent-terminal.log")):
            print("e2e-token: --- %s (last 40 lines of %s/%s) ---" % (title, workdir, path))
            try:
                with open(os.path.join(workdir, path), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            text = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\r", "")
            for line in text.splitlines()[-40:]:
                print("  | " + line)
    print("e2e-token: %s" % ("FAILED" if failed else "all passed"))
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", required=True)
    p.add_argument("--cli", required=True)
    p.add_argument("--keymod", required=True)
    p.add_argument("--cache")
    p.add_argument("--workdir", default="/tmp/eta-vm-token")
    p.add_argument("--only")
    p.add_argument("--scenario-timeout", type=int, default=90)
    p.add_argument("--timeout", type=int, default=200)
    p.add_argument("--verbose", "-v", action="store_true")
    p.add_argument("--known-bugs", action="store_true",
                   help="also run scenarios-token-known-bugs/ (they fail until the "
                        "product is fixed)")
    p.add_argument("--scenario-dir",
                   help="the guest scenarios (default: scenarios-token/ next to this script)")
    p.add_argument("--fault-module",
                   help="run the agent on this libeta-fault-pkcs11.so (wrapping SoftHSM2) "
                        "and serve its counters and control on the bus (fault-bus.py)")
    p.add_argument("--token-speed", type=int, metavar="MS",
                   help="every token decryption takes MS milliseconds (the fault "
                        "module's delay_ms for decrypt); needs --fault-module")
    p.add_argument("--backup-token", action="store_true",
                   help="a second token, '%s', holding the same key; needs "
                        "--fault-module (its absent_tokens key pulls either out)" % BACKUP_LABEL)
    p.add_argument("--backup-same-cert", action="store_true",
                   help="the backup token holds the first token's certificate too "
                        "(by default it has its own for the same key)")
    p.add_argument("vm_args", nargs="*", help="more run-vm.sh arguments (after --)")
    args = p.parse_args()

    def on_signal(signum, frame):
        raise SetupError("killed by signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run(args)
    except SetupError as e:
        print("e2e-token: set-up failed: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
