"""``yolo-app bench`` / ``make bench``: Ultralytics' predict vs our annotate on one video, each timed
as a whole process (import, model load, warm-up and every frame), so the ratio is what a user waits.

Measured: Ultralytics ``predict(stream=True)`` with the ``.pt`` and with the same exported model our
backend runs (equal terms), the backend's bare inference rate on the same input (no decode, no
letterbox, no NMS: the ceiling), and ``annotate`` with and without the video. Efficiency is our rate
over that ceiling."""

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
from yolo_app.engine.backends import ExportCache
from yolo_app.engine.inference import Detector, letterbox_geometry
from yolo_app.engine.models import LoadedModel, configure_cpu_threads, load_model
from yolo_app.engine.sources import DEMO_PATH
from yolo_app.errors import EXIT_OK, RuntimeFailure, UserError

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "videos" / "one-by-one-person-detection.mp4"

# Ultralytics as its users run it: defaults, streaming, nothing saved. An exported model is fixed to
# one input shape, which is passed as imgsz (h,w); a .pt takes the usual square size.
ULTRALYTICS_SCRIPT = """
import sys
from ultralytics import YOLO
imgsz = [int(v) for v in sys.argv[3].split(",")]
n = sum(1 for _ in YOLO(sys.argv[1], task="detect").predict(sys.argv[2], stream=True,
                                                          imgsz=imgsz if len(imgsz) > 1 else imgsz[0], verbose=False))
print(n)
"""
BARE_ITERATIONS = 50


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one whole process."""
    env = {**os.environ, "YOLO_VERBOSE": "false", "YOLO_AUTOINSTALL": "false"}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            last = (err.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise RuntimeFailure(f"benchmark step failed ({' '.join(cmd[:4])} ...): {last}")
    return elapsed, usage.ru_maxrss / 1024  # kilobytes on Linux


def run_bench(args: argparse.Namespace) -> int:
    if args.source == "demo":
        source = DEMO_PATH
    else:
        source = Path(args.source) if args.source else (SHARED_VIDEO if SHARED_VIDEO.is_file() else DEMO_PATH)
    if not source.is_file():
        raise UserError(f"no such video: {source}")
    frames, (height, width) = _probe(source)
    model = load_model(args.weights, "auto", backend=args.backend)
    weights = model.path
    input_hw = letterbox_geometry(height, width, args.imgsz, model.stride, True).input_hw
    exported = ExportCache(weights).get(model.backend, input_hw) if model.backend != "torch" else None
    bare_fps = _bare_fps(model, input_hw)
    py = sys.executable
    ours = [py, "-m", "yolo_app", "annotate", str(source), "--weights", str(weights), "--imgsz", str(args.imgsz),
            "--backend", model.backend]
    steps = {
        "ultralytics": [py, "-c", ULTRALYTICS_SCRIPT, str(weights), str(source), str(args.imgsz)],
        "ultralytics_same_backend": [py, "-c", ULTRALYTICS_SCRIPT, str(exported or weights), str(source),
                                     ",".join(map(str, input_hw)) if exported else str(args.imgsz)],
    }
    walls: dict[str, list[float]] = {key: [] for key in (*steps, "annotate", "annotate_novideo")}
    peak_rss = 0.0
    with tempfile.TemporaryDirectory(prefix="yolo_app_bench_") as tmp:
        steps["annotate"] = [*ours, "--out", tmp]
        steps["annotate_novideo"] = [*ours, "--out", tmp, "--no-video"]
        for _ in range(args.runs):
            for key, cmd in steps.items():
                wall, rss = _timed(cmd)
                walls[key].append(wall)
                if key.startswith("annotate"):
                    peak_rss = max(peak_rss, rss)
    fps = {k: frames / statistics.median(v) for k, v in walls.items()}
    report = {
        "video": str(source), "frames": frames, "weights": weights.name, "imgsz": args.imgsz,
        "input_hw": list(input_hw), "backend": model.backend, "runs": args.runs,
        "ultralytics_fps": round(fps["ultralytics"], 2),
        "ultralytics_same_backend_fps": round(fps["ultralytics_same_backend"], 2),
        "inference_fps": round(bare_fps, 2),
        "pipeline_fps": round(fps["annotate"], 2),
        "pipeline_novideo_fps": round(fps["annotate_novideo"], 2),
        "ratio": round(fps["annotate"] / fps["ultralytics"], 3),
        "ratio_novideo_same_backend": round(fps["annotate_novideo"] / fps["ultralytics_same_backend"], 3),
        "efficiency": round(fps["annotate"] / bare_fps, 3),
        "efficiency_novideo": round(fps["annotate_novideo"] / bare_fps, 3),
        "peak_rss_mb": round(peak_rss, 1),
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "versions": _versions(),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(_table(report))
    return EXIT_OK


def _probe(video: Path) -> tuple[int, tuple[int, int]]:
    """Frame count and (height, width)."""
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for _ in container.decode(stream))
            return count, (stream.height, stream.width)
    except (av.FFmpegError, IndexError):
        raise UserError(f"{video}: not a readable video") from None


def _bare_fps(model: LoadedModel, input_hw: tuple[int, int]) -> float:
    """The backend alone on one letterboxed input, after warm-up: the ceiling for any pipeline."""
    configure_cpu_threads(model.device)
    detector = Detector(model)
    batch = torch.zeros((1, 3, *input_hw), dtype=torch.float16 if model.half else torch.float32, device=model.device)
    with torch.inference_mode():
        for _ in range(5):
            detector._forward(batch)
        start = time.perf_counter()
        for _ in range(BARE_ITERATIONS):
            detector._forward(batch)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
    return BARE_ITERATIONS / (time.perf_counter() - start)


def _versions() -> dict[str, str]:
    import supervision
    import ultralytics

    return {"yolo_app": __version__, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
            "supervision": supervision.__version__, "python": platform.python_version()}


def _table(r: dict) -> str:
    rows = [
        ("Ultralytics predict(stream=True), .pt, defaults", r["ultralytics_fps"], "1.00x"),
        (f"Ultralytics predict(stream=True), {r['backend']} export", r["ultralytics_same_backend_fps"], ""),
        (f"{r['backend']} bare inference, {r['input_hw'][0]}x{r['input_hw'][1]} (the ceiling)",
         r["inference_fps"], ""),
        ("yolo-app annotate (annotated MP4 + JSONL)", r["pipeline_fps"], f"{r['ratio']:.2f}x"),
        ("yolo-app annotate --no-video (JSONL)", r["pipeline_novideo_fps"],
         f"{r['ratio_novideo_same_backend']:.2f}x same backend"),
    ]
    width = max(len(name) for name, _, _ in rows)
    lines = [
        f"video {Path(r['video']).name}: {r['frames']} frames, {r['weights']}, imgsz {r['imgsz']}, backend "
        f"{r['backend']}, {r['device']}, median of {r['runs']} run(s), whole-process wall time",
        f"{'what'.ljust(width)}  {'FPS':>7}  ratio",
    ]
    lines += [f"{name.ljust(width)}  {value:7.1f}  {ratio}" for name, value, ratio in rows]
    lines.append(f"efficiency (our FPS / bare inference FPS): {r['efficiency']:.2f} with video, "
                 f"{r['efficiency_novideo']:.2f} without; peak memory {r['peak_rss_mb']:.0f} MB")
    lines.append(", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    return "\n".join(lines)
