"""``make bench-counts``: are the monitor's counts right? It runs the monitor over each shared video that has a
ground truth counted by hand (tests/data/counts/*.json: the classes watched, the objects of those classes that
appear, each line crossing with its direction and class, the stretches with nothing in view), once with
default settings and once with the filters the README recommends, and prints per run: crossings counted vs
true per line, direction and class; object_seen events vs distinct objects (missed, duplicated, false);
events per hour on the empty stretches. Last, one JSON line with every figure.

    python tests/bench_counts.py [--videos DIR] [--weights yolov8n.pt] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRUTHS = HERE / "data" / "counts"
VIDEOS = HERE.parent.parent / "shared" / "videos"
# What the README recommends against false alerts: Frigate's defaults for its own filters.
RECOMMENDED = {"objects": {"min_score": 0.5, "threshold": 0.7}}
PROFILES = {"default": {}, "recommended": RECOMMENDED}
MATCH_FRAMES = 15  # an event this close to a true object's first or last frame is about it (tracks start late)


def run_monitor(truth: dict, video: Path, profile: dict, weights: str, backend: str, model) -> list[tuple]:
    """The monitor over the whole video, every frame; (event, frame index) for each event it raised."""
    from yolo_app.monitor.config import load_config
    from yolo_app.monitor.runner import Monitor

    with tempfile.TemporaryDirectory(prefix="yolo_app_counts_") as tmp:
        config = Path(tmp) / "monitor.yaml"
        config.write_text(json.dumps({
            "model": weights, "backend": backend, "storage": str(Path(tmp) / "data"),
            "cameras": [{"name": "cam", "source": str(video), "realtime": False, "classes": truth["classes"],
                         **profile,
                         "zones": [{"name": n, "polygon": p} for n, p in truth["zones"].items()],
                         "lines": [{"name": n, "points": p} for n, p in truth["lines"].items()],
                         "alerts": [{"on": "object_seen", "snapshot": False}]}]}))
        monitor = Monitor(load_config(config), model=model)
        raised: list[tuple] = []
        lock = threading.Lock()

        def note(event) -> None:  # on the camera's thread, right after the frame it is about
            latest = monitor.cameras["cam"].latest
            with lock:
                raised.append((event, latest.frame.index if latest is not None else -1))

        monitor.listeners.append(note)
        monitor.start()
        try:
            monitor.wait()
        finally:
            monitor.stop()
        return raised, monitor.model


def score(truth: dict, raised: list[tuple]) -> dict:
    fps = truth["fps"]
    true_cross = Counter((c["line"], c["direction"], c["class"]) for c in truth["crossings"])
    got_cross = Counter((e.zone, e.direction, e.label) for e, _ in raised if e.type == "line_cross")
    crossings = {f"{line} {d} {cls}": {"counted": got_cross.get((line, d, cls), 0), "true": n}
                 for (line, d, cls), n in sorted((true_cross | got_cross).items())}
    for key in got_cross.keys() - true_cross.keys():
        crossings[f"{key[0]} {key[1]} {key[2]}"] = {"counted": got_cross[key], "true": 0}
    seen = [(e, frame) for e, frame in raised if e.type == "object_seen"]
    per_object = Counter()
    false = 0
    for event, frame in seen:  # each event to the nearest-starting true object of its class in view then, one each
        about = sorted((i for i, o in enumerate(truth["objects"]) if o["class"] == event.label
                        and o["first"] - MATCH_FRAMES <= frame <= o["last"] + MATCH_FRAMES),
                       key=lambda i: abs(truth["objects"][i]["first"] - frame))
        if not about:
            false += 1
            continue
        free = [i for i in about if i not in per_object]
        per_object[free[0] if free else about[0]] += 1
    objects = len(truth["objects"])
    empty_frames = sum(b - a + 1 for a, b in truth["empty"])
    on_empty = sum(1 for _, frame in raised if any(a <= frame <= b for a, b in truth["empty"]))
    return {
        "crossings": crossings,
        "crossings_exact": all(v["counted"] == v["true"] for v in crossings.values()),
        "object_seen": len(seen), "objects": objects, "missed": objects - len(per_object),
        "duplicates": sum(n - 1 for n in per_object.values()), "false_objects": false,
        "empty_seconds": round(empty_frames / fps, 1), "events_on_empty": on_empty,
        "false_alerts_per_hour": round(on_empty / (empty_frames / fps) * 3600, 1) if empty_frames else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--weights", default="yolov8n.pt")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from yolo_app.settings import set_process_env

    set_process_env()
    results = []
    model = None
    for path in sorted(TRUTHS.glob("*.json")):
        truth = json.loads(path.read_text())
        video = args.videos / truth["video"]
        if not video.is_file():
            print(f"bench-counts: no {video} (the shared videos)", file=sys.stderr)
            return 2
        for name, profile in PROFILES.items():
            raised, model = run_monitor(truth, video, profile, args.weights, args.backend, model)
            results.append({"video": truth["video"], "settings": name, **score(truth, raised)})
    from yolo_app.engine.cpu import cpu_description

    print(f"bench-counts on {cpu_description()}, {args.weights}, backend {args.backend}")
    print(f"{'video':<34} {'settings':<12} {'crossings (counted/true)':<34} {'object_seen/objects':<20} "
          f"{'missed':>6} {'dup':>4} {'false':>5} {'alerts/h on empty':>17}")
    for r in results:
        cross = ", ".join(f"{k} {v['counted']}/{v['true']}" for k, v in r["crossings"].items()) or "-"
        rate = "-" if r["false_alerts_per_hour"] is None else f"{r['false_alerts_per_hour']} ({r['events_on_empty']})"
        print(f"{r['video']:<34} {r['settings']:<12} {cross:<34} {r['object_seen']:>3} / {r['objects']:<14} "
              f"{r['missed']:>6} {r['duplicates']:>4} {r['false_objects']:>5} {rate:>17}")
    print(json.dumps({"machine": cpu_description(), "recommended": RECOMMENDED, "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
