"""`annotate` output recorded before a refactoring, to prove the refactoring changed nothing.

The reference is the JSONL (byte for byte) and a digest of every decoded frame of the annotated video, for
the first FRAMES frames of both shared videos, run with PyTorch in fp32 (OpenVINO's default precision
follows the CPU) and tracking on. PyTorch's CPU kernels follow the CPU's instruction set and thread count,
so the reference also records the machine it came from: on that kind of machine the test is exact, on
another it compares every box within a small tolerance (and the frames are not compared).

Re-record, only when the output is meant to change:  .venv/bin/python tests/reference_annotate.py
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "data" / "reference_annotate"
SHARED = HERE.parents[0].parent / "shared"
VIDEOS = [SHARED / "videos" / "bottle-detection.mp4", SHARED / "videos" / "one-by-one-person-detection.mp4"]
FRAMES = 150
# What decides PyTorch's CPU kernels (and so the last bits of every box): the vector extensions oneDNN
# dispatches on and the number of threads it splits work over.
_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def annotate_args(video: Path, weights: Path, out: Path) -> list[str]:
    return ["annotate", str(video), "--weights", str(weights), "--backend", "torch", "--precision", "fp32",
            "--device", "cpu", "--track", "--max-frames", str(FRAMES), "--out", str(out)]


def machine() -> dict:
    """The CPU's kernel-relevant flags, its thread count and the encoder's versions."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cpus": os.cpu_count(),
            "isa": sorted(flag for flag in _ISA_FLAGS if flag in flags),
            "av": av.__version__, "ffmpeg": av.library_versions.get("libavcodec")}


def frame_digests(video: Path) -> list[str]:
    with av.open(str(video)) as container:
        return [hashlib.sha1(frame.to_ndarray(format="bgr24").tobytes()).hexdigest()
                for frame in container.decode(container.streams.video[0])]


def record(weights: Path, work: Path) -> None:
    REFERENCE.mkdir(parents=True, exist_ok=True)
    frames: dict[str, list[str]] = {}
    for video in VIDEOS:
        subprocess.run([sys.executable, "-m", "yolo_app", *annotate_args(video, weights, work)], check=True)
        name = video.stem
        (REFERENCE / f"{name}.detections.jsonl").write_bytes((work / f"{name}.detections.jsonl").read_bytes())
        frames[name] = frame_digests(work / f"{name}.annotated.mp4")
    (REFERENCE / "reference.json").write_text(json.dumps({"machine": machine(), "frames": frames}, indent=1))


if __name__ == "__main__":
    import tempfile

    os.environ.update(YOLO_OFFLINE="true", YOLO_AUTOINSTALL="false")
    with tempfile.TemporaryDirectory() as tmp:
        record(SHARED / "weights" / "yolov8n.pt", Path(tmp))
    print(f"recorded into {REFERENCE}")
