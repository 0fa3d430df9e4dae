"""Business-weighted, deterministic sampling of raw ``api_call`` events: the same rules, defaults
and hash as the Rust client (``crates/valuetrace-client/src/sampling.rs``), so both languages keep
the same sessions.

The rate of a call is the weight of the first route rule whose glob matches ``METHOD /route`` (or
``/route``), else the default weight; × the premium multiplier for premium plans, × the new-user
multiplier for users in their first days; capped at 1. Server errors (and client errors when
``keep_client_errors``), slow calls and calls that carry a value are always kept. The keep decision
compares ``stable_hash(session or user or event id)`` with ``rate × 2⁶⁴``, so every call of a
session with the same rate is kept or dropped together: journeys stay whole.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

MASK64 = (1 << 64) - 1
_SEED = 0xCBF29CE484222325
_STEP = 0x517CC1B727220A95
# Rust's `u64::MAX as f64` rounds to 2^64 exactly.
_U64_MAX_AS_F64 = 18446744073709551616.0


def mix(x: int) -> int:
    """SplitMix64's finalizer of a 64-bit number (Rust ``sampling::mix``)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stable_hash(text: str) -> int:
    """The Rust ``stable_hash``: 8 UTF-8 bytes per step (little-endian, the last word
    zero-padded, the length in the seed), each step an xor and a folded multiply (the low and
    high halves of the 128-bit product, xored), then SplitMix64's finalizer."""
    data = text.encode("utf-8")
    h = _SEED ^ len(data)
    for at in range(0, len(data), 8):
        word = int.from_bytes(data[at : at + 8], "little")
        product = (h ^ word) * _STEP
        h = (product & MASK64) ^ (product >> 64)
    return mix(h)


def threshold(rate: float) -> int:
    """``(rate * u64::MAX as f64) as u64`` as Rust computes it (a saturating, truncating cast)."""
    if not rate > 0.0:  # also NaN
        return 0
    scaled = rate * _U64_MAX_AS_F64
    return MASK64 if scaled >= _U64_MAX_AS_F64 else int(scaled)


def glob(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters (including none); everything else literally."""
    first_star = pattern.find("*")
    if first_star < 0:
        return pattern == text
    last_star = pattern.rfind("*")
    first, last = pattern[:first_star], pattern[last_star + 1 :]
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    if first_star == last_star:
        return True
    rest = text[len(first) : len(text) - len(last)]
    for part in pattern[first_star + 1 : last_star].split("*"):
        if not part:
            continue
        at = rest.find(part)
        if at < 0:
            return False
        rest = rest[at + len(part) :]
    return True


@dataclass(frozen=True)
class RouteWeight:
    """A glob over ``METHOD /route`` or ``/route`` (``*`` matches anything) and its weight."""

    pattern: str
    weight: float


def _default_routes() -> tuple[RouteWeight, ...]:
    return (
        RouteWeight("*/payments*", 1.0),
        RouteWeight("*/checkout*", 1.0),
        RouteWeight("*/recommendations*", 0.8),
        RouteWeight("*/users/*", 0.3),
        RouteWeight("*/health*", 0.05),
    )


@dataclass(frozen=True)
class SamplingPolicy:
    """Which raw events to keep. The defaults are the Rust client's."""

    routes: tuple[RouteWeight, ...] = field(default_factory=_default_routes)
    default_weight: float = 0.1
    premium_plans: frozenset[str] = frozenset({"pro", "enterprise", "premium"})
    premium_multiplier: float = 1.5
    new_user_multiplier: float = 2.0
    #: Calls at least this slow (ms) are always kept.
    slow_ms: float = 1000.0
    #: Keep every 4xx too (5xx are always kept).
    keep_client_errors: bool = True

    def __post_init__(self) -> None:
        routes = tuple(r if isinstance(r, RouteWeight) else RouteWeight(*r) for r in self.routes)
        object.__setattr__(self, "routes", routes)
        object.__setattr__(self, "premium_plans", frozenset(self.premium_plans))

    def route_weight(self, method: str, route: str) -> float:
        """The weight of the first rule matching ``METHOD /route``, else the default."""
        for rule in self.routes:
            m, sep, path = rule.pattern.partition(" ")
            if sep:
                if m.upper() == method.upper() and glob(path, route):
                    return rule.weight
            elif glob(rule.pattern, route):
                return rule.weight
        return self.default_weight

    def always_keep(self, status: int, latency_ms: float, has_value: bool = False) -> bool:
        return (
            status >= 500
            or (self.keep_client_errors and status >= 400)
            or latency_ms >= self.slow_ms
            or has_value
        )

    def combine(self, weight: float, plan: str | None, new_user: bool) -> float:
        """A route weight × the plan and new-user multipliers, clamped to (0, 1]."""
        rate = weight
        if plan is not None and plan in self.premium_plans:
            rate *= self.premium_multiplier
        if new_user:
            rate *= self.new_user_multiplier
        return min(max(rate, sys.float_info.min), 1.0)

    def rate(
        self,
        method: str,
        route: str,
        status: int,
        latency_ms: float,
        plan: str | None = None,
        new_user: bool = False,
        has_value: bool = False,
    ) -> float:
        """The sampling rate of a call in (0, 1]."""
        if self.always_keep(status, latency_ms, has_value):
            return 1.0
        return self.combine(self.route_weight(method, route), plan, new_user)

    @staticmethod
    def keep(
        rate: float,
        session_id: str | None = None,
        user_id: str | None = None,
        event_id: str = "",
    ) -> bool:
        """Whether to keep a call at ``rate``: its session's (else user's, else event's) hash."""
        if rate >= 1.0:
            return True
        key = session_id if session_id is not None else user_id if user_id is not None else event_id
        return stable_hash(key) <= threshold(rate)
