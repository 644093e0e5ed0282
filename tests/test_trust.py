"""Safe loading by default: a checkpoint is a pickle, so a .pt that references code outside Ultralytics'
checkpoint format is refused unless the user trusts it (--trust-weights, monitor config trust_weights),
and every bad model file is one line and exit code 2. Driven through the command line."""

from __future__ import annotations

import json
import os
import warnings

import cv2
import numpy as np
import pytest
import torch

from conftest import run_cli
from yolo_app.cli import build_parser
from yolo_app.engine.models import UntrustedWeights, load_model
from yolo_app.errors import EXIT_USAGE


class RunsCode:
    """Unpickles as a call of ``os.system``: what a hostile checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile(path, marker):
    """A .pt that creates ``marker`` when it is fully unpickled (and holds no network)."""
    torch.save({"model": RunsCode(marker), "epoch": -1}, path)
    return path


def one_line(proc, *needles):
    """Exit 2, one line on stderr, no traceback, each needle in it; the line."""
    assert proc.returncode == EXIT_USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "frame.jpg"
    cv2.imwrite(str(path), np.full((96, 128, 3), 114, np.uint8))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny YOLO dataset: one class, a filled square per 64 px image."""
    root = tmp_path_factory.mktemp("dataset")
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(2):
            img = np.full((64, 64, 3), 114, np.uint8)
            cv2.rectangle(img, (16, 16), (48, 48), (0, 0, 255), -1)
            cv2.imwrite(str(root / split / "images" / f"{i}.jpg"), img)
            (root / split / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: train/images\nval: val/images\nnames:\n  0: square\n")
    return data


# refused by default, and the flag is honest ---------------------------------------------------------------
@pytest.mark.parametrize("command", ["annotate", "bench", "train"])
def test_a_checkpoint_that_would_run_code_is_refused_before_any_of_it_runs(command, image, clips, dataset,
                                                                           tmp_path):
    marker = tmp_path / "ran"
    evil = hostile(tmp_path / "evil.pt", marker)
    args = {"annotate": ["annotate", str(image), "--out", str(tmp_path / "out")],
            "bench": ["bench", str(clips["bottle"]), "--device", "cpu"],
            "train": ["train", "--data", str(dataset), "--epochs", "1", "--imgsz", "64", "--device", "cpu",
                      "--out", str(tmp_path / "run")]}[command]
    line = one_line(run_cli(*args, "--weights", str(evil)), str(evil), "refused", "--trust-weights",
                    "trust_weights: true")
    assert line.startswith("yolo-app: error: ")
    assert not marker.exists()
    assert not (tmp_path / "run").exists()  # train never started


def test_with_trust_weights_the_file_is_unpickled_but_still_refused_as_no_yolo_model(image, tmp_path):
    marker = tmp_path / "ran"
    evil = hostile(tmp_path / "evil.pt", marker)
    proc = run_cli("annotate", str(image), "--out", str(tmp_path / "out"), "--weights", str(evil), "--trust-weights")
    one_line(proc, str(evil), "not a YOLO model file")
    assert "--trust-weights" not in proc.stderr  # it was trusted: the message says what is wrong instead
    assert marker.exists()  # the flag did what it says: the pickle ran


def test_the_monitor_refuses_unless_its_config_trusts_the_weights(tmp_path):
    marker = tmp_path / "ran"
    evil = hostile(tmp_path / "evil.pt", marker)
    config = {"model": str(evil), "storage": str(tmp_path / "data"), "cameras": [{"name": "a", "source": "demo"}]}
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    one_line(run_cli("monitor", "--config", str(path), "--run-for", "1"), str(evil), "refused",
             "trust_weights: true")
    assert not marker.exists() and not (tmp_path / "data" / "events.db").exists()

    path.write_text(json.dumps({**config, "trust_weights": "yes"}))
    one_line(run_cli("monitor", "--config", str(path), "--run-for", "1"),
             f"{path}: trust_weights: must be true or false, not 'yes'")
    assert not marker.exists()

    path.write_text(json.dumps({**config, "trust_weights": True}))
    one_line(run_cli("monitor", "--config", str(path), "--run-for", "1"), "not a YOLO model file")
    assert marker.exists()


def test_every_command_that_loads_a_detector_offers_trust_weights():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    for name in ("annotate", "gui", "bench", "train", "monitor", "models"):
        text = " ".join(commands[name].format_help().split())
        assert "--trust-weights" in text, name
        assert "only for a file you trust; a pickle can run code" in text, name
    assert not parser.parse_args(["annotate", "x"]).trust_weights
    assert parser.parse_args(["gui", "--trust-weights"]).trust_weights


# what loads without asking --------------------------------------------------------------------------------
@pytest.mark.parametrize("config", ["yolov10n.yaml", "yolo26n.yaml", "yolo11n.yaml", "yolov9t.yaml", "yolo12n.yaml"])
def test_checkpoints_saved_by_ultralytics_load_without_trust(config, tmp_path):
    from ultralytics import YOLO

    path = tmp_path / config.replace(".yaml", ".pt")
    YOLO(config).save(str(path))
    model = load_model(str(path), "cpu", backend="torch")  # trust defaults to False
    assert model.task == "detect" and len(model.names) == 80


def test_the_shared_checkpoint_loads_without_trust_and_a_hostile_one_raises_untrusted(weights, tmp_path):
    assert load_model(str(weights), "cpu", backend="torch").model_id == "yolov8n.pt"
    marker = tmp_path / "ran"
    with pytest.raises(UntrustedWeights):
        load_model(str(hostile(tmp_path / "evil.pt", marker)), "cpu", backend="torch")
    assert not marker.exists()


# bad files: one line each ---------------------------------------------------------------------------------
def test_damaged_files_and_a_folder_are_one_line_each(weights, image, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.pt"
    data = weights.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    folder = tmp_path / "folder"
    folder.mkdir()
    for path, needle in ((garbage, "not a YOLO model file"), (truncated, "not a YOLO model file"),
                         (empty, "not a YOLO model file"), (folder, "is a folder")):
        one_line(run_cli("annotate", str(image), "--out", str(tmp_path / "out"), "--weights", str(path)),
                 str(path), needle)


def test_an_onnx_file_without_ultralytics_metadata_says_what_is_missing(image, tmp_path):
    onnx = tmp_path / "conv.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; the new one needs onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 32, 32), str(onnx), dynamo=False)
    one_line(run_cli("annotate", str(image), "--out", str(tmp_path / "out"), "--weights", str(onnx)),
             str(onnx), "without Ultralytics' metadata", "missing: names")
