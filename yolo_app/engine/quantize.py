"""INT8 from the user's own footage: post-training quantization (NNCF) of the network OpenVINO runs,
calibrated on frames of a video (or a folder of images) the user points at, letterboxed exactly as
inference will see them; and how far INT8's boxes agree with the full-precision network's.

The detect head's decoding (the sigmoid scores, the box distribution, the anchor arithmetic) stays in
fp32, as Ultralytics' own INT8 exports keep it in float: a quantized box decoder moves every box. So
does the stem, whose full-resolution input loses most in INT8; every other convolution runs in INT8."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import supervision as sv

from yolo_app.engine.letterbox import apply_letterbox, letterbox_geometry
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.types import SourceKind
from yolo_app.errors import UserError

CALIBRATION_FRAMES = 300  # NNCF's default subset: enough for stable activation ranges on YOLO detectors
MIN_CALIBRATION_FRAMES = 30
AGREEMENT_MIN_CONF = 0.4  # the boxes a user acts on
AGREEMENT_IOU = 0.9  # "the same box": within a few pixels on every side
RECIPE = "r1"  # in the cache key: a change to how we quantize makes new INT8 networks
STEM = ("/model.0/", "/model.1/")  # ONNX names of an Ultralytics network's first two layers


def calibration_id(path: Path) -> str:
    """Names the footage in the cache key: its place, size and modification time (hashing a long video
    at every start would cost more than the quantization saves)."""
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]


def default_footage(spec: SourceSpec) -> str | None:
    """What INT8 is quantized on when the user names nothing: the source itself, when it is recorded
    (a video or a folder of images: the footage it will see); a camera or stream needs a recording."""
    return spec.uri if spec.kind in (SourceKind.VIDEO, SourceKind.IMAGES, SourceKind.DEMO) else None


def check_footage(path: Path) -> None:
    """Recorded footage with enough frames, said in one line before anything is exported or loaded."""
    from yolo_app.engine.readers import open_reader
    from yolo_app.engine.sources import parse_source

    reader = open_reader(parse_source(str(path))[0])
    try:
        info = reader.info
        if info.live:
            raise UserError(f"{path}: INT8 calibrates on recorded footage (a video file or a folder of images), "
                            f"not a live source")
        if info.frame_count is not None and info.frame_count < MIN_CALIBRATION_FRAMES:
            raise UserError(f"{path}: {info.frame_count} frames; INT8 calibration needs at least "
                            f"{MIN_CALIBRATION_FRAMES}")
    finally:
        reader.close()


def calibration_frames(path: Path, input_hw: tuple[int, int], count: int = CALIBRATION_FRAMES) -> list[np.ndarray]:
    """Up to ``count`` frames spread evenly over the footage, letterboxed into ``input_hw`` as the network
    will see them (uint8 BGR)."""
    images = footage_frames(path, count)  # recorded footage: check_footage said so at load
    if len(images) < MIN_CALIBRATION_FRAMES:
        raise UserError(f"{path}: {len(images)} frames; INT8 calibration needs at least {MIN_CALIBRATION_FRAMES}")
    height, width = input_hw
    return [apply_letterbox(image, letterbox_geometry(*image.shape[:2], input_hw, 32, False))
            if image.shape[:2] != (height, width) else image for image in images]


def footage_frames(path: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` frames spread evenly over a video or a folder of images, as decoded (BGR)."""
    from yolo_app.engine.readers import open_reader
    from yolo_app.engine.sources import parse_source

    reader = open_reader(parse_source(str(path))[0])
    try:
        return list(_spread(reader, count))
    finally:
        reader.close()


def _spread(reader, count: int) -> Iterator[np.ndarray]:
    """Every k-th frame of a short source; on a long video, a seek to each of ``count`` even times
    (decoding an hour of footage to keep 300 frames would take minutes)."""
    info = reader.info
    total = info.frame_count or 0
    if reader.seekable and info.fps and total > 10 * count:
        frames = reader.frames()
        duration = total / float(info.fps)
        for i in range(count):
            reader.seek(i * duration / count)
            item = next(frames, None)
            if item is None:
                return
            yield item[0]
        return
    step = max(1, total // count) if total else 1
    kept = 0
    for i, (image, _, _) in enumerate(reader.frames()):
        if i % step == 0:
            yield image
            kept += 1
            if kept >= count:
                return


def quantize_to_int8(onnx: Path, frames: list[np.ndarray], out_dir: Path) -> Path:
    """The ONNX network quantized on ``frames`` (letterboxed uint8 BGR), saved as OpenVINO IR in ``out_dir``."""
    # NNCF's import wakes torch's C++-extension loader, which warns that this machine has no CUDA.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(onnx)
    dataset = nncf.Dataset(frames, lambda frame: cv2.dnn.blobFromImage(frame, 1 / 255, swapRB=True))
    with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars; our log line says what runs
        quantized = nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(frames),
                                  ignored_scope=_kept_in_float(model))
    out = out_dir / "model.xml"
    ov.save_model(quantized, out, compress_to_fp16=False)
    return out


def _kept_in_float(model) -> object:
    """What stays in fp32: the stem (the first two convolutions, on the full-resolution picture) and the
    detect head's decoding (every op of the head but its convolutions; the head is the scope of the
    network's last sigmoid, the class scores). Measured on yolov8n at 384x640 over 300 frames of the
    person video: all in INT8, 90 % of fp32's confident boxes kept at 85 FPS; the stem in fp32, 98.5 %
    at 78 FPS; the head's convolutions in fp32 as well cost a third of the speed for nothing."""
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    head = "/".join(sigmoids[-1].split("/")[:2]) + "/" if sigmoids else None  # "/model.22/Sigmoid" -> "/model.22/"
    names = []
    for op in ops:
        name, kind = op.get_friendly_name(), op.get_type_name()
        if kind in ("Parameter", "Constant"):
            continue
        if name.startswith(STEM) or head and name.startswith(head) and kind != "Convolution":
            names.append(name)
    return nncf.IgnoredScope(names=names, types=["Sigmoid"], validate=False)


def agreement(reference: list[sv.Detections], candidate: list[sv.Detections], names: dict[int, str]
              ) -> tuple[float, dict[str, float], int]:
    """The share of the reference's confident boxes (above ``AGREEMENT_MIN_CONF``) that the candidate keeps:
    a box of the same class at IoU >= ``AGREEMENT_IOU``; overall (1.0 when there was none), per class, and
    how many confident boxes there were."""
    found: dict[int, list[int]] = {}
    for ref, cand in zip(reference, candidate, strict=True):
        confident = ref[ref.confidence > AGREEMENT_MIN_CONF]
        if not len(confident):
            continue
        ious = sv.box_iou_batch(confident.xyxy, cand.xyxy) if len(cand) else np.zeros((len(confident), 0))
        same_class = confident.class_id[:, None] == cand.class_id[None, :]
        kept = ((ious >= AGREEMENT_IOU) & same_class).any(axis=1)
        for class_id, hit in zip(confident.class_id, kept):
            tally = found.setdefault(int(class_id), [0, 0])
            tally[0] += int(hit)
            tally[1] += 1
    hits, total = sum(t[0] for t in found.values()), sum(t[1] for t in found.values())
    per_class = {names.get(c, str(c)): round(t[0] / t[1], 3) for c, t in sorted(found.items())}
    return (hits / total if total else 1.0), per_class, total
