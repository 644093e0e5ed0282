"""``yolo-app models --download NAME``: fetch a zoo model's weights where there is a network.

Detectors go to the app's weights/ folder (Ultralytics' release assets), torchvision classifiers to
torch's hub cache, timm ones to the Hugging Face cache: the places ``yolo-app models`` looks. Without
a network (or with YOLO_OFFLINE set) it is one clear error, after at most a few seconds.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from yolo_app.errors import RuntimeFailure, UserError, YoloAppError, describe
from yolo_app.zoo import catalog

HOSTS = {"ultralytics": "github.com", "torchvision": "download.pytorch.org", "timm": "huggingface.co"}


def reachable(host: str, timeout: float = 3.0) -> bool:
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def download(name: str) -> Path:
    entry = catalog.find_entry(name)
    if entry is None:
        known = ", ".join(e.name for e in catalog.detector_entries()) + ", " + ", ".join(
            [*catalog.TORCHVISION_CLASSIFIERS, *catalog.TIMM_CLASSIFIERS])
        raise UserError(f"unknown model '{name}'; the zoo has: {known}")
    if not entry.available:
        raise UserError(f"{entry.name} is unavailable: {entry.reason}")
    present = catalog.locate(entry)
    if present is not None:
        return present
    host = HOSTS[entry.library]
    if not reachable(host):
        where = ", ".join(str(d) for d in catalog.weights_dirs())
        raise UserError(f"cannot download {entry.name}: no network ({host} unreachable or YOLO_OFFLINE set); "
                        f"copy {entry.files[0]} from a machine that has it into one of: {where}")
    try:
        if entry.library == "ultralytics":
            path = _ultralytics_asset(entry.files[0])
        elif entry.library == "torchvision":
            catalog.torchvision_weights(entry.name).get_state_dict(progress=True)
            path = catalog.locate(entry)
        else:
            import timm

            timm.create_model(entry.name, pretrained=True)
            path = catalog.locate(entry)
    except YoloAppError:
        raise
    except Exception as exc:  # noqa: BLE001 - HTTP, hash and disk errors: one line
        raise RuntimeFailure(f"download of {entry.name} failed: {describe(exc)}") from None
    if path is None or not path.is_file():
        raise RuntimeFailure(f"download of {entry.name} finished but its file is not where it should be")
    return path


def _ultralytics_asset(file: str) -> Path:
    """Ultralytics' release asset into the app's weights/ folder. Called directly rather than through
    engine.models, which turns a failure into None: here the user asked for it and should read why."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    from yolo_app.engine import models

    if file not in GITHUB_ASSETS_NAMES:  # an older ultralytics than the zoo's newest family
        import ultralytics

        raise UserError(f"ultralytics {ultralytics.__version__} does not list {file} among its release assets; "
                        "upgrade it (pip install -U ultralytics)")
    models.APP_WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    return Path(attempt_download_asset(str(models.APP_WEIGHTS_DIR / file)))
