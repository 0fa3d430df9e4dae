//! Arrow schemas of the three raw tables and conversion between rows and record batches.
//!
//! `api_calls`, `outcomes` and `api_aggregates` ([`crate::aggregate_table`]) are kept as separate tables (separate Parquet files) so that each is
//! a plain, typed table in DuckDB, pandas or Spark. Timestamps are `timestamp[ms, UTC]`;
//! `user_id`, `account_id` and `session_id` hold pseudonyms (HMAC-SHA256), never raw ids;
//! `experiments` and `properties` are JSON objects encoded as strings.

use crate::{Error, Result, StoredEvent};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
    UInt16Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt16Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use valuetrace_model::{ApiCall, Direction, Event, Outcome, SCHEMA_VERSION};

/// Which raw table a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    ApiCalls,
    Outcomes,
    ApiAggregates,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::ApiCalls, Table::Outcomes, Table::ApiAggregates];

    pub fn dir_name(self) -> &'static str {
        match self {
            Table::ApiCalls => "api_calls",
            Table::Outcomes => "outcomes",
            Table::ApiAggregates => "api_aggregates",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::ApiCalls => api_calls_schema(),
            Table::Outcomes => outcomes_schema(),
            Table::ApiAggregates => crate::aggregate_table::api_aggregates_schema(),
        }
    }

    pub fn of(event: &Event) -> Table {
        match event {
            Event::ApiCall(_) => Table::ApiCalls,
            Event::Outcome(_) => Table::Outcomes,
            Event::ApiAggregate(_) => Table::ApiAggregates,
        }
    }
}

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub(crate) fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

pub(crate) fn common_head() -> Vec<Field> {
    vec![
        text("event_id", false),
        Field::new("timestamp", timestamp_type(), false),
        Field::new("received_at", timestamp_type(), false),
        Field::new("skew_ms", DataType::Int64, false),
    ]
}

pub fn api_calls_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = common_head();
            fields.extend([
                text("service", false),
                text("method", false),
                text("route", false),
                Field::new("status", DataType::UInt16, false),
                Field::new("latency_ms", DataType::Float64, false),
                Field::new("request_bytes", DataType::UInt64, true),
                Field::new("response_bytes", DataType::UInt64, true),
                text("user_id", true),
                text("account_id", true),
                text("session_id", true),
                text("plan", true),
                text("segment", true),
                text("experiments", true),
                text("app_version", true),
                text("sdk", true),
                text("error_type", true),
                text("direction", false),
                text("provider", true),
                Field::new("value", DataType::Float64, true),
                text("currency", true),
                text("properties", true),
                Field::new("sample_rate", DataType::Float64, true),
                Field::new("aggregated", DataType::Boolean, true),
            ]);
            Arc::new(Schema::new(fields))
        })
        .clone()
}

pub fn outcomes_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = common_head();
            fields.extend([
                text("name", false),
                text("user_id", true),
                text("account_id", true),
                text("session_id", true),
                Field::new("value", DataType::Float64, true),
                text("currency", true),
                text("properties", true),
                Field::new("sample_rate", DataType::Float64, true),
            ]);
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// `batch` with the columns of `table`'s current schema, in its order; columns a file written by
/// an older version lacks (nullable by rule: new columns are always optional) are filled with
/// nulls, so files of different versions can be merged.
pub fn conform(table: Table, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = table.schema();
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => Ok(column.clone()),
            None if field.is_nullable() => Ok(arrow_array::new_null_array(
                field.data_type(),
                batch.num_rows(),
            )),
            None => Err(Error::Corrupt(format!(
                "column `{}` is missing",
                field.name()
            ))),
        })
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

pub(crate) fn map_json(map: &BTreeMap<String, String>) -> Option<String> {
    if map.is_empty() {
        None
    } else {
        serde_json::to_string(map).ok()
    }
}

/// Builds one record batch from rows of a single table (rows of the other table are skipped).
pub fn to_batch(table: Table, rows: &[&StoredEvent]) -> Result<RecordBatch> {
    if table == Table::ApiAggregates {
        return crate::aggregate_table::to_batch(rows);
    }
    let mut event_id = StringBuilder::new();
    let mut timestamp = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut received_at = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut skew = Int64Builder::new();
    let mut strings: Vec<StringBuilder> = (0..16).map(|_| StringBuilder::new()).collect();
    let (mut status, mut latency) = (UInt16Builder::new(), Float64Builder::new());
    let (mut request_bytes, mut response_bytes) = (UInt64Builder::new(), UInt64Builder::new());
    let mut value = Float64Builder::new();
    let mut sample_rate = Float64Builder::new();
    let mut aggregated = BooleanBuilder::new();
    for row in rows {
        event_id.append_value(row.event.event_id());
        timestamp.append_value(row.event.timestamp());
        received_at.append_value(row.received_at);
        skew.append_value(row.skew_ms);
        match (&row.event, table) {
            (Event::ApiCall(call), Table::ApiCalls) => {
                let (experiments, properties) =
                    (map_json(&call.experiments), map_json(&call.properties));
                let texts: [Option<&str>; 16] = [
                    Some(&call.service),
                    Some(&call.method),
                    Some(&call.route),
                    call.user_id.as_deref(),
                    call.account_id.as_deref(),
                    call.session_id.as_deref(),
                    call.plan.as_deref(),
                    call.segment.as_deref(),
                    experiments.as_deref(),
                    call.app_version.as_deref(),
                    call.sdk.as_deref(),
                    call.error_type.as_deref(),
                    Some(call.direction.as_str()),
                    call.provider.as_deref(),
                    call.currency.as_deref(),
                    properties.as_deref(),
                ];
                for (builder, text) in strings.iter_mut().zip(texts) {
                    builder.append_option(text);
                }
                status.append_value(call.status);
                latency.append_value(call.latency_ms);
                request_bytes.append_option(call.request_bytes);
                response_bytes.append_option(call.response_bytes);
                value.append_option(call.value);
                sample_rate.append_option(call.sample_rate);
                aggregated.append_option(call.aggregated.then_some(true));
            }
            (Event::Outcome(outcome), Table::Outcomes) => {
                let properties = map_json(&outcome.properties);
                let texts: [Option<&str>; 6] = [
                    Some(&outcome.name),
                    outcome.user_id.as_deref(),
                    outcome.account_id.as_deref(),
                    outcome.session_id.as_deref(),
                    outcome.currency.as_deref(),
                    properties.as_deref(),
                ];
                for (builder, text) in strings.iter_mut().zip(texts) {
                    builder.append_option(text);
                }
                value.append_option(outcome.value);
                sample_rate.append_option(outcome.sample_rate);
            }
            _ => return Err(Error::Internal("row of the wrong table in to_batch".into())),
        }
    }
    let head: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(received_at.finish()),
        Arc::new(skew.finish()),
    ];
    let mut s: Vec<ArrayRef> = strings
        .iter_mut()
        .map(|builder| Arc::new(builder.finish()) as ArrayRef)
        .collect();
    let columns: Vec<ArrayRef> = match table {
        Table::ApiCalls => {
            let mut columns = head;
            columns.extend(s.drain(0..3));
            columns.push(Arc::new(status.finish()));
            columns.push(Arc::new(latency.finish()));
            columns.push(Arc::new(request_bytes.finish()));
            columns.push(Arc::new(response_bytes.finish()));
            columns.extend(s.drain(0..11));
            columns.push(Arc::new(value.finish()));
            columns.extend(s.drain(0..2));
            columns.push(Arc::new(sample_rate.finish()));
            columns.push(Arc::new(aggregated.finish()));
            columns
        }
        Table::ApiAggregates => unreachable!("handled above"),
        Table::Outcomes => {
            let mut columns = head;
            columns.extend(s.drain(0..4));
            columns.push(Arc::new(value.finish()));
            columns.extend(s.drain(0..2));
            columns.push(Arc::new(sample_rate.finish()));
            columns
        }
    };
    Ok(RecordBatch::try_new(table.schema(), columns)?)
}

/// Typed access to the columns of a record batch by name.
pub struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Self {
        Columns { batch }
    }

    fn column<T: 'static>(&self, name: &str) -> Result<&'a T> {
        let column = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| Error::Corrupt(format!("column `{name}` is missing")))?;
        column.as_any().downcast_ref::<T>().ok_or_else(|| {
            Error::Corrupt(format!("column `{name}` has type {}", column.data_type()))
        })
    }

    pub fn text(&self, name: &str) -> Result<&'a StringArray> {
        self.column(name)
    }
    pub fn time(&self, name: &str) -> Result<&'a TimestampMillisecondArray> {
        self.column(name)
    }
    pub fn i64(&self, name: &str) -> Result<&'a Int64Array> {
        self.column(name)
    }
    pub fn f64(&self, name: &str) -> Result<&'a Float64Array> {
        self.column(name)
    }
    pub fn u16(&self, name: &str) -> Result<&'a UInt16Array> {
        self.column(name)
    }
    pub fn u64(&self, name: &str) -> Result<&'a UInt64Array> {
        self.column(name)
    }
}

pub(crate) fn optional_text(array: &StringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_owned())
}

pub(crate) fn optional_map(array: &StringArray, row: usize) -> BTreeMap<String, String> {
    optional_text(array, row)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

fn optional<T: arrow_array::ArrowPrimitiveType>(
    array: &arrow_array::PrimitiveArray<T>,
    row: usize,
) -> Option<T::Native> {
    array.is_valid(row).then(|| array.value(row))
}

/// Reads rows back from a full-schema batch (start-up rebuild of rollups and dedup).
pub fn from_batch(table: Table, batch: &RecordBatch) -> Result<Vec<StoredEvent>> {
    if table == Table::ApiAggregates {
        return crate::aggregate_table::from_batch(batch);
    }
    let c = Columns::new(batch);
    let (event_id, timestamp, received_at, skew) = (
        c.text("event_id")?,
        c.time("timestamp")?,
        c.time("received_at")?,
        c.i64("skew_ms")?,
    );
    let (user, account, session) = (
        c.text("user_id")?,
        c.text("account_id")?,
        c.text("session_id")?,
    );
    let (value, currency, properties) =
        (c.f64("value")?, c.text("currency")?, c.text("properties")?);
    // Files written before `sample_rate` existed lack it.
    let sample_rate = c.f64("sample_rate").ok();
    let rate = |row: usize| sample_rate.and_then(|rates| optional(rates, row));
    let aggregated = batch
        .column_by_name("aggregated")
        .and_then(|column| column.as_any().downcast_ref::<BooleanArray>());
    let is_aggregated =
        |row: usize| aggregated.is_some_and(|flags| flags.is_valid(row) && flags.value(row));
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let event = match table {
            Table::ApiCalls => Event::ApiCall(ApiCall {
                schema_version: SCHEMA_VERSION,
                event_id: event_id.value(row).to_owned(),
                timestamp: timestamp.value(row),
                sent_at: None,
                service: c.text("service")?.value(row).to_owned(),
                method: c.text("method")?.value(row).to_owned(),
                route: c.text("route")?.value(row).to_owned(),
                status: c.u16("status")?.value(row),
                latency_ms: c.f64("latency_ms")?.value(row),
                request_bytes: optional(c.u64("request_bytes")?, row),
                response_bytes: optional(c.u64("response_bytes")?, row),
                user_id: optional_text(user, row),
                account_id: optional_text(account, row),
                session_id: optional_text(session, row),
                plan: optional_text(c.text("plan")?, row),
                segment: optional_text(c.text("segment")?, row),
                experiments: optional_map(c.text("experiments")?, row),
                app_version: optional_text(c.text("app_version")?, row),
                sdk: optional_text(c.text("sdk")?, row),
                error_type: optional_text(c.text("error_type")?, row),
                direction: if c.text("direction")?.value(row) == "outbound" {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                provider: optional_text(c.text("provider")?, row),
                value: optional(value, row),
                currency: optional_text(currency, row),
                properties: optional_map(properties, row),
                sample_rate: rate(row),
                aggregated: is_aggregated(row),
            }),
            Table::ApiAggregates => unreachable!("handled above"),
            Table::Outcomes => Event::Outcome(Outcome {
                schema_version: SCHEMA_VERSION,
                event_id: event_id.value(row).to_owned(),
                timestamp: timestamp.value(row),
                sent_at: None,
                name: c.text("name")?.value(row).to_owned(),
                user_id: optional_text(user, row),
                account_id: optional_text(account, row),
                session_id: optional_text(session, row),
                value: optional(value, row),
                currency: optional_text(currency, row),
                properties: optional_map(properties, row),
                sample_rate: rate(row),
            }),
        };
        rows.push(StoredEvent {
            event,
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
    fn rows_round_trip_through_arrow_batches() {
        let mut call = ApiCall {
            schema_version: SCHEMA_VERSION,
            event_id: "e-1".into(),
            timestamp: 1_795_256_130_123,
            service: "payments".into(),
            method: "POST".into(),
            route: "/v1/charges".into(),
            status: 504,
            latency_ms: 10_000.5,
            request_bytes: Some(10),
            user_id: Some("0123456789abcdef0123456789abcdef".into()),
            plan: Some("pro".into()),
            error_type: Some("upstream_timeout".into()),
            direction: Direction::Outbound,
            provider: Some("stripe".into()),
            value: Some(12.5),
            currency: Some("EUR".into()),
            ..ApiCall::default()
        };
        call.experiments.insert("reco".into(), "ml_v2".into());
        call.properties.insert("card".into(), "visa".into());
        let outcome = Outcome {
            schema_version: SCHEMA_VERSION,
            event_id: "o-1".into(),
            timestamp: 1_795_256_131_000,
            name: "purchase".into(),
            value: Some(12.5),
            ..Outcome::default()
        };
        let rows = [
            StoredEvent {
                event: Event::ApiCall(call),
                received_at: 1_795_256_140_000,
                skew_ms: -7,
            },
            StoredEvent {
                event: Event::Outcome(outcome),
                received_at: 1_795_256_140_000,
                skew_ms: 0,
            },
        ];
        for (table, row) in [(Table::ApiCalls, &rows[0]), (Table::Outcomes, &rows[1])] {
            let batch = to_batch(table, &[row]).expect("batch");
            assert_eq!(batch.schema(), table.schema());
            assert_eq!(from_batch(table, &batch).expect("rows"), vec![row.clone()]);
        }
        assert!(
            to_batch(Table::Outcomes, &[&rows[0]]).is_err(),
            "a row of the other table is refused"
        );
    }
}
