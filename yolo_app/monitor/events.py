"""Monitoring events and their SQLite store (WAL: the monitor writes while `events list` or the GUI read).

The store is the one record and the one writer. Besides the events it keeps an append-only log of their
changes (``new`` when a row is written, ``end`` when it ends: a camera back after an outage, a clip
written), in the same transaction as the row, and each way out's position in that log (its cursor): a
way out that is down (the MQTT broker away) catches up from the log, in order, however long it was
away and across restarts of the monitor, and nothing on the camera's thread ever waits for it.

Times are ISO-8601 UTC with milliseconds (``2026-11-26T17:13:01.123Z``), which sort as text.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

EVENT_TYPES = ("zone_enter", "zone_leave", "zone_loiter", "line_cross", "object_seen", "object_moved", "camera_offline",
               "camera_online")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT NOT NULL,
    type TEXT NOT NULL,
    label TEXT,
    track_id INTEGER,
    zone TEXT,               -- the zone or line the event is about
    direction TEXT,          -- line_cross: 'in' or 'out'
    confidence REAL,
    classification TEXT,     -- the second-stage classifier's label for the object, when one runs
    started_at TEXT NOT NULL,
    ended_at TEXT,
    snapshot_path TEXT,
    clip_path TEXT,
    evidence_deleted_at TEXT, -- set by retention when the snapshot and clip files were removed
    reviewed_at TEXT,        -- when someone marked it reviewed on the web page (NULL: not reviewed)
    stationary INTEGER       -- 1: the object had not moved for the camera's stationary_after (a parked car)
);
CREATE INDEX IF NOT EXISTS events_started ON events (started_at);
CREATE INDEX IF NOT EXISTS events_camera ON events (camera, started_at);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL,
    kind TEXT NOT NULL       -- 'new' or 'end'
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,   -- a way out ('mqtt')
    seq INTEGER NOT NULL     -- the last change it delivered
);
"""
# Columns added since the first release: an older database gets them in place when the monitor opens it (its
# rows untouched); a read-only reader of an older one reads them as NULL.
ADDED_COLUMNS = {"reviewed_at": "TEXT", "stationary": "INTEGER"}
# After the migration: the web page's "not reviewed" filter and count without scanning months of rows.
INDEXES = "CREATE INDEX IF NOT EXISTS events_unreviewed ON events (id) WHERE reviewed_at IS NULL;"
# What `events export` writes of an event, and the MQTT events topic carries.
EXPORT_FIELDS = ("id", "camera", "type", "label", "track_id", "zone", "direction", "confidence", "classification",
                 "started_at", "ended_at", "snapshot_path", "clip_path", "evidence_deleted_at", "stationary")
# Setting one of these on a row ends the event: its duration or its evidence is complete.
ENDING_COLUMNS = ("ended_at", "clip_path")


def utc_now() -> str:
    return iso(datetime.now(timezone.utc))


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Event:
    camera: str
    type: str
    started_at: str = field(default_factory=utc_now)
    label: str | None = None
    track_id: int | None = None
    zone: str | None = None
    direction: str | None = None
    confidence: float | None = None
    classification: str | None = None
    ended_at: str | None = None
    snapshot_path: str | None = None
    clip_path: str | None = None
    evidence_deleted_at: str | None = None
    reviewed_at: str | None = None
    stationary: bool | None = None  # object events: whether the object was stationary
    id: int | None = None

    def __post_init__(self) -> None:
        if self.stationary is not None:
            self.stationary = bool(self.stationary)  # SQLite keeps it as 0/1

    def to_dict(self) -> dict:
        return asdict(self)

    def exported(self) -> dict:
        """The fields `events export` writes."""
        return {name: getattr(self, name) for name in EXPORT_FIELDS}


@dataclass(frozen=True)
class Change:
    """One entry of the change log: an event written (``new``) or ended (``end``), with the row as it is now."""

    seq: int
    kind: str
    event: Event


COLUMNS = [f.name for f in fields(Event)]


class EventStore:
    """Thread-safe: one connection, one lock; every write commits at once (an event is never lost
    to a crash after its row was written)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(self.path)
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at each checkpoint, fast
            self._db.executescript(SCHEMA)
            self._migrate()
        self._db.execute("PRAGMA busy_timeout=5000")
        present = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        self._select = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
        self._lock = threading.Lock()
        self._listeners: list = []

    def _migrate(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
        self._db.executescript(INDEXES)

    def add(self, event: Event) -> int:
        """Write the row and its ``new`` change, together."""
        values = {k: v for k, v in event.to_dict().items() if k != "id"}
        with self._lock, self._transaction():
            cur = self._db.execute(
                f"INSERT INTO events ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()))
            event.id = int(cur.lastrowid)
            self._db.execute("INSERT INTO changes (event_id, kind) VALUES (?, 'new')", [event.id])
        self._changed()
        return event.id

    def update(self, event_id: int, **values: object) -> None:
        """Set columns of a row; setting one of ``ENDING_COLUMNS`` also logs its ``end`` change."""
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown event columns: {sorted(unknown)}")
        ends = any(values.get(column) is not None for column in ENDING_COLUMNS)
        with self._lock, self._transaction():
            self._db.execute(f"UPDATE events SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                             [*values.values(), event_id])
            if ends:
                self._db.execute("INSERT INTO changes (event_id, kind) VALUES (?, 'end')", [event_id])
        if ends:
            self._changed()

    def _transaction(self):
        """BEGIN ... COMMIT around the statements in the block (ROLLBACK on an error); the caller holds the lock."""
        db = self._db

        class Transaction:
            def __enter__(self) -> None:
                db.execute("BEGIN")

            def __exit__(self, kind, *_) -> None:
                db.execute("COMMIT" if kind is None else "ROLLBACK")

        return Transaction()

    # the change log and the ways out's cursors ---------------------------------------------------------
    def on_change(self, listener) -> None:
        """``listener()`` after every logged change (on the writer's thread: it must only signal)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def changes_after(self, seq: int, limit: int = 100) -> list[Change]:
        """The log's next ``limit`` changes after ``seq``, oldest first, each with its row as it is now."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT c.seq, c.kind, {', '.join(f'e.{c}' for c in COLUMNS)} FROM changes c JOIN events e "
                f"ON e.id = c.event_id WHERE c.seq > ? ORDER BY c.seq LIMIT ?", [seq, limit]).fetchall()
        return [Change(row[0], row[1], Event(**dict(zip(COLUMNS, row[2:])))) for row in rows]

    def last_change(self) -> int:
        """The newest change's number (also when every way out has had it and it was dropped from the log)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return int(row[0]) if row else 0

    def cursor(self, name: str) -> int | None:
        """The last change way out ``name`` delivered; None for a way out new to this database."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM cursors WHERE name = ?", [name]).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, seq: int) -> None:
        """Way out ``name`` delivered every change up to ``seq``; the log before every cursor is dropped."""
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                             "seq = excluded.seq", [name, seq])
            self._trim()

    def keep_cursors(self, names: set[str]) -> None:
        """Forget the cursors of ways out the config no longer has (a new one starts from its first start), and
        the log that no remaining way out needs: all of it when none is left."""
        with self._lock, self._transaction():
            marks = ", ".join("?" * len(names))
            self._db.execute(f"DELETE FROM cursors WHERE name NOT IN ({marks})", sorted(names))
            self._trim()

    def trim_changes(self) -> None:
        """Drop the log before every cursor (all of it without any): a monitor without MQTT keeps no log."""
        with self._lock, self._transaction():
            self._trim()

    def _trim(self) -> None:
        self._db.execute("DELETE FROM changes WHERE seq <= COALESCE((SELECT MIN(seq) FROM cursors), "
                         "(SELECT MAX(seq) FROM changes))")

    def query(self, since: str | None = None, camera: str | None = None, type: str | None = None,
              limit: int | None = None, newest_first: bool = False) -> list[Event]:
        where, args = [], []
        for column, op, value in (("started_at", ">=", since), ("camera", "=", camera), ("type", "=", type)):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        sql = f"SELECT {self._select} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Event(**dict(zip(COLUMNS, row))) for row in rows]

    def count_since(self, since: str) -> dict[str, int]:
        """Events per camera since a time (the status page's 'events today')."""
        with self._lock:
            rows = self._db.execute("SELECT camera, COUNT(*) FROM events WHERE started_at >= ? GROUP BY camera",
                                    [since]).fetchall()
        return {camera: int(n) for camera, n in rows}

    def set_reviewed(self, ids: list[int], reviewed: bool, when: str | None = None) -> int:
        """Mark events reviewed (now, or ``when``) or not reviewed; returns how many rows exist among ``ids``."""
        value = (when or utc_now()) if reviewed else None
        with self._lock, self._transaction():
            return sum(self._db.execute("UPDATE events SET reviewed_at = ? WHERE id = ?", [value, int(i)]).rowcount
                       for i in ids)

    def mark_evidence_deleted(self, paths: list[str], when: str | None = None) -> int:
        """Rows whose snapshot or clip is among ``paths`` get ``evidence_deleted_at``; the rows stay."""
        if not paths:
            return 0
        when = when or utc_now()
        marked = 0
        with self._lock:
            for path in paths:
                cur = self._db.execute(
                    "UPDATE events SET evidence_deleted_at = ? WHERE (snapshot_path = ? OR clip_path = ?)"
                    " AND evidence_deleted_at IS NULL", [when, path, path])
                marked += cur.rowcount
        return marked

    def close(self) -> None:
        with self._lock:
            self._db.close()
