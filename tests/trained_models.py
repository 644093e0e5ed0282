"""Small trained checkpoints of the Ultralytics families no weights exist for offline: yolov9t, yolov10n, yolo11n,
yolo12n, yolo26n.

Parity tests need real trained weights of each family (a random-init model scores everything near 0, so it
tells nothing about thresholds, NMS or the end-to-end head). This module makes them from the shared footage:

1. a YOLO dataset from every ``RECIPE["frame_step"]``-th frame of both shared videos, pseudo-labelled (person,
   bottle) by the real COCO checkpoint through the app's own ``annotate --export yolo``;
2. each family trained from Ultralytics' own config (``YOLO("yolo11n.yaml")``, random init, nothing transferred)
   with Ultralytics' trainer, on the CPU, one process per family, all at once (each single-threaded: Ultralytics'
   CPU default on a 2-core machine, and the fastest: two OpenMP threads per trainer were several times slower
   under load).

Three settings make a few epochs (about 80 optimizer steps) enough: ``nbs=batch`` (Ultralytics' default
nominal batch of 64 accumulates four batches of 16 per step: a quarter of the updates), no warmup (Ultralytics
warms up for at least 100 steps) and, at the end of the last epoch, the EMA model's BatchNorm statistics
recomputed over the training set ("precise BN") before the trainer validates and saves it. After so few, large
steps the running statistics lag far behind the weights: without it the model scores 0.9 in train mode and 1e-4
in eval mode. With 5 epochs instead of 7, some seeds leave yolov10n without bottles.

The checkpoints are the trainer's own ``weights/last.pt`` (fp16, EMA, ``train_args`` with ``imgsz``). Use them at
``RECIPE["imgsz"]`` (what ``YOLO(path).predict`` defaults to, from the checkpoint): at other sizes they guess.

``python tests/trained_models.py OUTDIR`` builds everything into OUTDIR by hand; the ``trained_models`` fixture
(conftest.py) builds once into a cache keyed by everything that changes the result, atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VIDEOS = {  # prefix of the frame files -> video
    "p": SHARED / "videos" / "one-by-one-person-detection.mp4",
    "b": SHARED / "videos" / "bottle-detection.mp4",
}
TEACHER = SHARED / "weights" / "yolov8n.pt"
FAMILIES = ("yolo11n", "yolo26n", "yolov10n", "yolov9t", "yolo12n")

# Everything that changes the weights; part of the cache key (bump "version" when the code's behaviour changes).
RECIPE = {
    "version": 1,
    "frame_step": 12,  # 1394 + 1189 frames -> 217 images (174 train, 43 val)
    "classes": "person,bottle",
    "min_conf": 0.4,  # pseudo-labels kept
    "annotate_imgsz": 640,
    "imgsz": 160,
    "epochs": 7,
    "batch": 16,
    "nbs": 16,  # one optimizer step per batch
    "optimizer": "AdamW",
    "lr0": 0.002,
    "warmup_epochs": 0,  # Ultralytics warms up for at least 100 steps: longer than the whole run
    "seed": 0,
    # The frames to learn are near-copies of the ones the tests use: augmentation only slows learning down.
    "augment": {"mosaic": 0.0, "scale": 0.0, "translate": 0.0, "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0,
                "fliplr": 0.5},
    "precise_bn": True,
}
MANIFEST = "manifest.json"  # written last: a folder with it is complete
ANNOTATE_TIMEOUT = 300  # the teacher labelling 217 frames: under a minute on 2 cores
TRAIN_TIMEOUT = 900  # the trainings side by side: 2-4 minutes on 2 cores
BUILD_TIMEOUT = ANNOTATE_TIMEOUT + TRAIN_TIMEOUT + 60  # the whole build, in its own process


def cache_key() -> str:
    """Hash of what the weights depend on: Ultralytics and torch versions, the recipe, the inputs' sizes."""
    facts = {
        "ultralytics": metadata.version("ultralytics"),
        "torch": metadata.version("torch"),
        "recipe": RECIPE,
        "families": FAMILIES,
        "inputs": {p.name: p.stat().st_size for p in (*VIDEOS.values(), TEACHER)},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete build in ``folder`` with absolute paths, or None when incomplete."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        models = {family: folder / rel for family, rel in manifest["models"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if set(models) != set(FAMILIES) or not all(path.is_file() for path in models.values()):
        return None
    return {**manifest, "models": models, "data": folder / manifest["data"]}


def ensure_trained_models(root: Path, timeout: float = BUILD_TIMEOUT) -> dict:
    """The manifest of ``root/<cache_key>``, built first when missing: into ``<key>.part-<pid>`` by a
    subprocess (``python tests/trained_models.py``), then renamed, so a killed build never looks complete.
    Concurrent sessions (pytest-xdist workers, two runs) wait for one build instead of each making their own.
    Raises RuntimeError with the build's output tail when it fails."""
    import fcntl

    key = cache_key()
    final = root / key
    if (manifest := read_manifest(final)) is not None:
        return manifest
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when this process dies
        if (manifest := read_manifest(final)) is not None:  # built by whoever held the lock
            return manifest
        return _build_locked(root, key, final, timeout)


def _build_locked(root: Path, key: str, final: Path, timeout: float) -> dict:
    shutil.rmtree(final, ignore_errors=True)  # incomplete (a hand-made or damaged copy): rebuild
    for stale in root.glob(f"{key}.part-*"):  # left by killed builds (a live one would hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    part = root / f"{key}.part-{os.getpid()}"
    shutil.rmtree(part, ignore_errors=True)
    env = {**os.environ, "YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(part)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # timeout, Ctrl-C: the build and its trainers go too
        _kill_group(proc)
        shutil.rmtree(part, ignore_errors=True)
        raise
    if proc.returncode != 0 or read_manifest(part) is None:
        shutil.rmtree(part, ignore_errors=True)
        raise RuntimeError(f"building the trained test models failed (exit {proc.returncode}):\n"
                           f"--- stdout (tail) ---\n{out[-3000:]}\n--- stderr (tail) ---\n{err[-6000:]}")
    os.replace(part, final)
    manifest = read_manifest(final)
    assert manifest is not None, f"incomplete trained-models cache: {final}"
    return manifest


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# --- the build (runs in its own process) ---


def build(out: Path) -> dict:
    """Dataset, then every family's training at once, then ``MANIFEST``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    timings = {}
    start = time.perf_counter()
    data = make_dataset(out)
    timings["dataset_s"] = round(time.perf_counter() - start, 1)

    env = {**os.environ, "YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false", "YOLO_VERBOSE": "false",
           "YOLO_CONFIG_DIR": str(out / ".ultralytics")}  # never the user's settings (wandb, mlflow…)
    procs, logs, started = {}, {}, {}
    try:
        for family in FAMILIES:
            logs[family] = open(out / "logs" / f"{family}.log", "w")
            started[family] = time.perf_counter()
            procs[family] = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--train", family, str(data), str(out / "runs")],
                cwd=REPO, env=env, stdout=logs[family], stderr=subprocess.STDOUT)
        deadline = time.perf_counter() + TRAIN_TIMEOUT
        running = dict(procs)
        while running:  # the first failure stops the others
            for family, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[family]
                timings[f"{family}_s"] = round(time.perf_counter() - started[family], 1)
                if proc.returncode != 0:
                    logs[family].close()
                    tail = (out / "logs" / f"{family}.log").read_text(errors="replace")[-5000:]
                    raise RuntimeError(f"training {family} failed (exit {proc.returncode}):\n{tail}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"training {', '.join(running)} took over {TRAIN_TIMEOUT} s")
            time.sleep(0.2)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs.values():
            log.close()
    timings["total_s"] = round(time.perf_counter() - start, 1)
    shutil.rmtree(out / ".ultralytics", ignore_errors=True)

    # The export's data.yaml names its folder by absolute path; without "path" Ultralytics uses the yaml's own
    # folder, so the dataset still trains after the cache folder is renamed.
    import yaml

    meta = yaml.safe_load(data.read_text())
    meta.pop("path", None)
    data.write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    manifest = {
        "key": cache_key(),
        "recipe": RECIPE,
        "models": {f: str(Path("runs") / f / "weights" / "last.pt") for f in FAMILIES},
        "data": str(data.relative_to(out)),
        "names": meta["names"],
        "timings": timings,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def make_dataset(out: Path) -> Path:
    """Every ``frame_step``-th frame of both videos (lossless PNGs, ``p00012.png``, ``b00024.png``), labelled
    by ``yolo-app annotate --export yolo``; returns the export's data.yaml."""
    import av
    import cv2

    frames = out / "frames"
    shutil.rmtree(frames, ignore_errors=True)
    frames.mkdir()
    for prefix, video in VIDEOS.items():
        with av.open(str(video)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % RECIPE["frame_step"] == 0:
                    cv2.imwrite(str(frames / f"{prefix}{i:05d}.png"), frame.to_ndarray(format="bgr24"),
                                [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cmd = [sys.executable, "-m", "yolo_app", "annotate", str(frames), "--weights", str(TEACHER), "--no-video",
           "--export", "yolo", "--classes", RECIPE["classes"], "--min-conf", str(RECIPE["min_conf"]),
           "--imgsz", str(RECIPE["annotate_imgsz"]), "--backend", "torch", "--device", "cpu",
           "--out", str(out / "dataset")]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=ANNOTATE_TIMEOUT)
    (out / "logs" / "annotate.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {result.returncode}):\n{result.stderr[-5000:]}")
    shutil.rmtree(frames)
    data = out / "dataset" / "frames_yolo" / "data.yaml"
    if not data.is_file():
        raise RuntimeError(f"annotate wrote no {data}:\n{result.stdout[-3000:]}")
    return data


def train(family: str, data: Path, project: Path) -> None:
    """Train ``family`` from Ultralytics' config with ``RECIPE``; the trainer writes
    ``project/family/weights/{last,best}.pt``."""
    import torch
    import ultralytics.data.utils
    from ultralytics import YOLO

    # check_det_dataset looks for Arial.ttf and asks the network for it (requests.head, ignoring YOLO_OFFLINE);
    # plots=False never draws text.
    ultralytics.data.utils.check_font = lambda *args, **kwargs: None

    def precise_bn(trainer) -> None:
        """Last epoch: recompute the EMA model's BatchNorm statistics over the training set (train-mode forward
        passes, cumulative averages), before the trainer validates and saves it."""
        if trainer.epoch + 1 < trainer.epochs:
            return
        model = trainer.ema.ema
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for batch in trainer.train_loader:
                model(trainer.preprocess_batch(batch)["img"])
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()

    model = YOLO(f"{family}.yaml")
    if RECIPE["precise_bn"]:
        model.add_callback("on_train_epoch_end", precise_bn)
    model.train(data=str(data), imgsz=RECIPE["imgsz"], epochs=RECIPE["epochs"], batch=RECIPE["batch"],
                nbs=RECIPE["nbs"], optimizer=RECIPE["optimizer"], lr0=RECIPE["lr0"],
                warmup_epochs=RECIPE["warmup_epochs"], seed=RECIPE["seed"], deterministic=True,
                **RECIPE["augment"], device="cpu", workers=0, cache="ram", amp=False, plots=False, val=False,
                project=str(project), name=family, exist_ok=True, verbose=False)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--train"]:
        family, data, project = argv[1:4]
        train(family, Path(data), Path(project))
        return 0
    if len(argv) != 1:
        print(f"usage: python {Path(__file__).name} OUTDIR", file=sys.stderr)
        return 2
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    manifest = build(Path(argv[0]).resolve())
    print(json.dumps({"models": manifest["models"], "timings": manifest["timings"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
