"""``make soak``: the monitor on a looping video for a long while, to show that memory stays flat.

Prints the resident memory after a warm-up and at the end, the growth between them, and what the
monitor did (events, frames, motion-skipped share). Usage::

    python -m yolo_app.monitor.soak [VIDEO] [--seconds 600] [--warmup 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

from yolo_app.settings import DEFAULT_WEIGHTS, set_process_env

SHARED_VIDEO = Path(__file__).resolve().parents[3] / "shared" / "videos" / "one-by-one-person-detection.mp4"


def soak_config(video: Path, storage: Path) -> dict:
    """A camera on the looping video with the zone, line and alerts of the person video."""
    return {"model": DEFAULT_WEIGHTS, "conf": 0.4, "storage": str(storage), "retention": {"days": 1, "max_gb": 1},
            "cameras": [{"name": "hall", "source": str(video), "loop": True, "classes": ["person"],
                         "motion": {"enabled": True, "threshold": 0.01},
                         "zones": [{"name": "table", "polygon": [[380, 340], [560, 340], [560, 432], [380, 432]]}],
                         "lines": [{"name": "exit", "points": [[620, 432], [620, 300]]}],
                         "alerts": [{"on": "zone_enter", "zone": "table", "clip": {"pre": 2, "post": 2}},
                                    {"on": "line_cross", "line": "exit"}]}]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--warmup", type=float, default=60.0)
    args = parser.parse_args(argv)
    set_process_env()  # as the CLI's main does: before the monitor's imports load Ultralytics and OpenCV

    from yolo_app.monitor.config import load_config
    from yolo_app.monitor.runner import Monitor

    if not args.video.is_file():
        print(f"soak: no such video: {args.video}", file=sys.stderr)
        return 2
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="yolo_app_soak_") as tmp:
        path = Path(tmp) / "monitor.yaml"
        path.write_text(json.dumps(soak_config(args.video, Path(tmp) / "data")))
        monitor = Monitor(load_config(path))
        monitor.start()
        start = time.monotonic()
        try:
            monitor.wait(args.warmup)
            warm_rss = process.memory_info().rss / 2**20
            print(f"after {args.warmup:.0f} s warm-up: RSS {warm_rss:.0f} MB", flush=True)
            while time.monotonic() - start < args.seconds:
                monitor.wait(min(60.0, args.seconds - (time.monotonic() - start)))
                status = monitor.snapshot()["cameras"]["hall"]
                print(f"{time.monotonic() - start:5.0f} s: RSS {process.memory_info().rss / 2**20:.0f} MB, "
                      f"{monitor.events_total} events, {status['frames']} frames, state {status['state']}",
                      flush=True)
            end_rss = process.memory_info().rss / 2**20
            status = monitor.snapshot()["cameras"]["hall"]
        finally:
            monitor.stop()
    growth = (end_rss - warm_rss) / warm_rss * 100
    print(f"soak {args.seconds:.0f} s: RSS {warm_rss:.0f} MB after warm-up -> {end_rss:.0f} MB at the end "
          f"({growth:+.1f} %); {monitor.events_total} events; {status['frames']} frames; motion skipped "
          f"{status['motion_skipped_fraction']:.0%}; counts {status['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
