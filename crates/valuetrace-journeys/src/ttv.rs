//! Time to first value: for each new actor, the time from its start event (its first API call by
//! default, or a signup outcome) to its first value event (the project's `value_event`, e.g.
//! `outcome:purchase`).
//!
//! New actors are those whose first start event falls inside the window, looking back
//! [`crate::retention::LOOKBACK_MS`] before it. The value event may come at the start or any time
//! after it up to the end of the window (and at most `within` after the start when given); actors
//! without one have not reached value yet. The trend groups new actors by the calendar day or
//! week of their start.

use crate::Result;
use crate::pass::{Bounds, Cx, NEVER, first_match};
use crate::retention::{LOOKBACK_MS, Period};
use crate::step::StepText;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use valuetrace_facts::stats::{quantile_ms, ratio};
use valuetrace_model::time::format_day;

#[derive(Debug, Clone)]
pub struct TtvSpec {
    pub start: StepText,
    pub value: StepText,
    /// Trend buckets: day or week.
    pub cohort: Period,
    /// Longest time counted; `None`: until the end of the window.
    pub within_ms: Option<i64>,
}

impl TtvSpec {
    pub fn new(start: &str, value: &str, cohort: Period, within_ms: Option<i64>) -> Result<Self> {
        Ok(TtvSpec {
            start: StepText::parse(start, "start")?,
            value: StepText::parse(value, "value")?,
            cohort,
            within_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TtvStats {
    pub new_actors: u64,
    pub reached: u64,
    pub reached_share: Option<f64>,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TtvCohort {
    pub cohort: String,
    #[serde(flatten)]
    pub stats: TtvStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TtvAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub per: crate::step::Actor,
    pub start_event: String,
    pub value_event: String,
    #[serde(flatten)]
    pub overall: TtvStats,
    pub trend: Vec<TtvCohort>,
    /// Per breakdown group (the dimension's value on the start call), when asked.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, TtvStats>,
}

fn stats(new_actors: u64, mut delays: Vec<i64>) -> TtvStats {
    TtvStats {
        new_actors,
        reached: delays.len() as u64,
        reached_share: ratio(delays.len() as f64, new_actors as f64),
        p50_ms: quantile_ms(&mut delays, 0.5),
        p90_ms: quantile_ms(&mut delays, 0.9),
    }
}

pub fn answer(cx: &Cx, question: &valuetrace_facts::Question, spec: &TtvSpec) -> TtvAnswer {
    let (from, to) = (question.from, question.to);
    let names = cx.names();
    let start = first_match(
        cx,
        &spec.start.resolve(names),
        (from - LOOKBACK_MS, to),
        None,
        cx.scope.by().is_some(),
    );
    // Only new actors: a start before the window means "not new".
    let after: Vec<_> = start
        .at
        .iter()
        .map(|k| {
            if *k == NEVER || k.0 < from {
                NEVER
            } else {
                (k.0, 0)
            }
        })
        .collect();
    let deadline: Vec<i64> = start
        .at
        .iter()
        .map(|k| match spec.within_ms {
            Some(within) if *k != NEVER => k.0.saturating_add(within).min(to),
            _ => to,
        })
        .collect();
    let bounds = Bounds {
        after: &after,
        deadline: &deadline,
        backward: false,
    };
    let value = first_match(
        cx,
        &spec.value.resolve(names),
        (from, to),
        Some(&bounds),
        false,
    );
    type Acc = (u64, Vec<i64>);
    let (mut total, mut trend, mut groups): (Acc, BTreeMap<i64, Acc>, BTreeMap<u32, Acc>) =
        Default::default();
    for (actor, at) in after.iter().enumerate().skip(1) {
        if *at == NEVER {
            continue;
        }
        let reached = value.at[actor];
        let delay = (reached != NEVER).then(|| reached.0 - at.0);
        let bucket = trend.entry(spec.cohort.bucket(at.0).0).or_default();
        let mut accs = vec![&mut total, bucket];
        let group = cx.scope.by().map(|_| start.group[actor]);
        if let Some(group) = group {
            accs.push(groups.entry(group).or_default());
        }
        for acc in accs {
            acc.0 += 1;
            acc.1.extend(delay);
        }
    }
    TtvAnswer {
        project: question.project.clone(),
        from,
        to,
        per: cx.actor,
        start_event: spec.start.text.clone(),
        value_event: spec.value.text.clone(),
        overall: stats(total.0, total.1),
        trend: trend
            .into_iter()
            .map(|(day, (n, delays))| TtvCohort {
                cohort: format_day(day),
                stats: stats(n, delays),
            })
            .collect(),
        groups: groups
            .into_iter()
            .map(|(group, (n, delays))| {
                (
                    cx.scope.group_label(group).unwrap_or_default(),
                    stats(n, delays),
                )
            })
            .collect(),
    }
}
