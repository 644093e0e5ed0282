"""Fault injection for the Ray tests, kept out of the app: tests/test_ray.py starts its Ray cluster with
this folder on PYTHONPATH, so every Ray worker imports this file at start-up.

In a worker it wraps ``annotate_source`` so that the frame-range tasks named in the JSON file at
$YOLO_APP_TEST_FAULTS (``{"NAME:START": TIMES}``) raise, as a broken worker would, their first TIMES
attempts (counted by marker files in the task's own folder, so retries on any worker see them).
Any other process that sees this file (the CLI the tests start) is left alone."""

import json
import os
import sys
from pathlib import Path


def _install() -> None:
    faults = os.environ.get("YOLO_APP_TEST_FAULTS")
    if not faults or not any("default_worker" in arg for arg in sys.argv):
        return
    import yolo_app.annotate as annotate
    from yolo_app.errors import RuntimeFailure

    original = annotate.annotate_source

    def annotate_source(spec, detector, options, *args, frames=None, **kwargs):
        try:
            plan = json.loads(Path(faults).read_text())
        except (OSError, ValueError):
            plan = {}
        times = plan.get(f"{spec.name}:{frames.start}", 0) if frames is not None else 0
        failed = len(list(Path(options.out_dir).glob("failed-*")))
        if failed < times:
            (Path(options.out_dir) / f"failed-{failed}").touch()
            raise RuntimeFailure("injected failure (test only)")
        return original(spec, detector, options, *args, frames=frames, **kwargs)

    annotate.annotate_source = annotate_source


_install()
