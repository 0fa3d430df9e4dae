//! The business answers over HTTP: events go in through `POST /v1/batch` (pseudonymized), the
//! answers come out of `/api/v1/projects/{p}/{answer}` with the project's analysis settings, and
//! bad parameters get a 400 that names them.

mod common;

use axum::http::StatusCode;
use common::{SHOP_INGEST, SHOP_READ, batch_request, call, get_request, project};
use serde_json::json;
use std::sync::Arc;
use valuetrace_insights::config::{CostRule, GapRule};
use valuetrace_server::Server;
use valuetrace_server::config::Config;

const NOW: i64 = 1_790_000_000_000;
const MIN: i64 = 60_000;

fn server(dir: &std::path::Path) -> Server {
    let mut shop = project("shop", &[SHOP_INGEST], &[SHOP_READ]);
    shop.analysis.costs.push(CostRule {
        per_request: 0.5,
        ..CostRule::default()
    });
    shop.analysis.gaps.push(GapRule {
        name: "webhook".into(),
        start: "POST /api/payments".into(),
        end: "outcome:payment_confirmed".into(),
        within: "10m".into(),
        match_by: "property:order_id".into(),
    });
    let config = Config {
        data_dir: dir.to_owned(),
        projects: vec![shop],
        ..Config::default()
    };
    Server::open_with_clock(config, Arc::new(|| NOW)).expect("server")
}

fn call_event(
    id: &str,
    t: i64,
    method: &str,
    route: &str,
    status: u16,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut event = json!({
        "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": t,
        "service": "shop", "method": method, "route": route, "status": status,
        "latency_ms": 100.0, "user_id": "alice", "session_id": "s-1", "plan": "pro"
    });
    for (k, v) in extra.as_object().expect("object") {
        event[k] = v.clone();
    }
    event
}

async fn ask(server: &Server, path: &str) -> (StatusCode, serde_json::Value) {
    call(
        server,
        get_request(
            Some(&format!("Bearer {SHOP_READ}")),
            &format!("/api/v1/projects/shop/{path}"),
        ),
    )
    .await
}

#[tokio::test]
async fn answers_follow_ingested_events_and_project_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let t0 = NOW - 60 * MIN;
    let events = vec![
        call_event("c1", t0, "GET", "/api/products", 200, json!({})),
        call_event(
            "c2",
            t0 + MIN,
            "POST",
            "/api/payments",
            201,
            json!({"value": 80.0, "properties": {"order_id": "o-1"}}),
        ),
        call_event(
            "c3",
            t0 + 2 * MIN,
            "POST",
            "/api/payments",
            502,
            json!({"value": 40.0, "error_type": "upstream_error", "properties": {"order_id": "o-2"}}),
        ),
        json!({"type": "outcome", "schema_version": 1, "event_id": "o1", "timestamp": t0 + 3 * MIN,
               "name": "purchase", "user_id": "alice", "session_id": "s-1", "value": 80.0}),
        json!({"type": "outcome", "schema_version": 1, "event_id": "o2", "timestamp": t0 + 4 * MIN,
               "name": "payment_confirmed", "user_id": "alice", "properties": {"order_id": "o-1"}}),
    ];
    let (status, body) = call(
        &server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &events),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 5);

    let (status, impact) = ask(&server, "impact?since=2h").await;
    assert_eq!(status, StatusCode::OK, "{impact}");
    // The purchase (80) was touched by GET /api/products and POST /api/payments: 40 each.
    let rows = impact["rows"].as_array().expect("rows");
    let payments = rows
        .iter()
        .find(|r| r["endpoint"] == "POST /api/payments")
        .expect("payments");
    assert_eq!(payments["assisted_value"]["linear"], 40.0);
    assert_eq!(payments["direct_value"], 80.0);
    // 2 requests × 0.5 from the default cost rule.
    assert_eq!(payments["cost"], 1.0);
    assert_eq!(impact["attributed_outcome_value"], 80.0);
    assert_eq!(impact["active_users"], 1);

    let (status, first) = ask(&server, "impact?since=2h&model=first_touch").await;
    assert_eq!(status, StatusCode::OK);
    let products = first["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["endpoint"] == "GET /api/products")
        .cloned()
        .expect("row");
    assert_eq!(products["attributed_value"], 80.0);

    let (status, errors) = ask(&server, "errors?since=2h").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(errors["failed"], 1.0);
    assert_eq!(errors["value_at_risk"], 40.0);

    // o-1 was confirmed; o-2 failed (a 502 is not a start); no gap.
    let (status, gaps) = ask(&server, "gaps?since=2h").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gaps["gaps"][0]["started"], 1);
    assert_eq!(gaps["gaps"][0]["completed"], 1);

    let (status, by_plan) = ask(&server, "impact?since=2h&by=plan").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        by_plan["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["group"] == "pro")
    );

    let (status, latency) = ask(
        &server,
        "latency-conversion?since=2h&route=POST%20%2Fapi%2Fpayments&buckets=50,150",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{latency}");
    assert_eq!(latency["buckets"][1]["sessions"], 1);
    assert_eq!(latency["buckets"][1]["conversions"], 1);
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    for (path, words) in [
        ("impact?by=colour", "by=colour"),
        ("impact?model=magic", "attribution_model"),
        ("impact?window=soon", "window=soon"),
        ("impact?colour=red", "unknown parameter `colour`"),
        ("errors?direction=sideways", "direction=sideways"),
        ("latency-conversion", "`route` is required"),
        ("latency-conversion?route=%2Fa&buckets=500,100", "ascending"),
        ("latency-conversion?route=%2Fa&threshold=-1", "threshold"),
        (
            "gaps?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "before",
        ),
    ] {
        let (status, body) = ask(&server, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{path}: {message}");
    }
}
