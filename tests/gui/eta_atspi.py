"""What the AT-SPI drivers of tests/gui/ share: finding the running agent in
the accessibility tree and walking a window's accessible objects."""
import pyatspi
from gi.repository import GLib

APP_NAME = "ecryptfs-token-agent"


def agent_apps():
    desktop = pyatspi.Registry.getDesktop(0)
    return [app for app in desktop if app is not None and app.name == APP_NAME]


def walk(node):
    yield node
    try:
        children = [child for child in node if child is not None]
    except GLib.GError:
        # The window went away while we looked (a dialog closing).
        return
    for child in children:
        yield from walk(child)
