"""The one way from settings to a ready detector: every front end (annotate, its Ray workers, the GUI's
views and "Annotate videos…" dialog, the monitor, bench, the zoo's timings) loads models through here.

Order matters for the user: the classifier's weights are checked before the detector loads (a missing
file must not wait behind an export that can take a minute), class names are matched to the model's own
before anything runs, and the CPU thread plan is set for what will actually run on the CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from yolo_app.settings import AnnotateSettings, ClassifySettings, DetectionOptions, GridOverlay, ModelSettings

if TYPE_CHECKING:
    from yolo_app.annotate import AnnotateOptions
    from yolo_app.engine.inference import Detector
    from yolo_app.engine.models import LoadedModel
    from yolo_app.zoo.classifier import ClassifierStage


@dataclass(frozen=True)
class ReadyDetector:
    """A loaded detector with its thresholds and class filter set, and the second stage beside it."""

    detector: Detector
    classifier: ClassifierStage | None = None


def load_classifier(classify: ClassifySettings | None, device: str = "auto") -> ClassifierStage | None:
    """The second stage on ``device`` (the detector's), or None when there is none."""
    if classify is None:
        return None
    from yolo_app.zoo.classifier import ClassifierStage, load_classifier as load

    return ClassifierStage(load(classify.spec, device), list(classify.classes) or None)


def follows_file(model: ModelSettings) -> ModelSettings:
    """For a front end whose backend is a standing preference (the GUI's picker): an exported file
    (ONNX, OpenVINO, TensorRT) runs on its own backend instead of contradicting it. On the command line
    a contradiction is the user's mistake and is reported."""
    from yolo_app.engine.exported import exported_format
    from yolo_app.engine.models import resolve_weights

    if model.backend != "auto" and exported_format(resolve_weights(model.weights)) is not None:
        return dataclasses.replace(model, backend="auto")
    return model


def build_detector(model: ModelSettings, detection: DetectionOptions = DetectionOptions(), *,
                   classify: ClassifySettings | None = None, grid: GridOverlay | None = None,
                   check_names: Callable[[dict[int, str]], None] | None = None,
                   loaded: LoadedModel | None = None, torch_stage: bool = False,
                   source_hw: tuple[int, int] | None = None, streamed: bool = False) -> ReadyDetector:
    """Load ``model`` and set it up: thresholds, class filter (names or ids, checked against the model),
    an optional grid view and second stage, and the CPU threads. Failures are one-line UserErrors.
    ``check_names``: more class names to check (a monitor config's); ``loaded``: that model, already
    loaded (a monitor restarted with edited zones keeps its model); ``torch_stage``: a second stage the
    caller runs itself (the GUI's, loaded apart) also wants torch's threads; ``source_hw``: the frames'
    (height, width) when known, and ``streamed`` (a file's frames in batches, through the CPU's streams), so
    ``auto`` picks the backend fastest at the input size the run will use, fed the way it will be."""
    from yolo_app.engine.exported import exported_format
    from yolo_app.engine.inference import DetectionSettings, Detector
    from yolo_app.engine.models import configure_cpu_threads, load_model, resolve_weights

    classifier = load_classifier(classify, str(loaded.device) if loaded is not None else model.device)

    def settings_for(names: LoadedModel) -> DetectionSettings:
        """The model's DetectionSettings; every class name the user gave checked against its names."""
        if check_names is not None:
            check_names(names.names)
        if classifier is not None:
            classifier.check_classes(names.names)
        return DetectionSettings(
            conf=detection.conf, iou=detection.iou, imgsz=detection.imgsz, max_det=detection.max_det,
            classes=names.class_ids(list(detection.classes)) if detection.classes else None,
            grid=grid is not None, grid_class=names.class_ids([grid.class_name])[0] if grid and grid.class_name
            else None, grid_stride=grid.stride if grid else None)

    if loaded is None:
        names_given = detection.classes or (grid and grid.class_name) or (classify and classify.classes) or check_names
        if names_given and model.backend != "torch" and exported_format(resolve_weights(model.weights)) is None:
            # Picking a backend (auto times them) and exporting take minutes the first time: a typo in a
            # class name is caught first, on the checkpoint itself.
            settings_for(load_model(model.weights, "cpu", backend="torch", trust=model.trust, nms=model.nms))
        loaded = load_model(model.weights, model.device, backend=model.backend, precision=model.precision,
                            trust=model.trust, imgsz=detection.imgsz, source_hw=source_hw,
                            calibration=model.calibration, streamed=streamed, nms=model.nms)
    settings = settings_for(loaded)
    configure_cpu_threads(loaded, torch_networks=classifier is not None or torch_stage)
    return ReadyDetector(Detector(loaded, settings), classifier)


def build_annotate(settings: AnnotateSettings, source_hw: tuple[int, int] | None = None
                   ) -> tuple[Detector, AnnotateOptions]:
    """The detector and run options of an annotate run: the CLI's, the GUI dialog's and each Ray
    worker's, so all three run the very same thing. ``source_hw``: the first source's frame size."""
    from yolo_app.annotate import AnnotateOptions
    from yolo_app.engine.inference import file_batch
    from yolo_app.engine.types import ChannelPolicy

    ready = build_detector(settings.model, settings.detection, classify=settings.classify, grid=settings.grid,
                           source_hw=source_hw, streamed=settings.batch != 1)
    detector = ready.detector
    options = AnnotateOptions(
        out_dir=Path(settings.out_dir), video=settings.video, max_frames=settings.max_frames, codec=settings.codec,
        batch=settings.batch or file_batch(detector.model), track=settings.track, resume=settings.resume,
        top_k=settings.top_k, classify=ready.classifier, cpu_report=settings.cpu_report,
        policy=ChannelPolicy(settings.frame_policy) if settings.frame_policy else None)
    return detector, options
