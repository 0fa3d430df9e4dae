//! Notifications as their receivers and readers meet them (issue 18, points 9–11 and the Alerts
//! page's charts): every link a notification carries opens the dashboard's Alerts page after
//! sign-in; a test notification goes through each real channel and reports each receiver's
//! answer (API and the page's button); a receiver's permanent refusal shows on the page; the page
//! charts each rule against its threshold.

mod common;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, Uri};
use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use valuetrace_alerts::deliver::deliver_due;
use valuetrace_server::Server;
use valuetrace_server::config::Config;

const NOW: i64 = 1_795_256_130_123;
const DASHBOARD: &str = "https://valuetrace.example.com/vt";
const RULE: &str = "ConversionRateDegrade";

/// Every request a receiver got: (path, body). `/slack-refuses` answers 400.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
            .into_iter()
            .map(|(path, body)| (path, serde_json::from_str(&body).expect("JSON body")))
            .collect()
    }
}

async fn capture(State(receiver): State<Receiver>, uri: Uri, body: String) -> (StatusCode, String) {
    let path = uri.path().to_owned();
    receiver
        .requests
        .lock()
        .expect("lock")
        .push((path.clone(), body));
    if path.starts_with("/slack-refuses") {
        (StatusCode::BAD_REQUEST, "invalid_token".into())
    } else {
        (StatusCode::ACCEPTED, "{\"status\":\"success\"}".into())
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

/// Project `shop` with one channel of each kind at `base` (Slack at `slack_path`).
fn server(dir: &std::path::Path, base: &str, slack_path: &str) -> Server {
    let text = format!(
        r#"
id = "shop"

[[metrics]]
name = "payment_conversion_rate_percent"
kind = "ratio"
numerator = {{ outcome = "purchase" }}
denominator = {{ route = "/api/checkout", method = "POST" }}
scale = 100
unit = "percent"
owner = "payments"
channels = ["slack", "pagerduty", "webhook", "alertmanager"]

[alerts]
dashboard_url = "{DASHBOARD}"

[[alerts.channels]]
name = "slack"
kind = "slack"
url = "{base}{slack_path}"
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
secret = "whsec"
allow_private_targets = true

[[alerts.channels]]
name = "alertmanager"
kind = "alertmanager"
url = "{base}/am"
allow_private_targets = true

[[alerts.rules]]
name = "{RULE}"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 94
window = "5m"
severity = "critical"

[[alerts.rules]]
name = "ConversionRateLow"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 50
window = "5m"
severity = "warning"
channels = ["slack"]
"#
    );
    let mut project: valuetrace_server::config::ProjectConfig =
        toml::from_str(&text).expect("project parses");
    project.ingest_key_hashes = vec![valuetrace_server::auth::key_hash_string(SHOP_INGEST)];
    project.read_key_hashes = vec![valuetrace_server::auth::key_hash_string(SHOP_READ)];
    let config = Config {
        data_dir: dir.to_owned(),
        projects: vec![
            project,
            common::project("other", &[OTHER_INGEST], &[OTHER_READ]),
        ],
        ..Config::default()
    };
    let server = Server::open_with_clock(config, Arc::new(|| NOW)).expect("server");
    server
        .state
        .dashboard
        .set_render_budget(std::time::Duration::from_secs(60));
    server
}

/// 50 checkouts and 40 purchases in the last three minutes: conversion 80% (< 94).
async fn load(server: &Server) {
    let mut events = Vec::new();
    for i in 0..50 {
        events.push(json!({
            "type": "api_call", "schema_version": 1, "event_id": format!("c-{i}"),
            "timestamp": NOW - 180_000 + i * 1000, "service": "shop", "method": "POST",
            "route": "/api/checkout", "status": 200, "latency_ms": 80.0,
            "user_id": format!("u-{i}")
        }));
    }
    for i in 0..40 {
        events.push(json!({
            "type": "outcome", "schema_version": 1, "event_id": format!("o-{i}"),
            "timestamp": NOW - 170_000 + i * 1000, "name": "purchase", "user_id": format!("u-{i}")
        }));
    }
    let (status, answer) = call(
        server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &events),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// One evaluation and one delivery round, as the server's loop does them.
async fn evaluate_and_deliver(server: &Server) -> valuetrace_alerts::deliver::DeliveryReport {
    let state = server.state.clone();
    let engine = state.alert_engines.get("shop").expect("engine");
    let alerts = state.live().projects["shop"].alerts.clone();
    let report = engine.lock().expect("lock").evaluate(
        &valuetrace_server::alerts_api::source(&state, NOW),
        &alerts,
        "shop",
        NOW,
    );
    assert_eq!(report.notices.len(), 1, "{:?}", report.errors);
    deliver_due(&engine, &alerts, "shop", NOW).await
}

/// Signs in to `shop` with its read key, going to `next`; the cookie and where it leads.
async fn sign_in(server: &Server, next: &str) -> (String, String) {
    let body = format!(
        "project=shop&key={SHOP_READ}&next={}",
        valuetrace_alerts::notify::encode(next)
    );
    let request = Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    let (status, headers, _) = call_full(server, request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = header(&headers, "set-cookie").expect("a session cookie");
    let cookie = cookie.split(';').next().expect("name=value").to_owned();
    (cookie, header(&headers, "location").unwrap_or_default())
}

async fn get_page(
    server: &Server,
    cookie: Option<&str>,
    uri: &str,
) -> (StatusCode, Option<String>, String) {
    let mut builder = Request::get(uri);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let (status, headers, text) =
        call_full(server, builder.body(Body::empty()).expect("request")).await;
    (status, header(&headers, "location"), text)
}

/// Every link in one captured payload.
fn links(path: &str, body: &Value) -> Vec<String> {
    match path {
        "/slack" => {
            let text = body["blocks"][1]["text"]["text"].as_str().expect("section");
            text.split('<')
                .skip(1)
                .filter_map(|rest| rest.split_once('|'))
                .filter(|(_, label)| label.starts_with("Open in valuetrace"))
                .map(|(url, _)| url.to_owned())
                .collect()
        }
        "/pagerduty" => {
            let mut found: Vec<String> = body["links"]
                .as_array()
                .expect("links")
                .iter()
                .filter_map(|l| l["href"].as_str().map(str::to_owned))
                .collect();
            found.extend(body["client_url"].as_str().map(str::to_owned));
            found
        }
        "/webhook" => vec![
            body["alerts"][0]["dashboard_url"]
                .as_str()
                .expect("dashboard_url")
                .to_owned(),
        ],
        "/am/api/v2/alerts" => vec![
            body[0]["generatorURL"]
                .as_str()
                .expect("generatorURL")
                .to_owned(),
        ],
        other => panic!("unexpected receiver path {other}"),
    }
}

#[tokio::test]
async fn every_notification_link_opens_the_alerts_page_after_sign_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, receiver) = spawn_receiver().await;
    let server = server(dir.path(), &base, "/slack");
    load(&server).await;
    let report = evaluate_and_deliver(&server).await;
    assert_eq!(report.delivered, 4);
    let captured = receiver.take();
    let all: Vec<String> = captured
        .iter()
        .flat_map(|(path, body)| links(path, body))
        .collect();
    assert_eq!(
        all.len(),
        5,
        "slack, pagerduty (2), webhook, alertmanager: {all:?}"
    );
    for link in all {
        let path = link
            .strip_prefix(DASHBOARD)
            .unwrap_or_else(|| panic!("{link} is not under the dashboard URL"));
        let (path, fragment) = path.split_once('#').unwrap_or((path, ""));
        assert_eq!(fragment, format!("rule-{RULE}"), "{link}");
        // Not signed in: the sign-in form, which then leads to the link.
        let (status, location, _) = get_page(&server, None, path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{link}");
        let location = location.expect("to the sign-in form");
        let next = location
            .split("next=")
            .nth(1)
            .expect("the link is remembered");
        let next = next
            .replace("%2F", "/")
            .replace("%3F", "?")
            .replace("%3D", "=")
            .replace("%26", "&")
            .replace("%25", "%");
        let (cookie, after) = sign_in(&server, &next).await;
        assert_eq!(after, path, "after sign-in the link opens");
        let (status, _, page) = get_page(&server, Some(&cookie), path).await;
        assert_eq!(status, StatusCode::OK, "{link}");
        assert!(
            page.contains(&format!(r#"id="rule-{RULE}""#)),
            "the fragment names an element of the page: {link}"
        );
        assert!(
            page.contains(&format!(r#"id="rule-{RULE}" class="rule-chart selected""#)),
            "the linked rule is marked: {}",
            page.split("<div class=\"rule-chart")
                .nth(1)
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect::<String>()
        );
    }
}

#[tokio::test]
async fn a_test_notification_reports_each_receivers_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, receiver) = spawn_receiver().await;
    let server = server(dir.path(), &base, "/slack-refuses");
    load(&server).await;
    let read = format!("Bearer {SHOP_READ}");
    let send = |key: Option<&str>, rule: &str| {
        let mut builder = Request::post(format!("/api/v1/projects/shop/alerts/test/{rule}/send"));
        if let Some(key) = key {
            builder = builder.header("authorization", key);
        }
        builder.body(Body::empty()).expect("request")
    };
    assert_eq!(
        call(&server, send(None, RULE)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&server, send(Some(&format!("Bearer {OTHER_READ}")), RULE))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&server, send(Some(&read), "Nope")).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, answer) = call(&server, send(Some(&read), RULE)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], false, "Slack refused: {answer}");
    let results = answer["results"].as_array().expect("results");
    let by = |channel: &str, action: &str| {
        results
            .iter()
            .find(|r| r["channel"] == channel && r["action"] == action)
            .unwrap_or_else(|| panic!("no {channel} {action} in {answer}"))
    };
    assert_eq!(results.len(), 5, "{answer}");
    assert_eq!(by("slack", "notify")["status"], 400);
    assert_eq!(by("slack", "notify")["body"], "invalid_token");
    assert_eq!(by("slack", "notify")["ok"], false);
    for (channel, action) in [
        ("pagerduty", "trigger"),
        ("pagerduty", "resolve"),
        ("webhook", "notify"),
        ("alertmanager", "notify"),
    ] {
        let result = by(channel, action);
        assert_eq!(result["status"], 202, "{result}");
        assert_eq!(result["ok"], true);
        assert_eq!(result["body"], "{\"status\":\"success\"}");
    }
    // Each receiver got it, marked as a test.
    let captured = receiver.take();
    assert_eq!(captured.len(), 5);
    for (path, body) in &captured {
        let text = body.to_string();
        match path.as_str() {
            "/slack-refuses" => assert!(text.contains("TEST"), "{text}"),
            "/pagerduty" => {
                if body["event_action"] == "trigger" {
                    assert!(
                        body["payload"]["summary"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("[TEST] ")),
                        "{text}"
                    );
                }
            }
            "/webhook" => assert_eq!(body["test"], true, "{text}"),
            "/am/api/v2/alerts" => {
                assert_eq!(body[0]["labels"]["valuetrace_test"], "true", "{text}")
            }
            other => panic!("unexpected {other}"),
        }
    }
    // Nothing else changed: no state, nothing in the outbox.
    {
        let engine = server.state.alert_engines.get("shop").expect("engine");
        let engine = engine.lock().expect("lock");
        assert!(engine.state.states.is_empty());
        assert!(engine.state.outbox.pending.is_empty());
    }
    // One per rule every few seconds.
    let (status, answer) = call(&server, send(Some(&read), RULE)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");

    // The page's button (another rule: only Slack), answered on the page.
    let (cookie, _) = sign_in(&server, "/p/shop/alerts").await;
    let button = |headers: &[(&str, &str)]| {
        let mut builder = Request::post("/p/shop/alerts/test?since=24h")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie);
        if !headers.iter().any(|(name, _)| *name == "host") {
            builder = builder.header("host", "valuetrace.example.com");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(Body::from("rule=ConversionRateLow"))
            .expect("request")
    };
    for cross_site in [
        &[("origin", "https://evil.example")][..],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ][..],
    ] {
        let (status, _, _) = call_full(&server, button(cross_site)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "cross-site posts are refused"
        );
    }
    assert!(receiver.take().is_empty());
    let (status, _, page) = call_full(
        &server,
        button(&[("origin", "https://valuetrace.example.com")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Test notification of ConversionRateLow"),
        "{page}"
    );
    assert!(page.contains("HTTP 400"), "{page}");
    assert!(page.contains("invalid_token"), "{page}");
    assert!(page.contains("Send a test notification"));
    assert_eq!(receiver.take().len(), 1);
    // Behind a proxy that rewrites Host, the browser's Sec-Fetch-Site still lets it through
    // (the rule was just tested: the page shows the API's "try again" answer).
    let (status, _, page) = call_full(
        &server,
        button(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://valuetrace.example.com"),
            ("host", "127.0.0.1:8080"),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("try again in"), "{page}");

    // A real notification Slack refuses: not retried, shown on the page with the answer.
    let report = evaluate_and_deliver(&server).await;
    assert_eq!(
        (report.delivered, report.rejected, report.failed),
        (3, 1, 0)
    );
    let (_, states) = call(
        &server,
        get_request(Some(&read), "/api/v1/projects/shop/alerts/states"),
    )
    .await;
    assert_eq!(states["outbox"]["rejected"], 1, "{states}");
    assert_eq!(states["outbox"]["pending"], 0);
    assert_eq!(
        states["outbox"]["rejections"][0]["error"],
        "HTTP 400: invalid_token"
    );
    server.state.dashboard.cache.clear();
    let (status, _, page) = get_page(&server, Some(&cookie), "/p/shop/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Delivery problems"), "{page}");
    assert!(page.contains("refused, not retried"));
    assert!(page.contains("HTTP 400: invalid_token"));
}

#[tokio::test]
async fn the_alerts_page_charts_each_rule_against_its_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, _receiver) = spawn_receiver().await;
    let server = server(dir.path(), &base, "/slack");
    load(&server).await;
    let read = format!("Bearer {SHOP_READ}");
    let (status, series) = call(
        &server,
        get_request(
            Some(&read),
            &format!("/api/v1/projects/shop/alerts/series/{RULE}?since=1h&points=12"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{series}");
    let line = &series["series"][0];
    assert_eq!(line["bounds"], json!([{"name": "< 94", "value": 94.0}]));
    let points = line["points"].as_array().expect("points");
    assert_eq!(points.len(), 12);
    assert_eq!(points.last().expect("last")[1], 80.0, "{series}");
    assert!(points[0][1].is_null(), "no data an hour ago");
    let (status, _) = call(
        &server,
        get_request(
            Some(&read),
            &format!("/api/v1/projects/shop/alerts/series/{RULE}?points=1000"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (cookie, _) = sign_in(&server, "/p/shop/alerts").await;
    let (status, _, page) = get_page(&server, Some(&cookie), "/p/shop/alerts?since=1h").await;
    assert_eq!(status, StatusCode::OK);
    for rule in [RULE, "ConversionRateLow"] {
        assert!(
            page.contains(&format!(
                r#"aria-label="{rule}: value against its threshold""#
            )),
            "{rule}: {page}"
        );
    }
    assert!(page.contains("threshold &lt; 94"), "{page}");
    assert!(page.contains("threshold &lt; 50"));
}
