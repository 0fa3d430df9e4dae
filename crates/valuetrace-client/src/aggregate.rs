//! Exact in-process aggregates: every request is counted per (route, method, status class, plan,
//! variant) with a latency histogram, whether or not its raw event is sampled (Apitally's design):
//! health answers stay exact while raw events are sampled by business weight.
//!
//! Record path: the key's parts are hashed (no allocation) and the call lands in one of
//! [`SHARDS`] mutex-guarded maps picked by the calling thread, so threads rarely share a lock; a
//! key's strings are copied only the first time it is seen in a flush interval. `drain` swaps
//! every shard out at flush time.
//!
//! Latency histogram: log-linear buckets of 2% relative width from 0.01 ms (bucket
//! `ceil(ln(ms / 0.01) / ln(1.02))`), so any quantile computed from it is within 2% of the truth.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

pub const SHARDS: usize = 16;
const MIN_MS: f64 = 0.01;
const GAMMA: f64 = 1.02;

/// What one aggregate counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateKey {
    pub route: String,
    pub method: String,
    /// 1–5 (1xx … 5xx).
    pub status_class: u8,
    pub plan: Option<String>,
    pub variant: Option<String>,
}

/// Counts and a latency histogram (sparse: bucket → count).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub latency_sum_ms: f64,
    pub buckets: HashMap<i32, u64>,
}

/// The histogram bucket of a latency.
pub fn bucket(latency_ms: f64) -> i32 {
    if latency_ms <= MIN_MS {
        return 0;
    }
    (latency_ms / MIN_MS).ln().div_euclid(GAMMA.ln()) as i32 + 1
}

/// The representative latency of a bucket: the geometric middle of its bounds.
pub fn bucket_value(bucket: i32) -> f64 {
    if bucket <= 0 {
        return MIN_MS;
    }
    MIN_MS * GAMMA.powf(f64::from(bucket) - 0.5)
}

impl Aggregate {
    /// The q-quantile of the recorded latencies (within 2%), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let mut buckets: Vec<(&i32, &u64)> = self.buckets.iter().collect();
        buckets.sort();
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (bucket, count) in buckets {
            seen += count;
            if seen >= rank {
                return Some(bucket_value(*bucket));
            }
        }
        None
    }
}

fn key_hash(
    route: &str,
    method: &str,
    class: u8,
    plan: Option<&str>,
    variant: Option<&str>,
) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (route, method, class, plan, variant).hash(&mut hasher);
    hasher.finish()
}

type Shard = HashMap<u64, Vec<(AggregateKey, Aggregate)>>;

/// The aggregates of one process between two flushes.
pub struct Aggregator {
    shards: Vec<Mutex<Shard>>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

fn shard_of_thread() -> usize {
    thread_local! {
        static SHARD: usize = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::thread::current().id().hash(&mut hasher);
            hasher.finish() as usize % SHARDS
        };
    }
    SHARD.with(|s| *s)
}

impl Aggregator {
    /// Counts one request.
    pub fn record(
        &self,
        route: &str,
        method: &str,
        status: u16,
        plan: Option<&str>,
        variant: Option<&str>,
        latency_ms: f64,
    ) {
        let class = (status / 100).clamp(1, 5) as u8;
        let hash = key_hash(route, method, class, plan, variant);
        let Ok(mut shard) = self.shards[shard_of_thread()].lock() else {
            return; // a poisoned shard loses counts; it never panics the host
        };
        let entries = shard.entry(hash).or_default();
        let found = entries.iter_mut().find(|(k, _)| {
            k.route == route
                && k.method == method
                && k.status_class == class
                && k.plan.as_deref() == plan
                && k.variant.as_deref() == variant
        });
        let aggregate = match found {
            Some((_, aggregate)) => aggregate,
            None => {
                entries.push((
                    AggregateKey {
                        route: route.into(),
                        method: method.into(),
                        status_class: class,
                        plan: plan.map(Into::into),
                        variant: variant.map(Into::into),
                    },
                    Aggregate::default(),
                ));
                &mut entries.last_mut().expect("just pushed").1
            }
        };
        aggregate.count += 1;
        aggregate.latency_sum_ms += latency_ms;
        *aggregate.buckets.entry(bucket(latency_ms)).or_default() += 1;
    }

    /// Takes every aggregate recorded since the last drain, merged across shards.
    pub fn drain(&self) -> Vec<(AggregateKey, Aggregate)> {
        let mut merged: HashMap<AggregateKey, Aggregate> = HashMap::new();
        for shard in &self.shards {
            let taken = match shard.lock() {
                Ok(mut shard) => std::mem::take(&mut *shard),
                Err(_) => continue,
            };
            for (key, aggregate) in taken.into_values().flatten() {
                let into = merged.entry(key).or_default();
                into.count += aggregate.count;
                into.latency_sum_ms += aggregate.latency_sum_ms;
                for (bucket, count) in aggregate.buckets {
                    *into.buckets.entry(bucket).or_default() += count;
                }
            }
        }
        let mut out: Vec<_> = merged.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_per_key_across_threads_and_drain_resets() {
        let aggregator = Aggregator::default();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let aggregator = &aggregator;
                scope.spawn(move || {
                    for i in 0..10_000u32 {
                        let status = if i % 10 == 0 { 503 } else { 200 };
                        let plan = if t % 2 == 0 { Some("pro") } else { None };
                        aggregator.record(
                            "/api/items/{id}",
                            "GET",
                            status,
                            plan,
                            None,
                            f64::from(i % 100),
                        );
                    }
                });
            }
        });
        let drained = aggregator.drain();
        let total: u64 = drained.iter().map(|(_, a)| a.count).sum();
        assert_eq!(total, 40_000);
        // (2xx, 5xx) × (pro, none) = 4 keys.
        assert_eq!(drained.len(), 4);
        let errors: u64 = drained
            .iter()
            .filter(|(k, _)| k.status_class == 5)
            .map(|(_, a)| a.count)
            .sum();
        assert_eq!(errors, 4_000);
        assert!(aggregator.drain().is_empty());
    }

    #[test]
    fn quantiles_from_the_histogram_are_within_two_percent() {
        let aggregator = Aggregator::default();
        for i in 1..=10_000 {
            aggregator.record("/a", "GET", 200, None, None, f64::from(i) / 10.0);
        }
        let (_, aggregate) = &aggregator.drain()[0];
        for (q, truth) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let estimate = aggregate.quantile(q).expect("quantile");
            assert!(
                (estimate - truth).abs() / truth < 0.02,
                "q{q}: {estimate} vs {truth}"
            );
        }
    }
}
