"""``make bench-web``: what open live views of the monitor's web page cost. A real `yolo-app monitor` process on
the looping person video (one camera, its own rate) is measured for a stretch with no page open, then with N
pages watching it (each asks for the next picture once the last has arrived and the page's period has passed,
and for the status every 2 s, as the page's script does); the viewers are threads of this process, so the
monitor's CPU is its own. Prints a table and, last, one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from monitor_process import MonitorProcess  # noqa: E402

from yolo_app.engine.cpu import cpu_description  # noqa: E402

VIDEO = HERE.parent.parent / "shared" / "videos" / "one-by-one-person-detection.mp4"


def watch(url: str, period: float, stop: threading.Event, latencies: list[float], pictures: list[int]) -> None:
    next_status = 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url + "live/hall.jpg", timeout=10) as response:
                pictures.append(hash(response.read()))
            latencies.append(time.monotonic() - started)
            if started >= next_status:
                urllib.request.urlopen(url + "status", timeout=10).read()
                next_status = started + 2.0
        except OSError:
            pass
        stop.wait(period)


def measure(monitor: MonitorProcess, url: str, seconds: float, viewers: int, period: float) -> dict:
    process = psutil.Process(monitor.proc.pid)
    stop = threading.Event()
    latencies: list[float] = []
    pictures: list[int] = []
    threads = [threading.Thread(target=watch, args=(url, period, stop, latencies, pictures), daemon=True)
               for _ in range(viewers)]
    frames_before = monitor.status()["cameras"]["hall"]["frames"]
    cpu_before, started = sum(process.cpu_times()[:2]), time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    wall = time.monotonic() - started
    frames = monitor.status()["cameras"]["hall"]["frames"] - frames_before
    stop.set()
    for t in threads:
        t.join(15)
    result = {"viewers": viewers, "cpu_percent": round(100 * cpu / wall, 1), "camera_fps": round(frames / wall, 2)}
    if viewers:
        ordered = sorted(latencies)
        result.update(pictures_served_per_s=round(len(pictures) / wall, 1),
                      distinct_pictures_per_s=round(len(set(pictures)) / wall, 2),
                      picture_p50_ms=round(1000 * statistics.median(ordered), 1),
                      picture_p95_ms=round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0, help="each stretch (default: 60)")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--live-fps", type=float, default=4.0, help="the page's web.live_fps (default: 4)")
    parser.add_argument("--video", type=Path, default=VIDEO if VIDEO.is_file() else HERE.parent / "assets" / "demo.mp4")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "true")
    with tempfile.TemporaryDirectory(prefix="yolo_app_bench_web_") as tmp:
        config = Path(tmp) / "monitor.yaml"
        config.write_text(json.dumps({
            "storage": str(Path(tmp) / "data"), "web": {"port": 0, "live_fps": args.live_fps},
            "cameras": [{"name": "hall", "source": str(args.video), "loop": True, "classes": ["person"],
                         "zones": [{"name": "table", "polygon": [[380, 340], [560, 340], [560, 432], [380, 432]]}],
                         "lines": [{"name": "exit", "points": [[620, 432], [620, 300]]}]}]}))
        monitor = MonitorProcess(config)
        try:
            url = monitor.url()
            time.sleep(args.warmup)
            idle = measure(monitor, url, args.seconds, 0, 1.0 / args.live_fps)
            watched = measure(monitor, url, args.seconds, args.viewers, 1.0 / args.live_fps)
        finally:
            monitor.finish()
    machine = cpu_description()
    print(f"bench-web on {machine}: one camera, {args.video.name} at its own rate, web.live_fps {args.live_fps}")
    print(f"{'pages open':>10} {'monitor CPU %':>14} {'camera fps':>11} {'pictures/s':>11} {'distinct/s':>11} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for r in (idle, watched):
        print(f"{r['viewers']:>10} {r['cpu_percent']:>14} {r['camera_fps']:>11} "
              f"{r.get('pictures_served_per_s', '-'):>11} {r.get('distinct_pictures_per_s', '-'):>11} "
              f"{r.get('picture_p50_ms', '-'):>7} {r.get('picture_p95_ms', '-'):>7}")
    print(json.dumps({"machine": machine, "live_fps": args.live_fps, "idle": idle, "watched": watched,
                      "added_cpu_percent": round(watched["cpu_percent"] - idle["cpu_percent"], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
