"""The zoo table: every detector and classifier the app knows, with figures from the libraries.

Classifier figures come from the libraries' own metadata: torchvision's ``Weights`` enums (parameters,
ImageNet top-1, transforms) and timm's pretrained configs (input size, mean/std; parameters by building
the network with random weights). Ultralytics publishes detector mAP and speed only in its docs, so
those live in ``PUBLISHED_DETECTORS`` below, and tests check its parameter counts against networks
built from Ultralytics' own yaml configs, so the copied table cannot silently drift.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from yolo_app.engine.models import search_dirs

log = logging.getLogger(__name__)

# Ultralytics' published COCO val2017 figures at 640 px: docs.ultralytics.com/models/yolov8 (Detection,
# COCO) and docs.ultralytics.com/models/yolov9 (performance on COCO). name: (mAP50-95, CPU ONNX ms,
# A100 TensorRT ms, params M, FLOPs B); None where the page publishes no figure (no speeds for YOLOv9).
PUBLISHED_DETECTORS: dict[str, tuple[float, float | None, float | None, float, float]] = {
    "yolov8n": (37.3, 80.4, 0.99, 3.2, 8.7),
    "yolov8s": (44.9, 128.4, 1.20, 11.2, 28.6),
    "yolov8m": (50.2, 234.7, 1.83, 25.9, 78.9),
    "yolov8l": (52.9, 375.2, 2.39, 43.7, 165.2),
    "yolov8x": (53.9, 479.1, 3.53, 68.2, 257.8),
    "yolov9t": (38.3, None, None, 2.0, 7.7),
    "yolov9s": (46.8, None, None, 7.2, 26.7),
    "yolov9m": (51.4, None, None, 20.1, 76.8),
    "yolov9c": (53.0, None, None, 25.5, 102.8),
    "yolov9e": (55.6, None, None, 58.1, 192.5),
}

# The classic classifiers users ask for, as torchvision names them (figures from its Weights enums).
TORCHVISION_CLASSIFIERS: dict[str, str] = {
    "resnet50": "ResNet", "resnet101": "ResNet", "resnet152": "ResNet",
    "inception_v3": "Inception",
    "vgg16": "VGG", "vgg19": "VGG",
    **{f"efficientnet_b{i}": "EfficientNet" for i in range(8)},
    "densenet121": "DenseNet", "densenet169": "DenseNet", "densenet201": "DenseNet",
    "mobilenet_v2": "MobileNet", "mobilenet_v3_large": "MobileNet", "mobilenet_v3_small": "MobileNet",
    "alexnet": "AlexNet",
    "vit_b_16": "ViT",
}
# Not in torchvision: timm (PyTorch Image Models) has both, ported from the original TensorFlow/Keras weights.
TIMM_CLASSIFIERS: dict[str, str] = {"legacy_xception": "Xception", "nasnetalarge": "NASNet"}
TIMM_NO_ACCURACY = "timm keeps accuracy in its results tables, not in the model's metadata"


@dataclass(frozen=True)
class ZooEntry:
    name: str  # what --weights / --classify take: yolov8n, resnet50, legacy_xception
    kind: str  # detector | classifier
    family: str
    library: str  # ultralytics | torchvision | timm
    params_m: float | None
    metric: str  # "COCO mAP50-95" or "ImageNet top-1"
    score: float | None
    input_size: int
    files: tuple[str, ...]  # weights file names looked for on this machine
    published_ms: float | None = None  # detectors: Ultralytics' CPU ONNX speed
    published_gpu_ms: float | None = None  # detectors: Ultralytics' A100 TensorRT speed
    available: bool = True
    reason: str = ""  # why unavailable, or a note on a missing figure
    weights_path: str | None = None  # where the weights are on this machine, when present
    measured_ms: float | None = None  # --measure: ms per image here
    measured_on: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def detector_entries() -> list[ZooEntry]:
    return [ZooEntry(name=name, kind="detector", family=name[:6].upper().replace("YOLOV", "YOLOv"),
                     library="ultralytics", params_m=params, metric="COCO mAP50-95", score=map_, input_size=640,
                     files=(f"{name}.pt",), published_ms=cpu, published_gpu_ms=gpu)
            for name, (map_, cpu, gpu, params, _flops) in PUBLISHED_DETECTORS.items()]


def torchvision_weights(arch: str):
    """The default (best published) ImageNet weights enum member of a torchvision model."""
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT


def torchvision_entry(arch: str, family: str) -> ZooEntry:
    weights = torchvision_weights(arch)
    meta = weights.meta
    crop = weights.transforms().crop_size[0]
    return ZooEntry(name=arch, kind="classifier", family=family, library="torchvision",
                    params_m=round(meta["num_params"] / 1e6, 1), metric="ImageNet top-1",
                    score=meta["_metrics"]["ImageNet-1K"]["acc@1"], input_size=int(crop),
                    files=(Path(weights.url).name, f"{arch}.pth", f"{arch}.pt"))


@functools.lru_cache(maxsize=None)
def timm_param_count(arch: str) -> int:
    """timm's configs carry no parameter count: build the network (random weights, no download) and count."""
    import timm

    return sum(p.numel() for p in timm.create_model(arch, pretrained=False).parameters())


def timm_entry(arch: str, family: str) -> ZooEntry:
    if importlib.util.find_spec("timm") is None:
        return ZooEntry(name=arch, kind="classifier", family=family, library="timm", params_m=None,
                        metric="ImageNet top-1", score=None, input_size=0, files=(), available=False,
                        reason="not in torchvision; install timm (pip install timm) for it")
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    files = [f"{arch}.pth", f"{arch}.pt"]
    if cfg.url:
        files.insert(0, Path(cfg.url).name)
    return ZooEntry(name=arch, kind="classifier", family=family, library="timm",
                    params_m=round(timm_param_count(arch) / 1e6, 1), metric="ImageNet top-1", score=None,
                    input_size=int(cfg.input_size[-1]), files=tuple(files), reason=TIMM_NO_ACCURACY)


def classifier_entries() -> list[ZooEntry]:
    entries = [torchvision_entry(arch, family) for arch, family in TORCHVISION_CLASSIFIERS.items()]
    return entries + [timm_entry(arch, family) for arch, family in TIMM_CLASSIFIERS.items()]


def weights_dirs() -> list[Path]:
    """Where weights are looked for: the app's search path, then torch hub's download cache."""
    import torch

    return [*search_dirs(), Path(torch.hub.get_dir()) / "checkpoints"]


def locate(entry: ZooEntry) -> Path | None:
    """The first of the entry's weights files on this machine (timm: also the Hugging Face cache)."""
    for folder in weights_dirs():
        for name in entry.files:
            if (folder / name).is_file():
                return folder / name
    if entry.library == "timm":
        return _hf_cached(entry.name)
    return None


def _hf_cached(arch: str) -> Path | None:
    try:
        import timm
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return None
    hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id
    if not hub_id:
        return None
    snapshots = Path(HF_HUB_CACHE) / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/model.safetensors")) + sorted(snapshots.glob("*/pytorch_model.bin"))
    return found[0] if found else None


def zoo_table(kind: str | None = None) -> list[ZooEntry]:
    """Every entry, with where its weights are on this machine."""
    entries = []
    if kind in (None, "detector"):
        entries += detector_entries()
    if kind in (None, "classifier"):
        entries += classifier_entries()
    out = []
    for entry in entries:
        path = locate(entry) if entry.available else None
        out.append(_replace(entry, weights_path=str(path) if path else None))
    return out


def find_entry(name: str) -> ZooEntry | None:
    key = name.strip().lower().removesuffix(".pt")
    if key in PUBLISHED_DETECTORS:
        return next(e for e in detector_entries() if e.name == key)
    if key in TORCHVISION_CLASSIFIERS:
        return torchvision_entry(key, TORCHVISION_CLASSIFIERS[key])
    if key in TIMM_CLASSIFIERS:
        return timm_entry(key, TIMM_CLASSIFIERS[key])
    return None


def _replace(entry: ZooEntry, **changes) -> ZooEntry:
    import dataclasses

    return dataclasses.replace(entry, **changes)


def format_table(entries: list[ZooEntry]) -> str:
    """A plain-text table, one model a row (also pasted into README as markdown by ``markdown=True``)."""
    return _render(entries, markdown=False)


def format_markdown(entries: list[ZooEntry]) -> str:
    return _render(entries, markdown=True)


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _render(entries: list[ZooEntry], markdown: bool) -> str:
    measured = any(e.measured_ms is not None for e in entries)
    head = ["model", "kind", "family", "library", "params (M)", "metric", "score", "input",
            "published ms (CPU ONNX / A100 TRT)"]
    head += ["measured ms/img"] if measured else []
    head += ["weights here"]
    rows = []
    for e in entries:
        published = "—" if e.published_ms is None else f"{e.published_ms:g} / {e.published_gpu_ms:g}"
        if not e.available:
            where = f"unavailable: {e.reason}"
        else:
            where = e.weights_path or "no"
        row = [e.name, e.kind, e.family, e.library, _num(e.params_m), e.metric,
               _num(e.score, 2 if e.kind == "classifier" else 1), str(e.input_size or "—"), published]
        if measured:
            row.append("—" if e.measured_ms is None else f"{e.measured_ms:.1f} ({e.measured_on})")
        row.append(where)
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head).rstrip(), *(fmt.format(*r).rstrip() for r in rows)])


def notes(entries: list[ZooEntry]) -> list[str]:
    """Footnotes for figures a library does not publish."""
    out = []
    if any(e.library == "ultralytics" and e.published_ms is None for e in entries):
        out.append("YOLOv9 speeds: Ultralytics' YOLOv9 table publishes none.")
    if any(e.reason == TIMM_NO_ACCURACY for e in entries):
        out.append(f"Xception/NASNet top-1: {TIMM_NO_ACCURACY}.")
    out.append("Weights are looked for in: " + os.pathsep.join(str(d) for d in weights_dirs()))
    return out
