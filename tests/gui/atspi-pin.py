#!/usr/bin/python3
"""Plays the person in front of the agent's PIN dialog, through AT-SPI.

Finds the dialogs of the running ecryptfs-token-agent the way a screen reader
does, and types a PIN into one, cancels it, or counts them. Needs Debian's
python3-pyatspi, hence /usr/bin/python3.

usage: atspi-pin.py count
       atspi-pin.py enter PIN [--confirm-final-try] [--remember]
       atspi-pin.py cancel
       atspi-pin.py describe
       atspi-pin.py press LABEL
The dialogs are found and worked by their buttons' English labels; in another
language pass the translated words (--cancel-label Abbrechen ...).
Exit 0 on success; 3 when no dialog appeared within --timeout seconds.
"""
import argparse
import sys
import time

import pyatspi
from gi.repository import GLib

from eta_atspi import APP_NAME, agent_apps, walk

# Words of the buttons' labels (without mnemonics), set from the command line.
LABELS = {"cancel": "Cancel", "close": "Close", "unlock": "Unlock", "confirm": "Try Anyway",
          "remember": "Remember PIN"}
# The "Remember PIN" switch: GTK 4.8 shows a GtkSwitch with the role of a
# check box, but gives it an action, where it gives check buttons none.
SWITCH_ROLE = "check box"


def dialogs():
    try:
        return find_dialogs()
    except GLib.GError:
        return []


def find_dialogs():
    found = []
    for app in agent_apps():
        for window in app:
            if window is None:
                continue
            # A PIN dialog holds the Cancel button (every state has it).
            if any(n.getRoleName() == "push button" and LABELS["cancel"] in (n.name or "")
                   or n.getRoleName() == "push button" and LABELS["close"] in (n.name or "")
                   for n in walk(window)):
                found.append(window)
    return found


def wait_for_dialogs(count, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = dialogs()
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def press(window, word):
    for node in walk(window):
        if node.getRoleName() == "push button" and word in (node.name or ""):
            action = node.queryAction()
            for i in range(action.nActions):
                if action.getName(i) == "click":
                    action.doAction(i)
                    return True
    return False


def switch_on(window, word):
    """Turns on the switch whose name holds @word; False when there is none."""
    for node in walk(window):
        if node.getRoleName() == SWITCH_ROLE and word in (node.name or ""):
            if node.getState().contains(pyatspi.STATE_CHECKED):
                return True
            action = node.queryAction()
            if action.nActions == 0:
                print("the %s switch has no AT-SPI action" % word, file=sys.stderr)
                return False
            action.doAction(0)
            deadline = time.monotonic() + 5
            while not node.getState().contains(pyatspi.STATE_CHECKED):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
            return True
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["count", "enter", "cancel", "describe", "press"])
    parser.add_argument("pin", nargs="?")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--confirm-final-try", action="store_true")
    parser.add_argument("--remember", action="store_true",
                        help="enter: turn the Remember PIN switch on first")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="count: wait this long, then count again")
    for key, word in LABELS.items():
        parser.add_argument("--%s-label" % key, default=word,
                            help="the %s button's label (default: %s)" % (key, word))
    args = parser.parse_args()
    for key in LABELS:
        LABELS[key] = getattr(args, "%s_label" % key)

    if args.command == "count":
        found = wait_for_dialogs(1, args.timeout)
        if args.settle:
            time.sleep(args.settle)
            found = dialogs()
        print(len(found))
        return 0

    found = wait_for_dialogs(1, args.timeout)
    if not found:
        print("no PIN dialog of %s appeared" % APP_NAME, file=sys.stderr)
        return 3
    window = found[0]

    if args.command == "describe":
        print("window: %s" % window.name)
        for node in walk(window):
            if node.getRoleName() in ("label", "push button", "password text"):
                print("%s: %s" % (node.getRoleName(), node.name))
            elif node.getRoleName() == SWITCH_ROLE:
                on = node.getState().contains(pyatspi.STATE_CHECKED)
                print("%s: %s (%s)" % (node.getRoleName(), node.name, "on" if on else "off"))
        return 0
    if args.command == "press":
        # args.pin holds the button's label here.
        return 0 if press(window, args.pin) else 4
    if args.command == "cancel":
        return 0 if press(window, LABELS["cancel"]) or press(window, LABELS["close"]) else 4

    entry = next((n for n in walk(window) if n.getRoleName() == "password text"), None)
    if entry is None:
        print("the dialog has no PIN entry", file=sys.stderr)
        return 4
    if args.remember and not switch_on(window, LABELS["remember"]):
        print("the dialog has no %s switch that turns on" % LABELS["remember"], file=sys.stderr)
        return 4
    entry.queryEditableText().setTextContents(args.pin)
    if not press(window, LABELS["unlock"]):
        return 4
    if args.confirm_final_try:
        # The final try needs a second, explicit press.
        deadline = time.monotonic() + args.timeout
        while not press(window, LABELS["confirm"]):
            if time.monotonic() > deadline:
                print("the dialog never asked to confirm the final try", file=sys.stderr)
                return 4
            time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
