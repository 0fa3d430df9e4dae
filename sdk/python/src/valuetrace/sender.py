"""The background sender (Rust ``sender.rs``): a daemon thread drains the queue, batches by size
and time, gzip-compresses NDJSON and POSTs to ``/v1/batch``. Failed batches are retried with
jittered exponential backoff while the circuit breaker allows; when the breaker is open or the
retries are used up the batch is dropped and counted. A 4xx other than 408/429 drops the batch at
once (retrying will not help). At every time-based flush the aggregates ride along as
``api_aggregate`` events. ``shutdown`` stops taking events and sends what is queued within a
deadline (one attempt per batch)."""

from __future__ import annotations

import os
import threading
import time

from . import events as wire
from .aggregate import Aggregator
from .backoff import Backoff
from .breaker import Breaker
from .queue import BoundedQueue
from .transport import Transport, encode

_POLL_SECONDS = 0.05


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class Sender:
    def __init__(self, queue: BoundedQueue, aggregator: Aggregator, transport: Transport, *,
                 service: str, sdk: str, batch_size: int, flush_interval: float,
                 max_retries: int, backoff_base_ms: int, backoff_max_ms: int,
                 breaker_failures: int, breaker_cool_down_ms: float,
                 send_aggregates: bool = True) -> None:
        self.queue = queue
        self.aggregator = aggregator
        self.transport = transport
        self.service = service
        self.sdk = sdk
        self.batch_size = max(int(batch_size), 1)
        self.flush_interval = flush_interval
        self.send_aggregates = send_aggregates
        #: Whether the server accepted the last window's aggregates (None: not known yet).
        self.aggregates_accepted: bool | None = None
        self.breaker = Breaker(breaker_failures, breaker_cool_down_ms)
        self.backoff = Backoff(backoff_base_ms, backoff_max_ms, max_retries,
                               int.from_bytes(os.urandom(8), "little"))
        # Counters (written by the sender thread only).
        self.sent_events = 0
        self.sent_aggregates = 0
        self.sent_batches = 0
        self.retries = 0
        self.dropped_events = 0
        self.rejected_calls = 0
        self.rejected_aggregates = 0
        self.last_rejection: str | None = None
        self.last_error: str | None = None
        self.errors = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flush_lock = threading.Condition()
        self._flush_wanted = 0
        self._flush_done = 0
        self._thread: threading.Thread | None = None

    # -- control (any thread) ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="valuetrace-sender", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def running_before_fork(self) -> bool:
        """In a forked child: whether the parent had started this sender (the thread object is
        copied, the thread itself is not)."""
        return self._thread is not None and not self._stop.is_set()

    def flush(self, timeout: float) -> bool:
        """Sends everything queued and the aggregates now; True when done within ``timeout``."""
        if not self.running:
            return False
        with self._flush_lock:
            self._flush_wanted += 1
            wanted = self._flush_wanted
        self._wake.set()
        with self._flush_lock:
            return self._flush_lock.wait_for(lambda: self._flush_done >= wanted, timeout)

    def shutdown(self, timeout: float) -> bool:
        """Stops taking events, sends what is queued; True when done within ``timeout``."""
        self.queue.close()
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            self._wake.wait(min(self.flush_interval, _POLL_SECONDS))
            self._wake.clear()
            stopping = self._stop.is_set()
            with self._flush_lock:
                wanted = self._flush_wanted
            try:
                now = time.monotonic()
                if stopping or wanted > self._flush_done or now - last_flush >= self.flush_interval:
                    last_flush = now
                    self._flush_all()
                else:
                    self._send_full_batches()
            except Exception as error:  # never let the thread die
                self.errors += 1
                self.last_error = f"sender: {error!r}"
            with self._flush_lock:
                self._flush_done = max(self._flush_done, wanted)
                self._flush_lock.notify_all()
            if stopping:
                self.transport.close()
                return

    def _send_calls(self, records: list, aggregated: bool) -> None:
        for i in range(0, len(records), self.batch_size):
            self._send([wire.api_call(r, self.service, self.sdk, aggregated)
                        for r in records[i : i + self.batch_size]])

    def _send_full_batches(self) -> None:
        """Between flushes: sends full batches of calls, once the server's answer to
        aggregates is known (see ``_flush_all``)."""
        if self.send_aggregates and self.aggregates_accepted is None:
            return
        while len(self.queue) >= self.batch_size:
            self._send_calls(self.queue.take(self.batch_size), bool(self.aggregates_accepted))

    def _flush_all(self) -> None:
        """Sends the aggregates since the last flush, then every queued call.

        A call counted in an accepted aggregate is marked ``aggregated`` so that the server's
        health answers count it once (from the aggregate). A server that does not know
        ``api_aggregate`` rejects the aggregates one by one; the calls of that window then go
        unmarked and the server counts them as usual. So the aggregates go first and their
        answer decides how the window's calls are sent.
        """
        records = self.queue.take(len(self.queue) + self.batch_size)
        if self.send_aggregates:
            start, end, table = self.aggregator.drain()
            aggregates = wire.api_aggregates(start, end, table, self.service, self.sdk)
            if aggregates:
                accepted = 0
                for i in range(0, len(aggregates), self.batch_size):
                    accepted += self._send(aggregates[i : i + self.batch_size])
                self.aggregates_accepted = accepted > 0
        self._send_calls(records, bool(self.send_aggregates and self.aggregates_accepted))

    def _send(self, batch: list[dict]) -> int:
        """One batch: attempts while the breaker allows, retries with backoff (none while
        stopping), dropped and counted when it fails for good. Returns how many of its
        events the server accepted (2xx, not in ``rejected``)."""
        body = None
        attempt = 0
        while True:
            if not self.breaker.allow(_now_ms()):
                self.dropped_events += len(batch)
                return 0
            if body is None:
                body = encode(batch)
            response = None
            try:
                response = self.transport.post(body)
            except Exception as error:
                self.last_error = f"POST {self.transport.path}: {error!r}"
            status = response.status if response is not None else 0
            if 200 <= status < 300 or _wholly_rejected(status, response):
                self.breaker.success()
                return len(batch) - self._accepted(batch, response)
            if 400 <= status < 500 and status not in (408, 429):
                # The collector answered: it is up, but this batch will never be accepted.
                self.breaker.success()
                self.dropped_events += len(batch)
                self.last_error = f"POST {self.transport.path}: {status} {response.body[:300]!r}"
                return 0
            if response is not None:
                self.last_error = f"POST {self.transport.path}: {status} {response.body[:300]!r}"
            self.breaker.failure(_now_ms())
            delay = self.backoff.delay(attempt)
            if delay is None or self._stop.is_set():
                self.dropped_events += len(batch)
                return 0
            if response is not None and response.retry_after:
                delay = max(delay, min(response.retry_after * 1000.0, self.backoff.max_ms))
            self.retries += 1
            attempt += 1
            self._stop.wait(delay / 1000.0)

    def _accepted(self, batch: list[dict], response) -> int:
        """Counts a per-event answer (2xx, or the 400 of a wholly rejected batch); returns how
        many events it rejected."""
        aggregates = sum(1 for event in batch if event["type"] == "api_aggregate")
        self.sent_batches += 1
        self.sent_events += len(batch)
        self.sent_aggregates += aggregates
        answer = response.json() or {}
        rejected = answer.get("rejected") or ()
        for item in rejected:
            index = item.get("index") if isinstance(item, dict) else None
            kind = batch[index]["type"] if isinstance(index, int) and 0 <= index < len(batch) else ""
            if kind == "api_aggregate":
                self.rejected_aggregates += 1
            else:
                self.rejected_calls += 1
            self.last_rejection = f"{kind or 'event'}: {item.get('error') if isinstance(item, dict) else item}"
        return len(rejected)


def _wholly_rejected(status: int, response) -> bool:
    """The server's 400 for a batch none of whose events it stored: the same per-event answer as
    a 200 (``rejected`` by index), so the rejections are counted as such, never retried."""
    if status != 400 or response is None:
        return False
    answer = response.json() or {}
    return isinstance(answer.get("rejected"), list) and "accepted" in answer
