//! Retention: cohorts by first occurrence, and who comes back.
//!
//! An actor's *cohort event* is its first event matching the cohort step, looking back
//! [`LOOKBACK_MS`] before the window so that "first" means first; actors whose first occurrence
//! falls inside the window form the cohorts, one per calendar day, ISO week (Monday) or month
//! (UTC) of that first occurrence. Period n of an actor is `[first + n·P, first + (n+1)·P)` with P
//! one day, 7 days or 30 days. Period 0 is the cohort itself (its size, by definition); an actor
//! *returns* in period n ≥ 1 when it has an event matching the return step in that period. Value
//! retention sums the values of the cohort's outcomes per period. A period is `complete` when every
//! actor of the cohort has had the whole period inside the window.

use crate::pass::{Cx, NEVER, first_match};
use crate::step::StepText;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use valuetrace_model::time::{DAY_MS, civil_from_days, days_from_civil, format_day};

/// How far before the window "first occurrence" looks.
pub const LOOKBACK_MS: i64 = 30 * DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Result<Period> {
        match text {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            _ => Err(Error::InvalidQuery(format!(
                "`period={text}` must be day, week or month"
            ))),
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Period::Day => DAY_MS,
            Period::Week => 7 * DAY_MS,
            Period::Month => 30 * DAY_MS,
        }
    }

    /// The calendar bucket `[start, end)` holding `t`.
    pub fn bucket(self, t: i64) -> (i64, i64) {
        let day = t.div_euclid(DAY_MS);
        match self {
            Period::Day => (day * DAY_MS, (day + 1) * DAY_MS),
            Period::Week => {
                // 1970-01-05 was a Monday.
                let monday = day - (day - 4).rem_euclid(7);
                (monday * DAY_MS, (monday + 7) * DAY_MS)
            }
            Period::Month => {
                let (year, month, _) = civil_from_days(day);
                let start = days_from_civil(year, month, 1);
                let (ny, nm) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                (start * DAY_MS, days_from_civil(ny, nm, 1) * DAY_MS)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetentionSpec {
    pub cohort: StepText,
    pub returning: StepText,
    pub period: Period,
    /// Periods reported, period 0 included (2..=60).
    pub periods: usize,
}

impl RetentionSpec {
    pub fn new(cohort: &str, returning: &str, period: Period, periods: usize) -> Result<Self> {
        if !(2..=60).contains(&periods) {
            return Err(Error::InvalidQuery(format!(
                "`periods={periods}` must be between 2 and 60"
            )));
        }
        Ok(RetentionSpec {
            cohort: StepText::parse(cohort, "cohort")?,
            returning: StepText::parse(returning, "return")?,
            period,
            periods,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodCell {
    pub period: usize,
    pub actors: u64,
    pub rate: f64,
    /// Sum of the values of the cohort's outcomes in this period.
    pub value: f64,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    /// First day of the cohort (`2026-01-05`).
    pub cohort: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub size: u64,
    pub periods: Vec<PeriodCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub per: crate::step::Actor,
    pub cohort_event: String,
    pub return_event: String,
    pub period: Period,
    pub cohorts: Vec<Cohort>,
    /// Over all cohorts, counting only the cohorts whose period is complete.
    pub average: Vec<AverageCell>,
}

/// One period of the average over the cohorts whose period is complete. With no complete cohort
/// there is nothing to average: `actors`, `rate` and `value` are null (not a rate of 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AverageCell {
    pub period: usize,
    pub actors: Option<u64>,
    pub rate: Option<f64>,
    /// Sum of the values of the complete cohorts' outcomes in this period.
    pub value: Option<f64>,
    pub complete: bool,
}

pub fn answer(
    cx: &Cx,
    question: &valuetrace_facts::Question,
    spec: &RetentionSpec,
) -> RetentionAnswer {
    let (from, to) = (question.from, question.to);
    let names = cx.names();
    let cohort_step = spec.cohort.resolve(names);
    let return_step = spec.returning.resolve(names);
    let first = first_match(
        cx,
        &cohort_step,
        (from - LOOKBACK_MS, to),
        None,
        cx.scope.by().is_some(),
    );
    let p = spec.period.ms();
    let n = spec.periods;
    // Cohort of each actor: index into `keys` (u32::MAX: not in a cohort).
    let mut keys: Vec<(i64, u32)> = Vec::new();
    let mut index: BTreeMap<(i64, u32), u32> = BTreeMap::new();
    let mut cohort_of = vec![u32::MAX; first.at.len()];
    for (actor, at) in first.at.iter().enumerate().skip(1) {
        if *at == NEVER || at.0 < from {
            continue;
        }
        let group = first.group.get(actor).copied().unwrap_or(0);
        let key = (spec.period.bucket(at.0).0, group);
        let next = index.len() as u32;
        let slot = *index.entry(key).or_insert_with(|| {
            keys.push(key);
            next
        });
        cohort_of[actor] = slot;
    }
    let returned = returns(cx, &return_step, &first.at, &cohort_of, (from, to), p, n);
    let mut sizes = vec![0u64; keys.len()];
    let mut counts = vec![vec![0u64; n]; keys.len()];
    for (actor, slot) in cohort_of.iter().enumerate() {
        if *slot == u32::MAX {
            continue;
        }
        let slot = *slot as usize;
        sizes[slot] += 1;
        counts[slot][0] += 1;
        let bits = returned.bits[actor];
        for (period, count) in counts[slot].iter_mut().enumerate().skip(1) {
            if bits & (1 << period) != 0 {
                *count += 1;
            }
        }
    }
    let mut cohorts: Vec<Cohort> = index
        .iter()
        .map(|(&(start, group), &slot)| {
            let slot = slot as usize;
            let end = spec.period.bucket(start).1;
            let periods = (0..n)
                .map(|period| PeriodCell {
                    period,
                    actors: counts[slot][period],
                    rate: counts[slot][period] as f64 / sizes[slot].max(1) as f64,
                    value: returned.value[slot][period],
                    complete: end + (period as i64 + 1) * p <= to,
                })
                .collect();
            Cohort {
                cohort: format_day(start),
                group: cx.scope.group_label(group),
                size: sizes[slot],
                periods,
            }
        })
        .collect();
    cohorts.sort_by(|a, b| a.cohort.cmp(&b.cohort).then_with(|| b.size.cmp(&a.size)));
    let average = (0..n)
        .map(|period| {
            let done: Vec<&Cohort> = cohorts
                .iter()
                .filter(|c| c.periods[period].complete)
                .collect();
            let size: u64 = done.iter().map(|c| c.size).sum();
            let actors: u64 = done.iter().map(|c| c.periods[period].actors).sum();
            let complete = !done.is_empty();
            AverageCell {
                period,
                actors: complete.then_some(actors),
                rate: complete.then(|| actors as f64 / size.max(1) as f64),
                value: complete.then(|| done.iter().map(|c| c.periods[period].value).sum()),
                complete,
            }
        })
        .collect();
    RetentionAnswer {
        project: question.project.clone(),
        from,
        to,
        per: cx.actor,
        cohort_event: spec.cohort.text.clone(),
        return_event: spec.returning.text.clone(),
        period: spec.period,
        cohorts,
        average,
    }
}

struct Returns {
    /// Per actor: bit n set when it returned in period n.
    bits: Vec<u64>,
    /// Per cohort slot and period: outcome value.
    value: Vec<Vec<f64>>,
}

fn returns(
    cx: &Cx,
    step: &crate::step::Step,
    first: &[crate::pass::Key],
    cohort_of: &[u32],
    (from, to): (i64, i64),
    p: i64,
    n: usize,
) -> Returns {
    let slots = cohort_of
        .iter()
        .filter(|s| **s != u32::MAX)
        .map(|s| *s as usize + 1)
        .max()
        .unwrap_or(0);
    let period_of = |actor: usize, t: i64| -> Option<usize> {
        if cohort_of[actor] == u32::MAX || t < first[actor].0 {
            return None;
        }
        let period = ((t - first[actor].0) / p) as usize;
        (period < n).then_some(period)
    };
    cx.scan(
        (from, to),
        step.matches_calls(),
        || Returns {
            bits: vec![0; first.len()],
            value: vec![vec![0.0; n]; slots],
        },
        |state, seg, row, t| {
            if !step.call(seg, row) {
                return;
            }
            let actor = cx.actor.of_call(seg, row) as usize;
            if let Some(period) = period_of(actor, t) {
                state.bits[actor] |= 1 << period;
            }
        },
        |state, other| {
            for (mine, theirs) in state.bits.iter_mut().zip(other.bits) {
                *mine |= theirs;
            }
        },
        |state, seg, row, t| {
            let actor = cx.actor.of_outcome(seg, row) as usize;
            let Some(period) = period_of(actor, t) else {
                return;
            };
            if step.is_outcome() && step.outcome(seg, row) {
                state.bits[actor] |= 1 << period;
            }
            let value = seg.value[row];
            if value.is_finite() {
                state.value[cohort_of[actor] as usize][period] +=
                    f64::from(seg.weight[row]) * value;
            }
        },
    )
}
