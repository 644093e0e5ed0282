"""Fine-tuning: a detector through Ultralytics' trainer, a classifier by transfer learning in torch.

Both print one line per epoch through ``report`` and return where the best weights are and how well
they did on the validation split. Bad input (a missing data.yaml, an empty class folder) is a
UserError before any training starts.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import yaml

from yolo_app.engine.device import select_device
from yolo_app.engine.models import load_network, resolve_weights
from yolo_app.errors import RuntimeFailure, UserError
from yolo_app.zoo.classifier import (CHECKPOINT_FORMAT, INTERPOLATION, Transform, build_network,
                                     default_transform, fit_state, library_of, pretrained_file, read_weights,
                                     resolve_file, save_checkpoint)

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
Report = Callable[[str], None]


@dataclass(frozen=True)
class TrainOutcome:
    weights: Path  # the best checkpoint
    metric: str  # what ``score`` is: "mAP50-95" or "val accuracy"
    score: float
    seconds: float


# detector --------------------------------------------------------------------------------------------
def check_dataset_yaml(data: Path) -> dict:
    if not data.is_file():
        raise UserError(f"no dataset file {data} (expected a YOLO data.yaml, e.g. from annotate --export yolo)")
    try:
        spec = yaml.safe_load(data.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{data}: not a YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(spec, dict) or not spec.get("names") or not spec.get("train"):
        raise UserError(f"{data}: not a YOLO dataset file (it needs 'train' and 'names')")
    root = Path(spec.get("path") or data.parent)
    root = root if root.is_absolute() else data.parent / root
    for key in ("train", "val"):
        if spec.get(key) and not (root / spec[key]).exists():
            raise UserError(f"{data}: its {key} folder {root / spec[key]} does not exist")
    return spec


def train_detector(data: Path, weights: str, epochs: int, imgsz: int, out: Path, device: str = "auto",
                   batch: int = 8, report: Report = print, trust: bool = False) -> TrainOutcome:
    """Fine-tune a YOLO detector with Ultralytics' trainer; ``out``/weights/best.pt is the result.
    ``trust``: the starting checkpoint may need full unpickling (``--trust-weights``)."""
    from ultralytics import YOLO

    check_dataset_yaml(data)
    path = resolve_weights(weights)
    dev = torch.device(str(select_device(device)))
    if path.suffix.lower() == ".pt" and not trust:
        load_network(path)  # Ultralytics unpickles it fully: first refuse a file outside its checkpoint format
    yolo = YOLO(str(path))
    if getattr(yolo, "task", None) != "detect":
        raise UserError(f"{path} is not a detection model")
    began = time.monotonic()

    reported: set[int] = set()

    def epoch_end(trainer) -> None:
        # The trainer runs this hook again after validating best.pt, with its epoch one past the last.
        if trainer.epoch in reported or trainer.epoch >= trainer.epochs:
            return
        reported.add(trainer.epoch)
        metrics = trainer.metrics or {}
        tloss = getattr(trainer, "tloss", None)  # a tensor, or a dict of them in newer Ultralytics
        parts = list(tloss.values()) if isinstance(tloss, dict) else [] if tloss is None else [tloss]
        loss = sum(float(torch.as_tensor(p).sum()) for p in parts) if parts else float("nan")
        report(f"epoch {trainer.epoch + 1}/{trainer.epochs}: loss {loss:.3f}, "
               f"mAP50 {metrics.get('metrics/mAP50(B)', 0.0):.3f}, "
               f"mAP50-95 {metrics.get('metrics/mAP50-95(B)', 0.0):.3f} ({time.monotonic() - began:.0f} s)")

    yolo.add_callback("on_fit_epoch_end", epoch_end)
    out = out.resolve()
    try:
        # workers=0: the loader in this process (no fork of a process holding threads); plots=False: no
        # font download for the plots; amp only on a GPU (its check downloads a model).
        yolo.train(data=str(data.resolve()), epochs=epochs, imgsz=imgsz, batch=batch, device=_ul_device(dev),
                   project=str(out.parent), name=out.name, exist_ok=True, workers=0, plots=False,
                   amp=dev.type == "cuda", verbose=False, val=True)
    except (FileNotFoundError, RuntimeError, ValueError, KeyError) as exc:
        raise RuntimeFailure(f"training failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
    trainer = yolo.trainer
    best = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
    score = float((trainer.metrics or {}).get("metrics/mAP50-95(B)", 0.0))
    return TrainOutcome(best, "mAP50-95", score, time.monotonic() - began)


def _ul_device(dev: torch.device) -> str:
    return "cpu" if dev.type == "cpu" else ("mps" if dev.type == "mps" else str(dev.index or 0))


# classifier ------------------------------------------------------------------------------------------
def folder_dataset(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """A folder per class (as ``annotate --export crops`` writes): class names and (image, class) pairs."""
    if not root.is_dir():
        raise UserError(f"no such folder {root} (expected one folder of images per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples = [(p, i) for i, name in enumerate(classes) for p in sorted((root / name).iterdir())
               if p.suffix.lower() in IMAGE_SUFFIXES]
    if len(classes) < 2:
        raise UserError(f"{root}: a classifier needs at least two class folders, found {len(classes)}")
    empty = [name for i, name in enumerate(classes) if not any(c == i for _, c in samples)]
    if empty:
        raise UserError(f"{root}: class folder '{empty[0]}' has no images")
    return classes, samples


def split(samples: list[tuple[Path, int]], val_fraction: float, seed: int = 0
          ) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Per class, a fixed share to validation (at least one when the class has two images)."""
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted({c for _, c in samples}):
        items = [s for s in samples if s[1] == label]
        rng.shuffle(items)
        n_val = min(len(items) - 1, max(1 if len(items) > 1 else 0, round(len(items) * val_fraction)))
        val += items[:n_val]
        train += items[n_val:]
    return train, val


def load_batch(items: list[tuple[Path, int]], t: Transform, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images resized and centre-cropped as at inference (``t``), flipped at random when training."""
    flag = INTERPOLATION.get(t.interpolation, cv2.INTER_LINEAR)
    images = np.empty((len(items), t.crop, t.crop, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(items):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"cannot read image {path}")
        h, w = image.shape[:2]
        scale = t.resize / min(h, w)
        nw, nh = max(t.crop, round(w * scale)), max(t.crop, round(h * scale))
        image = cv2.resize(image, (nw, nh), interpolation=flag)
        top, left = (nh - t.crop) // 2, (nw - t.crop) // 2
        image = image[top:top + t.crop, left:left + t.crop]
        images[i] = image[:, ::-1] if augment and random.random() < 0.5 else image
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).flip(1).float().div_(255)
    mean, std = torch.tensor(t.mean).view(1, 3, 1, 1), torch.tensor(t.std).view(1, 3, 1, 1)
    return (batch - mean) / std, torch.tensor([c for _, c in items])


def train_classifier(data: Path, arch: str, weights: str | None, epochs: int, out: Path, freeze: bool = False,
                     imgsz: int | None = None, batch: int = 16, lr: float = 1e-3, val_fraction: float = 0.2,
                     device: str = "auto", report: Report = print, seed: int = 0) -> TrainOutcome:
    """Transfer learning: a pre-trained backbone, a new head for the folder's classes, Adam, the best
    epoch (validation accuracy) kept as ``out/best.pt`` with class names and transforms."""
    classes, samples = folder_dataset(data)
    library = library_of(arch)
    transform = default_transform(arch, library)
    if imgsz:
        transform = transform.scaled(imgsz)
    module = build_network(arch, library, len(classes))
    backbone = _backbone_state(arch, library, weights)
    head = fit_state(module, backbone, strict_head=False) if backbone is not None else []
    if freeze:
        if backbone is None:
            raise UserError("--freeze needs pre-trained weights (not --weights none): a random backbone "
                            "frozen learns nothing")
        for name, p in module.named_parameters():
            p.requires_grad_(name in head)
    train, val = split(samples, val_fraction, seed)
    dev = torch.device(str(select_device(device)))
    module.to(dev)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    random.seed(seed)
    torch.manual_seed(seed)
    report(f"{arch}: {len(classes)} classes, {len(train)} train / {len(val)} val images, input {transform.crop} px, "
           f"{'head only' if freeze else 'all layers'}, "
           f"{'random init' if backbone is None else 'pre-trained backbone'}")
    out.mkdir(parents=True, exist_ok=True)
    best_acc, best_path, began = -1.0, out / "best.pt", time.monotonic()
    for epoch in range(1, epochs + 1):
        module.train()
        random.shuffle(train)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(train), batch):
            x, y = load_batch(train[start:start + batch], transform, augment=True)
            x, y = x.to(dev), y.to(dev)
            logits = module(x)
            logits = logits.logits if hasattr(logits, "logits") else logits  # inception in train mode
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        acc = evaluate(module, val or train, transform, dev, batch)
        report(f"epoch {epoch}/{epochs}: train loss {loss_sum / max(total, 1):.3f}, "
               f"train acc {correct / max(total, 1):.3f}, val acc {acc:.3f} ({time.monotonic() - began:.0f} s)")
        extra = {"val_accuracy": acc, "epoch": epoch, "trained_on": str(data.resolve())}
        save_checkpoint(out / "last.pt", module, arch, library, classes, transform, **extra)
        if acc > best_acc:
            best_acc = acc
            save_checkpoint(best_path, module, arch, library, classes, transform, **extra)
    return TrainOutcome(best_path, "val accuracy", best_acc, time.monotonic() - began)


def evaluate(module: torch.nn.Module, items: list[tuple[Path, int]], t: Transform, dev: torch.device,
             batch: int) -> float:
    module.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(items), batch):
            x, y = load_batch(items[start:start + batch], t, augment=False)
            correct += int((module(x.to(dev)).argmax(1).cpu() == y).sum())
    return correct / max(len(items), 1)


def _backbone_state(arch: str, library: str, weights: str | None) -> dict | None:
    """The starting weights: the arch's ImageNet file on this machine, a given file (a bare state dict
    or a checkpoint), or None for ``--weights none`` (random init)."""
    if weights is not None and weights.lower() in ("none", "random"):
        return None
    hint = "give --weights FILE, or --weights none to start from random weights"
    path = resolve_file(weights) if weights else pretrained_file(arch, library, hint)
    state = read_weights(path)
    if state.get("format") == CHECKPOINT_FORMAT:
        if state["arch"] != arch:
            raise UserError(f"{path} is a {state['arch']} checkpoint, not {arch}")
        state = state["state_dict"]
    return state
