"""Find, load and place a detection model.

Weights resolve by path or by name. Search order: the path as given, ``weights/`` (in the current
folder, then the app's own), each folder of ``YOLO_APP_WEIGHTS`` (os.pathsep-separated), then
Ultralytics' own download for its published names. The task and class names come from the model
file, never from its name.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from yolo_app.engine.backends import ExportCache, openvino_native_bf16, quiet_ultralytics, resolve_backend
from yolo_app.engine.device import Device, select_device
from yolo_app.engine.exported import FORMAT_NAMES, exported_format, read_exported
from yolo_app.engine.heads import (HEAD_END2END, HEAD_LABELS, HEAD_NMS, SUPPORTED, choose_head, default_head,
                                   detect_head, heads_of, select_head)
from yolo_app.engine.letterbox import letterbox_geometry
from yolo_app.engine.sources import redact
from yolo_app.errors import RuntimeFailure, UserError
from yolo_app.settings import DEFAULT_IMGSZ, PRECISIONS

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
T = TypeVar("T")

APP_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
WEIGHTS_ENV = "YOLO_APP_WEIGHTS"
MODEL_SUFFIXES = (".pt", ".onnx", ".engine")  # and OpenVINO model folders (exported.py)


@dataclass(frozen=True)
class LoadedModel:
    """A detection network ready to run: fused, in eval mode, on its device (or a user's exported file)."""

    path: Path
    model_id: str  # what the user sees: the file name
    task: str
    names: dict[int, str]
    stride: int  # the largest: inputs are padded to a multiple of it
    strides: tuple[int, ...]  # every detection level's, e.g. (8, 16, 32): the grid sizes of the head
    module: torch.nn.Module | None  # PyTorch's network; None where an export runs it (another backend)
    device: Device
    half: bool
    backend: str = "torch"  # what runs the network: torch, onnx, openvino or tensorrt (see backends)
    bf16: bool = False  # OpenVINO on a CPU in bfloat16 (AMX/AVX512-BF16): ~2x faster, not bit-exact
    head: str = HEAD_NMS  # the head that runs: nms or end2end (engine/heads.py)
    heads: tuple[str, ...] = (HEAD_NMS,)  # the heads the file has (YOLOv10 and YOLO26 checkpoints: both)
    input_hw: tuple[int, int] | None = None  # an exported file's fixed input size; None: any stride multiple
    exported: bool = False  # the file itself is an export (ONNX, OpenVINO, TensorRT) and runs as it is
    top_k_in_graph: bool = False  # an Ultralytics end-to-end export: rows (k, 6), its top-k already done
    calibration: Path | None = None  # INT8 on OpenVINO, quantized on this footage (engine/quantize.py)

    @property
    def precision(self) -> str:
        return "int8" if self.calibration else "fp16" if self.half else "bf16" if self.bf16 else "fp32"

    @property
    def runtime(self) -> str:
        """What runs the network, as users are told: e.g. "openvino bf16, end-to-end head (top-k, no NMS)"."""
        return f"{self.backend} {self.precision}, {HEAD_LABELS[self.head]}"

    def class_ids(self, wanted: list[str]) -> tuple[int, ...]:
        """Map class names or ids to ids; an unknown one is a UserError listing the valid names."""
        by_name = {name.lower(): i for i, name in self.names.items()}
        ids = []
        for item in wanted:
            key = item.strip()
            if key.isdigit() and int(key) in self.names:
                ids.append(int(key))
            elif key.lower() in by_name:
                ids.append(by_name[key.lower()])
            else:
                valid = ", ".join(self.names.values())
                raise UserError(f"unknown class '{key}' for {self.model_id}; valid classes: {valid}")
        return tuple(dict.fromkeys(ids))


def search_dirs() -> list[Path]:
    dirs = [Path.cwd() / "weights", APP_WEIGHTS_DIR]
    dirs += [Path(p).expanduser() for p in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if p.strip()]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def find_weights() -> list[Path]:
    """Every model file on the search path, first occurrence of each name wins (for pickers)."""
    found: dict[str, Path] = {}
    for folder in search_dirs():
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if (path.suffix.lower() in MODEL_SUFFIXES and path.is_file()) or (
                        path.is_dir() and exported_format(path) == "openvino"):
                    found.setdefault(path.name, path)
    return list(found.values())


def resolve_weights(spec: str) -> Path:
    """Return an existing weights file for a path or a name, or raise one clear UserError."""
    given = Path(spec).expanduser()
    if given.is_file() or (given.is_dir() and exported_format(given) is not None):
        return given
    if given.exists():
        raise UserError(f"weights {spec} is a folder, not a model file (an OpenVINO model folder holds a .xml)")
    looked = [given] if given.parent != Path(".") else []
    if given.parent == Path("."):  # a bare name: look through the search path
        for folder in search_dirs():
            candidate = folder / given.name
            looked.append(candidate)
            if candidate.is_file() or (candidate.is_dir() and exported_format(candidate) is not None):
                return candidate
    downloaded = _ultralytics_download(given.name) if given.parent == Path(".") else None
    if downloaded is not None:
        return downloaded
    places = "; ".join(str(p) for p in looked) or str(given)
    hint = f" (set {WEIGHTS_ENV} to a folder of weights, or put the file in {APP_WEIGHTS_DIR})"
    raise UserError(f"weights '{spec}' not found; searched: {places}; download unavailable{hint}")


def _ultralytics_download(name: str) -> Path | None:
    """Fetch a published Ultralytics asset into weights/, or None when offline or not published."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    if name not in GITHUB_ASSETS_NAMES or not _online():
        return None
    APP_WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    target = APP_WEIGHTS_DIR / name
    try:
        path = Path(attempt_download_asset(str(target)))
    except Exception as exc:  # noqa: BLE001 - any download failure is "not available"
        log.warning("download of %s failed: %s", name, exc)
        return None
    return path if path.is_file() else None


def _online(timeout: float = 2.0) -> bool:
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("github.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def configure_cpu_threads(model: LoadedModel, torch_networks: bool = False) -> None:
    """Size torch's thread pool for what it runs on the CPU. A network on PyTorch (the detector, or a
    second-stage classifier: ``torch_networks``) gets every core: Ultralytics' own device selection
    leaves it cores - 1, which halves throughput on a 2-core machine. Beside an exported backend torch
    only does NMS on small tensors: one thread, so its OpenMP workers, which spin between calls, do not
    take cores from the backend's own pool (where nothing has imported torch, it has no pool to size)."""
    runs_network = model.backend == "torch" or torch_networks
    if model.device.type == "cpu" and (runs_network or "torch" in sys.modules):
        import torch

        torch.set_num_threads(max(1, os.cpu_count() or 1) if runs_network else 1)


def on_passing_thread(work: Callable[[], T]) -> T:
    """``work()`` on a thread of its own that ends with it; its result, or its exception, returned here.

    For torch's CPU work outside the inference thread (loading, fusing, timing). The first thread to run
    an OpenMP-parallel op becomes the master of a worker pool that lives as long as it does; with two pools
    alive there are more OpenMP threads than cores on a small CPU, and libgomp then stops spinning at
    barriers: every layer of the network sleeps and wakes its workers. Measured, yolov8n 384x640 on 2
    cores: 57.7 ms a frame with the loading thread's pool alive (50,000 context switches over 100 frames)
    against 40.3 ms when the load ran on a thread that had ended (635)."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="torch-load", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def load_model(spec: str, device: str | Device = "auto", backend: str = "torch",
               precision: str = "auto", trust: bool = False, imgsz: int = DEFAULT_IMGSZ,
               source_hw: tuple[int, int] | None = None, calibration: str | None = None,
               streamed: bool = False, nms: str = "auto") -> LoadedModel:
    """Resolve, load and place a detection model (on a passing thread: ``on_passing_thread``); every
    failure is one clear UserError line.
    ``backend`` (``auto`` included) is checked here; its export is made when the input size is known.
    ``auto`` on a CPU times the backends at the network input the run will use: ``imgsz`` letterboxed
    from the source's (height, width) when the caller knows it (``source_hw``), else square, and fed as the
    run will feed it: a file's batches through the streams (``streamed``), else one frame at a time.
    ``trust``: the user vouches for a checkpoint that needs full unpickling (see ``load_network``).
    ``calibration``: the footage ``int8`` is quantized on. ``nms``: which head runs (settings.NMS_CHOICES;
    auto: the one Ultralytics' predict runs). An exported file (ONNX, OpenVINO, TensorRT) runs on its own
    backend, as it was exported."""
    return on_passing_thread(lambda: _load_model(spec, device, backend, precision, trust, imgsz, source_hw,
                                                 calibration, streamed, nms))


def _load_model(spec: str, device: str | Device, backend: str, precision: str, trust: bool, imgsz: int,
                source_hw: tuple[int, int] | None, calibration: str | None, streamed: bool, nms: str) -> LoadedModel:
    path = resolve_weights(spec)
    if exported_format(path) is not None:
        if precision == "int8":
            raise UserError(f"{path} is an export and runs as it was exported; --precision int8 quantizes a .pt "
                            f"checkpoint")
        return _load_exported(path, device, backend, precision, nms)
    int8 = int8_calibration(calibration, backend, device) if precision == "int8" else None
    if int8 is not None:
        device, backend = "cpu", "openvino"
    half, bf16 = PRECISIONS[precision]
    dev = select_device(device)
    if path.suffix.lower() != ".pt":
        raise UserError(f"{path}: not a model file (expected a PyTorch .pt checkpoint, an ONNX .onnx file, an "
                        f"OpenVINO model folder or .xml, or a TensorRT .engine)")
    cache = ExportCache(path)
    # A CPU run on an exported backend needs only what the checkpoint says about itself, kept from an
    # earlier start; PyTorch needs the network itself.
    facts = cache.checkpoint_facts() if dev.type == "cpu" and backend != "torch" else None
    network = None
    if facts is None or facts.get("ultralytics") != _ultralytics_version():  # its default head is its rule
        network = load_network(path, trust)
        facts = _checkpoint_facts(path, network)
        cache.remember_facts({**facts, "read_safely": not trust})
    use_half = dev.type == "cuda" if half is None else half
    if use_half and dev.type != "cuda":
        raise UserError(f"fp16 needs a CUDA GPU; {dev.type} runs fp32 (use --precision auto or fp32)")
    names = {int(k): str(v) for k, v in facts["names"].items()}
    strides, heads = tuple(facts["strides"]), tuple(facts["heads"])
    head = choose_head(heads, facts["default_head"], nms, path.name)
    stride = max(max(strides), 32)
    input_hw = letterbox_geometry(*source_hw, imgsz, stride, True).input_hw if source_hw else (imgsz, imgsz)
    # After the checks above: never export a file that is no model.
    backend = resolve_backend(backend, dev, path, input_hw, bf16=False if use_half else bf16,
                              end2end=head == HEAD_END2END, streamed=streamed)
    module = None
    if backend == "torch":
        module = _placed(path, network if network is not None else load_network(path, trust), head, dev, use_half)
    if int8 is not None:  # what stays unquantized (the head's decoding) in f32: bf16 there moved boxes
        bf16 = False
    elif bf16 is None:
        bf16 = backend == "openvino" and openvino_native_bf16()
    elif bf16 and backend != "openvino":
        raise UserError(f"bf16 runs on OpenVINO on a CPU (--backend openvino, or auto where it is the fastest); "
                        f"this run uses {backend} on {dev.type}")
    return LoadedModel(path=path, model_id=path.name, task="detect", names=names, stride=stride, strides=strides,
                       module=module, device=dev, half=use_half, backend=backend, bf16=bf16, head=head,
                       heads=heads, calibration=int8)


def _ultralytics_version() -> str:
    return importlib.metadata.version("ultralytics")


def _checkpoint_facts(path: Path, network: torch.nn.Module) -> dict:
    """What a run needs to know of a checkpoint besides its weights: a YOLO detector's class names, the
    strides of its detection levels, the heads it has and the one Ultralytics' predict runs by default (with
    the Ultralytics version that said so); anything else is refused in one line."""
    task = getattr(network, "task", None) or "unknown"
    if task != "detect":
        article = "an" if task[:1] in "aeiou" else "a"
        raise UserError(f"{path} is {article} '{task}' model; yolo-app runs {SUPPORTED}")
    try:
        heads = heads_of(detect_head(network))
    except UserError as exc:
        raise UserError(f"{path} {exc}") from None
    strides = [int(s) for s in network.stride] if hasattr(network, "stride") else [8, 16, 32]
    return {"names": {int(k): str(v) for k, v in dict(network.names).items()}, "strides": strides,
            "heads": list(heads), "default_head": default_head(network), "ultralytics": _ultralytics_version()}


def _placed(path: Path, network: torch.nn.Module, head: str, dev: Device, half: bool) -> torch.nn.Module:
    """The network as PyTorch runs it here: fused, on ``dev``, in eval mode, NHWC where that helps, in half
    precision when asked; running ``head`` (the one-to-one head returning its decoded output: engine/heads.py)."""
    import torch

    select_head(network, head)
    try:
        module = network.fuse(verbose=False) if hasattr(network, "fuse") else network
        module = module.to(str(dev)).eval()
        if _channels_last_helps(dev):
            module = module.to(memory_format=torch.channels_last)
        module = module.half() if half else module.float()
        for p in module.parameters():
            p.requires_grad_(False)
    except RuntimeError as exc:
        raise RuntimeFailure(f"cannot place {path.name} on {dev}: {str(exc).splitlines()[0]}") from None
    return module


def int8_calibration(calibration: str | None, backend: str, device: str | Device) -> Path:
    """INT8 runs on OpenVINO on the CPU, quantized on footage the user has: each missing piece is one line
    (front ends call it before opening sources, so a live camera is not waited for first)."""
    if backend not in ("auto", "openvino"):
        raise UserError(f"int8 runs on OpenVINO (--backend openvino, or auto); this run asks for {backend}")
    if str(device) not in ("auto", "cpu"):
        raise UserError(f"int8 runs on OpenVINO on the CPU (--device cpu, or auto); this run asks for {device}")
    for package in ("openvino", "nncf"):
        if importlib.util.find_spec(package) is None:
            raise UserError(f"--precision int8 needs the '{package}' package (pip install {package})")
    if not calibration:
        raise UserError("--precision int8 is quantized on your own footage: give a video or a folder of images "
                        "with --calibrate (annotate and the window use the video they play)")
    if "://" in calibration:
        raise UserError(f"{redact(calibration)}: INT8 calibrates on recorded footage (a video file or a folder of "
                        f"images), not a stream: record some first")
    path = Path(calibration).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such video or folder to calibrate INT8 on")
    from yolo_app.engine.quantize import check_footage

    check_footage(path)
    return path


def _load_exported(path: Path, device: str | Device, backend: str, precision: str, nms: str) -> LoadedModel:
    """An Ultralytics export given as weights: it runs on its own backend, at its own input size, with the one
    head it was exported with."""
    meta = read_exported(path)
    exported_head = HEAD_END2END if meta.end2end else HEAD_NMS
    head = choose_head((exported_head,), exported_head, nms, path.name)
    if backend not in ("auto", meta.backend):
        raise UserError(f"{path} is {FORMAT_NAMES[meta.backend]}: it runs on --backend {meta.backend} (or auto), "
                        f"not {backend}")
    # ONNX Runtime and OpenVINO run on the CPU here; "auto" must not pick a GPU they cannot use.
    if meta.backend != "tensorrt" and device in ("auto", None):
        device = "cpu"
    dev = select_device(device)
    resolve_backend(meta.backend, dev)  # installed, and on a device it runs on
    half, bf16 = PRECISIONS[precision]
    if bf16 and meta.backend != "openvino" or half and meta.backend != "tensorrt":
        raise UserError(f"--precision {precision} does not apply to {FORMAT_NAMES[meta.backend]}: it runs in the "
                        f"precision it was exported in (use --precision auto)")
    if meta.backend == "openvino" and bf16 is None:
        bf16 = openvino_native_bf16()
    return LoadedModel(path=meta.path, model_id=path.name, task=meta.task, names=meta.names,
                       stride=max(meta.stride, 32), strides=_level_strides(meta.stride), module=None, device=dev,
                       half=meta.backend == "tensorrt" and meta.half, backend=meta.backend, bf16=bool(bf16),
                       head=head, heads=(head,), input_hw=meta.input_hw, exported=True,
                       top_k_in_graph=meta.end2end)


def _level_strides(stride: int) -> tuple[int, ...]:
    """Exports record only the largest stride; YOLO detectors have three levels, each half the next."""
    return (stride // 4, stride // 2, stride)


def _channels_last_helps(device: Device) -> bool:
    """NHWC weights let oneDNN (x86 CPUs) skip layout reorders: about 25 % faster on a CPU here. Not on CUDA:
    measured on an H100, no faster for yolov8n (4.1 vs 4.5 ms fp16, 4.3 both fp32) and its other cuDNN
    kernels moved boxes (IoU 0.99 vs Ultralytics) where NCHW gives Ultralytics' numbers exactly."""
    import torch

    return (device.type == "cpu" and platform.machine() in ("x86_64", "AMD64")
            and torch.backends.mkldnn.is_available())


class UntrustedWeights(UserError):
    """A checkpoint that references code outside the allow-list: refused unless the user trusts the file."""


def load_network(path: Path, trust: bool = False) -> torch.nn.Module:
    """The Ultralytics network in a ``.pt`` checkpoint, in fp32, not fused. A checkpoint is a pickle, so by
    default it is read with ``torch.load(weights_only=True)`` against Ultralytics' allow-list of its own
    classes: a file that references anything else is refused before any of it runs. ``trust`` reads it
    as Ultralytics does by default (full unpickling), for a file the user vouches for."""
    import torch
    from ultralytics.nn.tasks import guess_model_task, torch_safe_load

    try:  # said plainly, not as a checkpoint reader's exception
        path.open("rb").close()
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    if not trust:  # what is not a checkpoint archive at all (garbage, truncated) says so, not "untrusted"
        try:
            torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as exc:  # noqa: BLE001 - zip and pickle readers raise many kinds for a bad file
            raise UserError(f"{path}: not a YOLO model file (not a readable PyTorch checkpoint: "
                            f"{_first_line(exc)})") from None
    try:
        with quiet_ultralytics():
            checkpoint, _ = torch_safe_load(str(path), safe_only=not trust)
    except Exception as exc:  # noqa: BLE001 - torch/pickle/ultralytics raise many kinds for a bad file
        text = str(exc)
        if not trust and "outside the supported Ultralytics checkpoint format" in text:
            raise UntrustedWeights(
                f"{path}: refused: the file references code outside the Ultralytics checkpoint format, and a "
                f"checkpoint is a pickle that could run it; if you trust this file, load it with "
                f"--trust-weights (monitor config: trust_weights: true)") from None
        raise UserError(f"{path}: not a YOLO model file ({_first_line(exc)})") from None
    network = (checkpoint.get("ema") or checkpoint.get("model")) if isinstance(checkpoint, dict) else None
    if not isinstance(network, torch.nn.Module):
        raise UserError(f"{path}: not a YOLO model file (no Ultralytics network inside)")
    network = network.float().eval()
    if not getattr(network, "task", None):
        network.task = guess_model_task(network)
    return network


def _first_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception, without Ultralytics' emoji banner, at most 160 characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.replace("ERROR ❌️ ", "").strip()[:160]
    return f"{type(exc).__name__}: {text}"
