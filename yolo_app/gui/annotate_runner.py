"""Runs the "Annotate videos…" dialog's job on a worker thread: parses the sources, loads its own model
through the detector factory (never the live view's detector) and runs an AnnotateJob. Everything it
reports arrives as a queued signal, so no widget is touched off the GUI thread."""

from __future__ import annotations

import dataclasses
import threading

from PyQt6.QtCore import QObject, pyqtSignal

from yolo_app.annotate_job import AnnotateJob
from yolo_app.engine.models import UntrustedWeights, resolve_weights
from yolo_app.engine.sources import parse_source
from yolo_app.errors import describe
from yolo_app.factory import build_annotate, follows_file
from yolo_app.gui.trust import NeedsTrust, TrustedFiles
from yolo_app.settings import AnnotateSettings


class JobRunner(QObject):
    """One run at a time on a worker thread."""

    started = pyqtSignal(int, str)  # files, "model on device"
    progress = pyqtSignal(object)  # JobProgress
    outcome = pyqtSignal(object)  # FileOutcome
    finished = pyqtSignal(object)  # JobResult
    failed = pyqtSignal(str)  # one line: the run could not start (a source, the model) or broke
    untrusted = pyqtSignal(object, str)  # the settings, their model file: it needs full unpickling (ask first)

    def __init__(self, parent: QObject | None = None, trusted: TrustedFiles | None = None) -> None:
        super().__init__(parent)
        self.trusted = trusted or TrustedFiles()
        self._thread: threading.Thread | None = None
        self._job: AnnotateJob | None = None
        self._cancel = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, settings: AnnotateSettings) -> None:
        self._cancel.clear()
        self._job = None
        # Not a daemon: exit must not cut a file's outputs off mid-write; closing the dialog cancels and joins.
        self._thread = threading.Thread(target=self._run, args=(settings,), name="annotate-job", daemon=False)
        self._thread.start()

    def cancel(self) -> None:
        """Stop now, also while the model loads; the current file is left partial and resumable."""
        self._cancel.set()
        job = self._job
        if job is not None:
            job.cancel()

    def join(self, timeout: float) -> bool:
        """Wait for the worker to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self, settings: AnnotateSettings) -> None:
        try:
            self._job = self._prepare(settings)
            if self._cancel.is_set():  # cancelled before the job existed: it returns at once
                self._job.cancel()
            result = self._job.run()
        except NeedsTrust as exc:
            self.untrusted.emit(settings, str(exc.path))
            return
        except Exception as exc:  # noqa: BLE001 - shown as one line, never a traceback
            self.failed.emit(describe(exc))
            return
        self.finished.emit(result)

    def _prepare(self, settings: AnnotateSettings) -> AnnotateJob:
        specs = [spec for text in settings.sources for spec in parse_source(text)]
        path = resolve_weights(settings.model.weights)
        model = follows_file(dataclasses.replace(settings.model, weights=str(path),
                                                 trust=settings.model.trust or self.trusted.allows(path)))
        try:
            detector, options = build_annotate(dataclasses.replace(settings, model=model))
        except UntrustedWeights as exc:
            raise NeedsTrust(path, str(exc)) from None
        loaded = detector.model
        self.started.emit(len(specs), f"{loaded.model_id} on {loaded.device} with {loaded.runtime}")
        return AnnotateJob(specs, detector, options, list(settings.exports), settings.export_options,
                           on_progress=self.progress.emit, on_outcome=self.outcome.emit)
