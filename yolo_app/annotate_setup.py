"""The detector and options of an annotate run, from its command-line arguments.

Used by ``yolo-app annotate`` in its own process and by each Ray worker (``yolo_app.distributed``), so
that both run the very same settings; it lives below both so that neither imports the other."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yolo_app.annotate import AnnotateOptions
    from yolo_app.engine.inference import Detector
    from yolo_app.zoo.classifier import ClassifierStage


def classifier_stage(args: argparse.Namespace) -> ClassifierStage | None:
    """The --classify second stage on the detector's device, or None."""
    if not args.classify:
        return None
    from yolo_app.zoo.classifier import build_stage

    return build_stage(args.classify, args.classify_classes, args.device)


def build_annotate(args: argparse.Namespace) -> tuple[Detector, AnnotateOptions]:
    # The engine (and torch) load here, when work starts, not when the CLI parses its options.
    from yolo_app.annotate import AnnotateOptions
    from yolo_app.engine.inference import DetectionSettings, Detector, file_batch
    from yolo_app.engine.models import load_model
    from yolo_app.engine.types import FramePolicy

    settings = DetectionSettings(conf=args.conf, iou=args.iou, imgsz=args.imgsz, max_det=args.max_det)
    stage = classifier_stage(args)  # before the detector: its backend export can take a minute
    model = load_model(args.weights, args.device, backend=args.backend, precision=args.precision,
                       trust=getattr(args, "trust_weights", False))  # a Ray worker's setup may predate it
    batch = args.batch or file_batch(model)
    if args.classes:
        wanted = [c for c in args.classes.split(",") if c.strip()]
        settings = dataclasses.replace(settings, classes=model.class_ids(wanted))
    if args.grid_overlay:
        grid_class = model.class_ids([args.grid_class])[0] if args.grid_class else None
        settings = dataclasses.replace(settings, grid=True, grid_class=grid_class,
                                       grid_stride=None if args.grid_overlay == "all" else int(args.grid_overlay))
    if stage is not None:
        stage.check_classes(model.names)
    options = AnnotateOptions(out_dir=args.out, video=not args.no_video, max_frames=args.max_frames,
                              codec=args.codec, batch=batch, track=args.track, resume=args.resume,
                              top_k=args.top_k, classify=stage,
                              policy=FramePolicy(args.frame_policy) if args.frame_policy else None)
    return Detector(model, settings), options
