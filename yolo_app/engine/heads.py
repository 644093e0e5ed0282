"""Detection heads: which kind a network has, and how its output becomes the boxes Ultralytics keeps.

Two kinds run here, and both give the same ``Survivors`` (boxes in network-input pixels, with the
candidate each came from, so every kept box keeps its full class-score vector):

- ``nms``: the one-to-many head of YOLOv8/v9/11/12. Its output is ``(4 + nc, candidates)``, boxes as
  centre/size; many candidates cover one object, so non-maximum suppression picks one.
- ``end2end``: the one-to-one head of YOLOv10 and YOLO26, trained so that one candidate answers per
  object. Ultralytics decodes its boxes as corners and keeps the top-k by score, without NMS. We run
  the network up to that decoded output (``(4 + nc, candidates)``, corners) on every backend and do the
  top-k here, with Ultralytics' arithmetic, so we know which candidate each box is.

A YOLOv10 or YOLO26 checkpoint carries both heads. Which one runs is Ultralytics' own rule, so our boxes are
its boxes: by default (``nms: auto``, its predict's ``nms=None``) the head the network selects itself, which
for a checkpoint with both is the one-to-many head with NMS (``DetectionModel.end2end`` of the installed
Ultralytics says so); ``nms: false`` the one-to-one head (NMS-free), ``nms: true`` the one-to-many head. A
fused checkpoint, or an export, has the one head it kept.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from yolo_app.errors import UserError

if TYPE_CHECKING:
    import torch

HEAD_NMS = "nms"
HEAD_END2END = "end2end"
HEAD_LABELS = {HEAD_NMS: "NMS head", HEAD_END2END: "end-to-end head (top-k, no NMS)"}
MAX_NMS = 30000  # boxes that enter NMS, as Ultralytics
MAX_WH = 7680  # per-class box offset for class-aware NMS, as Ultralytics
E2E_MIN_TOP_K = 300  # Ultralytics' predict sets the head's top-k to max(max_det, 300) so class filters see enough
SUPPORTED = "YOLOv8, YOLOv9, YOLOv10, YOLO11, YOLO12 and YOLO26 detection models (.pt, or their Ultralytics " \
            "ONNX, OpenVINO or TensorRT exports)"


@dataclass(frozen=True, slots=True)
class Survivors:
    """The kept boxes in network-input pixels (xyxy, float32), with the candidate (anchor) index each box came
    from (-1 where the network chose them itself and does not say)."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    anchor: np.ndarray
    above_conf: int  # candidates whose score passed conf (and the class filter)


def detect_head(network: torch.nn.Module) -> torch.nn.Module:
    """The network's last layer when it is a plain YOLO detection head (v8/v9/v10/11/12/26), else a
    one-line refusal naming what the file is and what is supported."""
    import torch
    from ultralytics.nn.modules.head import Detect, v10Detect

    layers = getattr(network, "model", None)
    head = layers[-1] if isinstance(layers, torch.nn.Sequential) else None
    if type(head) not in (Detect, v10Detect):
        kind = {"RTDETRDecoder": "an RT-DETR model", "WorldDetect": "a YOLO-World model"}.get(
            type(head).__name__, f"a '{type(head).__name__ if head is not None else type(network).__name__}' network")
        if type(head).__name__.startswith("YOLOE"):
            kind = "a YOLOE model"
        raise UserError(f"is {kind}; yolo-app runs {SUPPORTED}")
    return head


def heads_of(head: torch.nn.Module) -> tuple[str, ...]:
    """The heads a detection head can run: the one-to-many (NMS) where its branch is there, the one-to-one
    where it carries one (fusion leaves only the one that ran)."""
    branches = ((HEAD_NMS, "cv2"), (HEAD_END2END, "one2one_cv2"))
    return tuple(kind for kind, branch in branches if getattr(head, branch, None) is not None)


def default_head(network: torch.nn.Module) -> str:
    """The head Ultralytics' predict runs on this checkpoint with its default arguments (``nms=None``: no
    override, the network's own ``end2end``): read from the installed Ultralytics, so a release that changes
    its default changes ours with it (and the parity tests say so)."""
    return HEAD_END2END if getattr(network, "end2end", False) else HEAD_NMS


class HeadUnavailable(UserError):
    """The file has not the head ``nms`` asks for (a front end with a standing preference runs the file's own)."""


def choose_head(heads: tuple[str, ...], default: str, nms: str, model_id: str) -> str:
    """The head a run uses: ``nms`` (settings.NMS_CHOICES) against the heads the file has; one line when the
    file has not the head asked for."""
    if nms == "auto":
        return default
    wanted = HEAD_END2END if nms == "false" else HEAD_NMS
    if wanted in heads:
        return wanted
    if wanted == HEAD_END2END:
        raise HeadUnavailable(f"nms false runs the one-to-one (NMS-free) head, and {model_id} has none (YOLOv10 and "
                        f"YOLO26 models do); use nms auto")
    raise HeadUnavailable(f"nms true runs the one-to-many head with NMS, and {model_id} has only its one-to-one head "
                    f"(fused, or exported NMS-free); use nms auto")


def select_head(network: torch.nn.Module, head: str) -> None:
    """Make an unfused network run ``head`` (fusion then drops the other branch): the one-to-one head up to
    its decoded output (``run_one_to_one``), or the one-to-many head, as predict with NMS runs it."""
    if head == HEAD_END2END:
        run_one_to_one(network)
    elif HEAD_END2END in heads_of(network.model[-1]):
        network.end2end = False


def _decoded_one_to_one(self, preds: torch.Tensor) -> torch.Tensor:
    """Stands in for ``Detect.postprocess``: the decoded one-to-one output as it came, (B, 4 + nc, anchors)."""
    return preds.permute(0, 2, 1)


def run_one_to_one(network: torch.nn.Module) -> None:
    """Select the one-to-one branch of an end-to-end head (fusion then drops the other) and make the
    network return its decoded output, before Ultralytics' top-k: ours does the same top-k and keeps
    the candidate index (for each box's class scores and the grid view)."""
    import types

    network.end2end = True
    head = network.model[-1]
    head.postprocess = types.MethodType(_decoded_one_to_one, head)


@contextmanager
def one_to_one_exports() -> Iterator[None]:
    """While Ultralytics exports an end-to-end model, its graph ends at the decoded one-to-one output
    (as ``run_one_to_one``), so every backend hands us the same tensor as PyTorch. The exporter builds its
    own copy of the network, hence a class-level patch, held only for the export (exports are serialised)."""
    from ultralytics.nn.modules.head import Detect

    original = Detect.postprocess
    Detect.postprocess = _decoded_one_to_one
    try:
        yield
    finally:
        Detect.postprocess = original


def non_max_suppression(pred: np.ndarray, conf_thres: float, iou_thres: float,
                        classes: tuple[int, ...] | None, max_det: int, best: np.ndarray | None = None,
                        half: bool = False) -> Survivors:
    """Best-class NMS on one image's head output (4 + nc, candidates), float32, with the same arithmetic as
    Ultralytics' ``non_max_suppression`` so the surviving boxes are identical. ``best``: each candidate's best
    class score, when the caller has it already. ``half``: the network ran in fp16 (its output widened
    exactly to float32): the first score filter and the boxes' corners are in fp16, as Ultralytics has them on
    that output."""
    best = pred[4:].max(0) if best is None else best
    anchor = np.flatnonzero(best > (np.float16(conf_thres) if half else conf_thres))
    x = pred[:, anchor].T
    centres = x[:, :4].astype(np.float16) if half else x[:, :4]
    boxes = _xywh2xyxy(centres).astype(np.float32)  # then float32: the class offsets below overflow fp16
    cls = x[:, 4:].argmax(1)
    conf = x[np.arange(len(x)), 4 + cls].astype(np.float32)
    keep = conf > conf_thres
    if classes is not None:
        keep &= np.isin(cls, classes)
    boxes, conf, cls, anchor = boxes[keep], conf[keep], cls[keep], anchor[keep]
    above_conf = len(conf)
    if above_conf > MAX_NMS:
        order = _descending(conf)[:MAX_NMS]
        boxes, conf, cls, anchor = boxes[order], conf[order], cls[order], anchor[order]
    kept = _nms(boxes + cls[:, None].astype(np.float32) * MAX_WH, conf, iou_thres)[:max_det]
    return Survivors(boxes[kept], conf[kept], cls[kept], anchor[kept], above_conf)


def _xywh2xyxy(x: np.ndarray) -> np.ndarray:
    """Centre/size to corners, with Ultralytics' arithmetic (half the size off the centre, each way)."""
    y = np.empty_like(x)
    half = x[:, 2:] / 2
    y[:, :2] = x[:, :2] - half
    y[:, 2:] = x[:, :2] + half
    return y


def _descending(scores: np.ndarray) -> np.ndarray:
    """Indices from the highest score down; equal scores in candidate order. (PyTorch's unstable sort, and so
    Ultralytics, orders equal scores as its sorting network happens to: the same boxes, not always in the
    same order, and between two overlapping boxes of one class and score it may keep the other one.)"""
    return np.argsort(-scores, kind="stable")


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """``_descending(scores)[:k]``, without sorting them all: the k best are partitioned off first (equal scores
    at the k-th place taken in candidate order, so the result is the same), then sorted. The one-to-one head
    ranks 8400 candidates and then 300 x 80 (candidate, class) pairs a frame: a full sort of those cost more
    than NMS on the other head."""
    if k >= len(scores):
        return _descending(scores)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th largest score
    above = np.flatnonzero(scores > kth)
    chosen = np.concatenate([above, np.flatnonzero(scores == kth)[:k - len(above)]])
    return chosen[_descending(scores[chosen])]


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS, torchvision's algorithm and float32 arithmetic: the best box stays, those overlapping it
    by more than ``iou_threshold`` go, then the best of the rest."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = _descending(scores)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):  # two empty boxes: NaN, which suppresses nothing
            order = rest[~(inter / (areas[i] + areas[rest] - inter) > iou_threshold)]
    return np.array(keep, dtype=np.int64)


def one_to_one_top_k(pred: np.ndarray, conf_thres: float, classes: tuple[int, ...] | None, max_det: int,
                     best: np.ndarray | None = None) -> Survivors:
    """Ultralytics' end-to-end selection on one image's decoded one-to-one output (4 + nc, candidates),
    boxes as corners: the head's top-k candidates by best class score (k = max(max_det, 300), as predict
    sets it), then the top-k of those candidates' (candidate, class) scores, so one candidate may give a
    box per class; then predict's filter: score above conf, class in ``classes``, the first ``max_det``.
    An fp16 network's scores (widened exactly) are filtered in float32 here too: Ultralytics' top-k rows
    come out in float32 (their class column is), unlike the fp16 filter before its NMS."""
    scores = pred[4:].T  # (candidates, nc)
    nc = scores.shape[1]
    best = scores.max(1) if best is None else best
    k = min(max(max_det, E2E_MIN_TOP_K), scores.shape[0])
    first = _top(best, k)
    pairs = scores[first].ravel()
    flat = _top(pairs, k)
    conf, cls, anchor = pairs[flat], flat % nc, first[flat // nc]
    keep = conf > conf_thres
    if classes is not None:
        keep &= np.isin(cls, classes)
    kept = np.flatnonzero(keep)
    above_conf = len(kept)
    kept = kept[:max_det]
    anchor = anchor[kept]
    return Survivors(pred[:4, anchor].T.astype(np.float32), conf[kept].astype(np.float32), cls[kept], anchor,
                     above_conf)


def in_graph_top_k(pred: np.ndarray, conf_thres: float, classes: tuple[int, ...] | None, max_det: int
                   ) -> Survivors:
    """An Ultralytics end-to-end export chose its top-k inside the graph: rows (k, 6) of x1, y1, x2, y2,
    score, class. Predict's filter as Ultralytics applies it; which candidate each row was is not in the file."""
    pred = pred.astype(np.float32)
    keep = pred[:, 4] > conf_thres
    if classes is not None:
        keep &= np.isin(pred[:, 5].astype(np.int64), classes)
    kept = np.flatnonzero(keep)
    above_conf = len(kept)
    rows = pred[kept[:max_det]]
    return Survivors(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), np.full(len(rows), -1, dtype=np.int64),
                     above_conf)
