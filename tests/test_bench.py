import json

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_bench_times_ultralytics_and_annotate_on_one_video_and_prints_their_ratio():
    proc = run_cli("bench", "demo", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frames"] == 120 and report["video"].endswith("demo.mp4")
    for key in ("ultralytics_fps", "annotate_fps", "annotate_novideo_fps"):
        assert report[key] > 0
    assert report["ratio"] == pytest.approx(report["annotate_fps"] / report["ultralytics_fps"], rel=0.01)


def test_bench_refuses_a_missing_video(tmp_path):
    proc = run_cli("bench", str(tmp_path / "missing.mp4"))
    assert proc.returncode == 2 and "no such video" in proc.stderr
