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
}

impl Event {
    pub fn event_id(&self) -> &str {
        match self {
            Event::ApiCall(call) => &call.event_id,
            Event::Outcome(outcome) => &outcome.event_id,
        }
    }

    pub fn timestamp(&self) -> i64 {
        match self {
            Event::ApiCall(call) => call.timestamp,
            Event::Outcome(outcome) => outcome.timestamp,
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
