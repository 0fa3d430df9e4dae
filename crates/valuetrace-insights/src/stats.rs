//! Small statistics the answers share: Wilson intervals for rates, exact quantiles, estimates of
//! sampled counts and sums.

use serde::{Deserialize, Serialize};

const Z95: f64 = 1.959_963_984_540_054;

/// A rate with its 95% Wilson score interval (good at small counts and near 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub successes: f64,
    pub trials: f64,
    pub rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

pub fn wilson(successes: f64, trials: f64) -> Rate {
    if trials <= 0.0 {
        return Rate {
            successes,
            trials,
            rate: None,
            ci_low: None,
            ci_high: None,
        };
    }
    let p = successes / trials;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / trials;
    let centre = (p + z2 / (2.0 * trials)) / denominator;
    let half = Z95 * (p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)).sqrt() / denominator;
    Rate {
        successes,
        trials,
        rate: Some(p),
        ci_low: Some((centre - half).max(0.0)),
        ci_high: Some((centre + half).min(1.0)),
    }
}

/// The `q` quantile (0..=1) of `values` by the nearest-rank method; sorts in place.
pub fn quantile(values: &mut [f32], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    let (_, value, _) = values.select_nth_unstable_by(rank, f32::total_cmp);
    Some(f64::from(*value))
}

/// Quantile of i64 durations (ms), nearest rank.
pub fn quantile_ms(values: &mut [i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    let (_, value, _) = values.select_nth_unstable(rank);
    Some(*value)
}

/// A count or sum over events kept with probability `1 / weight`: the Horvitz–Thompson estimate
/// `Σ w·x` and its variance `Σ w(w−1)·x²` (0 for unsampled events, weight 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub sum: f64,
    pub variance: f64,
}

impl Tally {
    #[inline]
    pub fn add(&mut self, weight: f32, x: f64) {
        let w = f64::from(weight);
        self.sum += w * x;
        if weight > 1.0 {
            self.variance += w * (w - 1.0) * x * x;
        }
    }

    /// Adds the `j`-th event (1-based) of a cluster sampled as a whole (a session's calls, which
    /// the client keeps or drops together): the sum grows by `w`, and the variance by
    /// `w(w−1)(2j−1)`, so that a cluster of `k` events contributes `w(w−1)·k²` (independent
    /// events would give `w(w−1)·k` and too narrow an interval).
    #[inline]
    pub fn add_clustered(&mut self, weight: f32, j: u32) {
        let w = f64::from(weight);
        self.sum += w;
        if weight > 1.0 {
            self.variance += w * (w - 1.0) * f64::from(2 * j - 1);
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.sum += other.sum;
        self.variance += other.variance;
    }

    pub fn sampled(&self) -> bool {
        self.variance > 0.0
    }

    /// The 95% interval when any contributing event was sampled.
    pub fn interval(&self) -> Option<[f64; 2]> {
        self.sampled().then(|| {
            let half = Z95 * self.variance.sqrt();
            [(self.sum - half).max(0.0), self.sum + half]
        })
    }
}

/// `a / b`, `None` when `b` is 0.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    // `+ 0.0` turns -0.0 (an empty float sum is -0.0) into 0.0, so answers never say "-0".
    (b != 0.0).then(|| a / b + 0.0)
}

/// Rounds for display in JSON answers (keeps goldens stable across float noise).
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_never_negative_zero() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        let r = ratio(empty, 4.0).expect("defined");
        assert!(r == 0.0 && r.is_sign_positive(), "{r}");
        assert_eq!(serde_json::to_string(&r).ok().as_deref(), Some("0.0"));
        assert_eq!(ratio(1.0, 0.0), None);
    }

    #[test]
    fn wilson_matches_a_textbook_value() {
        // 81 of 263: p = 0.308, Wilson 95% = [0.2553, 0.3662] (Newcombe 1998, table I).
        let rate = wilson(81.0, 263.0);
        assert!((rate.ci_low.unwrap() - 0.2553).abs() < 5e-4, "{rate:?}");
        assert!((rate.ci_high.unwrap() - 0.3662).abs() < 5e-4, "{rate:?}");
        assert_eq!(wilson(0.0, 0.0).rate, None);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&mut values, 0.5), Some(3.0));
        assert_eq!(quantile(&mut values, 0.95), Some(5.0));
        assert_eq!(quantile(&mut values, 0.0), Some(1.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn sampled_tallies_carry_an_interval() {
        let mut tally = Tally::default();
        tally.add(1.0, 1.0);
        assert_eq!(tally.interval(), None);
        tally.add(10.0, 1.0); // one event kept at rate 0.1 stands for 10
        assert_eq!(tally.sum, 11.0);
        let [low, high] = tally.interval().unwrap();
        assert!(low < 11.0 && high > 11.0);
        assert!((tally.variance - 90.0).abs() < 1e-9);
    }

    #[test]
    fn a_cluster_of_k_events_adds_k_squared_variance() {
        let mut tally = Tally::default();
        for j in 1..=4 {
            tally.add_clustered(10.0, j);
        }
        assert_eq!(tally.sum, 40.0);
        assert!((tally.variance - 90.0 * 16.0).abs() < 1e-9);
    }
}
