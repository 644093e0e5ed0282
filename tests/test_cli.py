"""`yolo-app annotate` end to end, as a user runs it: outputs, formats, bad input, Ctrl-C."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest
from ultralytics.utils import ASSETS

from conftest import PERSON_VIDEO, ctrl_c_default, frame_lines, make_clip, read_video, run_cli
from yolo_app.cli import main
from yolo_app.settings import PROCESS_ENV, GuiOptions


jsonl = frame_lines


def test_annotate_writes_a_video_with_every_frame_and_a_jsonl_record(clips, tmp_path):
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "person:" in proc.stdout and "40 frames" in proc.stdout and "FPS" in proc.stdout
    source, rate, size = read_video(clips["person"])
    annotated, out_rate, out_size = read_video(tmp_path / "person.annotated.mp4")
    assert (len(annotated), out_rate, out_size) == (40, rate, size) == (40, Fraction(10), (768, 432))
    lines = jsonl(tmp_path / "person.detections.jsonl")
    assert [x["frame"] for x in lines] == list(range(40))
    assert [x["time"] for x in lines[:3]] == [0.0, 0.1, 0.2]
    assert all((x["width"], x["height"]) == (768, 432) for x in lines)
    with_boxes = [x for x in lines if x["detections"]]
    assert with_boxes, "a person walks through this clip"
    det = with_boxes[0]["detections"][0]
    assert set(det) == {"xyxy", "class_id", "class_name", "confidence", "top_classes"}
    assert det["top_classes"][0] == ["person", det["confidence"]] and len(det["top_classes"]) == 3
    assert det["class_name"] == "person" and 0.25 <= det["confidence"] <= 1
    x1, y1, x2, y2 = map(int, det["xyxy"])
    assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432
    i = with_boxes[0]["frame"]  # boxes are drawn: the box outline differs from the raw frame there
    edge = np.abs(annotated[i][y1:y2, x1:x1 + 3].astype(int) - source[i][y1:y2, x1:x1 + 3].astype(int))
    assert edge.mean() > 20
    assert not list(tmp_path.glob("*.part"))
    header = json.loads((tmp_path / "person.detections.jsonl").read_text().splitlines()[0])
    assert header["record"] == "yolo-app detections" and header["source"] == str(clips["person"].resolve())
    assert (header["width"], header["height"], header["fps"], header["model"]) == (768, 432, 10.0, "yolov8n.pt")
    assert len(header["names"]) == 80 and header["names"]["0"] == "person" and header["settings"]["conf"] == 0.25


def test_no_video_writes_only_the_jsonl_and_max_frames_limits_the_run(clips, tmp_path):
    proc = run_cli("annotate", str(clips["bottle"]), "--out", str(tmp_path), "--no-video", "--max-frames", "5")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bottle.detections.jsonl"]
    assert len(jsonl(tmp_path / "bottle.detections.jsonl")) == 5


def test_classes_keep_only_the_named_classes(tmp_path):
    proc = run_cli("annotate", str(ASSETS / "bus.jpg"), "--out", str(tmp_path), "--classes", "bus")
    assert proc.returncode == 0, proc.stderr
    [line] = jsonl(tmp_path / "bus.detections.jsonl")
    assert [d["class_name"] for d in line["detections"]] == ["bus"]


def test_an_image_gives_an_annotated_jpg_and_one_jsonl_line(tmp_path):
    proc = run_cli("annotate", str(ASSETS / "bus.jpg"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(tmp_path / "bus.annotated.jpg"))
    assert image.shape == (1080, 810, 3)
    [line] = jsonl(tmp_path / "bus.detections.jsonl")
    assert line["file"].endswith("bus.jpg") and line["time"] is None
    names = sorted(d["class_name"] for d in line["detections"])
    assert names.count("person") >= 3 and "bus" in names


def test_a_folder_annotates_each_video_and_all_images(tmp_path):
    src = tmp_path / "footage"
    src.mkdir()
    shutil.copy(ASSETS / "bus.jpg", src / "img1.jpg")
    shutil.copy(ASSETS / "zidane.jpg", src / "img2.jpg")
    make_clip(PERSON_VIDEO, src / "walk.mp4", 6)
    out = tmp_path / "out"
    proc = run_cli("annotate", str(src), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "footage.detections.jsonl", "img1.annotated.jpg", "img2.annotated.jpg",
        "walk.annotated.mp4", "walk.detections.jsonl"]
    assert [x["file"].rsplit("/", 1)[-1] for x in jsonl(out / "footage.detections.jsonl")] == ["img1.jpg", "img2.jpg"]
    assert len(read_video(out / "walk.annotated.mp4")[0]) == 6


def test_the_demo_source_runs_with_the_default_model(tmp_path):
    proc = run_cli("annotate", "demo", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert len(read_video(tmp_path / "demo.annotated.mp4")[0]) == 120
    found = {d["class_name"] for x in jsonl(tmp_path / "demo.detections.jsonl") for d in x["detections"]}
    assert {"person", "bus"} <= found


def _not_a_model(tmp_path):
    (tmp_path / "fake.pt").write_text("not a model")
    return ["--weights", str(tmp_path / "fake.pt")]


def _classifier(tmp_path):
    from ultralytics import YOLO

    YOLO("yolov8n-cls.yaml").save(str(tmp_path / "cls.pt"))
    return ["--weights", str(tmp_path / "cls.pt")]


def _text_mp4(tmp_path):
    (tmp_path / "notes.mp4").write_text("hello\n" * 50)
    return [str(tmp_path / "notes.mp4")]


def _zero_byte(tmp_path):
    (tmp_path / "zero.mp4").write_bytes(b"")
    return [str(tmp_path / "zero.mp4")]


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return [str(tmp_path / "empty")]


def _out_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file where the output folder should go")
    return ["--out", str(tmp_path / "taken" / "sub")]


@pytest.mark.parametrize("make_args, message", [
    (lambda t: [str(t / "nope.mp4")], "no such file"),
    (_empty_folder, "has no images or videos"),
    (_zero_byte, "file is empty"),
    (_text_mp4, "not a readable video"),
    (lambda t: ["9"], "camera 9 cannot be opened"),
    (_not_a_model, "not a YOLO model file"),
    (_classifier, "'classify' model"),
    (lambda t: ["--conf", "1.5"], "conf must be between 0 and 1"),
    (lambda t: ["--iou", "-0.2"], "iou must be between 0 and 1"),
    (lambda t: ["--imgsz", "100"], "imgsz must be a positive multiple of 32"),
    (lambda t: ["--imgsz", "-32"], "imgsz must be a positive multiple of 32"),
    (lambda t: ["--classes", "person,unicorn"],
     "unknown class 'unicorn' for yolov8n.pt; valid classes: person, bicycle"),
    (lambda t: ["--weights", "yolov8x-missing.pt"], "not found; searched"),
    (lambda t: ["--device", "cuda:7"], "cuda:7"),
    (lambda t: ["--max-frames", "0"], "expected a positive integer"),
    (lambda t: ["--conf", "high"], "invalid float value"),
    (_out_is_a_file, "cannot write to output folder"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_gives_one_clear_line_exit_2_and_no_outputs(tmp_path, capsys, clips, make_args, message):
    args = make_args(tmp_path)
    source = [] if args and not args[0].startswith("--") else [str(clips["bottle"])]
    out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
    code = main(["annotate", *source, *args, *out])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_a_truncated_video_exits_2_and_keeps_only_partial_outputs(tmp_path, capsys):
    clip = make_clip(PERSON_VIDEO, tmp_path / "full.mp4", 30)
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    code = main(["annotate", str(tmp_path / "cut.mp4"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "truncated" in err and len(err.splitlines()) == 1
    names = [p.name for p in (tmp_path / "out").iterdir()]  # frames that made it through, if any
    assert all(".partial." in name for name in names), names


def test_one_bad_file_in_a_folder_is_reported_and_the_others_are_done(tmp_path):
    src = tmp_path / "mixed"
    src.mkdir()
    make_clip(PERSON_VIDEO, src / "good.mp4", 4)
    (src / "bad.mp4").write_text("not a video")
    proc = run_cli("annotate", str(src), "--out", str(tmp_path / "out"), "--no-video")
    assert proc.returncode == 2
    assert "bad.mp4: not a readable video" in proc.stderr and "good:" in proc.stdout
    assert len(jsonl(tmp_path / "out" / "good.detections.jsonl")) == 4


def test_an_unreachable_stream_is_reported_within_10_seconds(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    proc = run_cli("annotate", f"rtsp://127.0.0.1:{port}/live", "--out", str(tmp_path))
    assert time.monotonic() - start < 10
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"yolo-app: error: rtsp://127.0.0.1:{port}/live: nothing answers at "
                                   f"127.0.0.1:{port} (connection refused)")


def test_ctrl_c_stops_cleanly_with_exit_130_and_partial_outputs(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "yolo_app", "annotate", str(PERSON_VIDEO), "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    part = tmp_path / "one-by-one-person-detection.detections.jsonl.part"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (part.exists() and part.read_text().count("\n") >= 5):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["one-by-one-person-detection.annotated.partial.mp4",
                     "one-by-one-person-detection.detections.partial.jsonl"]
    frames, _, _ = read_video(tmp_path / names[0])
    assert len(frames) >= 5  # the partial video is a finished, playable file


def test_plain_yolo_app_opens_the_gui_and_version_works(capsys, monkeypatch):
    import yolo_app.gui.app
    from yolo_app.gui.app import Launch

    opened = []
    monkeypatch.setattr(yolo_app.gui.app, "run_gui", lambda options, launch: opened.append((options, launch)) or 0)
    assert main([]) == 0
    assert opened == [(GuiOptions(), Launch())]  # no source: the window opens the last one, else the demo
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "yolo-app 0.1.0"


def test_importing_the_front_ends_leaves_the_environment_alone_and_torch_unloaded():
    # A host program may import yolo_app: only a process of ours starting (main) sets our defaults.
    code = ("import os, sys; before = dict(os.environ); "
            "import yolo_app.cli, yolo_app.monitor.config, yolo_app.factory, yolo_app.settings; "
            "print(dict(os.environ) == before, 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in PROCESS_ENV}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.split() == ["True", "False"], proc.stderr


def test_main_sets_the_process_defaults_the_user_did_not_set(monkeypatch):
    for name in PROCESS_ENV:
        monkeypatch.setenv(name, "")  # so that monkeypatch restores what the test found afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("YOLO_VERBOSE", "true")
    assert main(["--version"]) == 0
    assert {k: os.environ[k] for k in PROCESS_ENV} == {**PROCESS_ENV, "YOLO_VERBOSE": "true"}


@pytest.mark.parametrize("args, message", [
    (["gui", "--screenshot", "x.png"], "--screenshot needs --quit-after"),
    (["gui", "--conf", "2", "--quit-after", "1"], "conf must be between 0 and 1"),
    (["gui", "--quit-after", "1", "--screenshot", "/no/such/folder/x.png"], "no such folder"),
])
def test_gui_options_are_checked_before_a_window_opens(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_the_gui_without_a_display_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "yolo_app", "gui", "demo"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2 and "no display" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_track_adds_ids_that_follow_each_object_and_restart_per_file(clips, tmp_path):
    src = tmp_path / "two"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (src / name).symlink_to(clips["person"])
    proc = run_cli("annotate", str(src), "--out", str(tmp_path / "out"), "--track", "--no-video")
    assert proc.returncode == 0, proc.stderr
    assert "tracks" in proc.stdout
    runs = [jsonl(tmp_path / "out" / f"{n}.detections.jsonl") for n in ("a", "b")]
    assert runs[0] == runs[1]  # a fresh tracker per file: the same video gives the same ids
    ids = [d["track_id"] for line in runs[0] for d in line["detections"]]
    assert ids and all(i is None or isinstance(i, int) for i in ids)
    tracked = [i for i in ids if i is not None]
    longest = max(tracked.count(i) for i in set(tracked))
    assert longest >= 15  # the person walking through keeps one id across the clip


def test_without_track_there_is_no_track_id(clips, tmp_path):
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path), "--no-video", "--max-frames", "20")
    assert proc.returncode == 0, proc.stderr
    assert all("track_id" not in d for line in jsonl(tmp_path / "person.detections.jsonl") for d in line["detections"])
