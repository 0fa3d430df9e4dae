//! The `api_aggregates` table: client aggregates (exact counts per key and flush window), one row
//! each. `experiments` is a JSON object and `latency_buckets` a JSON array of `[bucket, calls]`
//! pairs, both as strings, so the table stays plain for DuckDB or pandas.

use crate::schema::{Columns, common_head, map_json, optional_map, optional_text, text};
use crate::{Error, Result, StoredEvent};
use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt16Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::{Arc, OnceLock};
use valuetrace_model::{ApiAggregate, Direction, Event, SCHEMA_VERSION};

pub fn api_aggregates_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = common_head();
            fields.extend([
                Field::new("window_start", crate::schema::timestamp_type(), false),
                text("service", false),
                text("method", false),
                text("route", false),
                Field::new("status_class", DataType::UInt16, false),
                text("plan", true),
                text("experiments", true),
                text("app_version", true),
                text("sdk", true),
                text("direction", false),
                text("provider", true),
                Field::new("count", DataType::UInt64, false),
                Field::new("latency_sum_ms", DataType::Float64, false),
                text("latency_buckets", false),
                // `[[register, rank], ...]` as JSON; null from clients that send no sketch
                // (and in files written before the column existed).
                text("user_sketch", true),
            ]);
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// `[[bucket, calls], ...]` as JSON text.
pub fn buckets_json(buckets: &[(u32, u64)]) -> String {
    serde_json::to_string(buckets).unwrap_or_else(|_| "[]".into())
}

/// The `(register, rank)` pairs of a `user_sketch` cell; `None` when null or unreadable.
pub fn parse_user_sketch(text: Option<&str>) -> Option<Vec<(u16, u8)>> {
    serde_json::from_str(text?).ok()
}

/// The pairs of a `latency_buckets` cell; empty when unreadable.
pub fn parse_buckets(text: &str) -> Vec<(u32, u64)> {
    serde_json::from_str(text).unwrap_or_default()
}

pub fn to_batch(rows: &[&StoredEvent]) -> Result<RecordBatch> {
    let mut event_id = StringBuilder::new();
    let mut timestamp = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut received_at = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut skew = Int64Builder::new();
    let mut window_start = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut head_texts: Vec<StringBuilder> = (0..3).map(|_| StringBuilder::new()).collect();
    let mut status_class = UInt16Builder::new();
    let mut tail_texts: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
    let mut count = UInt64Builder::new();
    let mut latency_sum = Float64Builder::new();
    let mut buckets = StringBuilder::new();
    let mut user_sketch = StringBuilder::new();
    for row in rows {
        let Event::ApiAggregate(a) = &row.event else {
            return Err(Error::Internal(
                "row of the wrong table in the aggregates batch".into(),
            ));
        };
        event_id.append_value(&a.event_id);
        timestamp.append_value(a.timestamp);
        received_at.append_value(row.received_at);
        skew.append_value(row.skew_ms);
        window_start.append_value(a.window_start);
        for (builder, text) in head_texts.iter_mut().zip([&a.service, &a.method, &a.route]) {
            builder.append_value(text);
        }
        status_class.append_value(u16::from(a.status_class));
        let experiments = map_json(&a.experiments);
        let texts: [Option<&str>; 6] = [
            a.plan.as_deref(),
            experiments.as_deref(),
            a.app_version.as_deref(),
            a.sdk.as_deref(),
            Some(a.direction.as_str()),
            a.provider.as_deref(),
        ];
        for (builder, text) in tail_texts.iter_mut().zip(texts) {
            builder.append_option(text);
        }
        count.append_value(a.count);
        latency_sum.append_value(a.latency_sum_ms);
        buckets.append_value(buckets_json(&a.latency_buckets));
        user_sketch.append_option(
            a.user_sketch
                .as_ref()
                .and_then(|pairs| serde_json::to_string(pairs).ok()),
        );
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(received_at.finish()),
        Arc::new(skew.finish()),
        Arc::new(window_start.finish()),
    ];
    columns.extend(
        head_texts
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    columns.push(Arc::new(status_class.finish()));
    columns.extend(
        tail_texts
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    columns.push(Arc::new(count.finish()));
    columns.push(Arc::new(latency_sum.finish()));
    columns.push(Arc::new(buckets.finish()));
    columns.push(Arc::new(user_sketch.finish()));
    Ok(RecordBatch::try_new(api_aggregates_schema(), columns)?)
}

pub fn from_batch(batch: &RecordBatch) -> Result<Vec<StoredEvent>> {
    let c = Columns::new(batch);
    let (event_id, timestamp, received_at, skew) = (
        c.text("event_id")?,
        c.time("timestamp")?,
        c.time("received_at")?,
        c.i64("skew_ms")?,
    );
    let window_start = c.time("window_start")?;
    let (service, method, route) = (c.text("service")?, c.text("method")?, c.text("route")?);
    let status_class = c.u16("status_class")?;
    let (plan, experiments, app_version, sdk) = (
        c.text("plan")?,
        c.text("experiments")?,
        c.text("app_version")?,
        c.text("sdk")?,
    );
    let (direction, provider) = (c.text("direction")?, c.text("provider")?);
    let (count, latency_sum, buckets) = (
        c.u64("count")?,
        c.f64("latency_sum_ms")?,
        c.text("latency_buckets")?,
    );
    // Absent in batches read from files written before the column existed.
    let user_sketch = c.text("user_sketch").ok();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        rows.push(StoredEvent {
            event: Event::ApiAggregate(ApiAggregate {
                schema_version: SCHEMA_VERSION,
                event_id: event_id.value(row).to_owned(),
                timestamp: timestamp.value(row),
                window_start: window_start.value(row),
                sent_at: None,
                service: service.value(row).to_owned(),
                method: method.value(row).to_owned(),
                route: route.value(row).to_owned(),
                status_class: status_class.value(row) as u8,
                plan: optional_text(plan, row),
                experiments: optional_map(experiments, row),
                app_version: optional_text(app_version, row),
                sdk: optional_text(sdk, row),
                direction: if direction.value(row) == "outbound" {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                provider: optional_text(provider, row),
                count: count.value(row),
                latency_sum_ms: latency_sum.value(row),
                latency_buckets: parse_buckets(buckets.value(row)),
                user_sketch: parse_user_sketch(
                    user_sketch.and_then(|c| optional_text(c, row)).as_deref(),
                ),
            }),
            received_at: received_at.value(row),
            skew_ms: skew.value(row),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_round_trip_through_arrow_batches() {
        let aggregate = ApiAggregate {
            schema_version: SCHEMA_VERSION,
            event_id: "agg-1".into(),
            timestamp: 1_795_256_130_000,
            window_start: 1_795_256_120_000,
            service: "shop".into(),
            method: "GET".into(),
            route: "/api/items/{id}".into(),
            status_class: 2,
            plan: Some("pro".into()),
            experiments: [("reco".to_owned(), "ml".to_owned())].into(),
            sdk: Some("valuetrace-rust/0.1".into()),
            count: 5,
            latency_sum_ms: 101.5,
            latency_buckets: vec![(400, 2), (410, 3)],
            user_sketch: Some(vec![(7, 2), (4000, 1)]),
            ..ApiAggregate::default()
        };
        let stored = StoredEvent {
            event: Event::ApiAggregate(aggregate),
            received_at: 1_795_256_131_000,
            skew_ms: 3,
        };
        let batch = to_batch(&[&stored]).unwrap();
        assert_eq!(from_batch(&batch).unwrap(), vec![stored]);
    }
}
