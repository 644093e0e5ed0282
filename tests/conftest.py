"""Shared fixtures: real footage from ../shared, the real YOLOv8n checkpoint, short clips cut from them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

# Before anything imports Ultralytics: never install or download behind our back, no Qt display.
os.environ["YOLO_OFFLINE"] = "true"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_VERBOSE"] = "false"
os.environ["QT_QPA_PLATFORM"] = "offscreen"

from dataclasses import dataclass  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_WEIGHTS = SHARED / "weights"
PERSON_VIDEO = SHARED / "videos" / "one-by-one-person-detection.mp4"
BOTTLE_VIDEO = SHARED / "videos" / "bottle-detection.mp4"
os.environ["YOLO_APP_WEIGHTS"] = str(SHARED_WEIGHTS)
# Backend exports go to one cache for the whole run (made once, reused by every test), never ~/.cache.
os.environ.setdefault("YOLO_APP_CACHE", str(Path(os.environ.get("TMPDIR", "/tmp")) / f"yolo_app-tests-{os.getpid()}"))


def make_clip(src: Path, dst: Path, frames: int, *, start: int = 0, faststart: bool = True, turned: int = 0,
              times: list[float] | None = None) -> Path:
    """Re-encode ``frames`` frames of ``src`` from frame ``start`` (same size and rate) as H.264 MP4;
    ``turned``: the clockwise quarter turn a player shows them with, in the container as phones write it;
    ``times``: each frame's time in seconds instead of the source's even rate (as a phone records in dim light)."""
    with av.open(str(src)) as inp:
        s_in = inp.streams.video[0]
        options = {"movflags": "+faststart"} if faststart else {}
        container = {".mkv": "matroska", ".ts": "mpegts"}.get(dst.suffix, "mp4")
        with av.open(str(dst), "w", format=container, options=options) as out:
            s_out = out.add_stream("libx264", rate=s_in.average_rate)
            s_out.width, s_out.height, s_out.pix_fmt = s_in.width, s_in.height, "yuv420p"
            if turned:
                s_out.set_display_rotation(-turned)  # FFmpeg's angle is counter-clockwise
            if times is not None:
                s_out.codec_context.time_base = Fraction(1, 90000)
                s_out.options = {"bf": "0"}
            for i, frame in enumerate(inp.decode(s_in)):
                if i < start:
                    continue
                if i == start + frames:
                    break
                image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
                image.pts = i - start
                if times is not None:
                    image.pts, image.time_base = round(times[i - start] * 90000), Fraction(1, 90000)
                out.mux(s_out.encode(image))
            out.mux(s_out.encode(None))
    return dst


def read_video(path: Path) -> tuple[list, Fraction, tuple[int, int]]:
    """All frames (BGR), the average rate and (width, height) of a video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        return frames, stream.average_rate, (stream.width, stream.height)


def frame_lines(path: Path) -> list[dict]:
    """The per-frame lines of a detections JSONL (without its header line)."""
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    return [line for line in lines if "record" not in line]


def ctrl_c_default() -> None:
    """Popen preexec_fn: Ctrl-C (SIGINT) reaches the child as a KeyboardInterrupt even when the test run
    was started in the background, where shells make children ignore SIGINT (and Python keeps that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(predicate, timeout: float, what: str):
    """``predicate()``'s first truthy value, polled; an AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def require(available: bool, why: str) -> None:
    """For a facility of the machine, not of the project, that a user's machine may lack too (user namespaces,
    which containers and Ubuntu's AppArmor refuse): without it the case is skipped, saying why; in CI (``CI`` set,
    as .ci/run sets it) it fails instead, since CI must run every case. What the project installs (packages,
    servers) is never skipped: its tests fail and name it."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must provide it")
    pytest.skip(why)


@dataclass(frozen=True)
class Predicted:
    """One frame's boxes from Ultralytics' predict, as arrays: corners, scores, classes."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    @classmethod
    def of(cls, result) -> Predicted:
        boxes = result.boxes
        return cls(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy())


def machine_identity() -> dict:
    """What Ultralytics' numbers depend on besides the inputs: its and torch's versions and the CPU (its kernels
    differ by instruction set)."""
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
        cpu += " " + hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12]
    except (OSError, StopIteration):
        pass
    return {"ultralytics": metadata.version("ultralytics"), "torch": metadata.version("torch"), "cpu": cpu,
            "cores": os.cpu_count()}


# What the suite computes once per machine and reuses from any checkout: Ultralytics' reference boxes, the trained
# models. The user's cache folder, as the app's own exports (never the read-only ../shared).
TEST_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yolo_app-tests"


def ultralytics_reference(name: str, inputs: dict, compute) -> list[Predicted]:
    """Ultralytics' predictions for a whole stretch of footage, computed once per machine (``compute()``) and
    kept in the user's cache folder under a key of ``inputs`` (the weights' hash, the frames, the options) and
    ``machine_identity()``: the same inputs on the same machine give the same numbers, so a second run of the
    suite here checks ours against them without paying for Ultralytics again."""
    key = hashlib.sha256(json.dumps({**inputs, **machine_identity()}, sort_keys=True).encode()).hexdigest()[:16]
    path = TEST_CACHE / "ultralytics-reference" / f"{name}-{key}.npz"
    try:
        with np.load(path) as stored:
            ends = stored["ends"]
            starts = np.concatenate([[0], ends[:-1]])
            return [Predicted(stored["xyxy"][a:b], stored["conf"][a:b], stored["cls"][a:b])
                    for a, b in zip(starts, ends)]
    except (OSError, KeyError, ValueError):
        pass
    made = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.npz")
    np.savez(part, ends=np.cumsum([len(p.conf) for p in made]),
             xyxy=np.concatenate([p.xyxy for p in made]).reshape(-1, 4),
             conf=np.concatenate([p.conf for p in made]), cls=np.concatenate([p.cls for p in made]))
    os.replace(part, path)
    return made


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # The CLI writes UTF-8 (names like "…" in `models`); read it as such, whatever locale a library in this
    # test process may have switched to (a clean-clone CI run here decoded it as ASCII).
    return subprocess.run([sys.executable, "-m", "yolo_app", *args], capture_output=True, encoding="utf-8",
                          timeout=timeout, cwd=cwd)


@pytest.fixture(scope="session")
def weights() -> Path:
    path = SHARED_WEIGHTS / "yolov8n.pt"
    assert path.is_file(), f"the shared checkpoint is missing: {path}"
    return path


@pytest.fixture(scope="session")
def model(weights):
    from yolo_app.engine.models import load_model

    return load_model(str(weights), "cpu")


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Short real clips: 'person' (40 frames, 10 fps, 768x432, a person walks in), 'bottle' (30 frames,
    29.83 fps, 640x360)."""
    root = tmp_path_factory.mktemp("clips")
    return {
        "person": make_clip(PERSON_VIDEO, root / "person.mp4", 40, start=50),
        "bottle": make_clip(BOTTLE_VIDEO, root / "bottle.mp4", 30),
    }


@pytest.fixture(scope="session")
def ultralytics_yolo(weights):
    from ultralytics import YOLO

    return YOLO(str(weights))


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(os.environ["YOLO_APP_CACHE"], ignore_errors=True)


@pytest.fixture
def isolated_qt_settings(tmp_path):
    """The GUI's remembered settings (recent files, last folder) live in the test's folder, not the user's."""
    from PyQt6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def pytest_collection_modifyitems(config, items):
    """A case that may build the trained models (the first to ask for them) has the build's own limit on top of
    the suite's per-case time-out, which would otherwise cut a build short on a slow machine."""
    from trained_models import BUILD_TIMEOUT

    limit = float(config.getoption("timeout", None) or config.getini("timeout") or 0)
    if not limit:  # no time-out at all
        return
    for item in items:
        if "trained_models_info" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(limit + BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def trained_models_info() -> dict:
    """The manifest of small checkpoints trained for the Ultralytics families no weights exist for offline
    (see tests/trained_models.py): "models" {"yolov9t", "yolov10n", "yolo11n", "yolo12n", "yolo26n": Path to the
    trainer's last.pt}, "data" (the dataset's data.yaml), "names", "recipe" (imgsz…), "timings". Built once per
    machine, in a subprocess (about 3 min on 2 idle cores), into $YOLO_APP_TEST_MODELS or the user's cache folder
    (TEST_CACHE/trained-models), under a key of the Ultralytics and torch versions, the recipe and the shared
    inputs: every later run here, from any checkout, reuses it."""
    from trained_models import ensure_trained_models

    return ensure_trained_models(Path(os.environ.get("YOLO_APP_TEST_MODELS") or TEST_CACHE / "trained-models"))


@pytest.fixture(scope="session")
def trained_models(trained_models_info) -> dict[str, Path]:
    """{"yolov9t", "yolov10n", "yolo11n", "yolo12n", "yolo26n": Path}: trained checkpoints (Ultralytics' own last.pt) of
    80-class COCO-named models that find person and bottle in the shared videos with realistic, varied scores
    (both heads of the end-to-end yolo26n and yolov10n). Use them at their training size,
    trained_models_info["recipe"]["imgsz"] (160; what YOLO(path).predict defaults to)."""
    return dict(trained_models_info["models"])


@pytest.fixture
def open_window(qtbot, clips, weights, tmp_path, isolated_qt_settings):
    """Opens the main window on the person clip (``GuiOptions`` keywords on top), shown and past its first
    frame, writing into the test's folder (its remembered settings too); closed after the test."""
    from yolo_app.gui.main_window import GuiOptions, MainWindow

    opened = []

    def open_(wait_ms: int = 60000, **options):
        win = MainWindow(GuiOptions(**{"source": str(clips["person"]), "weights": str(weights), **options}))
        win.output_dir = tmp_path / "out"
        qtbot.addWidget(win)
        opened.append(win)
        win.show()
        qtbot.waitUntil(lambda: 0 in win.last_shown, timeout=wait_ms)
        return win

    yield open_
    for win in opened:
        win.close()
