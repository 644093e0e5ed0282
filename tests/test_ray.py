"""annotate --ray: files and frame ranges as tasks on a (local) Ray cluster give the single-process outputs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from conftest import read_video, run_cli

FAST = ["--imgsz", "320"]


FAULTS_DIR = Path(__file__).parent / "ray_faults"  # its sitecustomize makes chosen range tasks fail


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    """The JSON file the cluster's workers read their faults from: {"NAME:START": TIMES}."""
    return tmp_path_factory.mktemp("faults") / "faults.json"


@pytest.fixture(scope="module")
def cluster(faults):
    """One local Ray for the module; the CLI attaches to it by address, as it would to a real cluster. Its
    workers inherit this environment: the fault injector's folder on PYTHONPATH and where its plan is."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "YOLO_APP_TEST_FAULTS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULTS_DIR), saved["PYTHONPATH"]) if p)
    os.environ["YOLO_APP_TEST_FAULTS"] = str(faults)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def fail_tasks(faults):
    """Make range tasks fail: fail_tasks({"person:12": 1}); cleared after the test."""
    yield lambda plan: faults.write_text(json.dumps(plan))
    faults.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def folder(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("in")
    for name, path in clips.items():
        shutil.copy(path, root / f"{name}.mp4")
    return root


@pytest.fixture(scope="module")
def single(folder, tmp_path_factory):
    """The reference: the same folder annotated in one process, without Ray."""
    out = tmp_path_factory.mktemp("single")
    proc = run_cli("annotate", str(folder), "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    return out


def run_ray(cluster, source, out, *extra):
    return subprocess.run([sys.executable, "-m", "yolo_app", "annotate", str(source), "--out", str(out), *FAST,
                           "--ray", cluster, "--ray-chunk", "12", *extra], capture_output=True, text=True, timeout=300)


def ran_ranges(stdout, name):
    return sorted(line.split(" frames ")[1].split(":")[0] for line in stdout.splitlines()
                  if line.startswith("task ") and f" {name} frames " in line and line.endswith(" s"))


@pytest.mark.slow
def test_two_videos_split_into_ranges_give_the_single_process_record_exactly(cluster, folder, single, tmp_path,
                                                                              fail_tasks):
    # The task of person's second range fails once: it is retried and the run completes.
    fail_tasks({"person:12": 1})
    proc = run_ray(cluster, folder, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "task 5/7 person frames 12-23: failed, retrying (1/2): injected failure" in proc.stdout
    assert ran_ranges(proc.stdout, "person") == ["0-11", "12-23", "24-35", "36-39"]
    assert ran_ranges(proc.stdout, "bottle") == ["0-11", "12-23", "24-29"]
    assert "2 sources: 2 complete, 0 failed" in proc.stdout
    for name, frames in (("person", 40), ("bottle", 30)):
        record = tmp_path / f"{name}.detections.jsonl"
        assert record.read_bytes() == (single / record.name).read_bytes()  # the header too: nothing differs
        assert len(record.read_text().splitlines()) == frames + 1
        video, rate, size = read_video(tmp_path / f"{name}.annotated.mp4")
        ref_video, ref_rate, ref_size = read_video(single / f"{name}.annotated.mp4")
        assert (len(video), rate, size) == (len(ref_video), ref_rate, ref_size) == (frames, ref_rate, ref_size)
    assert not list(tmp_path.glob("*.ray")) and not list(tmp_path.glob("*.part"))


@pytest.mark.slow
def test_resume_runs_only_the_missing_ranges_then_stitches(cluster, folder, single, tmp_path, fail_tasks):
    # A task that keeps failing: its file fails (exit 1), the other ranges finish and stay for --resume.
    fail_tasks({"person:12": 9})
    proc = run_ray(cluster, folder / "person.mp4", tmp_path, "--no-video")
    assert proc.returncode == 1
    assert "person frames 12-23: failed, retrying (2/2)" in proc.stdout
    assert "person frames 12-23: failed: injected failure" in proc.stdout
    assert "1 of 4 tasks failed" in proc.stderr and "1 sources: 0 complete, 1 failed" in proc.stdout
    work = tmp_path / "person.ray"
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == [
        "00000000-00000012", "00000012-00000024", "00000024-00000036", "00000036-00000040"]
    assert not (tmp_path / "person.detections.jsonl").exists()
    shutil.rmtree(work / "00000024-00000036")  # as if that range had been lost too

    fail_tasks({})
    proc = run_ray(cluster, folder / "person.mp4", tmp_path, "--no-video", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert ran_ranges(proc.stdout, "person") == ["12-23", "24-35"]
    assert "person: 40 frames" in proc.stdout
    record = tmp_path / "person.detections.jsonl"
    assert record.read_bytes() == (single / record.name).read_bytes()
    assert not work.exists()



@pytest.mark.slow
def test_ray_workers_run_the_head_asked_for(cluster, clips, trained_models, tmp_path):
    """--nms travels with the run's settings: each range task runs a YOLO26's NMS-free head, and the stitched
    record is the single process's, byte for byte."""
    args = ["--weights", str(trained_models["yolo26n"]), "--imgsz", "160", "--nms", "false", "--no-video"]
    alone = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path / "single"), *args)
    assert alone.returncode == 0, alone.stderr
    proc = run_ray(cluster, clips["person"], tmp_path / "ray", *args)
    assert proc.returncode == 0, proc.stderr
    assert ran_ranges(proc.stdout, "person") == ["0-11", "12-23", "24-35", "36-39"]
    record = (tmp_path / "ray" / "person.detections.jsonl").read_bytes()
    assert record == (tmp_path / "single" / "person.detections.jsonl").read_bytes()
    assert json.loads(record.splitlines()[0])["head"] == "end2end"


@pytest.mark.parametrize("args, message", [
    (["--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
    (["--ray", "no-port"], "expected auto, HOST:PORT"),
    (["--ray-chunk", "12"], "--ray-chunk needs --ray"),
    (["--ray", "127.0.0.1:1", "--ray-chunk", "0"], "expected a positive integer"),
])
def test_bad_ray_options_are_one_line_and_exit_2(clips, tmp_path, args, message):
    proc = run_cli("annotate", str(clips["bottle"]), "--out", str(tmp_path), *args, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
