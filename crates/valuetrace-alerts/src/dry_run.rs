//! `valuetrace alerts test <rule>`: evaluates one rule now, without touching its state, and
//! renders the payloads its channels would get if every series whose condition holds fired now.

use crate::config::ProjectAlerts;
use crate::engine::Engine;
use crate::evaluate::{Observation, evaluate};
use crate::notify::{Rendered, render};
use crate::source::{MetricSource, SourceError};
use crate::state::{AlertState, Change, Phase};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct DryRun {
    pub project: String,
    pub rule: String,
    pub evaluated_at: i64,
    /// Every series: whether its condition holds now, its value and threshold.
    pub observations: Vec<Observation>,
    /// How long the condition must hold before the rule fires (ms).
    pub for_ms: i64,
    /// (channel, payload) for the series whose condition holds.
    pub payloads: Vec<(String, Rendered)>,
}

/// Why a dry run has no answer.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("no rule named `{0}`")]
    UnknownRule(String),
    /// The rule could not be evaluated: its metric's definition (`Invalid`, safe to show) or the
    /// store (`Store`, internal: logged, not shown to API clients).
    #[error(transparent)]
    Source(#[from] SourceError),
}

pub fn dry_run(
    source: &dyn MetricSource,
    alerts: &ProjectAlerts,
    project: &str,
    rule_name: &str,
    now: i64,
) -> Result<DryRun, DryRunError> {
    let rule = alerts
        .rule(rule_name)
        .ok_or_else(|| DryRunError::UnknownRule(rule_name.to_owned()))?;
    let now = now - now.rem_euclid(60_000);
    let observations = evaluate(source, &alerts.catalog, project, rule, now)?;
    let scratch = Engine::in_memory();
    let notices: Vec<_> = observations
        .iter()
        .filter(|observation| observation.active)
        .map(|observation| {
            let mut state = AlertState::new(rule_name, observation, now);
            state.phase = Phase::Firing;
            state.active_since = Some(now);
            state.fired_at = Some(now);
            state.notifications = 1;
            scratch.notice(alerts, project, rule, &state, Change::Fired, now)
        })
        .collect();
    let mut payloads = Vec::new();
    if !notices.is_empty() {
        for channel in rule.channels.iter().filter_map(|name| alerts.channel(name)) {
            for mut rendered in render(channel, &rule.group, &notices, now) {
                // A dry run is shown to whoever holds a read key: no routing keys.
                if let Some(key) = channel.routing_key() {
                    rendered.body = rendered.body.replace(&key, "***");
                }
                payloads.push((channel.name.clone(), rendered));
            }
        }
    }
    Ok(DryRun {
        project: project.to_owned(),
        rule: rule_name.to_owned(),
        evaluated_at: now,
        observations,
        for_ms: rule.for_ms,
        payloads,
    })
}
