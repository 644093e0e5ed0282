"""What the dataset exports keep, checked once where the user gives it."""

from __future__ import annotations

from dataclasses import dataclass

from yolo_app.errors import UserError


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
