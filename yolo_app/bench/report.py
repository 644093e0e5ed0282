"""The benchmark's figures, computed only from what was measured (``Measured``), and its table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from yolo_app.bench.processes import ProcessRun


@dataclass(frozen=True)
class Measured:
    """Everything one ``yolo-app bench`` measured. ``steps``: each whole-process step's runs, by name:
    ``ultralytics`` (the .pt, Ultralytics' defaults), ``annotate`` and ``annotate_novideo`` (ours on the
    chosen backend), and each equal-terms pair named in ``pairs`` (backend -> (our step, Ultralytics' step)),
    ``ultralytics_same_backend`` being Ultralytics' half of the chosen backend's pair."""

    frames: int
    steps: dict[str, list[ProcessRun]]
    pairs: dict[str, tuple[str, str]]
    bare_fps: float
    live: dict[str, float | int] = field(default_factory=dict)


def figures(m: Measured) -> dict:
    """FPS from the median wall time of each step; ratios of those; efficiency from annotate's own run
    time; start-up and the first result from the --no-video runs."""
    wall = {k: statistics.median(r.wall_s for r in runs) for k, runs in m.steps.items()}
    fps = {k: m.frames / w for k, w in wall.items()}
    run_s = {k: statistics.median(r.run_s for r in m.steps[k]) for k in ("annotate", "annotate_novideo")}
    run_fps = {k: m.frames / s for k, s in run_s.items()}
    ours = [r for k in ("annotate", "annotate_novideo") for r in m.steps[k]]
    return {
        "frames": m.frames,
        "ultralytics_fps": round(fps["ultralytics"], 2),
        "ultralytics_same_backend_fps": round(fps["ultralytics_same_backend"], 2),
        "inference_fps": round(m.bare_fps, 2),
        "pipeline_fps": round(fps["annotate"], 2),
        "pipeline_novideo_fps": round(fps["annotate_novideo"], 2),
        "ratio": round(fps["annotate"] / fps["ultralytics"], 3),
        "ratio_novideo_same_backend": round(fps["annotate_novideo"] / fps["ultralytics_same_backend"], 3),
        "equal_terms": {b: round(fps[our] / fps[their], 3) for b, (our, their) in m.pairs.items()},
        "equal_terms_fps": {b: {"yolo_app": round(fps[our], 2), "ultralytics": round(fps[their], 2)}
                            for b, (our, their) in m.pairs.items()},
        "run_fps": round(run_fps["annotate"], 2),
        "run_novideo_fps": round(run_fps["annotate_novideo"], 2),
        "startup_s": round(wall["annotate_novideo"] - run_s["annotate_novideo"], 2),
        "first_result_s": round(statistics.median(r.first_result_s for r in m.steps["annotate_novideo"]), 2),
        "efficiency": round(run_fps["annotate"] / m.bare_fps, 3),
        "efficiency_novideo": round(run_fps["annotate_novideo"] / m.bare_fps, 3),
        "efficiency_whole": round(fps["annotate"] / m.bare_fps, 3),
        "efficiency_novideo_whole": round(fps["annotate_novideo"] / m.bare_fps, 3),
        **m.live,
        "peak_rss_mb": round(max(r.peak_rss_mb for r in ours), 1),
        # Counted inside the annotate runs (--cpu-report): the network's share of the process's CPU time.
        "network_cpu_share": round(statistics.median(r.network_cpu_share for r in m.steps["annotate"]), 3),
        "network_cpu_share_novideo": round(statistics.median(r.network_cpu_share
                                                             for r in m.steps["annotate_novideo"]), 3),
        "stage_cpu_ms": _median_stages(m.steps["annotate"]),
        "stage_cpu_ms_novideo": _median_stages(m.steps["annotate_novideo"]),
    }


def _median_stages(runs: list[ProcessRun]) -> dict[str, float]:
    stages = [r.stage_cpu_ms for r in runs]
    return {name: round(statistics.median(s[name] for s in stages), 2) for name in stages[0]}


def table(r: dict) -> str:
    rows = [
        ("Ultralytics predict(stream=True), .pt, defaults", r["ultralytics_fps"], "", "1.00x"),
        (f"Ultralytics predict(stream=True), {r['backend']} export", r["ultralytics_same_backend_fps"], "", ""),
        (f"{r['backend']} bare inference, {r['input_hw'][0]}x{r['input_hw'][1]} (the ceiling)",
         r["inference_fps"], "", ""),
        ("yolo-app annotate (annotated MP4 + JSONL)", r["pipeline_fps"], r["run_fps"], f"{r['ratio']:.2f}x"),
        ("yolo-app annotate --no-video (JSONL)", r["pipeline_novideo_fps"], r["run_novideo_fps"],
         f"{r['ratio_novideo_same_backend']:.2f}x same backend"),
    ]
    width = max(len(name) for name, *_ in rows)
    lines = [
        f"video {Path(r['video']).name}: {r['frames']} frames, {r['weights']}, imgsz {r['imgsz']}, backend "
        f"{r['backend']} {r['precision']}, {r['device']}, median of {r['runs']} run(s)",
        f"{'what'.ljust(width)}  {'FPS':>7}  {'run FPS':>7}  ratio (whole process)",
    ]
    lines += [f"{name.ljust(width)}  {value:7.1f}  {f'{run:7.1f}' if run else '':>7}  {ratio}"
              for name, value, run, ratio in rows]
    lines.append("FPS: frames / whole-process wall time (imports, model load, warm-up, every frame); run FPS: "
                 f"annotate's own frame rate, without its {r['startup_s']:.1f} s of start-up; first boxes "
                 f"{r['first_result_s']:.1f} s after the process started")
    lines.append("equal terms (annotate --no-video vs Ultralytics predict, same model file, backend and "
                 "precision, whole process): " + ", ".join(
                     f"{b} {r['equal_terms'][b]:.2f}x ({f['yolo_app']:.1f} vs {f['ultralytics']:.1f} FPS)"
                     for b, f in r["equal_terms_fps"].items()))
    lines.append(f"the network's share of the CPU time: {r['network_cpu_share']:.2f} with video, "
                 f"{r['network_cpu_share_novideo']:.2f} without; the other stages, CPU ms a frame with video: "
                 + ", ".join(f"{k} {v:.1f}" for k, v in r["stage_cpu_ms"].items()))
    lines.append(f"efficiency (run FPS / bare inference FPS): {r['efficiency']:.2f} with video, "
                 f"{r['efficiency_novideo']:.2f} without; whole process {r['efficiency_whole']:.2f} / "
                 f"{r['efficiency_novideo_whole']:.2f}; peak memory {r['peak_rss_mb']:.0f} MB")
    lines.append(f"live mode (real-time playback, newest frame wins, {r['live_frames']} frames): latency p50 "
                 f"{r['latency_p50_ms']:.0f} ms, p95 {r['latency_p95_ms']:.0f} ms (budget {r['latency_budget_ms']:.0f} "
                 f"ms = one inference + one frame period), {r['live_dropped']} frames dropped")
    if "heads" in r:
        labels = {"nms": "one-to-many head + NMS", "end2end": "one-to-one head, NMS-free (top-k)"}
        lines.append(f"heads ({r['backend']}, one frame at a time on the same {r['heads']['nms']['frames']} frames): "
                     + "; ".join(f"{labels[head]}: network {h['network_ms']:.1f} ms + selection "
                                 f"{h['selection_ms']:.2f} ms, {h['fps']:.1f} FPS" for head, h in r["heads"].items()))
    if "int8_speedup" in r:
        lines.append(f"int8 (OpenVINO, quantized on this video): {r['int8_fps']:.1f} vs fp32 {r['fp32_fps']:.1f} FPS "
                     f"bare ({r['int8_speedup']:.2f}x); keeps {r['int8_agreement']:.1%} of fp32's boxes above 0.4 "
                     f"(same class, IoU >= 0.9): {r['int8_boxes_compared']} boxes on {r['int8_frames_compared']} "
                     f"frames; per class: " + ", ".join(
                         f"{name} {share:.0%}" for name, share in r["int8_agreement_per_class"].items()))
    lines.append(f"cpu: {r['cpu']}")
    lines.append(", ".join(f"{k} {v}" for k, v in r["versions"].items()))
    return "\n".join(lines)
