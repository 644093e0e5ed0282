"""A thread with a stop event, a captured exception and a bounded join: the base of every stage."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from yolo_app.engine.cpu import set_thread_name

log = logging.getLogger(__name__)


class Worker:
    """Subclasses implement ``run()`` and loop on ``self.stopping``; nothing here blocks forever.

    The thread is a daemon so a stage stuck in a driver call can never keep the process alive; an
    exception in ``run()`` is stored in ``error`` and reported through ``on_error`` (the pipeline uses
    it to cancel every other stage and re-raise in the caller).
    """

    def __init__(self, name: str, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._on_error = on_error
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        # Set as the thread's work ends; joins wait on it, not on Thread.join: on CPython 3.11 a Ctrl-C that
        # lands while Thread.join waits marks the joined thread as stopped though it still runs, and a sink
        # still writing would be taken for finished.
        self._ended = threading.Event()

    def run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread.ident is None:
            return True
        if not self._ended.wait(timeout):
            return False
        self._thread.join(1.0)  # its work is done; only the thread's own teardown is left
        return True

    @property
    def alive(self) -> bool:
        return self._thread.ident is not None and not self._ended.is_set()

    def _main(self) -> None:
        set_thread_name(self.name)  # in top -H and py-spy; the threads a library starts from here inherit it
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
            self.error = exc
            log.debug("%s failed", self.name, exc_info=True)
            if self._on_error is not None:
                self._on_error(exc)
        finally:
            self._ended.set()
