"""The trained_models fixture gives real trained detectors of each family: scores spread like a trained
model's on real frames, for both heads of the end-to-end families."""

from __future__ import annotations

import av
import numpy as np
import pytest
import yaml

from conftest import BOTTLE_VIDEO, PERSON_VIDEO

# Frames the training set does not hold (it has every 12th), each with objects in it.
PERSON_FRAMES = (106, 406, 1006)
BOTTLE_FRAMES = (6, 306, 906)
HEAD = {"yolo11n": "Detect", "yolo26n": "Detect", "yolov10n": "v10Detect"}
END_TO_END = {"yolo11n": False, "yolo26n": True, "yolov10n": True}


def pick_frames(path, wanted) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames.append(frame.to_ndarray(format="bgr24"))
            if i >= max(wanted):
                break
    return frames


@pytest.fixture(scope="module")
def frames() -> dict[str, list[np.ndarray]]:
    return {"person": pick_frames(PERSON_VIDEO, PERSON_FRAMES), "bottle": pick_frames(BOTTLE_VIDEO, BOTTLE_FRAMES)}


@pytest.mark.parametrize("family", sorted(HEAD))
def test_trained_model(family, trained_models, trained_models_info, frames):
    from ultralytics import YOLO

    path = trained_models[family]
    assert path.is_file() and path.name == "last.pt"
    model = YOLO(str(path))
    assert model.task == "detect"
    names = yaml.safe_load(trained_models_info["data"].read_text())["names"]
    assert model.names == names and len(names) == 80 and names[0] == "person" and names[39] == "bottle"
    assert model.model.yaml["yaml_file"] == f"{family}.yaml"
    head = model.model.model[-1]
    assert type(head).__name__ == HEAD[family]
    assert (getattr(head, "one2one_cv2", None) is not None) == END_TO_END[family]
    assert model.overrides["imgsz"] == trained_models_info["recipe"]["imgsz"]

    class_id = {name: i for i, name in names.items()}
    for head_name, kwargs in [("one-to-many + NMS", {}), ("one-to-one", {"nms": False})][: 1 + END_TO_END[family]]:
        scores, found, hit_frames = [], {}, 0
        for kind, images in frames.items():
            for image in images:
                boxes = model.predict(image, conf=0.01, verbose=False, **kwargs)[0].boxes
                conf, cls = boxes.conf.numpy(), boxes.cls.numpy().astype(int)
                hit_frames += bool((conf >= 0.25).any())
                found[kind] = found.get(kind, 0) + int((conf[cls == class_id[kind]] >= 0.5).sum())
                scores.extend(conf.tolist())
        scores = np.array(scores)
        print(f"{family} {head_name}: {len(scores)} boxes >= 0.01, max {scores.max():.2f}, std {scores.std():.2f}, "
              f"on {hit_frames}/6 frames >= 0.25, >= 0.5: {found}")
        assert hit_frames >= 5, f"{family} {head_name}: a box at 0.25 on only {hit_frames} of 6 frames with objects"
        assert found["person"] >= 2 and found["bottle"] >= 2, f"{family} {head_name}: {found} boxes over 0.5"
        assert scores.max() > 0.8 and scores.std() > 0.15, f"{family} {head_name}: {scores.round(2)}"
        assert len(np.unique(scores.round(3))) >= 8, f"{family} {head_name}: too few distinct scores"
        assert (scores < 0.5).any(), f"{family} {head_name}: every score is high"
