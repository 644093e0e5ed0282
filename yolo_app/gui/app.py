"""Start the GUI: ``yolo-app gui`` (and plain ``yolo-app``)."""

from __future__ import annotations

import argparse
import sys
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
