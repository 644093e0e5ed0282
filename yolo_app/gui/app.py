"""Start the GUI: ``yolo-app gui`` (and plain ``yolo-app``), and ``yolo-app gui --monitor CONFIG``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from yolo_app.errors import EXIT_OK, RuntimeFailure, UserError
from yolo_app.gui.display import has_display
from yolo_app.settings import DEFAULT_CONF, DEFAULT_IOU


def run_gui(args: argparse.Namespace) -> int:
    if not has_display():
        raise UserError("no display to open a window on (for headless work use `yolo-app annotate`; "
                        "for screenshots run under xvfb-run or set QT_QPA_PLATFORM=offscreen)")
    screenshot = Path(args.screenshot) if args.screenshot else None
    if screenshot is not None and not screenshot.parent.is_dir():
        raise UserError(f"cannot save a screenshot in {screenshot.parent}: no such folder")

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from yolo_app.engine.inference import DetectionSettings
    from yolo_app.gui.main_window import GuiOptions, MainWindow

    DetectionSettings(conf=args.conf if args.conf is not None else DEFAULT_CONF,
                      iou=args.iou if args.iou is not None else DEFAULT_IOU)  # bad values fail here, before a window
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("yolo-app")
    app.setOrganizationName("yolo_app")
    window = MainWindow(GuiOptions(source=args.source, weights=args.weights, device=args.device, backend=args.backend,
                                   conf=args.conf, iou=args.iou, compare=args.compare,
                                   classify=args.classify, classify_classes=args.classify_classes,
                                   trust_weights=args.trust_weights))
    window.show()
    saved: list[bool] = []
    if args.quit_after is not None:
        def finish() -> None:
            if screenshot is not None:
                saved.append(window.grab().save(str(screenshot)))
            window.close()
            app.quit()

        QTimer.singleShot(int(args.quit_after * 1000), finish)
    app.exec()
    if screenshot is not None and not all(saved):
        raise RuntimeFailure(f"could not write the screenshot {screenshot}")
    return EXIT_OK


def run_monitor_gui(args: argparse.Namespace) -> int:
    """``yolo-app gui --monitor CONFIG``: the monitoring window on its own."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from yolo_app.gui.monitor_window import MonitorWindow
    from yolo_app.monitor.config import load_config

    if not has_display():
        raise UserError("no display to open a window on (for headless monitoring use `yolo-app monitor`)")
    config = load_config(args.monitor)  # a bad config fails here, one line, before any window
    if getattr(args, "trust_weights", False):  # gui --trust-weights: as the config's trust_weights: true
        config = dataclasses.replace(config, trust_weights=True)
    screenshot = Path(args.screenshot) if getattr(args, "screenshot", None) else None
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("yolo-app")
    window = MonitorWindow(config)
    window.show()
    saved: list[bool] = []
    if getattr(args, "quit_after", None) is not None:
        def finish() -> None:
            if screenshot is not None:
                saved.append(window.grab().save(str(screenshot)))
            window.close()

        QTimer.singleShot(int(args.quit_after * 1000), finish)
    app.exec()
    started = time.monotonic()
    if not window.wait_stopped():
        print(f"yolo-app: the monitor did not stop in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if screenshot is not None and not all(saved):
        raise RuntimeFailure(f"could not write the screenshot {screenshot}")
    return EXIT_OK
