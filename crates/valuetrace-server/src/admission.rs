//! Admission control: the server says no early and cheaply instead of growing memory.
//!
//! - **Per-project rate limit** ([`TokenBucket`], events per second with a burst): a project over
//!   its rate gets 429 with `Retry-After`, before its body is read when the bucket is already
//!   empty. The bucket may go into debt by one batch, so a batch larger than the burst is still
//!   possible and the debt is paid back by waiting.
//! - **In-flight budget** ([`InFlight`]): every admitted request reserves the bytes it will hold
//!   (its body, then its decoded body and parsed events); when the budget is spent, 503 with
//!   `Retry-After`. One project may hold at most a share of the budget, so a noisy project cannot
//!   starve the others.
//! - **Writer behind**: checked by the ingest handler against `storage.max_buffered_rows`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token bucket in events per second. Thread-safe; a mutex per project is cheap because it is
/// taken once or twice per request, not per event.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate_per_second: f64, burst: f64) -> Self {
        TokenBucket {
            rate: rate_per_second,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    fn refill(&self, state: &mut (f64, Instant), now: Instant) {
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.rate).min(self.burst);
        state.1 = now;
    }

    /// `Err(wait)` when the bucket is empty or in debt.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut state, now);
        if state.0 > 0.0 {
            Ok(())
        } else {
            Err(self.wait_for(state.0))
        }
    }

    /// Takes `events` tokens when the bucket is not empty (it may go into debt); else
    /// `Err(wait)`.
    pub fn take(&self, events: f64, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut state, now);
        if state.0 > 0.0 {
            state.0 -= events;
            Ok(())
        } else {
            Err(self.wait_for(state.0))
        }
    }

    /// How long until the bucket holds a token again.
    fn wait_for(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.rate).clamp(0.001, 3600.0))
    }
}

#[derive(Debug, Default)]
struct Usage {
    total: usize,
    per_project: HashMap<String, usize>,
}

/// The in-flight byte budget shared by all ingest requests.
#[derive(Debug)]
pub struct InFlight {
    limit: usize,
    project_limit: usize,
    usage: Mutex<Usage>,
}

impl InFlight {
    /// `project_share` in (0, 1]: the part of `limit` one project may hold.
    pub fn new(limit: usize, project_share: f64) -> Arc<Self> {
        Arc::new(InFlight {
            limit,
            project_limit: ((limit as f64) * project_share.clamp(0.01, 1.0)) as usize,
            usage: Mutex::new(Usage::default()),
        })
    }

    /// Reserves `bytes` for `project`, or `None` when the budget (total or the project's share)
    /// would be exceeded. A request larger than the whole budget is admitted when nothing else is
    /// in flight, so that the largest allowed body is never refused forever.
    pub fn reserve(self: &Arc<Self>, project: &str, bytes: usize) -> Option<Reservation> {
        let mut reservation = Reservation {
            budget: self.clone(),
            project: project.to_owned(),
            bytes: 0,
        };
        reservation.grow(bytes).then_some(reservation)
    }

    /// Total bytes and requests currently reserved.
    pub fn in_use(&self) -> (usize, usize) {
        let usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        (
            usage.total,
            usage.per_project.values().filter(|b| **b > 0).count(),
        )
    }
}

/// Bytes held by one request; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<InFlight>,
    project: String,
    bytes: usize,
}

impl Reservation {
    /// Reserves `more` bytes; `false` (and nothing reserved) when that would exceed the budget.
    pub fn grow(&mut self, more: usize) -> bool {
        let budget = &self.budget;
        let mut usage = budget.usage.lock().unwrap_or_else(|p| p.into_inner());
        let project_used = usage.per_project.get(&self.project).copied().unwrap_or(0);
        // The only request in flight may exceed the budget, so that the largest allowed body
        // is never refused forever.
        let alone = usage.total == self.bytes;
        let fits =
            usage.total + more <= budget.limit && project_used + more <= budget.project_limit;
        if !fits && !alone {
            return false;
        }
        usage.total += more;
        *usage.per_project.entry(self.project.clone()).or_default() += more;
        self.bytes += more;
        true
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives back what is held beyond `bytes` (e.g. a body shorter than first assumed).
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            return;
        }
        let release = self.bytes - bytes;
        let mut usage = self.budget.usage.lock().unwrap_or_else(|p| p.into_inner());
        usage.total = usage.total.saturating_sub(release);
        if let Some(used) = usage.per_project.get_mut(&self.project) {
            *used = used.saturating_sub(release);
        }
        self.bytes = bytes;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut usage = self.budget.usage.lock().unwrap_or_else(|p| p.into_inner());
        usage.total = usage.total.saturating_sub(self.bytes);
        if let Some(used) = usage.per_project.get_mut(&self.project) {
            *used = used.saturating_sub(self.bytes);
            if *used == 0 {
                usage.per_project.remove(&self.project);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate_and_allows_one_batch_of_debt() {
        let start = Instant::now();
        let bucket = TokenBucket::new(100.0, 200.0);
        assert!(bucket.take(150.0, start).is_ok());
        assert!(
            bucket.take(150.0, start).is_ok(),
            "50 left: may go into debt"
        );
        let wait = bucket.take(1.0, start).expect_err("in debt");
        assert!((1.0..1.02).contains(&wait.as_secs_f64()), "{wait:?}");
        assert!(bucket.check(start + Duration::from_millis(990)).is_err());
        assert!(bucket.check(start + Duration::from_millis(1010)).is_ok());
        // Refill never exceeds the burst.
        assert!(bucket.take(200.0, start + Duration::from_secs(100)).is_ok());
        assert!(bucket.check(start + Duration::from_secs(100)).is_err());
    }

    #[test]
    fn budget_caps_total_and_each_projects_share_and_releases_on_drop() {
        let budget = InFlight::new(1000, 0.5);
        let a1 = budget.reserve("a", 400).expect("fits");
        assert!(budget.reserve("a", 200).is_none(), "a's share is 500");
        let mut b1 = budget.reserve("b", 500).expect("b has its own share");
        assert!(!b1.grow(1), "b's share is full");
        assert!(budget.reserve("c", 200).is_none(), "the total is 900 + 200");
        let c1 = budget.reserve("c", 100).expect("fits the total");
        assert_eq!(budget.in_use(), (1000, 3));
        drop((a1, c1));
        drop(b1);
        assert_eq!(budget.in_use(), (0, 0));
        // Larger than the whole budget, but alone: admitted.
        let big = budget.reserve("a", 5000).expect("alone");
        assert!(budget.reserve("b", 1).is_none());
        drop(big);
        let mut shrinking = budget.reserve("a", 400).expect("fits");
        shrinking.shrink_to(100);
        assert_eq!(budget.in_use(), (100, 1));
        assert!(shrinking.grow(400));
        drop(shrinking);
        assert_eq!(budget.in_use(), (0, 0));
    }
}
