//! Sends what is due in the outbox: POST with the payload's headers and
//! `X-Valuetrace-Notification-Id`, after the SSRF check on the resolved address (the request
//! goes to that address, redirects are not followed). 2xx: delivered; anything else (or no
//! answer within the timeout): retried with backoff until `max_delivery_age`.
//!
//! TLS: `https://` targets (Slack, PagerDuty) are reached with rustls (ring provider) and the
//! system's root certificates.

use crate::config::ProjectAlerts;
use crate::engine::Engine;
use crate::notify::{ChannelDef, ID_HEADER};
use crate::outbox::OutboxEntry;
use std::sync::Mutex;
use std::time::Duration;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub failed: usize,
    pub abandoned: usize,
}

/// One POST of `entry` to `channel`; `Ok` on a 2xx.
pub async fn send(channel: &ChannelDef, entry: &OutboxEntry) -> Result<(), String> {
    let url = channel.target()?;
    let (host, address) = crate::ssrf::resolve_checked(&url, channel.allow_private_targets).await?;
    install_tls_provider();
    let client = reqwest::Client::builder()
        .resolve(&host, address)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| format!("http client: {error}"))?;
    let mut request = client
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "valuetrace-alerts")
        .header(ID_HEADER, &entry.id)
        .body(entry.body.clone());
    for (name, value) in &entry.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.map_err(|error| {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        message
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
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
            None => Err(format!(
                "channel `{}` is no longer configured",
                entry.channel
            )),
            Some(_) if alerts.config.dry_run => {
                tracing::info!(project, channel = %entry.channel, id = %entry.id, body = %entry.body, "dry run: notification not sent");
                Ok(())
            }
            Some(channel) => send(channel, entry).await,
        };
        results.push((entry.id.clone(), entry.channel.clone(), result));
    }
    let mut engine = lock(engine);
    for (id, channel, result) in results {
        match result {
            Ok(()) => {
                engine.state.outbox.delivered(&id, now);
                report.delivered += 1;
            }
            Err(error) => {
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

pub fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
