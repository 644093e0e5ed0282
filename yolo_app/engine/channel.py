"""A bounded hand-off between two threads with an explicit policy when it is full.

``ChannelPolicy.LATEST`` drops the oldest item (and counts it); ``ChannelPolicy.ALL`` makes the producer
wait, so nothing is lost and memory stays flat. ``close()`` says the producer is done (consumers
drain what is left); ``cancel()`` aborts: every waiting ``put`` and ``get`` wakes at once.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

from yolo_app.engine.types import ChannelPolicy

T = TypeVar("T")


class ChannelClosed(Exception):
    """Raised by ``get`` once the channel is closed and drained, or cancelled."""


class Channel(Generic[T]):
    def __init__(self, capacity: int, policy: ChannelPolicy, name: str = "channel") -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.policy = policy
        self.name = name
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._cancelled = False
        self.dropped = 0  # items replaced under the LATEST policy
        self.put_count = 0

    def put(self, item: T) -> bool:
        """Hand over ``item``. Returns False when the channel was cancelled or closed (item not taken)."""
        with self._cond:
            if self.policy is ChannelPolicy.ALL:
                while len(self._items) >= self.capacity and not (self._closed or self._cancelled):
                    self._cond.wait()
            if self._closed or self._cancelled:
                return False
            if len(self._items) >= self.capacity:  # LATEST: the newest wins
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T:
        """Take the oldest item. Raises ChannelClosed when drained after close, or cancelled;
        TimeoutError when ``timeout`` passes with nothing to take."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed or self._cancelled, timeout):
                raise TimeoutError(f"{self.name}: nothing within {timeout}s")
            if self._cancelled or not self._items:
                raise ChannelClosed(self.name)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def get_batch(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Wait for one item, then take up to ``max_items`` that are already waiting."""
        first = self.get(timeout)
        batch = [first]
        with self._cond:
            while self._items and len(batch) < max_items and not self._cancelled:
                batch.append(self._items.popleft())
            self._cond.notify_all()
        return batch

    def close(self) -> None:
        """No more items will come; consumers still receive what is queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Abort: queued items are discarded and every waiter wakes now."""
        with self._cond:
            self._cancelled = True
            self._items.clear()
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
