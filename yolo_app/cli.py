"""``yolo-app``: every command parses its options, builds settings, drives the engine and maps
failures to exit codes (0 ok, 1 runtime failure, 2 bad input or usage, 130 interrupted)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from yolo_app import __version__
from yolo_app.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError, YoloAppError
from yolo_app.settings import (BACKENDS, CODECS, DATASET_FORMATS, DEFAULT_CONF, DEFAULT_IMGSZ, DEFAULT_IOU,
                               DEFAULT_MAX_DET, DEFAULT_TOP_K, DEFAULT_WEIGHTS, EXPORT_FORMATS, FRAME_POLICIES,
                               PRECISIONS, AnnotateSettings, ClassifySettings, DetectionOptions, ExportOptions,
                               GridOverlay, GuiOptions, ModelSettings, parse_formats, set_process_env, split_names)

if TYPE_CHECKING:
    from yolo_app.engine.readers import FrameReader
    from yolo_app.engine.sources import SourceSpec

log = logging.getLogger("yolo_app")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


TRUST_HELP = ("load a checkpoint that needs full unpickling: only for a file you trust; a pickle can run code "
              "(default: a .pt loads only if it holds nothing but Ultralytics' own checkpoint format)")


def _add_trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-weights", action="store_true", help=TRUST_HELP)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", "-w", default=DEFAULT_WEIGHTS,
                   help="model path or name, searched in ./weights, the app's weights/ and $YOLO_APP_WEIGHTS "
                        "(default: %(default)s)")
    _add_trust_option(p)
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="what runs the network: auto (TensorRT or PyTorch on an NVIDIA GPU, OpenVINO or ONNX "
                        "Runtime on a CPU), torch, onnx, openvino, tensorrt; exports are cached (default: auto)")
    p.add_argument("--conf", type=float, default=DEFAULT_CONF, help="confidence threshold, 0-1 (default: %(default)s)")
    p.add_argument("--iou", type=float, default=DEFAULT_IOU, help="NMS IoU threshold, 0-1 (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ,
                   help="network input size, a multiple of 32 (default: %(default)s)")
    p.add_argument("--classes", default=None,
                   help="comma-separated class names or ids to keep, e.g. person,car or 0,2 (default: all)")
    p.add_argument("--max-det", type=_positive_int, default=DEFAULT_MAX_DET,
                   help="most detections kept per frame (default: %(default)s)")


def _add_classify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classify", default=None, metavar="ARCH[:WEIGHTS]",
                   help="second stage: classify each detection's crop, e.g. resnet50 (its ImageNet weights from "
                        "the weights folders), resnet50:my.pth, or a train-classifier checkpoint; labels read "
                        "'car 0.91 · sports car 0.72' (see yolo-app models)")
    p.add_argument("--classify-classes", default=None, metavar="NAMES",
                   help="with --classify: only these detector classes, comma-separated, e.g. car,dog "
                        "(default: all)")


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got '{text}'") from None


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                   help="network precision: auto = fp16 on a CUDA GPU; on a CPU, OpenVINO's own default (bf16 "
                        "where the CPU computes it natively, AMX or AVX512-BF16: about 2x faster, boxes within "
                        "~1 px of PyTorch's; what Ultralytics' OpenVINO runs use), fp32 elsewhere; fp32 = "
                        "PyTorch's numbers exactly; bf16 asks for bfloat16 on OpenVINO (default: %(default)s)")


def _add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--every", type=_positive_int, default=1, metavar="N",
                   help="coco, yolo, crops: keep every Nth frame (default: every frame)")
    p.add_argument("--min-conf", type=_fraction, default=0.0,
                   help="coco, yolo, crops: leave out detections below this confidence (default: keep all)")
    p.add_argument("--val-fraction", type=_fraction, default=0.2,
                   help="yolo: share of frames in the validation split, in blocks of consecutive frames "
                        "(default: %(default)s)")


def _add_annotate(commands: argparse._SubParsersAction) -> None:
    annotate = commands.add_parser(
        "annotate", help="detect objects in videos, images, folders, cameras or streams; write annotated "
                         "media and a JSONL record",
        description="Detect objects in SOURCE and write, per input NAME: NAME.annotated.mp4 (or "
                    "NAME.annotated.jpg for images) and NAME.detections.jsonl into --out.")
    annotate.add_argument("source", help="video or image file, folder, glob (quoted), camera index (0) or device "
                                         "(/dev/video0), rtsp:// rtmp:// http(s):// stream, or 'demo'")
    _add_model_options(annotate)
    annotate.add_argument("--out", "-o", type=Path, default=Path("runs/annotate"),
                          help="output folder (default: %(default)s)")
    annotate.add_argument("--max-frames", type=_positive_int, default=None,
                          help="stop after N frames per source (default: all; live sources run until Ctrl-C)")
    annotate.add_argument("--no-video", action="store_true", help="write only the JSONL detections")
    annotate.add_argument("--codec", default="auto", choices=CODECS,
                          help="video codec: auto = H.264 when available, else MPEG-4 (default: %(default)s)")
    annotate.add_argument("--frame-policy", choices=FRAME_POLICIES, default=None,
                          help="latest: drop old frames to keep up (live default); all: every frame, in "
                               "order (file default)")
    annotate.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K",
                          help="each detection's K best classes with their scores in the JSONL, as "
                               "\"top_classes\" (0: none; default: %(default)s)")
    annotate.add_argument("--grid-overlay", nargs="?", const="all", default=None, choices=["all", "8", "16", "32"],
                          help="draw the detector's grid on the video: a heat map of each cell's best class "
                               "score, the grid lines, the cells behind each box and the candidate counts; "
                               "optionally one stride (default: all)")
    annotate.add_argument("--grid-class", default=None, metavar="NAME",
                          help="with --grid-overlay: the heat map of this class's score instead of the best one")
    _add_classify_options(annotate)
    annotate.add_argument("--track", action="store_true",
                          help="add ByteTrack ids: labels '#12 person 0.91', \"track_id\" in the JSONL")
    annotate.add_argument("--export", default=None, metavar="FORMATS",
                          help=f"also write these formats beside the JSONL, comma-separated: {', '.join(EXPORT_FORMATS)} "
                               "(mot needs --track)")
    _add_export_options(annotate)
    annotate.add_argument("--batch", type=_positive_int, default=None,
                          help="frames per inference call when frames are waiting (default: 8 on a CUDA GPU, "
                               "where it doubles throughput; 8 with OpenVINO, whose streams then run several "
                               "frames at once; 1 otherwise)")
    _add_precision(annotate)
    annotate.add_argument("--resume", action="store_true",
                          help="continue an interrupted run from its last checkpoint (every 250 frames) with "
                               "identical results; sources whose outputs are complete are skipped")
    annotate.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                          help="run on a Ray cluster: files (and long videos in frame ranges) are tasks; no "
                               "ADDRESS starts a local Ray, else auto, HOST:6379 or ray://HOST:10001 (the output "
                               "folder, sources and weights must be on storage every node sees; see README)")
    annotate.add_argument("--ray-chunk", type=_positive_int, default=None, metavar="FRAMES",
                          help="with --ray: split videos longer than this into ranges of this many frames "
                               "(default: 3000; never with --track)")
    annotate.set_defaults(func=cmd_annotate)


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="make exports from a detections JSONL without running the model again",
        description="Read NAME.detections.jsonl (written by annotate) and write the chosen formats beside it: "
                    "csv -> NAME.detections.csv (one row per detection), mot -> NAME.mot.txt (MOT Challenge, "
                    "needs a record made with --track).")
    export.add_argument("record", type=Path, help="a NAME.detections.jsonl file")
    export.add_argument("--to", required=True, metavar="FORMATS", help=f"comma-separated: {', '.join(EXPORT_FORMATS)}")
    export.add_argument("--out", "-o", type=Path, default=None, help="output folder (default: beside the record)")
    _add_export_options(export)
    export.set_defaults(func=cmd_export)


def _add_gui(commands: argparse._SubParsersAction) -> None:
    gui = commands.add_parser(
        "gui", help="open the desktop window (also what plain `yolo-app` does)",
        description="Watch detections live: open a camera, file, folder, stream or the demo, pick a model, "
                    "tune thresholds, compare two models on the same frames.")
    gui.add_argument("source", nargs="?", default=None,
                     help="what to open first (default: the last source, else the demo)")
    gui.add_argument("--weights", "-w", default=None, help="model path or name (default: the last one, "
                                                          f"else {DEFAULT_WEIGHTS})")
    _add_trust_option(gui)
    gui.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: the last one)")
    gui.add_argument("--backend", default=None, choices=BACKENDS,
                     help="auto, torch, onnx, openvino or tensorrt (default: the last one, else auto)")
    gui.add_argument("--precision", default=None, choices=list(PRECISIONS),
                     help="network precision: auto, fp16, fp32 or bf16 (default: the last one, else auto; see "
                          "annotate --help)")
    gui.add_argument("--conf", type=float, default=None, help="confidence threshold, 0-1")
    gui.add_argument("--iou", type=float, default=None, help="NMS IoU threshold, 0-1")
    gui.add_argument("--compare", default=None, metavar="W2", help="a second model shown beside the first, "
                                                                   "on the same frames")
    _add_classify_options(gui)
    gui.add_argument("--screenshot", default=None, metavar="PATH",
                     help="with --quit-after: save a PNG of the whole window before quitting")
    gui.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                     help="close the window after this many seconds (for docs and tests)")
    gui.add_argument("--monitor", type=Path, default=None, metavar="CONFIG",
                     help="open the monitoring window of a monitor.yaml (zones, lines, live counts, events)")
    gui.set_defaults(func=cmd_gui)


def _add_models(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models", help="the model zoo: detectors and classifiers with published figures, and which are here",
        description="Lists detectors (YOLOv8, YOLOv9, YOLOv10, YOLO11, YOLO12 and YOLO26, with COCO mAP50-95 and "
                    "speed as published by Ultralytics) and "
                    "ImageNet classifiers (top-1 as published with their weights by torchvision, or timm), "
                    "with parameters and where each one's weights are on this machine.")
    models.add_argument("--kind", choices=["detector", "classifier"], default=None, help="only one kind")
    models.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    models.add_argument("--markdown", action="store_true", help="print a Markdown table (for README)")
    models.add_argument("--measure", action="store_true",
                        help="time each model whose weights are here: ms per image on --device")
    models.add_argument("--device", default="auto", help="for --measure: auto, cpu, cuda, cuda:N or mps")
    models.add_argument("--trust-weights", action="store_true", help="for --measure: " + TRUST_HELP)
    models.add_argument("--download", default=None, metavar="NAME",
                        help="fetch NAME's weights (a detector into weights/, a classifier into torch's "
                             "cache); needs a network")
    models.set_defaults(func=cmd_models)


def _add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="fine-tune a detector on a YOLO dataset (e.g. annotate --export yolo, corrected)",
        description="Fine-tunes --weights on DATA (a YOLO data.yaml) with Ultralytics' trainer; prints each "
                    "epoch and ends with the new weights' path and validation mAP50-95. The new weights work "
                    "at once in annotate, gui and monitor, with their own class names.")
    train.add_argument("--data", type=Path, required=True, help="the dataset's data.yaml")
    train.add_argument("--weights", "-w", default=DEFAULT_WEIGHTS, help="starting weights (default: %(default)s)")
    _add_trust_option(train)
    train.add_argument("--epochs", type=_positive_int, default=10, help="(default: %(default)s)")
    train.add_argument("--imgsz", type=int, default=640, help="training image size (default: %(default)s)")
    train.add_argument("--batch", type=_positive_int, default=8, help="images per step (default: %(default)s)")
    train.add_argument("--out", "-o", type=Path, default=Path("runs/train"),
                       help="run folder; the weights go to OUT/weights/best.pt (default: %(default)s)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    train.set_defaults(func=cmd_train)


def _add_train_classifier(commands: argparse._SubParsersAction) -> None:
    train_cls = commands.add_parser(
        "train-classifier", help="transfer-learn a classifier on a folder per class (e.g. annotate --export crops)",
        description="A pre-trained backbone, a new head for DATA's classes, a train/val split per class, "
                    "accuracy per epoch; the best epoch is saved as OUT/best.pt with its class names and "
                    "transforms, ready for --classify OUT/best.pt.")
    train_cls.add_argument("--data", type=Path, required=True, help="a folder with one folder of images per class")
    train_cls.add_argument("--arch", default="resnet50",
                           help="architecture (see yolo-app models; default: %(default)s)")
    train_cls.add_argument("--weights", "-w", default=None,
                           help="starting weights: a file (ImageNet state dict or a train-classifier checkpoint), "
                                "or none for random init (default: ARCH's ImageNet weights from the weights folders)")
    train_cls.add_argument("--epochs", type=_positive_int, default=5, help="(default: %(default)s)")
    train_cls.add_argument("--freeze", action="store_true", help="train only the new head (fast; small datasets)")
    train_cls.add_argument("--imgsz", type=_positive_int, default=None,
                           help="input size (default: the architecture's own, e.g. 224)")
    train_cls.add_argument("--batch", type=_positive_int, default=16, help="images per step (default: %(default)s)")
    train_cls.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    train_cls.add_argument("--val-fraction", type=_fraction, default=0.2,
                           help="share of each class held out for validation (default: %(default)s)")
    train_cls.add_argument("--out", "-o", type=Path, default=Path("runs/classifier"), help="(default: %(default)s)")
    train_cls.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    train_cls.set_defaults(func=cmd_train_classifier)


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench", help="compare Ultralytics' predict with our annotate on one video (FPS and ratio)",
        description="Times Ultralytics YOLO.predict(stream=True) and `yolo-app annotate` (with video and "
                    "JSONL, and --no-video) on the same video, each as a whole process, and prints FPS "
                    "and ratios.")
    bench.add_argument("source", nargs="?", default=None,
                       help="video file or demo (default: the person video in ../shared/videos, else the demo)")
    bench.add_argument("--weights", "-w", default=DEFAULT_WEIGHTS, help="model path or name (default: %(default)s)")
    _add_trust_option(bench)
    bench.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ, help="network input size (default: %(default)s)")
    bench.add_argument("--backend", default="auto", choices=BACKENDS,
                       help="the backend our annotate runs, and Ultralytics' same-backend run uses (default: auto)")
    bench.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    _add_precision(bench)
    bench.add_argument("--runs", type=_positive_int, default=1,
                       help="repeat each measurement and report the median (default: %(default)s)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="yolo-app", description="Real-time video object detection with Ultralytics YOLO.")
    parser.add_argument("--version", action="version", version=f"yolo-app {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_annotate(commands)
    _add_export(commands)
    _add_gui(commands)
    _add_models(commands)
    _add_train(commands)
    _add_train_classifier(commands)
    _add_bench(commands)

    from yolo_app.monitor.cli import add_commands as add_monitor_commands

    add_monitor_commands(commands)
    return parser


def model_settings(args: argparse.Namespace) -> ModelSettings:
    return ModelSettings(args.weights, args.device, args.backend, getattr(args, "precision", "auto"),
                         args.trust_weights)


def annotate_settings(args: argparse.Namespace) -> AnnotateSettings:
    """``annotate``'s options as typed settings; every check of their values happens here or in them."""
    if args.grid_class and not args.grid_overlay:
        raise UserError("--grid-class needs --grid-overlay")
    if args.classify_classes and not args.classify:
        raise UserError("--classify-classes needs --classify")
    grid = None
    if args.grid_overlay:
        grid = GridOverlay(None if args.grid_overlay == "all" else int(args.grid_overlay), args.grid_class)
    return AnnotateSettings(
        sources=(args.source,), out_dir=args.out, model=model_settings(args),
        detection=DetectionOptions(args.conf, args.iou, args.imgsz, args.max_det, split_names(args.classes)),
        classify=ClassifySettings(args.classify, split_names(args.classify_classes)) if args.classify else None,
        grid=grid, track=args.track, top_k=args.top_k, video=not args.no_video, max_frames=args.max_frames,
        codec=args.codec, frame_policy=args.frame_policy, batch=args.batch, resume=args.resume,
        exports=parse_formats(args.export), export_options=_export_options(args), ray=args.ray,
        ray_chunk=args.ray_chunk)


def cmd_annotate(args: argparse.Namespace) -> int:
    # Sources, exports and the output folder are checked and the first source opened before the model
    # loads: bad input fails in seconds, not after an hour of footage.
    from yolo_app.engine.readers import open_reader
    from yolo_app.engine.sinks import prepare_out_dir
    from yolo_app.engine.sources import parse_source
    from yolo_app.engine.types import SourceKind

    settings = annotate_settings(args)
    specs = parse_source(args.source)
    needs_frames = [f for f in settings.exports if f in DATASET_FORMATS]
    if needs_frames and specs[0].kind in (SourceKind.CAMERA, SourceKind.STREAM):
        raise UserError(f"--export {','.join(needs_frames)} needs the source's frames again, and a live source "
                        f"cannot be read twice: record it to a file first, then annotate that")
    prepare_out_dir(settings.out_dir)
    if settings.ray is not None:
        from yolo_app.distributed import annotate_on_ray

        return annotate_on_ray(settings, specs)
    # A folder: each file is opened in turn, and a bad one is reported and skipped.
    first_reader = open_reader(specs[0]) if len(specs) == 1 else None
    try:
        return _annotate_specs(settings, specs, first_reader)
    finally:
        if first_reader is not None:
            first_reader.close()  # no-op when the pipeline already closed it


def _export_options(args: argparse.Namespace) -> ExportOptions:
    return ExportOptions(every=args.every, min_conf=args.min_conf, val_fraction=args.val_fraction)


def _annotate_specs(settings: AnnotateSettings, specs: list[SourceSpec], first_reader: FrameReader | None) -> int:
    from yolo_app.annotate_job import AnnotateJob, FileOutcome
    from yolo_app.factory import build_annotate
    from yolo_app.terminal import TerminalProgress

    detector, options = build_annotate(settings)
    model, stage = detector.model, options.classify
    print(f"{model.model_id} ({len(model.names)} classes) on {model.device} with {model.runtime}", flush=True)
    if stage is not None:
        print(f"classifying crops with {stage.classifier.name} ({len(stage.classifier.classes)} classes)", flush=True)
    progress = TerminalProgress(len(specs))

    def report(outcome: FileOutcome) -> None:
        progress.close_file()
        if outcome.error is not None and len(specs) == 1:
            return  # raised below as the command's error
        if outcome.report is not None:
            progress.write(outcome.report.summary())
            for warning in outcome.report.warnings:
                print(f"yolo-app: warning: {warning}", file=sys.stderr)
        if outcome.exported:
            progress.write("  exported: " + ", ".join(str(p) for p in outcome.exported))
        if outcome.error is not None:  # one bad file must not stop the others
            print(f"yolo-app: error: {outcome.spec.name}: {outcome.error}", file=sys.stderr)

    job = AnnotateJob(specs, detector, options, list(settings.exports), settings.export_options,
                      on_progress=progress, on_outcome=report, first_reader=first_reader)
    try:
        result = job.run()
    except KeyboardInterrupt:
        progress.close()
        print(f"yolo-app: interrupted; partial outputs kept as *.partial.* in {settings.out_dir} "
              f"(add --resume to the same command to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.close()
    if len(specs) == 1 and result.failed:
        failed = result.failed[0]
        print(f"yolo-app: error: {failed.error}", file=sys.stderr)
        return failed.exit_code
    if len(specs) > 1:
        print(f"{len(specs)} sources: {len(result.complete)} complete, {len(result.failed)} failed")
    return result.exit_code


def cmd_export(args: argparse.Namespace) -> int:
    from yolo_app.engine.sinks import prepare_out_dir
    from yolo_app.export import export_record

    formats, options = parse_formats(args.to), _export_options(args)
    out_dir = prepare_out_dir(args.out) if args.out else None
    for path in export_record(args.record, list(formats), out_dir, options):
        print(path)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    import json

    from yolo_app.zoo import catalog

    if args.download:
        from yolo_app.zoo.download import download

        print(download(args.download))
        return EXIT_OK
    entries = catalog.zoo_table(args.kind)
    if args.measure:
        from yolo_app.zoo_timings import measure_all

        entries = measure_all(entries, args.device, report=lambda line: print(line, file=sys.stderr, flush=True),
                              trust=args.trust_weights)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=1))
        return EXIT_OK
    print(catalog.format_markdown(entries) if args.markdown else catalog.format_table(entries))
    for note in catalog.notes(entries):
        print(f"\n{note}" if args.markdown else note)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from yolo_app.zoo.train import train_detector

    outcome = train_detector(args.data, args.weights, args.epochs, args.imgsz, args.out, args.device, args.batch,
                             report=lambda line: print(line, flush=True), trust=args.trust_weights)
    print(f"weights: {outcome.weights} (validation {outcome.metric} {outcome.score:.3f}, {outcome.seconds:.0f} s)")
    return EXIT_OK


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from yolo_app.zoo.train import train_classifier

    outcome = train_classifier(args.data, args.arch, args.weights, args.epochs, args.out, freeze=args.freeze,
                               imgsz=args.imgsz, batch=args.batch, lr=args.lr, val_fraction=args.val_fraction,
                               device=args.device, report=lambda line: print(line, flush=True))
    print(f"weights: {outcome.weights} (best {outcome.metric} {outcome.score:.3f}, {outcome.seconds:.0f} s); "
          f"use it with --classify {outcome.weights}")
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    from yolo_app.gui.app import Launch, run_gui, run_monitor_gui

    options = GuiOptions(source=args.source, weights=args.weights, device=args.device, backend=args.backend,
                         precision=args.precision, conf=args.conf, iou=args.iou, compare=args.compare,
                         classify=args.classify, classify_classes=args.classify_classes,
                         trust_weights=args.trust_weights)
    launch = Launch(args.quit_after, Path(args.screenshot) if args.screenshot else None)
    if args.monitor is not None:
        return run_monitor_gui(args.monitor, launch, trust_weights=args.trust_weights)
    return run_gui(options, launch)


def cmd_bench(args: argparse.Namespace) -> int:
    from yolo_app.bench import BenchSettings, run_bench

    return run_bench(BenchSettings(args.source, model_settings(args), args.imgsz, args.runs, args.json))


def main(argv: list[str] | None = None) -> int:
    set_process_env()  # before anything loads Ultralytics or OpenCV; here, not on import
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed its line
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="yolo-app: %(levelname)s: %(message)s")
    if args.command is None:  # plain `yolo-app` opens the window
        args = parser.parse_args(["--debug", "gui"] if args.debug else ["gui"])
    try:
        return args.func(args)
    except YoloAppError as exc:
        if args.debug:
            log.exception("failed")
        print(f"yolo-app: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("yolo-app: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug still gets one line, and the traceback on --debug
        if args.debug:
            log.exception("internal error")
        print(f"yolo-app: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return EXIT_FAILURE


