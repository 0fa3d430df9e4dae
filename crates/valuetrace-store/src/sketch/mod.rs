//! Mergeable sketches kept in every rollup cell.
//!
//! - [`LatencySketch`]: DDSketch-style log buckets, quantiles within 1% relative error.
//! - [`DistinctSketch`]: exact up to 512 distinct hashes, then a HyperLogLog (precision 12,
//!   standard error 1.6%).
//!
//! Both are small when a cell sees few values (most minute cells) and merge in linear time.

mod distinct;
mod latency;
mod users;

pub use distinct::DistinctSketch;
pub use latency::{LatencyAccumulator, LatencySketch, RELATIVE_ERROR};
pub use users::{CellUsers, UsersKind, UsersReport};
