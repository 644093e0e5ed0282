"""``yolo-app bench`` / ``make bench``: Ultralytics' predict vs our annotate on one video, each timed
as a whole process (import, model load, warm-up and every frame), so the ratio is what a user waits.

Measured: Ultralytics ``predict(stream=True)`` with the ``.pt`` and its defaults; on equal terms, for
every backend this machine runs, Ultralytics' predict and our ``annotate --no-video`` with the same
model file, backend and precision (the same cached export, the runtime's default precision, every
core); the chosen backend's bare inference rate in the batch annotate uses (the ceiling); and
``annotate`` with the video. Efficiency is annotate's own frame rate (the one it prints, start-up
excluded) over that ceiling; the whole-process figure is reported beside it."""

from __future__ import annotations

import dataclasses
import json
import os
from importlib.util import find_spec
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import torch

from yolo_app import __version__
from yolo_app.bench.inprocess import bare_fps, head_speed, live_latency
from yolo_app.bench.int8 import measure_int8
from yolo_app.bench.processes import ProcessRun, annotate_cmd, timed_process, ultralytics_cmd
from yolo_app.bench.report import Measured, figures, table
from yolo_app.engine.backends import ExportCache, export_backend, installed
from yolo_app.engine.cpu import cpu_description
from yolo_app.engine.heads import HEAD_END2END, HEAD_NMS
from yolo_app.engine.letterbox import letterbox_geometry
from yolo_app.engine.inference import Detector
from yolo_app.engine.models import LoadedModel
from yolo_app.engine.sources import DEMO_PATH
from yolo_app.errors import EXIT_OK, UserError
from yolo_app.factory import build_detector
from yolo_app.settings import DEFAULT_IMGSZ, DetectionOptions, ModelSettings

SHARED_VIDEO = Path(__file__).resolve().parents[3] / "shared" / "videos" / "one-by-one-person-detection.mp4"


@dataclass(frozen=True)
class BenchSettings:
    """One `yolo-app bench`: the video (None: the shared person video, else the demo), the model as annotate
    would run it, and how often each measurement repeats."""

    source: str | None = None
    model: ModelSettings = ModelSettings()
    imgsz: int = DEFAULT_IMGSZ
    runs: int = 1
    json: bool = False


def run_bench(settings: BenchSettings) -> int:
    if settings.source == "demo":
        source = DEMO_PATH
    else:
        source = Path(settings.source) if settings.source else (SHARED_VIDEO if SHARED_VIDEO.is_file() else DEMO_PATH)
    if not source.is_file():
        raise UserError(f"no such video: {source}")
    frames, (height, width) = _probe(source)
    imgsz, model_settings = settings.imgsz, settings.model
    if model_settings.precision == "int8" and not model_settings.calibration:  # as annotate: the video itself
        model_settings = dataclasses.replace(model_settings, calibration=str(source))
    # Picked as annotate picks it (a file: through the streams), so the bare figure is the run's own backend.
    detector = build_detector(model_settings, DetectionOptions(imgsz=imgsz), source_hw=(height, width),
                              streamed=True).detector
    model = detector.model
    input_hw = model.input_hw or letterbox_geometry(height, width, imgsz, model.stride, True).input_hw
    bare = bare_fps(detector, input_hw)
    live = live_latency(detector, source)
    heads = _heads(detector, model_settings, source, imgsz, (height, width))
    with tempfile.TemporaryDirectory(prefix="yolo_app_bench_") as tmp:
        steps, pairs = _steps(settings, model, source, input_hw, Path(tmp))
        measured: dict[str, list[ProcessRun]] = {key: [] for key in steps}
        for _ in range(settings.runs):  # interleaved: a slow minute on a shared machine hits every step
            for key, cmd in steps.items():
                measured[key].append(timed_process(cmd))
    int8 = {}
    if model.device.type == "cpu" and not model.exported and installed("openvino") and find_spec("nncf"):
        int8 = measure_int8(str(model.path), source, imgsz, settings.model.trust).as_dict()
    report = {
        "video": str(source), "weights": model.path.name, "imgsz": imgsz, "input_hw": list(input_hw),
        "backend": model.backend, "runs": settings.runs,
        **figures(Measured(frames, measured, pairs, bare, live)), **int8, **({"heads": heads} if heads else {}),
        "device": _device_name(model),
        "precision": model.precision,
        "cpu": cpu_description(),
        "versions": _versions(),
    }
    print(json.dumps(report) if settings.json else table(report))
    return EXIT_OK


def _steps(settings: BenchSettings, model: LoadedModel, source: Path, input_hw: tuple[int, int], out: Path
           ) -> tuple[dict[str, list[str]], dict[str, tuple[str, str]]]:
    """Every whole-process step by name, and the equal-terms pairs (backend -> (ours, Ultralytics')). Each
    export is made before anything is timed; the chosen backend's pair is also the main table's row."""
    weights, imgsz, device = model.path, settings.imgsz, settings.model.device
    cuda = model.device.type == "cuda"
    hw = ",".join(map(str, input_hw))

    nms = settings.model.nms  # both programs run the same head

    def ours(backend: str, precision: str, video: bool) -> list[str]:
        return annotate_cmd(source, weights, out, imgsz=imgsz, backend=backend, device=device, precision=precision,
                            trust=settings.model.trust, video=video, nms=nms)

    def theirs(backend: str) -> list[str]:
        """Ultralytics on the same model file in ``backend``: the .pt on torch, else our cached export of
        it (for an end-to-end head, Ultralytics' own export with the top-k in the graph, which its predict
        reads), and we warm our own export so no timed run makes one."""
        if model.exported:
            return ultralytics_cmd(weights, source, hw, str(model.device.index or 0) if cuda else "cpu")
        if backend == "torch":
            return ultralytics_cmd(weights, source, str(imgsz), "0" if cuda else "cpu", every_core=True, half=cuda,
                                   nms=nms)
        form = "e2e" if model.head == HEAD_END2END else ""
        half = cuda and backend == "tensorrt"
        cache = ExportCache(weights)
        cache.get(export_backend(backend), input_hw, half=half, form=form)
        exported = cache.get(backend, input_hw, half=half, form="e2e-topk" if form else "")
        return ultralytics_cmd(exported, source, hw, "0" if cuda else "cpu")

    steps = {
        "ultralytics": ultralytics_cmd(weights, source, str(imgsz), nms=nms),  # as its users run it: its defaults
        "ultralytics_same_backend": theirs(model.backend),
        "annotate": ours(model.backend, settings.model.precision, video=True),
        "annotate_novideo": ours(model.backend, settings.model.precision, video=False),
    }
    pairs = {}
    for backend in _equal_terms_backends(model):
        if backend == model.backend:
            their = "ultralytics_same_backend"
            our = "annotate_novideo" if settings.model.precision == "auto" else f"annotate_novideo_{backend}"
        else:
            their, our = f"ultralytics_{backend}", f"annotate_novideo_{backend}"
            steps[their] = theirs(backend)
        steps.setdefault(our, ours(backend, "auto", video=False))  # the runtime's default, as Ultralytics runs
        pairs[backend] = (our, their)
    return steps, pairs


def _heads(detector: Detector, model_settings: ModelSettings, source: Path, imgsz: int, source_hw: tuple[int, int]
           ) -> dict[str, dict[str, float]]:
    """For a model with both heads, each head's speed on the run's backend, on the same frames: the NMS-free
    head's reason to exist (nothing to suppress after the network); {} for a model with one."""
    model = detector.model
    if len(model.heads) < 2:
        return {}
    speeds = {}
    for head, nms in ((HEAD_NMS, "true"), (HEAD_END2END, "false")):
        other = detector if head == model.head else build_detector(
            dataclasses.replace(model_settings, backend=model.backend, nms=nms), DetectionOptions(imgsz=imgsz),
            source_hw=source_hw).detector
        speeds[head] = head_speed(other, source)
    return speeds


def _equal_terms_backends(model: LoadedModel) -> list[str]:
    """The backends both programs run here: a user's export only on its own."""
    if model.exported:
        return [model.backend]
    if model.device.type == "cuda":
        return ["torch", *(["tensorrt"] if installed("tensorrt") else [])]
    if model.device.type == "cpu":
        return ["torch", *(b for b in ("onnx", "openvino") if installed(b))]
    return ["torch"]


def _probe(video: Path) -> tuple[int, tuple[int, int]]:
    """Frame count and (height, width)."""
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for _ in container.decode(stream))
            return count, (stream.height, stream.width)
    except (av.FFmpegError, IndexError):
        raise UserError(f"{video}: not a readable video") from None


def _device_name(model: LoadedModel) -> str:
    if model.device.type == "cuda":
        return torch.cuda.get_device_name(model.device.index or 0)
    return f"cpu ({os.cpu_count()} cores)"


def _versions() -> dict[str, str]:
    import supervision
    import ultralytics

    return {"yolo_app": __version__, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
            "supervision": supervision.__version__, "python": platform.python_version()}
