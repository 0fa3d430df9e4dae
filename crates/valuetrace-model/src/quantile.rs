//! The product's one quantile definition: the nearest rank. The `q` quantile of `n` sorted
//! values is the value at 1-based rank ⌈q·n⌉ (at least 1): always a value that was observed
//! (p50 of 1, 2 is 1; p95 of 100 latencies is the 95th smallest). Endpoint health (from the
//! latency sketch), funnels, time to first value, integrations, experiments, alerts and the
//! client's aggregates all read ranks through [`nearest_rank`], so one p95 means one thing.

/// The 0-based index of the `q` quantile (clamped to [0, 1]) among `n` > 0 sorted values.
pub fn nearest_rank(n: u64, q: f64) -> u64 {
    debug_assert!(n > 0, "a quantile of nothing");
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as u64;
    rank.clamp(1, n.max(1)) - 1
}

/// The `q` quantile of ascending `sorted` values (`None` when empty or `q` is not in [0, 1]).
pub fn quantile_of_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    sorted
        .get(nearest_rank(sorted.len() as u64, q) as usize)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_nearest_ranks() {
        assert_eq!(nearest_rank(1, 0.5), 0);
        assert_eq!(nearest_rank(2, 0.5), 0);
        assert_eq!(nearest_rank(2, 0.51), 1);
        assert_eq!(nearest_rank(100, 0.95), 94);
        assert_eq!(nearest_rank(100, 0.0), 0);
        assert_eq!(nearest_rank(100, 1.0), 99);
        assert_eq!(nearest_rank(10, 2.0), 9);
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile_of_sorted(&values, 0.95), Some(19.0));
        assert_eq!(quantile_of_sorted(&values, 0.5), Some(10.0));
        assert_eq!(quantile_of_sorted(&[], 0.5), None);
        assert_eq!(quantile_of_sorted(&values, f64::NAN), None);
    }
}
