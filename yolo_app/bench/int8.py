"""What INT8 gives and costs on this CPU: OpenVINO's INT8 network (quantized on the footage) against the
same network in fp32, at the same input, on the same frames. Used by ``bench`` and ``models --measure``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yolo_app.bench.inprocess import bare_fps
from yolo_app.engine.letterbox import letterbox_geometry
from yolo_app.engine.quantize import agreement, footage_frames
from yolo_app.factory import build_detector
from yolo_app.settings import DEFAULT_IMGSZ, DetectionOptions, ModelSettings

AGREEMENT_FRAMES = 300


@dataclass(frozen=True)
class Int8Figures:
    fp32_fps: float  # the network alone, OpenVINO fp32
    int8_fps: float
    agreement: float  # share of fp32's confident boxes INT8 keeps (engine/quantize.py: agreement)
    per_class: dict[str, float]
    frames: int  # compared
    boxes: int  # fp32's confident boxes on them

    @property
    def speedup(self) -> float:
        return self.int8_fps / self.fp32_fps

    def as_dict(self) -> dict:
        return {"int8_speedup": round(self.speedup, 3), "int8_agreement": round(self.agreement, 4),
                "int8_agreement_per_class": self.per_class, "int8_fps": round(self.int8_fps, 2),
                "fp32_fps": round(self.fp32_fps, 2), "int8_frames_compared": self.frames,
                "int8_boxes_compared": self.boxes}


def measure_int8(weights: str, video: Path, imgsz: int = DEFAULT_IMGSZ, trust: bool = False) -> Int8Figures:
    """Quantize ``weights`` on ``video`` (cached after the first time), then time both networks alone and
    compare their boxes on ``AGREEMENT_FRAMES`` frames spread over the video."""
    frames = footage_frames(video, AGREEMENT_FRAMES)
    source_hw = frames[0].shape[:2]
    options = DetectionOptions(imgsz=imgsz)
    full = build_detector(ModelSettings(weights, "cpu", "openvino", "fp32", trust), options,
                          source_hw=source_hw).detector
    int8 = build_detector(ModelSettings(weights, "cpu", "openvino", "int8", trust, calibration=str(video)), options,
                          source_hw=source_hw).detector
    input_hw = letterbox_geometry(*source_hw, imgsz, full.model.stride, True).input_hw
    reference = [d.detections for d in full.detect(frames)]
    candidate = [d.detections for d in int8.detect(frames)]
    share, per_class, boxes = agreement(reference, candidate, full.names)
    return Int8Figures(bare_fps(full, input_hw), bare_fps(int8, input_hw), share, per_class, len(frames), boxes)
