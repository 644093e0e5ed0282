"""The second stage: classify what the detector found with an ImageNet-style classifier.

``load_classifier("resnet50")`` finds the torchvision weights on this machine (never downloads);
``"resnet50:path.pth"`` takes a weights file; a checkpoint written by ``train-classifier`` carries its
architecture, class names and transforms, so ``"runs/cls/best.pt"`` alone is enough. Preprocessing is
each model's own: resize the short side, centre-crop, normalise with its mean/std.
``ClassifierStage`` crops each detection with a margin, classifies the crops in batches and adds a
``classification`` dict (label, confidence, top5) to the detection's data.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from yolo_app.engine.classify import with_classification  # the column the engine's stage thread carries
from yolo_app.engine.device import Device, select_device
from yolo_app.engine.types import Result
from yolo_app.errors import UserError
from yolo_app.zoo import catalog

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "yolo-app classifier"
CHECKPOINT_VERSION = 1
WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin")
MARGIN = 0.1  # each side of a box grows by this share of its size: context helps, as in the training crops
BATCH = 32  # crops per forward pass
TOP_K = 5
INTERPOLATION = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}


@dataclass(frozen=True)
class Transform:
    """A classifier's eval preprocessing: short side to ``resize``, centre crop ``crop``, mean/std (RGB, 0-1)."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Transform:
        return cls(int(d["resize"]), int(d["crop"]), tuple(d["mean"]), tuple(d["std"]),  # type: ignore[arg-type]
                   str(d.get("interpolation", "bilinear")))

    def scaled(self, crop: int) -> Transform:
        """The same recipe at another input size (small sizes train fast)."""
        return dataclasses.replace(self, crop=crop, resize=max(crop, round(crop * self.resize / self.crop)))


def library_of(arch: str) -> str:
    """torchvision for its classification models, timm for the rest it knows; else a UserError."""
    import torchvision

    if arch in torchvision.models.list_models(module=torchvision.models):
        return "torchvision"
    if arch in catalog.TIMM_CLASSIFIERS or _timm_knows(arch):
        return "timm"
    known = ", ".join([*catalog.TORCHVISION_CLASSIFIERS, *catalog.TIMM_CLASSIFIERS])
    raise UserError(f"unknown classifier '{arch}'; try one of: {known} (or any torchvision classification model)")


def _timm_knows(arch: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return bool(timm.list_models(arch))


def default_transform(arch: str, library: str) -> Transform:
    """The preprocessing published with the architecture's ImageNet weights."""
    if library == "timm":
        import timm

        cfg = timm.models.get_pretrained_cfg(arch)
        crop = int(cfg.input_size[-1])
        return Transform(math.floor(crop / cfg.crop_pct), crop, tuple(cfg.mean), tuple(cfg.std),  # type: ignore[arg-type]
                         cfg.interpolation or "bilinear")
    t = catalog.torchvision_weights(arch).transforms()
    return Transform(int(t.resize_size[0]), int(t.crop_size[0]), tuple(t.mean), tuple(t.std),  # type: ignore[arg-type]
                     str(t.interpolation.value))


def imagenet_classes() -> list[str]:
    return list(catalog.torchvision_weights("resnet50").meta["categories"])


def build_network(arch: str, library: str, num_classes: int) -> torch.nn.Module:
    """The architecture with random weights and ``num_classes`` outputs (nothing is downloaded)."""
    if library == "timm":
        import timm

        return timm.create_model(arch, pretrained=False, num_classes=num_classes)
    import torchvision

    extra = {"aux_logits": False, "init_weights": False} if arch in ("inception_v3", "googlenet") else {}
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **extra)


def read_weights(path: Path) -> dict:
    """A weights file as a dict (our checkpoint, or a bare state dict); one UserError for anything else."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch raise many kinds for a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{path}: not a classifier weights file ({type(exc).__name__}: {first})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a classifier weights file (no state dict in it)")
    for key in ("state_dict", "model"):  # common wrappers around a state dict
        if data.get("format") != CHECKPOINT_FORMAT and isinstance(data.get(key), dict):
            return data[key]
    return data


def fit_state(module: torch.nn.Module, state: dict, strict_head: bool = True) -> list[str]:
    """Load ``state`` into ``module``; returns the names left at random init (a new head). Keys of a
    different shape are skipped only when ``strict_head`` is False (transfer learning)."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}  # inception's training-only branch
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    unexpected = [k for k in state if k not in own]
    if (skipped and strict_head) or unexpected:
        what = (skipped or unexpected)[0]
        raise UserError(f"the weights do not fit this architecture (first mismatch: {what}); "
                        f"check ARCH in ARCH:WEIGHTS")
    module.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return [k for k in own if k not in state or k in skipped]


def save_checkpoint(path: Path, module: torch.nn.Module, arch: str, library: str, classes: Sequence[str],
                    transform: Transform, **extra) -> Path:
    """Write a checkpoint ``load_classifier`` reads alone: weights, architecture, class names, transforms."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "arch": arch, "library": library,
                "classes": list(classes), "transform": transform.as_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}, **extra}, str(part))
    part.replace(path)
    return path


def parse_spec(spec: str) -> tuple[str | None, str | None]:
    """``ARCH``, ``ARCH:WEIGHTS`` or a checkpoint path alone -> (arch, weights)."""
    text = spec.strip()
    if not text:
        raise UserError("--classify needs ARCH or ARCH:WEIGHTS, e.g. resnet50 or resnet50:weights/resnet50.pth")
    if Path(text).suffix.lower() in WEIGHTS_SUFFIXES and ":" not in text.split("/")[0]:
        return None, text
    arch, _, weights = text.partition(":")
    return arch.strip() or None, weights.strip() or None


def resolve_file(weights: str) -> Path:
    given = Path(weights).expanduser()
    if given.is_file():
        return given
    if given.parent == Path("."):
        for folder in catalog.weights_dirs():
            if (folder / given.name).is_file():
                return folder / given.name
    raise UserError(f"classifier weights '{weights}' not found (as a path, nor in "
                    f"{', '.join(str(d) for d in catalog.weights_dirs())})")


def pretrained_file(arch: str, library: str, hint: str = "") -> Path:
    """The architecture's ImageNet weights on this machine, or one clear UserError (never a download)."""
    entry = catalog.find_entry(arch)
    if entry is None:  # a torchvision model outside the zoo table
        url = catalog.torchvision_weights(arch).url if library == "torchvision" else ""
        entry = catalog.ZooEntry(arch, "classifier", arch, library, None, "", None, 0,
                                 tuple(n for n in (Path(url).name, f"{arch}.pth", f"{arch}.pt") if n))
    found = catalog.locate(entry)
    if found is None:
        raise UserError(f"no weights for {arch} on this machine (looked for {', '.join(entry.files)} in "
                        f"{', '.join(str(d) for d in catalog.weights_dirs())}); add the file there, run "
                        f"'yolo-app models --download {arch}' where there is a network, or "
                        f"{hint or f'give {arch}:WEIGHTS'}")
    return found


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float
    top5: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict:
        return {"label": self.label, "confidence": round(self.confidence, 5),
                "top5": [{"label": n, "confidence": round(p, 5)} for n, p in self.top5]}


class CropClassifier:
    """A classification network in eval mode on its device, with its class names and preprocessing."""

    def __init__(self, module: torch.nn.Module, arch: str, library: str, classes: Sequence[str],
                 transform: Transform, device: torch.device, weights: Path | None = None) -> None:
        self.module = module.to(device).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.arch, self.library, self.classes = arch, library, list(classes)
        self.transform, self.device, self.weights = transform, device, weights
        self._mean = torch.tensor(transform.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(transform.std, device=device).view(1, 3, 1, 1)

    @property
    def name(self) -> str:
        return f"{self.arch}:{self.weights.name}" if self.weights else self.arch

    def preprocess(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """BGR uint8 crops -> a normalised RGB batch (short side to ``resize``, centre crop ``crop``)."""
        t = self.transform
        flag = INTERPOLATION.get(t.interpolation, cv2.INTER_LINEAR)
        out = np.empty((len(crops), t.crop, t.crop, 3), dtype=np.uint8)
        for i, crop in enumerate(crops):
            h, w = crop.shape[:2]
            scale = t.resize / min(h, w)
            nw, nh = max(t.crop, round(w * scale)), max(t.crop, round(h * scale))
            resized = cv2.resize(crop, (nw, nh), interpolation=flag)
            top, left = (nh - t.crop) // 2, (nw - t.crop) // 2
            out[i] = resized[top:top + t.crop, left:left + t.crop]
        batch = torch.from_numpy(out).to(self.device).permute(0, 3, 1, 2).flip(1).float().div_(255)
        return (batch - self._mean) / self._std

    def classify(self, crops: Sequence[np.ndarray]) -> list[Classification]:
        results: list[Classification] = []
        k = min(TOP_K, len(self.classes))
        for start in range(0, len(crops), BATCH):
            with torch.inference_mode():
                logits = self.module(self.preprocess(crops[start:start + BATCH]))
                probs, ids = logits.float().softmax(1).topk(k, dim=1)
            for p_row, id_row in zip(probs.cpu().tolist(), ids.cpu().tolist()):
                top = tuple((self.classes[i], float(p)) for p, i in zip(p_row, id_row))
                results.append(Classification(top[0][0], top[0][1], top))
        return results

    def describe(self) -> dict:
        return {"arch": self.arch, "weights": str(self.weights) if self.weights else None,
                "classes": len(self.classes), "input": self.transform.crop}


def load_classifier(spec: str, device: str | Device = "auto") -> CropClassifier:
    """``ARCH``, ``ARCH:WEIGHTS`` or a train-classifier checkpoint -> a ready CropClassifier."""
    arch, weights = parse_spec(spec)
    path = resolve_file(weights) if weights else None
    state = read_weights(path) if path else None
    if state is not None and state.get("format") == CHECKPOINT_FORMAT:
        if arch and arch != state["arch"]:
            raise UserError(f"{path} is a {state['arch']} checkpoint, not {arch}")
        arch, library = state["arch"], state["library"]
        classes, transform = list(state["classes"]), Transform.from_dict(state["transform"])
        state = state["state_dict"]
    else:
        if arch is None:
            raise UserError(f"{path} holds bare weights: say which architecture, as ARCH:{weights}")
        library = library_of(arch)
        if state is None:
            path = pretrained_file(arch, library)
            state = read_weights(path)
        classes, transform = imagenet_classes(), default_transform(arch, library)
    dev = torch.device(str(select_device(device)))
    module = build_network(arch, library, len(classes))
    own = module.state_dict()
    head = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if head and own[head[-1]].shape[1:] == state[head[-1]].shape[1:]:  # a bare head of another size
        classes = [f"class {i}" for i in range(int(state[head[-1]].shape[0]))]
        module = build_network(arch, library, len(classes))
    missing = fit_state(module, state)
    if missing:
        raise UserError(f"{path} lacks weights for {arch} (first missing: {missing[0]})")
    return CropClassifier(module, arch, library, classes, transform, dev, path)


def crop_with_margin(image: np.ndarray, xyxy: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(math.ceil(x2 + mx))), min(h, int(math.ceil(y2 + my)))
    if right - left < 2 or bottom - top < 2:
        return np.zeros((2, 2, 3), dtype=np.uint8)  # a degenerate box: classified as the blank it is
    return image[top:bottom, left:right]


class ClassifierStage:
    """Adds ``classification`` to the detections of a result (those of ``classes``, or all)."""

    def __init__(self, classifier: CropClassifier, classes: Sequence[str] | None = None,
                 margin: float = MARGIN) -> None:
        self.classifier = classifier
        self.classes = {c.strip().lower() for c in classes} if classes else None
        self.margin = margin

    def check_classes(self, detector_names: dict[int, str]) -> None:
        """--classify-classes must name the detector's classes: a typo is an error, not a silent no-op."""
        if self.classes is None:
            return
        known = {n.lower() for n in detector_names.values()}
        unknown = sorted(self.classes - known)
        if unknown:
            raise UserError(f"--classify-classes: unknown class '{unknown[0]}' for the detector; valid classes: "
                            f"{', '.join(detector_names.values())}")

    def describe(self) -> dict:
        return {**self.classifier.describe(), "only": sorted(self.classes) if self.classes else None}

    def apply(self, result: Result) -> Result:
        det = result.boxes
        names = det.data.get("class_name", np.array([], dtype=object))
        chosen = [i for i in range(len(det)) if self.classes is None or str(names[i]).lower() in self.classes]
        found = self.classifier.classify([crop_with_margin(result.frame.image, det.xyxy[i], self.margin)
                                          for i in chosen]) if chosen else []
        values: list[dict | None] = [None] * len(det)
        for i, c in zip(chosen, found):
            values[i] = c.as_dict()
        return with_classification(result, values)
