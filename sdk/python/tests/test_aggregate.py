import math
import threading

from valuetrace.aggregate import Aggregator, bucket, quantile

# bucket(ms) as computed by the Rust `aggregate::bucket`.
RUST_BUCKETS = {
    0.0: 0, 0.005: 0, 0.01: 0, 0.0100001: 1, 0.0102: 2, 0.0204: 37, 1.0: 233, 12.5: 361,
    100.0: 466, 999.9: 582, 1000.0: 582, 3_600_000.0: 995, 1e12: 1628,
}


def test_buckets_match_rust():
    for ms, expected in RUST_BUCKETS.items():
        assert bucket(ms) == expected, ms
    assert bucket(float("nan")) == 0
    assert bucket(-5.0) == 0
    assert bucket(1e300) == 2048


def test_bucket_formula_and_two_percent_width():
    for ms in (0.02, 0.5, 3.7, 42.0, 999.0, 12345.6):
        assert bucket(ms) == math.floor(math.log(ms / 0.01) / math.log(1.02)) + 1


def test_counts_are_exact_per_key_across_threads_and_drain_resets():
    aggregator = Aggregator()

    def work(t):
        for i in range(10_000):
            status_class = 5 if i % 10 == 0 else 2
            plan = "pro" if t % 2 == 0 else None
            aggregator.record(("GET", "/api/items/{id}", status_class, plan, None), float(i % 100))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    start, end, table = aggregator.drain()
    assert start <= end
    assert sum(entry[0] for entry in table.values()) == 40_000
    assert len(table) == 4
    assert sum(e[0] for k, e in table.items() if k[2] == 5) == 4_000
    for count, _, buckets, _ in table.values():
        assert sum(buckets.values()) == count
    assert aggregator.requests == 40_000
    assert aggregator.drain()[2] == {}


def test_quantiles_from_the_histogram_are_within_two_percent():
    aggregator = Aggregator()
    for i in range(1, 10_001):
        aggregator.record(("GET", "/a", 2, None, None), i / 10.0)
    (_, _, buckets, _), = aggregator.drain()[2].values()
    for q, truth in ((0.5, 500.0), (0.95, 950.0), (0.99, 990.0)):
        assert abs(quantile(buckets, q) - truth) / truth < 0.02


def test_bucket_constants_are_the_floats_they_name_and_match_the_formula():
    from valuetrace import aggregate

    assert aggregate._LN_MIN == math.log(0.01)
    assert aggregate._INV_LN_GAMMA == 1.0 / math.log(1.02)
    ms = 0.011
    while ms < 4_000_000.0:
        formula = min(int(math.log(ms / 0.01) / math.log(1.02)) + 1, aggregate.MAX_BUCKET)
        assert aggregate.bucket(ms) == formula, ms
        ms *= 1.0037
