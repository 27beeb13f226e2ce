#!/usr/bin/python3
"""Looks at the agent's ordinary windows (not its prompts) through AT-SPI, as
a screen reader does: says whether a window is open, reads what it shows, and
presses its buttons. Needs Debian's python3-pyatspi, hence /usr/bin/python3.

usage: atspi-window.py count TITLE
       atspi-window.py describe TITLE
       atspi-window.py press TITLE BUTTON [--description TEXT]
TITLE is the window's title; BUTTON a button's accessible name, and TEXT its
description, exactly. describe prints one "role: name" line per label, button
and text of the window (buttons with their description in brackets). Exit 0 on success; 3 when no such window appeared within --timeout
seconds; 4 when the button is not there.
"""
import argparse
import sys
import time

from gi.repository import GLib

from eta_atspi import APP_NAME, agent_apps, walk


def windows(title):
    found = []
    try:
        for app in agent_apps():
            found.extend(w for w in app if w is not None and w.name == title)
    except GLib.GError:
        # A window went away while we looked.
        return []
    return found


def wait_for_window(title, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = windows(title)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["count", "describe", "press"])
    parser.add_argument("title")
    parser.add_argument("button", nargs="?")
    parser.add_argument("--description")
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args()

    found = wait_for_window(args.title, args.timeout)
    if args.command == "count":
        print(len(found))
        return 0
    if not found:
        print("no window \"%s\" of %s appeared" % (args.title, APP_NAME), file=sys.stderr)
        return 3
    window = found[0]
    if args.command == "describe":
        print("window: %s" % window.name)
        for node in walk(window):
            if node.getRoleName() in ("label", "text"):
                print("%s: %s" % (node.getRoleName(), node.name))
            elif node.getRoleName() == "push button":
                print("push button: %s [%s]" % (node.name, node.description))
        return 0
    # The window fills in its list when the agent has looked at the tokens.
    deadline = time.monotonic() + args.timeout
    while True:
        buttons = [n for n in walk(window) if n.getRoleName() == "push button"]
        for node in buttons:
            if node.name == args.button and args.description in (None, node.description):
                action = node.queryAction()
                for i in range(action.nActions):
                    if action.getName(i) == "click":
                        action.doAction(i)
                        return 0
        if time.monotonic() > deadline:
            print("the window has no button \"%s\" [%s], only %s"
                  % (args.button, args.description,
                     [(n.name, n.description) for n in buttons]), file=sys.stderr)
            return 4
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
