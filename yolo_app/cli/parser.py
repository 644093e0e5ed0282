"""The command line's options: one small parser builder a command (the monitor's own in monitor/cli.py).
Usage errors are one line and exit code 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import yolo_app.cli.commands as handlers
from yolo_app import __version__
from yolo_app.errors import EXIT_USAGE
from yolo_app.settings import (BACKENDS, CODECS, DEFAULT_CONF, DEFAULT_IMGSZ, DEFAULT_IOU, DEFAULT_MAX_DET,
                               DEFAULT_TOP_K, DEFAULT_WEIGHTS, EXPORT_FORMATS, FRAME_POLICIES, NMS_CHOICES,
                               PRECISIONS, RTSP_TRANSPORTS)


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
                        "PyTorch's numbers exactly; bf16 asks for bfloat16 on OpenVINO; int8 quantizes the "
                        "network on your own footage (OpenVINO on the CPU, see --calibrate) (default: %(default)s)")
    p.add_argument("--calibrate", metavar="VIDEO|FOLDER", default=None,
                   help="--precision int8: the footage it is quantized on, a few hundred frames spread over it "
                        "(default for annotate: the video it processes); cached per model, size and footage")


NMS_HELP = ("which head a YOLOv10 or YOLO26 model runs, as Ultralytics' predict argument nms: auto = what its "
            "predict does with default arguments (the one-to-many head with NMS at --iou for a checkpoint with both "
            "heads; the one head a fused checkpoint or an export has); false = the one-to-one head, NMS-free (the "
            "end-to-end column of its mAP table, faster after the network); true = the one-to-many head with NMS")


def _add_nms(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument("--nms", default=default, choices=NMS_CHOICES, help=NMS_HELP + (
        " (default: %(default)s)" if default else " (default: the last one, else auto)"))


# What each --export/--to format writes; the zips are what CVAT's "Upload annotations" takes.
EXPORT_OUTPUTS = ("csv -> NAME.detections.csv (one row per detection); mot -> NAME.mot.txt (MOT Challenge); "
                  "coco -> NAME_coco/ (annotations/instances_default.json + images/default/, for pycocotools "
                  "and Datumaro) and NAME_coco.zip (the same, for CVAT: COCO 1.0); yolo -> NAME_yolo/ "
                  "(data.yaml for Ultralytics); cvat -> NAME.cvat.xml and NAME.cvat.zip (for CVAT: CVAT for "
                  "video 1.1); crops -> NAME_crops/<class>/")


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
    annotate.add_argument("--rtsp-transport", choices=RTSP_TRANSPORTS, default="tcp",
                          help="for rtsp:// sources: tcp (no lost packets on a busy network) or udp (what some "
                               "cameras and NVRs need) (default: %(default)s)")
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
                          help="also write these formats beside the JSONL, comma-separated: "
                               f"{', '.join(EXPORT_FORMATS)} (mot needs --track): {EXPORT_OUTPUTS}")
    _add_export_options(annotate)
    annotate.add_argument("--batch", type=_positive_int, default=None,
                          help="frames per inference call when frames are waiting (default: 8 on a CUDA GPU, "
                               "where it doubles throughput, and on a CPU, whose backend's streams then run "
                               "several frames at once; 1 on Apple MPS)")
    _add_precision(annotate)
    _add_nms(annotate)
    annotate.add_argument("--resume", action="store_true",
                          help="continue an interrupted run from its last checkpoint (every 250 frames) with "
                               "identical results; sources whose outputs are complete are skipped")
    annotate.add_argument("--cpu-report", action="store_true",
                          help="after each file, where the CPU time went: the network's share of the process's "
                               "CPU and every other stage's CPU ms a frame (decode, colour, letterbox, nms, record, "
                               "draw, encode)")
    annotate.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                          help="run on a Ray cluster: files (and long videos in frame ranges) are tasks; no "
                               "ADDRESS starts a local Ray, else auto, HOST:6379 or ray://HOST:10001 (the output "
                               "folder, sources and weights must be on storage every node sees; see README)")
    annotate.add_argument("--ray-chunk", type=_positive_int, default=None, metavar="FRAMES",
                          help="with --ray: split videos longer than this into ranges of this many frames "
                               "(default: 3000; never with --track)")
    annotate.set_defaults(func=handlers.cmd_annotate)


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="make exports from a detections JSONL without running the model again",
        description="Read NAME.detections.jsonl (written by annotate) and write the chosen formats beside it: "
                    f"{EXPORT_OUTPUTS}.")
    export.add_argument("record", type=Path, help="a NAME.detections.jsonl file")
    export.add_argument("--to", required=True, metavar="FORMATS", help=f"comma-separated: {', '.join(EXPORT_FORMATS)}")
    export.add_argument("--out", "-o", type=Path, default=None, help="output folder (default: beside the record)")
    _add_export_options(export)
    export.set_defaults(func=handlers.cmd_export)


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
    _add_nms(gui, default=None)
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
    gui.add_argument("--check", action="store_true",
                     help="only check that a window can open here (a display, the libraries Qt needs) and exit: "
                          "0, else non-zero and one line saying what is missing (what `make run` asks first)")
    gui.set_defaults(func=handlers.cmd_gui)


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
    models.add_argument("--calibrate", metavar="VIDEO", type=Path, default=None,
                        help="for --measure: also quantize each detector here to INT8 on VIDEO (OpenVINO, CPU) and "
                             "print its speed against fp32 and the share of fp32's confident boxes it keeps")
    models.add_argument("--download", default=None, metavar="NAME",
                        help="fetch NAME's weights (a detector into weights/, a classifier into torch's "
                             "cache); needs a network")
    models.set_defaults(func=handlers.cmd_models)


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
    train.set_defaults(func=handlers.cmd_train)


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
    train_cls.set_defaults(func=handlers.cmd_train_classifier)


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
    _add_nms(bench)
    bench.add_argument("--runs", type=_positive_int, default=1,
                       help="repeat each measurement and report the median (default: %(default)s)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.set_defaults(func=handlers.cmd_bench)


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
