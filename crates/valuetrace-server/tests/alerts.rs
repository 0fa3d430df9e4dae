//! The alerts API end to end through the router, over events ingested by `POST /v1/batch`:
//! rules, dry run, states and history after an evaluation, silences, the catalog, orphans, the
//! per-project Prometheus exposition (scrape token) and the server's own `/metrics`, both
//! checked by promtool when it is installed.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use valuetrace_server::Server;
use valuetrace_server::config::Config;

const NOW: i64 = 1_795_256_130_123;
const SCRAPE: &str = "vt_scrape_shop_token";

const PROJECT: &str = r#"
id = "shop"

[[metrics]]
name = "checkout_requests_total"
description = "Checkout calls"
kind = "count"
select = { route = "/api/checkout", method = "POST" }
unit = "requests"
owner = "payments"
labels = ["route", "status_class"]

[[metrics]]
name = "payment_conversion_rate_percent"
kind = "ratio"
numerator = { outcome = "purchase" }
denominator = { route = "/api/checkout", method = "POST" }
scale = 100
unit = "percent"
owner = "payments"
criticality = "high"
channels = ["payments-hook"]

[[metrics]]
name = "refund_requested_total"
kind = "count"
select = { outcome = "refund_requested" }
unit = "events"
owner = "support"

[alerts]
dry_run = true
dashboard_url = "https://valuetrace.example.com"

[[alerts.channels]]
name = "payments-hook"
kind = "webhook"
url = "https://hooks.example.com/valuetrace"
secret = "s3cret"

[[alerts.rules]]
name = "ConversionRateDegrade"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 94
window = "5m"
severity = "critical"
"#;

fn server(dir: &std::path::Path) -> Server {
    let mut project: valuetrace_server::config::ProjectConfig =
        toml::from_str(PROJECT).expect("project parses");
    project.ingest_key_hashes = vec![valuetrace_server::auth::key_hash_string(SHOP_INGEST)];
    project.read_key_hashes = vec![valuetrace_server::auth::key_hash_string(SHOP_READ)];
    project.alerts.scrape_token_hashes = vec![valuetrace_server::auth::key_hash_string(SCRAPE)];
    let config = Config {
        data_dir: dir.to_owned(),
        projects: vec![
            project,
            common::project("other", &[OTHER_INGEST], &[OTHER_READ]),
        ],
        ..Config::default()
    };
    Server::open_with_clock(config, Arc::new(|| NOW)).expect("server")
}

/// 50 checkouts (5 of them 503) and 40 purchases in the last three minutes.
fn events() -> Vec<Value> {
    let mut events = Vec::new();
    for i in 0..50 {
        events.push(json!({
            "type": "api_call", "schema_version": 1, "event_id": format!("c-{i}"),
            "timestamp": NOW - 180_000 + i * 1000, "service": "shop", "method": "POST",
            "route": "/api/checkout", "status": if i < 5 { 503 } else { 200 }, "latency_ms": 80.0,
            "user_id": format!("u-{i}")
        }));
    }
    for i in 0..40 {
        events.push(json!({
            "type": "outcome", "schema_version": 1, "event_id": format!("o-{i}"),
            "timestamp": NOW - 170_000 + i * 1000, "name": "purchase", "user_id": format!("u-{i}")
        }));
    }
    events
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn promtool_accepts(text: &str) {
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("VALUETRACE_REQUIRE_PROMTOOL").is_none(),
            "promtool is required"
        );
        eprintln!("skipped: promtool not installed");
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn alerts_api_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let (status, answer) = call(
        &server,
        batch_request(Some(&bearer(SHOP_INGEST)), &events()),
    )
    .await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (StatusCode::OK, Some(90)),
        "{answer}"
    );
    let read = bearer(SHOP_READ);

    let (status, rules) = call(
        &server,
        get_request(Some(&read), "/api/v1/projects/shop/alerts/rules"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rules["rules"][0]["rule"]["name"], "ConversionRateDegrade");
    assert_eq!(rules["rules"][0]["channels"], json!(["payments-hook"]));
    assert!(
        rules["channels"][0].get("secret").is_none(),
        "secrets are not shown"
    );

    // Dry run: 40 purchases over 50 checkouts = 80% < 94%.
    let request = Request::post("/api/v1/projects/shop/alerts/test/ConversionRateDegrade")
        .header("authorization", &read)
        .body(Body::empty())
        .expect("request");
    let (status, dry) = call(&server, request).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["observations"][0]["active"], true);
    assert_eq!(dry["observations"][0]["value"], 80.0);
    let payload: Value =
        serde_json::from_str(dry["payloads"][0][1]["body"].as_str().expect("body")).expect("json");
    assert_eq!(payload["alerts"][0]["rule"], "ConversionRateDegrade");
    let (status, _) = call(
        &server,
        Request::post("/api/v1/projects/shop/alerts/test/Nope")
            .header("authorization", &read)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // One evaluation as the server's loop does it: firing (for = 0), in states and history.
    let state = server.state.clone();
    let engine = state.alert_engines.get("shop").expect("engine");
    let alerts = state.live().projects["shop"].alerts.clone();
    let report = engine.lock().expect("lock").evaluate(
        &valuetrace_server::alerts_api::source(&state, NOW),
        &alerts,
        "shop",
        NOW,
    );
    assert_eq!(report.notices.len(), 1);
    let (_, states) = call(
        &server,
        get_request(
            Some(&read),
            "/api/v1/projects/shop/alerts/states?phase=firing",
        ),
    )
    .await;
    assert_eq!(
        states["states"][0]["rule"], "ConversionRateDegrade",
        "{states}"
    );
    assert_eq!(states["states"][0]["value"], 80.0);
    let (_, history) = call(
        &server,
        get_request(Some(&read), "/api/v1/projects/shop/alerts/history"),
    )
    .await;
    // `for = 0`: straight from inactive to firing in one evaluation.
    assert_eq!(history["transitions"][0]["from"], "inactive");
    assert_eq!(history["transitions"][0]["to"], "firing");

    // Silences: add, list, remove.
    let request = Request::post("/api/v1/projects/shop/alerts/silences")
        .header("authorization", &read)
        .body(Body::from(json!({"rule": "ConversionRateDegrade", "ends_at": NOW + 3_600_000, "comment": "provider maintenance"}).to_string()))
        .expect("request");
    let (status, created) = call(&server, request).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, silences) = call(
        &server,
        get_request(Some(&read), "/api/v1/projects/shop/alerts/silences"),
    )
    .await;
    assert_eq!(silences["silences"][0]["comment"], "provider maintenance");
    let request = Request::delete(format!("/api/v1/projects/shop/alerts/silences/{id}"))
        .header("authorization", &read)
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&server, request).await.1["removed"], id.as_str());
    let request = Request::post("/api/v1/projects/shop/alerts/silences")
        .header("authorization", &read)
        .body(Body::from(r#"{"ends_at": 1}"#))
        .expect("request");
    assert_eq!(call(&server, request).await.0, StatusCode::BAD_REQUEST);

    // Catalog and orphans: nobody sends refund_requested.
    let (_, catalog) = call(
        &server,
        get_request(Some(&read), "/api/v1/projects/shop/metrics/catalog"),
    )
    .await;
    assert_eq!(catalog["metrics"].as_array().map(Vec::len), Some(3));
    let (_, orphans) = call(
        &server,
        get_request(Some(&read), "/api/v1/projects/shop/metrics/orphans"),
    )
    .await;
    let names: Vec<&str> = orphans["orphans"]
        .as_array()
        .expect("orphans")
        .iter()
        .filter_map(|o| o["metric"].as_str())
        .collect();
    assert_eq!(names, vec!["refund_requested_total"]);

    // The exposition for the scrape token (and the read key), not for another project's key.
    let (status, text) = call_text(
        &server,
        get_request(Some(&bearer(SCRAPE)), "/api/v1/projects/shop/metrics"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("checkout_requests_total{route=\"/api/checkout\",status_class=\"5xx\"} 5\n"),
        "{text}"
    );
    assert!(
        text.contains("payment_conversion_rate_percent 80\n"),
        "{text}"
    );
    promtool_accepts(&text);
    assert_eq!(
        call_text(
            &server,
            get_request(Some(&read), "/api/v1/projects/shop/metrics")
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call_text(
            &server,
            get_request(Some(&bearer(OTHER_READ)), "/api/v1/projects/shop/metrics")
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call_text(&server, get_request(None, "/api/v1/projects/shop/metrics"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call_text(
            &server,
            get_request(Some(&bearer(SCRAPE)), "/api/v1/projects/shop/alerts/rules")
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "a scrape token reads nothing else"
    );
    assert_eq!(
        call_text(
            &server,
            get_request(
                Some(&bearer(OTHER_READ)),
                "/api/v1/projects/shop/alerts/states"
            )
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // The server's own /metrics passes promtool too.
    let (status, own) = call_text(&server, get_request(None, "/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    promtool_accepts(&own);
}

#[test]
fn bad_alert_config_names_the_field() {
    let mut project: valuetrace_server::config::ProjectConfig =
        toml::from_str(PROJECT).expect("project parses");
    project.metrics[0].name = "CheckoutRequests".into();
    project.alerts.rules[0].metric = Some("nope_percent".into());
    project.alerts.channels[0].url = Some("http://169.254.169.254/latest".into());
    project.alerts.scrape_token_hashes = vec!["plain-token".into()];
    let config = Config {
        projects: vec![project],
        ..Config::default()
    };
    let problems = config.validate().expect_err("invalid");
    for expected in [
        "projects[0] (shop).metrics[0] (CheckoutRequests).name:",
        "projects[0] (shop).alerts.rules[0] (ConversionRateDegrade).metric: `nope_percent`",
        "projects[0] (shop).alerts.channels[0] (payments-hook).url:",
        "projects[0] (shop).alerts.scrape_token_hashes: `plain-token`",
    ] {
        assert!(
            problems.contains(expected),
            "missing `{expected}` in:\n{problems}"
        );
    }
}
