//! Typed access to the `api_calls` columns that rollups need, shared by the start-up rebuild and
//! the query layer's raw edge scans so that both read a row exactly as the write path rolled it up.

use crate::Result;
use crate::project::user_hash;
use crate::rollup::CallFacts;
use crate::schema::Columns;
use arrow_array::{
    Array, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt16Array,
};

/// The columns to project when reading API calls for rollups (`aggregated` is absent from files
/// written before it existed: read as false).
pub const CALL_COLUMNS: [&str; 16] = [
    "timestamp",
    "route",
    "method",
    "service",
    "direction",
    "provider",
    "status",
    "latency_ms",
    "error_type",
    "value",
    "currency",
    "user_id",
    "plan",
    "segment",
    "experiments",
    "aggregated",
];

pub struct CallColumns<'a> {
    pub timestamp: &'a TimestampMillisecondArray,
    pub route: &'a StringArray,
    pub method: &'a StringArray,
    pub service: &'a StringArray,
    pub direction: &'a StringArray,
    pub provider: &'a StringArray,
    pub status: &'a UInt16Array,
    pub latency: &'a Float64Array,
    pub error_type: &'a StringArray,
    pub value: &'a Float64Array,
    pub currency: &'a StringArray,
    pub user: &'a StringArray,
    pub plan: &'a StringArray,
    pub segment: &'a StringArray,
    pub experiments: &'a StringArray,
    pub aggregated: Option<&'a BooleanArray>,
}

impl<'a> CallColumns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Result<Self> {
        let c = Columns::new(batch);
        Ok(CallColumns {
            timestamp: c.time("timestamp")?,
            route: c.text("route")?,
            method: c.text("method")?,
            service: c.text("service")?,
            direction: c.text("direction")?,
            provider: c.text("provider")?,
            status: c.u16("status")?,
            latency: c.f64("latency_ms")?,
            error_type: c.text("error_type")?,
            value: c.f64("value")?,
            currency: c.text("currency")?,
            user: c.text("user_id")?,
            plan: c.text("plan")?,
            segment: c.text("segment")?,
            experiments: c.text("experiments")?,
            aggregated: batch
                .column_by_name("aggregated")
                .and_then(|column| column.as_any().downcast_ref::<BooleanArray>()),
        })
    }

    /// The rollup facts of one row, as [`crate::project::facts_of`] computes them at write time.
    pub fn facts(&self, row: usize) -> CallFacts {
        CallFacts {
            timestamp: self.timestamp.value(row),
            status: self.status.value(row),
            latency_ms: self.latency.value(row),
            has_error_type: self.error_type.is_valid(row),
            value: self.value.is_valid(row).then(|| self.value.value(row)),
            currency: crate::rollup::currency_tag(optional_text(self.currency, row)),
            user_hash: optional_text(self.user, row).map(user_hash),
        }
    }

    /// The call was also counted by a client aggregate (its counts come from there).
    pub fn is_aggregated(&self, row: usize) -> bool {
        self.aggregated
            .is_some_and(|flags| flags.is_valid(row) && flags.value(row))
    }

    pub fn is_outbound(&self, row: usize) -> bool {
        self.direction.value(row) == "outbound"
    }
}

/// The value of a nullable string column.
pub fn optional_text(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}
