//! Orphans: catalog metrics with no data for `orphan_after` (default 7 days) — an endpoint that
//! was renamed, an outcome nobody sends any more. Reported by the API and the CLI so the catalog
//! stays true.

use crate::config::ProjectAlerts;
use crate::measure::volume;
use crate::source::MetricSource;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Orphan {
    pub metric: String,
    pub owner: String,
    /// The window looked at, ms.
    pub since: i64,
    pub to: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanReport {
    pub project: String,
    pub checked: usize,
    pub orphans: Vec<Orphan>,
    /// Metrics that could not be checked, with the reason.
    pub errors: Vec<(String, String)>,
}

pub fn orphans(
    source: &dyn MetricSource,
    alerts: &ProjectAlerts,
    project: &str,
    now: i64,
) -> OrphanReport {
    let since = now - alerts.orphan_after_ms;
    let mut report = OrphanReport {
        project: project.to_owned(),
        checked: alerts.catalog.metrics.len(),
        orphans: Vec::new(),
        errors: Vec::new(),
    };
    for metric in &alerts.catalog.metrics {
        match volume(source, project, metric, since, now) {
            Ok(0) => report.orphans.push(Orphan {
                metric: metric.def.name.clone(),
                owner: metric.def.owner.clone(),
                since,
                to: now,
            }),
            Ok(_) => {}
            Err(error) => report
                .errors
                .push((metric.def.name.clone(), error.to_string())),
        }
    }
    report
}
