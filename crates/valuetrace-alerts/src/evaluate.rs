//! One evaluation of one rule at `now`: per series (one, or one per route and burn-rate pair),
//! whether the condition holds, with the value and what it was compared against.

use crate::burn::burn_rate;
use crate::catalog::Catalog;
use crate::measure::{measure, selected_calls};
use crate::rules::{Rule, RuleKind, Severity, Sli};
use crate::seasonal::compare;
use crate::source::{EndpointStats, MetricSource, SourceError};
use serde::Serialize;
use std::collections::BTreeMap;
use valuetrace_model::time::DAY_MS;

/// Labels that tell the series of one rule apart (`route`, `method`, `burn_window`).
pub type SeriesLabels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub labels: SeriesLabels,
    /// Whether the condition holds now.
    pub active: bool,
    pub value: Option<f64>,
    /// The currency of `value` when it is money (a value sum compared with a threshold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// What the value was compared against, in words (`< 94`, `outside [0.5, 2] × 412.3`).
    pub threshold: String,
    pub severity: Severity,
    /// Why there was no judgment, if there was none (`volume 3 below min_volume 20`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Observation {
    fn new(value: Option<f64>, threshold: String, severity: Severity) -> Self {
        Observation {
            labels: SeriesLabels::new(),
            active: false,
            value,
            currency: None,
            threshold,
            severity,
            skipped: None,
        }
    }

    fn skip(mut self, why: String) -> Self {
        self.skipped = Some(why);
        self
    }
}

/// Evaluates `rule` over the windows ending at `now` (the engine passes a minute boundary).
pub fn evaluate(
    source: &dyn MetricSource,
    catalog: &Catalog,
    project: &str,
    rule: &Rule,
    now: i64,
) -> Result<Vec<Observation>, SourceError> {
    if rule.def.kind == RuleKind::BurnRate {
        return burn(source, project, rule, now);
    }
    let name = rule.def.metric.as_deref().unwrap_or_default();
    let metric = catalog
        .get(name)
        .ok_or_else(|| SourceError::Invalid(format!("metric `{name}` is not in the catalog")))?;
    let (from, to) = (now - rule.window_ms, now);
    let current = measure(source, project, metric, from, to)?;
    let def = &rule.def;
    let severity = def.severity;
    let observation = match def.kind {
        RuleKind::Threshold => {
            let (op, threshold) = (def.op.expect("checked"), def.threshold.unwrap_or(0.0));
            let mut seen = Observation::new(
                current.value,
                format!("{} {threshold}", op.symbol()),
                severity,
            );
            seen.currency = current.currency.clone();
            if current.volume < def.min_volume {
                seen = seen.skip(format!(
                    "volume {} below min_volume {}",
                    current.volume, def.min_volume
                ));
            } else {
                seen.active = current
                    .value
                    .is_some_and(|value| op.holds(value, threshold));
            }
            seen
        }
        RuleKind::RatioToYesterday => {
            let yesterday = measure(source, project, metric, from - DAY_MS, to - DAY_MS)?;
            let ratio = match (current.value, yesterday.value) {
                (Some(now), Some(then)) if then > 0.0 => Some(now / then),
                _ => None,
            };
            let bounds = format!(
                "ratio to yesterday outside [{}, {}]",
                def.below.map_or("-".into(), |b| b.to_string()),
                def.above.map_or("-".into(), |a| a.to_string())
            );
            let mut seen = Observation::new(ratio, bounds, severity);
            if yesterday.volume < def.min_volume {
                seen = seen.skip(format!(
                    "yesterday's volume {} below min_volume {}",
                    yesterday.volume, def.min_volume
                ));
            } else {
                seen.active = ratio.is_some_and(|r| {
                    def.below.is_some_and(|below| r < below)
                        || def.above.is_some_and(|above| r > above)
                });
            }
            seen
        }
        RuleKind::Seasonal => seasonal(source, project, rule, metric, current, now)?,
        RuleKind::BurnRate => unreachable!("handled above"),
    };
    Ok(vec![observation])
}

fn seasonal(
    source: &dyn MetricSource,
    project: &str,
    rule: &Rule,
    metric: &crate::catalog::Metric,
    current: crate::measure::Measurement,
    now: i64,
) -> Result<Observation, SourceError> {
    let def = &rule.def;
    let mut values = Vec::new();
    let mut volumes = Vec::new();
    for day in 1..=i64::from(def.days) {
        let shifted = now - day * DAY_MS;
        let past = measure(source, project, metric, shifted - rule.window_ms, shifted)?;
        volumes.push(past.volume as f64);
        if let Some(value) = past.value {
            values.push(value);
        }
    }
    let baseline_volume = crate::seasonal::mean(&volumes).unwrap_or(0.0);
    let found = current
        .value
        .and_then(|value| compare(value, &values, def.band, def.robust, def.mad_k));
    let threshold = match &found {
        Some(found) => format!(
            "ratio to the {} of the last {} days ({:.4}) outside [{}, {}]",
            if def.robust { "median" } else { "mean" },
            def.days,
            found.baseline,
            def.band[0],
            def.band[1]
        ),
        None => format!("outside [{}, {}] of the baseline", def.band[0], def.band[1]),
    };
    let ratio = found.and_then(|f| f.ratio);
    let seen = Observation::new(ratio, threshold, def.severity);
    if baseline_volume < def.min_volume as f64 {
        return Ok(seen.skip(format!(
            "baseline volume {baseline_volume:.1} below min_volume {}: a quiet hour",
            def.min_volume
        )));
    }
    Ok(Observation {
        active: found.is_some_and(|f| f.is_anomaly()),
        ..seen
    })
}

/// Bad and total calls of the SLI per series key (all calls, or per route and method).
fn sli_counts(rule: &Rule, rows: &[EndpointStats]) -> BTreeMap<SeriesLabels, (u64, u64)> {
    let mut by_series: BTreeMap<SeriesLabels, (u64, u64)> = BTreeMap::new();
    let select = rule.def.select.clone().unwrap_or_default();
    for row in rows {
        let mut labels = SeriesLabels::new();
        if rule.def.per_route {
            labels.insert("route".into(), row.labels.route.clone());
            labels.insert("method".into(), row.labels.method.clone());
        }
        let total = selected_calls(std::slice::from_ref(row), &select);
        let bad = match rule.def.sli {
            Some(Sli::Latency) => {
                total
                    - row
                        .latency
                        .count_at_most_ms(rule.latency_threshold_ms)
                        .min(total)
            }
            _ => row.status_classes[4],
        };
        let entry = by_series.entry(labels).or_default();
        entry.0 += bad;
        entry.1 += total;
    }
    by_series
}

fn burn(
    source: &dyn MetricSource,
    project: &str,
    rule: &Rule,
    now: i64,
) -> Result<Vec<Observation>, SourceError> {
    let def = &rule.def;
    let select = def.select.clone().unwrap_or_default();
    let objective = def.objective.unwrap_or(99.9);
    let mut observations = Vec::new();
    for window in &rule.windows {
        let long = sli_counts(
            rule,
            &source.calls(project, &select, now - window.long_ms(), now)?,
        );
        let short = sli_counts(
            rule,
            &source.calls(project, &select, now - window.short_ms(), now)?,
        );
        for (labels, (bad, total)) in long {
            let long_burn = burn_rate(bad, total, objective);
            let short_burn = short
                .get(&labels)
                .and_then(|(bad, total)| burn_rate(*bad, *total, objective));
            let threshold = format!(
                "burn rate >= {} over {} and {} (error budget of {objective}%)",
                window.factor, window.long, window.short
            );
            let mut seen = Observation::new(long_burn, threshold, window.severity);
            seen.labels = labels;
            seen.labels.insert("burn_window".into(), window.label());
            if total < def.min_volume {
                seen = seen.skip(format!(
                    "{total} calls over {} below min_volume {}",
                    window.long, def.min_volume
                ));
            } else {
                seen.active = long_burn.is_some_and(|b| b >= window.factor)
                    && short_burn.is_some_and(|b| b >= window.factor);
            }
            observations.push(seen);
        }
    }
    Ok(observations)
}
