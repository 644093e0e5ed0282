"""``yolo-app bench`` / ``make bench``: Ultralytics' predict vs our annotate on one video, each timed
as a whole process (import, model load, warm-up and every frame), so the ratio is what a user waits.

Measured: Ultralytics ``predict(stream=True)`` with the ``.pt`` and with the same exported model our
backend runs (equal terms: the same export in the runtime's default precision), the backend's bare
inference rate on the same input in the batch annotate uses (no decode, no letterbox, no NMS: the
ceiling), and ``annotate`` with and without the video. Efficiency is annotate's own frame rate (the
one it prints, start-up excluded) over that ceiling; the whole-process figure is reported beside it."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from yolo_app import __version__
from yolo_app.engine.backends import ExportCache
from yolo_app.engine.heads import HEAD_END2END
from yolo_app.engine.capture import Playback
from yolo_app.engine.inference import Detector, file_batch, letterbox_geometry
from yolo_app.engine.models import LoadedModel
from yolo_app.engine.pipeline import Pipeline
from yolo_app.engine.readers import AvReader
from yolo_app.engine.sinks import Sink
from yolo_app.engine.sources import DEMO_PATH, SourceSpec
from yolo_app.engine.types import ChannelPolicy, Result, SourceKind
from yolo_app.errors import EXIT_OK, RuntimeFailure, UserError
from yolo_app.factory import build_detector
from yolo_app.settings import DEFAULT_IMGSZ, DetectionOptions, ModelSettings

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
RUN_SUMMARY = re.compile(r"\d+ frames in ([\d.]+) s")
LIVE_SECONDS = 15.0  # live-mode latency: the video played in real time, newest frame wins, as a camera


class _LatencyProbe(Sink):
    """Records capture->result latency and per-frame processing time of a live-mode run."""

    policy = ChannelPolicy.LATEST
    name = "latency"

    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.busy_ms: list[float] = []

    def write(self, result: Result) -> None:
        self.latency_ms.append((result.done_at - result.frame.captured_at) * 1e3)
        t = result.timings
        self.busy_ms.append(t.pre + t.infer + t.post)


def _timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (MB) and standard output of one whole process."""
    env = {**os.environ, "YOLO_VERBOSE": "false", "YOLO_AUTOINSTALL": "false"}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            last = (err.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise RuntimeFailure(f"benchmark step failed ({' '.join(cmd[:4])} ...): {last}")
        out.seek(0)
        return elapsed, usage.ru_maxrss / 1024, out.read().decode(errors="replace")  # ru_maxrss: KB on Linux


def _run_seconds(stdout: str) -> float:
    """The annotate run's own time from its summary line ("N frames in S s"): from the pipeline's start
    (model warm-up included) to the last frame written; imports and model loading excluded."""
    found = RUN_SUMMARY.search(stdout)
    if found is None:
        raise RuntimeFailure(f"benchmark step printed no summary: {stdout.strip()[-200:]}")
    return float(found.group(1))


@dataclass(frozen=True)
class BenchSettings:
    """One `yolo-app bench`: the video (None: the shared person video, else the demo), the model as annotate
    would run it, and how often each measurement repeats."""

    source: str | None = None
    model: ModelSettings = ModelSettings()
    imgsz: int = DEFAULT_IMGSZ
    runs: int = 1
    json: bool = False


def run_bench(settings: BenchSettings) -> int:
    if settings.source == "demo":
        source = DEMO_PATH
    else:
        source = Path(settings.source) if settings.source else (SHARED_VIDEO if SHARED_VIDEO.is_file() else DEMO_PATH)
    if not source.is_file():
        raise UserError(f"no such video: {source}")
    frames, (height, width) = _probe(source)
    imgsz, trust = settings.imgsz, settings.model.trust
    detector = build_detector(settings.model, DetectionOptions(imgsz=imgsz)).detector
    model = detector.model
    weights = model.path
    input_hw = model.input_hw or letterbox_geometry(height, width, imgsz, model.stride, True).input_hw
    if model.exported:  # the user's own export: both sides run that file
        exported: Path | None = model.path
    elif model.backend != "torch":
        # Warm our own export's cache; Ultralytics gets the same network in its own form (for an end-to-end
        # head, its export with the top-k in the graph, which its predict reads).
        form = "e2e" if model.head == HEAD_END2END else ""
        ExportCache(weights).get(model.backend, input_hw, form=form)
        exported = ExportCache(weights).get(model.backend, input_hw, form="e2e-topk" if form else "")
    else:
        exported = None
    bare_fps = _bare_fps(detector, input_hw)
    live = _live_latency(detector, source)
    py = sys.executable
    ours = [py, "-m", "yolo_app", "annotate", str(source), "--weights", str(weights), "--imgsz", str(imgsz),
            "--backend", model.backend, "--device", settings.model.device, "--precision", settings.model.precision,
            *(["--trust-weights"] if trust else [])]
    steps = {
        "ultralytics": [py, "-c", ULTRALYTICS_SCRIPT, str(weights), str(source), str(imgsz)],
        "ultralytics_same_backend": [py, "-c", ULTRALYTICS_SCRIPT, str(exported or weights), str(source),
                                     ",".join(map(str, input_hw)) if exported else str(imgsz)],
    }
    walls: dict[str, list[float]] = {key: [] for key in (*steps, "annotate", "annotate_novideo")}
    runs: dict[str, list[float]] = {"annotate": [], "annotate_novideo": []}
    peak_rss = 0.0
    with tempfile.TemporaryDirectory(prefix="yolo_app_bench_") as tmp:
        steps["annotate"] = [*ours, "--out", tmp]
        steps["annotate_novideo"] = [*ours, "--out", tmp, "--no-video"]
        for _ in range(settings.runs):
            for key, cmd in steps.items():
                wall, rss, stdout = _timed(cmd)
                walls[key].append(wall)
                if key in runs:
                    runs[key].append(_run_seconds(stdout))
                    peak_rss = max(peak_rss, rss)
    fps = {k: frames / statistics.median(v) for k, v in walls.items()}
    run_fps = {k: frames / statistics.median(v) for k, v in runs.items()}
    report = {
        "video": str(source), "frames": frames, "weights": weights.name, "imgsz": imgsz,
        "input_hw": list(input_hw), "backend": model.backend, "runs": settings.runs,
        "ultralytics_fps": round(fps["ultralytics"], 2),
        "ultralytics_same_backend_fps": round(fps["ultralytics_same_backend"], 2),
        "inference_fps": round(bare_fps, 2),
        "pipeline_fps": round(fps["annotate"], 2),
        "pipeline_novideo_fps": round(fps["annotate_novideo"], 2),
        "ratio": round(fps["annotate"] / fps["ultralytics"], 3),
        "ratio_novideo_same_backend": round(fps["annotate_novideo"] / fps["ultralytics_same_backend"], 3),
        "run_fps": round(run_fps["annotate"], 2),
        "run_novideo_fps": round(run_fps["annotate_novideo"], 2),
        "startup_s": round(statistics.median(walls["annotate_novideo"]) - statistics.median(runs["annotate_novideo"]),
                           2),
        "efficiency": round(run_fps["annotate"] / bare_fps, 3),
        "efficiency_novideo": round(run_fps["annotate_novideo"] / bare_fps, 3),
        "efficiency_whole": round(fps["annotate"] / bare_fps, 3),
        "efficiency_novideo_whole": round(fps["annotate_novideo"] / bare_fps, 3),
        **live,
        "peak_rss_mb": round(peak_rss, 1),
        "device": _device_name(model),
        "precision": "fp16" if model.half else "bf16" if model.bf16 else "fp32",
        "versions": _versions(),
    }
    if settings.json:
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


def _bare_fps(detector: Detector, input_hw: tuple[int, int]) -> float:
    """The backend alone on letterboxed input, after warm-up, in the batch annotate uses for files (on
    OpenVINO: its streams, several frames in flight): the ceiling for any pipeline."""
    model = detector.model
    batch = np.zeros((file_batch(model), *input_hw, 3), np.uint8)
    rounds = max(1, BARE_ITERATIONS // len(batch))
    with torch.inference_mode():
        for _ in range(2):
            detector.forward(batch)
        start = time.perf_counter()
        for _ in range(rounds):
            detector.forward(batch)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
    return rounds * len(batch) / (time.perf_counter() - start)


def _live_latency(detector: Detector, source: Path) -> dict[str, float | int]:
    """Play the video in real time into a size-1 slot, as a camera would, and measure how long each
    frame takes from capture to result. Target: p95 within one inference period plus one frame period."""
    reader = AvReader(SourceSpec(SourceKind.VIDEO, str(source), source.stem))
    fps = float(reader.info.fps or 30)
    probe = _LatencyProbe()
    pipeline = Pipeline(reader, detector, [probe], policy=ChannelPolicy.LATEST,
                        max_frames=int(LIVE_SECONDS * fps), playback=Playback(realtime=True))
    pipeline.run()
    stats = pipeline.stats()
    values = sorted(probe.latency_ms[int(fps):] or probe.latency_ms)  # after the first second
    busy = statistics.median(probe.busy_ms) if probe.busy_ms else 0.0
    return {
        "latency_p50_ms": round(values[len(values) // 2], 1),
        "latency_p95_ms": round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 1),
        "latency_budget_ms": round(busy + 1e3 / fps, 1),  # one inference period + one frame period
        "live_dropped": stats.dropped,
        "live_frames": stats.captured,
    }


def _device_name(model: LoadedModel) -> str:
    if model.device.type == "cuda":
        return torch.cuda.get_device_name(model.device)
    return f"cpu ({os.cpu_count()} cores)"


def _versions() -> dict[str, str]:
    import supervision
    import ultralytics

    return {"yolo_app": __version__, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
            "supervision": supervision.__version__, "python": platform.python_version()}


def _table(r: dict) -> str:
    rows = [
        ("Ultralytics predict(stream=True), .pt, defaults", r["ultralytics_fps"], "", "1.00x"),
        (f"Ultralytics predict(stream=True), {r['backend']} export", r["ultralytics_same_backend_fps"], "", ""),
        (f"{r['backend']} bare inference, {r['input_hw'][0]}x{r['input_hw'][1]} (the ceiling)",
         r["inference_fps"], "", ""),
        ("yolo-app annotate (annotated MP4 + JSONL)", r["pipeline_fps"], r["run_fps"], f"{r['ratio']:.2f}x"),
        ("yolo-app annotate --no-video (JSONL)", r["pipeline_novideo_fps"], r["run_novideo_fps"],
         f"{r['ratio_novideo_same_backend']:.2f}x same backend"),
    ]
    width = max(len(name) for name, *_ in rows)
    lines = [
        f"video {Path(r['video']).name}: {r['frames']} frames, {r['weights']}, imgsz {r['imgsz']}, backend "
        f"{r['backend']} {r['precision']}, {r['device']}, median of {r['runs']} run(s)",
        f"{'what'.ljust(width)}  {'FPS':>7}  {'run FPS':>7}  ratio (whole process)",
    ]
    lines += [f"{name.ljust(width)}  {value:7.1f}  {f'{run:7.1f}' if run else '':>7}  {ratio}"
              for name, value, run, ratio in rows]
    lines.append("FPS: frames / whole-process wall time (imports, model load, warm-up, every frame); run FPS: "
                 f"annotate's own frame rate, without its {r['startup_s']:.1f} s of start-up")
    lines.append(f"efficiency (run FPS / bare inference FPS): {r['efficiency']:.2f} with video, "
                 f"{r['efficiency_novideo']:.2f} without; whole process {r['efficiency_whole']:.2f} / "
                 f"{r['efficiency_novideo_whole']:.2f}; peak memory {r['peak_rss_mb']:.0f} MB")
    lines.append(f"live mode (real-time playback, newest frame wins, {r['live_frames']} frames): latency p50 "
                 f"{r['latency_p50_ms']:.0f} ms, p95 {r['latency_p95_ms']:.0f} ms (budget {r['latency_budget_ms']:.0f} "
                 f"ms = one inference + one frame period), {r['live_dropped']} frames dropped")
    lines.append(", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    return "\n".join(lines)
