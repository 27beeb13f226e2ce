#!/usr/bin/python3
"""The fault PKCS#11 module's control and counters, on the test bus.

run-token-scenarios.py starts this next to an agent that runs on
libeta-fault-pkcs11.so (tests/fault-pkcs11/README.md), so that guest
scenarios, which reach the host only through the bus, can read the module's
counters (how many token operations an open cost) and change its control
keys (pull a token out, slow it down).  TEST ONLY: it owns a name on the
private test bus, which accepts anonymous clients.

usage: fault-bus.py --control FILE --status FILE
Owns org.ecryptfs.TestFault1 on $DBUS_SESSION_BUS_ADDRESS; object
/org/ecryptfs/TestFault1, interface org.ecryptfs.TestFault1:
  GetCounter(s name) -> t   a status counter ("decrypt_calls", "login_calls",
                            "<op>_calls", "<op>_failures"); 0 when the module
                            has not counted it since the last Reset
  GetStatus(s key) -> s     any status key ("present", "absent_tokens"...),
                            "" when missing
  Set(s key, s value)       sets a control key, "" removes it; the module
                            applies it at its next call
  Reset()                   counters from zero (a new counters_epoch); the
                            control keys stay
  GetControl() -> s         the control file as it is now
Prints "fault-bus: ready" on stdout once the name is owned.
"""

import argparse
import os
import sys

from gi.repository import Gio, GLib

NAME = "org.ecryptfs.TestFault1"
PATH = "/org/ecryptfs/TestFault1"
XML = """
<node>
  <interface name="org.ecryptfs.TestFault1">
    <method name="GetCounter">
      <arg name="name" type="s" direction="in"/>
      <arg name="value" type="t" direction="out"/>
    </method>
    <method name="GetStatus">
      <arg name="key" type="s" direction="in"/>
      <arg name="value" type="s" direction="out"/>
    </method>
    <method name="Set">
      <arg name="key" type="s" direction="in"/>
      <arg name="value" type="s" direction="in"/>
    </method>
    <method name="Reset"/>
    <method name="GetControl">
      <arg name="text" type="s" direction="out"/>
    </method>
  </interface>
</node>
"""


def read_keys(path):
    keys = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in "#;[" or "=" not in line:
                    continue
                k, v = line.split("=", 1)
                keys[k.strip()] = v.strip()
    except FileNotFoundError:
        pass
    return keys


class Control:
    """The control file: key=value lines, replaced atomically."""

    def __init__(self, control, status):
        self.control = control
        self.status = status
        self.keys = read_keys(control)
        self.epoch = int(self.keys.get("counters_epoch", "0") or 0)

    def write(self):
        self.keys["counters_epoch"] = str(self.epoch)
        tmp = "%s.tmp.%d" % (self.control, os.getpid())
        with open(tmp, "w") as f:
            for k, v in self.keys.items():
                f.write("%s=%s\n" % (k, v))
        os.rename(tmp, self.control)

    def set(self, key, value):
        if "\n" in key or "\n" in value or "=" in key or key == "counters_epoch":
            raise ValueError("bad key or value")
        if value == "":
            self.keys.pop(key, None)
        else:
            self.keys[key] = value
        self.write()

    def reset(self):
        self.epoch += 1
        self.write()

    def status_value(self, key):
        return read_keys(self.status).get(key, "")

    def counter(self, name):
        status = read_keys(self.status)
        # Written before the module saw the last reset: nothing counted since.
        if status.get("counters_epoch", "") != str(self.epoch):
            return 0
        try:
            return int(status.get(name, "0"))
        except ValueError:
            return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--control", required=True)
    p.add_argument("--status", required=True)
    args = p.parse_args()
    control = Control(os.path.abspath(args.control), os.path.abspath(args.status))
    control.write()

    info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    loop = GLib.MainLoop()

    def on_call(conn, sender, path, iface, method, params, invocation):
        try:
            if method == "GetCounter":
                invocation.return_value(GLib.Variant("(t)", (control.counter(params[0]),)))
            elif method == "GetStatus":
                invocation.return_value(GLib.Variant("(s)", (control.status_value(params[0]),)))
            elif method == "Set":
                control.set(params[0], params[1])
                invocation.return_value(None)
            elif method == "Reset":
                control.reset()
                invocation.return_value(None)
            elif method == "GetControl":
                with open(control.control) as f:
                    invocation.return_value(GLib.Variant("(s)", (f.read(),)))
            else:
                invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod", method)
        except (OSError, ValueError) as e:
            invocation.return_dbus_error("org.ecryptfs.TestFault1.Error.Failed", str(e))

    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if not address:
        print("fault-bus: DBUS_SESSION_BUS_ADDRESS is not set", file=sys.stderr)
        return 2
    conn = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    conn.register_object(PATH, info, on_call, None, None)

    def on_acquired(_conn, _name):
        print("fault-bus: ready", flush=True)

    def on_lost(_conn, _name):
        print("fault-bus: lost the name %s" % NAME, file=sys.stderr, flush=True)
        loop.quit()

    Gio.bus_own_name_on_connection(conn, NAME, Gio.BusNameOwnerFlags.NONE, on_acquired, on_lost)
    conn.connect("closed", lambda *a: loop.quit())
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
