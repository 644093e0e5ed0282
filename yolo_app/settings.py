"""The settings of a run, typed and checked once, whoever builds them (CLI options, the GUI's stored
choices, a monitor.yaml, a Ray task): defaults and choices the engine and every front end share, frozen
dataclasses for the model, detection and annotate runs, and the environment our processes start with.

It imports nothing heavy, so the CLI's parser and monitor.yaml's checks need not load torch; the engine
imports these from here as well, so each value has one definition."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from yolo_app.errors import UserError

DEFAULT_WEIGHTS = "yolov8n.pt"
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
DEFAULT_IMGSZ = 640
DEFAULT_MAX_DET = 300
DEFAULT_TOP_K = 3
CODECS = ("auto", "libx264", "mpeg4")
FRAME_POLICIES = ("latest", "all")
GRID_STRIDES = (8, 16, 32, 64)  # the detection levels a grid overlay can show alone (64: P6 models)

BACKENDS = ("auto", "torch", "onnx", "openvino", "tensorrt")  # engine/backends.py runs them

# --precision -> (half, bf16), None where the device and backend decide. auto: fp16 on CUDA; on a CPU,
# OpenVINO in its own default precision (bf16 where the CPU computes it natively, as Ultralytics'
# OpenVINO runs get), fp32 everywhere else. int8: OpenVINO on a CPU, quantized on the user's footage
# (engine/quantize.py), its head's decoding in fp32; only when asked for.
PRECISIONS: dict[str, tuple[bool | None, bool | None]] = {
    "auto": (None, None), "fp16": (True, False), "fp32": (False, False), "bf16": (False, True), "int8": (False, None)}

# --nms: which head an end-to-end model (YOLOv10, YOLO26) runs, as Ultralytics' predict argument ``nms`` says:
# auto = its default (None): what the file itself selects, the one-to-many head with NMS for a checkpoint that has
# both; false = the one-to-one head, NMS-free; true = the one-to-many head with NMS (engine/heads.py).
NMS_CHOICES = ("auto", "true", "false")

# Every package Ultralytics may need is declared in pyproject.toml: never pip-install behind the user's
# back. Backend chatter is not for users either; our errors say what failed.
PROCESS_ENV = {"YOLO_AUTOINSTALL": "false", "YOLO_VERBOSE": "false", "OPENCV_LOG_LEVEL": "ERROR"}


def set_process_env() -> None:
    """Called where one of our processes starts (the CLI's main, the soak scripts, each Ray worker's
    setup), before Ultralytics or OpenCV load: they read these once. Never on import, so importing
    yolo_app leaves a host program's environment alone. What the user set wins."""
    for name, value in PROCESS_ENV.items():
        os.environ.setdefault(name, value)


def check_thresholds(conf: float, iou: float, imgsz: int, max_det: int) -> None:
    """The one check of detection thresholds, wherever they come from (an option, a slider, a YAML key)."""
    if not 0.0 <= conf <= 1.0:
        raise UserError(f"conf must be between 0 and 1, got {conf}")
    if not 0.0 <= iou <= 1.0:
        raise UserError(f"iou must be between 0 and 1, got {iou}")
    if not imgsz_fits(imgsz):
        raise UserError(f"imgsz {IMGSZ_RULE}, got {imgsz}")
    if max_det < 1:
        raise UserError(f"max_det must be at least 1, got {max_det}")


def check_nms(nms: object) -> None:
    if nms not in NMS_CHOICES:
        raise UserError(f"nms must be auto, true or false, got {nms!r}")


IMGSZ_RULE = "must be a positive multiple of 32 (e.g. 320, 640)"  # the network's largest stride


def imgsz_fits(imgsz: int) -> bool:
    return imgsz > 0 and imgsz % 32 == 0


def check_grid_stride(stride: int | None) -> None:
    if stride not in (None, *GRID_STRIDES):
        raise UserError(f"grid stride must be 8, 16, 32 or 64 (the detection levels), got {stride}")


def split_names(text: str | None) -> tuple[str, ...]:
    """``"person, car"`` -> ("person", "car"); None or blank -> () (all classes)."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


RTSP_TRANSPORTS = ("tcp", "udp")


@dataclass(frozen=True)
class StreamOptions:
    """How a network stream (an IP camera) is opened and read; each camera of a monitor config can set them."""

    transport: str = "tcp"  # RTSP over TCP: no lost packets (smeared frames) on a busy network; or UDP
    open_timeout_s: float = 6.0  # with start-up, inside the 10 s a user waits for an unreachable stream
    read_timeout_s: float = 5.0  # an open connection with no frame this long has stalled: a drop

    def __post_init__(self) -> None:
        if self.transport not in RTSP_TRANSPORTS:
            raise UserError(f"RTSP transport must be tcp or udp, got {self.transport!r}")
        for name, value in (("open timeout", self.open_timeout_s), ("read timeout", self.read_timeout_s)):
            if not value > 0:
                raise UserError(f"the {name} must be a positive number of seconds, got {value}")


@dataclass(frozen=True)
class ModelSettings:
    """Which network runs, on what and how: everything the detector factory needs to load it."""

    weights: str = DEFAULT_WEIGHTS  # a path or a name searched in the weights folders
    device: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    trust: bool = False  # the user vouches for a checkpoint that needs full unpickling
    calibration: str | None = None  # int8: the video (or image folder) it is quantized on
    nms: str = "auto"  # which head runs: NMS_CHOICES

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        check_nms(self.nms)


@dataclass(frozen=True)
class DetectionOptions:
    """What the detector keeps, as the user asked for it; class names are matched to a model's own
    when it is loaded (the engine's DetectionSettings then holds its class ids)."""

    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU
    imgsz: int = DEFAULT_IMGSZ
    max_det: int = DEFAULT_MAX_DET
    classes: tuple[str, ...] = ()  # names or ids as written; (): every class

    def __post_init__(self) -> None:
        check_thresholds(self.conf, self.iou, self.imgsz, self.max_det)


@dataclass(frozen=True)
class ClassifySettings:
    """The second stage: a classifier (``ARCH[:WEIGHTS]`` or a checkpoint) on detections' crops."""

    spec: str
    classes: tuple[str, ...] = ()  # the detector classes it runs on; (): all


@dataclass(frozen=True)
class GridOverlay:
    """Draw the detector's grid: one stride (None: all) and the heat map's class (None: the best)."""

    stride: int | None = None
    class_name: str | None = None

    def __post_init__(self) -> None:
        check_grid_stride(self.stride)


EXPORT_FORMATS = ("csv", "mot", "coco", "yolo", "cvat", "crops")  # yolo_app/export writes them
DATASET_FORMATS = ("coco", "yolo", "crops")  # made from the source's frames, read again after the run


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``"csv,mot"`` -> ("csv", "mot"); an unknown name is a UserError listing the known ones."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in (text or "").split(",") if f.strip()))
    if text and not formats:
        _check_formats((text,))
    _check_formats(formats)
    return formats


def _check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise UserError(f"unknown export format '{', '.join(unknown)}'; available: {', '.join(EXPORT_FORMATS)}")


@dataclass(frozen=True)
class ExportOptions:
    """What the dataset exports (coco, yolo, crops) keep; the record exports keep everything."""

    every: int = 1  # every Nth frame
    min_conf: float = 0.0  # detections below this are left out
    val_fraction: float = 0.2  # yolo: share of the kept frames in the validation split

    def __post_init__(self) -> None:
        if self.every < 1:
            raise UserError(f"--every must be at least 1, got {self.every}")
        if not 0.0 <= self.min_conf <= 1.0:
            raise UserError(f"--min-conf must be between 0 and 1, got {self.min_conf}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"--val-fraction must be at least 0 and below 1, got {self.val_fraction}")


@dataclass(frozen=True)
class AnnotateSettings:
    """One annotate run, as `yolo-app annotate`, the GUI's "Annotate videos…" dialog or a Ray task
    describes it. Built and checked once; the factory turns it into a detector and run options."""

    sources: tuple[str, ...]
    out_dir: Path = Path("runs/annotate")
    model: ModelSettings = ModelSettings()
    detection: DetectionOptions = DetectionOptions()
    classify: ClassifySettings | None = None
    grid: GridOverlay | None = None
    track: bool = False
    top_k: int = DEFAULT_TOP_K  # each box's best classes in the JSONL; 0: none
    video: bool = True  # False: the JSONL record only
    max_frames: int | None = None
    codec: str = "auto"
    frame_policy: str | None = None  # None: by source kind (live -> latest, files -> all)
    batch: int | None = None  # frames per inference call; None: what suits the backend
    resume: bool = False
    exports: tuple[str, ...] = ()
    export_options: ExportOptions = ExportOptions()
    stream: StreamOptions = StreamOptions()  # a network source's transport and time-outs
    ray: str | None = None  # a Ray cluster's address ("local": start one)
    ray_chunk: int | None = None  # frames per Ray task for long videos
    cpu_report: bool = False  # print where the CPU time went (the network's share, each stage's ms a frame)

    def __post_init__(self) -> None:
        if not self.sources:
            raise UserError("nothing to annotate: give a video, image, folder, camera or stream")
        if self.top_k < 0:
            raise UserError(f"--top-k must be 0 or more, got {self.top_k}")
        if self.codec not in CODECS:
            raise UserError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if self.frame_policy not in (None, *FRAME_POLICIES):
            raise UserError(f"frame policy must be latest or all, got {self.frame_policy!r}")
        for name, value in (("--max-frames", self.max_frames), ("--batch", self.batch),
                            ("--ray-chunk", self.ray_chunk)):
            if value is not None and value < 1:
                raise UserError(f"{name} must be at least 1, got {value}")
        _check_formats(self.exports)
        if "mot" in self.exports and not self.track:
            raise UserError("--export mot needs --track (MOT rows are tracks)")
        if self.ray_chunk is not None and self.ray is None:
            raise UserError("--ray-chunk needs --ray")


@dataclass(frozen=True)
class GuiOptions:
    """What `yolo-app gui` was told; None: the window's remembered choice (QSettings), else the default."""

    source: str | None = None
    weights: str | None = None
    device: str | None = None
    backend: str | None = None
    precision: str | None = None
    nms: str | None = None
    conf: float | None = None
    iou: float | None = None
    compare: str | None = None
    classify: str | None = None  # the second stage, as --classify ARCH[:WEIGHTS]
    classify_classes: str | None = None
    trust_weights: bool = False  # --trust-weights: unpickle any checkpoint without asking

    def __post_init__(self) -> None:  # bad values fail here, before a window opens
        check_thresholds(DEFAULT_CONF if self.conf is None else self.conf,
                         DEFAULT_IOU if self.iou is None else self.iou, DEFAULT_IMGSZ, DEFAULT_MAX_DET)
        if self.classify_classes and not self.classify:
            raise UserError("--classify-classes needs --classify")
        if self.nms is not None:
            check_nms(self.nms)
