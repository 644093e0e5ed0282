"""Whether a window can open here: asked before Qt starts by both windows' entry points (gui.app's
run_gui and run_monitor_gui), without importing Qt or the windows themselves."""

from __future__ import annotations

import os
import sys


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
