"""What the web page reads of the event database: filtered pages of events, the values to filter by, and
counts per hour. Its own read-only connection (WAL: readers never wait for the writer, and the cameras'
event writes never wait for a page), one query at a time."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from yolo_app.monitor.events import COLUMNS, Event, iso

PAGE_SIZE = 50
CHOICES_TTL_S = 60.0  # the labels and zones to filter by: a scan of the table, not on every page


@dataclass(frozen=True)
class EventFilter:
    camera: str | None = None
    type: str | None = None
    label: str | None = None
    zone: str | None = None
    day: str | None = None  # YYYY-MM-DD in the viewer's time zone
    tz_offset_min: int = 0  # the viewer's: minutes to add to local time to get UTC (JavaScript's getTimezoneOffset)
    unreviewed: bool = False

    def where(self) -> tuple[list[str], list[object]]:
        where: list[str] = []
        args: list[object] = []
        for column in ("camera", "type", "label", "zone"):
            value = getattr(self, column)
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if self.day:
            start = datetime.strptime(self.day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            start += timedelta(minutes=self.tz_offset_min)
            where.append("started_at >= ? AND started_at < ?")
            args += [iso(start), iso(start + timedelta(days=1))]
        if self.unreviewed:
            where.append("reviewed_at IS NULL")
        return where, args


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    matching: int  # events the filter matches, on every page
    newer: int | None  # `after` for the page of newer events (None: this is the newest)
    older: int | None  # `before` for the page of older events (None: this is the oldest)


@dataclass(frozen=True)
class HourlyCounts:
    """Per camera and zone (or line and direction), events per hour over the last day, oldest hour first."""

    hours: list[str]  # ISO UTC hour starts
    series: dict[str, dict[str, list[int]]]  # camera -> "zone", "line in", "line out" -> a count per hour


class EventBrowser:
    def __init__(self, path: Path, clock=time.monotonic) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._lock = threading.Lock()
        self._clock = clock
        self._choices: tuple[float, dict[str, list[str]]] | None = None

    def _rows(self, sql: str, args: list[object]) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def page(self, f: EventFilter, before: int | None = None, after: int | None = None,
             size: int = PAGE_SIZE) -> EventPage:
        """Newest first; ``before``/``after`` an id: keyset paging, as quick on the thousandth page as the first."""
        where, args = f.where()
        [(matching,)] = self._rows(f"SELECT COUNT(*) FROM events{_and(where)}", args)
        if after is not None:
            rows = self._rows(f"SELECT {', '.join(COLUMNS)} FROM events{_and(where + ['id > ?'])} ORDER BY id "
                              f"LIMIT ?", [*args, after, size])[::-1]
        else:
            extra = ["id < ?"] if before is not None else []
            rows = self._rows(f"SELECT {', '.join(COLUMNS)} FROM events{_and(where + extra)} ORDER BY id DESC "
                              f"LIMIT ?", [*args, *([before] if before is not None else []), size])
        events = [Event(**dict(zip(COLUMNS, row))) for row in rows]
        newer = older = None
        if events:
            top, bottom = events[0].id, events[-1].id
            if self._rows(f"SELECT 1 FROM events{_and(where + ['id > ?'])} LIMIT 1", [*args, top]):
                newer = top
            if self._rows(f"SELECT 1 FROM events{_and(where + ['id < ?'])} LIMIT 1", [*args, bottom]):
                older = bottom
        return EventPage(events, int(matching), newer, older)

    def event(self, event_id: int) -> Event | None:
        rows = self._rows(f"SELECT {', '.join(COLUMNS)} FROM events WHERE id = ?", [event_id])
        return Event(**dict(zip(COLUMNS, rows[0]))) if rows else None

    def names_file(self, relpath: str) -> bool:
        """Whether an event's snapshot or clip is this path (relative to the storage folder)."""
        return bool(self._rows("SELECT 1 FROM events WHERE snapshot_path = ? OR clip_path = ? LIMIT 1",
                               [relpath, relpath]))

    def unreviewed(self) -> int:
        [(n,)] = self._rows("SELECT COUNT(*) FROM events WHERE reviewed_at IS NULL", [])
        return int(n)

    def choices(self) -> dict[str, list[str]]:
        """The cameras, labels and zone/line names that occur, to filter by."""
        now = self._clock()
        if self._choices is None or now - self._choices[0] > CHOICES_TTL_S:
            found = {column: [v for (v,) in self._rows(f"SELECT DISTINCT {column} FROM events WHERE {column} IS NOT "
                                                       f"NULL ORDER BY {column}", [])]
                     for column in ("camera", "label", "zone")}
            self._choices = (now, found)
        return self._choices[1]

    def hourly(self, now: datetime | None = None, hours: int = 24) -> HourlyCounts:
        """Zone entries and line crossings (each direction) per hour, for the ``hours`` up to and including now's."""
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        starts = [iso(first + timedelta(hours=i))[:13] for i in range(hours)]  # "2026-12-07T21"
        index = {h: i for i, h in enumerate(starts)}
        rows = self._rows("SELECT camera, type, zone, direction, substr(started_at, 1, 13), COUNT(*) FROM events "
                          "WHERE started_at >= ? AND type IN ('zone_enter', 'line_cross') AND zone IS NOT NULL "
                          "GROUP BY 1, 2, 3, 4, 5", [iso(first)])
        series: dict[str, dict[str, list[int]]] = {}
        for camera, kind, zone, direction, hour, n in rows:
            name = zone if kind == "zone_enter" else f"{zone} {direction}"
            counts = series.setdefault(camera, {}).setdefault(name, [0] * hours)
            if hour in index:
                counts[index[hour]] += int(n)
        return HourlyCounts([f"{h}:00:00.000Z" for h in starts], series)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _and(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""
