//! The alert loop: evaluates each project's rules every `evaluation_interval` (the server's
//! clock) and sends what is due in its outbox every second. Evaluation and the save of its
//! state and notifications happen under the engine's lock, so the delivery never sends a
//! notification that is not yet on disk. Firing alerts routed to Alertmanager are posted to it
//! again every minute (it resolves alerts it stops hearing about).

use crate::AppState;
use crate::alerts_api::source;
use crate::error::display_chain;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use valuetrace_alerts::deliver::{deliver_due, lock, refresh_alertmanager};
use valuetrace_alerts::{Engine, ProjectAlerts};

/// Evaluates each project's rules on its interval and delivers due notifications every second.
pub async fn alert_loop(state: Arc<AppState>) {
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let live = state.live();
        for (project, runtime) in &live.projects {
            let alerts = runtime.alerts.clone();
            if alerts.rules.is_empty() && alerts.config.channels.is_empty() {
                continue;
            }
            let engine = match state.alert_engines.get(project) {
                Ok(engine) => engine,
                Err(error) => {
                    tracing::error!(project, %error, "alert state unreadable; alerts of this project are stopped");
                    continue;
                }
            };
            let now = (state.clock)();
            let due = last
                .get(project)
                .is_none_or(|at| now - at >= alerts.evaluation_interval_ms);
            if due && !alerts.rules.is_empty() {
                last.insert(project.clone(), now);
                evaluate_project(&state, project, &alerts, &engine, now).await;
            }
            let report = deliver_due(&engine, &alerts, project, now).await;
            let reposts = refresh_alertmanager(&engine, &alerts, project, now).await;
            for (result, count) in [
                ("delivered", report.delivered),
                ("failed", report.failed),
                ("abandoned", report.abandoned),
                ("rejected", report.rejected),
                ("repost_failed", reposts.failed),
            ] {
                if count > 0 {
                    state.metrics.add(
                        "valuetrace_alert_notifications_total",
                        &[("project", project), ("result", result)],
                        count as f64,
                    );
                }
            }
        }
    }
}

async fn evaluate_project(
    state: &Arc<AppState>,
    project: &str,
    alerts: &Arc<ProjectAlerts>,
    engine: &Arc<Mutex<Engine>>,
    now: i64,
) {
    let source = source(state, now);
    let (project_owned, rules, engine) = (project.to_owned(), alerts.clone(), engine.clone());
    let result = tokio::task::spawn_blocking(move || {
        let mut engine = lock(&engine);
        let report = engine.evaluate(&source, &rules, &project_owned, now);
        engine.save().map(|()| report)
    })
    .await;
    match result {
        Ok(Ok(report)) => {
            let failed = report.errors.len();
            let ok = alerts.rules.len() - failed.min(alerts.rules.len());
            state.metrics.add(
                "valuetrace_alert_evaluations_total",
                &[("project", project), ("result", "ok")],
                ok as f64,
            );
            if failed > 0 {
                state.metrics.add(
                    "valuetrace_alert_evaluations_total",
                    &[("project", project), ("result", "failed")],
                    failed as f64,
                );
            }
            for notice in &report.notices {
                tracing::info!(project, rule = %notice.rule, change = ?notice.change, value = ?notice.value, threshold = %notice.threshold, "alert");
            }
        }
        Ok(Err(error)) => {
            tracing::error!(project, error = %display_chain(&error), "cannot save the alert state; notifications of this evaluation wait for the next")
        }
        Err(error) => tracing::error!(project, %error, "alert evaluation panicked"),
    }
}
