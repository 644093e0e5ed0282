"""``yolo-app``: every command parses its options (parser.py), builds settings and drives the engine
(commands.py); ``main`` maps failures to exit codes (0 ok, 1 runtime failure, 2 bad input or usage,
130 interrupted)."""

from __future__ import annotations

import logging
import sys

from yolo_app.cli.parser import build_parser
from yolo_app.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, YoloAppError
from yolo_app.settings import set_process_env

__all__ = ["build_parser", "main"]

log = logging.getLogger("yolo_app")


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
