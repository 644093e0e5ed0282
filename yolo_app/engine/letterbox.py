"""Ultralytics' letterbox: the arithmetic (what input size a frame becomes, which the model loader also
needs before it picks a backend) and the one-pass resize into a padded frame."""

from __future__ import annotations

import cv2
import numpy as np

from yolo_app.engine.types import Letterbox

PAD_VALUE = 114  # Ultralytics' letterbox grey


def letterbox_geometry(height: int, width: int, imgsz: int | tuple[int, int], stride: int, minimal_padding: bool
                       ) -> Letterbox:
    """Ultralytics' LetterBox arithmetic: scale to fit ``imgsz`` (a side, or (height, width)), pad (to a
    stride multiple when minimal, else to the whole size)."""
    target_h, target_w = imgsz if isinstance(imgsz, tuple) else (imgsz, imgsz)
    r = min(target_h / height, target_w / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = target_w - new_w, target_h - new_h
    if minimal_padding:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    return Letterbox(new_w, new_h, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1))


def apply_letterbox(image: np.ndarray, box: Letterbox) -> np.ndarray:
    """Resize straight into a fresh padded frame: one pass instead of resize + copyMakeBorder (1 ms less
    a frame here). Pixel-identical to Ultralytics' LetterBox (tested)."""
    out = np.empty((box.top + box.new_h + box.bottom, box.left + box.new_w + box.right, *image.shape[2:]), np.uint8)
    bottom, right = box.top + box.new_h, box.left + box.new_w
    out[:box.top], out[bottom:], out[:, :box.left], out[:, right:] = PAD_VALUE, PAD_VALUE, PAD_VALUE, PAD_VALUE
    inner = out[box.top:bottom, box.left:right]
    if image.shape[:2] == inner.shape[:2]:
        inner[...] = image
    else:
        resized = cv2.resize(image, (box.new_w, box.new_h), dst=inner, interpolation=cv2.INTER_LINEAR)
        if not np.shares_memory(resized, out):  # OpenCV allocated its own output after all
            inner[...] = resized
    return out
