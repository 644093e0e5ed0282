"""``yolo-app models --measure``: ms per image of each model whose weights are on this machine.

Detectors run through the app's own Detector (PyTorch backend, a 640x640 frame); classifiers through
the crop classifier at their own input size, one image a call. The median of ``runs`` after warm-up.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from yolo_app.errors import YoloAppError, describe
from yolo_app.zoo.catalog import ZooEntry

RUNS = 10
WARMUP = 2


def _median_ms(call: Callable[[], object], runs: int) -> float:
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure(entry: ZooEntry, device: str = "auto", runs: int = RUNS, trust: bool = False) -> tuple[float, str]:
    """(ms per image, device) for one present model; ``trust``: a detector checkpoint may be fully unpickled."""
    if entry.weights_path is None:
        raise ValueError(f"{entry.name}: no weights here")
    if entry.kind == "detector":
        from yolo_app.factory import build_detector
        from yolo_app.settings import ModelSettings

        # The published figures are PyTorch's: time the checkpoint as it is, on PyTorch.
        detector = build_detector(ModelSettings(str(entry.weights_path), device, "torch", trust=trust)).detector
        model = detector.model
        frame = np.full((640, 640, 3), 114, dtype=np.uint8)
        return _median_ms(lambda: detector.detect([frame]), runs), str(model.device)
    from yolo_app.zoo.classifier import load_classifier

    classifier = load_classifier(f"{entry.name}:{entry.weights_path}", device)
    crop = np.full((entry.input_size or 224, entry.input_size or 224, 3), 114, dtype=np.uint8)
    return _median_ms(lambda: classifier.classify([crop]), runs), str(classifier.device)


def measure_all(entries: list[ZooEntry], device: str = "auto", report: Callable[[str], None] | None = None,
                trust: bool = False, calibrate: Path | None = None) -> list[ZooEntry]:
    """Each present model's ms per image; with ``calibrate`` (a video), each detector's INT8 too."""
    out = []
    for entry in entries:
        if entry.weights_path is None:
            out.append(entry)
            continue
        try:
            ms, on = measure(entry, device, trust=trust)
            entry = dataclasses.replace(entry, measured_ms=round(ms, 1), measured_on=on)
            if report:
                report(f"{entry.name}: {ms:.1f} ms/image on {on}")
            if calibrate is not None and entry.kind == "detector":
                from yolo_app.bench.int8 import measure_int8

                int8 = measure_int8(entry.weights_path, calibrate, trust=trust)
                entry = dataclasses.replace(entry, int8_speedup=round(int8.speedup, 2),
                                            int8_agreement=round(int8.agreement, 3))
                if report:
                    report(f"{entry.name}: int8 {int8.int8_fps:.1f} vs fp32 {int8.fp32_fps:.1f} FPS on OpenVINO "
                           f"({int8.speedup:.2f}x), keeps {int8.agreement:.1%} of fp32's confident boxes "
                           f"({int8.boxes}) over {int8.frames} frames of {calibrate.name}")
        except YoloAppError as exc:  # a file that is not what its name says: report, keep going
            if report:
                report(f"{entry.name}: not measured: {describe(exc)}")
        out.append(entry)
    return out
