"""INT8 on OpenVINO, quantized on the user's own footage: what it keeps of fp32's boxes, its cache, its
errors (the bad-input table in test_cli.py has the one-line ones)."""

import json
import math

import numpy as np
import supervision as sv

from conftest import PERSON_VIDEO, frame_lines, run_cli
from yolo_app.engine.quantize import agreement, footage_frames
from yolo_app.engine.readers import open_reader
from yolo_app.engine.sources import parse_source


def boxes(xyxy, class_id, confidence):
    return sv.Detections(xyxy=np.array(xyxy, float), class_id=np.array(class_id), confidence=np.array(confidence))


def test_agreement_is_the_share_of_confident_boxes_kept_with_their_class_at_iou_09():
    reference = [boxes([[0, 0, 100, 100], [200, 200, 300, 300], [0, 0, 50, 50]], [0, 0, 2], [0.9, 0.8, 0.3]),
                 boxes([[10, 10, 110, 110], [300, 300, 400, 400]], [2, 2], [0.7, 0.5])]
    candidate = [boxes([[0, 0, 100, 100], [230, 230, 330, 330]], [0, 0], [0.6, 0.8]),  # the second moved: IoU 0.32
                 boxes([[11, 11, 111, 111], [300, 300, 400, 400]], [2, 7], [0.3, 0.5])]  # IoU 0.96; another class
    # The 0.3 box of the reference is not confident and does not count; a kept box may be less confident.
    assert agreement(reference, candidate, {0: "person", 2: "car"}) == (0.5, {"person": 0.5, "car": 0.5}, 4)
    assert agreement([boxes([[0, 0, 9, 9]], [0], [0.9])], [sv.Detections.empty()], {0: "person"}) == (
        0.0, {"person": 0.0}, 1)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_annotate_int8_is_quantized_once_on_the_video_it_processes_and_finds_what_fp32_finds(clips, tmp_path,
                                                                                              monkeypatch):
    monkeypatch.setenv("YOLO_APP_CACHE", str(tmp_path / "cache"))
    clip = clips["person"]
    fp32 = run_cli("annotate", str(clip), "--backend", "openvino", "--precision", "fp32", "--no-video",
                   "--out", str(tmp_path / "fp32"))
    int8 = run_cli("annotate", str(clip), "--precision", "int8", "--no-video", "--out", str(tmp_path / "int8"))
    assert fp32.returncode == 0 and int8.returncode == 0, fp32.stderr + int8.stderr
    assert "on cpu with openvino int8" in int8.stdout
    assert "quantizing yolov8n.pt to INT8 on frames of person.mp4 for 384x640 input" in int8.stderr
    [entry] = (tmp_path / "cache" / "exports").glob("*/openvino-384x640-b1-int8*")
    made = json.loads((entry / "export.json").read_text())
    assert made["calibration"] == str(clip) and made["calibration_frames"] == 40  # every frame of a short clip
    header = json.loads((tmp_path / "int8" / "person.detections.jsonl").read_text().splitlines()[0])
    assert header["precision"] == "int8" and header["backend"] == "openvino"

    full, quantized = (frame_lines(tmp_path / d / "person.detections.jsonl") for d in ("fp32", "int8"))
    confident = kept = 0
    for a, b in zip(full, quantized, strict=True):
        for box in (d for d in a["detections"] if d["confidence"] > 0.4):
            confident += 1
            kept += any(d["class_name"] == box["class_name"] and iou(d["xyxy"], box["xyxy"]) >= 0.9
                        for d in b["detections"])
    assert confident > 20 and kept / confident >= 0.85

    again = run_cli("annotate", str(clip), "--precision", "int8", "--no-video", "--out", str(tmp_path / "again"))
    assert again.returncode == 0 and "quantizing" not in again.stderr  # the cached INT8 network
    assert frame_lines(tmp_path / "again" / "person.detections.jsonl") == quantized


def test_calibration_frames_are_spread_over_a_long_video_by_seeking():
    reader = open_reader(parse_source(str(PERSON_VIDEO))[0])
    total = reader.info.frame_count
    reader.close()
    assert total > 10 * 20  # long enough that 20 frames are found by seeking, not by decoding everything
    picked = footage_frames(PERSON_VIDEO, 20)
    wanted = [math.ceil(i * total / 20 - 1e-6) for i in range(20)]  # the first frame at or after each time
    again = open_reader(parse_source(str(PERSON_VIDEO))[0])
    decoded = {i: image for i, (image, _, _) in enumerate(again.frames()) if i in wanted}
    again.close()
    assert len(picked) == 20 and all(np.array_equal(p, decoded[i]) for p, i in zip(picked, wanted))
