//! The sender's circuit breaker. Closed: sends go through; after `failures_to_open` consecutive
//! failures it opens. Open: sends are refused until `cool_down_ms` has passed, then one probe is
//! allowed (half-open). The probe's success closes the breaker; its failure opens it again for
//! another cool-down. Time is passed in (epoch or monotonic ms), so tests need no sleeps.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failures_to_open: u32,
    cool_down_ms: i64,
    state: State,
    failures: u32,
    opened_at: i64,
    /// Times the breaker opened (a counter the host can read).
    pub opened: u64,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cool_down_ms: i64) -> Breaker {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            cool_down_ms,
            state: State::Closed,
            failures: 0,
            opened_at: 0,
            opened: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a send may start at `now`; moves an open breaker to half-open after the cool-down
    /// (exactly one probe: further calls are refused until that probe reports).
    pub fn allow(&mut self, now: i64) -> bool {
        match self.state {
            State::Closed => true,
            State::HalfOpen => false,
            State::Open if now - self.opened_at >= self.cool_down_ms => {
                self.state = State::HalfOpen;
                true
            }
            State::Open => false,
        }
    }

    pub fn success(&mut self) {
        self.state = State::Closed;
        self.failures = 0;
    }

    pub fn failure(&mut self, now: i64) {
        self.failures += 1;
        if self.state == State::HalfOpen || self.failures >= self.failures_to_open {
            if self.state != State::Open {
                self.opened += 1;
            }
            self.state = State::Open;
            self.opened_at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_probes_after_cool_down_and_closes_on_success() {
        let mut b = Breaker::new(3, 1_000);
        assert!(b.allow(0));
        b.failure(0);
        b.failure(1);
        assert_eq!(b.state(), State::Closed);
        b.failure(2);
        assert_eq!((b.state(), b.opened), (State::Open, 1));
        assert!(!b.allow(500));
        // After the cool-down: one probe, no second one while it is out.
        assert!(b.allow(1_002));
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.allow(1_003));
        // The probe fails: open again for a full cool-down from now.
        b.failure(1_010);
        assert_eq!((b.state(), b.opened), (State::Open, 2));
        assert!(!b.allow(1_500));
        assert!(b.allow(2_010));
        b.success();
        assert_eq!(b.state(), State::Closed);
        assert!(b.allow(2_011));
        // A success resets the failure count.
        b.failure(3_000);
        b.failure(3_001);
        b.success();
        b.failure(3_002);
        assert_eq!(b.state(), State::Closed);
    }
}
