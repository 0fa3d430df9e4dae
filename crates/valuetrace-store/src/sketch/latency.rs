//! DDSketch-style latency sketch (Masson, Rim, Lee: "DDSketch", VLDB 2019).
//!
//! A value `x > 0` falls in bucket `k = ceil(log_gamma(x))` with `gamma = (1 + a) / (1 - a)`;
//! reporting `2 gamma^k / (gamma + 1)` for a quantile is within relative error `a` of the true
//! sample quantile. Buckets are stored sparse (sorted `(key, count)` pairs) because most cells see
//! a handful of distinct buckets; [`LatencyAccumulator`] is the dense form used while merging many
//! cells at query time.

/// Relative error of every quantile this sketch reports.
pub const RELATIVE_ERROR: f64 = 0.01;
/// Values below this (ms) are counted as zero: 1 µs is below any meaningful API latency.
const MIN_VALUE_MS: f64 = 0.001;
/// Smallest and largest bucket keys: 1 µs .. ~ 10^7 ms (2.8 h); larger values saturate.
const MIN_KEY: i32 = -350;
const MAX_KEY: i32 = 820;
const DENSE_LEN: usize = (MAX_KEY - MIN_KEY + 1) as usize;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

fn key_of(value_ms: f64) -> Option<i16> {
    if value_ms < MIN_VALUE_MS || value_ms.is_nan() {
        return None;
    }
    let key = (value_ms.ln() / gamma().ln()).ceil() as i32;
    Some(key.clamp(MIN_KEY, MAX_KEY) as i16)
}

fn value_of(key: i32) -> f64 {
    let gamma = gamma();
    2.0 * gamma.powi(key) / (gamma + 1.0)
}

/// Bins kept sparse up to this many distinct keys; beyond, a dense run of counters.
const SPARSE_LIMIT: usize = 48;

/// A mergeable latency distribution: sparse `(key, count)` pairs while few keys are seen (most
/// minute cells), a dense run of counters from `offset` once many are (busy hour and day cells),
/// so that inserting never shifts a long vector.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySketch {
    zeros: u32,
    bins: Vec<(i16, u32)>,
    dense: Vec<u32>,
    offset: i16,
    /// Exact extremes: quantiles are clamped to them, so p0/p100 and single values are exact.
    min: f64,
    max: f64,
}

impl Default for LatencySketch {
    fn default() -> Self {
        LatencySketch {
            zeros: 0,
            bins: Vec::new(),
            dense: Vec::new(),
            offset: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl LatencySketch {
    pub fn insert(&mut self, value_ms: f64) {
        let Some(key) = key_of(value_ms) else {
            // Below 1 µs counts as zero, for the extremes too.
            self.min = self.min.min(0.0);
            self.max = self.max.max(0.0);
            self.zeros += 1;
            return;
        };
        self.min = self.min.min(value_ms);
        self.max = self.max.max(value_ms);
        self.add_count(key, 1);
    }

    /// Inserts `count` latencies of `value_ms` (a client aggregate's histogram bucket).
    pub fn insert_n(&mut self, value_ms: f64, count: u32) {
        if count == 0 {
            return;
        }
        let Some(key) = key_of(value_ms) else {
            self.min = self.min.min(0.0);
            self.max = self.max.max(0.0);
            self.zeros += count;
            return;
        };
        self.min = self.min.min(value_ms);
        self.max = self.max.max(value_ms);
        self.add_count(key, count);
    }

    fn add_count(&mut self, key: i16, count: u32) {
        if !self.dense.is_empty() {
            self.dense_add(key, count);
            return;
        }
        match self.bins.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(index) => self.bins[index].1 += count,
            Err(index) => {
                self.bins.insert(index, (key, count));
                if self.bins.len() > SPARSE_LIMIT {
                    self.densify();
                }
            }
        }
    }

    fn densify(&mut self) {
        let (Some(&(first, _)), Some(&(last, _))) = (self.bins.first(), self.bins.last()) else {
            return;
        };
        self.offset = first;
        self.dense = vec![0; (i32::from(last) - i32::from(first) + 1) as usize];
        for (key, count) in std::mem::take(&mut self.bins) {
            self.dense[(key - first) as usize] += count;
        }
    }

    fn dense_add(&mut self, key: i16, count: u32) {
        if key < self.offset {
            let grow = (self.offset - key) as usize;
            self.dense.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = key;
        }
        let index = (key - self.offset) as usize;
        if index >= self.dense.len() {
            self.dense.resize(index + 1, 0);
        }
        self.dense[index] += count;
    }

    /// `(key, count)` of every non-empty bin in key order.
    fn pairs(&self) -> impl Iterator<Item = (i16, u32)> + '_ {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, &count)| (self.offset + index as i16, count));
        self.bins.iter().copied().chain(dense)
    }

    pub fn merge(&mut self, other: &LatencySketch) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zeros += other.zeros;
        if !self.dense.is_empty()
            || !other.dense.is_empty()
            || self.bins.len() + other.bins.len() > SPARSE_LIMIT
        {
            if self.dense.is_empty() {
                self.densify();
            }
            for (key, count) in other.pairs() {
                if self.dense.is_empty() {
                    self.offset = key;
                    self.dense = vec![0];
                }
                self.dense_add(key, count);
            }
            return;
        }
        if other.bins.is_empty() {
            return;
        }
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (mut left, mut right) = (self.bins.iter().peekable(), other.bins.iter().peekable());
        loop {
            match (left.peek(), right.peek()) {
                (Some(&&(a, ca)), Some(&&(b, cb))) => {
                    if a == b {
                        merged.push((a, ca + cb));
                        left.next();
                        right.next();
                    } else if a < b {
                        merged.push((a, ca));
                        left.next();
                    } else {
                        merged.push((b, cb));
                        right.next();
                    }
                }
                (Some(&&pair), None) => {
                    merged.push(pair);
                    left.next();
                }
                (None, Some(&&pair)) => {
                    merged.push(pair);
                    right.next();
                }
                (None, None) => break,
            }
        }
        self.bins = merged;
    }

    pub fn count(&self) -> u64 {
        u64::from(self.zeros) + self.pairs().map(|(_, count)| u64::from(count)).sum::<u64>()
    }

    /// The quantile `q` in [0, 1], or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut accumulator = LatencyAccumulator::default();
        accumulator.add(self);
        accumulator.quantile(q)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        use crate::codec::*;
        put_u32(out, self.zeros);
        put_f64(out, self.min);
        put_f64(out, self.max);
        let pairs: Vec<(i16, u32)> = self.pairs().collect();
        put_u32(out, pairs.len() as u32);
        for (key, count) in pairs {
            put_u16(out, key as u16);
            put_u32(out, count);
        }
    }

    pub fn decode(input: &mut crate::codec::Input<'_>) -> Option<LatencySketch> {
        let mut sketch = LatencySketch {
            zeros: input.u32()?,
            min: input.f64()?,
            max: input.f64()?,
            ..LatencySketch::default()
        };
        let count = input.len(6)?;
        for _ in 0..count {
            let key = input.u16()? as i16;
            let weight = input.u32()?;
            if !(MIN_KEY..=MAX_KEY).contains(&i32::from(key)) {
                return None;
            }
            sketch.add_count(key, weight);
        }
        Some(sketch)
    }
}

/// Dense accumulator: merging thousands of cells into it costs one add per bucket.
#[derive(Debug, Clone)]
pub struct LatencyAccumulator {
    zeros: u64,
    counts: Vec<u64>,
    total: u64,
    min: f64,
    max: f64,
}

impl Default for LatencyAccumulator {
    fn default() -> Self {
        LatencyAccumulator {
            zeros: 0,
            counts: Vec::new(),
            total: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl LatencyAccumulator {
    pub fn add(&mut self, sketch: &LatencySketch) {
        self.min = self.min.min(sketch.min);
        self.max = self.max.max(sketch.max);
        if self.counts.is_empty() && (!sketch.bins.is_empty() || !sketch.dense.is_empty()) {
            self.counts = vec![0; DENSE_LEN];
        }
        self.zeros += u64::from(sketch.zeros);
        self.total += u64::from(sketch.zeros);
        for (key, count) in sketch.pairs() {
            self.counts[(i32::from(key) - MIN_KEY) as usize] += u64::from(count);
            self.total += u64::from(count);
        }
    }

    pub fn merge(&mut self, other: &LatencyAccumulator) {
        if other.total == 0 {
            return;
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if self.counts.is_empty() && !other.counts.is_empty() {
            self.counts = vec![0; DENSE_LEN];
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.zeros += other.zeros;
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The quantile `q` in [0, 1] at the product's nearest rank
    /// ([`valuetrace_model::quantile::nearest_rank`]).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = valuetrace_model::quantile::nearest_rank(self.total, q);
        if self.min <= self.max {
            if rank == 0 {
                return Some(self.min);
            }
            if rank == self.total - 1 {
                return Some(self.max);
            }
        }
        let estimate = if rank < self.zeros {
            Some(0.0)
        } else {
            self.bucket_value(rank)
        };
        estimate.map(|value| {
            if self.min <= self.max {
                value.clamp(self.min, self.max)
            } else {
                value
            }
        })
    }

    fn bucket_value(&self, rank: u64) -> Option<f64> {
        let mut seen = self.zeros;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen > rank {
                return Some(value_of(index as i32 + MIN_KEY));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        valuetrace_model::quantile::quantile_of_sorted(sorted, q).expect("a sample")
    }

    #[test]
    fn quantiles_stay_within_relative_error_after_merges() {
        let mut values = Vec::new();
        let mut parts = vec![LatencySketch::default(); 7];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
            let value = 0.5 * (uniform * 12.0).exp(); // 0.5 ms .. ~80 s, heavy tail
            values.push(value);
            parts[i % 7].insert(value);
        }
        let mut merged = LatencySketch::default();
        for part in &parts {
            merged.merge(part);
        }
        values.sort_by(f64::total_cmp);
        assert_eq!(merged.count(), 20_000);
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = exact_quantile(&values, q);
            let estimate = merged.quantile(q).expect("non-empty");
            assert!(
                (estimate - exact).abs() <= RELATIVE_ERROR * exact + 1e-9,
                "q={q} exact={exact} estimate={estimate}"
            );
        }
    }

    #[test]
    fn extremes_and_single_values_are_exact() {
        let mut sketch = LatencySketch::default();
        sketch.insert(84.2);
        assert_eq!(sketch.quantile(0.5), Some(84.2));
        sketch.insert(3.5);
        let mut accumulator = LatencyAccumulator::default();
        accumulator.add(&sketch);
        assert_eq!(accumulator.quantile(0.0), Some(3.5));
        assert_eq!(accumulator.quantile(1.0), Some(84.2));
    }

    #[test]
    fn zeros_and_empty() {
        let mut sketch = LatencySketch::default();
        assert_eq!(sketch.quantile(0.5), None);
        sketch.insert(0.0);
        sketch.insert(0.0);
        sketch.insert(10.0);
        assert_eq!(sketch.quantile(0.0), Some(0.0));
        let p100 = sketch.quantile(1.0).expect("non-empty");
        assert!((p100 - 10.0).abs() <= 0.1);
    }
}
