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
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from yolo_app.engine.models import search_dirs

log = logging.getLogger(__name__)

# Ultralytics' published COCO val2017 detection figures at 640 px, from each family's page on
# docs.ultralytics.com/models (the same text as docs/en/models/*.md in github.com/ultralytics/ultralytics).
# name: (mAP50-95, CPU ONNX ms, TensorRT ms, params M, FLOPs B); None where the page publishes no figure
# (notes() says which). Where a page gives "x ± y" ms, the speed is x. Per family:
# - YOLOv8: /models/yolov8, Detection (COCO); TensorRT on an A100.
# - YOLOv9: /models/yolov9, performance on COCO; no speeds.
# - YOLOv10: /models/yolov10: mAP and T4 TensorRT FP16 latency from its Performance table (the comparison table
#   further down reads 0.2-1.0 higher for n/s/m/l; the Performance table is the one that lists all six), params
#   from that comparison table, which leaves out b; no CPU speed.
# - YOLO11: /models/yolo11, Detection (COCO); TensorRT10 on a T4.
# - YOLO12: /models/yolo12, Detection Performance (COCO val2017); TensorRT FP16 on a T4; its CPU column is "-".
# - YOLO26: /models/yolo26, Detection (COCO) (docs/macros/yolo-det-perf.md); TensorRT10 on a T4. Its mAP50-95
#   column is the one-to-many head's, with NMS (what runs by default: --nms auto, as in Ultralytics' predict);
#   its mAP50-95(e2e) column, the one-to-one head's (--nms false), is YOLO26_E2E_MAP below.
# YOLOv10's page gives the figures of the paper, whose AP is the NMS-free (one-to-one) head's.
PUBLISHED_DETECTORS: dict[str, tuple[float, float | None, float | None, float | None, float]] = {
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
    "yolov10n": (38.5, None, 1.84, 2.3, 6.7),
    "yolov10s": (46.3, None, 2.49, 7.2, 21.6),
    "yolov10m": (51.1, None, 4.74, 15.4, 59.1),
    "yolov10b": (52.5, None, 5.74, None, 92.0),
    "yolov10l": (53.2, None, 7.28, 24.4, 120.3),
    "yolov10x": (54.4, None, 10.70, 29.5, 160.4),
    "yolo11n": (39.5, 56.1, 1.5, 2.6, 6.5),
    "yolo11s": (47.0, 90.0, 2.5, 9.4, 21.5),
    "yolo11m": (51.5, 183.2, 4.7, 20.1, 68.0),
    "yolo11l": (53.4, 238.6, 6.2, 25.3, 86.9),
    "yolo11x": (54.7, 462.8, 11.3, 56.9, 194.9),
    "yolo12n": (40.6, None, 1.64, 2.6, 6.5),
    "yolo12s": (48.0, None, 2.61, 9.3, 21.4),
    "yolo12m": (52.5, None, 4.86, 20.2, 67.5),
    "yolo12l": (53.7, None, 6.77, 26.4, 88.9),
    "yolo12x": (55.2, None, 11.79, 59.1, 199.0),
    "yolo26n": (40.9, 38.9, 1.7, 2.4, 5.4),
    "yolo26s": (48.6, 87.2, 2.5, 9.5, 20.7),
    "yolo26m": (53.1, 220.0, 4.7, 20.4, 68.2),
    "yolo26l": (55.0, 286.2, 6.2, 24.8, 86.4),
    "yolo26x": (57.5, 525.8, 11.8, 55.7, 193.9),
}
# The same page's mAP50-95(e2e) column: 0.6-0.8 lower, what the one-to-one head gives (--nms false).
YOLO26_E2E_MAP: dict[str, float] = {"yolo26n": 40.1, "yolo26s": 47.8, "yolo26m": 52.5, "yolo26l": 54.4,
                                    "yolo26x": 56.9}
# Which head each family's published mAP belongs to, where the family has two (engine/heads.py): YOLO26's page
# gives both (the score shown, then ZooEntry.score_e2e), YOLOv10's the one-to-one head's only.
SCORE_HEAD: dict[str, str] = {"YOLOv10": "end2end", "YOLO26": "nms"}
# The GPU each family's page timed TensorRT on: the two are not comparable.
TENSORRT_GPU: dict[str, str] = {"YOLOv8": "A100", "YOLOv10": "T4", "YOLO11": "T4", "YOLO12": "T4", "YOLO26": "T4"}

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
    score_head: str = ""  # a two-head detector's: which head ``score`` is of, "nms" or "end2end"
    score_e2e: float | None = None  # YOLO26: the one-to-one (NMS-free) head's mAP50-95 beside ``score``
    published_ms: float | None = None  # detectors: Ultralytics' CPU ONNX speed
    published_gpu_ms: float | None = None  # detectors: Ultralytics' TensorRT speed, on published_gpu
    published_gpu: str | None = None  # A100 or T4: the pages differ
    available: bool = True
    reason: str = ""  # why unavailable, or a note on a missing figure
    weights_path: str | None = None  # where the weights are on this machine, when present
    measured_ms: float | None = None  # --measure: ms per image here
    measured_on: str | None = None
    int8_speedup: float | None = None  # --measure --calibrate: OpenVINO INT8 FPS over fp32's
    int8_agreement: float | None = None  # share of fp32's confident boxes INT8 keeps

    def as_dict(self) -> dict:
        return asdict(self)


def detector_family(name: str) -> str:
    """yolov8n -> YOLOv8, yolov10b -> YOLOv10, yolo11n -> YOLO11: Ultralytics' spelling, which drops the v at 11."""
    match = re.fullmatch(r"yolo(v?\d+)[a-z]", name)
    if match is None:
        raise ValueError(f"not an Ultralytics detector name: {name}")
    return f"YOLO{match.group(1)}"


def detector_entries() -> list[ZooEntry]:
    entries = []
    for name, (map_, cpu, gpu, params, _flops) in PUBLISHED_DETECTORS.items():
        family = detector_family(name)
        entries.append(ZooEntry(name=name, kind="detector", family=family, library="ultralytics", params_m=params,
                                metric="COCO mAP50-95", score=map_, input_size=640, files=(f"{name}.pt",),
                                score_head=SCORE_HEAD.get(family, ""), score_e2e=YOLO26_E2E_MAP.get(name),
                                published_ms=cpu, published_gpu_ms=gpu,
                                published_gpu=TENSORRT_GPU.get(family) if gpu is not None else None))
    return entries


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


def _score(e: ZooEntry) -> str:
    """"37.3"; a two-head detector's with the head each figure belongs to: "40.9 NMS / 40.1 NMS-free"."""
    score = _num(e.score, 2 if e.kind == "classifier" else 1)
    heads = {"nms": "NMS", "end2end": "NMS-free"}
    if not e.score_head or e.score is None:
        return score
    both = f" / {e.score_e2e:.1f} NMS-free" if e.score_e2e is not None else ""
    return f"{score} {heads[e.score_head]}{both}"


def _published(e: ZooEntry) -> str:
    """"80.4 / 0.99 A100": CPU ONNX / TensorRT and its GPU; a dash for a figure the page does not publish."""
    if e.published_ms is None and e.published_gpu_ms is None:
        return "—"
    cpu = "—" if e.published_ms is None else f"{e.published_ms:.1f}"  # every page gives CPU ms to 0.1
    gpu = "—" if e.published_gpu_ms is None else f"{e.published_gpu_ms:g} {e.published_gpu}"
    return f"{cpu} / {gpu}"


def _render(entries: list[ZooEntry], markdown: bool) -> str:
    measured = any(e.measured_ms is not None for e in entries)
    head = ["model", "kind", "family", "library", "params (M)", "metric", "score", "input",
            "published ms (CPU ONNX / TensorRT GPU)"]
    head += ["measured ms/img"] if measured else []
    head += ["weights here"]
    rows = []
    for e in entries:
        published = _published(e)
        if not e.available:
            where = f"unavailable: {e.reason}"
        else:
            where = e.weights_path or "no"
        row = [e.name, e.kind, e.family, e.library, _num(e.params_m), e.metric, _score(e),
               str(e.input_size or "—"), published]
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
    """Footnotes: the figures a library does not publish, and how to read the detectors' speeds and mAP."""
    out = _detector_gaps(entries)
    gpus: dict[str, list[str]] = {}
    for e in entries:
        if e.published_gpu and e.family not in gpus.get(e.published_gpu, []):
            gpus.setdefault(e.published_gpu, []).append(e.family)
    if len(gpus) > 1:  # one GPU needs no warning
        out.append("TensorRT speeds were measured on different GPUs, not comparable across them: "
                   + "; ".join(f"{gpu}: {', '.join(families)}" for gpu, families in gpus.items()) + ".")
    if any(e.score_head for e in entries):
        out.append("YOLOv10 and YOLO26 have two heads (--nms): YOLO26's page gives the mAP50-95 of both, the "
                   "one-to-many head with NMS, which runs by default as in Ultralytics' predict, and the one-to-one "
                   "head (--nms false); YOLOv10's page gives the one-to-one (NMS-free) head's only.")
    if any(e.reason == TIMM_NO_ACCURACY for e in entries):
        out.append(f"Xception/NASNet top-1: {TIMM_NO_ACCURACY}.")
    out.append("Weights are looked for in: " + os.pathsep.join(str(d) for d in weights_dirs()))
    return out


def _detector_gaps(entries: list[ZooEntry]) -> list[str]:
    """One line per detector family whose Ultralytics page leaves a figure out (None in PUBLISHED_DETECTORS)."""
    families: dict[str, list[ZooEntry]] = {}
    for e in entries:
        if e.kind == "detector":
            families.setdefault(e.family, []).append(e)
    out = []
    for family, members in families.items():
        gaps = []
        for label, field in (("COCO mAP50-95", "score"), ("CPU ONNX speed", "published_ms"),
                             ("TensorRT speed", "published_gpu_ms"), ("parameter count", "params_m")):
            missing = [e.name for e in members if getattr(e, field) is None]
            if missing:
                gaps.append(label if len(missing) == len(members) else f"{label} for {', '.join(missing)}")
        if gaps:
            out.append(f"{family}: Ultralytics' {family} page publishes no " + ", no ".join(gaps) + ".")
    return out
