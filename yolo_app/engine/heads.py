"""Detection heads: which kind a network has, and how its output becomes the boxes Ultralytics keeps.

Two kinds run here, and both give the same ``Survivors`` (boxes in network-input pixels, with the
candidate each came from, so every kept box keeps its full class-score vector):

- ``nms``: the one-to-many head of YOLOv8/v9/11/12. Its output is ``(4 + nc, candidates)``, boxes as
  centre/size; many candidates cover one object, so non-maximum suppression picks one.
- ``end2end``: the one-to-one head of YOLOv10 and YOLO26, trained so that one candidate answers per
  object. Ultralytics decodes its boxes as corners and keeps the top-k by score, without NMS. We run
  the network up to that decoded output (``(4 + nc, candidates)``, corners) on every backend and do the
  top-k here, with Ultralytics' arithmetic, so we know which candidate each box is.

The kind is the head's own: a head that carries a one-to-one branch (``end2end: True`` in its config)
is end-to-end, whatever the file is called.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from ultralytics.utils.nms import TorchNMS
from ultralytics.utils.ops import xywh2xyxy

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
    """The kept boxes in network-input pixels (xyxy), with the candidate (anchor) index each box came
    from (-1 where the network chose them itself and does not say)."""

    xyxy: torch.Tensor
    conf: torch.Tensor
    cls: torch.Tensor
    anchor: torch.Tensor
    above_conf: int  # candidates whose score passed conf (and the class filter)


def detect_head(network: torch.nn.Module) -> torch.nn.Module:
    """The network's last layer when it is a plain YOLO detection head (v8/v9/v10/11/12/26), else a
    one-line refusal naming what the file is and what is supported."""
    from ultralytics.nn.modules.head import Detect, v10Detect

    from yolo_app.errors import UserError

    layers = getattr(network, "model", None)
    head = layers[-1] if isinstance(layers, torch.nn.Sequential) else None
    if type(head) not in (Detect, v10Detect):
        kind = {"RTDETRDecoder": "an RT-DETR model", "WorldDetect": "a YOLO-World model"}.get(
            type(head).__name__, f"a '{type(head).__name__ if head is not None else type(network).__name__}' network")
        if type(head).__name__.startswith("YOLOE"):
            kind = "a YOLOE model"
        raise UserError(f"is {kind}; yolo-app runs {SUPPORTED}")
    return head


def head_kind(head: torch.nn.Module) -> str:
    """``end2end`` when the head carries a one-to-one branch (or fusion left only that branch)."""
    return HEAD_END2END if getattr(head, "one2one_cv2", None) is not None else HEAD_NMS


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


def non_max_suppression(pred: torch.Tensor, conf_thres: float, iou_thres: float,
                        classes: tuple[int, ...] | None, max_det: int, best: torch.Tensor | None = None
                        ) -> Survivors:
    """Best-class NMS on one image's head output (4 + nc, candidates), the same arithmetic as
    Ultralytics' ``non_max_suppression`` so the surviving boxes are identical. ``best``: each
    candidate's best class score, when the caller has it already."""
    best = pred[4:].amax(0) if best is None else best
    anchor = torch.nonzero(best > conf_thres).squeeze(1)
    x = pred[:, anchor].transpose(0, 1)
    boxes = xywh2xyxy(x[:, :4]).float()  # fp16 heads: offsets below overflow half precision
    conf, cls = x[:, 4:].max(1)
    conf = conf.float()
    keep = conf > conf_thres
    if classes is not None:
        keep &= torch.isin(cls, torch.tensor(classes, device=cls.device))
    boxes, conf, cls, anchor = boxes[keep], conf[keep], cls[keep], anchor[keep]
    above_conf = int(conf.shape[0])
    if above_conf > MAX_NMS:
        order = conf.argsort(descending=True)[:MAX_NMS]
        boxes, conf, cls, anchor = boxes[order], conf[order], cls[order], anchor[order]
    kept = _nms(boxes + cls[:, None].float() * MAX_WH, conf, iou_thres)[:max_det]
    return Survivors(boxes[kept], conf[kept], cls[kept], anchor[kept], above_conf)


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision's kernel when something has imported it already (the GPU path, a classifier);
    else Ultralytics' torch version of the same algorithm, as Ultralytics itself does: importing
    torchvision costs 1.5 s of every start."""
    if boxes.device.type == "cuda" or "torchvision" in sys.modules:
        import torchvision

        return torchvision.ops.nms(boxes, scores, iou_threshold)
    return TorchNMS.nms(boxes, scores, iou_threshold)


def one_to_one_top_k(pred: torch.Tensor, conf_thres: float, classes: tuple[int, ...] | None, max_det: int,
                     best: torch.Tensor | None = None) -> Survivors:
    """Ultralytics' end-to-end selection on one image's decoded one-to-one output (4 + nc, candidates),
    boxes as corners: the head's top-k candidates by best class score (k = max(max_det, 300), as predict
    sets it), then the top-k of those candidates' (candidate, class) scores, so one candidate may give a
    box per class; then predict's filter: score above conf, class in ``classes``, the first ``max_det``."""
    scores = pred[4:].transpose(0, 1)  # (candidates, nc)
    nc = scores.shape[1]
    best = scores.amax(1) if best is None else best
    k = min(max(max_det, E2E_MIN_TOP_K), scores.shape[0])
    first = best.topk(k).indices
    conf, flat = scores[first].flatten().topk(k)
    cls, anchor = flat % nc, first[flat // nc]
    keep = conf > conf_thres
    if classes is not None:
        keep &= torch.isin(cls, torch.tensor(classes, device=cls.device))
    kept = keep.nonzero().view(-1)
    above_conf = int(kept.shape[0])
    kept = kept[:max_det]
    anchor = anchor[kept]
    return Survivors(pred[:4, anchor].transpose(0, 1).float(), conf[kept].float(), cls[kept], anchor, above_conf)


def in_graph_top_k(pred: torch.Tensor, conf_thres: float, classes: tuple[int, ...] | None, max_det: int
                   ) -> Survivors:
    """An Ultralytics end-to-end export chose its top-k inside the graph: rows (k, 6) of x1, y1, x2, y2,
    score, class. Predict's filter as Ultralytics applies it; which candidate each row was is not in the file."""
    pred = pred.float()
    keep = pred[:, 4] > conf_thres
    if classes is not None:
        keep &= torch.isin(pred[:, 5].long(), torch.tensor(classes, device=pred.device))
    kept = keep.nonzero().view(-1)
    above_conf = int(kept.shape[0])
    rows = pred[kept[:max_det]]
    return Survivors(rows[:, :4], rows[:, 4], rows[:, 5].long(), torch.full((rows.shape[0],), -1, dtype=torch.long),
                     above_conf)
