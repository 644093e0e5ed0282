"""Long runs survive: kill -9 or Ctrl-C part-way, then --resume gives the uninterrupted result."""

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import BOTTLE_VIDEO, ctrl_c_default, make_clip, read_video, run_cli

FAST = ["--imgsz", "320", "--track"]  # a small input keeps these runs short; tracking state must resume too


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """450 real frames: past the first checkpoint (250 frames), so a kill lands in the second segment, with
    enough frames after it that a Ctrl-C sent at the checkpoint lands before the last frame is read."""
    return make_clip(BOTTLE_VIDEO, tmp_path_factory.mktemp("long") / "long.mp4", 450)


@pytest.fixture(scope="module")
def uninterrupted(long_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    proc = run_cli("annotate", str(long_clip), "--out", str(out), *FAST)
    assert proc.returncode == 0, proc.stderr
    return out


def start_annotate(clip, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "yolo_app", "annotate", str(clip), "--out", str(out), *FAST, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)


def wait_for_checkpoint(proc, out, timeout=180):
    checkpoint = out / "long.resume" / "checkpoint.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not checkpoint.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert checkpoint.exists()
    return json.loads(checkpoint.read_text())


def assert_same_result(out, reference):
    for name in ("long.detections.jsonl",):
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    frames, rate, size = read_video(out / "long.annotated.mp4")
    ref_frames, ref_rate, ref_size = read_video(reference / "long.annotated.mp4")
    assert (len(frames), rate, size) == (len(ref_frames), ref_rate, ref_size) == (450, ref_rate, (640, 360))
    assert all((a == b).all() for a, b in zip(frames, ref_frames))  # the same pictures, frame for frame
    assert not list(out.glob("*.part")) and not (out / "long.resume").exists()


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_identical_result(long_clip, uninterrupted, tmp_path):
    proc = start_annotate(long_clip, tmp_path)
    state = wait_for_checkpoint(proc, tmp_path)
    proc.kill()  # SIGKILL: no cleanup runs at all
    proc.wait(timeout=10)
    assert state["frames_done"] == 250 and state["tracker"]
    # Nothing at a final path looks complete.
    assert not (tmp_path / "long.detections.jsonl").exists() and not (tmp_path / "long.annotated.mp4").exists()
    assert (tmp_path / "long.detections.jsonl.part").exists()

    proc = run_cli("annotate", str(long_clip), "--out", str(tmp_path), *FAST, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "resumed at frame 250" in proc.stdout and "450 frames" in proc.stdout
    assert_same_result(tmp_path, uninterrupted)

    # Once complete, --resume skips the source instead of redoing it.
    proc = run_cli("annotate", str(long_clip), "--out", str(tmp_path), *FAST, "--resume")
    assert proc.returncode == 0 and "already complete, skipped" in proc.stdout
    assert_same_result(tmp_path, uninterrupted)


@pytest.mark.slow
def test_ctrl_c_then_resume_continues_from_the_partial_outputs(long_clip, uninterrupted, tmp_path):
    proc = start_annotate(long_clip, tmp_path)
    wait_for_checkpoint(proc, tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "--resume" in err
    assert (tmp_path / "long.detections.partial.jsonl").exists() and (tmp_path / "long.annotated.partial.mp4").exists()
    partial, _, _ = read_video(tmp_path / "long.annotated.partial.mp4")
    assert len(partial) >= 250  # the partial video plays, and holds at least the checkpointed frames

    # A resume with other settings would mix two runs in one record: refused, one line.
    proc = run_cli("annotate", str(long_clip), "--out", str(tmp_path), *FAST, "--resume", "--conf", "0.5")
    assert proc.returncode == 2 and "conf differ from the interrupted run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    proc = run_cli("annotate", str(long_clip), "--out", str(tmp_path), *FAST, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert_same_result(tmp_path, uninterrupted)
    assert not list(tmp_path.glob("*.partial.*"))


def test_a_run_without_resume_starts_over_and_says_so(clips, tmp_path):
    stale = tmp_path / "person.resume"
    stale.mkdir()
    (stale / "checkpoint.json").write_text(json.dumps({"version": 1, "frames_done": 250, "fingerprint": {},
                                                       "sinks": {}}))
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path), "--no-video")
    assert proc.returncode == 0, proc.stderr
    assert "starting over" in proc.stderr and "--resume" in proc.stderr
    assert "40 frames" in proc.stdout and not stale.exists()


def test_resume_skips_finished_outputs_only_when_they_were_made_alike(clips, tmp_path):
    args = ["annotate", str(clips["person"]), "--out", str(tmp_path), "--no-video", "--imgsz", "320"]
    assert run_cli(*args).returncode == 0
    proc = run_cli(*args, "--resume")
    assert proc.returncode == 0 and "already complete, skipped" in proc.stdout
    proc = run_cli(*args, "--resume", "--conf", "0.6")  # other settings: the old record is not this run's
    assert proc.returncode == 0 and "40 frames" in proc.stdout and "skipped" not in proc.stdout
    header = json.loads((tmp_path / "person.detections.jsonl").read_text().splitlines()[0])
    assert header["settings"]["conf"] == 0.6
