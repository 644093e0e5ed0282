"""Where a network runs: the CPU, a CUDA GPU or Apple's MPS, chosen without importing torch where no GPU
can exist. torch takes about a second to import; a run on an exported CPU backend never needs it, and
``auto`` on a machine without NVIDIA's driver or Apple silicon is the CPU whatever torch would say."""

from __future__ import annotations

import ctypes
import functools
import platform
from dataclasses import dataclass

from yolo_app.errors import UserError


@dataclass(frozen=True)
class Device:
    type: str  # cpu, cuda or mps
    index: int | None = None  # the CUDA GPU's number

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = Device("cpu")


@functools.cache
def _nvidia_driver() -> bool:
    """Whether NVIDIA's driver library loads: torch's CUDA needs it, so without it torch sees no GPU."""
    try:
        ctypes.CDLL("nvcuda.dll" if platform.system() == "Windows" else "libcuda.so.1")
    except OSError:
        return False
    return True


def cuda_count() -> int:
    """The CUDA GPUs torch can use here (torch imported only where NVIDIA's driver is installed)."""
    if not _nvidia_driver():
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def mps_available() -> bool:
    if platform.system() != "Darwin":
        return False
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def available_devices() -> list[str]:
    """The device choices that exist on this machine."""
    return ["auto", "cpu"] + [f"cuda:{i}" for i in range(cuda_count())] + (["mps"] if mps_available() else [])


def select_device(spec: str | Device = "auto") -> Device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU. Also: cpu, cuda, cuda:N, N, mps."""
    if isinstance(spec, Device):
        return spec
    key = (spec or "auto").strip().lower()
    if key == "auto":
        if cuda_count():
            return Device("cuda", 0)
        return Device("mps") if mps_available() else CPU
    if key == "cpu":
        return CPU
    if key == "mps":
        if not mps_available():
            raise UserError("device mps requested but Apple MPS is not available on this machine")
        return Device("mps")
    index = key.removeprefix("cuda").removeprefix(":") if key.startswith("cuda") else key
    if key in ("cuda", "gpu"):
        index = "0"
    if not index.isdigit():
        raise UserError(f"unknown device '{spec}'; use auto, cpu, cuda, cuda:N, N or mps")
    count = cuda_count()
    if not count:
        raise UserError(f"device '{spec}' requested but torch sees no CUDA GPU here; use --device cpu or auto")
    if int(index) >= count:
        raise UserError(f"device '{spec}' requested but only {count} CUDA GPU(s) exist")
    return Device("cuda", int(index))
