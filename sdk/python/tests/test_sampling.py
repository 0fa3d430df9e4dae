"""Sampling: the same hashes, thresholds and decisions as the Rust client (golden values printed by
a scratch program built from `crates/valuetrace-client/src/sampling.rs` with rustc)."""

import pytest

from valuetrace.sampling import MASK64, SamplingPolicy, glob, mix, stable_hash, threshold

# stable_hash(text) as computed by the Rust `valuetrace_client::sampling::stable_hash`.
RUST_HASHES = {
    "": 14087677454934409008,
    "a": 13563776542832212594,
    "b": 1186391512457795642,
    "session-1": 15001952539466655717,
    "session-42": 16468070271605110834,
    "u-123": 1501762360258330888,
    "s-9f2": 8827611332501165012,
    "0b9c6f1e-7d1a-4c55-9a2e-5b8f0e1d2c3a": 7412009680927035644,
    "héllo wörld": 8512370419406070107,
    "日本": 14537196705128030229,
    "12345678": 109274204820195650,
    "123456789": 11094543203335314307,
}
RUST_MIX = {
    0: 16294208416658607535,
    1: 10451216379200822465,
    2: 10905525725756348110,
    42: 13679457532755275413,
    1_000_000: 7497680628364559847,
    MASK64: 16490336266968443936,
}
# `(rate * u64::MAX as f64) as u64`.
RUST_THRESHOLDS = {
    0.05: 922337203685477632,
    0.1: 1844674407370955264,
    0.2: 3689348814741910528,
    0.3: 5534023222112865280,
    0.45: 8301034833169298432,
    0.8: 14757395258967642112,
    0.9: 16602069666338596864,
    0.9999999999: 18446744071864877056,
    1.0: 18446744073709551615,
    2.2250738585072014e-308: 0,
    0.1 * 1.5: 2767011611056433152,
    0.3 * 1.5 * 2.0: 16602069666338594816,
}
# The sessions `session-0` … `session-199` Rust keeps at rate 0.1.
RUST_KEPT_AT_0_1 = [
    12, 13, 17, 27, 48, 62, 69, 72, 78, 82, 89, 104, 106, 111, 128, 137, 143, 150, 155, 175, 189
]


@pytest.mark.parametrize("text,expected", sorted(RUST_HASHES.items()))
def test_stable_hash_matches_rust(text, expected):
    assert stable_hash(text) == expected


@pytest.mark.parametrize("x,expected", sorted(RUST_MIX.items()))
def test_mix_matches_rust(x, expected):
    assert mix(x) == expected


@pytest.mark.parametrize("rate,expected", sorted(RUST_THRESHOLDS.items()))
def test_threshold_matches_rusts_saturating_cast(rate, expected):
    assert threshold(rate) == expected


def test_the_same_sessions_are_kept_as_in_rust():
    kept = [i for i in range(200) if SamplingPolicy.keep(0.1, session_id=f"session-{i}")]
    assert kept == RUST_KEPT_AT_0_1


def test_rates_follow_route_weights_plan_and_new_users_capped_at_one():
    p = SamplingPolicy()
    assert p.rate("POST", "/api/payments", 200, 20.0) == 1.0
    assert p.rate("GET", "/api/checkout/{id}", 200, 20.0) == 1.0
    assert p.rate("GET", "/api/recommendations", 200, 20.0) == 0.8
    assert p.rate("GET", "/api/users/{id}", 200, 20.0) == 0.3
    assert p.rate("GET", "/healthz", 200, 1.0) == 0.05
    assert p.rate("GET", "/api/search", 200, 20.0) == 0.1
    assert p.rate("GET", "/api/search", 200, 20.0, new_user=True) == pytest.approx(0.2)
    assert p.rate("GET", "/api/users/me", 200, 20.0, plan="pro", new_user=True) == pytest.approx(0.9)
    assert p.rate("GET", "/api/search", 200, 20.0, plan="free") == 0.1
    assert p.rate("GET", "/api/recommendations", 200, 20.0, plan="enterprise") == 1.0
    # Errors, slow calls and value-carrying calls are always kept.
    assert p.rate("GET", "/healthz", 503, 1.0) == 1.0
    assert p.rate("GET", "/api/search", 404, 1.0) == 1.0
    assert SamplingPolicy(keep_client_errors=False).rate("GET", "/api/search", 404, 1.0) == 0.1
    assert p.rate("GET", "/api/search", 200, 2500.0) == 1.0
    assert p.rate("GET", "/api/search", 200, 1.0, has_value=True) == 1.0


def test_method_rules_and_first_match_wins():
    p = SamplingPolicy(routes=(("POST /api/items*", 1.0), ("/api/items*", 0.25)), default_weight=0.5)
    assert p.rate("post", "/api/items", 200, 1.0) == 1.0
    assert p.rate("GET", "/api/items/{id}", 200, 1.0) == 0.25
    assert p.rate("GET", "/other", 200, 1.0) == 0.5


def test_sessions_are_kept_or_dropped_whole_and_rates_hold_on_average():
    p = SamplingPolicy()
    sessions = 20_000
    kept = 0
    for s in range(sessions):
        session = f"session-{s}"
        decisions = {
            p.keep(p.rate("GET", route, 200, 20.0), session_id=session)
            for route in ("/api/search", "/api/items/{id}", "/api/cart")
        }
        assert len(decisions) == 1, session
        kept += decisions.pop()
    expected = 0.1 * sessions
    sd = (sessions * 0.1 * 0.9) ** 0.5
    assert abs(kept - expected) < 5 * sd, kept


def test_keep_falls_back_from_session_to_user_to_event_id():
    rate = 0.5
    assert SamplingPolicy.keep(rate, "s", "u", "e") == (stable_hash("s") <= threshold(rate))
    assert SamplingPolicy.keep(rate, None, "u", "e") == (stable_hash("u") <= threshold(rate))
    assert SamplingPolicy.keep(rate, None, None, "e") == (stable_hash("e") <= threshold(rate))
    assert SamplingPolicy.keep(1.0, None, None, "")


def test_globs_match_like_the_rust_client():
    assert glob("*/payments*", "/api/payments/process")
    assert glob("/api/*/items", "/api/cart/items")
    assert not glob("/api/*/items", "/api/cart/item")
    assert glob("/healthz", "/healthz")
    assert not glob("/healthz", "/healthz/x")
    assert glob("*", "")
    assert glob("/a*b*c", "/a-x-b-y-c")
    assert not glob("/a*b*c", "/a-x-c-y-b")
    assert not glob("ab*ba", "aba")
    assert glob("*/users/*", "/api/users/{id}")
