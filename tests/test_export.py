"""Exports from the JSONL record, checked by the tools that read them."""

import csv
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import read_video, run_cli
from export_runs import header_of, kept, records
from yolo_app.cli import main
from yolo_app.export import ExportOptions, export_record
from yolo_app.export.yolo import val_positions

pytest_plugins = ["export_runs"]  # its fixtures: tracked_run, plain_run


def test_csv_has_one_row_per_detection_matching_the_jsonl(tracked_run):
    lines = records(tracked_run / "person.detections.jsonl")
    with (tracked_run / "person.detections.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["frame", "time", "track_id", "class", "confidence", "x1", "y1", "x2", "y2"]
    expected = [(line["frame"], det) for line in lines for det in line["detections"]]
    assert len(rows) == len(expected) > 0
    for row, (frame, det) in zip(rows, expected):
        assert int(row["frame"]) == frame and row["class"] == det["class_name"]
        assert float(row["x2"]) == pytest.approx(det["xyxy"][2])
        assert row["track_id"] == ("" if det["track_id"] is None else str(det["track_id"]))


def test_mot_parses_with_motmetrics_and_matches_the_tracks(tracked_run):
    import motmetrics
    table = motmetrics.io.loadtxt(str(tracked_run / "person.mot.txt"), fmt="mot15-2D")
    lines = records(tracked_run / "person.detections.jsonl")
    tracked = [(line["frame"] + 1, det) for line in lines for det in line["detections"] if det["track_id"]]
    assert len(table) == len(tracked) > 0
    frame, det = tracked[0]
    row = table.loc[(frame, det["track_id"])]
    x1, y1, x2, y2 = det["xyxy"]
    assert row["X"] == pytest.approx(x1, abs=0.01) and row["Width"] == pytest.approx(x2 - x1, abs=0.01)
    assert min(f for f, _ in tracked) >= 1  # 1-based frames


def test_export_later_from_the_record_gives_the_same_files(tracked_run, tmp_path):
    proc = run_cli("export", str(tracked_run / "person.detections.jsonl"), "--to", "mot,csv", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in ("person.mot.txt", "person.detections.csv"):
        assert (tmp_path / name).read_text() == (tracked_run / name).read_text()


@pytest.mark.parametrize("make_args, message", [
    (lambda t, r: ["export", str(r), "--to", "coco-ish"],
     "unknown export format 'coco-ish'; available: csv, mot, coco, yolo, cvat, crops"),
    (lambda t, r: ["export", str(t / "missing.detections.jsonl"), "--to", "csv"], "no such detections file"),
    (lambda t, r: ["export", str(t / "bad.detections.jsonl"), "--to", "csv"], "not a yolo-app detections line"),
    (lambda t, r: ["annotate", "demo", "--export", "mot"], "--export mot needs --track"),
    (lambda t, r: ["annotate", "demo", "--export", "csv,pdf"], "unknown export format 'pdf'"),
])
def test_bad_export_requests_fail_with_one_line(tmp_path, capsys, tracked_run, make_args, message):
    (tmp_path / "bad.detections.jsonl").write_text("{not json\n")
    code = main(make_args(tmp_path, tracked_run / "person.detections.jsonl"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_mot_from_a_record_without_tracks_is_refused(plain_run, capsys):
    code = main(["export", str(plain_run / "bottle.detections.jsonl"), "--to", "mot"])
    assert code == 2 and "needs track ids" in capsys.readouterr().err
    assert not (plain_run / "bottle.mot.txt").exists()


# --- Dataset and CVAT exports -------------------------------------------------------------------------------


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def coco_ap(coco, detections: list[dict]) -> float:
    """COCOeval's AP@[.5:.95] of ``detections`` (COCO results) against the file's boxes."""
    from pycocotools.cocoeval import COCOeval

    evaluation = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[0])


def test_coco_loads_in_pycocotools_with_the_records_frames_boxes_and_classes(tracked_run, clips, tmp_path):
    from pycocotools.coco import COCO

    jsonl = tracked_run / "person.detections.jsonl"
    written = export_record(jsonl, ["coco"], tmp_path, ExportOptions(every=3, min_conf=0.5))
    folder = tmp_path / "person_coco"
    assert written == [folder, tmp_path / "person_coco.zip"]
    coco = COCO(str(folder / "annotations" / "instances_default.json"))
    frames = kept(records(jsonl), every=3, min_conf=0.5)
    dropped = [d for line, _ in frames for d in line["detections"] if d["confidence"] < 0.5]
    assert dropped  # min_conf really left some out
    # Counts: one image per kept frame, one annotation per kept box, every model class as a category.
    assert len(coco.getImgIds()) == len(frames) and len(coco.getAnnIds()) == sum(len(d) for _, d in frames) > 0
    names = {int(k): v for k, v in header_of(jsonl)["names"].items()}
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(names.values())
    assert min(coco.getImgIds()) >= 1 and min(coco.getAnnIds()) >= 1 and min(coco.getCatIds()) >= 1  # COCO's ids

    # Boxes: each image (found by its file name, as CVAT matches frames) holds the frame's kept boxes.
    source, _, _ = read_video(clips["person"])
    by_name = {image["file_name"]: image for image in coco.loadImgs(coco.getImgIds())}
    category = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    for line, dets in frames:
        image = by_name[f"frame_{line['frame']:06d}.jpg"]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        got = sorted((category[a["category_id"]], a["score"], a.get("track_id")) for a in anns)
        assert got == sorted((d["class_name"], d["confidence"], d["track_id"]) for d in dets)
        for ann in anns:
            det = next(d for d in dets if d["confidence"] == ann["score"])
            x1, y1, x2, y2 = det["xyxy"]
            assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.01)
            assert ann["segmentation"] == [] and ann["iscrowd"] == 0
            assert ann["area"] == pytest.approx((x2 - x1) * (y2 - y1), rel=1e-3)
        pixels = cv2.imread(str(folder / "images" / "default" / image["file_name"]))
        assert pixels.shape == (image["height"], image["width"], 3) == (432, 768, 3)
        diffs = [mean_diff(pixels, frame) for frame in source]
        assert diffs[line["frame"]] < 1.5  # the un-annotated source frame itself (JPEG quality 95)
        if dets:  # a moving person makes each such frame unique
            assert int(np.argmin(diffs)) == line["frame"]

    # The record's own detections, given as predictions, find every box; moved ones miss some.
    image_id = {int(name[6:12]): image["id"] for name, image in by_name.items()}
    category_id = {name: cid for cid, name in category.items()}

    def predictions(shift: float) -> list[dict]:
        out = []
        for i, (line, det) in enumerate((line, det) for line, dets in frames for det in dets):
            x1, y1, x2, y2 = det["xyxy"]
            dx = shift * (x2 - x1) if i % 2 else 0.0  # every other box moved by a share of its width
            out.append({"image_id": image_id[line["frame"]], "category_id": category_id[det["class_name"]],
                        "bbox": [x1 + dx, y1, x2 - x1, y2 - y1], "score": det["confidence"]})
        return out

    assert coco_ap(coco, predictions(0.0)) == pytest.approx(1.0)
    assert coco_ap(coco, predictions(0.6)) < 0.8


@pytest.mark.parametrize("count, fraction, n_val, n_blocks", [
    (40, 0.2, 8, 1), (40, 0.5, 20, 4), (1394, 0.2, 279, 5), (2, 0.1, 1, 1), (10, 0.95, 9, 1), (1, 0.5, 0, 0),
])
def test_val_split_is_contiguous_blocks_spread_over_the_video(count, fraction, n_val, n_blocks):
    val = sorted(val_positions(count, fraction))
    assert len(val) == n_val and val == sorted(val_positions(count, fraction))
    starts = [p for p in val if p - 1 not in val]
    assert len(starts) == n_blocks and all(0 <= p < count for p in val)
    if n_blocks > 1:  # spread: the first block in the first half, the last in the second
        assert starts[0] < count / 2 < starts[-1]
    assert val_positions(count, 0.0) == set()


def read_labels(path: Path, width: int, height: int) -> list[tuple[int, list[float]]]:
    """A YOLO label file back in pixels: (class, [x1, y1, x2, y2])."""
    boxes = []
    for row in path.read_text().splitlines():
        cls, cx, cy, w, h = row.split()
        assert all(len(v.split(".")[1]) == 6 for v in (cx, cy, w, h))
        cx, cy, w, h = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        boxes.append((int(cls), [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
    return boxes


TRAIN_SCRIPT = """
import json, sys
from ultralytics import YOLO
model = YOLO(sys.argv[1])
model.train(data=sys.argv[2], epochs=1, imgsz=64, batch=4, workers=0, device="cpu", project=sys.argv[3],
            name="train", plots=False, val=True, amp=False, verbose=False)
trainer = model.trainer
train, val = trainer.train_loader.dataset, trainer.validator.dataloader.dataset
print(json.dumps({"train": len(train), "val": len(val), "train_boxes": sum(len(lb["cls"]) for lb in train.labels),
                  "last": str(trainer.last)}))
"""


def test_yolo_dataset_matches_the_record_and_ultralytics_trains_on_it_offline(tracked_run, weights, tmp_path):
    jsonl = tracked_run / "person.detections.jsonl"
    [folder] = export_record(jsonl, ["yolo"], tmp_path, ExportOptions(every=2, min_conf=0.5, val_fraction=0.25))
    assert folder == tmp_path / "person_yolo" and not (tmp_path / "person_yolo.part").exists()
    data = yaml.safe_load((folder / "data.yaml").read_text())
    names = {int(k): v for k, v in header_of(jsonl)["names"].items()}
    assert data == {"path": str(folder.resolve()), "train": "images/train", "val": "images/val", "names": names}

    frames = kept(records(jsonl), every=2, min_conf=0.5)  # 20 frames
    split = {p.stem: p.parent.name for p in folder.glob("images/*/*.jpg")}
    assert sorted(split) == [f"frame_{line['frame']:06d}" for line, _ in frames]
    val = [i for i, (line, _) in enumerate(frames) if split[f"frame_{line['frame']:06d}"] == "val"]
    assert val == list(range(val[0], val[0] + 5)) and 0 < val[0] < 15  # one block of 5, inside the clip
    for line, dets in frames:
        stem = f"frame_{line['frame']:06d}"
        labels = read_labels(folder / "labels" / split[stem] / f"{stem}.txt", line["width"], line["height"])
        assert [cls for cls, _ in labels] == [d["class_id"] for d in dets]  # empty for background frames
        for (_, box), det in zip(labels, dets):
            assert box == pytest.approx(det["xyxy"], abs=1.0)
    assert any(line["detections"] and not dets for line, dets in frames)  # a frame emptied by min_conf

    proc = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(weights), str(folder / "data.yaml"),
                           str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    train_boxes = sum(len(dets) for line, dets in frames if split[f"frame_{line['frame']:06d}"] == "train")
    assert (result["train"], result["val"], result["train_boxes"]) == (15, 5, train_boxes)
    assert Path(result["last"]).is_file()


def test_yolo_dataset_without_val_fraction_validates_on_train(tracked_run, tmp_path):
    [folder] = export_record(tracked_run / "person.detections.jsonl", ["yolo"], tmp_path,
                             ExportOptions(every=4, val_fraction=0.0))
    assert yaml.safe_load((folder / "data.yaml").read_text())["val"] == "images/train"
    assert len(list(folder.glob("images/train/*.jpg"))) == len(list(folder.glob("labels/train/*.txt"))) == 10
    assert not (folder / "images" / "val").exists()


def cvat_tracks(path: Path) -> dict[int, tuple[str, list[tuple[int, int, list[float]]]]]:
    """CVAT track id -> (label, [(frame, outside, [xtl, ytl, xbr, ybr])])."""
    root = ET.parse(path).getroot()
    return {int(t.get("id")): (t.get("label"), [(int(b.get("frame")), int(b.get("outside")),
                                                 [float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")])
                                                for b in t.iter("box")])
            for t in root.iter("track")}


def expected_cvat(lines: list[dict], size: int) -> tuple[dict, list]:
    """From the JSONL: {track_id: (label, boxes)} for the tracks, and [(label, boxes)] for one-frame tracks."""
    sightings = defaultdict(list)
    singles = []
    for line in lines:
        for det in line["detections"]:
            if det.get("track_id") is None:
                after = [(line["frame"] + 1, 1, det["xyxy"])] if line["frame"] + 1 < size else []
                singles.append((det["class_name"], [(line["frame"], 0, det["xyxy"]), *after]))
            else:
                sightings[det["track_id"]].append((line["frame"], det))
    tracks = {}
    for track_id, seen in sightings.items():
        frames = {f for f, _ in seen}
        boxes = []
        for frame, det in seen:
            boxes.append((frame, 0, det["xyxy"]))
            if frame + 1 not in frames and frame + 1 < size:
                boxes.append((frame + 1, 1, det["xyxy"]))
        tracks[track_id] = (Counter(d["class_name"] for _, d in seen).most_common(1)[0][0], boxes)
    return tracks, singles


def assert_cvat_matches(path: Path, lines: list[dict], size: int) -> dict:
    got = cvat_tracks(path)
    tracks, singles = expected_cvat(lines, size)
    first_single = max(tracks, default=0) + 1
    assert sorted(got) == sorted(tracks) + list(range(first_single, first_single + len(singles)))
    for track_id, expected in [*tracks.items(), *zip(range(first_single, first_single + len(singles)), singles)]:
        label, boxes = got[track_id]
        assert label == expected[0]
        assert [(f, o) for f, o, _ in boxes] == [(f, o) for f, o, _ in expected[1]]
        for (_, _, box), (_, _, xyxy) in zip(boxes, expected[1]):
            assert box == pytest.approx(xyxy, abs=0.006)
    return got


def test_cvat_xml_has_one_track_per_track_id_and_one_frame_tracks_for_the_rest(tracked_run, tmp_path):
    jsonl = tracked_run / "person.detections.jsonl"
    lines = records(jsonl)
    [path, _] = export_record(jsonl, ["cvat"], tmp_path, ExportOptions(every=5, min_conf=0.9))  # ignored by cvat
    root = ET.parse(path).getroot()
    assert root.findtext("version") == "1.1"
    task = root.find("meta/task")
    assert (task.findtext("size"), task.findtext("mode")) == ("40", "interpolation")
    assert [n.text for n in task.findall("labels/label/name")] == list(header_of(jsonl)["names"].values())
    assert (task.findtext("original_size/width"), task.findtext("original_size/height")) == ("768", "432")
    assert {t.get("source") for t in root.iter("track")} == {"auto"}

    got = assert_cvat_matches(path, lines, size=40)
    boxes = [b for _, bs in got.values() for b in bs]
    assert sum(1 for _, outside, _ in boxes if not outside) == sum(len(line["detections"]) for line in lines)
    classes = {d["class_name"] for line in lines for d in line["detections"] if d["track_id"] == 1}
    assert len(classes) > 1 and got[1][0] == "person"  # the track's most frequent class wins
    assert any(outside for _, bs in got.values() for _, outside, _ in bs)


def test_cvat_marks_a_track_outside_after_a_gap_and_after_its_last_sighting(tracked_run, tmp_path):
    """The real record with track 1 unseen on frames 20-22 and cut after frame 29 (of a 40-frame video)."""
    header, *lines = (json.loads(t) for t in (tracked_run / "person.detections.jsonl").read_text().splitlines())
    for line in lines:
        if 20 <= line["frame"] <= 22:
            line["detections"] = [d for d in line["detections"] if d["track_id"] != 1]
    lines = lines[:30]
    jsonl = tmp_path / "gap.detections.jsonl"
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in [header, *lines]))
    [path, _] = export_record(jsonl, ["cvat"], tmp_path)
    got = assert_cvat_matches(path, lines, size=40)
    frames = [(f, outside) for f, outside, _ in got[1][1]]
    assert (19, 0) in frames and (20, 1) in frames and (23, 0) in frames and frames[-1] == (30, 1)
    assert not {21, 22} & {f for f, _ in frames}


def test_cvat_without_tracking_makes_a_one_frame_track_per_detection(plain_run, tmp_path):
    jsonl = plain_run / "bottle.detections.jsonl"
    [path, _] = export_record(jsonl, ["cvat"], tmp_path)
    lines = records(jsonl)
    got = assert_cvat_matches(path, lines, size=30)  # the whole video, though only 10 frames were annotated
    assert len(got) == sum(len(line["detections"]) for line in lines) > 0
    assert all(len(boxes) == 2 and boxes[1][:2] == (boxes[0][0] + 1, 1) for _, boxes in got.values())


def test_crops_are_the_kept_boxes_cut_from_the_source_one_folder_per_class(tracked_run, clips, tmp_path):
    jsonl = tracked_run / "person.detections.jsonl"
    [folder] = export_record(jsonl, ["crops"], tmp_path, ExportOptions(every=2, min_conf=0.5))
    assert folder == tmp_path / "person_crops" and not (tmp_path / "person_crops.part").exists()
    frames = kept(records(jsonl), every=2, min_conf=0.5)
    expected = Counter(d["class_name"] for _, dets in frames for d in dets)
    assert {p.name: len(list(p.iterdir())) for p in folder.iterdir()} == dict(expected) != {}
    source, _, _ = read_video(clips["person"])
    lines = {line["frame"]: line for line in records(jsonl)}
    for crop in folder.glob("*/*.jpg"):
        frame, index = map(int, re.fullmatch(r"person_f(\d{6})_d(\d+)", crop.stem).groups())
        det = lines[frame]["detections"][index]
        assert frame % 2 == 0 and det["confidence"] >= 0.5 and crop.parent.name == det["class_name"]
        x1, y1, x2, y2 = det["xyxy"]
        pixels = cv2.imread(str(crop))
        assert pixels.shape[:2] == pytest.approx((y2 - y1, x2 - x1), abs=1.0)
        region = source[frame][round(y1):round(y1) + pixels.shape[0], round(x1):round(x1) + pixels.shape[1]]
        assert mean_diff(pixels, region) < 3.0


@pytest.fixture(scope="module")
def image_run(clips, tmp_path_factory):
    """A folder of three real frames, one of them a PNG, annotated as an image sequence."""
    root = tmp_path_factory.mktemp("images")
    photos = root / "photos"
    photos.mkdir()
    source, _, _ = read_video(clips["person"])
    for name, frame in (("a.jpg", 15), ("b.png", 25), ("c.jpg", 35)):
        cv2.imwrite(str(photos / name), source[frame])
    proc = run_cli("annotate", str(photos), "--out", str(root), "--no-video")
    assert proc.returncode == 0, proc.stderr
    return root


def test_coco_from_an_image_folder_keeps_the_file_names(image_run, tmp_path):
    jsonl = image_run / "photos.detections.jsonl"
    export_record(jsonl, ["coco"], tmp_path)
    document = json.loads((tmp_path / "photos_coco" / "annotations" / "instances_default.json").read_text())
    assert [i["file_name"] for i in document["images"]] == ["a.jpg", "b.jpg", "c.jpg"]
    for image, line in zip(document["images"], records(jsonl)):
        original = cv2.imread(line["file"])
        written = cv2.imread(str(tmp_path / "photos_coco" / "images" / "default" / image["file_name"]))
        assert mean_diff(written, original) < 1.5
    assert len(document["annotations"]) == sum(len(line["detections"]) for line in records(jsonl)) > 0


def test_a_folder_export_never_replaces_the_source_folder(image_run, tmp_path, capsys):
    """The images annotated from a folder named like the export (``walk_coco/`` beside ``walk.detections.jsonl``)."""
    source = Path(shutil.copytree(image_run / "photos", tmp_path / "walk_coco"))
    text = (image_run / "photos.detections.jsonl").read_text().replace(str(image_run / "photos"), str(source))
    (tmp_path / "walk.detections.jsonl").write_text(text)
    (tmp_path / "walk_coco.zip").write_text("an old export")
    code = main(["export", str(tmp_path / "walk.detections.jsonl"), "--to", "coco"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "would replace the source" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in source.iterdir()) == ["a.jpg", "b.png", "c.jpg"]
    assert (tmp_path / "walk_coco.zip").read_text() == "an old export"  # refused before anything was touched


def test_export_command_writes_all_four_formats(tracked_run, tmp_path):
    proc = run_cli("export", str(tracked_run / "person.detections.jsonl"), "--to", "coco,yolo,cvat,crops",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    names = ["person_coco", "person_coco.zip", "person_yolo", "person.cvat.xml", "person.cvat.zip", "person_crops"]
    assert proc.stdout.split() == [str(tmp_path / n) for n in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


@pytest.fixture(scope="module")
def moved_run(tracked_run, clips, tmp_path_factory):
    """The tracked record as made from a copy of its video, ``walk.mp4``, which was then renamed."""
    root = tmp_path_factory.mktemp("moved")
    video = Path(shutil.copy(clips["person"], root / "walk.mp4"))
    header, *lines = (tracked_run / "person.detections.jsonl").read_text().splitlines()
    record = root / "walk.detections.jsonl"
    record.write_text("\n".join([json.dumps({**json.loads(header), "source": str(video)}), *lines]) + "\n")
    video.rename(root / "walk-renamed.mp4")
    return record


def _edit_header(**changes):
    def edit(header: dict, lines: list[str]) -> list[str]:
        return [json.dumps({**header, **changes}), *lines]
    return edit


@pytest.mark.parametrize("fmt", ["coco", "yolo", "crops"])
@pytest.mark.parametrize("edit, message", [
    (lambda header, lines: [json.dumps(header), *lines], "walk.mp4 is gone (moved or deleted)"),
    (_edit_header(live=True, kind="stream", source="rtsp://192.0.2.10:554/stream1"),
     "needs the source frames; live sources cannot be read again — record the stream to a file first"),
    (lambda header, lines: lines, "has no header line"),
    ("bottle", "changed since the record was made"),
], ids=["missing-source", "live-source", "no-header", "changed-source"])
def test_dataset_export_without_its_source_frames_fails_with_one_line_and_leaves_nothing(
        moved_run, clips, tmp_path, capsys, fmt, edit, message):
    header, *lines = moved_run.read_text().splitlines()
    if edit == "bottle":  # the record now names a different video (640x360, 30 frames)
        edit = _edit_header(source=str(clips["bottle"]))
    record = tmp_path / "walk.detections.jsonl"
    record.write_text("\n".join(edit(json.loads(header), lines)) + "\n")
    out = tmp_path / "out"
    code = main(["export", str(record), "--to", fmt, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert list(out.iterdir()) == []  # no final file or folder, no .part
