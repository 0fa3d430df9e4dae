"""The client a host application creates once: the record path the middleware calls on every
request, the bounded queue, the aggregates and the background sender.

Record path (``Client.record``): an aggregate update under one uncontended lock, the sampling
decision from memoized route weights and cached hashes, and for a kept call a tuple pushed onto
the bounded queue. No I/O, no serialization, no blocking; any exception in it is swallowed and
counted (``stats()["internal_errors"]``).
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
import weakref

from .aggregate import Aggregator
from .events import SDK, Identity
from .queue import BoundedQueue
from .sampling import SamplingPolicy, mix, stable_hash, threshold
from .sender import Sender
from .transport import Transport

_MEMO_LIMIT = 4096
_HASH_LIMIT = 65536


class Client:
    """Records API calls and ships them to a valuetrace server.

    ``url`` is the server's base URL (``http://127.0.0.1:7070``), ``ingest_key`` a project's ingest
    key, ``service`` the name of this service on the events. Durations are in seconds.
    """

    def __init__(
        self,
        url: str,
        ingest_key: str,
        service: str = "app",
        *,
        sampling: SamplingPolicy | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_retries: int = 3,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        breaker_failures: int = 5,
        breaker_cool_down: float = 30.0,
        shutdown_timeout: float = 5.0,
        ssl_context=None,
        sdk: str = SDK,
        aggregates: bool = True,
        start: bool = True,
    ) -> None:
        self.service = service
        self.sampling = sampling if sampling is not None else SamplingPolicy()
        self.shutdown_timeout = shutdown_timeout
        self._make_transport = lambda: Transport(url, ingest_key, timeout, ssl_context)
        self._queue_size = queue_size
        self._sender_options = dict(
            service=service, sdk=sdk, batch_size=batch_size, flush_interval=flush_interval,
            max_retries=max_retries, backoff_base_ms=int(backoff_base * 1000),
            backoff_max_ms=int(backoff_max * 1000), breaker_failures=breaker_failures,
            breaker_cool_down_ms=breaker_cool_down * 1000.0, send_aggregates=aggregates,
        )
        self._build()
        # Request-path caches: route weights by route then method, hashes of session/user ids,
        # thresholds by rate. Plain dicts: a lost race only recomputes a value.
        self._weights: dict[str, dict[str, float]] = {}
        self._hashes: dict[str, int] = {}
        self._thresholds: dict[float, int] = {}
        self._sequence = itertools.count()
        self._error_lock = threading.Lock()
        self.internal_errors = 0
        self._shut_down = False
        # Bound to a weak reference so that registering does not keep the client alive.
        ref = weakref.ref(self)
        self._atexit = lambda: (c := ref()) is not None and c.shutdown()
        atexit.register(self._atexit)
        # A forked worker (gunicorn --preload, multiprocessing) has no sender thread and may
        # inherit held locks: it gets fresh state and its own sender.
        os.register_at_fork(after_in_child=lambda: (c := ref()) is not None and c._after_fork())
        if start:
            self.sender.start()

    def _build(self) -> None:
        self.aggregator = Aggregator()
        self.queue = BoundedQueue(self._queue_size)
        self.sender = Sender(self.queue, self.aggregator, self._make_transport(),
                             **self._sender_options)

    def _after_fork(self) -> None:
        try:
            running = self.sender.running_before_fork
            self._build()
            self._error_lock = threading.Lock()
            self.internal_errors = 0
            if running and not self._shut_down:
                self.sender.start()
        except Exception:
            pass

    # -- the record path --------------------------------------------------------------------

    def record(
        self,
        method: str,
        route: str,
        status: int,
        latency_ms: float,
        identity: Identity | None = None,
        error_type: str | None = None,
        request_bytes: int | None = None,
        response_bytes: int | None = None,
    ) -> bool:
        """Counts one request into the aggregates and queues its raw event when sampled in.
        Returns whether the event was queued. Never raises."""
        try:
            status_class = status // 100
            if status_class < 1:
                status_class = 1
            elif status_class > 5:
                status_class = 5
            if identity is None:
                plan = session = user = experiments = None
                new_user = False
            else:
                plan = identity.plan
                session = identity.session_id
                user = identity.user_id
                experiments = identity.experiments
                if experiments:
                    experiments = tuple(sorted(experiments.items()))
                else:
                    experiments = None
                new_user = identity.new_user
            self.aggregator.record((method, route, status_class, plan, experiments), latency_ms,
                                   user)

            policy = self.sampling
            if (status >= 500 or (status >= 400 and policy.keep_client_errors)
                    or latency_ms >= policy.slow_ms):
                rate = 1.0
            else:
                by_method = self._weights.get(route)
                weight = by_method.get(method) if by_method is not None else None
                if weight is None:
                    weight = self._remember_weight(method, route)
                rate = weight
                if plan is not None or new_user or not 0.0 < rate <= 1.0:
                    rate = policy.combine(weight, plan, new_user)
            if rate < 1.0:
                key = session if session is not None else user
                if key is None:
                    # Anonymous: per call, by a hash of its sequence number (as the Rust layer).
                    hashed = mix(next(self._sequence))
                else:
                    hashed = self._hashes.get(key)
                    if hashed is None:
                        hashed = self._remember_hash(key)
                limit = self._thresholds.get(rate)
                if limit is None:
                    limit = self._remember_threshold(rate)
                if hashed > limit:
                    return False
            return self.queue.push((time.time(), method, route, status, latency_ms, request_bytes,
                                    response_bytes, identity, error_type, rate))
        except Exception:
            self.count_internal_error()
            return False

    def _remember_weight(self, method: str, route: str) -> float:
        weight = self.sampling.route_weight(method, route)
        if len(self._weights) > _MEMO_LIMIT:
            self._weights = {}
        self._weights.setdefault(route, {})[method] = weight
        return weight

    def _remember_hash(self, key: str) -> int:
        hashed = stable_hash(key)
        if len(self._hashes) > _HASH_LIMIT:
            self._hashes = {}
        self._hashes[key] = hashed
        return hashed

    def _remember_threshold(self, rate: float) -> int:
        limit = threshold(rate)
        if len(self._thresholds) > _MEMO_LIMIT:
            self._thresholds = {}
        self._thresholds[rate] = limit
        return limit

    def count_internal_error(self) -> None:
        """Counts an exception the middleware swallowed (never raises)."""
        try:
            with self._error_lock:
                self.internal_errors += 1
        except Exception:
            pass

    # -- control ----------------------------------------------------------------------------

    def stats(self) -> dict:
        """What the client did so far (a snapshot; counters only grow)."""
        sender = self.sender
        return {
            "requests": self.aggregator.requests,
            "queued": len(self.queue),
            "enqueued": self.queue.enqueued,
            "dropped_queue_full": self.queue.dropped,
            "sent_events": sender.sent_events,
            "sent_aggregates": sender.sent_aggregates,
            "sent_batches": sender.sent_batches,
            "retries": sender.retries,
            "dropped_events": sender.dropped_events,
            "rejected_calls": sender.rejected_calls,
            "rejected_aggregates": sender.rejected_aggregates,
            "last_rejection": sender.last_rejection,
            "aggregates_accepted": sender.aggregates_accepted,
            "breaker_state": sender.breaker.state,
            "breaker_opened": sender.breaker.opened,
            "internal_errors": self.internal_errors + sender.errors,
            "last_error": sender.last_error,
            "sender_running": sender.running,
        }

    def flush(self, timeout: float = 5.0) -> bool:
        """Sends what is queued and the aggregates now; True when done within ``timeout``."""
        return self.sender.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stops taking events and sends what is queued within ``timeout`` seconds (default
        ``shutdown_timeout``). Idempotent; also run at interpreter exit."""
        if self._shut_down:
            return True
        self._shut_down = True
        try:
            atexit.unregister(self._atexit)
        except Exception:
            pass
        return self.sender.shutdown(self.shutdown_timeout if timeout is None else timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
