//! The reader of `api_aggregate` events: exact counts a client shipped for one key and window.

use super::{MAX_LATENCY_MS, Reader, Result, ValidationError};
use crate::SCHEMA_VERSION;
use crate::event::{ApiAggregate, Direction, MAX_AGGREGATE_WINDOW_MS, MAX_LATENCY_BUCKET};
use crate::users::{MAX_RANK, PRECISION, REGISTERS};
use crate::wire::WireValue;

/// The most calls one aggregate may count (a million calls a second for an hour).
const MAX_COUNT: u64 = 3_600_000_000;

pub(super) const API_AGGREGATE_FIELDS: &[&str] = &[
    "type",
    "schema_version",
    "event_id",
    "timestamp",
    "window_start",
    "sent_at",
    "service",
    "method",
    "route",
    "status_class",
    "plan",
    "experiments",
    "app_version",
    "sdk",
    "direction",
    "provider",
    "count",
    "latency_sum_ms",
    "latency_buckets",
    "user_sketch",
];

impl Reader<'_, '_> {
    pub(super) fn api_aggregate(&mut self) -> Result<ApiAggregate> {
        let limits = self.limits;
        let direction = self.direction()?;
        let provider = self.optional_str("provider", limits.max_name_bytes)?;
        let timestamp = self.required_time("timestamp")?;
        let window_start = self.required_time("window_start")?;
        if window_start > timestamp {
            return Err(ValidationError::new(
                "window_start",
                "is after `timestamp` (the window's end)",
            ));
        }
        if timestamp - window_start > MAX_AGGREGATE_WINDOW_MS {
            return Err(ValidationError::new(
                "window_start",
                format!(
                    "the window is {} s long; an aggregate covers at most one hour (flush more often)",
                    (timestamp - window_start) / 1000
                ),
            ));
        }
        let status_class = self.required_u64("status_class")?;
        if !(1..=5).contains(&status_class) {
            return Err(ValidationError::new(
                "status_class",
                format!("must be 1 to 5 (the first digit of the status), got {status_class}"),
            ));
        }
        let count = self.required_u64("count")?;
        if count == 0 || count > MAX_COUNT {
            return Err(ValidationError::new(
                "count",
                format!("must be between 1 and {MAX_COUNT}, got {count}"),
            ));
        }
        let latency_sum_ms = self.required_f64("latency_sum_ms")?;
        if latency_sum_ms < 0.0 || latency_sum_ms > count as f64 * MAX_LATENCY_MS {
            return Err(ValidationError::new(
                "latency_sum_ms",
                format!(
                    "must be between 0 and count × 7 days, got {}",
                    WireValue::F64(latency_sum_ms).number_text()
                ),
            ));
        }
        let latency_buckets = self.latency_buckets(count)?;
        let user_sketch = self.user_sketch()?;
        Ok(ApiAggregate {
            schema_version: SCHEMA_VERSION,
            event_id: self.event_id()?,
            timestamp,
            window_start,
            sent_at: self.optional_time("sent_at")?,
            service: self.required_str("service", limits.max_name_bytes)?,
            method: self.method()?,
            route: self.route()?,
            status_class: status_class as u8,
            plan: self.optional_str("plan", limits.max_name_bytes)?,
            experiments: self.experiments()?,
            app_version: self.optional_str("app_version", limits.max_name_bytes)?,
            sdk: self.optional_str("sdk", limits.max_name_bytes)?,
            direction,
            provider,
            count,
            latency_sum_ms,
            latency_buckets,
            user_sketch,
        })
    }

    /// `[[register, rank], ...]` (optional): registers strictly ascending below
    /// [`REGISTERS`], ranks 1 to [`MAX_RANK`].
    fn user_sketch(&mut self) -> Result<Option<Vec<(u16, u8)>>> {
        const FIELD: &str = "user_sketch";
        const PAIR: &str = "must be a [register, rank] pair of non-negative integers";
        let items = match self.get(FIELD) {
            None | Some(WireValue::Null) => return Ok(None),
            Some(WireValue::Array(items)) => items,
            Some(other) => {
                return Err(ValidationError::new(
                    FIELD,
                    format!(
                        "must be an array of [register, rank] pairs (HyperLogLog registers, precision {PRECISION}), got {}",
                        other.kind()
                    ),
                ));
            }
        };
        if items.len() > REGISTERS {
            return Err(ValidationError::new(
                FIELD,
                format!(
                    "has {} pairs; a sketch has at most {REGISTERS} registers",
                    items.len()
                ),
            ));
        }
        let mut registers: Vec<(u16, u8)> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = || format!("{FIELD}[{i}]");
            let (WireValue::U64(register), WireValue::U64(rank)) = (match item {
                WireValue::Array(pair) if pair.len() == 2 => (&pair[0], &pair[1]),
                _ => return Err(ValidationError::new(at(), PAIR)),
            }) else {
                return Err(ValidationError::new(at(), PAIR));
            };
            if *register >= REGISTERS as u64 {
                return Err(ValidationError::new(
                    at(),
                    format!(
                        "register {register} is out of range: precision {PRECISION} has registers 0 to {}",
                        REGISTERS - 1
                    ),
                ));
            }
            if *rank == 0 || *rank > u64::from(MAX_RANK) {
                return Err(ValidationError::new(
                    at(),
                    format!(
                        "rank {rank} is out of range: ranks are 1 to {MAX_RANK} (leave empty registers out)"
                    ),
                ));
            }
            if registers
                .last()
                .is_some_and(|(last, _)| u64::from(*last) >= *register)
            {
                return Err(ValidationError::new(
                    at(),
                    "registers must be strictly ascending (each register once)",
                ));
            }
            registers.push((*register as u16, *rank as u8));
        }
        Ok(Some(registers))
    }

    /// `[[bucket, calls], ...]`: buckets strictly ascending, each at most the highest bucket,
    /// calls ≥ 1, summing to `count`.
    fn latency_buckets(&mut self, count: u64) -> Result<Vec<(u32, u64)>> {
        const FIELD: &str = "latency_buckets";
        let items = match self.get(FIELD) {
            None | Some(WireValue::Null) => {
                return Err(ValidationError::new(FIELD, "is required"));
            }
            Some(WireValue::Array(items)) => items,
            Some(other) => {
                return Err(ValidationError::new(
                    FIELD,
                    format!(
                        "must be an array of [bucket, calls] pairs, got {}",
                        other.kind()
                    ),
                ));
            }
        };
        let mut buckets = Vec::with_capacity(items.len());
        let mut total: u64 = 0;
        for (i, item) in items.iter().enumerate() {
            let at = || format!("{FIELD}[{i}]");
            let pair = match item {
                WireValue::Array(pair) if pair.len() == 2 => pair,
                _ => {
                    return Err(ValidationError::new(
                        at(),
                        "must be a [bucket, calls] pair of non-negative integers",
                    ));
                }
            };
            let (WireValue::U64(bucket), WireValue::U64(calls)) = (&pair[0], &pair[1]) else {
                return Err(ValidationError::new(
                    at(),
                    "must be a [bucket, calls] pair of non-negative integers",
                ));
            };
            if *bucket > u64::from(MAX_LATENCY_BUCKET) {
                return Err(ValidationError::new(
                    at(),
                    format!("bucket {bucket} is above the highest bucket {MAX_LATENCY_BUCKET}"),
                ));
            }
            if *calls == 0 {
                return Err(ValidationError::new(
                    at(),
                    "a bucket must count at least one call",
                ));
            }
            if buckets
                .last()
                .is_some_and(|(last, _)| u64::from(*last) >= *bucket)
            {
                return Err(ValidationError::new(
                    at(),
                    "buckets must be strictly ascending (each bucket once)",
                ));
            }
            total = total.saturating_add(*calls);
            buckets.push((*bucket as u32, *calls));
        }
        if total != count {
            return Err(ValidationError::new(
                FIELD,
                format!("the buckets count {total} calls but `count` is {count}"),
            ));
        }
        Ok(buckets)
    }

    /// `direction` (default inbound); an outbound aggregate names its provider.
    fn direction(&mut self) -> Result<Direction> {
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
        if direction == Direction::Outbound
            && matches!(self.get("provider"), None | Some(WireValue::Null))
        {
            return Err(ValidationError::new(
                "provider",
                "is required when direction is `outbound` (e.g. `stripe`)",
            ));
        }
        Ok(direction)
    }
}
