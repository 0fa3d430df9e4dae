//! `valuetrace alerts test RULE --send` and the Alerts page's "Send a test notification": a
//! notification of the rule, clearly marked as a test, through each of its real channels (same
//! payload code, same SSRF check, same HTTP client as deliveries), and each receiver's answer.
//!
//! The test carries the rule's current value when it can be evaluated (else none) and is marked
//! in every payload: `[TEST]` before the headline, a summary that says so, the label
//! `valuetrace_test="true"` (Alertmanager), `"test": true` (webhook). It changes no state and
//! never enters the outbox: the answer is the point, so it is sent once, now. PagerDuty gets a
//! `trigger` and then a `resolve` of the same `dedup_key`, so no test incident stays open;
//! Alertmanager gets an alert that ends by itself after
//! [`TEST_LIFETIME_MS`](crate::notify::alertmanager::TEST_LIFETIME_MS).

use crate::config::ProjectAlerts;
use crate::deliver::send;
use crate::engine::Engine;
use crate::evaluate::{Observation, SeriesLabels, evaluate};
use crate::notify::{ChannelKind, Notice, Rendered, render};
use crate::outbox::OutboxEntry;
use crate::source::MetricSource;
use crate::state::{AlertState, Change, Phase};
use serde::Serialize;

pub const TEST_SUMMARY: &str =
    "Test notification sent from valuetrace to check this channel; no action needed.";

/// One payload of a test, ready to send.
#[derive(Debug, Clone)]
pub struct TestPayload {
    pub channel: String,
    pub kind: ChannelKind,
    /// `notify`, or PagerDuty's `trigger` / `resolve`.
    pub action: &'static str,
    pub rendered: Rendered,
}

/// What one receiver answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub channel: String,
    pub kind: ChannelKind,
    pub action: &'static str,
    /// Whether the receiver answered 2xx.
    pub ok: bool,
    /// The receiver's status (none when it could not be reached, or in dry-run mode).
    pub status: Option<u16>,
    /// The start of the receiver's body.
    pub body: String,
    /// Why there was no answer (or `dry run: not sent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Renders the test notification of `rule_name` for each of its channels (`only`: one of them).
pub fn render_test(
    source: &dyn MetricSource,
    alerts: &ProjectAlerts,
    project: &str,
    rule_name: &str,
    only: Option<&str>,
    now: i64,
) -> Result<Vec<TestPayload>, String> {
    let rule = alerts
        .rule(rule_name)
        .ok_or_else(|| format!("no rule named `{rule_name}`"))?;
    let channels: Vec<&String> = rule
        .channels
        .iter()
        .filter(|name| only.is_none_or(|only| only == name.as_str()))
        .collect();
    if channels.is_empty() {
        return Err(match only {
            Some(only) => format!(
                "rule `{rule_name}` does not notify channel `{only}`; its channels: {}",
                rule.channels.join(", ")
            ),
            None => format!("rule `{rule_name}` has no channels"),
        });
    }
    let observation = current(source, alerts, project, rule, now);
    let mut state = AlertState::new(rule_name, &observation, now);
    state.phase = Phase::Firing;
    state.active_since = Some(now);
    state.fired_at = Some(now);
    state.notifications = 1;
    let scratch = Engine::in_memory();
    let mut fired = scratch.notice(alerts, project, rule, &state, Change::Fired, now);
    mark(&mut fired, now);
    let mut resolved = fired.clone();
    resolved.change = Change::Resolved;
    resolved.ends_at = Some(now);
    resolved.id = format!("{}-resolve", fired.id);
    let mut payloads = Vec::new();
    for name in channels {
        let Some(channel) = alerts.channel(name) else {
            continue;
        };
        let mut push = |action, notice: &Notice| {
            for rendered in render(channel, &rule.group, std::slice::from_ref(notice), now) {
                payloads.push(TestPayload {
                    channel: name.clone(),
                    kind: channel.kind,
                    action,
                    rendered,
                });
            }
        };
        if channel.kind == ChannelKind::Pagerduty {
            push("trigger", &fired);
            push("resolve", &resolved);
        } else {
            push("notify", &fired);
        }
    }
    Ok(payloads)
}

/// The rule's first series whose condition holds now, else its first series; a bare one when
/// it cannot be evaluated (a test checks the channel, not the data).
fn current(
    source: &dyn MetricSource,
    alerts: &ProjectAlerts,
    project: &str,
    rule: &crate::rules::Rule,
    now: i64,
) -> Observation {
    let observations = evaluate(source, &alerts.catalog, project, rule, now).unwrap_or_default();
    observations
        .iter()
        .find(|o| o.active)
        .or(observations.first())
        .cloned()
        .unwrap_or(Observation {
            labels: SeriesLabels::new(),
            active: false,
            value: None,
            currency: None,
            threshold: String::new(),
            severity: rule.def.severity,
            skipped: None,
        })
}

/// Marks a notice as a test: its own ids (never a real incident's), `[TEST]`, the summary.
fn mark(notice: &mut Notice, now: i64) {
    notice.test = true;
    notice.id = format!("test-{}-{now}", notice.fingerprint);
    notice.incident = format!("valuetrace-test-{}-{now}", notice.fingerprint);
    let rule_summary = std::mem::take(&mut notice.summary);
    notice.summary = TEST_SUMMARY.into();
    if notice.description.is_empty() {
        notice.description = rule_summary;
    }
}

/// Sends each payload once, in order, and reports each receiver's answer. In dry-run mode
/// nothing is sent.
pub async fn send_test(alerts: &ProjectAlerts, payloads: Vec<TestPayload>) -> Vec<TestResult> {
    let mut results = Vec::with_capacity(payloads.len());
    for payload in payloads {
        let mut result = TestResult {
            channel: payload.channel.clone(),
            kind: payload.kind,
            action: payload.action,
            ok: false,
            status: None,
            body: String::new(),
            error: None,
        };
        let Some(channel) = alerts.channel(&payload.channel) else {
            continue;
        };
        if alerts.config.dry_run {
            result.error = Some("dry run (`alerts.dry_run = true`): not sent".into());
            results.push(result);
            continue;
        }
        let entry = OutboxEntry {
            id: payload.rendered.id,
            channel: payload.channel,
            body: payload.rendered.body,
            headers: payload.rendered.headers,
            created_at: 0,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
        };
        match send(channel, &entry).await {
            Ok(reply) => {
                result.ok = reply.is_success();
                result.status = Some(reply.status);
                result.body = reply.body;
            }
            Err(error) => result.error = Some(error.to_string()),
        }
        results.push(result);
    }
    results
}
