//! Exact in-process aggregates: every request is counted per (route, method, status class, plan,
//! experiment variants) with a latency histogram, whether or not its raw event is sampled (Apitally's design):
//! health answers stay exact while raw events are sampled by business weight.
//!
//! Record path: the key's parts are hashed (no allocation, eight bytes per step) and the call lands in one of
//! [`SHARDS`] mutex-guarded maps picked by the calling thread, so threads rarely share a lock; a
//! key's strings are copied only the first time it is seen in a flush interval. `drain` swaps
//! every shard out at flush time.
//!
//! Latency histogram: log-linear buckets of 2% relative width from 0.01 ms (bucket
//! `floor(ln(ms / 0.01) / ln(1.02)) + 1`, dense; the model's
//! `valuetrace_model::event::latency_bucket`, which the server reads back), so
//! any quantile computed from it is within 2% of the truth. At each flush the sender turns the
//! drained aggregates into `api_aggregate` events ([`to_events`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use valuetrace_model::ApiAggregate;
use valuetrace_model::event::{latency_bucket, latency_bucket_value};

use crate::users::{UserSketch, user_hash};

pub const SHARDS: usize = 16;

/// What one aggregate counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateKey {
    pub route: String,
    pub method: String,
    /// 1–5 (1xx … 5xx).
    pub status_class: u8,
    pub plan: Option<String>,
    /// Experiment → variant.
    pub experiments: BTreeMap<String, String>,
    /// The third party of an outbound call (`None`: an inbound call).
    pub provider: Option<String>,
}

/// The key parts of one call, borrowed (the record path copies them only for a new key).
#[derive(Debug, Clone, Copy)]
pub struct CallKey<'a> {
    pub route: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub plan: Option<&'a str>,
    pub experiments: &'a BTreeMap<String, String>,
    pub provider: Option<&'a str>,
    /// The caller's user id, counted in the key's distinct-user sketch (never stored).
    pub user_id: Option<&'a str>,
}

/// Counts, a latency histogram (dense: `buckets[b]` counts bucket `b`, grown on demand) and the
/// distinct users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub latency_sum_ms: f64,
    pub buckets: Vec<u64>,
    pub users: UserSketch,
}

/// The histogram bucket of a latency (0 for ≤ 0.01 ms; ~1,400 buckets reach an hour).
pub fn bucket(latency_ms: f64) -> usize {
    latency_bucket(latency_ms) as usize
}

impl Aggregate {
    #[inline]
    fn add(&mut self, latency_ms: f64, count: u64) {
        let b = bucket(latency_ms);
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += count;
    }
}

/// The representative latency of a bucket: the geometric middle of its bounds.
pub fn bucket_value(bucket: usize) -> f64 {
    latency_bucket_value(bucket as u32)
}

impl Aggregate {
    /// The q-quantile of the recorded latencies (within 2%), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = valuetrace_model::quantile::nearest_rank(self.count, q) + 1;
        let mut seen = 0;
        for (bucket, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_value(bucket));
            }
        }
        None
    }
}

/// A word-at-a-time multiply-rotate hash over the key's parts (with their lengths as
/// separators): a shard-local map key, eight bytes per step.
fn key_hash(call: &CallKey, class: u8) -> u64 {
    #[inline(always)]
    fn step(h: u64, word: u64) -> u64 {
        (h.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
    }
    /// Whole words, then the tail read with (possibly overlapping) loads instead of a copy
    /// into a buffer (which stalls store forwarding).
    #[inline(always)]
    fn eat(mut h: u64, bytes: &[u8]) -> u64 {
        let n = bytes.len();
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let mut at = 0;
        while at + 8 <= n {
            h = step(h, word(at));
            at += 8;
        }
        let tail = if at == n {
            0
        } else if n >= 8 {
            word(n - 8)
        } else if n >= 4 {
            let half = |at: usize| {
                u64::from(u32::from_le_bytes(
                    bytes[at..at + 4].try_into().expect("4 bytes"),
                ))
            };
            half(0) << 32 | half(n - 4)
        } else {
            u64::from(bytes[0]) << 16 | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1])
        };
        step(step(h, tail), n as u64)
    }
    let mut h = eat(u64::from(class), call.route.as_bytes());
    h = eat(h, call.method.as_bytes());
    h = match call.plan {
        Some(plan) => eat(h, plan.as_bytes()),
        None => step(h, u64::MAX),
    };
    h = match call.provider {
        Some(provider) => eat(h, provider.as_bytes()),
        None => step(h, u64::MAX - 1),
    };
    for (experiment, variant) in call.experiments {
        h = eat(eat(h, experiment.as_bytes()), variant.as_bytes());
    }
    h
}

/// Passes a precomputed `u64` hash through unchanged.
#[derive(Default, Clone, Copy)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Per key hash: the keys with that hash, their aggregates and the key's memo (the caller's
/// per-key constant, e.g. the route's sampling weight).
type Shard = HashMap<
    u64,
    Vec<(AggregateKey, Aggregate, f64)>,
    std::hash::BuildHasherDefault<IdentityHasher>,
>;

/// The aggregates of one process between two flushes.
pub struct Aggregator {
    shards: Vec<Mutex<Shard>>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
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
    pub fn record(&self, call: &CallKey, latency_ms: f64) {
        self.record_with_memo(call, latency_ms, || 0.0);
    }

    /// Counts one request and returns the key's memo: `memo()` the first time the key is seen in
    /// a drain interval, the stored value after (the layer memoizes the route's sampling weight
    /// here, so the route globs run once per key and interval, not per request).
    pub fn record_with_memo(
        &self,
        call: &CallKey,
        latency_ms: f64,
        memo: impl FnOnce() -> f64,
    ) -> f64 {
        let class = (call.status / 100).clamp(1, 5) as u8;
        let hash = key_hash(call, class);
        // Hashed before the lock is taken.
        let user = call.user_id.map(|id| user_hash(id.as_bytes()));
        let Ok(mut shard) = self.shards[shard_of_thread()].lock() else {
            return memo(); // a poisoned shard loses counts; it never panics the host
        };
        let entries = shard.entry(hash).or_default();
        let found = entries.iter().position(|(k, _, _)| {
            k.status_class == class
                && k.route == call.route
                && k.method == call.method
                && k.plan.as_deref() == call.plan
                && k.provider.as_deref() == call.provider
                && (k.experiments.is_empty() && call.experiments.is_empty()
                    || k.experiments == *call.experiments)
        });
        let (_, aggregate, memo) = match found {
            Some(index) => &mut entries[index],
            None => {
                entries.push((
                    AggregateKey {
                        route: call.route.into(),
                        method: call.method.into(),
                        status_class: class,
                        plan: call.plan.map(Into::into),
                        experiments: call.experiments.clone(),
                        provider: call.provider.map(Into::into),
                    },
                    Aggregate::default(),
                    memo(),
                ));
                entries.last_mut().expect("just pushed")
            }
        };
        aggregate.count += 1;
        aggregate.latency_sum_ms += latency_ms;
        aggregate.add(latency_ms, 1);
        if let Some(user) = user {
            aggregate.users.insert(user);
        }
        *memo
    }

    /// Takes every aggregate recorded since the last drain, merged across shards.
    pub fn drain(&self) -> Vec<(AggregateKey, Aggregate)> {
        let mut merged: HashMap<AggregateKey, Aggregate> = HashMap::new();
        for shard in &self.shards {
            let taken = match shard.lock() {
                Ok(mut shard) => std::mem::take(&mut *shard),
                Err(_) => continue,
            };
            for (key, aggregate, _) in taken.into_values().flatten() {
                let into = merged.entry(key).or_default();
                into.count += aggregate.count;
                into.latency_sum_ms += aggregate.latency_sum_ms;
                if into.buckets.len() < aggregate.buckets.len() {
                    into.buckets.resize(aggregate.buckets.len(), 0);
                }
                for (mine, theirs) in into.buckets.iter_mut().zip(&aggregate.buckets) {
                    *mine += theirs;
                }
                into.users.merge(&aggregate.users);
            }
        }
        let mut out: Vec<_> = merged.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// What the aggregates of one flush window are shipped with.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub service: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Unique to this process (the recorder's event-id prefix).
    pub id_prefix: &'a str,
    /// The flush's sequence number: with the key's index it makes each event id unique and
    /// stable across the sender's retries.
    pub flush: u64,
}

/// The drained aggregates as `api_aggregate` events (empty keys are skipped).
pub fn to_events(drained: Vec<(AggregateKey, Aggregate)>, window: Window) -> Vec<ApiAggregate> {
    drained
        .into_iter()
        .filter(|(_, aggregate)| aggregate.count > 0)
        .enumerate()
        .map(|(index, (key, aggregate))| ApiAggregate {
            schema_version: valuetrace_model::SCHEMA_VERSION,
            event_id: format!("{}-agg{}-{index}", window.id_prefix, window.flush),
            timestamp: window.end_ms,
            window_start: window.start_ms.min(window.end_ms),
            service: window.service.to_owned(),
            method: key.method,
            route: key.route,
            status_class: key.status_class,
            plan: key.plan,
            experiments: key.experiments,
            direction: if key.provider.is_some() {
                valuetrace_model::Direction::Outbound
            } else {
                valuetrace_model::Direction::Inbound
            },
            provider: key.provider,
            sdk: Some(concat!("valuetrace-rust/", env!("CARGO_PKG_VERSION")).into()),
            count: aggregate.count,
            latency_sum_ms: aggregate.latency_sum_ms,
            latency_buckets: aggregate
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, calls)| **calls > 0)
                .map(|(bucket, calls)| (bucket as u32, *calls))
                .collect(),
            // Always present (empty: no call named a user), so the server knows these calls'
            // users are all in it.
            user_sketch: Some(aggregate.users.registers()),
            ..ApiAggregate::default()
        })
        .collect()
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
                        let experiments = BTreeMap::new();
                        let call = CallKey {
                            route: "/api/items/{id}",
                            method: "GET",
                            status,
                            plan,
                            experiments: &experiments,
                            provider: None,
                            user_id: Some("u1"),
                        };
                        aggregator.record(&call, f64::from(i % 100));
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
            let experiments = BTreeMap::new();
            let call = CallKey {
                route: "/a",
                method: "GET",
                status: 200,
                plan: None,
                experiments: &experiments,
                provider: None,
                user_id: None,
            };
            aggregator.record(&call, f64::from(i) / 10.0);
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
