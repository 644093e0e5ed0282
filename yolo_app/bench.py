"""``yolo-app bench`` / ``make bench``: Ultralytics' predict vs our annotate on one video, each timed
as a whole process (import, model load, warm-up and every frame), so the ratio is what a user waits."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import torch

from yolo_app import __version__
from yolo_app.engine.models import resolve_weights
from yolo_app.engine.sources import DEMO_PATH
from yolo_app.errors import EXIT_OK, RuntimeFailure, UserError

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "videos" / "one-by-one-person-detection.mp4"

# Ultralytics as its users run it: defaults, streaming, nothing saved.
ULTRALYTICS_SCRIPT = """
import sys
from ultralytics import YOLO
n = sum(1 for _ in YOLO(sys.argv[1]).predict(sys.argv[2], stream=True, imgsz=int(sys.argv[3]), verbose=False))
print(n)
"""


def _frame_count(video: Path) -> int:
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            return stream.frames or sum(1 for _ in container.decode(stream))
    except (av.FFmpegError, IndexError):
        raise UserError(f"{video}: not a readable video") from None


def _timed(cmd: list[str]) -> float:
    env = {**os.environ, "YOLO_VERBOSE": "false", "YOLO_AUTOINSTALL": "false"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeFailure(f"benchmark step failed ({' '.join(cmd[:4])} ...): {last}")
    return elapsed


def run_bench(args: argparse.Namespace) -> int:
    if args.source == "demo":
        source = DEMO_PATH
    else:
        source = Path(args.source) if args.source else (SHARED_VIDEO if SHARED_VIDEO.is_file() else DEMO_PATH)
    if not source.is_file():
        raise UserError(f"no such video: {source}")
    weights = resolve_weights(args.weights)
    frames = _frame_count(source)
    py = sys.executable
    ours = [py, "-m", "yolo_app", "annotate", str(source), "--weights", str(weights), "--imgsz", str(args.imgsz)]
    walls: dict[str, list[float]] = {"ultralytics": [], "annotate": [], "annotate_novideo": []}
    with tempfile.TemporaryDirectory(prefix="yolo_app_bench_") as tmp:
        for _ in range(args.runs):
            walls["ultralytics"].append(_timed([py, "-c", ULTRALYTICS_SCRIPT, str(weights), str(source),
                                                str(args.imgsz)]))
            walls["annotate"].append(_timed([*ours, "--out", tmp]))
            walls["annotate_novideo"].append(_timed([*ours, "--out", tmp, "--no-video"]))
    fps = {k: frames / statistics.median(v) for k, v in walls.items()}
    report = {
        "video": str(source), "frames": frames, "weights": weights.name, "imgsz": args.imgsz, "runs": args.runs,
        "ultralytics_fps": round(fps["ultralytics"], 2),
        "annotate_fps": round(fps["annotate"], 2),
        "annotate_novideo_fps": round(fps["annotate_novideo"], 2),
        "ratio": round(fps["annotate"] / fps["ultralytics"], 3),
        "ratio_novideo": round(fps["annotate_novideo"] / fps["ultralytics"], 3),
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "versions": _versions(),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(_table(report))
    return EXIT_OK


def _versions() -> dict[str, str]:
    import supervision
    import ultralytics

    return {"yolo_app": __version__, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
            "supervision": supervision.__version__, "python": platform.python_version()}


def _table(r: dict) -> str:
    rows = [
        ("Ultralytics predict(stream=True), defaults", f"{r['ultralytics_fps']:.1f} FPS", "1.00x"),
        ("yolo-app annotate (annotated MP4 + JSONL)", f"{r['annotate_fps']:.1f} FPS", f"{r['ratio']:.2f}x"),
        ("yolo-app annotate --no-video (JSONL)", f"{r['annotate_novideo_fps']:.1f} FPS", f"{r['ratio_novideo']:.2f}x"),
    ]
    width = max(len(name) for name, _, _ in rows)
    lines = [
        f"video {Path(r['video']).name}: {r['frames']} frames, {r['weights']}, imgsz {r['imgsz']}, "
        f"{r['device']}, median of {r['runs']} run(s), whole-process wall time",
        f"{'what'.ljust(width)}  {'speed':>10}  {'ratio':>6}",
    ]
    lines += [f"{name.ljust(width)}  {speed:>10}  {ratio:>6}" for name, speed, ratio in rows]
    lines.append(", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    return "\n".join(lines)
