"""The queue, the breaker and the backoff (mirrors of the Rust unit tests)."""

import threading

from valuetrace.backoff import Backoff
from valuetrace.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from valuetrace.queue import BoundedQueue


def test_a_full_queue_drops_and_counts_without_blocking():
    q = BoundedQueue(3)
    assert [q.push(i) for i in range(5)] == [True, True, True, False, False]
    assert (q.enqueued, q.dropped) == (3, 2)
    assert q.take(1) == [0]
    assert q.push(9)
    assert q.take(10) == [1, 2, 9]
    q.close()
    assert not q.push(10), "a closed queue counts as a drop"
    assert q.dropped == 3
    assert q.enqueued == 4


def test_many_threads_push_concurrently_and_every_item_is_accounted_for():
    q = BoundedQueue(1_000)

    def push(t):
        for i in range(10_000):
            q.push(t * 100_000 + i)

    threads = [threading.Thread(target=push, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert q.enqueued + q.dropped == 40_000
    assert len(q) <= 1_000 + 4


def test_breaker_opens_after_n_failures_probes_after_cool_down_and_closes_on_success():
    b = Breaker(3, 1_000)
    assert b.allow(0)
    b.failure(0)
    b.failure(1)
    assert b.state == CLOSED
    b.failure(2)
    assert (b.state, b.opened) == (OPEN, 1)
    assert not b.allow(500)
    # After the cool-down: one probe, no second one while it is out.
    assert b.allow(1_002)
    assert b.state == HALF_OPEN
    assert not b.allow(1_003)
    # The probe fails: open again for a full cool-down from now.
    b.failure(1_010)
    assert (b.state, b.opened) == (OPEN, 2)
    assert not b.allow(1_500)
    assert b.allow(2_010)
    b.success()
    assert b.state == CLOSED
    assert b.allow(2_011)
    # A success resets the failure count.
    b.failure(3_000)
    b.failure(3_001)
    b.success()
    b.failure(3_002)
    assert b.state == CLOSED


def test_backoff_delays_grow_exponentially_within_the_cap_and_stop():
    b = Backoff(100, 5_000, 8, 7)
    assert [b.ceiling(a) for a in range(8)] == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]
    for attempt in range(8):
        assert 0 <= b.delay(attempt) <= b.ceiling(attempt)
    assert b.delay(8) is None
    draws = {b.delay(5) for _ in range(50)}
    assert len(draws) > 10, "full jitter: the draws differ"
    assert all(0 <= d <= 3_200 for d in draws)
