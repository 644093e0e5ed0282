"""Weights search path, loading checks and device selection."""

import subprocess
import sys

import pytest
import torch

from conftest import SHARED_WEIGHTS
from yolo_app.engine import models
from yolo_app.engine.device import CPU, select_device
from yolo_app.engine.models import load_model, resolve_weights
from yolo_app.errors import UserError


def test_a_path_as_given_wins(weights):
    assert resolve_weights(str(weights)) == weights


def test_a_bare_name_is_found_through_YOLO_APP_WEIGHTS(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_APP_WEIGHTS", f"{tmp_path / 'nowhere'}:{SHARED_WEIGHTS}")
    assert resolve_weights("yolov8n.pt") == SHARED_WEIGHTS / "yolov8n.pt"


def test_weights_in_the_current_folder_come_before_the_environment(monkeypatch, tmp_path, weights):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "yolov8n.pt").symlink_to(weights)
    monkeypatch.chdir(tmp_path)
    assert resolve_weights("yolov8n.pt") == tmp_path / "weights" / "yolov8n.pt"


def test_a_missing_name_fails_fast_offline_and_names_every_place_searched(monkeypatch, tmp_path):
    """Offline (YOLO_OFFLINE, as the suite runs), a published name is not looked for on the network: no
    connection is even tried, so nothing waits for one to time out."""
    import socket

    tried = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: tried.append(args) or socket.socket())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_APP_WEIGHTS", str(SHARED_WEIGHTS))
    with pytest.raises(UserError) as err:
        resolve_weights("yolov8s.pt")
    assert tried == []
    message = str(err.value)
    for place in (tmp_path / "weights", models.APP_WEIGHTS_DIR, SHARED_WEIGHTS):
        assert str(place / "yolov8s.pt") in message
    assert "\n" not in message


def test_a_file_that_is_not_a_model_is_refused_clearly(tmp_path):
    fake = tmp_path / "model.pt"
    fake.write_text("definitely not a checkpoint")
    with pytest.raises(UserError, match="not a YOLO model file"):
        load_model(str(fake), "cpu")


def test_a_classification_model_is_refused_with_its_task(tmp_path):
    from ultralytics import YOLO

    YOLO("yolov8n-cls.yaml").save(str(tmp_path / "classifier.pt"))
    with pytest.raises(UserError, match="'classify' model"):
        load_model(str(tmp_path / "classifier.pt"), "cpu")


def test_task_and_class_names_come_from_the_model_not_its_file_name(tmp_path, weights):
    misleading = tmp_path / "yolov8n-cls.pt"
    misleading.symlink_to(weights)
    model = load_model(str(misleading), "cpu")
    assert model.task == "detect" and len(model.names) == 80 and model.names[0] == "person"
    assert model.stride == 32 and model.model_id == "yolov8n-cls.pt"


def test_class_names_and_ids_map_to_ids_and_an_unknown_name_lists_the_valid_ones(model):
    assert model.class_ids(["person", "Car", "16"]) == (0, 2, 16)
    with pytest.raises(UserError, match="unknown class 'unicorn'.*person, bicycle, car"):
        model.class_ids(["unicorn"])


def test_device_auto_and_cpu_and_bad_names():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type in (expected, "mps")
    assert select_device("cpu") == CPU and str(CPU) == "cpu"
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        select_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "0"])
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(spec):
    with pytest.raises(UserError, match="no CUDA GPU"):
        select_device(spec)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_model_runs_in_half_precision(weights):
    model = load_model(str(weights), "cuda")
    assert model.half and next(model.module.parameters()).dtype == torch.float16


@pytest.mark.parametrize("config, says", [
    ("yolo11n-seg.yaml", "is a 'segment' model"), ("yolo11n-pose.yaml", "is a 'pose' model"),
    ("yolo11n-obb.yaml", "is an 'obb' model"), ("yolo26n-cls.yaml", "is a 'classify' model"),
    ("rtdetr-l.yaml", "is an RT-DETR model"), ("yolov8s-worldv2.yaml", "is a YOLO-World model"),
])
def test_models_other_than_yolo_detectors_are_refused_naming_what_runs(tmp_path, config, says):
    from ultralytics import RTDETR, YOLO

    path = tmp_path / config.replace(".yaml", ".pt")
    (RTDETR if config.startswith("rtdetr") else YOLO)(config).save(str(path))
    with pytest.raises(UserError) as err:
        load_model(str(path), "cpu")
    message = str(err.value)
    assert says in message and "YOLOv8, YOLOv9, YOLOv10, YOLO11, YOLO12 and YOLO26 detection models" in message


@pytest.mark.parametrize("config, heads", [("yolov9t.yaml", ("nms",)), ("yolo11n.yaml", ("nms",)),
                                           ("yolo12n.yaml", ("nms",)), ("yolov10n.yaml", ("nms", "end2end")),
                                           ("yolo26n.yaml", ("nms", "end2end"))])
def test_the_heads_come_from_the_head_not_the_file_name(tmp_path, config, heads):
    """Which heads a file has is read off its detection head; which one runs by default is the one Ultralytics'
    predict runs on that file (its AutoBackend's own choice with nms=None)."""
    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    path = tmp_path / "model.pt"  # a name that says nothing
    YOLO(config).save(str(path))
    model = load_model(str(path), "cpu", backend="torch")
    theirs = AutoBackend(str(path), device=torch.device("cpu"), verbose=False)
    assert model.heads == heads and model.head == ("end2end" if theirs.end2end else "nms")
    if len(heads) == 2:
        assert load_model(str(path), "cpu", backend="torch", nms="false").head == "end2end"
        assert load_model(str(path), "cpu", backend="torch", nms="true").head == "nms"


def test_loading_a_model_leaves_no_torch_thread_pool_behind(weights):
    """Torch's first parallel op on a thread gives that thread an OpenMP pool for as long as it lives; a
    second pool beside the inference thread's makes libgomp stop spinning at barriers (every layer then
    sleeps and wakes its workers: 40 -> 58 ms a frame on 2 cores). Loading runs on a thread that ends, and
    its pool's workers leave with it (they exit on their own, so give them a moment)."""
    script = (
        "import os, time, torch\n"
        "torch.set_num_threads(2)\n"
        "from yolo_app.engine.models import load_model\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        f"load_model({str(weights)!r}, 'cpu', backend='torch')\n"
        "deadline = time.monotonic() + 5\n"
        "while len(os.listdir('/proc/self/task')) > before and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print(before, len(os.listdir('/proc/self/task')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    before, after = out.stdout.split()
    assert after == before, out.stderr[-500:]


def test_annotate_with_a_cpu_report_leaves_no_torch_thread_pool_behind(weights, clips, tmp_path):
    """--cpu-report warms the network before its ledger starts; done on the main thread, that warm-up left
    the main thread a pool beside the inference thread's for the whole run (every layer then sleeps and
    wakes its workers: 62 against 42 ms a frame over the bench's video). It runs on a thread that ends.
    A pool's workers are named after the thread that started them, and a backend's caller is ``backend``
    meanwhile (engine/cpu.py): once the run is over, no such worker may be left."""
    script = (
        "import os, sys, time\n"
        "from yolo_app.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "def workers():\n"
        "    found = 0\n"
        "    for t in os.listdir('/proc/self/task'):\n"
        "        try:\n"
        "            found += open(f'/proc/self/task/{t}/comm').read().strip() == 'backend'\n"
        "        except FileNotFoundError:\n"
        "            pass  # a thread that ended since the listing\n"
        "    return found\n"
        "deadline = time.monotonic() + 5\n"
        "while workers() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print(code, workers())\n")
    args = ["annotate", str(clips["bottle"]), "--weights", str(weights), "--backend", "torch", "--device", "cpu",
            "--no-video", "--cpu-report", "--max-frames", "3", "--out", str(tmp_path)]
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=180)
    code, left = out.stdout.split()[-2:]
    assert (code, left) == ("0", "0"), out.stderr[-500:]
