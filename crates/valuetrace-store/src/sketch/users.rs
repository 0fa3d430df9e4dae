//! The distinct users of a rollup cell, kept apart by where they were counted, because the
//! hashes of two sources are not comparable:
//!
//! - `raw`: users of raw calls no client aggregate counted (xxh3 of the pseudonym; complete
//!   for that traffic);
//! - `client`: the HyperLogLog registers client aggregates shipped (`user_sketch`: the client's
//!   own hash of the raw id, which the server never sees as such); complete for SDK traffic;
//! - `sampled`: users of the sampled raw calls an aggregate counted (a subset of `client`'s;
//!   used only when some aggregate came without a sketch);
//! - `unsketched_calls`: calls counted by aggregates without a sketch (older clients).
//!
//! The reported count is `raw ∪ client` (the two hash spaces are merged as disjoint; a user seen
//! both through the SDK and through direct events on one endpoint counts twice), exact while
//! both are exact sets. With unsketched calls only `raw ∪ sampled ∪ client` is known: a lower
//! bound, reported as such.

use super::DistinctSketch;

/// How a reported user count was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsersKind {
    Exact,
    /// HyperLogLog estimate with its 95% interval.
    Estimate,
    /// Some counted calls came without their users (aggregates from older clients): at least
    /// this many.
    LowerBound,
}

impl UsersKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UsersKind::Exact => "exact",
            UsersKind::Estimate => "estimate",
            UsersKind::LowerBound => "lower_bound",
        }
    }
}

/// A reported user count: the point value, how it was obtained, and a 95% interval
/// (`high` is `None` for a lower bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsersReport {
    pub value: u64,
    pub kind: UsersKind,
    pub low: u64,
    pub high: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellUsers {
    pub raw: DistinctSketch,
    pub client: DistinctSketch,
    pub sampled: DistinctSketch,
    pub unsketched_calls: u64,
}

impl CellUsers {
    pub fn merge(&mut self, other: &CellUsers) {
        self.raw.merge(&other.raw);
        self.client.merge(&other.client);
        self.sampled.merge(&other.sampled);
        self.unsketched_calls += other.unsketched_calls;
    }

    /// Adds a client aggregate's users: its registers, or (no sketch) its calls as unsketched.
    pub fn add_aggregate(&mut self, sketch: Option<&[(u16, u8)]>, calls: u64) {
        match sketch {
            Some(registers) => self.client.merge_registers(registers),
            None => self.unsketched_calls += calls,
        }
    }

    pub fn report(&self) -> UsersReport {
        let mut all = self.raw.clone();
        all.merge(&self.client);
        if self.unsketched_calls > 0 {
            all.merge(&self.sampled);
            let value = all.estimate();
            let low = if all.is_exact() {
                value
            } else {
                all.interval95().0
            };
            return UsersReport {
                value,
                kind: UsersKind::LowerBound,
                low,
                high: None,
            };
        }
        let value = all.estimate();
        if all.is_exact() {
            return UsersReport {
                value,
                kind: UsersKind::Exact,
                low: value,
                high: Some(value),
            };
        }
        let (low, high) = all.interval95();
        UsersReport {
            value,
            kind: UsersKind::Estimate,
            low,
            high: Some(high),
        }
    }

    /// The reported point value.
    pub fn estimate(&self) -> u64 {
        self.report().value
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.raw.encode(out);
        self.client.encode(out);
        self.sampled.encode(out);
        crate::codec::put_u64(out, self.unsketched_calls);
    }

    pub fn decode(input: &mut crate::codec::Input<'_>) -> Option<CellUsers> {
        Some(CellUsers {
            raw: DistinctSketch::decode(input)?,
            client: DistinctSketch::decode(input)?,
            sampled: DistinctSketch::decode(input)?,
            unsketched_calls: input.u64()?,
        })
    }
}
