//! The Alertmanager webhook payload, version 4 (what Alertmanager sends its webhook receivers),
//! so tools that already consume Alertmanager notifications take ours unchanged.

use super::{ChannelDef, Notice, Rendered};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use valuetrace_model::time::format_rfc3339;

/// Alertmanager's "not ended" time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn render(channel: &ChannelDef, id: String, group: &str, notices: &[Notice]) -> Rendered {
    let alerts: Vec<Value> = notices.iter().map(|n| alert(n, group)).collect();
    let firing = notices.iter().any(|n| !n.is_resolved());
    let label_sets: Vec<BTreeMap<String, String>> =
        notices.iter().map(|n| full_labels(n, group)).collect();
    let common_labels = common(&label_sets);
    let annotation_sets: Vec<BTreeMap<String, String>> = notices.iter().map(annotations).collect();
    let external = notices
        .first()
        .map(|n| n.dashboard_url.clone())
        .unwrap_or_default();
    let body = json!({
        "version": "4",
        "groupKey": format!("{{}}:{{group=\"{group}\"}}"),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": channel.name,
        "groupLabels": {"group": group},
        "commonLabels": common_labels,
        "commonAnnotations": common(&annotation_sets),
        "externalURL": external,
        "alerts": alerts,
    });
    Rendered {
        id,
        body: body.to_string(),
        headers: Vec::new(),
    }
}

fn full_labels(notice: &Notice, group: &str) -> BTreeMap<String, String> {
    let mut labels = notice.labels.clone();
    labels.insert("group".into(), group.to_owned());
    labels.insert("project".into(), notice.project.clone());
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
    annotations
}

fn alert(notice: &Notice, group: &str) -> Value {
    json!({
        "status": if notice.is_resolved() { "resolved" } else { "firing" },
        "labels": full_labels(notice, group),
        "annotations": annotations(notice),
        "startsAt": format_rfc3339(notice.starts_at),
        "endsAt": notice.ends_at.map_or(ZERO_TIME.to_owned(), format_rfc3339),
        "generatorURL": notice.dashboard_url,
        "fingerprint": notice.fingerprint,
    })
}

/// The pairs every set has.
fn common(sets: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some(first) = sets.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(name, value)| sets.iter().all(|set| set.get(*name) == Some(value)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}
