"""``yolo-app bench``: whole processes of Ultralytics and of ours on one video (``run``), timed
(``processes``), with what is measured in-process (``inprocess``), turned into figures and a table
(``report``)."""

from yolo_app.bench.run import SHARED_VIDEO, BenchSettings, run_bench

__all__ = ["SHARED_VIDEO", "BenchSettings", "run_bench"]
