"""Retry delays (Rust ``backoff.rs``): exponential from ``base_ms``, capped at ``max_ms``, with full
jitter (a uniform draw in ``[0, ceiling]``) so that many clients retrying after one outage do not
come back in lockstep, for at most ``max_attempts`` retries."""

from __future__ import annotations

from .sampling import MASK64


class Backoff:
    def __init__(self, base_ms: int, max_ms: int, max_attempts: int, seed: int) -> None:
        self.base_ms = int(base_ms)
        self.max_ms = int(max_ms)
        self.max_attempts = int(max_attempts)
        self._state = seed & MASK64

    def ceiling(self, attempt: int) -> int:
        """The ceiling of retry ``attempt`` (0-based): ``min(max_ms, base_ms · 2^attempt)``."""
        return min(self.base_ms * (1 << min(attempt, 40)), self.max_ms)

    def delay(self, attempt: int) -> int | None:
        """The delay in ms before retry ``attempt``, or None when the retries are used up."""
        if attempt >= self.max_attempts:
            return None
        self._state = (self._state + 0x9E3779B97F4A7C15) & MASK64
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        return z % (self.ceiling(attempt) + 1)
