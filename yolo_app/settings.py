"""Option values the engine and every front end share: model defaults, the --backend and --precision
choices, and the environment each of our processes starts with.

It imports nothing heavy, so the CLI's parser and monitor.yaml's checks need not load torch; the engine
imports these from here as well, so each value has one definition."""

from __future__ import annotations

import os

DEFAULT_WEIGHTS = "yolov8n.pt"
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
DEFAULT_IMGSZ = 640

BACKENDS = ("auto", "torch", "onnx", "openvino", "tensorrt")  # engine/backends.py runs them

# --precision -> (half, bf16), None where the device and backend decide. auto: fp16 on CUDA; on a CPU,
# OpenVINO in its own default precision (bf16 where the CPU computes it natively, as Ultralytics'
# OpenVINO runs get), fp32 everywhere else.
PRECISIONS: dict[str, tuple[bool | None, bool | None]] = {
    "auto": (None, None), "fp16": (True, False), "fp32": (False, False), "bf16": (False, True)}

# Every package Ultralytics may need is declared in pyproject.toml: never pip-install behind the user's
# back. Backend chatter is not for users either; our errors say what failed.
PROCESS_ENV = {"YOLO_AUTOINSTALL": "false", "YOLO_VERBOSE": "false", "OPENCV_LOG_LEVEL": "ERROR"}


def set_process_env() -> None:
    """Called where one of our processes starts (the CLI's main, the soak scripts, each Ray worker's
    setup), before Ultralytics or OpenCV load: they read these once. Never on import, so importing
    yolo_app leaves a host program's environment alone. What the user set wins."""
    for name, value in PROCESS_ENV.items():
        os.environ.setdefault(name, value)
