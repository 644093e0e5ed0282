"""GUI soak benchmark: play a file in a loop in the real window and watch memory and speed.

    python -m yolo_app.gui.soak [VIDEO] [--seconds 600] [--warmup 60] [--grid]

Prints display FPS, end-to-end latency (capture -> painted, p50/p95) and resident memory after
warm-up and at the end. ``make bench-gui`` runs it for 10 minutes on a shared video, offscreen;
``make bench-grid`` runs it for a minute without and a minute with the grid view (``--grid``), in
real time and as fast as possible (``--fast``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from yolo_app.settings import DEFAULT_WEIGHTS, set_process_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolo_app.gui.soak", description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=None)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--grid", action="store_true", help="with the grid view on")
    parser.add_argument("--fast", action="store_true",
                        help="play as fast as possible instead of in real time (the display then waits on inference)")
    args = parser.parse_args(argv)
    # Here, not on import: before Qt, Ultralytics and OpenCV load, and only when it runs as a benchmark.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    set_process_env()

    import psutil
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication

    from yolo_app.bench import SHARED_VIDEO
    from yolo_app.engine.sources import DEMO_PATH
    from yolo_app.gui.main_window import GuiOptions, MainWindow

    video = args.video or str(SHARED_VIDEO if SHARED_VIDEO.is_file() else DEMO_PATH)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(GuiOptions(source=video, weights=args.weights))
    window.playback.loop_box.setChecked(True)
    window.grid_panel.toggle.setChecked(args.grid)
    window.playback.speed_box.setCurrentIndex(1 if args.fast else 0)
    window.show()
    process = psutil.Process()
    samples: list[tuple[float, float]] = []
    start = time.monotonic()

    def sample() -> None:
        samples.append((time.monotonic() - start, process.memory_info().rss / 2**20))
        if samples[-1][0] >= args.seconds:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(5000)
    loop = QEventLoop()
    loop.exec()
    after_warmup = [rss for t, rss in samples if t >= args.warmup]
    report = {
        "video": video, "grid": args.grid, "fast": args.fast, "seconds": round(samples[-1][0]),
        "frames_painted": window.painted[0],
        "display_fps": round(window.painted[0] / samples[-1][0], 2),
        "latency_p50_ms": round(window.latency[0].percentile(50)),
        "latency_p95_ms": round(window.latency[0].percentile(95)),
        "rss_after_warmup_mb": round(after_warmup[0], 1), "rss_end_mb": round(after_warmup[-1], 1),
        "rss_max_after_warmup_mb": round(max(after_warmup), 1),
        "rss_growth_mb": round(after_warmup[-1] - after_warmup[0], 1),
    }
    window.close()
    app.processEvents()
    print(json.dumps(report))
    if not report["frames_painted"]:
        print("soak: no frame was shown (is the model on the weights search path?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
