"""Model files exported by Ultralytics, given as ``--weights``: an ONNX file, an OpenVINO model folder (or
its ``.xml``) or a TensorRT ``.engine``.

Such a file runs on its own backend, as it was exported. What the app needs to run it (class names,
task, stride, input size, whether the head is end-to-end) comes from the metadata Ultralytics' exporter
writes into it: ONNX metadata properties, ``metadata.yaml`` beside the OpenVINO ``.xml``, a JSON
header before the TensorRT engine. A file without that metadata is refused with what is missing.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from yolo_app.errors import UserError

EXPORT_SUFFIXES = {".onnx": "onnx", ".xml": "openvino", ".engine": "tensorrt"}
FORMAT_NAMES = {"onnx": "an ONNX file", "openvino": "an OpenVINO model", "tensorrt": "a TensorRT engine"}
REQUIRED = ("names", "task", "stride", "imgsz")
RAW_HEADS = ("Detect", "v10Detect")  # the heads whose exports we run (heads.SUPPORTED)


@dataclass(frozen=True)
class ExportedFile:
    """What an Ultralytics export says about itself."""

    path: Path  # what its runtime loads: the .onnx, the OpenVINO folder or .xml, the .engine
    backend: str  # onnx, openvino or tensorrt
    names: dict[int, str]
    task: str
    stride: int
    input_hw: tuple[int, int] | None  # fixed input size; None when exported with dynamic shapes
    end2end: bool
    half: bool


def exported_format(path: Path) -> str | None:
    """The backend an exported file runs on, or None for anything else (a .pt, an unknown file)."""
    if path.is_dir():
        return "openvino" if any(path.glob("*.xml")) else None
    return EXPORT_SUFFIXES.get(path.suffix.lower())


def read_exported(path: Path) -> ExportedFile:
    """The export's metadata, checked; every problem is one UserError line."""
    backend = exported_format(path)
    if backend is None:
        raise UserError(f"{path}: not an exported model (expected .onnx, an OpenVINO folder or .xml, or .engine)")
    try:
        meta = {"onnx": _onnx_metadata, "openvino": _openvino_metadata, "tensorrt": _tensorrt_metadata}[backend](path)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf, yaml and file errors for a damaged file
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{path}: not a readable {backend} model ({type(exc).__name__}: {detail})") from None
    missing = [key for key in REQUIRED if key not in meta]
    if missing:
        raise UserError(f"{path}: {FORMAT_NAMES[backend]} without Ultralytics' metadata (missing: "
                        f"{', '.join(missing)}); export it with Ultralytics (yolo export model=NAME.pt "
                        f"format={_export_format(backend)}) so class names and input size come with it")
    task = str(meta["task"])
    head = str(meta.get("head", "Detect"))
    if task != "detect" or head not in RAW_HEADS:
        from yolo_app.engine.heads import SUPPORTED

        what = f"a '{task}' model" if task != "detect" else f"a model with a '{head}' head"
        raise UserError(f"{path} is {what}; yolo-app runs {SUPPORTED}")
    args = meta.get("args") or {}
    dynamic = bool(args.get("dynamic", False)) if isinstance(args, dict) else False
    imgsz = meta["imgsz"]
    hw = (int(imgsz[0]), int(imgsz[1])) if isinstance(imgsz, (list, tuple)) else (int(imgsz), int(imgsz))
    names = {int(k): str(v) for k, v in dict(meta["names"]).items()}
    end2end = bool(meta.get("end2end", False)) or (isinstance(args, dict) and args.get("nms") is False)
    half = isinstance(args, dict) and bool(args.get("half") or args.get("quantize") in (16, "fp16"))
    return ExportedFile(path=path, backend=backend, names=names, task=task, stride=int(meta["stride"]),
                        input_hw=None if dynamic else hw, end2end=end2end, half=half)


def _export_format(backend: str) -> str:
    return {"tensorrt": "engine"}.get(backend, backend)


def _literal(value: object) -> object:
    """Ultralytics writes ONNX metadata values as ``str(value)``: read dicts, lists and numbers back."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _onnx_metadata(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {prop.key: _literal(prop.value) for prop in model.metadata_props}


def _openvino_metadata(path: Path) -> dict:
    import yaml

    meta_file = (path if path.is_dir() else path.parent) / "metadata.yaml"
    if not meta_file.is_file():
        return {}
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
    return meta if isinstance(meta, dict) else {}


def _tensorrt_metadata(path: Path) -> dict:
    """Ultralytics prefixes its engines with a little-endian int32 length and that many bytes of JSON."""
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(4), byteorder="little")
        if not 0 < size < 1 << 20:
            return {}
        try:
            meta = json.loads(fh.read(size).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {}
    return meta if isinstance(meta, dict) else {}
