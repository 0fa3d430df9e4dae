//! The endpoint summary kernel: merge rollup cells for whole buckets, scan raw rows at the edges.

use crate::Result;
use crate::filter::{Filter, RawDims, resolve};
use crate::window::{Piece, decompose};
use std::collections::HashMap;
use valuetrace_store::call_columns::{CALL_COLUMNS, CallColumns, optional_text};
use valuetrace_store::project::ScanSet;
use valuetrace_store::rollup::{Cell, Counts, RouteKey};
use valuetrace_store::sketch::{CellUsers, LatencyAccumulator};
use valuetrace_store::{EmbeddedStore, Table};

/// An endpoint by name: route template, method, service and provider (outbound calls).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    pub route: String,
    pub method: String,
    pub service: String,
    pub provider: Option<String>,
    pub outbound: bool,
}

/// Everything merged for one endpoint over a window.
#[derive(Debug, Clone, Default)]
pub struct Accum {
    pub counts: Counts,
    pub latency: LatencyAccumulator,
    pub users: CellUsers,
}

impl Accum {
    pub fn add_cell(&mut self, cell: &Cell) {
        self.counts.merge(&cell.counts);
        self.latency.add(&cell.latency);
        self.users.merge(&cell.users);
    }

    pub fn merge(&mut self, other: &Accum) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
        self.users.merge(&other.users);
    }
}

/// The merged answer for a window, per endpoint.
#[derive(Debug, Default)]
pub struct Summary {
    pub endpoints: HashMap<EndpointKey, Accum>,
    pub cells_merged: u64,
    pub raw_rows_scanned: u64,
}

impl Summary {
    /// All endpoints merged into one.
    pub fn total(&self) -> Accum {
        let mut total = Accum::default();
        for accum in self.endpoints.values() {
            total.merge(accum);
        }
        total
    }
}

/// Summarizes the project's API calls in `[from, to)` that match `filter`, per endpoint.
pub fn summarize(
    store: &EmbeddedStore,
    project: &str,
    from: i64,
    to: i64,
    filter: &Filter,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let Some(shared) = store.existing_project(project) else {
        return Ok(summary);
    };
    let mut raw_ranges: Vec<(i64, i64, ScanSet, ScanSet)> = Vec::new();
    {
        let data = shared
            .read()
            .map_err(|_| valuetrace_store::Error::Internal("project lock poisoned".into()))?;
        let rollups = &data.rollups;
        let Some(resolved) = resolve(filter, &rollups.interner) else {
            return Ok(summary);
        };
        let mut by_key: HashMap<RouteKey, Accum> = HashMap::new();
        for piece in decompose(from, to, rollups.minute_floor()) {
            match piece {
                Piece::Cells(level, start) => {
                    let Some(bucket) = rollups.level(level).get(&start) else {
                        continue;
                    };
                    if filter.needs_detail() {
                        for (key, cell) in bucket
                            .details
                            .iter()
                            .filter(|(key, _)| resolved.matches_detail(key))
                        {
                            by_key.entry(key.route).or_default().add_cell(cell);
                            summary.cells_merged += 1;
                        }
                    } else {
                        for (key, cell) in bucket
                            .routes
                            .iter()
                            .filter(|(key, _)| resolved.matches_route(key))
                        {
                            by_key.entry(*key).or_default().add_cell(cell);
                            summary.cells_merged += 1;
                        }
                    }
                }
                Piece::Raw(raw_from, raw_to) => raw_ranges.push((
                    raw_from,
                    raw_to,
                    data.table(Table::ApiCalls).scan_set(raw_from, raw_to),
                    data.table(Table::ApiAggregates).scan_set(raw_from, raw_to),
                )),
            }
        }
        let interner = &rollups.interner;
        for (key, accum) in by_key {
            let name = EndpointKey {
                route: interner.resolve(key.route).to_owned(),
                method: interner.resolve(key.method).to_owned(),
                service: interner.resolve(key.service).to_owned(),
                provider: (key.provider != 0).then(|| interner.resolve(key.provider).to_owned()),
                outbound: key.outbound,
            };
            summary.endpoints.insert(name, accum);
        }
    }
    for (raw_from, raw_to, calls, aggregates) in raw_ranges {
        scan_raw(&calls, raw_from, raw_to, filter, &mut summary)?;
        crate::aggregates::scan_raw(&aggregates, raw_from, raw_to, filter, &mut summary)?;
    }
    Ok(summary)
}

fn scan_raw(
    set: &ScanSet,
    from: i64,
    to: i64,
    filter: &Filter,
    summary: &mut Summary,
) -> Result<()> {
    let mut cells: HashMap<EndpointKey, Cell> = HashMap::new();
    set.scan(from, to, &CALL_COLUMNS, |batch| {
        let calls = CallColumns::new(batch)?;
        for row in 0..batch.num_rows() {
            let ts = calls.timestamp.value(row);
            if ts < from || ts >= to {
                continue;
            }
            summary.raw_rows_scanned += 1;
            let dims = RawDims {
                route: calls.route.value(row),
                method: calls.method.value(row),
                service: calls.service.value(row),
                direction: calls.direction.value(row),
                plan: optional_text(calls.plan, row),
                segment: optional_text(calls.segment, row),
                experiments_json: optional_text(calls.experiments, row),
            };
            if !filter.matches_raw(&dims) {
                continue;
            }
            let facts = calls.facts(row);
            let aggregated = calls.is_aggregated(row);
            let key = EndpointKey {
                route: dims.route.to_owned(),
                method: dims.method.to_owned(),
                service: dims.service.to_owned(),
                provider: optional_text(calls.provider, row).map(str::to_owned),
                outbound: dims.direction == "outbound",
            };
            let cell = cells.entry(key).or_default();
            if aggregated {
                cell.add_aggregated_call(&facts);
            } else {
                cell.add(&facts);
            }
        }
        Ok(())
    })?;
    for (key, cell) in cells {
        summary.endpoints.entry(key).or_default().add_cell(&cell);
    }
    Ok(())
}
