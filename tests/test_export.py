"""Exports from the JSONL record, checked by the tools that read them."""

import csv
import json

import pytest

from conftest import frame_lines, run_cli
from yolo_app.cli import main


@pytest.fixture(scope="module")
def tracked_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    proc = run_cli("annotate", str(clips["person"]), "--out", str(out), "--no-video", "--track",
                   "--export", "csv,mot")
    assert proc.returncode == 0, proc.stderr
    assert "exported:" in proc.stdout
    return out


records = frame_lines


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
    motmetrics = pytest.importorskip("motmetrics")
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
    (lambda t, r: ["export", str(r), "--to", "coco-ish"], "unknown export format 'coco-ish'; available: csv, mot"),
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


def test_mot_from_a_record_without_tracks_is_refused(clips, tmp_path, capsys):
    assert run_cli("annotate", str(clips["bottle"]), "--out", str(tmp_path), "--no-video",
                   "--max-frames", "3").returncode == 0
    code = main(["export", str(tmp_path / "bottle.detections.jsonl"), "--to", "mot"])
    assert code == 2 and "needs track ids" in capsys.readouterr().err
    assert not (tmp_path / "bottle.mot.txt").exists()
