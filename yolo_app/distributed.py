"""``yolo-app annotate --ray``: the same annotate run, spread over a Ray cluster.

Each file is a task; a video longer than ``--ray-chunk`` frames is split into frame ranges, each a
task of its own (``annotate_source`` over ``FrameRange(a, b)``, which continues the reader exactly
after frame ``a - 1`` by container timestamp, as a resumed run does). Workers write straight into
the output folder, which every node must see (a shared filesystem): a range's outputs go to
``NAME.ray/AAAAAAAA-BBBBBBBB/``, and when all ranges of a file are done the driver stitches them:
one header line and every range's lines in frame order (byte for byte the record of a run on one
machine), and the ranges' videos joined packet by packet with the source's audio.

Failures are per task: a crashed worker is retried by Ray (``max_retries``), a task that raised is
retried here (``APP_RETRIES``); bad input (a ``UserError``) is not retried. A file whose task still
fails is reported failed and the others complete. ``--resume`` skips finished files and, in a split
file, the ranges whose outputs are complete, then stitches. With ``--track`` files are never split:
a tracker's ids depend on every frame before.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.types import SourceInfo, SourceKind
from yolo_app.errors import EXIT_INTERRUPTED, RuntimeFailure, UserError, YoloAppError, describe
from yolo_app.settings import AnnotateSettings

# The engine (and torch) loads when work starts, so that a bad --ray address fails in a second.
if TYPE_CHECKING:
    from yolo_app.annotate import AnnotateReport, FrameRange
    from yolo_app.annotate_job import FileOutcome, JobResult

log = logging.getLogger(__name__)

LOCAL = "local"  # --ray without an address: start (or attach to) a Ray on this machine
DEFAULT_CHUNK = 3000  # frames per range task: 12 checkpoint segments; minutes of work on a CPU, seconds on a GPU
APP_RETRIES = 2  # a task that raised runs again this many times
CRASH_RETRIES = 2  # Ray re-runs a task whose worker process died this many times
REACH_TIMEOUT_S = 5.0
SETUP_TIMEOUT_S = 900.0  # the first model load on a worker may export a backend (a minute or more)
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Task:
    """One unit of work: a whole source, or a frame range of a video (written to ``work_dir``)."""

    number: int  # 1-based over the job
    spec: SourceSpec
    frames: FrameRange | None = None
    work_dir: Path | None = None

    def label(self, total: int) -> str:
        where = f" frames {self.frames.start}-{self.frames.stop - 1}" if self.frames else ""
        return f"task {self.number}/{total} {self.spec.name}{where}"


@dataclass
class TaskResult:
    """What a task sends back to the driver; failures are values, not exceptions."""

    error: str | None = None
    exit_code: int = 0
    retry: bool = False  # whether running it again may help
    seconds: float = 0.0
    frames: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)


# ---- on the workers ----

_SETUPS: dict[AnnotateSettings, Any] = {}  # per worker process: the detector of each setup, reused by its next tasks


def _setup(setup: AnnotateSettings):
    if setup not in _SETUPS:
        from yolo_app.factory import build_annotate
        from yolo_app.settings import set_process_env

        set_process_env()  # a worker is a process of ours too: before its first model load imports Ultralytics
        _SETUPS[setup] = build_annotate(setup)
    return _SETUPS[setup]


def describe_setup(setup: AnnotateSettings) -> tuple[str, dict] | TaskResult:
    """Load the model on a worker: its description line and the record header's model fields."""
    from yolo_app.annotate import record_header
    from yolo_app.engine.record import MADE_BY

    try:
        detector, options = _setup(setup)
    except YoloAppError as exc:
        return TaskResult(error=str(exc), exit_code=exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - one line for the driver
        return TaskResult(error=describe(exc), exit_code=1)
    model = detector.model
    info = SourceInfo(SourceKind.VIDEO, "", 0, 0, None, None, live=True)
    header = {k: v for k, v in record_header(info, detector, options).items() if k in MADE_BY}
    return f"{model.model_id} ({len(model.names)} classes) on {model.device} with {model.runtime}", header


def run_task(setup: AnnotateSettings, task: Task) -> TaskResult:
    from yolo_app.annotate import annotate_source

    began = time.monotonic()
    try:
        detector, options = _setup(setup)
        if task.frames is not None:
            task.work_dir.mkdir(parents=True, exist_ok=True)
            options = dataclasses.replace(options, out_dir=task.work_dir, resume=False, max_frames=None)
        report = annotate_source(task.spec, detector, options, frames=task.frames)
    except YoloAppError as exc:
        return TaskResult(str(exc), exc.exit_code, not isinstance(exc, UserError), time.monotonic() - began)
    except Exception as exc:  # noqa: BLE001 - reported per task and retried
        return TaskResult(describe(exc), 1, True, time.monotonic() - began)
    if not report.complete:
        return TaskResult("stopped before the end", 1, True, time.monotonic() - began)
    return TaskResult(seconds=time.monotonic() - began, frames=report.frames, per_class=dict(report.per_class),
                      summary=report.summary(), skipped=report.skipped, warnings=report.warnings)


# ---- on the driver ----

def connect(address: str) -> None:
    """Attach to the cluster (or start a local one): one UserError line when that fails."""
    import ray

    target = None if address == LOCAL else address
    if target not in (None, "auto"):
        _check_reachable(target)
    package = Path(__file__).resolve().parent
    # Our code travels with the job: workers need our dependencies installed, not this package.
    kwargs: dict[str, Any] = {"address": target, "log_to_driver": False, "logging_level": logging.ERROR,
                              "runtime_env": {"py_modules": [str(package)], "excludes": ["__pycache__"]}}
    if target is None:
        kwargs["include_dashboard"] = False
    where = "a local Ray" if target is None else f"the Ray cluster at {address}"
    # In this thread: Ray ties the processes it starts to the thread that started them. The address
    # was checked above, so an unreachable cluster fails in seconds.
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        raise UserError(f"cannot connect to {where}: {describe(exc)}") from None


def _check_reachable(address: str) -> None:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray {address}: expected auto, HOST:PORT (e.g. head:6379) or ray://HOST:10001")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def frame_times(path: str) -> list[float] | None:
    """Every frame's time in presentation order, from the container's packets (no decoding),
    computed as the reader computes them; None when a packet has no timestamp."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        start, base = stream.start_time or 0, stream.time_base
        pts = []
        for packet in container.demux(stream):
            if packet.size == 0:  # the end-of-stream marker
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
    return [float((p - start) * base) for p in sorted(pts)]


@dataclass
class FileRun:
    """The driver's bookkeeping for one source."""

    spec: SourceSpec
    tasks: list[Task] = field(default_factory=list)
    first_times: list[float] = field(default_factory=list)  # split files: each range's first frame time
    work: Path | None = None  # split files: NAME.ray
    results: list[TaskResult] = field(default_factory=list)
    errors: list[TaskResult] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    @property
    def split(self) -> bool:
        return self.work is not None


class RayAnnotateJob:
    def __init__(self, settings: AnnotateSettings, specs: list[SourceSpec]) -> None:
        self.settings = settings
        self.specs = [_absolute(s) for s in specs]
        self.out = Path(settings.out_dir).resolve()
        self.chunk = settings.ray_chunk or DEFAULT_CHUNK

    def setup(self, gpus: float) -> AnnotateSettings:
        """The settings each worker builds its detector from: paths absolute (workers have other working
        folders and no search path), the GPU Ray gives a task (as cuda:0)."""
        model = self.settings.model
        try:
            from yolo_app.engine.models import resolve_weights

            model = dataclasses.replace(model, weights=str(resolve_weights(model.weights).resolve()))
        except YoloAppError:
            pass  # not here: the workers' own search path may have it
        if gpus:
            model = dataclasses.replace(model, device="cuda")
        return dataclasses.replace(self.settings, out_dir=self.out, model=model)

    def run(self) -> int:
        import ray

        from yolo_app.annotate_job import FileOutcome, JobResult

        wants_gpu = self.settings.model.device not in ("cpu", "mps")
        gpus = 1 if wants_gpu and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        setup = self.setup(gpus)
        options = {"num_cpus": 1, "num_gpus": gpus, "max_retries": CRASH_RETRIES, "retry_exceptions": False}
        described = ray.remote(describe_setup).options(**options).remote(setup)
        try:
            ready = ray.get(described, timeout=SETUP_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise UserError(f"no Ray worker loaded the model within {SETUP_TIMEOUT_S:.0f} s (are there free "
                            f"CPUs{' and GPUs' if gpus else ''}?)") from None
        if isinstance(ready, TaskResult):
            raise (UserError if ready.exit_code == 2 else RuntimeFailure)(f"on the Ray workers: {ready.error}")
        line, header = ready
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        print(f"{line}, on Ray: {nodes} node(s), {ray.cluster_resources().get('CPU', 0):.0f} CPUs, "
              f"{gpus and ray.cluster_resources().get('GPU', 0):.0f} GPUs", flush=True)
        result = JobResult([])
        files: list[FileRun] = []
        for spec in self.specs:
            try:
                files.append(self.plan(spec, header))
            except YoloAppError as exc:
                self._failed(result, FileOutcome(spec, error=str(exc), exit_code=exc.exit_code))
        number = iter(range(1, 1 + sum(len(f.tasks) for f in files)))
        for f in files:
            f.tasks = [dataclasses.replace(t, number=next(number)) for t in f.tasks]
        tasks = [t for f in files for t in f.tasks]
        remote = ray.remote(run_task).options(**options)
        pending = {remote.remote(setup, t): (t, 0) for t in tasks}
        owner = {id(t): f for f in files for t in f.tasks}
        for f in files:
            if not f.tasks:  # a split file whose ranges are all done already (--resume)
                self._finish(result, f)
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                task, attempt = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    res = TaskResult(f"worker lost after {CRASH_RETRIES} Ray retries: {describe(exc)}", 1)
                label = task.label(len(tasks))
                if res.error is not None and res.retry and attempt < APP_RETRIES:
                    print(f"{label}: failed, retrying ({attempt + 1}/{APP_RETRIES}): {res.error}", flush=True)
                    pending[remote.remote(setup, task)] = (task, attempt + 1)
                    continue
                f = owner[id(task)]
                if res.error is not None:
                    print(f"{label}: failed: {res.error}", flush=True)
                    f.errors.append(res)
                else:
                    state = "already complete, skipped (--resume)" if res.skipped else f"done {res.seconds:.1f} s"
                    print(f"{label}: {state}", flush=True)
                    f.results.append(res)
                if len(f.results) + len(f.errors) == len(f.tasks):
                    self._finish(result, f)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            print(f"yolo-app: interrupted; finished files and ranges are kept in {self.out} "
                  f"(add --resume to the same command to continue)", flush=True)
            return EXIT_INTERRUPTED
        print(f"{len(self.specs)} sources: {len(result.complete)} complete, {len(result.failed)} failed")
        return result.exit_code

    def plan(self, spec: SourceSpec, header: dict) -> FileRun:
        from yolo_app.annotate import FrameRange, output_paths
        from yolo_app.engine.record import made_alike
        from yolo_app.annotate_job import probe_frame_count

        run = FileRun(spec)
        count = probe_frame_count(spec) if spec.kind is SourceKind.VIDEO else None
        total = min(count, self.settings.max_frames or count) if count else None
        if total is None or total <= self.chunk or self.settings.track:
            run.tasks.append(Task(0, spec))
            return run
        times = frame_times(spec.uri)
        if times is None or len(times) != count:
            log.warning("%s: its packets do not give every frame's time; annotated as one task", spec.name)
            run.tasks.append(Task(0, spec))
            return run
        video_path, jsonl_path = output_paths(spec, self._options())
        run.work = self.out / f"{spec.name}.ray"
        source_header = {**header, "source": spec.uri}
        if self.settings.resume and not run.work.exists() and jsonl_path.is_file() and \
                (video_path.is_file() or not self.settings.video) and made_alike(jsonl_path, source_header):
            run.work = None  # complete: the worker's own --resume check reports it skipped
            run.tasks.append(Task(0, spec))
            return run
        ranges = [(a, min(a + self.chunk, total)) for a in range(0, total, self.chunk)]
        st = Path(spec.uri).stat()
        plan = {"version": 1, "source": [spec.uri, st.st_size, st.st_mtime_ns], "ranges": ranges, "header": header,
                "video": self.settings.video, "codec": self.settings.codec}
        old = _load_plan(run.work)
        if old is not None and self.settings.resume:
            changed = [k for k in plan if old.get(k) != json.loads(json.dumps(plan[k]))]
            if changed:
                raise UserError(f"cannot resume {spec.name}: {', '.join(changed)} differ from the interrupted run "
                                f"(run without --resume to start over)")
        else:
            if old is not None:
                log.warning("%s: starting over; the interrupted run's finished ranges are discarded (add --resume "
                            "to continue it)", spec.name)
            shutil.rmtree(run.work, ignore_errors=True)
            run.work.mkdir(parents=True)
            (run.work / PLAN_FILE).write_text(json.dumps(plan), encoding="utf-8")
        for a, b in ranges:
            run.first_times.append(times[a])
            work_dir = run.work / f"{a:08d}-{b:08d}"
            if self._range_done(spec, work_dir):
                continue
            run.tasks.append(Task(0, spec, FrameRange(a, b, times[a - 1] if a else None), work_dir))
        return run

    def _options(self):
        from yolo_app.annotate import AnnotateOptions

        return AnnotateOptions(out_dir=self.out, video=self.settings.video)

    def _range_done(self, spec: SourceSpec, work_dir: Path) -> bool:
        from yolo_app.annotate import output_paths

        video, jsonl = output_paths(spec, dataclasses.replace(self._options(), out_dir=work_dir))
        return jsonl.is_file() and (not self.settings.video or video.is_file())

    def _finish(self, result: JobResult, run: FileRun) -> None:
        from yolo_app.annotate import AnnotateReport, output_paths
        from yolo_app.annotate_job import FileOutcome

        outcome = FileOutcome(run.spec)
        if run.errors:
            worst = max(run.errors, key=lambda r: r.exit_code)
            kept = f" (finished ranges kept in {run.work.name} for --resume)" if run.split else ""
            what = f"{len(run.errors)} of {len(run.tasks)} tasks failed: " if run.split else ""
            outcome.error, outcome.exit_code = f"{what}{worst.error}{kept}", worst.exit_code
            return self._failed(result, outcome)
        try:
            if run.split:
                outcome.report = self.stitch(run)
            else:
                res = run.results[0]
                outcome.report = AnnotateReport(run.spec, frames=res.frames, seconds=res.seconds, complete=True,
                                                skipped=res.skipped, per_class=Counter(res.per_class))
                outcome.report.outputs = [p for p in output_paths(run.spec, self._options()) if p.exists()]
                outcome.report.warnings = res.warnings
            print(outcome.report.summary() if run.split else run.results[0].summary, flush=True)
            for warning in outcome.report.warnings:
                print(f"yolo-app: warning: {warning}", flush=True)
            if self.settings.exports:
                from yolo_app.export import export_record

                outcome.exported = export_record(output_paths(run.spec, self._options())[1],
                                                 list(self.settings.exports), self.out, self.settings.export_options)
                print("  exported: " + ", ".join(str(p) for p in outcome.exported), flush=True)
        except YoloAppError as exc:
            outcome.error, outcome.exit_code = str(exc), exc.exit_code
            return self._failed(result, outcome)
        result.outcomes.append(outcome)

    def _failed(self, result: JobResult, outcome: FileOutcome) -> None:
        print(f"yolo-app: error: {outcome.spec.name}: {outcome.error}", file=sys.stderr, flush=True)
        result.outcomes.append(outcome)

    def stitch(self, run: FileRun) -> AnnotateReport:
        """The record and video of a split file from its ranges, in frame order; then NAME.ray goes."""
        from yolo_app.annotate import AnnotateReport, output_paths
        from yolo_app.engine.record import RangePart, join_ranges
        from yolo_app.engine.remux import join_segments
        from yolo_app.engine.sinks import AtomicPath

        spec = run.spec
        plan = _load_plan(run.work)
        video_path, jsonl_path = output_paths(spec, self._options())
        parts = [dataclasses.replace(self._options(), out_dir=run.work / f"{a:08d}-{b:08d}") for a, b in plan["ranges"]]
        report = AnnotateReport(spec, complete=True)
        record = AtomicPath(jsonl_path)
        try:
            ranges = [RangePart(output_paths(spec, options)[1], a, b, first_time)
                      for (a, b), first_time, options in zip(plan["ranges"], run.first_times, parts)]
            for names in join_ranges(spec.name, ranges, record.part):
                report.frames += 1
                report.per_class.update(names)
            if self.settings.video:
                video = AtomicPath(video_path)
                segments = [output_paths(spec, options)[0] for options in parts]
                audio = spec.uri if spec.kind is SourceKind.VIDEO else None
                warning = join_segments(segments, video.part, audio)
                report.warnings = [warning] if warning else []
                report.outputs.append(video.finish(True))
        except BaseException:
            record.part.unlink(missing_ok=True)
            raise
        report.outputs.append(record.finish(True))
        report.seconds = time.monotonic() - run.began
        shutil.rmtree(run.work, ignore_errors=True)
        return report


def _load_plan(work: Path) -> dict | None:
    try:
        plan = json.loads((work / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and plan.get("version") == 1 else None


def _absolute(spec: SourceSpec) -> SourceSpec:
    """Workers run in folders of their own: every path they get is absolute."""
    if spec.kind in (SourceKind.CAMERA, SourceKind.STREAM):
        return spec
    return dataclasses.replace(spec, uri=str(Path(spec.uri).resolve()), paths=tuple(p.resolve() for p in spec.paths))


def annotate_on_ray(settings: AnnotateSettings, specs: list[SourceSpec]) -> int:
    live = [s.uri for s in specs if s.kind in (SourceKind.CAMERA, SourceKind.STREAM)]
    if live:
        raise UserError(f"--ray annotates files; {live[0]} is a live source (run it without --ray)")
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs the ray package (pip install ray)") from None
    connect(settings.ray)
    try:
        return RayAnnotateJob(settings, specs).run()
    finally:
        ray.shutdown()
