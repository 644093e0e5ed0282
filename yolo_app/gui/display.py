"""Whether a window can open here: asked before Qt starts by both windows' entry points (gui.app's
run_gui and run_monitor_gui), without importing Qt or the windows themselves.

Qt cannot report a platform plugin that fails to load: it aborts the process (SIGABRT, a core dump) with
lines about the plugin. On Linux the xcb plugin needs system libraries a fresh desktop may lack (PyQt6 >= 6.5:
libxcb-cursor0 and friends), so we ask the dynamic loader (ldd) first and name the packages instead."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from yolo_app.errors import RuntimeFailure

# Debian names a library's package after its soname (libfoo.so.1 -> libfoo1, libfoo-x11.so.0 -> libfoo-x11-0);
# these are the exceptions among what Qt's xcb plugin loads.
_PACKAGE_EXCEPTIONS = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0", "libz.so.1": "zlib1g",
                       "libgcc_s.so.1": "libgcc-s1"}
_NOT_FOUND = re.compile(r"^\s*(\S+) => not found\s*$", re.MULTILINE)


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_platform_libraries() -> None:
    """Raise a one-line ``RuntimeFailure`` naming the packages to install when Qt's xcb plugin, the one Qt
    would load here, cannot load; nothing when another platform is chosen (offscreen, wayland) or all is there."""
    plugin = xcb_plugin()
    if plugin is None:
        return
    missing = missing_libraries(plugin)
    if missing:
        raise RuntimeFailure(missing_libraries_message(missing))
    if not x_display_answers():  # Qt aborts on this too
        raise RuntimeFailure(f"the window cannot open: no X server answers on DISPLAY={os.environ['DISPLAY']} "
                             f"(is it running, and may this user use it? over ssh: ssh -X)")


def x_display_answers() -> bool:
    """Whether libxcb connects to $DISPLAY (with $XAUTHORITY), as Qt's xcb plugin will; True if it cannot tell."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(None, None)  # never NULL: a failed connection is an error object
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


def xcb_plugin(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The xcb platform plugin Qt will load in this environment, or None when Qt will not use xcb."""
    if not sys.platform.startswith("linux") or not environ.get("DISPLAY"):
        return None
    platform = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if platform and platform != "xcb":
        return None  # offscreen, wayland, vnc...: the user chose another plugin
    if not platform and environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return None  # Qt 6 starts with its wayland plugin in a Wayland session
    # Where Qt looks first: $QT_QPA_PLATFORM_PLUGIN_PATH, then PyQt6's own plugins folder.
    folders = [Path(p) for p in environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if p]
    spec = importlib.util.find_spec("PyQt6")  # found, not imported: nothing of Qt loads here
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) / "Qt6" / "plugins" / "platforms" for p in spec.submodule_search_locations]
    return next((f / "libqxcb.so" for f in folders if (f / "libqxcb.so").is_file()), None)


def missing_libraries(library: Path) -> list[str]:
    """The sonames the dynamic loader cannot find for ``library`` (its own and its libraries' needs), from
    ``ldd``; empty when all are there or when ldd cannot tell (then Qt reports for itself)."""
    try:
        proc = subprocess.run(["ldd", str(library)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd_missing(proc.stdout)


def parse_ldd_missing(output: str) -> list[str]:
    """The ``NAME => not found`` sonames of ldd's output, each once, in ldd's order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(output)))


def package_of(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (e.g. libxcb-cursor.so.0 -> libxcb-cursor0)."""
    if soname in _PACKAGE_EXCEPTIONS:
        return _PACKAGE_EXCEPTIONS[soname]
    match = re.fullmatch(r"(.+)\.so\.(\d+)(?:\..*)?", soname)
    if match is None:
        return soname
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def missing_libraries_message(missing: list[str]) -> str:
    packages = " ".join(dict.fromkeys(package_of(s) for s in missing))
    return (f"the window cannot open: Qt's xcb platform plugin needs {', '.join(missing)}, not installed here; "
            f"on Debian/Ubuntu: sudo apt install {packages} (the README lists all the window's libraries)")
