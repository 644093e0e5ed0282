"""`yolo-app annotate` end to end, as a user runs it: outputs, formats, bad input, Ctrl-C."""

import json
import os
import re
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

from conftest import PERSON_VIDEO, SHARED_WEIGHTS, ctrl_c_default, frame_lines, make_clip, read_video, run_cli
from yolo_app.cli import main
from yolo_app.settings import PROCESS_ENV, GuiOptions


jsonl = frame_lines


def test_annotate_writes_a_video_with_every_frame_and_a_jsonl_record(clips, tmp_path):
    began = time.monotonic()
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path))
    waited = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    assert "person:" in proc.stdout and "40 frames" in proc.stdout and "FPS" in proc.stdout
    first_s = float(re.search(r"first boxes ([\d.]+) s after the command started", proc.stdout).group(1))
    assert 0.3 < first_s < waited  # from the process's start (imports and model load in it) to the first result
    source, rate, size = read_video(clips["person"])
    annotated, out_rate, out_size = read_video(tmp_path / "person.annotated.mp4")
    assert (len(annotated), out_rate, out_size) == (40, rate, size) == (40, Fraction(10), (768, 432))
    written = (tmp_path / "person.annotated.mp4").read_bytes()  # x264 records its settings in the stream
    x264 = written[written.index(b"x264 - core"):].split(b"\0", 1)[0].decode()
    assert all(f" {option} " in x264 for option in ("me=dia", "subme=1", "crf=21.0")), x264
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


def test_a_phone_video_is_annotated_upright_with_the_boxes_ultralytics_finds(ultralytics_yolo, weights, tmp_path):
    """A portrait phone video (landscape frames, a quarter turn in the container): the record, its boxes and
    the annotated video are of the picture as players show it, as Ultralytics' predict sees it."""
    from test_inference import box_iou

    clip = make_clip(PERSON_VIDEO, tmp_path / "phone.mp4", 8, turned=270)
    proc = run_cli("annotate", str(clip), "--weights", str(weights), "--backend", "torch", "--precision", "fp32",
                   "--device", "cpu", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    header = jsonl(tmp_path / "out" / "phone.detections.jsonl")[0]
    assert (header["width"], header["height"]) == (432, 768)
    assert read_video(tmp_path / "out" / "phone.annotated.mp4")[2] == (432, 768)
    theirs = list(ultralytics_yolo.predict(str(clip), stream=True, verbose=False, device="cpu"))
    ours = frame_lines(tmp_path / "out" / "phone.detections.jsonl")
    assert len(ours) == len(theirs) == 8 and sum(len(t.boxes) for t in theirs) >= 8
    for line, result in zip(ours, theirs):
        assert len(line["detections"]) == len(result.boxes), line["frame"]
        for xyxy, cls in zip(result.boxes.xyxy.numpy(), result.boxes.cls.numpy()):
            same_class = [np.array(box["xyxy"]) for box in line["detections"] if box["class_id"] == int(cls)]
            assert max((box_iou(box, xyxy) for box in same_class), default=0) >= 0.99, line["frame"]


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_video_with_uneven_frame_times_is_annotated_with_each_frame_at_its_own_time(container, tmp_path):
    """Phones lower the frame rate in dim light: 5 s at 30 fps, then 10 s at 15 fps. Frame i at i / (average
    rate) would show the frame of second 5 at 8.3 s, away from the record's time and the audio; each frame
    keeps its own, across the annotated video's 250-frame segments. An MP4's index tells such a file apart;
    a Matroska file (FFmpeg guesses its rate from the first frames: 30 here) is taken at its frames' times."""
    import av

    times = [i / 30 for i in range(150)] + [5 + i / 15 for i in range(150)]
    clip = make_clip(PERSON_VIDEO, tmp_path / f"dim.{container}", 300, times=times)
    proc = run_cli("annotate", str(clip), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "out" / "dim.annotated.mp4")) as container:
        shown = [frame.time for frame in container.decode(video=0)]
        assert container.duration / 1e6 >= times[-1]
    assert shown == pytest.approx(times, abs=0.001)  # the annotated video (and Matroska) keep milliseconds
    record = [line["time"] for line in frame_lines(tmp_path / "out" / "dim.detections.jsonl")]
    assert record == pytest.approx(shown, abs=0.0005)


def test_an_mpeg_ts_joined_from_two_recordings_is_annotated_in_order_though_its_clock_starts_again(tmp_path):
    """Two camera recordings joined as they are (cat a.ts b.ts): the clock goes back at frame 200, inside the
    first of the annotated video's 250-frame segments. The video plays every frame in order, at the
    recordings' own spacing, for their combined 30 s."""
    import av

    first = make_clip(PERSON_VIDEO, tmp_path / "a.ts", 200, faststart=False)
    second = make_clip(PERSON_VIDEO, tmp_path / "b.ts", 100, start=200, faststart=False)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    proc = run_cli("annotate", str(joined), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "out" / "joined.annotated.mp4")) as container:
        shown = [frame.time for frame in container.decode(video=0)]
    assert len(shown) == len(frame_lines(tmp_path / "out" / "joined.detections.jsonl")) == 300
    assert [round(b - a, 3) for a, b in zip(shown, shown[1:])] == [0.1] * 299  # the person video's 10 fps


def test_the_demo_source_runs_with_the_default_model(tmp_path):
    proc = run_cli("annotate", "demo", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert len(read_video(tmp_path / "demo.annotated.mp4")[0]) == 120
    found = {d["class_name"] for x in jsonl(tmp_path / "demo.detections.jsonl") for d in x["detections"]}
    assert {"person", "bus"} <= found


# The bad-input table: each case builds the arguments after `yolo-app` in its own folder T, runs as a real
# process (exit code, everything on stderr, logging included) and must fail with exit 2 and one line.
def _annotate(*args, source=None, out=True):
    def make(t, clip):
        return ["annotate", str(source(t) if source else clip), *[a(t) if callable(a) else a for a in args],
                *(["--out", str(t / "out")] if out else [])]
    return make


def _write(name, content):
    def make(t):
        path = t / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return path
    return make


def _copy(src, name):
    def make(t):
        shutil.copy(src, t / name)
        return t / name
    return make


def _folder(name):
    def make(t):
        (t / name).mkdir()
        return t / name
    return make


def _cut_image(ext):
    def make(t):  # the first half of a real picture, as a failed copy leaves it
        image = cv2.imread(str(ASSETS / "bus.jpg"))
        cv2.imwrite(str(t / f"whole.{ext}"), image)
        data = (t / f"whole.{ext}").read_bytes()
        (t / f"cut.{ext}").write_bytes(data[: len(data) // 2])
        return t / f"cut.{ext}"
    return make


def _unreadable(make_file):
    def make(t):
        path = make_file(t)
        path.chmod(0)
        return path
    return make


def _classifier(t):
    from ultralytics import YOLO

    YOLO("yolov8n-cls.yaml").save(str(t / "cls.pt"))
    return t / "cls.pt"


def _read_only_folder(t):
    (t / "locked").mkdir()
    (t / "locked").chmod(0o555)
    return t / "locked" / "out"


def _short_clip(t, frames):
    return make_clip(PERSON_VIDEO, t / f"short{frames}.mp4", frames)


def _monitor(make_config):
    return lambda t, clip: ["monitor", "--config", str(make_config(t)), "--run-for", "5"]


BAD_INPUT = {  # id: (arguments, a piece of the one line on stderr, run without root's file access)
    "no such file": (_annotate(source=lambda t: t / "nope.mp4"), "no such file", False),
    "empty folder": (_annotate(source=_folder("empty")), "has no images or videos", False),
    "zero-byte video": (_annotate(source=_write("zero.mp4", b"")), "file is empty", False),
    "text as mp4": (_annotate(source=_write("notes.mp4", "hello\n" * 50)), "not a readable video", False),
    "cut-off JPEG": (_annotate(source=_cut_image("jpg")), "cut.jpg: image is truncated", False),
    "cut-off PNG": (_annotate(source=_cut_image("png")), "cut.png: image is truncated", False),
    "JPEG header only": (_annotate(source=_write("head.jpg", b"\xff\xd8\xff\xe0" + b"x" * 500)),
                         "head.jpg: not a readable image", False),
    "unreadable image": (_annotate(source=_unreadable(_copy(ASSETS / "bus.jpg", "secret.jpg"))),
                         "secret.jpg: permission denied", True),
    "camera 9": (_annotate(source=lambda t: "9"), "camera 9 cannot be opened", False),
    "not a model": (_annotate("--weights", _write("fake.pt", "not a model")), "not a YOLO model file", False),
    "unreadable weights": (_annotate("--weights", _unreadable(_copy(SHARED_WEIGHTS / "yolov8n.pt", "w.pt"))),
                           "w.pt: permission denied", True),
    "a folder as weights": (_annotate("--weights", _folder("weights")), "is a folder, not a model file", False),
    "a classifier": (_annotate("--weights", _classifier), "'classify' model", False),
    "conf 1.5": (_annotate("--conf", "1.5"), "conf must be between 0 and 1", False),
    "iou -0.2": (_annotate("--iou", "-0.2"), "iou must be between 0 and 1", False),
    "imgsz 100": (_annotate("--imgsz", "100"), "imgsz must be a positive multiple of 32", False),
    "imgsz -32": (_annotate("--imgsz", "-32"), "imgsz must be a positive multiple of 32", False),
    "unknown class": (_annotate("--classes", "person,unicorn"),
                      "unknown class 'unicorn' for yolov8n.pt; valid classes: person, bicycle", False),
    "missing weights": (_annotate("--weights", "yolov8x-missing.pt"), "not found; searched", False),
    "cuda:7": (_annotate("--device", "cuda:7"), "cuda:7", False),
    "max-frames 0": (_annotate("--max-frames", "0"), "expected a positive integer", False),
    "conf high": (_annotate("--conf", "high"), "invalid float value", False),
    "out under a file": (_annotate("--out", lambda t: _write("taken", "a file")(t) / "sub", out=False),
                         "cannot write to output folder", False),
    "read-only out": (_annotate("--out", _read_only_folder, out=False), "cannot write to output folder", True),
    "int8 on onnx": (_annotate("--precision", "int8", "--backend", "onnx"), "int8 runs on OpenVINO", False),
    "int8 from a camera": (_annotate(source=lambda t: "rtsp://127.0.0.1:9/cam", *["--precision", "int8"]),
                           "--precision int8 is quantized on your own footage", False),
    "int8, no footage": (_annotate("--precision", "int8", "--calibrate", lambda t: t / "gone.mp4"),
                         "gone.mp4: no such video or folder to calibrate INT8 on", False),
    "int8, 12 frames": (_annotate("--precision", "int8", "--calibrate", lambda t: _short_clip(t, 12)),
                        "12 frames; INT8 calibration needs at least 30", False),
    "int8 of an export": (_annotate("--precision", "int8", "--weights", _write("model.onnx", "x")),
                          "--precision int8 quantizes a .pt checkpoint", False),
    "monitor int8, no footage": (_monitor(_write("monitor.yaml", "precision: int8\ncameras: [{name: a, source: x}]\n")),
                                 "precision int8 is quantized on your own footage: add calibrate", False),
    "monitor.yaml not YAML": (_monitor(_write("monitor.yaml", "cameras: [\n  - {name: a\n")), "not valid YAML",
                              False),
    "monitor.yaml a string": (_monitor(_write("monitor.yaml", "just some text\n")), "must be a mapping", False),
    "monitor nms maybe": (_monitor(_write("monitor.yaml", "nms: maybe\ncameras: [{name: a, source: x}]\n")),
                          "monitor.yaml: nms: must be auto, true or false, not 'maybe'", False),
    "mqtt port 70000": (_monitor(_write("monitor.yaml", "mqtt: {host: 127.0.0.1, port: 70000}\n"
                                                      "cameras: [{name: a, source: x}]\n")),
                        "monitor.yaml: mqtt.port: must be between 1 and 65535, not 70000", False),
    "mqtt tls ca missing": (_monitor(_write("monitor.yaml", "mqtt: {host: 127.0.0.1, tls: {ca: nope.pem}}\n"
                                                          "cameras: [{name: a, source: x}]\n")),
                            "monitor.yaml: mqtt.tls.ca: no such file: ", False),
    "mqtt password unset": (_monitor(_write("monitor.yaml", "mqtt: {host: h, user: ha, password_env: YOLO_NOT_SET}\n"
                                                          "cameras: [{name: a, source: x}]\n")),
                            "mqtt.password_env: the environment variable YOLO_NOT_SET is not set", False),
    "nms maybe": (_annotate("--nms", "maybe"), "argument --nms: invalid choice: 'maybe'", False),
    "nms false on yolov8n": (_annotate("--nms", "false"),
                             "nms false runs the one-to-one (NMS-free) head, and yolov8n.pt has none", False),
}


# Root reads and writes any file whatever its permissions (the capabilities CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH); the permission cases run without them, as a user's process would: those two dropped
# (setpriv, util-linux), or else in a user namespace that maps no user (where root's capabilities do not
# reach root's files).
WITHOUT_ROOT_ACCESS = (["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all"],
                       ["unshare", "-U"])


def _without_root_access() -> list[str] | None:
    """A command prefix under which file permissions hold ([] for a normal user), or None where root cannot
    give up its file access here."""
    if os.geteuid() != 0:
        return []
    for prefix in WITHOUT_ROOT_ACCESS:
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return None


@pytest.fixture(scope="module")
def bad_input_runs(clips, tmp_path_factory):
    """Every BAD_INPUT case run once, two processes at a time (each spends ~3 s importing): id -> (process, T);
    the process is None for a permission case where root's file access cannot be dropped."""
    from concurrent.futures import ThreadPoolExecutor

    unprivileged_prefix = _without_root_access()

    def run(case_id):
        make_args, _, unprivileged = BAD_INPUT[case_id]
        t = tmp_path_factory.mktemp("bad")
        args = make_args(t, clips["bottle"])
        if unprivileged and unprivileged_prefix is None:
            return case_id, (None, t)
        prefix = unprivileged_prefix if unprivileged else []
        proc = subprocess.run([*prefix, sys.executable, "-m", "yolo_app", *args], capture_output=True, text=True,
                              timeout=180)
        return case_id, (proc, t)

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, BAD_INPUT))


@pytest.mark.parametrize("case_id", list(BAD_INPUT))
def test_bad_input_gives_one_clear_line_exit_2_and_no_outputs(bad_input_runs, case_id):
    proc, t = bad_input_runs[case_id]
    if proc is None:
        pytest.fail("running as root, and neither setpriv nor unshare -U can take root's file access away here: "
                    "file permissions cannot deny anything (run the suite as a normal user)")
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert BAD_INPUT[case_id][1] in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    out = t / "out"
    assert not out.exists() or not list(out.iterdir()), sorted(p.name for p in out.iterdir())


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
