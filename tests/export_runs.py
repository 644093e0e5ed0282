"""The annotate runs and JSONL helpers the export tests share (tests/test_export*.py import them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import frame_lines, run_cli

records = frame_lines


@pytest.fixture(scope="module")
def tracked_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    # fp32: PyTorch's numbers on every CPU (track 1 changes class on some frames: the CVAT test needs that)
    proc = run_cli("annotate", str(clips["person"]), "--out", str(out), "--no-video", "--track",
                   "--export", "csv,mot", "--precision", "fp32")
    assert proc.returncode == 0, proc.stderr
    assert "exported:" in proc.stdout
    return out


@pytest.fixture(scope="module")
def plain_run(clips, tmp_path_factory):
    """The first 10 frames of the 30-frame bottle clip, annotated without tracking."""
    out = tmp_path_factory.mktemp("plain")
    proc = run_cli("annotate", str(clips["bottle"]), "--out", str(out), "--no-video", "--max-frames", "10")
    assert proc.returncode == 0, proc.stderr
    return out


def header_of(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[0])


def kept(lines: list[dict], every: int = 1, min_conf: float = 0.0) -> list[tuple[dict, list[dict]]]:
    """What a dataset export keeps, worked out here from the JSONL: (line, detections kept)."""
    return [(line, [d for d in line["detections"] if d["confidence"] >= min_conf]) for line in lines[::every]]
