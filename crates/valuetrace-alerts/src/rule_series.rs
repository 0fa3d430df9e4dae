//! A rule's judged value over a time range, next to what it is compared with, for the Alerts
//! page's charts: the rule is evaluated as the engine evaluates it (same windows, same code) at
//! evenly spaced minute boundaries of the range. Each series carries the numeric bounds of its
//! condition: the threshold (threshold rules), `below`/`above` (ratio to yesterday: the value is
//! the ratio), the band (seasonal: the value is the ratio to the baseline), the burn-rate factor
//! of its window pair (burn rate).

use crate::config::ProjectAlerts;
use crate::evaluate::{SeriesLabels, evaluate};
use crate::rules::{Rule, RuleKind};
use crate::source::MetricSource;
use serde::Serialize;
use std::collections::BTreeMap;

/// Points drawn at most (each is one evaluation).
pub const MAX_POINTS: usize = 120;
const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bound {
    /// `< 94`, `below`, `band low`, `burn rate ≥ 14.4`.
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub labels: SeriesLabels,
    /// `(at, value)`: `None` where there was no value.
    pub points: Vec<(i64, Option<f64>)>,
    pub bounds: Vec<Bound>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSeries {
    pub rule: String,
    pub kind: RuleKind,
    pub from: i64,
    pub to: i64,
    pub step_ms: i64,
    pub series: Vec<Line>,
    /// Points that could not be evaluated, and the first reason.
    pub failed_points: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The rule's value over `[from, to]` at `points` evaluations (at most [`MAX_POINTS`]).
pub fn rule_series(
    source: &dyn MetricSource,
    alerts: &ProjectAlerts,
    project: &str,
    rule_name: &str,
    from: i64,
    to: i64,
    points: usize,
) -> Result<RuleSeries, String> {
    let rule = alerts
        .rule(rule_name)
        .ok_or_else(|| format!("no rule named `{rule_name}`"))?;
    if to <= from {
        return Err("`to` must be after `from`".into());
    }
    let points = points.clamp(2, MAX_POINTS) as i64;
    let step_ms = ((to - from) / points).max(MINUTE_MS);
    let step_ms = step_ms - step_ms.rem_euclid(MINUTE_MS);
    let mut lines: BTreeMap<SeriesLabels, Vec<(i64, Option<f64>)>> = BTreeMap::new();
    let mut failed_points = 0;
    let mut error = None;
    let last = to - to.rem_euclid(MINUTE_MS);
    let mut at = last - step_ms * (points - 1);
    while at <= last {
        match evaluate(source, &alerts.catalog, project, rule, at) {
            Ok(observations) => {
                for observation in observations {
                    lines
                        .entry(observation.labels)
                        .or_default()
                        .push((at, observation.value));
                }
            }
            Err(problem) => {
                failed_points += 1;
                error.get_or_insert_with(|| problem.to_string());
            }
        }
        at += step_ms;
    }
    let series = lines
        .into_iter()
        .map(|(labels, points)| Line {
            bounds: bounds(rule, &labels),
            labels,
            points,
        })
        .collect();
    Ok(RuleSeries {
        rule: rule_name.to_owned(),
        kind: rule.def.kind,
        from,
        to,
        step_ms,
        series,
        failed_points,
        error,
    })
}

/// The numbers the series' value is compared with.
fn bounds(rule: &Rule, labels: &SeriesLabels) -> Vec<Bound> {
    let def = &rule.def;
    let bound = |name: String, value: f64| Bound { name, value };
    match def.kind {
        RuleKind::Threshold => match (def.op, def.threshold) {
            (Some(op), Some(value)) => vec![bound(format!("{} {value}", op.symbol()), value)],
            _ => Vec::new(),
        },
        RuleKind::RatioToYesterday => def
            .below
            .map(|value| bound(format!("below {value} × yesterday"), value))
            .into_iter()
            .chain(
                def.above
                    .map(|value| bound(format!("above {value} × yesterday"), value)),
            )
            .collect(),
        RuleKind::Seasonal => vec![
            bound(format!("band low {}", def.band[0]), def.band[0]),
            bound(format!("band high {}", def.band[1]), def.band[1]),
        ],
        RuleKind::BurnRate => rule
            .windows
            .iter()
            .filter(|window| labels.get("burn_window") == Some(&window.label()))
            .map(|window| bound(format!("burn rate ≥ {}", window.factor), window.factor))
            .collect(),
    }
}
