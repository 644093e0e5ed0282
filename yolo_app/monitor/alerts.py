"""Webhook alerts: POST an event as JSON, off the capture and inference threads, retried with back-off.

One worker thread and one schedule of pending deliveries, ordered by the time each is next due: a new
delivery is due at once; one that failed is put back with its next attempt ``backoff_s[0] * 2**n`` later
(capped at ``backoff_s[1]``). So a dead endpoint costs the others at most one socket timeout per attempt,
never its whole back-off. A delivery is given up by age, not by a count of tries: an endpoint that is down
for a few minutes (a restart, a deploy) still gets every event once it is back, within ``backoff_s[1]``.
The schedule is bounded: when full, the oldest pending delivery is dropped and counted, so ``send`` never
blocks and memory stays flat whatever the endpoints do.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Delivery:
    due: float  # the clock's time (time.monotonic()) of the next attempt
    seq: int  # sending order: the tie-break for equal due times, and "oldest" when the schedule is full
    created: float = field(compare=False)  # the clock's time of send(): the age that gives up
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    attempts: int = field(default=0, compare=False)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302 by turning the POST into a bodyless GET: a 3xx is a failure here."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookSender:
    """Delivers ``send(url, payload)`` calls in the background; counters for the status page.

    Example::

        sender = WebhookSender()
        sender.start()
        sender.send("http://127.0.0.1:9000/hook", event.to_dict())
        sender.close()
    """

    def __init__(self, *, timeout_s: float = 5.0, give_up_after_s: float = 900.0,
                 backoff_s: tuple[float, float] = (1.0, 30.0), queue_size: int = 1000,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[threading.Condition, float], object] = threading.Condition.wait) -> None:
        if give_up_after_s < 0 or queue_size < 1 or timeout_s <= 0:
            raise ValueError("queue_size must be >= 1, give_up_after_s >= 0 and timeout_s > 0")
        self.timeout_s = timeout_s
        self.give_up_after_s = give_up_after_s  # no attempt starts later than this after send()
        self.backoff_s = backoff_s
        self.queue_size = queue_size
        self._opener = urllib.request.build_opener(_NoRedirect)
        # The schedule's time source and its timed wait for the next due delivery: tests pass a fake clock
        # that moves only when waited on, so back-offs and give-ups are exact, not raced.
        self._clock = clock
        self._wait = wait
        self._cond = threading.Condition()
        self._pending: list[_Delivery] = []  # a heap on (due, seq)
        self._seq = 0
        self._deadline: float | None = None  # set by close(): pending deliveries may go out until then
        self._stopped = False  # nothing more goes out; what is left is dropped
        self._thread: threading.Thread | None = None
        self._counts = {"sent": 0, "failed": 0, "retried": 0, "dropped": 0}

    # -- counters ------------------------------------------------------------------------------------
    @property
    def sent(self) -> int:
        return self._count("sent")

    @property
    def failed(self) -> int:
        """Deliveries given up: their next attempt would have come ``give_up_after_s`` after ``send``."""
        return self._count("failed")

    @property
    def retried(self) -> int:
        """Attempts made after a failed one."""
        return self._count("retried")

    @property
    def dropped(self) -> int:
        """Deliveries never finished: schedule full, sent after close, or still pending at close."""
        return self._count("dropped")

    def stats(self) -> dict[str, int]:
        """The four counters at one instant (the status snapshot's ``webhooks``)."""
        with self._cond:
            return dict(self._counts)

    def _count(self, name: str) -> int:
        with self._cond:
            return self._counts[name]

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("WebhookSender already started")
            self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def send(self, url: str, payload: dict) -> None:
        """Queue one POST; never blocks. Values JSON cannot encode go as their ``str()``."""
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http:// or https://, got {url!r}")
        body = json.dumps(payload, default=str).encode()  # now: the caller may change the dict afterwards
        with self._cond:
            if self._stopped or self._deadline is not None:
                self._counts["dropped"] += 1
                return
            self._seq += 1
            now = self._clock()
            self._push(_Delivery(now, self._seq, now, url, body))
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Let pending deliveries go out until ``timeout``, then drop the rest (counted).

        Returns within ``timeout`` (plus a few ms). An attempt already on the wire cannot be interrupted:
        it ends by itself within ``timeout_s`` on the daemon thread, and its outcome is still counted.
        """
        end = self._clock() + max(0.0, timeout)
        with self._cond:
            if self._deadline is None or end < self._deadline:
                self._deadline = end
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(0.0, end - self._clock()))
        with self._cond:
            self._stopped = True
            self._drop_all()
            self._cond.notify_all()

    # -- worker --------------------------------------------------------------------------------------
    def _push(self, delivery: _Delivery) -> None:
        """Caller holds the lock."""
        if len(self._pending) >= self.queue_size:
            oldest = min(self._pending, key=lambda d: d.seq)  # O(n), only when full
            self._pending.remove(oldest)
            heapq.heapify(self._pending)
            self._counts["dropped"] += 1
            log.debug("webhook schedule full: dropped the delivery to %s", oldest.url)
        heapq.heappush(self._pending, delivery)

    def _drop_all(self) -> None:
        """Caller holds the lock."""
        if self._pending:
            log.warning("webhooks: dropped %d pending deliveries at shutdown", len(self._pending))
        self._counts["dropped"] += len(self._pending)
        self._pending.clear()

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            error = self._attempt(delivery)
            self._settle(delivery, error)

    def _next(self) -> _Delivery | None:
        """The next due delivery; None when stopped, or closing and nothing more can go out in time."""
        with self._cond:
            while True:
                now = self._clock()
                if self._stopped:
                    return None
                closing = self._deadline is not None
                if not self._pending:
                    if closing:
                        return None
                    self._cond.wait()
                    continue
                head = self._pending[0]
                if closing and (head.due >= self._deadline or now >= self._deadline):
                    self._drop_all()  # its next attempt would come after the deadline: stop now
                    return None
                if head.due <= now:
                    heapq.heappop(self._pending)
                    if head.attempts:
                        self._counts["retried"] += 1
                    return head
                self._wait(self._cond, head.due - now)

    def _attempt(self, delivery: _Delivery) -> str | None:
        """One POST; the reason it failed, or None on a 2xx."""
        delivery.attempts += 1
        timeout = self.timeout_s
        with self._cond:
            if self._deadline is not None:  # closing: do not outlive close() by a whole socket timeout
                timeout = min(timeout, max(0.05, self._deadline - self._clock()))
        request = urllib.request.Request(delivery.url, data=delivery.body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(65536)  # drain a little so keep-alive servers are not cut mid-reply
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, bad hosts
            reason = getattr(exc, "reason", exc)
            return f"{type(reason).__name__}: {reason}"
        return None if 200 <= status < 300 else f"HTTP {status}"

    def _settle(self, delivery: _Delivery, error: str | None) -> None:
        with self._cond:
            first, cap = self.backoff_s
            now = self._clock()
            due = now + min(first * 2 ** (delivery.attempts - 1), cap)
            if error is None:
                self._counts["sent"] += 1
            elif self._stopped:
                self._counts["dropped"] += 1
            elif due - delivery.created > self.give_up_after_s:
                self._counts["failed"] += 1
                log.warning("webhook %s: gave up after %d attempts in %.0f s (%s)", delivery.url, delivery.attempts,
                            now - delivery.created, error)
            else:
                delivery.due = due
                self._push(delivery)
