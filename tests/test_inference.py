"""Detector parity with Ultralytics' own predict, on real frames, and its settings."""

import dataclasses

import cv2
import numpy as np
import pytest
from ultralytics.data.augment import LetterBox
from ultralytics.utils import ASSETS

from conftest import PERSON_VIDEO, Predicted, file_sha256, read_video, ultralytics_reference
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.letterbox import apply_letterbox, letterbox_geometry
from yolo_app.engine.models import configure_cpu_threads
from yolo_app.errors import UserError


def box_iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 1.0


def same_terms(model) -> dict:
    """Ultralytics on our model's device and precision (on a GPU: fp16 both)."""
    return {"device": str(model.device), "half": model.half}


def assert_same_detections(ours, theirs, where=""):
    """Same classes, box IoU >= 0.99, |dconf| <= 0.01, nothing extra or missing. ``theirs``: an Ultralytics
    result, or its ``Predicted`` arrays."""
    boxes = theirs if isinstance(theirs, Predicted) else Predicted.of(theirs)
    assert len(ours) == len(boxes.conf), f"{where}: {len(ours)} boxes vs Ultralytics' {len(boxes.conf)}"
    unmatched = set(range(len(ours)))
    for xyxy, conf, cls in zip(boxes.xyxy, boxes.conf, boxes.cls):
        candidates = [i for i in unmatched if ours.class_id[i] == int(cls)]
        assert candidates, f"{where}: no box of class {int(cls)} left to match"
        best = max(candidates, key=lambda i: box_iou(ours.xyxy[i], xyxy))
        assert box_iou(ours.xyxy[best], xyxy) >= 0.99, f"{where}: box {ours.xyxy[best]} vs {xyxy}"
        assert abs(float(ours.confidence[best]) - float(conf)) <= 0.01, where
        unmatched.remove(best)


@pytest.fixture(scope="module")
def frames(clips):
    person, _, _ = read_video(clips["person"])
    bottle, _, _ = read_video(clips["bottle"])
    photos = [cv2.imread(str(ASSETS / name)) for name in ("bus.jpg", "zidane.jpg")]
    return person[::2] + bottle[::3] + photos


@pytest.mark.parametrize("shape", [(432, 768), (360, 640), (1080, 810), (720, 1280), (333, 517), (64, 3000)])
@pytest.mark.parametrize("imgsz", [320, 640])
@pytest.mark.parametrize("minimal", [True, False])
def test_letterbox_is_pixel_identical_to_ultralytics(shape, imgsz, minimal):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    theirs = LetterBox(imgsz, auto=minimal, stride=32)(image=image)
    ours = apply_letterbox(image, letterbox_geometry(*shape, imgsz, 32, minimal))
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_the_shared_video_is_letterboxed_to_384x640():
    assert letterbox_geometry(432, 768, 640, 32, True).input_hw == (384, 640)


@pytest.mark.parametrize("settings", [
    DetectionSettings(),
    DetectionSettings(conf=0.5, iou=0.45, imgsz=320),
    DetectionSettings(conf=0.1, classes=(0, 39)),
    DetectionSettings(conf=0.05, max_det=3),
], ids=["defaults", "conf-iou-imgsz", "classes", "max_det"])
def test_detections_equal_ultralytics_predict_on_real_frames(model, ultralytics_yolo, frames, settings):
    detector = Detector(model, settings)
    for i, frame in enumerate(frames):
        [found] = detector.detect([frame])
        ours, timings = found.detections, found.timings
        theirs = ultralytics_yolo.predict(frame, conf=settings.conf, iou=settings.iou, imgsz=settings.imgsz,
                                          classes=list(settings.classes) if settings.classes else None,
                                          max_det=settings.max_det, verbose=False, **same_terms(model))[0]
        assert_same_detections(ours, theirs, where=f"frame {i}")
        assert timings.infer > 0 and timings.pre > 0 and timings.post > 0
    assert ours.data["class_name"].tolist() == [model.names[c] for c in ours.class_id]


def test_real_frames_do_produce_detections(model, frames):
    found = [len(d.detections) for d in Detector(model).detect(frames)]
    assert sum(found) > len(frames)  # the parity above is not vacuous: people, bottles and a bus are found


def test_a_batch_gives_the_same_detections_as_one_frame_at_a_time(model, frames):
    detector = Detector(model)
    batched = detector.detect(frames[:6])
    for frame, found in zip(frames[:6], batched):
        det, single = found.detections, detector.detect([frame])[0].detections
        assert np.allclose(det.xyxy, single.xyxy, atol=0.05) and np.array_equal(det.class_id, single.class_id)


def test_new_settings_apply_to_the_next_frame(model, frames):
    detector = Detector(model, DetectionSettings(conf=0.05))
    many = len(detector.detect([frames[-2]])[0].detections)
    detector.settings = dataclasses.replace(detector.settings, conf=0.8)
    few = len(detector.detect([frames[-2]])[0].detections)
    detector.settings = dataclasses.replace(detector.settings, conf=0.05, classes=(5,))
    only_bus = detector.detect([frames[-2]])[0].detections
    assert many > few and set(only_bus.class_id) == {5}


@pytest.mark.parametrize("kwargs, message", [
    ({"conf": 1.5}, "conf must be between 0 and 1"),
    ({"conf": -0.1}, "conf must be between 0 and 1"),
    ({"iou": 2}, "iou must be between 0 and 1"),
    ({"imgsz": 100}, "multiple of 32"),
    ({"imgsz": 0}, "multiple of 32"),
    ({"max_det": 0}, "max_det"),
])
def test_invalid_settings_are_refused(kwargs, message):
    with pytest.raises(UserError, match=message):
        DetectionSettings(**kwargs)


STRETCH = range(400, 700)  # 30 s of the person video: people walking out of view and in, frames without any


@pytest.mark.slow
def test_every_frame_of_thirty_seconds_of_a_shared_video_matches_ultralytics(model, ultralytics_yolo, weights):
    """Continuous real footage, not picked frames: every frame of a stretch with people coming and going.
    Ultralytics' side is computed once per machine (conftest.ultralytics_reference)."""
    import av

    with av.open(str(PERSON_VIDEO)) as container:
        video = [f.to_ndarray(format="bgr24") for i, f in zip(range(STRETCH.stop), container.decode(video=0))
                 if i in STRETCH]
    detector = Detector(model)

    def predict() -> list[Predicted]:
        ultralytics_yolo.predict(video[0], verbose=False, **same_terms(model))  # its set-up leaves torch cores - 1
        configure_cpu_threads(model)  # every core for both sides: the same numbers, 3x sooner on 2 cores
        return [Predicted.of(ultralytics_yolo.predict(frame, verbose=False, **same_terms(model))[0])
                for frame in video]

    inputs = {"weights": file_sha256(weights), "video": PERSON_VIDEO.name, "frames": [STRETCH.start, STRETCH.stop],
              "settings": "defaults", **same_terms(model)}
    theirs = ultralytics_reference("person-stretch", inputs, predict)
    configure_cpu_threads(model)
    assert len(theirs) == len(video) == len(STRETCH)
    for i, (frame, reference) in enumerate(zip(video, theirs)):
        ours = detector.detect([frame])[0].detections
        assert_same_detections(ours, reference, where=f"frame {STRETCH.start + i}")
    with_people = sum(0 in p.cls.astype(int) for p in theirs)  # class 0: person
    assert 0 < with_people < len(theirs)  # people come and go
