//! Notifications: channels, the notice of one alert, and the payload of each channel kind.
//!
//! A notification is rendered once, when its alerts change, and kept in the outbox with a
//! stable id until a receiver answers 2xx ([`crate::outbox`]). Every request carries the id in
//! `X-Valuetrace-Notification-Id`, so receivers can drop the repeats at-least-once delivery
//! implies. Kinds:
//!
//! - `slack`: an incoming-webhook message (summary, value vs threshold, dashboard link).
//! - `pagerduty`: Events API v2, one event per alert, `trigger` then `resolve` with the same
//!   `dedup_key` (the incident).
//! - `webhook`: generic JSON, signed: `X-Valuetrace-Signature: sha256=<hex>` is
//!   HMAC-SHA256(secret, `<X-Valuetrace-Timestamp>.<body>`).
//! - `alertmanager`: `PostableAlerts` for Alertmanager's `POST /api/v2/alerts` (what Prometheus
//!   sends it), re-posted every minute while firing ([`crate::deliver::refresh_alertmanager`]).
//!
//! Every link (Slack, PagerDuty `links`, the webhook's `dashboard_url`, Alertmanager's
//! `generatorURL`) is [`dashboard_link`]: the dashboard's Alerts page of the project, which asks
//! for a sign-in first and then opens it.

pub mod alertmanager;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use crate::evaluate::SeriesLabels;
use crate::rules::Severity;
use crate::state::Change;
use serde::{Deserialize, Serialize};

pub const ID_HEADER: &str = "x-valuetrace-notification-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Slack,
    Pagerduty,
    Webhook,
    Alertmanager,
}

/// A notification target, `[[projects.alerts.channels]]`. Secrets come from the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelDef {
    pub name: String,
    pub kind: ChannelKind,
    /// Where to POST. PagerDuty defaults to its Events API v2 endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Environment variable holding the URL instead (Slack webhook URLs are secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// PagerDuty: environment variable holding the integration's routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_env: Option<String>,
    /// PagerDuty: the routing key itself (prefer `routing_key_env`; never shown by the API).
    #[serde(default, skip_serializing)]
    pub routing_key: Option<String>,
    /// Webhook: environment variable holding the HMAC secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Webhook: the HMAC secret itself (prefer `secret_env`; never shown by the API).
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    /// Allow targets on loopback, private, link-local or unique-local addresses (a relay on
    /// the same host, tests). Off by default: alert targets must not reach internal services.
    #[serde(default)]
    pub allow_private_targets: bool,
}

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

impl ChannelDef {
    /// The URL to POST to, read now (an environment variable may hold it). An Alertmanager
    /// channel's `url` is Alertmanager's base URL (`http://alertmanager:9093`); its alerts API
    /// `/api/v2/alerts` is appended unless the URL already ends with it.
    pub fn target(&self) -> Result<String, crate::ssrf::TargetError> {
        use crate::ssrf::TargetError;
        let url = if let Some(variable) = &self.url_env {
            std::env::var(variable)
                .ok()
                .filter(|url| !url.is_empty())
                .ok_or_else(|| TargetError::EnvUnset(variable.clone()))?
        } else {
            match (&self.url, self.kind) {
                (Some(url), _) => url.clone(),
                (None, ChannelKind::Pagerduty) => PAGERDUTY_EVENTS_URL.into(),
                (None, _) => return Err(TargetError::NoUrl),
            }
        };
        Ok(match self.kind {
            ChannelKind::Alertmanager => alertmanager::alerts_api_url(&url),
            _ => url,
        })
    }

    /// A secret given inline or, failing that, by the environment variable `variable` names.
    pub fn secret_of(inline: &Option<String>, variable: &Option<String>) -> Option<String> {
        inline
            .clone()
            .or_else(|| variable.as_ref().and_then(|name| std::env::var(name).ok()))
            .filter(|value| !value.is_empty())
    }

    pub fn routing_key(&self) -> Option<String> {
        Self::secret_of(&self.routing_key, &self.routing_key_env)
    }

    pub fn hmac_secret(&self) -> Option<String> {
        Self::secret_of(&self.secret, &self.secret_env)
    }

    /// Problems with this channel, each naming the field under `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push(format!("{at}.name: required"));
        }
        let needs_url = self.kind != ChannelKind::Pagerduty;
        if needs_url && self.url.is_none() && self.url_env.is_none() {
            problems.push(format!("{at}.url: required (or url_env)"));
        }
        if let Some(url) = &self.url
            && let Err(problem) = crate::ssrf::check_url(url, self.allow_private_targets)
        {
            problems.push(format!("{at}.url: {problem}"));
        }
        if self.kind == ChannelKind::Pagerduty
            && self.routing_key_env.is_none()
            && self.routing_key.is_none()
        {
            problems.push(format!(
                "{at}.routing_key_env: required: the environment variable holding the PagerDuty routing key"
            ));
        }
        if self.kind == ChannelKind::Webhook && self.secret_env.is_none() && self.secret.is_none() {
            problems.push(format!(
                "{at}.secret_env: required: the environment variable holding the HMAC secret"
            ));
        }
        problems
    }
}

/// One alert's change, as every payload describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Stable: incident, change and reminder number.
    pub id: String,
    pub project: String,
    pub rule: String,
    pub change: Change,
    /// Series labels plus the rule's labels, `alertname` and `severity`.
    pub labels: SeriesLabels,
    pub value: Option<f64>,
    /// The currency of `value` when it is money (a value-sum metric against a threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub threshold: String,
    pub summary: String,
    pub description: String,
    pub severity: Severity,
    pub metric: Option<String>,
    pub owner: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub fingerprint: String,
    /// The incident (PagerDuty `dedup_key`).
    pub incident: String,
    pub dashboard_url: String,
    pub runbook: String,
    pub docs: String,
    /// A test notification (`alerts test --send`): marked as such in every payload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Notice {
    pub fn is_resolved(&self) -> bool {
        self.change == Change::Resolved
    }

    /// The value as notifications print it: `91.2`, money with its currency (`1523.4 EUR`).
    pub fn value_text(&self) -> String {
        match (self.value, &self.currency) {
            (None, _) => "no value".to_owned(),
            (Some(value), None) => format_value(value),
            (Some(value), Some(code)) => format!("{} {code}", format_value(value)),
        }
    }

    /// `ConversionRateDegrade firing: 91.2 (< 94)`.
    pub fn headline(&self) -> String {
        let state = if self.is_resolved() {
            "resolved"
        } else {
            "firing"
        };
        let value = self.value_text();
        let series = self
            .labels
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "alertname" | "severity"))
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>();
        let series = if series.is_empty() {
            String::new()
        } else {
            format!(" {{{}}}", series.join(", "))
        };
        let test = if self.test { "[TEST] " } else { "" };
        format!(
            "{test}{}{series} {state}: {value} ({})",
            self.rule, self.threshold
        )
    }
}

/// The dashboard's view of `rule`: `<dashboard_url>/p/<project>/alerts?rule=<rule>&from=&to=`
/// (RFC 3339) with the rule's section as the fragment. Empty without a `dashboard_url`.
pub fn dashboard_link(
    dashboard_url: &str,
    project: &str,
    rule: &str,
    from: i64,
    to: i64,
) -> String {
    use valuetrace_model::time::format_rfc3339;
    if dashboard_url.is_empty() {
        return String::new();
    }
    format!(
        "{}/p/{}/alerts?rule={}&from={}&to={}#rule-{}",
        dashboard_url.trim_end_matches('/'),
        encode(project),
        encode(rule),
        encode(&format_rfc3339(from)),
        encode(&format_rfc3339(to)),
        encode(rule)
    )
}

/// Everything but RFC 3986's unreserved characters (`A–Z a–z 0–9 - _ . ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

pub fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 || value == value.trunc() {
        format!("{value:.1}")
    } else {
        format!("{value:.4}")
    }
}

/// A payload ready to send: its id (the outbox key), body and extra headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    pub id: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// The payloads for `channel` of the notices of one group (one per alert for PagerDuty, one
/// for the whole group otherwise). `created_at` is part of what is signed.
pub fn render(
    channel: &ChannelDef,
    group: &str,
    notices: &[Notice],
    created_at: i64,
) -> Vec<Rendered> {
    let group_id = group_id(&channel.name, notices);
    match channel.kind {
        ChannelKind::Slack => vec![slack::render(group_id, group, notices)],
        ChannelKind::Pagerduty => notices
            .iter()
            .map(|notice| pagerduty::render(channel, notice))
            .collect(),
        ChannelKind::Webhook => vec![webhook::render(
            channel, group_id, group, notices, created_at,
        )],
        ChannelKind::Alertmanager => vec![alertmanager::render(channel, group_id, group, notices)],
    }
}

/// The id of a group notification: a hash of the channel and its notices' ids.
fn group_id(channel: &str, notices: &[Notice]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(channel.as_bytes());
    for notice in notices {
        hash.update([0]);
        hash.update(notice.id.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}
