//! Client aggregates (`api_aggregates` rows) at the raw edges of a window: the rollups hold them
//! for whole buckets; a partial bucket reads the rows whose window ends inside it.

use crate::Result;
use crate::filter::{Filter, RawDims};
use crate::summary::{EndpointKey, Summary};
use std::collections::HashMap;
use valuetrace_store::aggregate_table::{parse_buckets, parse_user_sketch};
use valuetrace_store::call_columns::optional_text;
use valuetrace_store::project::ScanSet;
use valuetrace_store::rollup::{AggregateFacts, Cell};
use valuetrace_store::schema::Columns;

/// The columns an edge scan of aggregates reads.
const AGGREGATE_COLUMNS: [&str; 13] = [
    "timestamp",
    "service",
    "method",
    "route",
    "status_class",
    "plan",
    "experiments",
    "direction",
    "provider",
    "count",
    "latency_sum_ms",
    "latency_buckets",
    "user_sketch",
];

/// Adds the aggregates whose window ends in `[from, to)` and that match `filter` to `summary`.
/// Aggregates carry no segment: a segment filter matches none of them.
pub fn scan_raw(
    set: &ScanSet,
    from: i64,
    to: i64,
    filter: &Filter,
    summary: &mut Summary,
) -> Result<()> {
    let mut cells: HashMap<EndpointKey, Cell> = HashMap::new();
    set.scan(from, to, &AGGREGATE_COLUMNS, |batch| {
        let c = Columns::new(batch);
        let timestamp = c.time("timestamp")?;
        let (service, method, route) = (c.text("service")?, c.text("method")?, c.text("route")?);
        let (plan, experiments) = (c.text("plan")?, c.text("experiments")?);
        let (direction, provider) = (c.text("direction")?, c.text("provider")?);
        let status_class = c.u16("status_class")?;
        let (count, latency_sum) = (c.u64("count")?, c.f64("latency_sum_ms")?);
        let buckets = c.text("latency_buckets")?;
        // Absent in files written before aggregates carried a sketch.
        let user_sketch = c.text("user_sketch").ok();
        for row in 0..batch.num_rows() {
            let ts = timestamp.value(row);
            if ts < from || ts >= to {
                continue;
            }
            summary.raw_rows_scanned += 1;
            let dims = RawDims {
                route: route.value(row),
                method: method.value(row),
                service: service.value(row),
                direction: direction.value(row),
                plan: optional_text(plan, row),
                segment: None,
                experiments_json: optional_text(experiments, row),
            };
            if !filter.matches_raw(&dims) {
                continue;
            }
            let latency_buckets = parse_buckets(buckets.value(row));
            let sketch = parse_user_sketch(user_sketch.and_then(|c| optional_text(c, row)));
            let facts = AggregateFacts {
                timestamp: ts,
                count: count.value(row),
                status_class: status_class.value(row) as u8,
                latency_sum_ms: latency_sum.value(row),
                latency_buckets: &latency_buckets,
                user_sketch: sketch.as_deref(),
            };
            let key = EndpointKey {
                route: dims.route.to_owned(),
                method: dims.method.to_owned(),
                service: dims.service.to_owned(),
                provider: optional_text(provider, row).map(str::to_owned),
                outbound: dims.direction == "outbound",
            };
            cells.entry(key).or_default().add_aggregate(&facts);
        }
        Ok(())
    })?;
    for (key, cell) in cells {
        summary.endpoints.entry(key).or_default().add_cell(&cell);
    }
    Ok(())
}
