"""Before Qt starts, `yolo-app gui` says in one line why no window can open here: Qt's xcb plugin missing
system libraries (Qt itself aborts with a core dump), or no X server. The libraries are made missing for real:
a mount namespace in which the system library folder lacks their files, as on a desktop without the packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require
from yolo_app.gui.display import missing_libraries, package_of, parse_ldd_missing, xcb_plugin

pytestmark = pytest.mark.servers

HIDDEN = ("libxkbcommon-x11.so.0", "libxcb-cursor.so.0")  # often missing on a fresh desktop; in ldd's order


def _gui_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "DISPLAY")}
    return {**env, **extra}


def _no_core_dump() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _ldd(plugin: Path) -> str:
    return subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout


def _ldd_not_found(plugin: Path) -> bool:
    return "not found" in _ldd(plugin)


def _resolved(plugin: Path) -> dict[str, Path]:
    """soname -> the file the loader finds for it, from ldd."""
    found = {}
    for line in _ldd(plugin).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            found[parts[0]] = Path(parts[2]).resolve()
    return found


@pytest.fixture(scope="module")
def plugin() -> Path:
    path = xcb_plugin(_gui_env(DISPLAY=":0"))
    assert path is not None, "PyQt6 ships no xcb platform plugin here"
    assert shutil.which("ldd"), "ldd (libc-bin) is not installed"
    return path


def _require_all_libraries(plugin: Path) -> None:
    """The window's libraries are an install step (.ci/run, the README): missing, the cases fail naming them."""
    missing = missing_libraries(plugin)
    assert not missing, (f"the window's libraries are not all installed: {', '.join(missing)} (sudo apt install "
                         f"{' '.join(package_of(name) for name in missing)})")


@pytest.fixture(scope="module")
def without_libraries(plugin, tmp_path_factory):
    """A command prefix that runs a command where HIDDEN are not installed: in a user + mount namespace, the
    system library folder is replaced by links to all its files but theirs."""
    require(shutil.which("unshare") is not None
            and subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0,
            "user namespaces are not available here (unshare -rm is refused), so no library can be hidden")
    _require_all_libraries(plugin)  # the expected messages name HIDDEN alone
    resolved = _resolved(plugin)
    folder = resolved[HIDDEN[1]].parent
    assert all(resolved[name].parent == folder for name in HIDDEN), f"{HIDDEN} are in different folders: {resolved}"
    root = tmp_path_factory.mktemp("nolibs")
    original, links = root / "original", root / "links"
    original.mkdir()
    links.mkdir()
    for entry in os.listdir(folder):
        if not any(entry.startswith(name.split(".so")[0] + ".so") for name in HIDDEN):
            (links / entry).symlink_to(original / entry)
    mounts = f"mount --bind {folder} {original} && mount --bind {links} {folder} && exec \"$@\""
    return ["unshare", "-rm", "sh", "-c", mounts, "-"]


def test_ldd_output_of_the_real_plugin_without_its_libraries_names_them_and_their_packages(plugin, without_libraries):
    proc = subprocess.run([*without_libraries, "ldd", str(plugin)], capture_output=True, text=True, timeout=60)
    missing = parse_ldd_missing(proc.stdout)
    assert missing == list(HIDDEN), proc.stdout  # each once, though ldd lists libxcb-cursor twice
    assert proc.stdout.count("libxcb-cursor.so.0 => not found") == 2
    assert [package_of(name) for name in missing] == ["libxkbcommon-x11-0", "libxcb-cursor0"]


def test_package_names_follow_debian_naming():
    names = ["libxcb-icccm.so.4", "libxcb-render-util.so.0", "libEGL.so.1", "libfontconfig.so.1", "libX11-xcb.so.1",
             "libglib-2.0.so.0", "weird"]
    assert [package_of(n) for n in names] == ["libxcb-icccm4", "libxcb-render-util0", "libegl1", "libfontconfig1",
                                              "libx11-xcb1", "libglib2.0-0", "weird"]


def test_nothing_is_missing_for_the_real_plugin_where_its_libraries_are_installed(plugin):
    assert missing_libraries(plugin) == [] and not _ldd_not_found(plugin), _ldd(plugin)


def test_without_the_libraries_qt_aborts_and_the_gui_says_what_to_install_in_one_line(without_libraries, tmp_path):
    env = _gui_env(DISPLAY=":77")  # the check comes before Qt connects to any display
    qt = subprocess.run([*without_libraries, sys.executable, "-c",
                         "from PyQt6.QtWidgets import QApplication; QApplication([])"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, preexec_fn=_no_core_dump)
    assert qt.returncode == -6 and "xcb-cursor0" in qt.stderr  # what users got: SIGABRT, a core dump
    expected = ("yolo-app: error: the window cannot open: Qt's xcb platform plugin needs libxkbcommon-x11.so.0, "
                "libxcb-cursor.so.0, not installed here; on Debian/Ubuntu: sudo apt install libxkbcommon-x11-0 "
                "libxcb-cursor0 (the README lists all the window's libraries)")
    for args in (["gui", "demo"], ["gui", "--check"], ["gui", "--monitor", str(tmp_path / "monitor.yaml")], []):
        proc = subprocess.run([*without_libraries, sys.executable, "-m", "yolo_app", *args], capture_output=True,
                              text=True, env=env, cwd=REPO, timeout=60)
        assert (proc.returncode, proc.stderr.strip()) == (1, expected), args


def test_offscreen_needs_no_xcb_libraries(without_libraries):
    proc = subprocess.run([*without_libraries, sys.executable, "-m", "yolo_app", "gui", "--check"],
                          capture_output=True, text=True, env=_gui_env(DISPLAY=":77", QT_QPA_PLATFORM="offscreen"),
                          cwd=REPO, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_no_x_server_on_display_is_one_line(plugin):
    _require_all_libraries(plugin)  # else the line names them instead
    number = next(n for n in range(97, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    proc = subprocess.run([sys.executable, "-m", "yolo_app", "gui", "demo"], capture_output=True, text=True,
                          env=_gui_env(DISPLAY=f":{number}"), cwd=REPO, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (f"yolo-app: error: the window cannot open: no X server answers on "
                                   f"DISPLAY=:{number} (is it running, and may this user use it? over ssh: ssh -X)")


def test_a_real_x_server_passes_the_check(plugin):
    assert shutil.which("xvfb-run"), "xvfb-run is not installed (sudo apt install xvfb xauth)"
    _require_all_libraries(plugin)
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-m", "yolo_app", "gui", "--check"], capture_output=True,
                          text=True, env=_gui_env(), cwd=REPO, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
