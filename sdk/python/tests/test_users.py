"""The distinct-user sketch: the same hash and registers as the Rust client (values pinned in
``crates/valuetrace-client/src/users.rs``), and the aggregates carry it."""

from valuetrace import users
from valuetrace.aggregate import Aggregator
from valuetrace.events import api_aggregates
from valuetrace.sampling import mix


def sketch_of(ids):
    sketch = {}
    for user_id in ids:
        users.insert(sketch, user_id)
    return sketch


def test_user_hash_and_registers_are_pinned_across_languages():
    assert [users.user_hash(i) for i in ["", "u1", "user-42", "alice@example.com", "日本"]] == [
        4050258365532094138,
        17823158690666160282,
        17667317780497923817,
        7219092594553260037,
        3859317665778449600,
    ]
    small = users.registers(sketch_of(f"user-{i}" for i in range(5)))
    assert small == [[692, 2], [697, 2], [1231, 1], [1408, 2], [2949, 2]]
    large = users.registers(sketch_of(f"user-{i}" for i in range(1000)))
    digest = 0
    for index, rank in large:
        digest = mix(digest ^ (index << 8 | rank))
    assert (len(large), digest) == (882, 16217573977041251095)


def test_ranks_match_the_rust_register_math():
    assert users.register_of((1 << 64) - 1) == (4095, 1)
    assert users.register_of(0) == (0, 53)
    assert users.register_of(1 << 51) == (0, 1)
    assert users.register_of(1 << 50) == (0, 2)
    assert users.register_of(0xABC0_0000_0000_0001) == (0xABC, 52)


def test_aggregates_ship_the_users_of_their_key():
    aggregator = Aggregator()
    key = ("GET", "/api/items/{id}", 2, None, None)
    for i in range(40):
        aggregator.record(key, 3.0, f"user-{i % 20}")
    aggregator.record(key, 3.0, None)
    start, end, table = aggregator.drain()
    [event] = api_aggregates(start, end, table, "shop", "test")
    assert event["count"] == 41
    assert event["user_sketch"] == users.registers(sketch_of(f"user-{i}" for i in range(20)))
