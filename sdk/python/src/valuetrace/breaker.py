"""The sender's circuit breaker (Rust ``breaker.rs``). Closed: sends go through; after
``failures_to_open`` consecutive failures it opens. Open: sends are refused until ``cool_down_ms``
has passed, then one probe is allowed (half-open). The probe's success closes the breaker; its
failure opens it again for another cool-down. Time is passed in (ms), so tests need no sleeps."""

from __future__ import annotations

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class Breaker:
    def __init__(self, failures_to_open: int, cool_down_ms: float) -> None:
        self.failures_to_open = max(int(failures_to_open), 1)
        self.cool_down_ms = cool_down_ms
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        #: Times the breaker opened.
        self.opened = 0

    def allow(self, now_ms: float) -> bool:
        """Whether a send may start at ``now_ms``; an open breaker turns half-open after the
        cool-down and lets exactly one probe through."""
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN:
            return False
        if now_ms - self.opened_at >= self.cool_down_ms:
            self.state = HALF_OPEN
            return True
        return False

    def success(self) -> None:
        self.state = CLOSED
        self.failures = 0

    def failure(self, now_ms: float) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.failures_to_open:
            if self.state != OPEN:
                self.opened += 1
            self.state = OPEN
            self.opened_at = now_ms
