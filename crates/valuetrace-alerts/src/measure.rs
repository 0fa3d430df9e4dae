//! The value of a catalog metric over a window, and how much traffic it rests on.
//!
//! Windows are what the caller gives; the engine aligns them to whole minutes so the store
//! answers from minute cells. A gap is judged `confirm_within` late (confirmations may still be
//! on their way) and counts confirmations up to the window's end: the share of initiations in
//! `[from − d, to − d)` without a confirmation in `[from − d, to)`. It is a count balance, not
//! the per-user pairing of `/gaps` (valuetrace-insights), which is too heavy to run every minute.
//! A funnel is judged `funnel_window` late for the same reason.

use crate::catalog::{Definition, Metric};
use crate::selector::Selector;
use crate::source::{EndpointStats, MetricSource, SourceError};

/// A metric's value in a window (`None`: undefined, e.g. a ratio over no traffic) and the
/// number of events it rests on (see `Definition::volume_selector`).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub value: Option<f64>,
    pub volume: u64,
    /// The currency of a value sum (`None` for every other metric, or no currency named).
    pub currency: Option<String>,
}

/// Events matching a selector in `[from, to)`: calls (by status) or outcomes.
pub fn count(
    source: &dyn MetricSource,
    project: &str,
    selector: &Selector,
    from: i64,
    to: i64,
) -> Result<u64, SourceError> {
    match &selector.outcome {
        Some(name) => Ok(source.outcomes(project, name, from, to)?.count),
        None => Ok(selected_calls(
            &source.calls(project, selector, from, to)?,
            selector,
        )),
    }
}

pub fn selected_calls(rows: &[EndpointStats], selector: &Selector) -> u64 {
    rows.iter().map(|row| row.selected(selector)).sum()
}

/// The value sum and its currency.
fn value_sum(
    source: &dyn MetricSource,
    project: &str,
    selector: &Selector,
    from: i64,
    to: i64,
) -> Result<(f64, Option<String>), SourceError> {
    match &selector.outcome {
        Some(name) => {
            let stats = source.outcomes(project, name, from, to)?;
            Ok((stats.value_sum, stats.currency))
        }
        None => {
            let rows = source.calls(project, selector, from, to)?;
            let currency = rows.iter().find_map(|row| row.currency.clone());
            Ok((rows.iter().map(|row| row.value_sum).sum(), currency))
        }
    }
}

fn share(part: u64, whole: u64, scale: f64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64 * scale)
}

/// The metric over `[from, to)`.
pub fn measure(
    source: &dyn MetricSource,
    project: &str,
    metric: &Metric,
    from: i64,
    to: i64,
) -> Result<Measurement, SourceError> {
    let seconds = (to - from) as f64 / 1000.0;
    Ok(match &metric.definition {
        Definition::Count(select) => {
            let n = count(source, project, select, from, to)?;
            Measurement {
                value: Some(n as f64),
                volume: n,
                currency: None,
            }
        }
        Definition::Rate(select) => {
            let n = count(source, project, select, from, to)?;
            Measurement {
                value: (seconds > 0.0).then(|| n as f64 / seconds),
                volume: n,
                currency: None,
            }
        }
        Definition::Ratio {
            numerator,
            denominator,
            scale,
        } => {
            let top = count(source, project, numerator, from, to)?;
            let bottom = count(source, project, denominator, from, to)?;
            Measurement {
                value: share(top, bottom, *scale),
                volume: bottom,
                currency: None,
            }
        }
        Definition::LatencyQuantile { select, quantile } => {
            let latency = source.latency(project, select, from, to)?;
            Measurement {
                value: latency.quantile_ms(*quantile).map(|ms| ms / 1000.0),
                volume: latency.count(),
                currency: None,
            }
        }
        Definition::Latency { select, .. } => {
            let rows = source.calls(project, select, from, to)?;
            let calls: u64 = rows.iter().map(|row| row.count).sum();
            let sum_ms: f64 = rows.iter().map(|row| row.latency_sum_ms).sum();
            Measurement {
                value: (calls > 0).then(|| sum_ms / calls as f64 / 1000.0),
                volume: calls,
                currency: None,
            }
        }
        Definition::ValueSum(select) => {
            let volume = count(source, project, select, from, to)?;
            let (sum, currency) = value_sum(source, project, select, from, to)?;
            Measurement {
                value: Some(sum),
                volume,
                currency,
            }
        }
        Definition::DistinctUsers(select) => {
            let users = source.distinct_users(project, select, from, to)?;
            Measurement {
                value: Some(users as f64),
                volume: users,
                currency: None,
            }
        }
        Definition::Gap {
            initiated,
            confirmed,
            confirm_within_ms,
            scale,
        } => {
            let (start, end) = (from - confirm_within_ms, to - confirm_within_ms);
            let started = count(source, project, initiated, start, end)?;
            let arrived = count(source, project, confirmed, start, to)?;
            Measurement {
                value: share(started.saturating_sub(arrived), started, *scale),
                volume: started,
                currency: None,
            }
        }
        Definition::FunnelConversion {
            steps,
            window_ms,
            scale,
        } => {
            let stats =
                source.funnel(project, steps, *window_ms, from - window_ms, to - window_ms)?;
            Measurement {
                value: share(stats.converted, stats.entered, *scale),
                volume: stats.entered,
                currency: None,
            }
        }
    })
}

/// How much traffic the metric's value rests on in `[from, to)` (orphans, minimum volumes).
pub fn volume(
    source: &dyn MetricSource,
    project: &str,
    metric: &Metric,
    from: i64,
    to: i64,
) -> Result<u64, SourceError> {
    match metric.definition.volume_selector() {
        Some(selector) => count(source, project, &selector.without_status(), from, to),
        None => Ok(measure(source, project, metric, from, to)?.volume),
    }
}
