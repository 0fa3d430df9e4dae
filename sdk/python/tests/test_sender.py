"""The client's sender against a stand-in collector: batching, the wire format, flush on
shutdown, retries, 4xx drops, the breaker, rejected events."""

import time

import pytest

from fake_collector import FakeCollector
from valuetrace import Client, Identity, SamplingPolicy

KEEP_ALL = SamplingPolicy(default_weight=1.0)


@pytest.fixture
def collector():
    c = FakeCollector()
    yield c
    c.close()


def client_for(url, **options):
    options.setdefault("sampling", KEEP_ALL)
    options.setdefault("flush_interval", 0.05)
    return Client(url, "vt_ingest_test", service="shop", **options)


def test_every_recorded_call_is_sent_once_with_the_wire_format_on_shutdown(collector):
    client = client_for(collector.url, batch_size=100, flush_interval=60.0)
    who = Identity(user_id="u-1", session_id="s-1", plan="pro", experiments={"reco": "ml_v2"})
    for i in range(1_234):
        assert client.record("GET", "/api/items/{id}", 200 if i % 10 else 503, float(i % 97), who,
                             "upstream_timeout" if i % 10 == 0 else None, 0, 12)
    assert client.shutdown(10.0)
    calls = collector.events("api_call")
    assert len(calls) == 1_234
    assert len({c["event_id"] for c in calls}) == 1_234
    assert all(len(batch) <= 100 for batch in collector.batches)
    first = calls[0]
    assert first["schema_version"] == 1 and first["service"] == "shop"
    assert first["route"] == "/api/items/{id}" and first["method"] == "GET"
    assert first["status"] == 503 and first["error_type"] == "upstream_timeout"
    assert first["user_id"] == "u-1" and first["session_id"] == "s-1" and first["plan"] == "pro"
    assert first["experiments"] == {"reco": "ml_v2"}
    assert first["request_bytes"] == 0 and first["response_bytes"] == 12
    assert first["sdk"].startswith("valuetrace-python/")
    assert first["timestamp"].endswith("Z") and len(first["timestamp"]) == 24
    assert "sample_rate" not in first
    assert first["aggregated"] is True, "counted in an aggregate the server accepted"
    assert collector.headers[0]["Authorization"] == "Bearer vt_ingest_test"
    assert collector.headers[0]["Content-Encoding"] == "gzip"
    stats = client.stats()
    assert stats["sent_events"] == 1_234 + stats["sent_aggregates"]
    assert stats["dropped_queue_full"] == stats["dropped_events"] == 0
    assert not client.record("GET", "/late", 200, 1.0), "after shutdown calls are dropped"


def test_aggregates_count_every_request_exactly_and_follow_the_contract(collector):
    client = client_for(collector.url, sampling=SamplingPolicy(default_weight=0.1))
    for i in range(500):
        status = 200 if i % 5 else 404
        plan = "pro" if i % 2 else None
        client.record("GET", "/api/search", status, 3.0 + i % 7,
                      Identity(session_id=f"s-{i}", plan=plan, experiments={"reco": "a"}))
    client.record("POST", "/api/payments", 201, 250.0)
    assert client.shutdown(10.0)
    aggregates = collector.events("api_aggregate")
    assert sum(a["count"] for a in aggregates) == 501
    keys = {(a["method"], a["route"], a["status_class"], a.get("plan")) for a in aggregates}
    assert keys == {("GET", "/api/search", 2, "pro"), ("GET", "/api/search", 2, None),
                    ("GET", "/api/search", 4, "pro"), ("GET", "/api/search", 4, None),
                    ("POST", "/api/payments", 2, None)}
    for a in aggregates:
        assert a["schema_version"] == 1 and a["direction"] == "inbound" and a["service"] == "shop"
        assert sum(count for _, count in a["latency_buckets"]) == a["count"]
        assert [b for b, _ in a["latency_buckets"]] == sorted(b for b, _ in a["latency_buckets"])
        assert a["window_start"] <= a["timestamp"]
        assert a["event_id"]
    search = [a for a in aggregates if a["route"] == "/api/search"]
    assert all(a["experiments"] == {"reco": "a"} for a in search)
    assert sum(a["latency_sum_ms"] for a in search) == pytest.approx(
        sum(3.0 + i % 7 for i in range(500)))
    # The raw events were sampled: fewer than the requests, errors all kept, rates carried.
    calls = collector.events("api_call")
    assert sum(1 for c in calls if c["status"] == 404) == 100
    assert all(c.get("sample_rate") in (0.1, 0.15000000000000002) for c in calls if c["status"] == 200)
    assert len(calls) < 300


def test_failed_batches_are_retried_with_the_same_event_ids():
    collector = FakeCollector(lambda n, events: (503, {"error": {"code": "writer_behind"}}, {})
                              if n < 2 else (200, None, {}))
    try:
        client = client_for(collector.url, backoff_base=0.001, backoff_max=0.01, max_retries=3)
        for _ in range(10):
            client.record("GET", "/a", 200, 1.0)
        assert client.flush(5.0)
        stats = client.stats()
        assert stats["retries"] == 2 and stats["sent_batches"] >= 1
        assert len(collector.events("api_call")) == 10
        client.shutdown(5.0)
    finally:
        collector.close()


def test_a_4xx_drops_the_batch_without_retrying():
    collector = FakeCollector(lambda n, events: (401, {"error": {"code": "unauthorized"}}, {}))
    try:
        client = client_for(collector.url, backoff_base=0.001)
        for _ in range(10):
            client.record("GET", "/a", 200, 1.0)
        client.flush(5.0)
        stats = client.stats()
        assert stats["retries"] == 0 and stats["sent_events"] == 0
        assert stats["dropped_events"] >= 10
        assert "401" in stats["last_error"]
        assert stats["breaker_state"] == "closed"
        client.shutdown(5.0)
    finally:
        collector.close()


def test_rejected_events_are_counted_not_failed():
    # A batch none of whose events was stored answers 400 with the per-event body (issue 18):
    # counted as rejections, not retried, not a failure.
    def answer(n, events):
        return 400, {"accepted": 0, "duplicates": 0, "rejected": [
            {"index": i, "event_id": "x", "error": "type: unknown type `api_aggregate`"}
            for i in range(len(events))]}, {}

    collector = FakeCollector(answer)
    try:
        client = client_for(collector.url)
        client.record("GET", "/a", 200, 1.0)
        client.shutdown(5.0)
        stats = client.stats()
        assert stats["rejected_calls"] + stats["rejected_aggregates"] >= 1
        assert "unknown type" in stats["last_rejection"]
        assert stats["breaker_state"] == "closed" and stats["dropped_events"] == 0
        assert stats["retries"] == 0 and collector.requests == stats["sent_batches"]
    finally:
        collector.close()


def test_with_the_collector_down_records_never_block_and_the_breaker_opens():
    collector = FakeCollector()
    url = collector.url
    collector.close()  # a port nobody listens on any more
    client = client_for(url, queue_size=1_000, batch_size=10, flush_interval=0.01, max_retries=1,
                        backoff_base=0.001, breaker_failures=3, breaker_cool_down=60.0,
                        timeout=0.5)
    started = time.perf_counter()
    for i in range(5_000):
        client.record("GET", "/a", 200, 1.0)
    assert time.perf_counter() - started < 1.0
    deadline = time.monotonic() + 10
    while client.stats()["breaker_state"] != "open":
        assert time.monotonic() < deadline, client.stats()
        time.sleep(0.01)
    assert client.shutdown(5.0)
    stats = client.stats()
    assert stats["enqueued"] + stats["dropped_queue_full"] == 5_000
    assert stats["sent_events"] == 0 and stats["dropped_events"] > 0 and stats["retries"] >= 1
    assert stats["breaker_opened"] >= 1


def test_a_half_open_probe_that_succeeds_closes_the_breaker():
    up = {"up": False}
    collector = FakeCollector(lambda n, events: (200, None, {}) if up["up"] else (503, {}, {}))
    try:
        client = client_for(collector.url, max_retries=0, breaker_failures=2,
                            breaker_cool_down=0.2)
        deadline = time.monotonic() + 10
        while client.stats()["breaker_state"] != "open":
            client.record("GET", "/a", 200, 1.0)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        up["up"] = True
        while client.stats()["breaker_state"] != "closed" or not collector.events("api_call"):
            client.record("GET", "/a", 200, 1.0)
            assert time.monotonic() < deadline, client.stats()
            time.sleep(0.02)
        client.shutdown(5.0)
    finally:
        collector.close()


def test_shutdown_returns_within_its_deadline_when_the_collector_hangs():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)  # accepts connections, never answers
    try:
        client = client_for(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=30.0)
        client.record("GET", "/a", 200, 1.0)
        time.sleep(0.2)
        started = time.perf_counter()
        assert not client.shutdown(0.5)
        assert time.perf_counter() - started < 1.0
    finally:
        listener.close()


def test_calls_are_marked_aggregated_only_when_the_server_accepted_the_aggregates():
    def reject_aggregates(n, events):
        rejected = [{"index": i, "event_id": e["event_id"],
                     "error": "type: unknown event type `api_aggregate`"}
                    for i, e in enumerate(events) if e["type"] == "api_aggregate"]
        return 200, {"accepted": len(events) - len(rejected), "duplicates": 0,
                     "rejected": rejected}, {}

    old_server = FakeCollector(reject_aggregates)
    try:
        client = client_for(old_server.url, batch_size=10)
        for i in range(25):
            client.record("GET", "/a", 200, 1.0)
        client.shutdown(5.0)
        calls = old_server.events("api_call")
        assert len(calls) == 25 and not any("aggregated" in c for c in calls)
        stats = client.stats()
        assert stats["aggregates_accepted"] is False and stats["rejected_aggregates"] >= 1
        assert stats["rejected_calls"] == 0
    finally:
        old_server.close()


def test_without_aggregates_calls_are_sent_unmarked_and_at_once(collector):
    client = client_for(collector.url, aggregates=False, batch_size=10, flush_interval=60.0)
    for i in range(25):
        client.record("GET", "/a", 200, 1.0)
    deadline = time.monotonic() + 5
    while len(collector.events("api_call")) < 20:  # two full batches before any flush
        assert time.monotonic() < deadline
        time.sleep(0.01)
    client.shutdown(5.0)
    assert collector.events("api_aggregate") == []
    calls = collector.events("api_call")
    assert len(calls) == 25 and not any("aggregated" in c for c in calls)


def test_a_forked_worker_gets_its_own_sender(collector):
    import os

    client = client_for(collector.url)
    client.record("GET", "/parent", 200, 1.0)
    pid = os.fork()
    if pid == 0:  # the child: record, ship, exit without running the parent's atexit
        try:
            client.record("GET", "/child", 200, 1.0)
            ok = client.shutdown(5.0) and client.stats()["sent_events"] >= 1
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.shutdown(5.0)
    routes = sorted(c["route"] for c in collector.events("api_call"))
    assert routes == ["/child", "/parent"], "each process sends its own calls once"
