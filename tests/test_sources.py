"""Sources: parsing, probing real media, and one clear error for every unusable input."""

import shutil
import socket
import threading
import time
from fractions import Fraction

import pytest
from ultralytics.utils import ASSETS

from conftest import BOTTLE_VIDEO, PERSON_VIDEO, make_clip
from yolo_app.engine.readers import open_reader
from yolo_app.engine.sources import DEMO_PATH, parse_source
from yolo_app.engine.types import ChannelPolicy, SourceKind
from yolo_app.errors import UserError


@pytest.mark.parametrize("text, kind, name", [
    ("0", SourceKind.CAMERA, "camera0"),
    ("2", SourceKind.CAMERA, "camera2"),
    ("rtsp://127.0.0.1:8554/door", SourceKind.STREAM, "127.0.0.1_8554_door"),
    ("rtmp://example.org/live/cam", SourceKind.STREAM, "example.org_live_cam"),
    ("https://example.org/cam.mjpg", SourceKind.STREAM, "example.org_cam.mjpg"),
    ("demo", SourceKind.DEMO, "demo"),
])
def test_source_strings_resolve_to_their_kind_and_output_name(text, kind, name):
    [spec] = parse_source(text)
    assert (spec.kind, spec.name) == (kind, name)


def test_a_real_video_reports_kind_size_rate_count_and_not_live():
    reader = open_reader(parse_source(str(PERSON_VIDEO))[0])
    info = reader.info
    reader.close()
    assert (info.kind, info.width, info.height, info.fps, info.frame_count, info.live) == (
        SourceKind.VIDEO, 768, 432, Fraction(10), 1394, False)
    assert info.default_policy is ChannelPolicy.ALL


def test_container_timestamps_and_a_fractional_rate_come_through():
    reader = open_reader(parse_source(str(BOTTLE_VIDEO))[0])
    assert reader.info.fps == Fraction(179, 6)
    times = [pts for _, (image, pts, _) in zip(range(3), reader.frames())]
    reader.close()
    assert times == pytest.approx([0.0, 6 / 179, 12 / 179], abs=1e-4)


def test_the_demo_source_is_a_real_clip_that_ships_with_the_app():
    assert DEMO_PATH.is_file()
    reader = open_reader(parse_source("demo")[0])
    info = reader.info
    frames = list(reader.frames())
    reader.close()
    assert (info.kind, info.width, info.height, info.fps, info.live) == (SourceKind.DEMO, 640, 360, 15, False)
    assert len(frames) == info.frame_count == 120


def test_an_image_file_is_one_frame_with_its_path(tmp_path):
    [spec] = parse_source(str(ASSETS / "bus.jpg"))
    reader = open_reader(spec)
    [(image, pts, path)] = list(reader.frames())
    assert spec.kind is SourceKind.IMAGE and image.shape == (1080, 810, 3) and pts is None
    assert path.endswith("bus.jpg")


def test_a_folder_gives_each_video_its_own_spec_and_images_in_natural_order(tmp_path):
    for name in ("frame10.jpg", "frame2.jpg", "frame1.jpg"):
        shutil.copy(ASSETS / "zidane.jpg", tmp_path / name)
    make_clip(BOTTLE_VIDEO, tmp_path / "b.mp4", 3)
    make_clip(BOTTLE_VIDEO, tmp_path / "a.mkv", 3)
    (tmp_path / "notes.txt").write_text("not media")
    specs = parse_source(str(tmp_path))
    assert [(s.kind, s.name) for s in specs] == [
        (SourceKind.VIDEO, "a"), (SourceKind.VIDEO, "b"), (SourceKind.IMAGES, tmp_path.name)]
    assert [p.name for p in specs[2].paths] == ["frame1.jpg", "frame2.jpg", "frame10.jpg"]
    reader = open_reader(specs[0])
    assert reader.info.frame_count is None or reader.info.frame_count == 3  # mkv has no index count
    assert len(list(reader.frames())) == 3


def test_a_glob_selects_matching_files_only(tmp_path):
    for name in ("x1.jpg", "x2.jpg", "y.jpg"):
        shutil.copy(ASSETS / "bus.jpg", tmp_path / name)
    [spec] = parse_source(str(tmp_path / "x*.jpg"))
    assert [p.name for p in spec.paths] == ["x1.jpg", "x2.jpg"]


def _zero_byte(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    return str(tmp_path / "empty.mp4")


def _text_as_mp4(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is a shopping list, not a video\n" * 20)
    return str(tmp_path / "notes.mp4")


def _truncated_without_index(tmp_path):
    clip = make_clip(PERSON_VIDEO, tmp_path / "full.mp4", 20, faststart=False)  # index (moov) at the end
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    return str(tmp_path / "cut.mp4")


def _empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no media here")
    return str(tmp_path / "nothing")


@pytest.mark.parametrize("make_source, message", [
    (lambda t: str(t / "missing.mp4"), "no such file"),
    (_empty_folder, "has no images or videos"),
    (lambda t: str(t / "*.webm"), "no images or videos match"),
    (_zero_byte, "file is empty"),
    (_text_as_mp4, "not a readable video"),
    (_truncated_without_index, "not a readable video"),
    (lambda t: (t / "a.txt").write_text("x") and str(t / "a.txt"), "not an image or video"),
    (lambda t: "/dev/video97", "does not exist"),
])
def test_unusable_sources_fail_with_one_clear_line(tmp_path, make_source, message):
    with pytest.raises(UserError, match=message) as err:
        for spec in parse_source(make_source(tmp_path)):
            open_reader(spec).close()
    assert "\n" not in str(err.value)


def test_a_truncated_video_with_its_index_up_front_is_reported_after_the_frames_it_has(tmp_path):
    clip = make_clip(PERSON_VIDEO, tmp_path / "full.mp4", 30, faststart=True)
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    reader = open_reader(parse_source(str(tmp_path / "cut.mp4"))[0])
    decoded = 0
    with pytest.raises(UserError, match="truncated"):
        for _ in reader.frames():
            decoded += 1
    assert 0 < decoded < 30


def test_a_camera_index_that_does_not_exist_is_refused_within_5_seconds():
    start = time.monotonic()
    with pytest.raises(UserError, match="camera 7"):
        open_reader(parse_source("7")[0])
    assert time.monotonic() - start < 5.5


def test_a_stream_url_with_nothing_listening_is_refused_quickly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connection refused
    start = time.monotonic()
    with pytest.raises(UserError, match=r"nothing answers at 127\.0\.0\.1:\d+ \(connection refused\)"):
        open_reader(parse_source(f"rtsp://127.0.0.1:{port}/cam")[0])
    assert time.monotonic() - start < 10


def test_a_stream_server_that_never_answers_is_given_up_within_10_seconds():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(UserError, match="stream"):
            open_reader(parse_source(f"rtsp://127.0.0.1:{server.getsockname()[1]}/cam")[0])
        assert time.monotonic() - start < 10
    finally:
        server.close()


@pytest.mark.parametrize("turned", [90, 180, 270])
def test_a_phone_video_with_a_display_rotation_is_read_upright_as_opencv_and_players_show_it(turned, tmp_path):
    """Phones store portrait video as landscape frames and a rotation in the container; players and OpenCV
    (so Ultralytics' predict) show it turned, and so must we, or every box is on a sideways picture."""
    import cv2
    import numpy as np

    clip = make_clip(PERSON_VIDEO, tmp_path / "phone.mp4", 6, start=200, turned=turned)
    reader = open_reader(parse_source(str(clip))[0])
    ours = [image for image, _pts, _path in reader.frames()]
    reader.close()
    capture = cv2.VideoCapture(str(clip))
    theirs = [capture.read()[1] for _ in range(6)]
    capture.release()
    assert (reader.info.width, reader.info.height) == ((432, 768) if turned % 180 else (768, 432))
    assert [im.shape for im in ours] == [im.shape for im in theirs] == [(reader.info.height, reader.info.width, 3)] * 6
    assert max(float(np.abs(a.astype(int) - b).mean()) for a, b in zip(ours, theirs)) < 1.0
