//! Slack incoming-webhook message: one message per group, one section per alert with the value
//! against the threshold and a link to the dashboard view.

use super::{Notice, Rendered};
use serde_json::json;

pub fn render(id: String, group: &str, notices: &[Notice]) -> Rendered {
    let firing = notices.iter().filter(|n| !n.is_resolved()).count();
    let resolved = notices.len() - firing;
    let title = match (firing, resolved) {
        (_, 0) => format!(":rotating_light: {firing} firing · {group}"),
        (0, _) => format!(":white_check_mark: {resolved} resolved · {group}"),
        _ => format!(":rotating_light: {firing} firing, {resolved} resolved · {group}"),
    };
    let title = if notices.iter().any(|n| n.test) {
        format!(":test_tube: TEST, no action needed · {title}")
    } else {
        title
    };
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": title.chars().take(150).collect::<String>()}
    })];
    for notice in notices.iter().take(20) {
        let mut text = format!("*{}*", escape(&notice.headline()));
        if !notice.summary.is_empty() {
            text.push_str(&format!("\n{}", escape(&notice.summary)));
        }
        let value = notice.value_text();
        text.push_str(&format!(
            "\nvalue *{value}* · threshold `{}` · severity {:?} · owner {}",
            escape(&notice.threshold),
            notice.severity,
            escape(&notice.owner)
        ));
        let mut links = Vec::new();
        if !notice.dashboard_url.is_empty() {
            links.push(format!("<{}|Open in valuetrace>", notice.dashboard_url));
        }
        if !notice.runbook.is_empty() {
            links.push(format!("<{}|Runbook>", notice.runbook));
        }
        if !links.is_empty() {
            text.push_str(&format!("\n{}", links.join(" · ")));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if notices.len() > 20 {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("and {} more", notices.len() - 20)}
        ]}));
    }
    let fallback = notices
        .iter()
        .map(|notice| escape(&notice.headline()))
        .collect::<Vec<_>>()
        .join("\n");
    let body = json!({"text": fallback, "blocks": blocks});
    Rendered {
        id,
        body: body.to_string(),
        headers: Vec::new(),
    }
}

/// Slack's mrkdwn escapes: `&`, `<`, `>`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
