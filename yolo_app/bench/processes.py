"""Whole processes timed as a user waits for them: Ultralytics' predict and our annotate, each started
fresh (Python, imports, model load, warm-up and every frame), with their CPU time and peak memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from yolo_app.errors import RuntimeFailure

# Ultralytics as its users run it: streaming, nothing saved. An exported model is fixed to one input
# shape, passed as imgsz (h,w); a .pt takes the usual square size. On equal terms ("every_core") its CPU
# device gets every core as ours does (its select_device leaves one idle), and a CUDA run our precision.
ULTRALYTICS_SCRIPT = """
import os, sys
import ultralytics.utils.torch_utils as torch_utils
from ultralytics import YOLO
weights, source, size, device, every_core, half, nms = sys.argv[1:8]
if every_core == "1":
    torch_utils.NUM_THREADS = os.cpu_count()
imgsz = [int(v) for v in size.split(",")]
results = YOLO(weights, task="detect").predict(source, stream=True, imgsz=imgsz if len(imgsz) > 1 else imgsz[0],
                                              device=device or None, half=half == "1", verbose=False,
                                              nms={"auto": None, "true": True, "false": False}[nms])
print(sum(1 for _ in results))
"""
RUN_SUMMARY = re.compile(r"\d+ frames in ([\d.]+) s")
FIRST_RESULT = re.compile(r"first boxes ([\d.]+) s after the command started")
CPU_LINE = re.compile(r"cpu: [\d.]+ s over \d+ frames, the network ([\d.]+)% .*?; the rest in ms a frame: (.*)")


@dataclass(frozen=True)
class ProcessRun:
    wall_s: float
    cpu_s: float  # user + system, every thread
    peak_rss_mb: float
    stdout: str

    @property
    def run_s(self) -> float:
        """An annotate run's own time from its summary line ("N frames in S s"): from the pipeline's start
        (model warm-up included) to the last frame written; imports and model loading excluded."""
        return float(_find(RUN_SUMMARY, self.stdout))

    @property
    def network_cpu_share(self) -> float:
        """An annotate --cpu-report run's network share of its CPU time (engine/cpu.py)."""
        return float(_find(CPU_LINE, self.stdout)) / 100

    @property
    def stage_cpu_ms(self) -> dict[str, float]:
        """An annotate --cpu-report run's other stages: CPU ms a frame each."""
        found = CPU_LINE.search(self.stdout)
        if found is None:
            raise RuntimeFailure(f"benchmark step printed no CPU report: {self.stdout.strip()[-200:]}")
        return {name: float(ms) for name, ms in (item.split() for item in found.group(2).split(", "))}

    @property
    def first_result_s(self) -> float:
        """An annotate run's time from its process's start to its first result, as it printed it."""
        return float(_find(FIRST_RESULT, self.stdout))


def _find(pattern: re.Pattern, stdout: str) -> str:
    found = pattern.search(stdout)
    if found is None:
        raise RuntimeFailure(f"benchmark step printed no summary: {stdout.strip()[-200:]}")
    return found.group(1)


def timed_process(cmd: list[str]) -> ProcessRun:
    """Run ``cmd`` to its end; a failure is one line with the step's last line of stderr."""
    env = {**os.environ, "YOLO_VERBOSE": "false", "YOLO_AUTOINSTALL": "false"}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            last = (err.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise RuntimeFailure(f"benchmark step failed ({' '.join(cmd[:4])} ...): {last}")
        out.seek(0)
        return ProcessRun(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,  # KB on Linux
                          out.read().decode(errors="replace"))


def ultralytics_cmd(weights: Path, source: Path, size: str, device: str = "", every_core: bool = False,
                    half: bool = False, nms: str = "auto") -> list[str]:
    """Ultralytics' predict over ``source``; ``size``: "640" for a .pt, "h,w" for an export; ``nms``: its
    argument of that name (auto: None, its default)."""
    return [sys.executable, "-c", ULTRALYTICS_SCRIPT, str(weights), str(source), size, device,
            "1" if every_core else "0", "1" if half else "0", nms]


def annotate_cmd(source: Path, weights: Path, out_dir: Path, *, imgsz: int, backend: str, device: str,
                 precision: str, trust: bool, video: bool, nms: str = "auto") -> list[str]:
    return [sys.executable, "-m", "yolo_app", "annotate", str(source), "--weights", str(weights),
            "--imgsz", str(imgsz), "--backend", backend, "--device", device, "--precision", precision, "--nms", nms,
            "--out", str(out_dir), "--cpu-report", *(["--trust-weights"] if trust else []),
            *([] if video else ["--no-video"])]
