//! How many users, and how sure: a count of users carries how it was obtained.
//!
//! - `exact`: every call of the slice reached the store (no sampling), so the distinct users of
//!   the fact columns are the users.
//! - `estimate`: the client SDKs counted every call in aggregates and shipped each aggregate's
//!   users as HyperLogLog registers ([`valuetrace_store::sketch::CellUsers`]); the merged sketch
//!   gives the count and its 95% interval. The raw calls they also sent are a sample of users
//!   and would under-count them (320 real users showed as 25).
//! - `lower_bound`: calls were sampled with no aggregate counting them: the kept calls' users are
//!   at least this many.
//!
//! Adoption (users of an endpoint ÷ active users) inherits the kind; for an estimate its interval
//! divides the endpoint's interval by the active users' one, bound against bound (at least 95%).

use serde::{Deserialize, Serialize};
use valuetrace_store::sketch::{CellUsers, UsersKind};

/// A user count, how it was obtained, and a 95% interval for an estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserCount {
    pub value: usize,
    pub kind: Kind,
    /// `[low, high]`; only for an estimate.
    pub ci95: Option<[u64; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Exact,
    Estimate,
    LowerBound,
}

impl UserCount {
    /// The distinct users of the fact columns: exact unless some of the calls were sampled.
    pub fn of_facts(users: usize, sampled: bool) -> UserCount {
        UserCount {
            value: users,
            kind: if sampled {
                Kind::LowerBound
            } else {
                Kind::Exact
            },
            ci95: None,
        }
    }

    /// The users of the clients' sketches (and of raw calls no aggregate counted).
    pub fn of_sketch(users: &CellUsers) -> UserCount {
        let report = users.report();
        let kind = match report.kind {
            UsersKind::Exact => Kind::Exact,
            UsersKind::Estimate => Kind::Estimate,
            UsersKind::LowerBound => Kind::LowerBound,
        };
        UserCount {
            value: report.value as usize,
            kind,
            ci95: match (kind, report.high) {
                (Kind::Estimate, Some(high)) => Some([report.low, high]),
                _ => None,
            },
        }
    }

    fn bounds(&self) -> [f64; 2] {
        let [low, high] = self.ci95.unwrap_or([self.value as u64; 2]);
        [low as f64, high as f64]
    }

    /// `self ÷ active` and, when either count is an estimate, its 95% interval (within 0–1).
    pub fn share_of(&self, active: &UserCount) -> (Option<f64>, Option<[f64; 2]>) {
        let share = crate::stats::ratio(self.value as f64, active.value as f64).map(|s| s.min(1.0));
        if self.ci95.is_none() && active.ci95.is_none() {
            return (share, None);
        }
        let ([low, high], [active_low, active_high]) = (self.bounds(), active.bounds());
        let interval = share.map(|_| {
            let low = if active_high > 0.0 {
                (low / active_high).min(1.0)
            } else {
                0.0
            };
            let high = if active_low > 0.0 {
                (high / active_low).min(1.0)
            } else {
                1.0
            };
            [low, high]
        });
        (share, interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_estimates_is_bounded_by_the_bounds() {
        let endpoint = UserCount {
            value: 100,
            kind: Kind::Estimate,
            ci95: Some([90, 110]),
        };
        let active = UserCount {
            value: 200,
            kind: Kind::Estimate,
            ci95: Some([180, 220]),
        };
        let (share, ci) = endpoint.share_of(&active);
        assert_eq!(share, Some(0.5));
        let [low, high] = ci.unwrap();
        assert!((low - 90.0 / 220.0).abs() < 1e-12 && (high - 110.0 / 180.0).abs() < 1e-12);
        let exact = UserCount::of_facts(3, false);
        assert_eq!(
            exact.share_of(&UserCount::of_facts(4, false)),
            (Some(0.75), None)
        );
        assert_eq!(exact.share_of(&UserCount::of_facts(0, false)), (None, None));
    }
}
