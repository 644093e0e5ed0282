"""What each command does with its parsed options: build typed settings (no ``Namespace`` goes further),
call the engine or a front-end module, print what the user asked for."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from yolo_app.errors import EXIT_INTERRUPTED, EXIT_OK, UserError
from yolo_app.settings import (DATASET_FORMATS, AnnotateSettings, ClassifySettings, DetectionOptions, ExportOptions,
                               GridOverlay, GuiOptions, ModelSettings, StreamOptions, parse_formats, split_names)

if TYPE_CHECKING:
    from yolo_app.engine.readers import FrameReader
    from yolo_app.engine.sources import SourceSpec


def model_settings(args: argparse.Namespace) -> ModelSettings:
    return ModelSettings(args.weights, args.device, args.backend, getattr(args, "precision", "auto"),
                         args.trust_weights, getattr(args, "calibrate", None), getattr(args, "nms", "auto"))


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
        exports=parse_formats(args.export), export_options=_export_options(args),
        stream=StreamOptions(transport=args.rtsp_transport), ray=args.ray, ray_chunk=args.ray_chunk,
        cpu_report=args.cpu_report)


def cmd_annotate(args: argparse.Namespace) -> int:
    # Sources, exports and the output folder are checked and the first source opened before the model
    # loads: bad input fails in seconds, not after an hour of footage.
    from yolo_app.engine.readers import open_reader
    from yolo_app.engine.sinks import prepare_out_dir
    from yolo_app.engine.sources import parse_source
    from yolo_app.engine.types import SourceKind

    settings = annotate_settings(args)
    specs = parse_source(args.source, settings.stream)
    if settings.model.precision == "int8":  # checked before a camera is waited for or a model loaded
        from yolo_app.engine.models import int8_calibration
        from yolo_app.engine.quantize import default_footage

        model = settings.model
        if not model.calibration:
            model = dataclasses.replace(model, calibration=default_footage(specs[0]))
            settings = dataclasses.replace(settings, model=model)
        int8_calibration(model.calibration, model.backend, model.device)
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

    info = first_reader.info if first_reader is not None else None
    detector, options = build_annotate(settings, (info.height, info.width) if info is not None else None)
    model, stage = detector.model, options.classify
    print(f"{model.model_id} ({len(model.names)} classes) on {model.device} with {model.runtime}", flush=True)
    if stage is not None:
        print(f"classifying crops with {stage.classifier.name} ({len(stage.classifier.classes)} classes)", flush=True)
    progress = TerminalProgress(len(specs))
    first_told = False

    def report(outcome: FileOutcome) -> None:
        nonlocal first_told
        progress.close_file()
        if outcome.error is not None and len(specs) == 1:
            return  # raised below as the command's error
        if outcome.report is not None:
            progress.write(outcome.report.summary())
            if outcome.report.cpu is not None:
                progress.write(outcome.report.cpu.line())
            if outcome.report.first_result_s is not None and not first_told:
                first_told = True  # start-up as the user waits it: imports, model, exports the first time
                progress.write(f"first boxes {outcome.report.first_result_s:.1f} s after the command started")
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
                              trust=args.trust_weights, calibrate=args.calibrate)
    elif args.calibrate is not None:
        raise UserError("--calibrate goes with --measure")
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
    from yolo_app.gui.app import Launch, check_window, run_gui, run_monitor_gui

    if args.check:
        check_window()
        return EXIT_OK
    options = GuiOptions(source=args.source, weights=args.weights, device=args.device, backend=args.backend,
                         precision=args.precision, nms=args.nms, conf=args.conf, iou=args.iou, compare=args.compare,
                         classify=args.classify, classify_classes=args.classify_classes,
                         trust_weights=args.trust_weights)
    launch = Launch(args.quit_after, Path(args.screenshot) if args.screenshot else None)
    if args.monitor is not None:
        return run_monitor_gui(args.monitor, launch, trust_weights=args.trust_weights)
    return run_gui(options, launch)


def cmd_bench(args: argparse.Namespace) -> int:
    from yolo_app.bench import BenchSettings, run_bench

    return run_bench(BenchSettings(args.source, model_settings(args), args.imgsz, args.runs, args.json))
