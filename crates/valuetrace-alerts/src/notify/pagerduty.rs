//! PagerDuty Events API v2: one event per alert; `trigger` on firing (and on reminders, which
//! PagerDuty folds into the open incident), `resolve` when it resolves, both with the incident
//! as `dedup_key`.

use super::{ChannelDef, Notice, Rendered};
use crate::rules::Severity;
use serde_json::json;
use valuetrace_model::time::format_rfc3339;

pub fn render(channel: &ChannelDef, notice: &Notice) -> Rendered {
    let routing_key = channel.routing_key().unwrap_or_default();
    let body = if notice.is_resolved() {
        json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": notice.incident,
        })
    } else {
        let severity = match notice.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let summary: String = notice.headline().chars().take(1024).collect();
        let mut links = Vec::new();
        if !notice.dashboard_url.is_empty() {
            links.push(json!({"href": notice.dashboard_url, "text": "Open in valuetrace"}));
        }
        if !notice.runbook.is_empty() {
            links.push(json!({"href": notice.runbook, "text": "Runbook"}));
        }
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": notice.incident,
            "payload": {
                "summary": summary,
                "source": format!("valuetrace/{}", notice.project),
                "severity": severity,
                "timestamp": format_rfc3339(notice.starts_at),
                "component": notice.metric.clone().unwrap_or_default(),
                "group": notice.owner,
                "class": notice.rule,
                "custom_details": {
                    "value": notice.value,
                    "currency": notice.currency,
                    "threshold": notice.threshold,
                    "labels": notice.labels,
                    "description": notice.description,
                    "notification_id": notice.id,
                },
            },
            "links": links,
            "client": "valuetrace",
            "client_url": notice.dashboard_url,
        })
    };
    Rendered {
        id: channel_notice_id(&channel.name, &notice.id),
        body: body.to_string(),
        headers: Vec::new(),
    }
}

/// A notice's id on one channel (the same notice may go to several PagerDuty services).
pub fn channel_notice_id(channel: &str, notice: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(channel.as_bytes());
    hash.update([0]);
    hash.update(notice.as_bytes());
    hex::encode(&hash.finalize()[..16])
}
