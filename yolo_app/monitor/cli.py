"""``yolo-app monitor`` and ``yolo-app events``: the monitoring commands."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from yolo_app.errors import EXIT_OK, UserError


def add_commands(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser(
        "monitor", help="watch cameras and streams for days: zones, lines, events with evidence, alerts",
        description="Runs every camera of a YAML config until Ctrl-C or SIGTERM: detection with tracking, "
                    "zone enter/leave and line-cross events in STORAGE/events.db, snapshots and clips, webhooks, "
                    "reconnects as soon as a camera answers again, motion gating and retention. See the README "
                    "for the config.")
    monitor.add_argument("--config", "-c", type=Path, required=True, help="the monitor.yaml to run")
    monitor.add_argument("--run-for", type=float, default=None, metavar="SECONDS",
                         help="stop after this many seconds (default: run until Ctrl-C / SIGTERM)")
    monitor.add_argument("--web-port", "--status-port", dest="web_port", type=int, default=None, metavar="PORT",
                         help="serve the web page on PORT (the config's web.port; 0: any free port), with the JSON "
                              "status at /status and Prometheus metrics at /metrics; bound to web.bind, 127.0.0.1 "
                              "unless the config says otherwise")
    monitor.add_argument("--trust-weights", action="store_true",
                         help="as the config's trust_weights: true: load a checkpoint that needs full unpickling: "
                              "only for a file you trust; a pickle can run code")
    monitor.set_defaults(func=cmd_monitor)

    events = commands.add_parser("events", help="list or export the events a monitor recorded",
                                 description="Reads STORAGE/events.db of a monitor config (or a database path).")
    actions = events.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print events as a table, oldest first")
    export = actions.add_parser("export", help="write events as CSV or JSON lines to stdout or --out")
    for p in (listing, export):
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", "-c", type=Path, help="the monitor.yaml whose storage to read")
        where.add_argument("--db", type=Path, help="an events.db file")
        p.add_argument("--since", default=None, metavar="WHEN",
                       help="only events from then on: an ISO date/time (2026-11-26, 2026-11-26T08:00) or an age "
                            "(30m, 12h, 7d); times without a zone are UTC")
        p.add_argument("--camera", default=None, help="only this camera")
        p.add_argument("--type", default=None, help="only this event type (zone_enter, line_cross, ...)")
    listing.add_argument("--limit", type=int, default=None, help="at most N events (the newest N)")
    export.add_argument("--to", required=True, choices=["csv", "jsonl"], help="output format")
    export.add_argument("--out", type=Path, default=None, help="write here instead of stdout")
    events.set_defaults(func=cmd_events)


def cmd_monitor(args: argparse.Namespace) -> int:
    from yolo_app.monitor.config import load_config
    from yolo_app.monitor.service_config import Web
    from yolo_app.monitor.runner import Monitor

    if args.run_for is not None and args.run_for <= 0:
        raise UserError("--run-for must be a positive number of seconds")
    if args.web_port is not None and not 0 <= args.web_port <= 65535:
        raise UserError(f"--web-port {args.web_port}: not a port number (0-65535)")
    config = load_config(args.config)
    if args.trust_weights:  # as the config's trust_weights: true
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, trust=True))
    if args.web_port is not None:
        config = dataclasses.replace(config, web=dataclasses.replace(config.web or Web(), port=args.web_port))
    monitor = Monitor(config)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # SIGTERM: finish clips, exit 0
    try:
        monitor.start()
    except BaseException:
        monitor.stop()
        raise
    names = ", ".join(c.name for c in config.cameras)
    web = f"; web page on {monitor.web.url}" if monitor.web else ""
    print(f"monitoring {names} with {monitor.model.model_id} ({monitor.model.runtime}); events in "
          f"{config.storage / 'events.db'}{web}", file=sys.stderr)
    try:
        monitor.wait(args.run_for, stop)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a monitor is ended: finish like SIGTERM
    finally:
        monitor.stop()
        signal.signal(signal.SIGTERM, previous)
    print(f"stopped: {monitor.events_total} events this run", file=sys.stderr)
    return EXIT_OK


def _open_store(args: argparse.Namespace):
    from yolo_app.monitor.events import EventStore

    if args.config is not None:
        from yolo_app.monitor.config import load_config

        path = load_config(args.config).storage / "events.db"
    else:
        path = args.db
    try:
        return EventStore(path, readonly=True)
    except FileNotFoundError:
        raise UserError(f"no events database at {path} (has the monitor run yet?)") from None


def parse_since(text: str | None, now: datetime | None = None) -> str | None:
    from yolo_app.monitor.events import iso

    if text is None:
        return None
    now = now or datetime.now(timezone.utc)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return iso(now - timedelta(seconds=float(text[:-1]) * units[text[-1]]))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--since {text}: not a date/time (2026-11-26T08:00) or an age (30m, 12h, 7d)") from None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def cmd_events(args: argparse.Namespace) -> int:
    from yolo_app.monitor.events import EVENT_TYPES

    if args.type is not None and args.type not in EVENT_TYPES:
        raise UserError(f"--type {args.type}: unknown event type (one of: {', '.join(EVENT_TYPES)})")
    since = parse_since(args.since)
    store = _open_store(args)
    try:
        if args.action == "list":
            events = store.query(since, args.camera, args.type, limit=args.limit, newest_first=args.limit is not None)
            _print_table(sorted(events, key=lambda e: e.id))
        else:
            _export(store.query(since, args.camera, args.type), args.to, args.out)
    finally:
        store.close()
    return EXIT_OK


def _print_table(events: list) -> None:
    columns = ("id", "started_at", "camera", "type", "label", "track_id", "zone", "direction", "confidence",
               "snapshot_path", "clip_path")
    rows = [[_cell(getattr(e, c)) for c in columns] for e in events]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    print(f"{len(events)} event(s)", file=sys.stderr)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _export(events: list, fmt: str, out: Path | None) -> None:
    from yolo_app.engine.sinks import AtomicPath
    from yolo_app.monitor.events import EXPORT_FIELDS

    def write(stream) -> None:
        if fmt == "csv":
            writer = csv.writer(stream)
            writer.writerow(EXPORT_FIELDS)
            for e in events:
                writer.writerow(["" if getattr(e, f) is None else getattr(e, f) for f in EXPORT_FIELDS])
        else:
            for e in events:
                stream.write(json.dumps({f: getattr(e, f) for f in EXPORT_FIELDS}) + "\n")

    if out is None:
        write(sys.stdout)
        return
    target = AtomicPath(out)  # a half-written export never looks complete
    try:
        with open(target.part, "w", newline="", encoding="utf-8") as stream:
            write(stream)
        target.finish(True)
    except OSError as exc:
        target.part.unlink(missing_ok=True)
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{len(events)} event(s) -> {out}", file=sys.stderr)
