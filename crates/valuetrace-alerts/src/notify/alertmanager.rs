//! Alertmanager's alerts API: `POST <url>/api/v2/alerts` with `PostableAlerts`, a JSON array of
//! `{labels, annotations, startsAt, endsAt, generatorURL}` — what Prometheus sends it.
//!
//! Alertmanager keeps an alert firing only while it hears of it: an alert posted without
//! `endsAt` ends `resolve_timeout` (default 5 min) after it was last received. So a firing alert
//! is posted without `endsAt` (its end then counts from when Alertmanager received it, however
//! late a retry delivers it) and re-posted every [`RESEND_MS`] while it fires
//! ([`crate::deliver::refresh_alertmanager`]); a resolve carries `endsAt` = when it resolved.
//! If valuetrace stops, Alertmanager resolves the alert by itself after `resolve_timeout`.
//! A test notification ends [`TEST_LIFETIME_MS`] after it starts.

use super::{ChannelDef, Notice, Rendered};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use valuetrace_model::time::format_rfc3339;

/// The path of Alertmanager's alerts API.
pub const ALERTS_PATH: &str = "/api/v2/alerts";
/// How often a firing alert is posted again: well under Alertmanager's default
/// `resolve_timeout` of 5 min (Prometheus re-sends every minute too).
pub const RESEND_MS: i64 = 60_000;
/// A test alert ends by itself after this.
pub const TEST_LIFETIME_MS: i64 = 5 * 60_000;

/// `base` with `/api/v2/alerts` appended, unless it already ends with it.
pub fn alerts_api_url(base: &str) -> String {
    let trimmed = base.trim_end_matches('/');
    if trimmed.ends_with(ALERTS_PATH) {
        trimmed.to_owned()
    } else {
        format!("{trimmed}{ALERTS_PATH}")
    }
}

pub fn render(_channel: &ChannelDef, id: String, group: &str, notices: &[Notice]) -> Rendered {
    let alerts: Vec<Value> = notices.iter().map(|n| alert(n, group)).collect();
    Rendered {
        id,
        body: Value::Array(alerts).to_string(),
        headers: Vec::new(),
    }
}

fn full_labels(notice: &Notice, group: &str) -> BTreeMap<String, String> {
    let mut labels = notice.labels.clone();
    labels.insert("group".into(), group.to_owned());
    labels.insert("project".into(), notice.project.clone());
    if notice.test {
        labels.insert("valuetrace_test".into(), "true".into());
    }
    labels
}

fn annotations(notice: &Notice) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".into(), notice.headline());
    if !notice.description.is_empty() {
        annotations.insert("description".into(), notice.description.clone());
    }
    if !notice.runbook.is_empty() {
        annotations.insert("runbook_url".into(), notice.runbook.clone());
    }
    annotations.insert("threshold".into(), notice.threshold.clone());
    if let Some(value) = notice.value {
        annotations.insert("value".into(), value.to_string());
    }
    if let Some(code) = &notice.currency {
        annotations.insert("currency".into(), code.clone());
    }
    annotations
}

/// One `PostableAlert`.
fn alert(notice: &Notice, group: &str) -> Value {
    let mut alert = Map::new();
    alert.insert("labels".into(), json!(full_labels(notice, group)));
    alert.insert("annotations".into(), json!(annotations(notice)));
    alert.insert("startsAt".into(), json!(format_rfc3339(notice.starts_at)));
    let ends_at = match (notice.is_resolved(), notice.test) {
        (true, _) => notice.ends_at,
        (false, true) => Some(notice.starts_at + TEST_LIFETIME_MS),
        (false, false) => None,
    };
    if let Some(ends_at) = ends_at {
        alert.insert(
            "endsAt".into(),
            json!(format_rfc3339(ends_at.max(notice.starts_at))),
        );
    }
    if !notice.dashboard_url.is_empty() {
        alert.insert("generatorURL".into(), json!(notice.dashboard_url));
    }
    Value::Object(alert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_the_base_or_the_alerts_api_itself() {
        for base in [
            "http://am:9093",
            "http://am:9093/",
            "http://am:9093/api/v2/alerts",
            "http://am:9093/api/v2/alerts/",
        ] {
            assert_eq!(alerts_api_url(base), "http://am:9093/api/v2/alerts");
        }
        assert_eq!(
            alerts_api_url("https://proxy/alertmanager"),
            "https://proxy/alertmanager/api/v2/alerts"
        );
    }
}
