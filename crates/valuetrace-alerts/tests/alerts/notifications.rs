//! Every notification kind captured by a local HTTP receiver and checked against its schema;
//! a restart in the middle of delivery neither loses nor duplicates a notification (by id).

use crate::{HOUR, MINUTE, T0, project};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use valuetrace_alerts::config::ProjectAlerts;
use valuetrace_alerts::deliver::deliver_due;
use valuetrace_alerts::fake_source::FakeSource;
use valuetrace_alerts::notify::webhook;
use valuetrace_alerts::{Engine, engine::Evaluation};

#[derive(Debug, Clone)]
struct Captured {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Captured>>>,
    /// Requests still to refuse with 503.
    refuse: Arc<AtomicUsize>,
}

impl Receiver {
    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.requests.lock().expect("receiver lock"))
    }
}

async fn capture(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let refuse = receiver
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    receiver
        .requests
        .lock()
        .expect("receiver lock")
        .push(Captured {
            path: uri.path().to_owned(),
            headers,
            body,
        });
    if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::ACCEPTED
    }
}

async fn spawn_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .fallback(capture)
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), receiver)
}

const SECRET: &str = "whsec-test-secret";

fn alerts(base: &str) -> ProjectAlerts {
    project(&format!(
        r#"
[[metrics]]
name = "payment_conversion_rate_percent"
kind = "ratio"
numerator = {{ outcome = "purchase" }}
denominator = {{ route = "/api/checkout", method = "POST" }}
scale = 100
unit = "percent"
owner = "payments"
criticality = "high"
channels = ["slack", "pagerduty", "webhook", "alertmanager"]
docs = "https://wiki.example.com/metrics/conversion-rate"

[alerts]
dashboard_url = "https://valuetrace.example.com/"

[[alerts.channels]]
name = "slack"
kind = "slack"
url = "{base}/slack"
allow_private_targets = true

[[alerts.channels]]
name = "pagerduty"
kind = "pagerduty"
url = "{base}/pagerduty"
routing_key = "R0UT1NGKEY"
allow_private_targets = true

[[alerts.channels]]
name = "webhook"
kind = "webhook"
url = "{base}/webhook"
secret = "{SECRET}"
allow_private_targets = true

[[alerts.channels]]
name = "alertmanager"
kind = "alertmanager"
url = "{base}/alertmanager"
allow_private_targets = true

[[alerts.rules]]
name = "ConversionRateDegrade"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 94
window = "5m"
for = "15m"
severity = "critical"
summary = "Payment conversion rate below SLO"
runbook = "https://wiki.example.com/runbooks/conversion-rate"
labels = {{ team = "payments" }}
"#
    ))
}

/// 80% conversion for the first hour, 97% after it.
fn conversion_incident() -> FakeSource {
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    for minute in 0..180 {
        let at = T0 + minute * MINUTE;
        source.add_calls(at, &checkout, 200, 100);
        source.add_outcomes(at, "purchase", if minute < 60 { 80 } else { 97 });
    }
    source
}

fn json(captured: &Captured) -> Value {
    serde_json::from_str(&captured.body).expect("JSON body")
}

fn by_path<'a>(requests: &'a [Captured], path: &str) -> &'a Captured {
    requests
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no request to {path}: {requests:?}"))
}

fn evaluate(
    engine: &Mutex<Engine>,
    alerts: &ProjectAlerts,
    source: &FakeSource,
    now: i64,
) -> Evaluation {
    let mut engine = engine.lock().expect("engine lock");
    let report = engine.evaluate(source, alerts, "shop", now);
    engine.save().expect("state saved");
    report
}

#[tokio::test]
async fn every_kind_reaches_the_receiver_with_its_schema() {
    let (base, receiver) = spawn_receiver().await;
    let alerts = alerts(&base);
    let source = conversion_incident();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Mutex::new(Engine::open(&dir.path().join("shop.json")).expect("open"));
    let fired_at = T0 + 20 * MINUTE;
    for minute in 5..=20 {
        evaluate(&engine, &alerts, &source, T0 + minute * MINUTE);
    }
    let report = deliver_due(&engine, &alerts, "shop", fired_at).await;
    assert_eq!((report.delivered, report.failed), (4, 0));
    let requests = receiver.take();
    assert_eq!(requests.len(), 4);
    for request in &requests {
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.headers["x-valuetrace-notification-id"].len(), 32);
    }

    let slack = json(by_path(&requests, "/slack"));
    assert_eq!(slack["blocks"][0]["type"], "header");
    let section = slack["blocks"][1]["text"]["text"]
        .as_str()
        .expect("section text");
    assert!(section.contains("ConversionRateDegrade"), "{section}");
    assert!(
        section.contains("value *80.0*") && section.contains("threshold `&lt; 94`"),
        "{section}"
    );
    assert!(
        section.contains(
            "<https://valuetrace.example.com/p/shop/alerts?rule=ConversionRateDegrade&from="
        ),
        "{section}"
    );
    assert!(
        slack["text"]
            .as_str()
            .expect("fallback")
            .contains("firing: 80.0 (&lt; 94)")
    );

    let pagerduty = json(by_path(&requests, "/pagerduty"));
    assert_eq!(pagerduty["routing_key"], "R0UT1NGKEY");
    assert_eq!(pagerduty["event_action"], "trigger");
    assert_eq!(pagerduty["payload"]["severity"], "critical");
    assert_eq!(pagerduty["payload"]["source"], "valuetrace/shop");
    assert_eq!(
        pagerduty["payload"]["timestamp"],
        "2026-03-02T00:05:00.000Z"
    );
    let dedup_key = pagerduty["dedup_key"]
        .as_str()
        .expect("dedup_key")
        .to_owned();

    let hook = by_path(&requests, "/webhook");
    let timestamp: i64 = hook.headers["x-valuetrace-timestamp"]
        .parse()
        .expect("timestamp");
    assert!(webhook::verify(
        SECRET.as_bytes(),
        timestamp,
        &hook.body,
        &hook.headers["x-valuetrace-signature"]
    ));
    assert!(!webhook::verify(
        b"wrong",
        timestamp,
        &hook.body,
        &hook.headers["x-valuetrace-signature"]
    ));
    let body = json(hook);
    assert_eq!(
        body["id"],
        hook.headers["x-valuetrace-notification-id"].as_str()
    );
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"][0]["labels"]["team"], "payments");

    // Alertmanager's own API: PostableAlerts (a JSON array) at <url>/api/v2/alerts.
    let manager = json(by_path(&requests, "/alertmanager/api/v2/alerts"));
    let alert = &manager[0];
    assert_eq!(manager.as_array().map(Vec::len), Some(1), "{manager}");
    assert_eq!(alert["labels"]["alertname"], "ConversionRateDegrade");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["group"], "payments");
    assert_eq!(alert["startsAt"], "2026-03-02T00:05:00.000Z");
    assert!(
        alert.get("endsAt").is_none(),
        "firing: no endsAt, so it ends resolve_timeout after the last post: {alert}"
    );
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "https://wiki.example.com/runbooks/conversion-rate"
    );
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|url| url.starts_with(
                "https://valuetrace.example.com/p/shop/alerts?rule=ConversionRateDegrade&from="
            )),
        "{alert}"
    );

    // Conversion recovers after the first hour: one resolve per channel, PagerDuty with the
    // same dedup_key.
    let mut resolved_at = None;
    for minute in 21..80 {
        let report = evaluate(&engine, &alerts, &source, T0 + minute * MINUTE);
        if !report.notices.is_empty() {
            resolved_at = Some(T0 + minute * MINUTE);
            break;
        }
    }
    let resolved_at = resolved_at.expect("resolved");
    assert_eq!(
        deliver_due(&engine, &alerts, "shop", resolved_at)
            .await
            .delivered,
        4
    );
    let requests = receiver.take();
    let pagerduty = json(by_path(&requests, "/pagerduty"));
    assert_eq!(pagerduty["event_action"], "resolve");
    assert_eq!(pagerduty["dedup_key"], dedup_key.as_str());
    let manager = json(by_path(&requests, "/alertmanager/api/v2/alerts"));
    assert_eq!(
        manager[0]["endsAt"],
        valuetrace_model::time::format_rfc3339(resolved_at)
    );
    assert!(
        json(by_path(&requests, "/slack"))["text"]
            .as_str()
            .expect("text")
            .contains("resolved")
    );
}

#[tokio::test]
async fn a_restart_during_delivery_neither_loses_nor_duplicates() {
    let (base, receiver) = spawn_receiver().await;
    let alerts = alerts(&base);
    let source = conversion_incident();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shop.json");
    let fired_at = T0 + 20 * MINUTE;
    {
        let engine = Mutex::new(Engine::open(&path).expect("open"));
        for minute in 5..=20 {
            evaluate(&engine, &alerts, &source, T0 + minute * MINUTE);
        }
        // Every receiver is down: nothing delivered, all kept.
        receiver.refuse.store(100, Ordering::SeqCst);
        let report = deliver_due(&engine, &alerts, "shop", fired_at).await;
        assert_eq!((report.delivered, report.failed), (0, 4));
    } // the process dies here
    let refused: BTreeSet<String> = receiver
        .take()
        .iter()
        .map(|r| r.headers["x-valuetrace-notification-id"].clone())
        .collect();
    assert_eq!(refused.len(), 4);
    receiver.refuse.store(0, Ordering::SeqCst);

    let engine = Mutex::new(Engine::open(&path).expect("reopen"));
    assert_eq!(
        engine.lock().expect("lock").state.outbox.pending.len(),
        4,
        "nothing lost"
    );
    // Evaluating again after the restart (still firing) makes no new notification.
    for minute in 20..25 {
        let report = evaluate(&engine, &alerts, &source, T0 + minute * MINUTE);
        assert!(report.notices.is_empty(), "{:?}", report.notices);
    }
    // Before the backoff has passed nothing is sent; after it, everything once.
    assert_eq!(
        deliver_due(&engine, &alerts, "shop", fired_at + 500)
            .await
            .delivered,
        0
    );
    let snapshot = std::fs::read(&path).expect("state file");
    assert_eq!(
        deliver_due(&engine, &alerts, "shop", fired_at + 5_000)
            .await
            .delivered,
        4
    );
    let delivered: Vec<String> = receiver
        .take()
        .iter()
        .map(|r| r.headers["x-valuetrace-notification-id"].clone())
        .collect();
    assert_eq!(
        delivered.iter().cloned().collect::<BTreeSet<_>>(),
        refused,
        "the same ids, each once"
    );
    assert_eq!(delivered.len(), 4);
    assert_eq!(
        deliver_due(&engine, &alerts, "shop", fired_at + HOUR)
            .await
            .delivered,
        0
    );

    // A crash after the 2xx but before the state was saved: the same ids go again (receivers
    // drop them by id), and no new id appears.
    drop(engine);
    std::fs::write(&path, snapshot).expect("restore the state before the save");
    let engine = Mutex::new(Engine::open(&path).expect("reopen"));
    assert_eq!(
        deliver_due(&engine, &alerts, "shop", fired_at + 5_000)
            .await
            .delivered,
        4
    );
    let again: BTreeSet<String> = receiver
        .take()
        .iter()
        .map(|r| r.headers["x-valuetrace-notification-id"].clone())
        .collect();
    assert_eq!(again, refused);
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let (base, receiver) = spawn_receiver().await;
    let literal = crate::problems(&format!(
        "[[alerts.channels]]\nname = \"hook\"\nkind = \"slack\"\nurl = \"{base}/slack\"\n"
    ));
    assert!(
        literal
            .iter()
            .any(|p| p.contains("channels[0] (hook).url:") && p.contains("allow_private_targets")),
        "{literal:?}"
    );
    // A name that resolves to an internal address passes the file check and is refused at
    // delivery. The machine's own name does (loopback or a private address) on every machine
    // this runs on; if it does not resolve at all, there is nothing to check.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    let resolves = tokio::net::lookup_host((name, 80))
        .await
        .map(|mut a| a.all(|a| valuetrace_alerts::ssrf::is_internal(a.ip())));
    if name.is_empty() || !matches!(resolves, Ok(true)) {
        eprintln!("skipped: the host name `{name}` does not resolve to an internal address");
        return;
    }
    let by_name = base.replace("127.0.0.1", name);
    let mut alerts = alerts(&base);
    alerts.config.channels[0].url = Some(format!("{by_name}/slack"));
    alerts.config.channels[0].allow_private_targets = false;
    let engine = Mutex::new(Engine::in_memory());
    for minute in 5..=20 {
        evaluate(
            &engine,
            &alerts,
            &conversion_incident(),
            T0 + minute * MINUTE,
        );
    }
    let report = deliver_due(&engine, &alerts, "shop", T0 + 20 * MINUTE).await;
    assert_eq!((report.delivered, report.failed), (3, 1));
    assert!(receiver.take().iter().all(|r| r.path != "/slack"));
    let engine = engine.lock().expect("lock");
    let error = engine.state.outbox.pending[0]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(error.contains("loopback or private"), "{error}");
}
