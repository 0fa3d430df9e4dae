"""Exact in-process aggregates: every request is counted per (method, route, status class, plan,
experiments) with a latency histogram, whether or not its raw event is sampled, and shipped as
``api_aggregate`` events at each flush.

Latency histogram: log-linear buckets of 2% relative width from 0.01 ms, as the Rust client
(``aggregate.rs``): bucket 0 for ≤ 0.01 ms, else ``floor(ln(ms / 0.01) / ln(1.02)) + 1``, capped at
2048, computed as Rust computes it (``(ln(ms) − ln(0.01)) × (1 / ln(1.02))``, so both put a latency
at a bucket's edge in the same bucket). Any quantile read from it is within 2% of the truth.
"""

from __future__ import annotations

import math
import threading
import time

from . import users as _users

MIN_MS = 0.01
GAMMA = 1.02
MAX_BUCKET = 2048
# ln(0.01) and 1 / ln(1.02), as the Rust constants (checked in the tests).
_LN_MIN = -4.605170185988091
_INV_LN_GAMMA = 50.4983497918439
_log = math.log


def bucket(latency_ms: float) -> int:
    """The histogram bucket of a latency (0 for ≤ 0.01 ms and NaN)."""
    if not latency_ms > MIN_MS:
        return 0
    b = int((_log(latency_ms) - _LN_MIN) * _INV_LN_GAMMA) + 1
    return b if b < MAX_BUCKET else MAX_BUCKET


def bucket_value(b: int) -> float:
    """The representative latency of a bucket: the geometric middle of its bounds."""
    return MIN_MS if b == 0 else MIN_MS * GAMMA ** (b - 0.5)


def quantile(buckets: dict[int, int], q: float) -> float | None:
    """The q-quantile of a histogram ``{bucket: count}`` (within 2%), None when empty."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = min(max(math.ceil(q * total), 1), total)
    seen = 0
    for b in sorted(buckets):
        seen += buckets[b]
        if seen >= rank:
            return bucket_value(b)
    return None


class Aggregator:
    """The aggregates of one process between two drains. ``record`` takes one uncontended lock
    (a dict update under it); ``drain`` swaps the table out."""

    __slots__ = ("_lock", "_table", "_window_start", "requests")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[tuple, list] = {}
        self._window_start = time.time()
        #: Requests recorded since the start (exact).
        self.requests = 0

    def record(self, key: tuple, latency_ms: float, user_id: str | None = None) -> None:
        """Counts one request under ``key`` = (method, route, status class, plan, experiments)
        where experiments is a sorted tuple of (name, variant) pairs or None; ``user_id`` enters
        the key's distinct-user sketch (``users``; hashed before the lock is taken)."""
        b = bucket(latency_ms)
        register = None if user_id is None else _users.register_of(_users.user_hash(user_id))
        with self._lock:
            self.requests += 1
            entry = self._table.get(key)
            if entry is None:
                entry = self._table[key] = [1, latency_ms, {b: 1}, {}]
            else:
                entry[0] += 1
                entry[1] += latency_ms
                buckets = entry[2]
                buckets[b] = buckets.get(b, 0) + 1
            if register is not None:
                sketch = entry[3]
                index, rank = register
                if sketch.get(index, 0) < rank:
                    sketch[index] = rank

    def drain(self) -> tuple[float, float, dict[tuple, list]]:
        """(window start, window end, {key: [count, latency sum ms, {bucket: count},
        {register: rank}]}) of every
        request recorded since the last drain; resets."""
        with self._lock:
            table, self._table = self._table, {}
            start = self._window_start
            self._window_start = end = time.time()
        return start, end, table
