"""Retention: delete old evidence (snapshots, clips) by age, then oldest first down to a size cap.

Only ``storage/snapshots/**`` and ``storage/clips/**`` are touched, and only finished ``.jpg``/``.mp4``
files (a writer's ``*.partial*`` file is skipped; symlinks are never followed or deleted). The events
keep their rows: rows whose ``snapshot_path`` or ``clip_path`` named a deleted file get
``evidence_deleted_at``. Those paths are relative to ``storage`` in POSIX form
(``snapshots/door/2026-11-26/12-zone_enter.jpg``), the convention the evidence writer stores.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from yolo_app.monitor.events import EventStore

log = logging.getLogger(__name__)

EVIDENCE_DIRS = ("snapshots", "clips")
EVIDENCE_SUFFIXES = (".jpg", ".mp4")
GIB = 1024**3
MARK_BATCH = 200  # paths per store call: the store's lock is held for one batch, not for a whole purge


@dataclass(frozen=True)
class RetentionReport:
    files_deleted: int = 0
    bytes_freed: int = 0
    rows_marked: int = 0


@dataclass(frozen=True)
class _File:
    path: Path
    mtime: float
    size: int


def apply_retention(storage: Path, store: EventStore, *, days: float, max_gb: float, now: float | None = None,
                    cancel: threading.Event | None = None) -> RetentionReport:
    """One pass: files older than ``days``, then the oldest until the rest fit in ``max_gb`` GiB.

    ``now`` is a ``time.time()`` (tests pass one); ``cancel`` stops a long pass between two files.
    """
    storage = Path(storage)
    now = time.time() if now is None else now
    files = sorted(_evidence_files(storage), key=lambda f: (f.mtime, str(f.path)))
    cutoff = now - days * 86400
    old = [f for f in files if f.mtime < cutoff]
    kept = files[len(old):]  # sorted by mtime, so the old ones are a prefix
    excess = sum(f.size for f in kept) - max_gb * GIB
    doomed = list(old)
    for f in kept:
        if excess <= 0:
            break
        doomed.append(f)
        excess -= f.size

    deleted: list[str] = []
    freed = 0
    for f in doomed:
        if cancel is not None and cancel.is_set():
            break
        if _delete(f.path):
            deleted.append(f.path.relative_to(storage).as_posix())
            freed += f.size
    marked = sum(store.mark_evidence_deleted(deleted[i:i + MARK_BATCH]) for i in range(0, len(deleted), MARK_BATCH))
    _prune_empty_dirs(storage, {(storage / rel).parent for rel in deleted})
    return RetentionReport(files_deleted=len(deleted), bytes_freed=freed, rows_marked=marked)


def _evidence_files(storage: Path) -> list[_File]:
    found = []
    for name in EVIDENCE_DIRS:
        root = storage / name
        if not root.is_dir():
            continue
        for folder, _dirs, names in os.walk(root):  # followlinks=False: never leaves the evidence tree
            for filename in names:
                if ".partial" in filename or not filename.lower().endswith(EVIDENCE_SUFFIXES):
                    continue
                path = Path(folder) / filename
                try:
                    st = path.lstat()
                except FileNotFoundError:  # renamed or removed by a writer meanwhile
                    continue
                if path.is_symlink():
                    continue
                found.append(_File(path, st.st_mtime, st.st_size))
    return found


def _delete(path: Path) -> bool:
    """True when the file is gone (also when someone else removed it first)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("retention: cannot delete %s: %s", path, exc)
        return False
    return True


def _prune_empty_dirs(storage: Path, folders: set[Path]) -> None:
    """Remove emptied date (and camera) folders, never the evidence roots themselves."""
    roots = {storage / name for name in EVIDENCE_DIRS}
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        while folder not in roots and any(root in folder.parents for root in roots):
            try:
                folder.rmdir()  # fails on a folder that is not empty: that is the check
            except OSError:
                break
            folder = folder.parent


class RetentionWorker:
    """Runs ``apply_retention`` at start and then every ``interval_s`` on a daemon thread."""

    def __init__(self, storage: Path, store: EventStore, days: float, max_gb: float,
                 interval_s: float = 3600) -> None:
        self.storage = Path(storage)
        self.store = store
        self.days = days
        self.max_gb = max_gb
        self.interval_s = interval_s
        self.last_report: RetentionReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Returns within ``timeout``: a pass in progress stops after the file it is deleting."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = apply_retention(self.storage, self.store, days=self.days, max_gb=self.max_gb,
                                         cancel=self._stop)
                self.store.trim_changes()  # the change log's rows every way out has had
            except Exception:  # a full disk or a locked database must not end retention for the whole run
                log.exception("retention pass failed")
            else:
                self.last_report = report
                if report.files_deleted:
                    log.info("retention: deleted %d files (%.1f MiB), marked %d events", report.files_deleted,
                             report.bytes_freed / 1024**2, report.rows_marked)
            self._stop.wait(self.interval_s)
