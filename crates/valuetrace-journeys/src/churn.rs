//! Churn risk: actors (accounts by default) whose activity in the last period fell against their
//! own baseline, with the routes that fell, and a back-test of the score against churn outcomes.
//!
//! As of a time T (the question's `to`): recent = `[T − recent, T)`, baseline =
//! `[T − recent − baseline, T − recent)`. An actor is scored when its baseline has at least
//! `min_baseline_calls` calls and it has no churn outcome before T:
//! `score = clamp(1 − recent rate ÷ baseline rate, 0, 1)` with rates in calls per day, so 1 means
//! it went silent and 0 means it kept its pace or grew. At risk: `score ≥ threshold`. The reason is
//! the routes whose call rate fell the most (baseline rate − recent rate, calls per day).
//!
//! Back-test: the same score computed as of T − recent (its own recent and baseline periods
//! shifted back), against churn outcomes in `[T − recent, T)`: precision = flagged actors that
//! churned ÷ flagged, recall = flagged that churned ÷ scored actors that churned.

use crate::pass::Cx;
use crate::step::Actor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use valuetrace_facts::stats::ratio;
use valuetrace_model::time::DAY_MS;

#[derive(Debug, Clone)]
pub struct ChurnSpec {
    pub recent_ms: i64,
    pub baseline_ms: i64,
    pub threshold: f64,
    pub min_baseline_calls: f64,
    /// The outcome that marks churn (the project's `churn_outcome`).
    pub churn_outcome: String,
    /// At-risk actors listed, highest score (then largest baseline) first.
    pub top: usize,
}

impl ChurnSpec {
    pub fn check(&self) -> Result<()> {
        if self.recent_ms < DAY_MS || self.baseline_ms < self.recent_ms {
            return Err(Error::InvalidQuery(
                "`recent` must be at least 1d and `baseline` at least as long as `recent`".into(),
            ));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::InvalidQuery(format!(
                "`threshold={}` must be in (0, 1]",
                self.threshold
            )));
        }
        Ok(())
    }

    /// How far before the question's `to` the answer reads (back-test included).
    pub fn lookback(&self) -> i64 {
        2 * self.recent_ms + self.baseline_ms
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallingRoute {
    pub route: String,
    pub baseline_per_day: f64,
    pub recent_per_day: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtRisk {
    /// The actor's pseudonymous id.
    pub id: String,
    pub score: f64,
    pub baseline_per_day: f64,
    pub recent_per_day: f64,
    pub falling_routes: Vec<FallingRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub as_of: i64,
    pub scored: u64,
    pub flagged: u64,
    pub churned: u64,
    pub flagged_and_churned: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnAnswer {
    pub project: String,
    pub as_of: i64,
    pub per: Actor,
    pub recent_ms: i64,
    pub baseline_ms: i64,
    pub threshold: f64,
    pub scored: u64,
    pub at_risk: u64,
    pub at_risk_share: Option<f64>,
    pub actors: Vec<AtRisk>,
    pub backtest: Backtest,
}

/// Per actor: calls in the baseline and recent periods, and the first churn outcome.
struct Activity {
    baseline: Vec<f32>,
    recent: Vec<f32>,
    churned_at: Vec<i64>,
}

fn activity(cx: &Cx, as_of: i64, spec: &ChurnSpec, churn: Option<u32>) -> Activity {
    let n = cx.actors();
    let recent_from = as_of - spec.recent_ms;
    let baseline_from = recent_from - spec.baseline_ms;
    let mut state = cx.scan(
        (baseline_from, as_of),
        true,
        || Activity {
            baseline: vec![0.0; n],
            recent: vec![0.0; n],
            churned_at: Vec::new(),
        },
        |state, seg, row, t| {
            let actor = cx.actor.of_call(seg, row) as usize;
            let column = if t >= recent_from {
                &mut state.recent
            } else {
                &mut state.baseline
            };
            column[actor] += seg.weight[row];
        },
        |state, other| {
            for (mine, theirs) in state.baseline.iter_mut().zip(other.baseline) {
                *mine += theirs;
            }
            for (mine, theirs) in state.recent.iter_mut().zip(other.recent) {
                *mine += theirs;
            }
        },
        |_, _, _, _| {},
    );
    state.churned_at = vec![i64::MAX; n];
    if let Some(churn) = churn {
        for seg in &cx.facts.outcomes {
            for row in 0..seg.len() {
                if seg.name[row] == churn {
                    let actor = cx.actor.of_outcome(seg, row) as usize;
                    state.churned_at[actor] = state.churned_at[actor].min(seg.ts[row]);
                }
            }
        }
    }
    state
}

/// Scores as of `as_of`: `(actor, score)` for every scored actor.
fn scores(activity: &Activity, as_of: i64, spec: &ChurnSpec) -> Vec<(usize, f64)> {
    let days = |ms: i64| ms as f64 / DAY_MS as f64;
    (1..activity.baseline.len())
        .filter(|a| {
            f64::from(activity.baseline[*a]) >= spec.min_baseline_calls
                && activity.churned_at[*a] >= as_of
        })
        .map(|a| {
            let baseline = f64::from(activity.baseline[a]) / days(spec.baseline_ms);
            let recent = f64::from(activity.recent[a]) / days(spec.recent_ms);
            (a, (1.0 - recent / baseline).clamp(0.0, 1.0))
        })
        .collect()
}

pub fn answer(
    cx: &Cx,
    question: &valuetrace_facts::Question,
    spec: &ChurnSpec,
    ids: &dyn Fn(usize) -> String,
) -> Result<ChurnAnswer> {
    spec.check()?;
    let names = cx.names();
    let churn = names.dim_id(&spec.churn_outcome);
    let as_of = question.to;
    let now = activity(cx, as_of, spec, churn);
    let mut current = scores(&now, as_of, spec);
    let scored = current.len() as u64;
    current.retain(|(_, score)| *score >= spec.threshold);
    let at_risk = current.len() as u64;
    current.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| now.baseline[b.0].total_cmp(&now.baseline[a.0]))
    });
    current.truncate(spec.top);
    let falling = falling_routes(cx, as_of, spec, &current);
    let days = |ms: i64| ms as f64 / DAY_MS as f64;
    let actors = current
        .iter()
        .map(|(a, score)| AtRisk {
            id: ids(*a),
            score: *score,
            baseline_per_day: f64::from(now.baseline[*a]) / days(spec.baseline_ms),
            recent_per_day: f64::from(now.recent[*a]) / days(spec.recent_ms),
            falling_routes: falling.get(a).cloned().unwrap_or_default(),
        })
        .collect();
    // Back-test as of one recent period earlier.
    let then = as_of - spec.recent_ms;
    let past = activity(cx, then, spec, churn);
    let past_scores = scores(&past, then, spec);
    let churned_in = |a: usize| (then..as_of).contains(&past.churned_at[a]);
    let flagged = past_scores.iter().filter(|(_, s)| *s >= spec.threshold);
    let flagged_and_churned = flagged.clone().filter(|(a, _)| churned_in(*a)).count() as u64;
    let churned = past_scores.iter().filter(|(a, _)| churned_in(*a)).count() as u64;
    let flagged = flagged.count() as u64;
    Ok(ChurnAnswer {
        project: question.project.clone(),
        as_of,
        per: cx.actor,
        recent_ms: spec.recent_ms,
        baseline_ms: spec.baseline_ms,
        threshold: spec.threshold,
        scored,
        at_risk,
        at_risk_share: ratio(at_risk as f64, scored as f64),
        actors,
        backtest: Backtest {
            as_of: then,
            scored: past_scores.len() as u64,
            flagged,
            churned,
            flagged_and_churned,
            precision: ratio(flagged_and_churned as f64, flagged as f64),
            recall: ratio(flagged_and_churned as f64, churned as f64),
        },
    })
}

/// Per listed actor, the three routes whose daily call rate fell the most.
fn falling_routes(
    cx: &Cx,
    as_of: i64,
    spec: &ChurnSpec,
    listed: &[(usize, f64)],
) -> HashMap<usize, Vec<FallingRoute>> {
    let names = cx.names();
    let mut wanted = vec![false; cx.actors()];
    for (a, _) in listed {
        wanted[*a] = true;
    }
    let recent_from = as_of - spec.recent_ms;
    let counts = cx.scan(
        (recent_from - spec.baseline_ms, as_of),
        !listed.is_empty(),
        HashMap::<(usize, u32), (f64, f64)>::new,
        |state, seg, row, t| {
            let actor = cx.actor.of_call(seg, row) as usize;
            if !wanted[actor] {
                return;
            }
            let cell = state.entry((actor, seg.endpoint[row])).or_default();
            let w = f64::from(seg.weight[row]);
            if t >= recent_from {
                cell.1 += w;
            } else {
                cell.0 += w;
            }
        },
        |state, other| {
            for (key, (b, r)) in other {
                let cell = state.entry(key).or_default();
                cell.0 += b;
                cell.1 += r;
            }
        },
        |_, _, _, _| {},
    );
    let days = |ms: i64| ms as f64 / DAY_MS as f64;
    let mut out: HashMap<usize, Vec<FallingRoute>> = HashMap::new();
    for ((actor, endpoint), (baseline, recent)) in counts {
        let route = FallingRoute {
            route: names.endpoint(endpoint).label(),
            baseline_per_day: baseline / days(spec.baseline_ms),
            recent_per_day: recent / days(spec.recent_ms),
        };
        if route.baseline_per_day > route.recent_per_day {
            out.entry(actor).or_default().push(route);
        }
    }
    for routes in out.values_mut() {
        routes.sort_by(|a, b| {
            (b.baseline_per_day - b.recent_per_day)
                .total_cmp(&(a.baseline_per_day - a.recent_per_day))
                .then_with(|| a.route.cmp(&b.route))
        });
        routes.truncate(3);
    }
    out
}
