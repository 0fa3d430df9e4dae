"""The hand-off from the request path to the sender thread: a bounded queue whose ``push`` never
blocks. When the queue is full (or closed) the item is dropped and counted, so a slow or dead
collector costs the host nothing but the drop."""

from __future__ import annotations

import threading
from collections import deque


class BoundedQueue:
    """Many producers (request threads), one consumer (the sender thread).

    ``push`` is a length check and a ``deque.append`` (atomic under the GIL); concurrent pushes may
    overshoot ``capacity`` by at most the number of pushing threads.
    """

    __slots__ = ("capacity", "_items", "_lock", "dropped", "taken", "closed")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(int(capacity), 1)
        self._items: deque = deque()
        self._lock = threading.Lock()
        #: Items refused because the queue was full or closed.
        self.dropped = 0
        #: Items the consumer took.
        self.taken = 0
        self.closed = False

    def push(self, item) -> bool:
        items = self._items
        if len(items) < self.capacity and not self.closed:
            items.append(item)
            return True
        with self._lock:
            self.dropped += 1
        return False

    def take(self, limit: int) -> list:
        """Up to ``limit`` items, oldest first (consumer only)."""
        popleft = self._items.popleft
        out = []
        try:
            for _ in range(min(limit, len(self._items))):
                out.append(popleft())
        except IndexError:
            pass
        self.taken += len(out)
        return out

    def close(self) -> None:
        """Refuses (and counts) further pushes."""
        self.closed = True

    def __len__(self) -> int:
        return len(self._items)

    @property
    def enqueued(self) -> int:
        """Items accepted so far."""
        return self.taken + len(self._items)
