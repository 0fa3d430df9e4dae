//! One project's data: rollups, dedup index, and per table the in-memory Arrow buffer and the
//! persisted Parquet files, partitioned by UTC day of the event timestamp.

use crate::call_columns::{CallColumns, optional_text};
use crate::dedup::DedupIndex;
use crate::parquet_io::{self, FileInfo};
use crate::rollup::{AggregateFacts, CallFacts, DetailKey, Rollups, RouteKey, variant_key};
use crate::schema::Columns;
use crate::schema::Table;
use crate::source_id::SourceId;
use crate::{Result, StoredEvent};
use arrow_array::RecordBatch;
use std::collections::{BTreeMap, HashMap};
use valuetrace_model::Event;
use valuetrace_model::time::DAY_MS;

/// An immutable Arrow batch of buffered rows with its timestamp range.
#[derive(Debug, Clone)]
pub struct BufferedBatch {
    /// Handed out when the batch is buffered; it follows the batch into `persisting`.
    pub source: SourceId,
    pub batch: RecordBatch,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// One raw table of a project.
#[derive(Debug, Default)]
pub struct TableData {
    /// Day start → batches not yet persisted.
    pub buffer: BTreeMap<i64, Vec<BufferedBatch>>,
    /// Day start → batches being written to Parquet (still visible to queries).
    pub persisting: BTreeMap<i64, Vec<BufferedBatch>>,
    /// Day start → persisted files.
    pub files: BTreeMap<i64, Vec<FileInfo>>,
    pub buffered_rows: usize,
    /// Day start → rows covered by that day's rollup snapshot on disk (see `snapshot.rs`).
    pub snapshot_rows: BTreeMap<i64, u64>,
}

/// What a raw scan of `[from, to)` must read, captured under the lock and read without it.
#[derive(Debug, Default)]
pub struct ScanSet {
    pub batches: Vec<ScanBatch>,
    pub files: Vec<FileInfo>,
}

/// A buffered batch captured by a scan, with the id that names it for caches.
#[derive(Debug, Clone)]
pub struct ScanBatch {
    pub source: SourceId,
    pub batch: RecordBatch,
}

impl ScanSet {
    /// Calls `each` with every batch that may hold rows in `[from, to)`; rows outside the range
    /// may be included (callers filter by timestamp).
    pub fn scan(
        &self,
        from: i64,
        to: i64,
        columns: &[&str],
        mut each: impl FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        for scanned in &self.batches {
            each(&scanned.batch)?;
        }
        for file in &self.files {
            parquet_io::read_range(file, from, to, columns, &mut each)?;
        }
        Ok(())
    }
}

impl TableData {
    /// The earliest row timestamp of the table (buffered, being persisted or in a file); `None`
    /// when it holds no row. Answers that compare with a previous period use it to tell a period
    /// before the data began from a quiet one.
    pub fn first_ts(&self) -> Option<i64> {
        let first_day = |days: &BTreeMap<i64, Vec<BufferedBatch>>| {
            let batches = days.values().find(|batches| !batches.is_empty())?;
            batches.iter().map(|b| b.min_ts).min()
        };
        let files = self.files.values().find(|files| !files.is_empty());
        let file_min = files.and_then(|files| files.iter().map(|f| f.min_ts).min());
        [
            first_day(&self.buffer),
            first_day(&self.persisting),
            file_min,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn scan_set(&self, from: i64, to: i64) -> ScanSet {
        let mut set = ScanSet::default();
        let first_day = from.div_euclid(DAY_MS) * DAY_MS;
        for source in [&self.buffer, &self.persisting] {
            for (_, batches) in source.range(first_day..to) {
                let overlapping = batches.iter().filter(|b| b.max_ts >= from && b.min_ts < to);
                set.batches.extend(overlapping.map(|b| ScanBatch {
                    source: b.source,
                    batch: b.batch.clone(),
                }));
            }
        }
        for (_, files) in self.files.range(first_day..to) {
            set.files.extend(
                files
                    .iter()
                    .filter(|f| f.max_ts >= from && f.min_ts < to)
                    .cloned(),
            );
        }
        set
    }
}

/// Everything the store keeps for one project.
#[derive(Debug)]
pub struct ProjectData {
    pub rollups: Rollups,
    pub dedup: DedupIndex,
    pub tables: HashMap<Table, TableData>,
    pub counters: ProjectCounters,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ProjectCounters {
    pub stored: u64,
    pub duplicates: u64,
}

impl ProjectData {
    pub fn new(minute_retention_ms: i64, dedup_window_ms: i64, now_ms: i64) -> Self {
        let mut tables = HashMap::new();
        for table in Table::ALL {
            tables.insert(table, TableData::default());
        }
        ProjectData {
            rollups: Rollups::new(minute_retention_ms, now_ms),
            dedup: DedupIndex::new(dedup_window_ms),
            tables,
            counters: ProjectCounters::default(),
        }
    }

    pub fn table(&self, table: Table) -> &TableData {
        self.tables
            .get(&table)
            .expect("every table is created in ProjectData::new")
    }

    pub fn table_mut(&mut self, table: Table) -> &mut TableData {
        self.tables
            .get_mut(&table)
            .expect("every table is created in ProjectData::new")
    }

    /// Updates rollups with the API calls and client aggregates among `events`. A call that a
    /// client aggregate also counted adds only its user (the aggregate brings its counts).
    pub fn roll_up(&mut self, events: &[StoredEvent]) {
        for stored in events {
            match &stored.event {
                Event::ApiCall(call) => {
                    let interner = &mut self.rollups.interner;
                    let variant =
                        interner.intern_optional(variant_key(&call.experiments).as_deref());
                    let dims = KeyDims {
                        route: &call.route,
                        method: &call.method,
                        service: &call.service,
                        provider: call.provider.as_deref(),
                        outbound: call.direction == valuetrace_model::Direction::Outbound,
                        plan: call.plan.as_deref(),
                        segment: call.segment.as_deref(),
                    };
                    let key = dims.intern(interner, variant);
                    let facts = facts_of(call);
                    if call.aggregated {
                        self.rollups.add_aggregated_call(key, &facts);
                    } else {
                        self.rollups.add(key, &facts);
                    }
                }
                Event::ApiAggregate(aggregate) => {
                    let interner = &mut self.rollups.interner;
                    let variant =
                        interner.intern_optional(variant_key(&aggregate.experiments).as_deref());
                    let dims = KeyDims {
                        route: &aggregate.route,
                        method: &aggregate.method,
                        service: &aggregate.service,
                        provider: aggregate.provider.as_deref(),
                        outbound: aggregate.direction == valuetrace_model::Direction::Outbound,
                        plan: aggregate.plan.as_deref(),
                        segment: None,
                    };
                    let key = dims.intern(interner, variant);
                    self.rollups.add_aggregate(key, &aggregate_facts(aggregate));
                }
                Event::Outcome(_) => {}
            }
        }
    }
}

/// The rollup facts of a client aggregate.
pub fn aggregate_facts(aggregate: &valuetrace_model::ApiAggregate) -> AggregateFacts<'_> {
    AggregateFacts {
        timestamp: aggregate.timestamp,
        count: aggregate.count,
        status_class: aggregate.status_class,
        latency_sum_ms: aggregate.latency_sum_ms,
        latency_buckets: &aggregate.latency_buckets,
        user_sketch: aggregate.user_sketch.as_deref(),
    }
}

impl ProjectData {
    /// Start-up rebuild from one persisted batch: rollups from the columns they need and dedup
    /// entries for rows received after `dedup_horizon`, without building row structs.
    pub fn rebuild_from_batch(
        &mut self,
        table: Table,
        batch: &RecordBatch,
        dedup_horizon: i64,
    ) -> Result<()> {
        let columns = Columns::new(batch);
        let (event_id, received_at) = (columns.text("event_id")?, columns.time("received_at")?);
        for row in 0..batch.num_rows() {
            let received = received_at.value(row);
            if received >= dedup_horizon {
                self.dedup.insert(event_id.value(row), received);
            }
        }
        self.counters.stored += batch.num_rows() as u64;
        if table == Table::ApiAggregates {
            for stored in crate::aggregate_table::from_batch(batch)? {
                self.roll_up(std::slice::from_ref(&stored));
            }
            return Ok(());
        }
        if table != Table::ApiCalls {
            return Ok(());
        }
        let calls = CallColumns::new(batch)?;
        let mut variants: HashMap<String, u32> = HashMap::new();
        for row in 0..batch.num_rows() {
            let interner = &mut self.rollups.interner;
            let variant = match optional_text(calls.experiments, row) {
                None => crate::interner::NONE,
                Some(json) => match variants.get(json) {
                    Some(&id) => id,
                    None => {
                        let map: std::collections::BTreeMap<String, String> =
                            serde_json::from_str(json).unwrap_or_default();
                        let id = interner.intern_optional(variant_key(&map).as_deref());
                        variants.insert(json.to_owned(), id);
                        id
                    }
                },
            };
            let dims = KeyDims {
                route: calls.route.value(row),
                method: calls.method.value(row),
                service: calls.service.value(row),
                provider: optional_text(calls.provider, row),
                outbound: calls.is_outbound(row),
                plan: optional_text(calls.plan, row),
                segment: optional_text(calls.segment, row),
            };
            let key = dims.intern(interner, variant);
            let facts = calls.facts(row);
            if calls.is_aggregated(row) {
                self.rollups.add_aggregated_call(key, &facts);
            } else {
                self.rollups.add(key, &facts);
            }
        }
        Ok(())
    }
}

/// The strings of a call that make its rollup key, however the call is read.
struct KeyDims<'a> {
    route: &'a str,
    method: &'a str,
    service: &'a str,
    provider: Option<&'a str>,
    outbound: bool,
    plan: Option<&'a str>,
    segment: Option<&'a str>,
}

impl KeyDims<'_> {
    fn intern(&self, interner: &mut crate::interner::Interner, variant: u32) -> DetailKey {
        DetailKey {
            route: RouteKey {
                route: interner.intern(self.route),
                method: interner.intern(self.method),
                service: interner.intern(self.service),
                provider: interner.intern_optional(self.provider),
                outbound: self.outbound,
            },
            plan: interner.intern_optional(self.plan),
            segment: interner.intern_optional(self.segment),
            variant,
        }
    }
}

/// The rollup facts of one call.
pub fn facts_of(call: &valuetrace_model::ApiCall) -> CallFacts {
    CallFacts {
        timestamp: call.timestamp,
        status: call.status,
        latency_ms: call.latency_ms,
        has_error_type: call.error_type.is_some(),
        value: call.value,
        currency: crate::rollup::currency_tag(call.currency.as_deref()),
        user_hash: call.user_id.as_deref().map(user_hash),
    }
}

/// Hash of a pseudonymous user id for distinct counting.
pub fn user_hash(user: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user.as_bytes())
}
