//! Typed events in wire format v1.
//!
//! `Serialize` writes exactly the JSON that `POST /v1/batch` accepts (timestamps as epoch ms), so a
//! client can build an [`Event`] and send it. `Deserialize` is for trusted round trips (the WAL);
//! untrusted input goes through [`crate::validate_event`], which explains every rule it enforces.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The only `schema_version` this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// One event of any type; `type` is the JSON tag.
// Events are built once and moved into batches; boxing the large variant would cost an allocation
// per event on the ingest path for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    ApiCall(ApiCall),
    Outcome(Outcome),
    ApiAggregate(ApiAggregate),
}

impl Event {
    pub fn event_id(&self) -> &str {
        match self {
            Event::ApiCall(call) => &call.event_id,
            Event::Outcome(outcome) => &outcome.event_id,
            Event::ApiAggregate(aggregate) => &aggregate.event_id,
        }
    }

    pub fn timestamp(&self) -> i64 {
        match self {
            Event::ApiCall(call) => call.timestamp,
            Event::Outcome(outcome) => outcome.timestamp,
            Event::ApiAggregate(aggregate) => aggregate.timestamp,
        }
    }
}

/// Whether a call was served by the product (`inbound`) or made by it to a third party (`outbound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

fn is_inbound(direction: &Direction) -> bool {
    *direction == Direction::Inbound
}

/// One API request, served (`inbound`) or made to a provider (`outbound`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ApiCall {
    pub schema_version: u32,
    /// Client-generated, unique per project: the deduplication key.
    pub event_id: String,
    /// When the call happened, epoch ms (after clock-skew correction once validated).
    pub timestamp: i64,
    /// The client's clock when the batch was sent; used to correct skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    pub service: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// A route template such as `/api/orders/{id}`, never a raw path.
    pub route: String,
    pub status: u16,
    pub latency_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Experiment name → variant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub experiments: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
    /// `validation`, `auth`, `rate_limited`, `upstream_timeout`, `upstream_error`, `internal`,
    /// `unknown`, or any other class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "is_inbound")]
    pub direction: Direction,
    /// The third party of an outbound call, such as `stripe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The order value the call carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// The share of such events the client kept (0 < rate <= 1) when it samples; each kept
    /// event stands for `1 / sample_rate` events in business answers. Absent: not sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// The client also counted this call in an [`ApiAggregate`]: health answers take its counts
    /// from the aggregate and only its user from the call, so sampled raw events are neither
    /// missed nor counted twice. Business answers still read the call (re-weighted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub aggregated: bool,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

/// Exact counts of the calls one client process handled for one key (service, method, route,
/// status class, plan, experiment variants, direction, provider) during one flush window,
/// whether or not their raw `api_call` events were sampled (Apitally's design).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ApiAggregate {
    pub schema_version: u32,
    /// Unique per project and stable across the client's retries.
    pub event_id: String,
    /// End of the window, epoch ms.
    pub timestamp: i64,
    /// Start of the window, epoch ms (at most [`MAX_AGGREGATE_WINDOW_MS`] before `timestamp`).
    pub window_start: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    pub service: String,
    pub method: String,
    pub route: String,
    /// 1–5: the calls' status class (`2` for 2xx).
    pub status_class: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub experiments: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
    #[serde(default, skip_serializing_if = "is_inbound")]
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Calls counted (at least 1).
    pub count: u64,
    pub latency_sum_ms: f64,
    /// Sparse `(bucket, calls)` pairs of the latency histogram, buckets ascending: bucket 0 holds
    /// latencies ≤ 0.01 ms, bucket `b ≥ 1` those in `(0.01·1.02^(b-1), 0.01·1.02^b]` ms
    /// ([`latency_bucket`]); the calls sum to `count`.
    pub latency_buckets: Vec<(u32, u64)>,
    /// The distinct users of the counted calls as HyperLogLog registers ([`crate::users`]):
    /// sparse `(register, rank)` pairs, registers strictly ascending, ranks 1 to
    /// [`crate::users::MAX_RANK`]; empty when no call named a user. Absent (older clients): the
    /// server can only count the users of the sampled raw calls, and says so (a lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_sketch: Option<Vec<(u16, u8)>>,
}

/// The longest window an [`ApiAggregate`] may cover: one hour.
pub const MAX_AGGREGATE_WINDOW_MS: i64 = 3_600_000;
/// The highest latency bucket (≈ 8.5 hours; slower calls land in it).
pub const MAX_LATENCY_BUCKET: u32 = 2_048;
const BUCKET_MIN_MS: f64 = 0.01;
const BUCKET_GAMMA: f64 = 1.02;

/// The aggregate histogram bucket of a latency: 0 for ≤ 0.01 ms, else
/// `floor(ln(ms / 0.01) / ln(1.02)) + 1`, at most [`MAX_LATENCY_BUCKET`]. Computed as
/// `(ln(ms) − ln(0.01)) × (1 / ln(1.02))` (no division on the client's request path), which can
/// differ from the formula by one bucket within an ulp or so of a bucket's edge; the Python
/// client computes it the same way.
pub fn latency_bucket(latency_ms: f64) -> u32 {
    if latency_ms.is_nan() || latency_ms <= BUCKET_MIN_MS {
        return 0;
    }
    // ln(0.01) and 1 / ln(1.02), spelled out (`f64::ln` is not const; a test checks both).
    const LN_MIN: f64 = -4.605_170_185_988_091;
    const INV_LN_GAMMA: f64 = 50.498_349_791_843_9;
    (((latency_ms.ln() - LN_MIN) * INV_LN_GAMMA) as u32 + 1).min(MAX_LATENCY_BUCKET)
}

/// The representative latency of a bucket: the geometric middle of its bounds (within 1% of any
/// latency in it).
pub fn latency_bucket_value(bucket: u32) -> f64 {
    if bucket == 0 {
        return BUCKET_MIN_MS;
    }
    BUCKET_MIN_MS * BUCKET_GAMMA.powf(f64::from(bucket) - 0.5)
}

/// A business outcome: signup, activation, purchase, churn, support_ticket, or any name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub schema_version: u32,
    pub event_id: String,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// As for [`ApiCall::sample_rate`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
}

/// The status class digit of an HTTP status (`2` for 200–299).
pub fn status_class(status: u16) -> u8 {
    (status / 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_match_the_documented_formula() {
        // The spelled-out constants are the floats they name.
        assert_eq!(-4.605_170_185_988_091_f64, BUCKET_MIN_MS.ln());
        assert_eq!(50.498_349_791_843_9_f64, 1.0 / BUCKET_GAMMA.ln());
        let mut ms = 0.011;
        while ms < 4_000_000.0 {
            let expected = (((ms / BUCKET_MIN_MS).ln().div_euclid(BUCKET_GAMMA.ln())) as u32 + 1)
                .min(MAX_LATENCY_BUCKET);
            assert_eq!(latency_bucket(ms), expected, "{ms} ms");
            ms *= 1.003_7;
        }
        assert_eq!(latency_bucket(0.005), 0);
        assert_eq!(latency_bucket(f64::NAN), 0);
        assert_eq!(latency_bucket(1e30), MAX_LATENCY_BUCKET);
    }
}
