//! Validation of one untrusted event: JSON value in, typed [`Event`] or a precise error out.
//!
//! Every rule has its own message that names the field (as a path such as `properties.color`),
//! what was expected and what was found, so a client developer can fix the sender without reading
//! our code. Unknown fields are refused: a typo such as `stauts` would otherwise lose data silently.

use crate::event::{ApiCall, Direction, Event, Outcome, SCHEMA_VERSION};
use crate::time::DAY_MS;
use crate::wire::{self, WireMap, WireValue};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Size and count limits applied to every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_event_id_bytes: usize,
    pub max_route_bytes: usize,
    pub max_name_bytes: usize,
    pub max_id_bytes: usize,
    pub max_properties: usize,
    pub max_property_key_bytes: usize,
    pub max_property_value_bytes: usize,
    pub max_experiments: usize,
    /// How far in the future a (skew-corrected) timestamp may lie; a later one is clamped to the
    /// receive time ([`Validated::clamped`]).
    pub max_future_ms: i64,
    /// How old (before the receive time) a timestamp may be; an older event is refused.
    pub max_age_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_id_bytes: 128,
            max_route_bytes: 256,
            max_name_bytes: 64,
            max_id_bytes: 256,
            max_properties: 64,
            max_property_key_bytes: 128,
            max_property_value_bytes: 1024,
            max_experiments: 16,
            max_future_ms: 10 * 60_000,
            max_age_ms: 400 * DAY_MS,
        }
    }
}

/// A broken rule: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Path of the offending field (`status`, `properties.color`), or empty for the whole event.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl ValidationError {
    /// A label from a small fixed set, for metrics: the top-level field that broke a rule,
    /// `json` for text that is not JSON, `event` for whole-event problems, `unknown_field` for a
    /// field this version does not know.
    pub fn reason(&self) -> &'static str {
        let top = self.field.split(['.', '[']).next().unwrap_or("");
        if top.is_empty() {
            return if self.message.starts_with("invalid JSON") {
                "json"
            } else {
                "event"
            };
        }
        API_CALL_FIELDS
            .iter()
            .chain(OUTCOME_FIELDS)
            .find(|known| **known == top)
            .copied()
            .unwrap_or("unknown_field")
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

type Result<T> = std::result::Result<T, ValidationError>;

/// A validated event with the clock-skew correction that was applied to its timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub event: Event,
    /// Milliseconds added to the client's timestamp (`received_at - sent_at`), 0 without `sent_at`.
    pub skew_ms: i64,
    /// The corrected timestamp lay more than `max_future_ms` ahead and was set to the receive time.
    pub clamped: bool,
}

/// Validates one event received at `received_at_ms` (server clock).
///
/// When `sent_at` is present the timestamp is corrected by the difference between the server's
/// receive time and the client's send time (clients with a wrong clock are common on mobile).
pub fn validate_event(value: &Value, received_at_ms: i64, limits: &Limits) -> Result<Validated> {
    let wire = WireValue::deserialize(value)
        .map_err(|error| ValidationError::new("", error.to_string()))?;
    validate_wire(wire, received_at_ms, limits)
}

/// Validates one event's JSON text (the ingest path: strings are borrowed from `text` until the
/// event keeps them). `Err` with an empty field for text that is not JSON.
pub fn validate_json(text: &str, received_at_ms: i64, limits: &Limits) -> Result<Validated> {
    // An array is never an event: skip over it (serde_json skips iteratively, however deeply it
    // nests) to tell invalid JSON from a well-formed array.
    if text.trim_start().starts_with('[') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(error) => ValidationError::new("", format!("invalid JSON: {error}")),
            Ok(_) => ValidationError::new("", "an event must be a JSON object, got an array"),
        });
    }
    let wire: WireValue<'_> = serde_json::from_str(text)
        .map_err(|error| ValidationError::new("", format!("invalid JSON: {error}")))?;
    validate_wire(wire, received_at_ms, limits)
}

fn validate_wire(value: WireValue<'_>, received_at_ms: i64, limits: &Limits) -> Result<Validated> {
    let WireValue::Object(mut object) = value else {
        return Err(ValidationError::new(
            "",
            format!("an event must be a JSON object, got {}", value.kind()),
        ));
    };
    if let Some(key) = fields::first_duplicate_key(&object) {
        return Err(ValidationError::new(
            key,
            "appears more than once in the event; send each field once",
        ));
    }
    let mut reader = Reader {
        object: &mut object,
        limits,
    };
    let event_type = reader.required_str("type", 32)?;
    let version = reader.required_u64("schema_version")?;
    if version != u64::from(SCHEMA_VERSION) {
        return Err(ValidationError::new(
            "schema_version",
            format!(
                "unsupported schema_version {version}; this server understands {SCHEMA_VERSION}"
            ),
        ));
    }
    let (mut event, allowed): (Event, &[&str]) = match event_type.as_str() {
        "api_call" => (Event::ApiCall(reader.api_call()?), API_CALL_FIELDS),
        "outcome" => (Event::Outcome(reader.outcome()?), OUTCOME_FIELDS),
        "api_aggregate" => (
            Event::ApiAggregate(reader.api_aggregate()?),
            aggregate::API_AGGREGATE_FIELDS,
        ),
        other => {
            return Err(ValidationError::new(
                "type",
                format!(
                    "unknown event type `{other}`; expected `api_call`, `outcome` or `api_aggregate`"
                ),
            ));
        }
    };
    if let Some(unknown) = object
        .iter()
        .map(|(key, _)| key)
        .find(|key| !allowed.contains(&key.as_ref()))
    {
        return Err(ValidationError::new(
            unknown.as_ref(),
            format!(
                "unknown field `{unknown}` for a {event_type} event; custom data belongs in `properties`"
            ),
        ));
    }
    let (skew_ms, clamped) = correct_skew(&mut event, received_at_ms, limits)?;
    Ok(Validated {
        event,
        skew_ms,
        clamped,
    })
}

const API_CALL_FIELDS: &[&str] = &[
    "type",
    "schema_version",
    "event_id",
    "timestamp",
    "sent_at",
    "service",
    "method",
    "route",
    "status",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "user_id",
    "account_id",
    "session_id",
    "plan",
    "segment",
    "experiments",
    "app_version",
    "sdk",
    "error_type",
    "direction",
    "provider",
    "value",
    "currency",
    "properties",
    "sample_rate",
    "aggregated",
];

const OUTCOME_FIELDS: &[&str] = &[
    "type",
    "schema_version",
    "event_id",
    "timestamp",
    "sent_at",
    "name",
    "user_id",
    "account_id",
    "session_id",
    "value",
    "currency",
    "properties",
    "sample_rate",
];

/// The largest `latency_ms`: 7 days. Together with [`MAX_ABS_VALUE`] this keeps the sums behind
/// `mean_ms` and `value_sum` finite: two values near `f64::MAX` would overflow them to infinity,
/// which JSON cannot carry (the API answered `null`) and which no later event can repair.
const MAX_LATENCY_MS: f64 = 7.0 * 24.0 * 3_600_000.0;
/// The largest absolute `value`, in the event's currency.
const MAX_ABS_VALUE: f64 = 1e15;

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// Applies the clock-skew correction (`timestamp + (received_at - sent_at)`), clamps a timestamp
/// too far in the future to the receive time, and refuses one older than `max_age_ms`.
/// Returns the correction applied and whether the timestamp was clamped.
fn correct_skew(event: &mut Event, received_at_ms: i64, limits: &Limits) -> Result<(i64, bool)> {
    let (timestamp, sent_at) = match event {
        Event::ApiCall(call) => (&mut call.timestamp, call.sent_at),
        Event::Outcome(outcome) => (&mut outcome.timestamp, outcome.sent_at),
        Event::ApiAggregate(aggregate) => (&mut aggregate.timestamp, aggregate.sent_at),
    };
    let original = *timestamp;
    let skew_ms = sent_at.map_or(Some(0), |sent_at| received_at_ms.checked_sub(sent_at));
    let corrected = skew_ms.and_then(|skew| timestamp.checked_add(skew));
    let (Some(skew_ms), Some(corrected)) = (skew_ms, corrected) else {
        return Err(ValidationError::new(
            "timestamp",
            "is out of range after clock-skew correction; check `timestamp` and `sent_at`",
        ));
    };
    let age = received_at_ms.saturating_sub(corrected);
    if age > limits.max_age_ms {
        return Err(ValidationError::new(
            "timestamp",
            format!(
                "is {:.1} days old after clock-skew correction; events older than {} days are not kept (limits.max_event_age)",
                age as f64 / DAY_MS as f64,
                limits.max_age_ms / DAY_MS
            ),
        ));
    }
    let clamped = corrected.saturating_sub(received_at_ms) > limits.max_future_ms;
    *timestamp = if clamped { received_at_ms } else { corrected };
    let shift = *timestamp - original;
    if let Event::ApiAggregate(aggregate) = event {
        aggregate.window_start = aggregate.window_start.saturating_add(shift);
    }
    Ok((skew_ms, clamped))
}

struct Reader<'r, 'a> {
    object: &'r mut WireMap<'a>,
    limits: &'r Limits,
}

impl<'a> Reader<'_, 'a> {
    fn get(&self, field: &str) -> Option<&WireValue<'a>> {
        wire::get(self.object, field)
    }

    fn api_call(&mut self) -> Result<ApiCall> {
        let limits = self.limits;
        let direction = match self.optional_str("direction", 16)?.as_deref() {
            None | Some("inbound") => Direction::Inbound,
            Some("outbound") => Direction::Outbound,
            Some(other) => {
                return Err(ValidationError::new(
                    "direction",
                    format!("must be `inbound` or `outbound`, got `{other}`"),
                ));
            }
        };
        let provider = self.optional_str("provider", limits.max_name_bytes)?;
        if direction == Direction::Outbound && provider.is_none() {
            return Err(ValidationError::new(
                "provider",
                "is required when direction is `outbound` (e.g. `stripe`)",
            ));
        }
        let (value, currency) = self.value_and_currency()?;
        Ok(ApiCall {
            schema_version: SCHEMA_VERSION,
            event_id: self.event_id()?,
            timestamp: self.required_time("timestamp")?,
            sent_at: self.optional_time("sent_at")?,
            service: self.required_str("service", limits.max_name_bytes)?,
            method: self.method()?,
            route: self.route()?,
            status: self.status()?,
            latency_ms: self.latency()?,
            request_bytes: self.optional_u64("request_bytes")?,
            response_bytes: self.optional_u64("response_bytes")?,
            user_id: self.optional_str("user_id", limits.max_id_bytes)?,
            account_id: self.optional_str("account_id", limits.max_id_bytes)?,
            session_id: self.optional_str("session_id", limits.max_id_bytes)?,
            plan: self.optional_str("plan", limits.max_name_bytes)?,
            segment: self.optional_str("segment", limits.max_name_bytes)?,
            experiments: self.experiments()?,
            app_version: self.optional_str("app_version", limits.max_name_bytes)?,
            sdk: self.optional_str("sdk", limits.max_name_bytes)?,
            error_type: self.optional_str("error_type", limits.max_name_bytes)?,
            direction,
            provider,
            value,
            currency,
            properties: self.properties()?,
            sample_rate: self.sample_rate()?,
            aggregated: self.optional_bool("aggregated")?.unwrap_or(false),
        })
    }

    fn outcome(&mut self) -> Result<Outcome> {
        let limits = self.limits;
        let (value, currency) = self.value_and_currency()?;
        Ok(Outcome {
            schema_version: SCHEMA_VERSION,
            event_id: self.event_id()?,
            timestamp: self.required_time("timestamp")?,
            sent_at: self.optional_time("sent_at")?,
            name: self.required_str("name", limits.max_name_bytes)?,
            user_id: self.optional_str("user_id", limits.max_id_bytes)?,
            account_id: self.optional_str("account_id", limits.max_id_bytes)?,
            session_id: self.optional_str("session_id", limits.max_id_bytes)?,
            value,
            currency,
            properties: self.properties()?,
            sample_rate: self.sample_rate()?,
        })
    }

    fn sample_rate(&mut self) -> Result<Option<f64>> {
        let rate = match self.get("sample_rate") {
            None | Some(WireValue::Null) => return Ok(None),
            Some(_) => self.required_f64("sample_rate")?,
        };
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(ValidationError::new(
                "sample_rate",
                format!(
                    "must be above 0 and at most 1 (the share of events the client kept), got {}",
                    WireValue::F64(rate).number_text()
                ),
            ));
        }
        Ok(Some(rate))
    }

    /// Experiment names and variants may not contain `=`, `;` or `:`: rollups key variants as
    /// `experiment=variant;...` and filters accept `experiment:variant`.
    fn experiments(&mut self) -> Result<BTreeMap<String, String>> {
        let limits = self.limits;
        let experiments = self.string_map(
            "experiments",
            limits.max_experiments,
            limits.max_name_bytes,
            limits.max_name_bytes,
        )?;
        for (experiment, variant) in &experiments {
            for text in [experiment, variant] {
                if let Some(bad) = text.chars().find(|c| matches!(c, '=' | ';' | ':')) {
                    return Err(ValidationError::new(
                        format!("experiments.{experiment}"),
                        format!(
                            "experiment names and variants may not contain `{bad}`, got `{text}`"
                        ),
                    ));
                }
            }
        }
        Ok(experiments)
    }

    fn event_id(&mut self) -> Result<String> {
        self.required_str("event_id", self.limits.max_event_id_bytes)
    }

    fn method(&mut self) -> Result<String> {
        let method = self.required_str("method", 16)?.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(ValidationError::new(
                "method",
                format!(
                    "`{method}` is not an HTTP method; expected one of {}",
                    METHODS.join(", ")
                ),
            ));
        }
        Ok(method)
    }

    fn route(&mut self) -> Result<String> {
        let route = self.required_str("route", self.limits.max_route_bytes)?;
        if !route.starts_with('/') {
            return Err(ValidationError::new(
                "route",
                format!("must start with `/`, got `{route}`"),
            ));
        }
        if route.contains('?') || route.contains('#') {
            return Err(ValidationError::new(
                "route",
                "must be a route template without query string or fragment (e.g. `/api/orders/{id}`)",
            ));
        }
        if let Some(segment) = route.split('/').find(|segment| looks_like_raw_id(segment)) {
            return Err(ValidationError::new(
                "route",
                format!(
                    "segment `{segment}` looks like a raw id; send the route template (e.g. `/api/orders/{{id}}`) so that endpoints stay countable"
                ),
            ));
        }
        Ok(route)
    }

    fn status(&mut self) -> Result<u16> {
        let status = self.required_u64("status")?;
        if !(100..=599).contains(&status) {
            return Err(ValidationError::new(
                "status",
                format!("must be an HTTP status between 100 and 599, got {status}"),
            ));
        }
        Ok(status as u16)
    }

    fn latency(&mut self) -> Result<f64> {
        let latency = self.required_f64("latency_ms")?;
        if latency < 0.0 {
            return Err(ValidationError::new(
                "latency_ms",
                format!("must be ≥ 0, got {latency}"),
            ));
        }
        if latency > MAX_LATENCY_MS {
            return Err(ValidationError::new(
                "latency_ms",
                format!(
                    "must be at most {MAX_LATENCY_MS} (7 days), got {}",
                    WireValue::F64(latency).number_text()
                ),
            ));
        }
        Ok(latency)
    }

    fn value_and_currency(&mut self) -> Result<(Option<f64>, Option<String>)> {
        let value = match self.get("value") {
            None | Some(WireValue::Null) => None,
            Some(_) => Some(self.required_f64("value")?),
        };
        if let Some(value) = value
            && value.abs() > MAX_ABS_VALUE
        {
            return Err(ValidationError::new(
                "value",
                format!(
                    "must be between -1e15 and 1e15, got {}",
                    WireValue::F64(value).number_text()
                ),
            ));
        }
        let currency = self.optional_str("currency", 3)?;
        if let Some(currency) = &currency
            && (currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(ValidationError::new(
                "currency",
                format!("must be an ISO 4217 code such as `EUR`, got `{currency}`"),
            ));
        }
        Ok((value, currency))
    }

    fn properties(&mut self) -> Result<BTreeMap<String, String>> {
        let limits = self.limits;
        self.string_map(
            "properties",
            limits.max_properties,
            limits.max_property_key_bytes,
            limits.max_property_value_bytes,
        )
    }
}

mod aggregate;
mod fields;

use fields::looks_like_raw_id;

#[cfg(test)]
mod tests;
