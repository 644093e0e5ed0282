"""Inference backends: the same network run by PyTorch, ONNX Runtime, OpenVINO or TensorRT; which one
runs, the cache of exports, and the runner for each (engine/runners.py, engine/torch_runner.py).

Every backend takes the letterboxed uint8 BGR batch ``(B, H, W, 3)`` our detector prepares and returns
the head's output ``(B, 4 + classes, candidates)`` as NumPy (an end-to-end head's decoded one-to-one output:
engine/heads.py), so letterbox, NMS or top-k, class scores and the grid view are shared and identical
whatever runs the network, and a run on an export never imports torch. Each runner turns the pixels into the
network's input its own cheapest way: OpenVINO inside the compiled graph, PyTorch on the device after
an uint8 upload, ONNX Runtime in one OpenCV pass. Exports are made by Ultralytics' own exporters, once
per model, input shape, precision and batch, into the user's cache folder (never beside a weights file the app
did not create); a second start finds them, and a damaged cache entry is rebuilt.

``auto`` picks TensorRT on an NVIDIA GPU when it is installed, else CUDA PyTorch; on a CPU, the faster
of OpenVINO and ONNX Runtime for this model on this machine and for the way the run feeds it (a file's
frames through the streams, a live view's one at a time), timed once and remembered in the cache (which
wins depends on the CPU: OpenVINO on some, ONNX Runtime on others); PyTorch when neither is installed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from yolo_app.engine.device import CPU, Device
from yolo_app.engine.runners import MAX_STREAMS, OnnxRunner, OpenVinoRunner, Runner
from yolo_app.errors import RuntimeFailure, UserError
from yolo_app.settings import BACKENDS

log = logging.getLogger(__name__)

CACHE_ENV = "YOLO_APP_CACHE"
PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}
EXPORT_FORMATS = {"onnx": "onnx", "openvino": "openvino", "tensorrt": "engine"}
META_FILE = "export.json"
MODEL_FILE = "model.json"  # what the .pt says of itself: names, strides, head (ExportCache.checkpoint_facts)
EXPORT_FORMS = ("", "e2e", "e2e-topk")  # see ExportCache
CPU_BACKENDS = ("openvino", "onnx")  # the order only matters when one of them is not installed
AUTO_TIMING_RUNS = 10



def cache_dir() -> Path:
    """``$YOLO_APP_CACHE``, else the platform's user cache folder (XDG on Linux)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if platform.system() == "Windows":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif platform.system() == "Darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "yolo_app"


def installed(backend: str) -> bool:
    package = PACKAGES.get(backend)
    return package is None or importlib.util.find_spec(package) is not None


def resolve_backend(choice: str, device: Device, weights: Path | None = None,
                    input_hw: tuple[int, int] = (640, 640), bf16: bool | None = None, end2end: bool = False,
                    streamed: bool = False) -> str:
    """The backend that will run: ``auto`` decided for this machine (and, on a CPU, for ``weights`` at the
    network input ``input_hw`` the run will use, with OpenVINO timed in the precision it would run: ``bf16``,
    None for its default; ``streamed``: the run hands over a file's frames in batches, which run through the
    CPU's streams, rather than a live view's one at a time); a named one checked, with one clear error when it
    cannot run here."""
    choice = (choice or "auto").lower()
    if choice not in BACKENDS:
        raise UserError(f"unknown backend '{choice}'; choose one of {', '.join(BACKENDS)}")
    if choice == "auto":
        if device.type == "cuda":
            return "tensorrt" if installed("tensorrt") else "torch"
        if device.type == "cpu":
            available = [b for b in CPU_BACKENDS if installed(b)]
            if len(available) > 1 and weights is not None:
                return fastest_cpu_backend(weights, input_hw, available, bf16, end2end, streamed)
            return available[0] if available else "torch"
        return "torch"  # Apple MPS: PyTorch itself
    if not installed(choice):
        raise UserError(f"backend {choice} needs the '{PACKAGES[choice]}' package (pip install {PACKAGES[choice]})")
    if choice == "tensorrt" and device.type != "cuda":
        raise UserError("backend tensorrt needs an NVIDIA GPU (--device cuda); use openvino or onnx on a CPU")
    if choice in ("onnx", "openvino") and device.type != "cpu":
        raise UserError(f"backend {choice} runs on the CPU here; use --device cpu, or torch/tensorrt on a GPU")
    return choice


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ExportCache:
    """Exported models under ``root/<model hash>/<backend>-<h>x<w>-b<batch>-<precision>[-<form>]/``. The form of
    an end-to-end head: ``e2e``, up to its decoded one-to-one output, as we run it (engine/heads.py);
    ``e2e-topk``, Ultralytics' own end-to-end export with the top-k in the graph (the benchmark's equal terms)."""

    _lock = threading.Lock()  # one export at a time per process (two views may ask for the same one)

    def __init__(self, weights: Path, root: Path | None = None) -> None:
        self.weights = weights
        self.root = root or cache_dir() / "exports"
        self._hash: str | None = None

    @property
    def model_hash(self) -> str:
        if self._hash is None:
            self._hash = file_hash(self.weights)[:16]
        return self._hash

    def entry(self, backend: str, input_hw: tuple[int, int], batch: int, half: bool, form: str = "",
              precision: str = "") -> Path:
        precision = precision or ("fp16" if half else "fp32")
        suffix = f"-{form}" if form else ""
        return self.root / self.model_hash / f"{backend}-{input_hw[0]}x{input_hw[1]}-b{batch}-{precision}{suffix}"

    def get(self, backend: str, input_hw: tuple[int, int], batch: int = 1, half: bool = False,
            rebuild: bool = False, form: str = "") -> Path:
        """The exported model file (or folder), exporting it first when it is missing or damaged. ``form``:
        "" (the network as it is), ``e2e`` or ``e2e-topk`` (see the class)."""
        if form not in EXPORT_FORMS:
            raise ValueError(f"unknown export form {form!r}")
        entry = self.entry(backend, input_hw, batch, half, form)
        return self._cached(entry, rebuild, lambda work: self._export(work, backend, input_hw, batch, half, form))

    def _export(self, work: Path, backend: str, input_hw: tuple[int, int], batch: int, half: bool,
                form: str) -> tuple[Path, dict]:
        from ultralytics import YOLO

        from yolo_app.engine.heads import one_to_one_exports

        log.warning("exporting %s to %s for %dx%d input (first time only)", self.weights.name, backend, *input_hw)
        source = work / self.weights.name  # Ultralytics writes exports beside the .pt: beside this copy
        shutil.copy2(self.weights, source)
        try:
            with quiet_ultralytics(), one_to_one_exports() if form == "e2e" else nullcontext():
                options = {"half": True} if half else {}  # half=False is a deprecated spelling there
                if form:
                    options["nms"] = False  # Ultralytics' switch for the one-to-one (NMS-free) branch
                out = YOLO(str(source)).export(format=EXPORT_FORMATS[backend], imgsz=input_hw, batch=batch,
                                               dynamic=False, verbose=False, **options)
        except Exception as exc:  # noqa: BLE001 - exporters raise anything; one line for the user
            raise _failure(f"export of {self.weights.name} to {backend}", exc) from None
        source.unlink()
        return Path(out), {"backend": backend, "input_hw": list(input_hw), "batch": batch, "half": half, "form": form}

    def get_int8(self, input_hw: tuple[int, int], calibration: Path, form: str = "", rebuild: bool = False) -> Path:
        """The OpenVINO network quantized to INT8 on frames of ``calibration`` (engine/quantize.py), made
        from the ONNX export and cached per footage like the other exports."""
        from yolo_app.engine.quantize import RECIPE, calibration_frames, calibration_id, quantize_to_int8

        onnx = self.get("onnx", input_hw, form=form)
        precision = f"int8{RECIPE}-{calibration_id(calibration)}"

        def quantize(work: Path) -> tuple[Path, dict]:
            log.warning("quantizing %s to INT8 on frames of %s for %dx%d input (first time only)",
                        self.weights.name, calibration.name, *input_hw)
            frames = calibration_frames(calibration, input_hw)
            try:
                out = quantize_to_int8(onnx, frames, work)
            except Exception as exc:  # noqa: BLE001 - NNCF and OpenVINO raise anything; one line
                raise _failure(f"INT8 quantization of {self.weights.name}", exc) from None
            return out, {"backend": "openvino", "input_hw": list(input_hw), "batch": 1, "precision": "int8",
                         "calibration": str(calibration), "calibration_frames": len(frames), "form": form}

        return self._cached(self.entry("openvino", input_hw, 1, False, form, precision=precision), rebuild, quantize)

    def checkpoint_facts(self) -> dict | None:
        """What an earlier start read in this checkpoint (``remember_facts``), when that start read it with
        the safe loader: a start whose network runs from a cached export then needs no unpickling (about
        0.5 s for yolov8n). Keyed by the file's hash: any change to the file is a new checkpoint."""
        facts = self._stored_facts()
        return facts if isinstance(facts, dict) and facts.get("read_safely") is True else None

    def _stored_facts(self) -> object:
        try:
            return json.loads((self.root / self.model_hash / MODEL_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def remember_facts(self, facts: dict) -> None:
        """Keep ``facts`` (JSON) beside the exports, written whole or not at all; a read-only cache only
        costs the next start its unpickling."""
        if self._stored_facts() == json.loads(json.dumps(facts)):
            return  # known already
        folder = self.root / self.model_hash
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".part", delete=False, encoding="utf-8") as fh:
                json.dump(facts, fh)
            os.replace(fh.name, folder / MODEL_FILE)
        except OSError as exc:
            log.info("could not remember what %s holds: %s", self.weights.name, exc)

    def _cached(self, entry: Path, rebuild: bool, make: Callable[[Path], tuple[Path, dict]]) -> Path:
        """``entry``'s model when it is whole (and not to be rebuilt), else ``make(work)`` builds it in a
        work folder beside it, which then becomes the entry. One build at a time per process."""
        with self._lock:
            found = None if rebuild else _verified(entry)
            if found is not None:
                return found
            shutil.rmtree(entry, ignore_errors=True)
            entry.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".export-", dir=entry.parent))
            try:
                exported, about = make(work)
                return self._commit(work, entry, exported, **about)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def _commit(self, work: Path, entry: Path, exported: Path, **about: object) -> Path:
        """Record every file's hash beside the export in ``work``, then move it into place as ``entry``:
        whole or not at all (a killed export leaves only a .export-* folder)."""
        files = [exported] if exported.is_file() else sorted(p for p in exported.rglob("*") if p.is_file())
        if exported.suffix == ".xml":  # OpenVINO IR: the weights beside the graph
            files.append(exported.with_suffix(".bin"))
        meta = {"model": str(self.weights), "model_sha256_16": self.model_hash, **about,
                "path": str(exported.relative_to(work)),
                "files": {str(p.relative_to(work)): file_hash(p) for p in files}}
        (work / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(work, entry)
        return entry / meta["path"]


@contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """The exporters' progress lines and the tracer's warnings are not for our users."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        LOGGER.setLevel(level)


def _failure(what: str, exc: Exception) -> RuntimeFailure:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return RuntimeFailure(f"{what} failed: {type(exc).__name__}: {first}")


def _verified(entry: Path) -> Path | None:
    """The entry's model when every file is there with the hash it was written with, else None."""
    try:
        meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
        for name, digest in meta["files"].items():
            if file_hash(entry / name) != digest:
                log.warning("cached export %s is damaged; exporting again", entry.name)
                return None
        return entry / meta["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def export_backend(backend: str) -> str:
    """The export a backend runs from our cache: OpenVINO reads the ONNX export as it is (the same network
    and speed as its own IR here), so ONNX Runtime, OpenVINO and auto's timing share one file per size."""
    return "onnx" if backend == "openvino" else backend


@functools.cache
def openvino_native_bf16() -> bool:
    """Whether OpenVINO runs bfloat16 by default on this CPU (AMX or AVX512-BF16): its own choice, and
    what Ultralytics' OpenVINO runs get."""
    try:
        import openvino as ov

        return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT") == ov.Type.bf16
    except Exception:  # noqa: BLE001 - not installed, or no CPU plugin: f32 (or another backend) runs
        return False


def fastest_cpu_backend(weights: Path, input_hw: tuple[int, int], candidates: list[str], bf16: bool | None = None,
                        end2end: bool = False, streamed: bool = False) -> str:
    """Time each candidate at the run's network input and remember the winners for this model and size, so
    only the first start pays for it (a few seconds). Each is timed both ways a run feeds it, since the
    ranking can differ: one frame at a time on every core (a live view) and frames through its streams (a
    file; ``streamed``). Every CPU backend runs the one ONNX export (OpenVINO reads it as it is), and the run
    then uses that same file: a first start exports once."""
    cache = ExportCache(weights)
    bf16 = openvino_native_bf16() if bf16 is None else bf16
    record = cache.root / cache.model_hash / f"auto-cpu-{input_hw[0]}x{input_hw[1]}{'-bf16' if bf16 else ''}.json"
    way = "streams" if streamed else "single"
    try:
        choice = json.loads(record.read_text(encoding="utf-8"))["fastest"][way]
        if choice in candidates:
            return choice
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or one from before streams were timed
        pass
    log.warning("timing %s on this CPU for %s (first time only)", " and ".join(candidates), weights.name)
    sample = np.zeros((1, *input_hw, 3), np.uint8)
    timings: dict[str, dict[str, float]] = {"single": {}, "streams": {}}  # ms a frame
    exported = cache.get(export_backend("openvino"), input_hw, form="e2e" if end2end else "")
    for backend in candidates:
        run = make_runner(backend, exported, CPU, False, bf16)  # OpenVINO's and ONNX Runtime's runners both stream
        timings["single"][backend] = _ms_a_frame(lambda frames: [run(frame) for frame in frames], sample)
        try:
            timings["streams"][backend] = _ms_a_frame(lambda frames: list(run.stream(frames)), sample)
        finally:
            run.stop_streams()
    fastest = {key: min(ms, key=ms.__getitem__) for key, ms in timings.items()}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"fastest": fastest, "ms": timings}), encoding="utf-8")
    return fastest[way]


def _ms_a_frame(run_all: Callable[[list[np.ndarray]], object], sample: np.ndarray) -> float:
    """Milliseconds a frame over ``AUTO_TIMING_RUNS`` frames, after a warm-up (first calls allocate and tune;
    the first pass through the streams makes them, and runs a frame on each of up to ``MAX_STREAMS``)."""
    run_all([sample] * 2 * MAX_STREAMS)
    start = time.perf_counter()
    run_all([sample] * AUTO_TIMING_RUNS)
    return (time.perf_counter() - start) / AUTO_TIMING_RUNS * 1e3


def make_runner(backend: str, exported: Path, device: Device, half: bool, bf16: bool = False) -> Runner:
    if backend == "onnx":
        return OnnxRunner(exported)
    if backend == "openvino":
        return OpenVinoRunner(exported, bf16, compiled_cache=cache_dir() / "openvino")
    from yolo_app.engine.torch_runner import tensorrt_runner  # torch only where it runs

    return tensorrt_runner(exported, device, half)
