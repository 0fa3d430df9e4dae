//! What a receiver's refusal does: a 4xx other than 408/429 is permanent (counted, kept with
//! the start of the body, never retried); 408, 429 and 5xx are retried.

use crate::{HOUR, MINUTE, T0, project};
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use valuetrace_alerts::Engine;
use valuetrace_alerts::config::ProjectAlerts;
use valuetrace_alerts::deliver::deliver_due;
use valuetrace_alerts::fake_source::FakeSource;

/// Answers every request with `status` and a Slack-like error body; counts requests.
#[derive(Clone)]
struct Refuser {
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
}

async fn refuse(State(refuser): State<Refuser>) -> (StatusCode, String) {
    refuser.requests.fetch_add(1, Ordering::SeqCst);
    let status = refuser.status.load(Ordering::SeqCst);
    (
        StatusCode::from_u16(status).expect("status"),
        format!(
            "invalid_payload: the receiver said no ({status})\n{}",
            "x".repeat(2000)
        ),
    )
}

async fn spawn(status: u16) -> (String, Refuser) {
    let refuser = Refuser {
        status: Arc::new(AtomicU16::new(status)),
        requests: Arc::new(AtomicUsize::new(0)),
    };
    let app = axum::Router::new()
        .fallback(refuse)
        .with_state(refuser.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), refuser)
}

fn alerts(base: &str) -> ProjectAlerts {
    project(&format!(
        r#"
[[metrics]]
name = "checkout_requests_total"
kind = "count"
select = {{ route = "/api/checkout", method = "POST" }}
unit = "requests"
owner = "payments"
channels = ["slack"]

[[alerts.channels]]
name = "slack"
kind = "slack"
url = "{base}/services/T000/B000/XXXX"
allow_private_targets = true

[[alerts.rules]]
name = "CheckoutTrafficHigh"
kind = "threshold"
metric = "checkout_requests_total"
op = ">"
threshold = 10
window = "5m"
"#
    ))
}

/// An engine with one firing notification waiting in its outbox.
fn fired(alerts: &ProjectAlerts) -> Mutex<Engine> {
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    for minute in 0..10 {
        source.add_calls(T0 + minute * MINUTE, &checkout, 200, 100);
    }
    let engine = Mutex::new(Engine::in_memory());
    let report = engine
        .lock()
        .expect("lock")
        .evaluate(&source, alerts, "shop", T0 + 6 * MINUTE);
    assert_eq!(report.payloads.len(), 1);
    engine
}

#[tokio::test]
async fn a_permanent_4xx_is_counted_kept_and_not_retried() {
    let (base, refuser) = spawn(400).await;
    let alerts = alerts(&base);
    let engine = fired(&alerts);
    let now = T0 + 6 * MINUTE;
    let report = deliver_due(&engine, &alerts, "shop", now).await;
    assert_eq!(
        (report.delivered, report.failed, report.rejected),
        (0, 0, 1)
    );
    {
        let engine = engine.lock().expect("lock");
        let outbox = &engine.state.outbox;
        assert!(outbox.pending.is_empty(), "not kept for a retry");
        assert_eq!(outbox.rejected, 1);
        let rejection = &outbox.rejections[0];
        assert_eq!(rejection.channel, "slack");
        assert!(
            rejection
                .error
                .starts_with("HTTP 400: invalid_payload: the receiver said no (400)"),
            "{}",
            rejection.error
        );
        assert!(
            rejection.error.chars().count() < 600,
            "the body is cut: {} chars",
            rejection.error.chars().count()
        );
    }
    for later in [1_000, 10_000, MINUTE, HOUR, 25 * HOUR] {
        deliver_due(&engine, &alerts, "shop", now + later).await;
    }
    assert_eq!(refuser.requests.load(Ordering::SeqCst), 1, "sent once");
}

#[tokio::test]
async fn timeouts_rate_limits_and_5xx_are_retried() {
    for status in [408, 429, 500, 503] {
        let (base, refuser) = spawn(status).await;
        let alerts = alerts(&base);
        let engine = fired(&alerts);
        let now = T0 + 6 * MINUTE;
        let report = deliver_due(&engine, &alerts, "shop", now).await;
        assert_eq!((report.failed, report.rejected), (1, 0), "{status}");
        let error = engine.lock().expect("lock").state.outbox.pending[0]
            .last_error
            .clone()
            .unwrap_or_default();
        assert!(
            error.starts_with(&format!("HTTP {status}: invalid_payload")),
            "{error}"
        );
        refuser.status.store(200, Ordering::SeqCst);
        let report = deliver_due(&engine, &alerts, "shop", now + MINUTE).await;
        assert_eq!(report.delivered, 1, "{status}: retried and delivered");
    }
}

#[tokio::test]
async fn firing_alerts_are_reposted_to_alertmanager_every_minute_unless_silenced() {
    let (base, refuser) = spawn(200).await;
    let mut alerts_am = alerts(&base);
    alerts_am.config.channels[0].kind = valuetrace_alerts::notify::ChannelKind::Alertmanager;
    alerts_am.config.channels[0].url = Some(base.clone());
    let engine = fired(&alerts_am);
    let now = T0 + 6 * MINUTE;
    assert_eq!(
        deliver_due(&engine, &alerts_am, "shop", now)
            .await
            .delivered,
        1
    );
    let repost =
        |at| valuetrace_alerts::deliver::refresh_alertmanager(&engine, &alerts_am, "shop", at);
    assert_eq!(repost(now).await.delivered, 1);
    assert_eq!(
        repost(now + 59_000).await.delivered,
        0,
        "not before a minute"
    );
    assert_eq!(repost(now + MINUTE).await.delivered, 1);
    // A silence added while firing stops the re-posts (Alertmanager then lets the alert end).
    engine.lock().expect("lock").silence(
        valuetrace_alerts::state::Silence {
            id: String::new(),
            rule: Some("CheckoutTrafficHigh".into()),
            matchers: Default::default(),
            starts_at: 0,
            ends_at: now + HOUR,
            created_by: String::new(),
            comment: String::new(),
        },
        now,
    );
    assert_eq!(repost(now + 2 * MINUTE).await.delivered, 0);
    assert_eq!(refuser.requests.load(Ordering::SeqCst), 3);
}
