"""Start the GUI: ``yolo-app gui`` (and plain ``yolo-app``), and ``yolo-app gui --monitor CONFIG``."""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from yolo_app.errors import EXIT_OK, RuntimeFailure, UserError
from yolo_app.gui.display import has_display, require_platform_libraries
from yolo_app.settings import GuiOptions


@dataclass(frozen=True)
class Launch:
    """How long the window stays open and what it saves first (for docs and tests)."""

    quit_after: float | None = None  # seconds; None: until the user closes it
    screenshot: Path | None = None  # a PNG of the whole window, taken just before it closes

    def __post_init__(self) -> None:
        if self.screenshot is not None and self.quit_after is None:
            raise UserError("--screenshot needs --quit-after SECONDS (the moment the picture is taken)")
        if self.screenshot is not None and not self.screenshot.parent.is_dir():
            raise UserError(f"cannot save a screenshot in {self.screenshot.parent}: no such folder")


def check_window(headless_hint: str = "for headless work use `yolo-app annotate`") -> None:
    """A one-line error, before Qt starts, when no window can open here: no display, or Qt's platform plugin
    lacks system libraries (Qt itself would abort the process with a core dump)."""
    if not has_display():
        raise UserError(f"no display to open a window on ({headless_hint}; "
                        "for screenshots run under xvfb-run or set QT_QPA_PLATFORM=offscreen)")
    require_platform_libraries()


def run_gui(options: GuiOptions, launch: Launch = Launch()) -> int:
    check_window()
    from PyQt6.QtWidgets import QApplication

    from yolo_app.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("yolo-app")
    app.setOrganizationName("yolo_app")
    window = MainWindow(options)
    window.show()
    _run(app, window, launch, quit_app=True)
    _check_saved(launch, window)
    return EXIT_OK


def run_monitor_gui(config_path: Path, launch: Launch = Launch(), trust_weights: bool = False) -> int:
    """``yolo-app gui --monitor CONFIG``: the monitoring window on its own."""
    check_window("for headless monitoring use `yolo-app monitor`")
    from PyQt6.QtWidgets import QApplication

    from yolo_app.gui.monitor_window import MonitorWindow
    from yolo_app.monitor.config import load_config

    config = load_config(config_path)  # a bad config fails here, one line, before any window
    if trust_weights:  # gui --trust-weights: as the config's trust_weights: true
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, trust=True))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("yolo-app")
    window = MonitorWindow(config)
    window.show()
    _run(app, window, launch, quit_app=False)
    started = time.monotonic()
    if not window.wait_stopped():
        print(f"yolo-app: the monitor did not stop in {time.monotonic() - started:.0f} s", file=sys.stderr)
    _check_saved(launch, window)
    return EXIT_OK


def _run(app, window, launch: Launch, quit_app: bool) -> None:
    """Qt's event loop until the window closes (or ``launch.quit_after``); the screenshot, if asked for."""
    from PyQt6.QtCore import QTimer

    if launch.quit_after is not None:
        def finish() -> None:
            if launch.screenshot is not None:
                window.setProperty("screenshot_saved", window.grab().save(str(launch.screenshot)))
            window.close()
            if quit_app:
                app.quit()

        QTimer.singleShot(int(launch.quit_after * 1000), finish)
    app.exec()


def _check_saved(launch: Launch, window) -> None:
    if launch.screenshot is not None and not window.property("screenshot_saved"):
        raise RuntimeFailure(f"could not write the screenshot {launch.screenshot}")
