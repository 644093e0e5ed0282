"""``make bench-monitor``: how many cameras this machine watches at their frame rate with one model.

The monitor runs on 1, 2, 4 … cameras (each every frame through the detector: motion gating off, the
worst case) for a while each and measures what a buyer of cameras asks: frames per second per camera
(the slowest and the median), capture-to-detection latency (p95), frames dropped by the newest-wins
policy, the process's CPU (percent of one core) and memory. It stops at the first count where a camera
falls below ``min_fps`` and prints, last, one JSON line with ``cameras_sustained``: the most cameras that
each kept ``min_fps``. Usage (real cameras, or the RTSP test cameras ``tests/bench_monitor.py`` starts)::

    python -m yolo_app.monitor.capacity URL [URL ...] [--seconds 60] [--warmup 20] [--min-fps 4.5]
        [--inference shared|per_camera]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from yolo_app.settings import DEFAULT_WEIGHTS, set_process_env

STEPS = (1, 2, 3, 4, 6, 8, 12, 16)


def camera_counts(available: int) -> list[int]:
    return [n for n in STEPS if n <= available] or [available]


def measure(urls: list[str], seconds: float, warmup: float, weights: str = DEFAULT_WEIGHTS,
            backend: str = "auto", inference: str = "shared") -> dict:
    """Run the monitor on ``urls`` (all at once) and measure the window after ``warmup``."""
    from yolo_app.monitor.config import load_config
    from yolo_app.monitor.runner import Monitor

    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="yolo_app_capacity_") as tmp:
        path = Path(tmp) / "monitor.yaml"
        cameras = [{"name": f"cam{i + 1}", "source": url, "motion": {"enabled": False}} for i, url in enumerate(urls)]
        path.write_text(json.dumps({"model": weights, "backend": backend, "storage": str(Path(tmp) / "data"),
                                    "inference": inference, "cameras": cameras}))
        monitor = Monitor(load_config(path))
        monitor.start()
        try:
            monitor.wait(warmup)
            before = {name: (cam.frames, cam.dropped) for name, cam in monitor.cameras.items()}
            process.cpu_percent(None)
            started = time.monotonic()
            monitor.wait(seconds)
            elapsed = time.monotonic() - started
            cpu = process.cpu_percent(None)
            rss = process.memory_info().rss / 2**20
            status = monitor.snapshot()["cameras"]
            fps = [(cam.frames - before[name][0]) / elapsed for name, cam in monitor.cameras.items()]
            dropped = sum(cam.dropped - before[name][1] for name, cam in monitor.cameras.items())
            latency = max((s["latency_p95_ms"] or 0.0) for s in status.values())
            shared = monitor.inference_stats()
        finally:
            monitor.stop()
    return {"cameras": len(urls), "inference": inference, "frames_per_call": shared.get("frames_per_call"),
            "fps_per_camera": {"min": round(min(fps), 2), "median": round(statistics.median(fps), 2)},
            "latency_p95_ms": round(latency, 1), "dropped": dropped, "cpu_percent": round(cpu, 1),
            "rss_mb": round(rss, 1)}


def ramp(urls: list[str], seconds: float, warmup: float, min_fps: float, report=print, **kwargs) -> dict:
    """More cameras until one falls below ``min_fps``; the last result with ``cameras_sustained``."""
    sustained, result = 0, {}
    for n in camera_counts(len(urls)):
        result = measure(urls[:n], seconds, warmup, **kwargs)
        report(json.dumps(result))
        if result["fps_per_camera"]["min"] < min_fps:
            break
        sustained = n
    return {**result, "cameras_sustained": sustained, "min_fps": min_fps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+", help="camera URLs (the cameras should send 5 fps)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured per camera count (default: 60)")
    parser.add_argument("--warmup", type=float, default=20.0, help="before measuring (default: 20)")
    parser.add_argument("--min-fps", type=float, default=4.5)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--inference", choices=("shared", "per_camera"), default="shared",
                        help="the cameras share network calls (default), or each runs its own detector")
    args = parser.parse_args(argv)
    set_process_env()
    final = ramp(args.urls, args.seconds, args.warmup, args.min_fps, weights=args.weights, backend=args.backend,
                 inference=args.inference, report=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
