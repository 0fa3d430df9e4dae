//! The values of the filterable dimensions seen in a window — plans, segments, experiment
//! variants, services, providers — with their call counts, from the day rollup cells (never raw
//! rows: a few thousand cells per day). Dashboards fill their filter choices with it.

use crate::Result;
use crate::endpoints::check_window;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use valuetrace_model::time::DAY_MS;
use valuetrace_store::EmbeddedStore;
use valuetrace_store::rollup::{Level, floor_to};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionValue {
    pub value: String,
    pub calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionsAnswer {
    pub project: String,
    /// The whole UTC days covering the asked window (day cells are the source).
    pub from: i64,
    pub to: i64,
    pub plans: Vec<DimensionValue>,
    pub segments: Vec<DimensionValue>,
    /// `experiment=variant`, one entry per experiment arm.
    pub variants: Vec<DimensionValue>,
    pub services: Vec<DimensionValue>,
    pub providers: Vec<DimensionValue>,
}

pub fn run(store: &EmbeddedStore, project: &str, from: i64, to: i64) -> Result<DimensionsAnswer> {
    check_window(from, to)?;
    let (day_from, day_to) = (floor_to(from, DAY_MS), floor_to(to - 1, DAY_MS) + DAY_MS);
    let mut answer = DimensionsAnswer {
        project: project.to_owned(),
        from: day_from,
        to: day_to,
        plans: Vec::new(),
        segments: Vec::new(),
        variants: Vec::new(),
        services: Vec::new(),
        providers: Vec::new(),
    };
    let Some(shared) = store.existing_project(project) else {
        return Ok(answer);
    };
    let data = shared
        .read()
        .map_err(|_| valuetrace_store::Error::Internal("project lock poisoned".into()))?;
    let rollups = &data.rollups;
    let interner = &rollups.interner;
    let mut counts: [BTreeMap<u32, u64>; 5] = Default::default();
    for (_, bucket) in rollups.level(Level::Day).range(day_from..day_to) {
        for (key, cell) in &bucket.details {
            let calls = cell.counts.count;
            let ids = [
                key.plan,
                key.segment,
                key.variant,
                key.route.service,
                key.route.provider,
            ];
            for (map, id) in counts.iter_mut().zip(ids) {
                if id != 0 {
                    *map.entry(id).or_default() += calls;
                }
            }
        }
    }
    let list = |map: &BTreeMap<u32, u64>| -> Vec<DimensionValue> {
        let mut by_value: BTreeMap<String, u64> = BTreeMap::new();
        for (id, calls) in map {
            *by_value
                .entry(interner.resolve(*id).to_owned())
                .or_default() += calls;
        }
        sorted(by_value)
    };
    answer.plans = list(&counts[0]);
    answer.segments = list(&counts[1]);
    answer.services = list(&counts[3]);
    answer.providers = list(&counts[4]);
    // A variant cell holds every experiment of the call (`a=x;b=y`): count each arm.
    let mut arms: BTreeMap<String, u64> = BTreeMap::new();
    for (id, calls) in &counts[2] {
        for arm in interner
            .resolve(*id)
            .split(';')
            .filter(|arm| !arm.is_empty())
        {
            *arms.entry(arm.to_owned()).or_default() += calls;
        }
    }
    answer.variants = sorted(arms);
    Ok(answer)
}

/// Most calls first, then by value.
fn sorted(map: BTreeMap<String, u64>) -> Vec<DimensionValue> {
    let mut values: Vec<DimensionValue> = map
        .into_iter()
        .filter(|(value, _)| !value.is_empty())
        .map(|(value, calls)| DimensionValue { value, calls })
        .collect();
    values.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.value.cmp(&b.value)));
    values
}
