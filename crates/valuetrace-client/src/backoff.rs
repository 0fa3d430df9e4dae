//! Retry delays: exponential from `base_ms`, capped at `max_ms`, with full jitter (a uniform draw
//! in `[0, ceiling]`, as AWS's "exponential backoff and jitter" recommends, so that many clients
//! retrying after one outage do not come back in lockstep), for at most `max_attempts` retries.

#[derive(Debug, Clone)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
    pub max_attempts: u32,
    state: u64,
}

impl Backoff {
    pub fn new(base_ms: u64, max_ms: u64, max_attempts: u32, seed: u64) -> Backoff {
        Backoff {
            base_ms,
            max_ms,
            max_attempts,
            state: seed,
        }
    }

    /// The ceiling of retry `attempt` (0-based): `min(max_ms, base_ms · 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> u64 {
        self.base_ms
            .saturating_mul(1u64 << attempt.min(40))
            .min(self.max_ms)
    }

    /// The delay before retry `attempt`, or `None` when the retries are used up.
    pub fn delay(&mut self, attempt: u32) -> Option<u64> {
        if attempt >= self.max_attempts {
            return None;
        }
        let z = valuetrace_model::mix::SplitMix64(self.state).next_u64();
        self.state = self.state.wrapping_add(valuetrace_model::mix::GOLDEN_GAMMA);
        Some(z % (self.ceiling(attempt) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap_and_stop() {
        let mut b = Backoff::new(100, 5_000, 8, 7);
        let ceilings: Vec<u64> = (0..8).map(|a| b.ceiling(a)).collect();
        assert_eq!(
            ceilings,
            vec![100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]
        );
        for attempt in 0..8 {
            let delay = b.delay(attempt).expect("within the attempts");
            assert!(delay <= b.ceiling(attempt));
        }
        assert_eq!(b.delay(8), None);
        // Jitter: the draws are not all the same.
        let draws: std::collections::BTreeSet<u64> = (0..50).filter_map(|_| b.delay(5)).collect();
        assert!(draws.len() > 10);
    }
}
