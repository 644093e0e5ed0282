"""Many sources in one job: overall progress and ETA, a bad file skipped, cancel from another thread."""

import shutil
import threading
import time

import pytest

from yolo_app.annotate import AnnotateOptions
from yolo_app.annotate_job import AnnotateJob
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.sources import parse_source
from yolo_app.terminal import TerminalProgress, format_duration


@pytest.fixture(scope="module")
def detector(model):
    return Detector(model, DetectionSettings(imgsz=320))


def test_a_folder_job_reports_overall_progress_and_skips_a_bad_file(clips, detector, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clips["person"], folder / "a.mp4")
    (folder / "b.mp4").write_bytes(b"not a video at all")
    shutil.copy(clips["bottle"], folder / "c.mp4")
    seen = []
    job = AnnotateJob(parse_source(str(folder)), detector, AnnotateOptions(out_dir=tmp_path / "out", video=False),
                      ["csv"], on_progress=seen.append)
    result = job.run()
    assert [o.spec.name for o in result.outcomes] == ["a", "b", "c"]
    assert "not a readable video" in result.outcomes[1].error and result.exit_code == 2
    assert [o.report.frames for o in (result.outcomes[0], result.outcomes[2])] == [40, 30]
    assert result.outcomes[2].exported == [tmp_path / "out" / "c.detections.csv"]
    assert {p.total for p in seen} == {None}  # the broken file's length is unknown: no overall total, no ETA
    assert [p.done for p in seen] == sorted(p.done for p in seen)  # overall progress never goes back
    assert seen[-1].file_number == 3 and seen[-1].file_done == 30 and seen[-1].done == 70


def test_the_eta_counts_down_to_zero_over_known_files(clips, detector, tmp_path):
    seen = []
    specs = parse_source(str(clips["person"])) + parse_source(str(clips["bottle"]))
    AnnotateJob(specs, detector, AnnotateOptions(out_dir=tmp_path, video=False), on_progress=seen.append).run()
    assert {p.total for p in seen} == {70} and seen[-1].done == 70
    assert seen[-1].eta_s == 0 and all(p.eta_s is not None and p.eta_s >= 0 for p in seen if p.fps > 0)


def test_cancel_stops_the_current_file_at_once_and_leaves_it_resumable(model, tmp_path):
    from conftest import PERSON_VIDEO

    job = AnnotateJob(parse_source(str(PERSON_VIDEO)), Detector(model, DetectionSettings(imgsz=320)),
                      AnnotateOptions(out_dir=tmp_path))
    progress = threading.Event()
    job.on_progress = lambda p: p.file_done > 260 and progress.set()  # past the first checkpoint
    runner = threading.Thread(target=lambda: setattr(job, "result", job.run()))
    runner.start()
    assert progress.wait(180)
    started = time.monotonic()
    job.cancel()
    runner.join(10)
    assert not runner.is_alive() and time.monotonic() - started < 5
    [outcome] = job.result.outcomes
    assert job.result.cancelled and not outcome.report.complete
    assert (tmp_path / "one-by-one-person-detection.resume" / "checkpoint.json").exists()
    assert (tmp_path / "one-by-one-person-detection.detections.partial.jsonl").exists()


def test_terminal_progress_draws_both_bars_and_formats_the_eta(clips, detector, tmp_path, capsys):
    specs = parse_source(str(clips["person"])) + parse_source(str(clips["bottle"]))
    bars = TerminalProgress(len(specs), enabled=True)
    AnnotateJob(specs, detector, AnnotateOptions(out_dir=tmp_path, video=False), on_progress=bars).run()
    bars.close()
    err = capsys.readouterr().err
    assert "all files:" in err and "70/70" in err and "ETA" in err and "2/2 bottle" in err
    assert (format_duration(None), format_duration(75.4), format_duration(3725)) == ("?", "1:15", "1:02:05")
