//! The catalog metrics of a project as Prometheus families, computed when scraped.
//!
//! Counters (`count`, `value_sum`) and histograms (`latency`) count the last
//! [`COUNTER_HORIZON_MS`] (whole days, so the answer comes from day cells); gauges are computed
//! over the metric's `window`. Labels come only from the metric's `labels` (lint-checked against
//! the allow-list) and pass through the cardinality guard. A metric that cannot be computed is
//! skipped with a comment line, so one bad metric does not cost the whole scrape.

use crate::catalog::{Definition, Metric};
use crate::config::ProjectAlerts;
use crate::exposition::{Series, SeriesValue, guard, render_family};
use crate::measure::measure;
use crate::selector::Selector;
use crate::source::{EndpointStats, MetricSource, SourceError};
use std::collections::BTreeMap;
use valuetrace_model::time::DAY_MS;

/// How far back counters and histograms count.
pub const COUNTER_HORIZON_MS: i64 = 400 * DAY_MS;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The exposition text of every catalog metric of `project` at `now`.
pub fn exposition(
    source: &dyn MetricSource,
    alerts: &ProjectAlerts,
    project: &str,
    now: i64,
) -> String {
    let mut out = String::new();
    for metric in &alerts.catalog.metrics {
        match series_of(source, project, metric, now) {
            Ok(series) => {
                let guarded = guard(
                    series,
                    alerts.config.max_label_values,
                    alerts.config.max_series,
                );
                let help = if metric.def.description.is_empty() {
                    metric.def.name.clone()
                } else {
                    metric.def.description.clone()
                };
                let help = format!(
                    "{help} [owner: {}, criticality: {}]",
                    metric.def.owner,
                    format!("{:?}", metric.def.criticality).to_lowercase()
                );
                render_family(
                    &mut out,
                    &metric.def.name,
                    &help,
                    metric.def.kind.prometheus_type(),
                    &guarded,
                );
            }
            Err(error) => {
                tracing::warn!(project, metric = %metric.def.name, %error, "metric not exposed");
            }
        }
    }
    out
}

fn labels_of(metric: &Metric, row: &EndpointStats) -> BTreeMap<String, String> {
    metric
        .def
        .labels
        .iter()
        .filter(|name| name.as_str() != "status_class")
        .map(|name| (name.clone(), row.labels.get(name).to_owned()))
        .collect()
}

/// Per endpoint (and status class when asked), one series of `value(row, class)`.
fn per_row(
    metric: &Metric,
    rows: &[EndpointStats],
    selector: &Selector,
    value: impl Fn(&EndpointStats, Option<usize>) -> SeriesValue,
) -> Vec<Series> {
    let by_class = metric
        .def
        .labels
        .iter()
        .any(|label| label == "status_class");
    let mut series = Vec::new();
    for row in rows {
        if by_class {
            for class in (0..5).filter(|class| selector.keeps_class(*class)) {
                let mut labels = labels_of(metric, row);
                labels.insert("status_class".into(), CLASSES[class].into());
                series.push(Series {
                    labels,
                    value: value(row, Some(class)),
                });
            }
        } else {
            series.push(Series {
                labels: labels_of(metric, row),
                value: value(row, None),
            });
        }
    }
    series
}

fn counted(row: &EndpointStats, selector: &Selector, class: Option<usize>) -> f64 {
    match class {
        Some(class) => row.status_classes[class] as f64,
        None => row.selected(selector) as f64,
    }
}

fn series_of(
    source: &dyn MetricSource,
    project: &str,
    metric: &Metric,
    now: i64,
) -> Result<Vec<Series>, SourceError> {
    let today = now - now.rem_euclid(DAY_MS) + DAY_MS;
    let (lifetime_from, window_from) = (today - COUNTER_HORIZON_MS, now - metric.window_ms);
    let seconds = metric.window_ms as f64 / 1000.0;
    let single = |value: SeriesValue| {
        vec![Series {
            labels: BTreeMap::new(),
            value,
        }]
    };
    Ok(match &metric.definition {
        Definition::Count(select) | Definition::ValueSum(select) if select.is_outcome() => {
            let name = select.outcome.as_deref().unwrap_or_default();
            let stats = source.outcomes(project, name, lifetime_from, today)?;
            let value = if matches!(metric.definition, Definition::Count(_)) {
                stats.count as f64
            } else {
                stats.value_sum
            };
            single(SeriesValue::Sum(value))
        }
        Definition::Count(select) => {
            let rows = source.calls(project, select, lifetime_from, today)?;
            per_row(metric, &rows, select, |row, class| {
                SeriesValue::Sum(counted(row, select, class))
            })
        }
        Definition::ValueSum(select) => {
            let rows = source.calls(project, select, lifetime_from, today)?;
            per_row(metric, &rows, select, |row, _| {
                SeriesValue::Sum(row.value_sum)
            })
        }
        Definition::Rate(select) if !select.is_outcome() => {
            let rows = source.calls(project, select, window_from, now)?;
            per_row(metric, &rows, select, |row, class| SeriesValue::Rate {
                count: counted(row, select, class),
                seconds,
            })
        }
        Definition::Ratio {
            numerator,
            denominator,
            scale,
        } if !numerator.is_outcome()
            && !denominator.is_outcome()
            && !metric.def.labels.is_empty() =>
        {
            let top = source.calls(project, numerator, window_from, now)?;
            let bottom = source.calls(project, denominator, window_from, now)?;
            let mut joined: BTreeMap<BTreeMap<String, String>, (f64, f64)> = BTreeMap::new();
            for row in &top {
                joined.entry(labels_of(metric, row)).or_default().0 +=
                    row.selected(numerator) as f64;
            }
            for row in &bottom {
                joined.entry(labels_of(metric, row)).or_default().1 +=
                    row.selected(denominator) as f64;
            }
            joined
                .into_iter()
                .map(|(labels, (n, d))| Series {
                    labels,
                    value: SeriesValue::Ratio {
                        numerator: n,
                        denominator: d,
                        scale: *scale,
                    },
                })
                .collect()
        }
        Definition::Latency { select, buckets } => {
            let rows = source.calls(project, select, lifetime_from, today)?;
            per_row(metric, &rows, select, |row, _| SeriesValue::Histogram {
                bounds: buckets.clone(),
                cumulative: buckets
                    .iter()
                    .map(|b| row.latency.count_at_most_ms(b * 1000.0))
                    .collect(),
                sum: row.latency_sum_ms / 1000.0,
                count: row.count,
            })
        }
        _ => {
            let measured = measure(source, project, metric, window_from, now)?;
            match measured.value {
                Some(value) => single(SeriesValue::Sum(value)),
                None => Vec::new(),
            }
        }
    })
}
