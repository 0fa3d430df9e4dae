//! Sends what is due in the outbox: POST with the payload's headers and
//! `X-Valuetrace-Notification-Id`, after the SSRF check on the resolved address (the request
//! goes to that address, redirects are not followed). 2xx: delivered. A 4xx other than 408 and
//! 429 is a permanent refusal (the same payload would be refused again): dropped, counted,
//! logged with the start of the receiver's body, kept for the Alerts page. Anything else (5xx,
//! 408, 429, no answer within the timeout): retried with backoff until `max_delivery_age`.
//!
//! TLS: `https://` targets (Slack, PagerDuty) are reached with rustls (ring provider) and the
//! system's root certificates.

use crate::config::ProjectAlerts;
use crate::engine::Engine;
use crate::notify::alertmanager::RESEND_MS;
use crate::notify::{ChannelDef, ID_HEADER};
use crate::outbox::OutboxEntry;
use std::sync::Mutex;
use std::time::Duration;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Failed attempts that will be retried (or were abandoned).
    pub failed: usize,
    pub abandoned: usize,
    /// Refused for good by the receiver (a 4xx other than 408/429): dropped, not retried.
    pub rejected: usize,
}

/// The start of a receiver's body kept with its answer (bytes read at most, characters kept).
const BODY_READ_LIMIT: usize = 4096;
pub const BODY_EXCERPT_CHARS: usize = 500;

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The start of the body ([`BODY_EXCERPT_CHARS`] characters at most), trimmed.
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A refusal that retrying cannot change: a 4xx other than 408 (timeout) and 429 (rate).
    pub fn is_permanent_failure(&self) -> bool {
        (400..500).contains(&self.status) && !matches!(self.status, 408 | 429)
    }

    /// `HTTP 400: <body>`.
    pub fn describe(&self) -> String {
        if self.body.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {}", self.status, self.body)
        }
    }
}

/// Why a notification got no answer from its receiver.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The target: no URL, refused by the SSRF check, unresolvable.
    #[error(transparent)]
    Target(#[from] crate::ssrf::TargetError),
    #[error("http client: {0}")]
    Client(String),
    #[error("channel `{0}` is no longer configured")]
    Unconfigured(String),
    /// Connection failed, TLS, timeout: the error and its causes, one line.
    #[error("{0}")]
    Transport(String),
}

/// One POST of `entry` to `channel`; the receiver's answer, whatever its status, or why there
/// was none (no URL, refused by the SSRF check, connection failed, timeout).
pub async fn send(channel: &ChannelDef, entry: &OutboxEntry) -> Result<Reply, SendError> {
    let url = channel.target()?;
    let (host, address) = crate::ssrf::resolve_checked(&url, channel.allow_private_targets).await?;
    install_tls_provider();
    let client = reqwest::Client::builder()
        .resolve(&host, address)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| SendError::Client(error.to_string()))?;
    let mut request = client
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "valuetrace-alerts")
        .header(ID_HEADER, &entry.id)
        .body(entry.body.clone());
    for (name, value) in &entry.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request
        .send()
        .await
        .map_err(|error| SendError::Transport(chain(&error)))?;
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    while bytes.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            // The status is the answer; a body cut short only shortens the excerpt.
            Ok(None) | Err(_) => break,
        }
    }
    Ok(Reply {
        status,
        body: excerpt(&bytes),
    })
}

/// The start of a body as one line of text.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_READ_LIMIT)]);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > BODY_EXCERPT_CHARS {
        let mut cut: String = line.chars().take(BODY_EXCERPT_CHARS).collect();
        cut.push('…');
        cut
    } else {
        line
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// Makes ring the process's rustls provider (once; a provider installed earlier stays).
pub fn install_tls_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // ring has no post-quantum key exchange (hence the deprecation); aws-lc-rs, which has,
        // needs cmake and doubles the build. Classic ECDHE is what Slack and PagerDuty offer.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let _ = provider.install_default();
    });
}

/// Sends every due entry of `engine`'s outbox once and records the results (and saves).
/// In dry-run mode entries are logged and marked delivered without a request.
pub async fn deliver_due(
    engine: &Mutex<Engine>,
    alerts: &ProjectAlerts,
    project: &str,
    now: i64,
) -> DeliveryReport {
    let due = lock(engine).state.outbox.due(now);
    let mut report = DeliveryReport::default();
    if due.is_empty() {
        return report;
    }
    let mut results = Vec::with_capacity(due.len());
    for entry in &due {
        let result = match alerts.channel(&entry.channel) {
            None => Err(SendError::Unconfigured(entry.channel.clone())),
            Some(_) if alerts.config.dry_run => {
                tracing::info!(project, channel = %entry.channel, id = %entry.id, body = %entry.body, "dry run: notification not sent");
                Ok(Reply {
                    status: 200,
                    body: String::new(),
                })
            }
            Some(channel) => send(channel, entry).await,
        };
        results.push((entry.id.clone(), entry.channel.clone(), result));
    }
    let mut engine = lock(engine);
    for (id, channel, result) in results {
        match result {
            Ok(reply) if reply.is_success() => {
                engine.state.outbox.delivered(&id, now);
                report.delivered += 1;
            }
            Ok(reply) if reply.is_permanent_failure() => {
                let error = reply.describe();
                tracing::error!(project, %channel, %id, %error, "notification refused by the receiver; not retried (fix the channel)");
                engine.state.outbox.rejected(&id, error, now);
                report.rejected += 1;
            }
            result => {
                let error = result.map_or_else(|error| error.to_string(), |reply| reply.describe());
                tracing::warn!(project, %channel, %id, %error, "notification not delivered; will retry");
                report.failed += 1;
                if let Some(dropped) =
                    engine
                        .state
                        .outbox
                        .failed(&id, error, now, alerts.max_delivery_age_ms)
                {
                    tracing::error!(project, %channel, id = %dropped.id, attempts = dropped.attempts, "notification abandoned after max_delivery_age");
                    report.abandoned += 1;
                }
            }
        }
    }
    if let Err(error) = engine.save() {
        tracing::error!(project, %error, "cannot save the alert state; deliveries may repeat after a restart");
    }
    report
}

/// Posts every firing alert routed to an Alertmanager channel again, at most every
/// [`RESEND_MS`] per project: Alertmanager resolves an alert it has not heard of for
/// `resolve_timeout`. Straight to the receiver, not through the outbox: a lost re-post is
/// replaced by the next one. Silenced series are not posted (Alertmanager lets them end).
pub async fn refresh_alertmanager(
    engine: &Mutex<Engine>,
    alerts: &ProjectAlerts,
    project: &str,
    now: i64,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    let payloads = {
        let mut engine = lock(engine);
        if engine
            .alertmanager_refreshed_at
            .is_some_and(|at| now - at < RESEND_MS)
        {
            return report;
        }
        engine.alertmanager_refreshed_at = Some(now);
        engine.firing_for_alertmanager(alerts, project, now)
    };
    for (channel_name, rendered) in payloads {
        let Some(channel) = alerts.channel(&channel_name) else {
            continue;
        };
        if alerts.config.dry_run {
            continue;
        }
        let entry = OutboxEntry {
            id: rendered.id,
            channel: channel_name.clone(),
            body: rendered.body,
            headers: rendered.headers,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
        };
        match send(channel, &entry).await {
            Ok(reply) if reply.is_success() => report.delivered += 1,
            result => {
                let error = result.map_or_else(|error| error.to_string(), |reply| reply.describe());
                tracing::warn!(project, channel = %channel_name, %error, "alertmanager re-post failed; the next one follows in a minute");
                report.failed += 1;
            }
        }
    }
    report
}

pub fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
