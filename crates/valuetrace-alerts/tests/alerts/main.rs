//! The alerts crate end to end: every rule type driven by a hand-moved clock over a fake
//! source, notifications captured by a local HTTP receiver (with a restart in the middle of
//! delivery), permanent refusals not retried, a real Alertmanager fed and resolved, and the
//! exposition checked by promtool.

mod alertmanager;
mod delivery;
mod exposition;
mod money;
mod notifications;
mod rules;
mod tls;

use serde::Deserialize;
use valuetrace_alerts::{AlertsConfig, MetricDef, ProjectAlerts};

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
/// A Monday at midnight UTC (2026-03-02), so "hour of the day" is easy to read.
pub const T0: i64 = 1_772_409_600_000;

#[derive(Deserialize)]
struct ProjectFile {
    #[serde(default)]
    metrics: Vec<MetricDef>,
    #[serde(default)]
    alerts: AlertsConfig,
}

/// A project's catalog and alerts from a TOML text (`[[metrics]]`, `[alerts]`).
pub fn project(text: &str) -> ProjectAlerts {
    let file: ProjectFile = toml::from_str(text).expect("test config parses");
    ProjectAlerts::build(&file.metrics, &file.alerts, "projects[0] (shop)")
        .unwrap_or_else(|problems| panic!("test config is valid: {problems:#?}"))
}

/// The problems a bad configuration reports.
pub fn problems(text: &str) -> Vec<String> {
    let file: ProjectFile = toml::from_str(text).expect("test config parses");
    ProjectAlerts::build(&file.metrics, &file.alerts, "projects[0] (shop)")
        .err()
        .unwrap_or_default()
}
