//! Golden answers: a fixed batch of events at a fixed clock, and the exact JSON the query API
//! answers. The files under `tests/golden/` are the API contract later features build on; when a
//! change is intended, regenerate them with `VALUETRACE_BLESS=1 cargo test -p valuetrace-server
//! --test golden` and review the diff.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::call;
use serde_json::{Value, json};
use std::path::PathBuf;

/// 2026-11-21T10:15:30.123Z.
const NOW: i64 = 1_795_256_130_123;
const INGEST: &str = "vt_ingest_golden";
const READ: &str = "vt_read_golden";

fn events() -> Vec<Value> {
    let mut events = Vec::new();
    let routes = [
        ("GET", "/api/products/{id}", "catalog"),
        ("POST", "/api/payments", "payments"),
        ("GET", "/api/search", "search"),
    ];
    for i in 0..120i64 {
        let (method, route, service) = routes[(i % 3) as usize];
        let status = match i % 20 {
            0 => 503,
            7 => 422,
            _ => 200,
        };
        let mut event = json!({
            "type": "api_call", "schema_version": 1, "event_id": format!("g-{i}"),
            "timestamp": NOW - 3 * 3_600_000 + i * 90_017,
            "service": service, "method": method, "route": route, "status": status,
            "latency_ms": 5.0 + (i * 37 % 400) as f64,
            "user_id": format!("user-{}", i % 23), "plan": if i % 4 == 0 { "pro" } else { "free" },
            "experiments": {"reco": if i % 2 == 0 { "control" } else { "ml_v2" }}
        });
        if route == "/api/payments" && status == 200 {
            event["value"] = json!(10.0 + (i % 7) as f64 * 5.5);
            event["currency"] = json!("EUR");
        }
        if status >= 500 {
            event["error_type"] = json!("upstream_timeout");
        }
        events.push(event);
    }
    events.push(json!({
        "type": "api_call", "schema_version": 1, "event_id": "g-out", "timestamp": NOW - 600_000,
        "service": "payments", "method": "POST", "route": "/v1/payment_intents", "status": 200,
        "latency_ms": 312.0, "direction": "outbound", "provider": "stripe"
    }));
    events
}

fn check_golden(name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).expect("serialize") + "\n";
    if std::env::var_os("VALUETRACE_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with VALUETRACE_BLESS=1", path.display()));
    assert_eq!(
        text,
        expected,
        "{name} differs from {}; if intended, re-bless",
        path.display()
    );
}

#[tokio::test]
async fn query_answers_match_the_golden_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::open_shop(dir.path(), NOW, INGEST, READ);
    let body = serde_json::to_vec(&events()).expect("serialize");
    let request = Request::post("/v1/batch")
        .header("authorization", format!("Bearer {INGEST}"))
        .body(Body::from(body))
        .expect("request");
    let (status, answer) = call(&server, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], json!(121));

    let queries = [
        ("endpoints", "/api/v1/projects/shop/endpoints?since=4h"),
        (
            "endpoints_pro_control",
            "/api/v1/projects/shop/endpoints?since=4h&plan=pro&variant=reco%3Acontrol&sort=p95",
        ),
        (
            "endpoints_outbound",
            "/api/v1/projects/shop/endpoints?since=4h&direction=outbound",
        ),
        (
            "timeseries_error_rate",
            "/api/v1/projects/shop/timeseries?since=4h&metric=error_rate&interval=1h",
        ),
        (
            "timeseries_p95_payments",
            "/api/v1/projects/shop/timeseries?since=4h&metric=p95&interval=1h&route=%2Fapi%2Fpayments",
        ),
        (
            "error_bad_metric",
            "/api/v1/projects/shop/timeseries?metric=cpu",
        ),
    ];
    for (name, uri) in queries {
        let request = Request::get(uri)
            .header("authorization", format!("Bearer {READ}"))
            .body(Body::empty())
            .expect("request");
        let (_, answer) = call(&server, request).await;
        check_golden(name, &answer);
    }
}
