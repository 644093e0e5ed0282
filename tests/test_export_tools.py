"""The exports read by their owners' tools: Datumaro's importers (what CVAT imports with; run from the tool
venv that `make tools` builds, through tests/datumaro_read.py) and motmetrics' accumulator. Expectations come
from the JSONL record, read here on its own, or from a record with known tracks made here by hand."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from export_runs import header_of, kept, records
from yolo_app.export import ExportOptions, export_record

pytest_plugins = ["export_runs"]  # its fixtures: tracked_run, plain_run

TOOLS_PYTHON = Path(os.environ.get("YOLO_APP_TOOLS_PYTHON", REPO / ".venv-tools" / "bin" / "python"))
READER = Path(__file__).with_name("datumaro_read.py")


def datumaro(fmt: str, path: Path, python: Path = TOOLS_PYTHON) -> dict:
    """What Datumaro's ``fmt`` importer reads from ``path`` (a zip is unpacked first, as CVAT does)."""
    if not python.is_file():
        pytest.fail(f"{python} is missing: `make test` (or `make tools`) builds the tool venv with Datumaro, "
                    "which reads the exports in these tests")
    proc = subprocess.run([str(python), str(READER), fmt, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=path.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def names_of(jsonl: Path) -> list[str]:
    names = header_of(jsonl)["names"]
    return [names[k] for k in sorted(names, key=int)]


def same_box(a: list[float], b: list[float], tolerance: float = 0.02) -> bool:
    """Within the 2 decimals the files keep (Datumaro holds coordinates as float32)."""
    return max(abs(x - y) for x, y in zip(a, b)) <= tolerance


def matched(dets: list[dict], found: list[dict], tolerance: float = 0.02) -> list[tuple[dict, dict]]:
    """(detection, box) pairs: each of ``dets`` with the one box of ``found`` at its place; none left over."""
    pairs = []
    for det in dets:
        [box] = [b for b in found if same_box(b["xyxy"], det["xyxy"], tolerance)]
        pairs.append((det, box))
    assert len(found) == len(dets)
    return pairs


def test_a_missing_tool_venv_fails_loudly_and_names_make_test(tmp_path):
    with pytest.raises(pytest.fail.Exception, match=r"`make test` \(or `make tools`\) builds the tool venv"):
        datumaro("coco_instances", tmp_path, python=tmp_path / "no-venv" / "bin" / "python")


def assert_coco_matches(got: dict, jsonl: Path, frames: list[tuple[dict, list[dict]]]) -> None:
    assert got["detected"] == ["coco_instances"]
    assert got["labels"] == names_of(jsonl)
    items = {item["id"]: item for item in got["items"]}
    # CVAT matches frame_000123 to frame 123 of a video task
    assert sorted(items) == sorted(f"frame_{line['frame']:06d}" for line, _ in frames)
    for line, dets in frames:
        item = items[f"frame_{line['frame']:06d}"]
        assert item["subset"] == "default" and item["image_exists"] and item["other_annotations"] == 0
        assert item["size"] == [line["height"], line["width"]]
        for det, box in matched(dets, item["boxes"]):
            assert (box["label"], box["attributes"]["score"]) == (det["class_name"], det["confidence"])
    assert sum(len(item["boxes"]) for item in got["items"]) == sum(len(dets) for _, dets in frames) > 0


def test_coco_folder_and_zip_import_in_datumaro_as_cvat_reads_them(tracked_run, tmp_path):
    jsonl = tracked_run / "person.detections.jsonl"
    folder, zipped = export_record(jsonl, ["coco"], tmp_path, ExportOptions(every=3, min_conf=0.5))
    frames = kept(records(jsonl), every=3, min_conf=0.5)
    assert any(line["detections"] and not dets for line, dets in frames)  # a frame emptied by min_conf
    assert_coco_matches(datumaro("coco_instances", folder), jsonl, frames)

    with zipfile.ZipFile(zipped) as archive:
        members = sorted(archive.namelist())
    assert members == sorted(["annotations/instances_default.json",
                              *(f"images/default/frame_{line['frame']:06d}.jpg" for line, _ in frames)])
    assert_coco_matches(datumaro("coco_instances", zipped), jsonl, frames)


def test_cvat_zip_imports_in_datumaro_with_the_records_frames_tracks_and_boxes(tracked_run, tmp_path):
    jsonl = tracked_run / "person.detections.jsonl"
    xml, zipped = export_record(jsonl, ["cvat"], tmp_path)
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == ["annotations.xml"]  # CVAT for video 1.1's layout (no images/)
        assert archive.read("annotations.xml") == xml.read_bytes()
    got = datumaro("cvat", zipped)
    assert got["detected"] == ["cvat"] and got["labels"] == names_of(jsonl)

    shown = defaultdict(list)  # frame -> boxes CVAT shows there (keyframes; outside ones hide a track)
    labels = defaultdict(set)
    for item in got["items"]:
        assert item["id"] == f"frame_{item['frame']:06d}"
        for box in item["boxes"]:
            labels[box["attributes"]["track_id"]].add(box["label"])
            if not box["attributes"]["outside"]:
                shown[item["frame"]].append(box)
    lines = records(jsonl)
    record_ids = {d["track_id"] for line in lines for d in line["detections"]} - {None}
    classes = defaultdict(set)  # CVAT track id -> the classes of the detections it shows
    untracked = []
    for line in lines:
        for det, box in matched(line["detections"], shown[line["frame"]]):
            track_id = box["attributes"]["track_id"]
            assert track_id == det["track_id"] if det["track_id"] is not None else track_id not in record_ids
            classes[track_id].add(det["class_name"])
            if det["track_id"] is None:
                untracked.append(track_id)
    assert len(set(untracked)) == len(untracked)  # a track of its own for each box on no track
    assert sum(map(len, shown.values())) == sum(len(line["detections"]) for line in lines) > 0
    assert set(labels) == set(classes)
    for track_id, found in labels.items():  # one label per track, a class the detector gave its boxes
        assert len(found) == 1 and found <= classes[track_id]


def test_cvat_without_tracking_imports_as_one_track_per_detection(plain_run, tmp_path):
    jsonl = plain_run / "bottle.detections.jsonl"
    _, zipped = export_record(jsonl, ["cvat"], tmp_path)
    got = datumaro("cvat", zipped)
    shown = defaultdict(list)
    for item in got["items"]:
        shown[item["frame"]] += [b for b in item["boxes"] if not b["attributes"]["outside"]]
    track_ids = []
    for line in records(jsonl):
        for det, box in matched(line["detections"], shown[line["frame"]]):
            assert box["label"] == det["class_name"]
            track_ids.append(box["attributes"]["track_id"])
    assert len(set(track_ids)) == len(track_ids) == sum(map(len, shown.values())) > 0


def test_yolo_dataset_imports_in_datumaro_with_the_kept_frames_and_boxes(tracked_run, tmp_path):
    jsonl = tracked_run / "person.detections.jsonl"
    [folder] = export_record(jsonl, ["yolo"], tmp_path, ExportOptions(every=2, min_conf=0.5, val_fraction=0.25))
    got = datumaro("yolo", folder)
    assert got["detected"] == ["yolo"] and got["labels"] == names_of(jsonl)
    frames = kept(records(jsonl), every=2, min_conf=0.5)
    items = {item["id"]: item for item in got["items"]}
    assert sorted(items) == sorted(f"frame_{line['frame']:06d}" for line, _ in frames)
    assert sorted(item["subset"] for item in got["items"]).count("val") == 5  # a quarter of 20
    for line, dets in frames:
        item = items[f"frame_{line['frame']:06d}"]
        assert item["image_exists"] and item["size"] == [line["height"], line["width"]]
        for det, box in matched(dets, item["boxes"], tolerance=0.01):  # 6 decimals of the frame's size
            assert box["label"] == det["class_name"]
    assert sum(len(item["boxes"]) for item in got["items"]) == sum(len(dets) for _, dets in frames) > 0


# --- MOT through motmetrics' accumulator ----------------------------------------------------------------------


def iou_distances(gt: np.ndarray, hyp: np.ndarray, max_distance: float = 0.5) -> np.ndarray:
    """1 - IoU of ``[x, y, w, h]`` rows, NaN (no match) past ``max_distance``: motmetrics' own
    ``iou_matrix`` calls ``np.asfarray``, which NumPy 2 removed."""
    x1, y1 = np.maximum(gt[:, None, 0], hyp[None, :, 0]), np.maximum(gt[:, None, 1], hyp[None, :, 1])
    x2 = np.minimum(gt[:, None, 0] + gt[:, None, 2], hyp[None, :, 0] + hyp[None, :, 2])
    y2 = np.minimum(gt[:, None, 1] + gt[:, None, 3], hyp[None, :, 1] + hyp[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (gt[:, 2] * gt[:, 3])[:, None] + (hyp[:, 2] * hyp[:, 3])[None, :] - inter
    distance = 1.0 - inter / union
    return np.where(distance > max_distance, np.nan, distance)


def mot_scores(gt, hyp) -> dict:
    """MOTA, IDF1, ID switches and false positives of ``hyp`` against ``gt`` (motmetrics tables), frame by frame
    through motmetrics' accumulator."""
    import motmetrics

    accumulator = motmetrics.MOTAccumulator(auto_id=False)
    columns = ["X", "Y", "Width", "Height"]
    for frame in sorted(set(gt.index.get_level_values(0)) | set(hyp.index.get_level_values(0))):
        g = gt.xs(frame, level=0) if frame in gt.index.get_level_values(0) else gt.iloc[:0].droplevel(0)
        h = hyp.xs(frame, level=0) if frame in hyp.index.get_level_values(0) else hyp.iloc[:0].droplevel(0)
        accumulator.update(list(g.index), list(h.index),
                           iou_distances(g[columns].to_numpy(float), h[columns].to_numpy(float)), frameid=frame)
    summary = motmetrics.metrics.create().compute(accumulator, metrics=["mota", "idf1", "num_switches",
                                                                        "num_false_positives"], name="run")
    return summary.iloc[0].to_dict()


def hand_made_record(path: Path) -> Path:
    """Four frames with known boxes and tracks: track 7 (a person) walks right, track 3 (a bottle) stays, frame 2
    is empty, and a box on no track (the last) is none of MOT's business."""
    def det(track, name, xyxy, conf):
        return {"class_id": {"person": 0, "bottle": 39}[name], "class_name": name, "confidence": conf,
                "xyxy": xyxy, "track_id": track}

    frames = [[det(7, "person", [10.0, 20.0, 50.0, 100.0], 0.9), det(3, "bottle", [200.0, 40.0, 230.0, 110.0], 0.8)],
              [det(7, "person", [30.0, 20.0, 70.0, 100.0], 0.85), det(3, "bottle", [200.5, 40.0, 230.5, 110.0], 0.75)],
              [],
              [det(7, "person", [70.0, 24.0, 110.0, 104.0], 0.8), det(None, "person", [400.0, 10.0, 440.0, 90.0], 0.6)]]
    lines = [{"frame": i, "time": i / 10, "width": 640, "height": 360, "detections": dets}
             for i, dets in enumerate(frames)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# The same tracks in the MOT Challenge's convention, written by hand: frame and pixel coordinates 1-based
# (x + 1, y + 1), width and height, the score, then -1 for the 3-D fields.
HAND_MADE_MOT = """\
1,7,11,21,40,80,0.9,-1,-1,-1
1,3,201,41,30,70,0.8,-1,-1,-1
2,7,31,21,40,80,0.85,-1,-1,-1
2,3,201.5,41,30,70,0.75,-1,-1,-1
4,7,71,25,40,80,0.8,-1,-1,-1
"""


def test_mot_export_of_known_tracks_reads_in_motmetrics_as_the_hand_made_ground_truth(tmp_path):
    import motmetrics

    [exported] = export_record(hand_made_record(tmp_path / "known.detections.jsonl"), ["mot"], tmp_path)
    truth = tmp_path / "truth.txt"
    truth.write_text(HAND_MADE_MOT)
    gt = motmetrics.io.loadtxt(str(truth), fmt="mot15-2D")
    hyp = motmetrics.io.loadtxt(str(exported), fmt="mot15-2D")
    columns = ["X", "Y", "Width", "Height", "Confidence"]
    assert list(hyp.index) == list(gt.index) == [(1, 7), (1, 3), (2, 7), (2, 3), (4, 7)]
    assert np.allclose(hyp[columns].to_numpy(float), gt[columns].to_numpy(float), atol=0.005)
    scores = mot_scores(gt, hyp)
    assert (scores["mota"], scores["idf1"], scores["num_switches"], scores["num_false_positives"]) == (1, 1, 0, 0)


def test_mot_export_of_a_real_run_scores_perfectly_against_its_record_and_not_when_perturbed(tracked_run):
    import motmetrics

    # The ground truth: the record's tracks, written here in MOT's convention (1-based frames and pixels).
    rows = [(line["frame"] + 1, d["track_id"], d["xyxy"]) for line in records(tracked_run / "person.detections.jsonl")
            for d in line["detections"] if d["track_id"] is not None]
    assert rows
    text = "".join(f"{f},{t},{x1 + 1},{y1 + 1},{x2 - x1},{y2 - y1},1,-1,-1,-1\n" for f, t, (x1, y1, x2, y2) in rows)
    truth = tracked_run / "record-as-ground-truth.txt"
    truth.write_text(text)
    gt = motmetrics.io.loadtxt(str(truth), fmt="mot15-2D")
    exported = motmetrics.io.loadtxt(str(tracked_run / "person.mot.txt"), fmt="mot15-2D")
    assert len(exported) == len(gt)
    scores = mot_scores(gt, exported)
    assert (scores["mota"], scores["idf1"], scores["num_switches"], scores["num_false_positives"]) == (1, 1, 0, 0)

    # The score sees a wrong export: tracks renamed half-way, and boxes beside their objects.
    frames = sorted(exported.index.get_level_values(0).unique())
    later = exported.index.get_level_values(0) > frames[len(frames) // 2]
    switched = exported.copy()
    ids = switched.index.to_frame(index=False)
    ids.loc[later, "Id"] += 1000  # the second half of every track under a new id
    switched.index = ids.set_index(["FrameId", "Id"]).index
    scores = mot_scores(gt, switched)
    assert scores["idf1"] < 1.0 and scores["mota"] < 1.0 and scores["num_switches"] > 0

    moved = exported.copy()
    moved.loc[later, "X"] += moved.loc[later, "Width"]  # misses and false positives
    scores = mot_scores(gt, moved)
    assert scores["mota"] < 1.0 and scores["num_false_positives"] > 0
