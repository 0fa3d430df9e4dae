//! Journeys and experiments over HTTP: events go in through `POST /v1/batch`, funnels, paths,
//! retention, time to first value, churn risk and experiments come out of
//! `/api/v1/projects/{p}/...`, and bad parameters get a 400 that names them.

mod common;

use axum::http::StatusCode;
use common::{SHOP_INGEST, SHOP_READ, batch_request, call, get_request, project};
use serde_json::{Value, json};
use std::sync::Arc;
use valuetrace_server::Server;
use valuetrace_server::config::Config;

const NOW: i64 = 1_790_000_000_000;
const MIN: i64 = 60_000;

fn server(dir: &std::path::Path) -> Server {
    let config = Config {
        data_dir: dir.to_owned(),
        projects: vec![project("shop", &[SHOP_INGEST], &[SHOP_READ])],
        ..Config::default()
    };
    Server::open_with_clock(config, Arc::new(|| NOW)).expect("server")
}

fn visit(id: &str, user: &str, variant: &str, t: i64, route: &str, latency: f64) -> Value {
    let (method, route) = route.split_once(' ').expect("METHOD /route");
    json!({
        "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": t,
        "service": "shop", "method": method, "route": route, "status": 200,
        "latency_ms": latency, "user_id": user, "session_id": format!("s-{user}"),
        "account_id": format!("acct-{user}"), "plan": "pro",
        "experiments": {"reco": variant}
    })
}

/// Four users: two control, two ml_v2; everyone browses, three add to cart, two check out and buy.
fn events() -> Vec<Value> {
    let t0 = NOW - 120 * MIN;
    let mut events = Vec::new();
    let users = [
        ("u1", "control", 3),
        ("u2", "control", 1),
        ("u3", "ml_v2", 3),
        ("u4", "ml_v2", 2),
    ];
    for (i, (user, variant, steps)) in users.iter().enumerate() {
        let t = t0 + i as i64 * 10 * MIN;
        let journey = ["GET /api/products", "POST /api/cart", "POST /api/checkout"];
        for (k, route) in journey.iter().take(*steps).enumerate() {
            let latency = if *variant == "ml_v2" { 150.0 } else { 100.0 };
            events.push(visit(
                &format!("{user}-{k}"),
                user,
                variant,
                t + k as i64 * MIN,
                route,
                latency,
            ));
        }
        if *steps == 3 {
            events.push(json!({"type": "outcome", "schema_version": 1,
                "event_id": format!("{user}-buy"), "timestamp": t + 5 * MIN, "name": "purchase",
                "user_id": user, "session_id": format!("s-{user}"), "value": 50.0}));
        }
    }
    events
}

async fn ask(server: &Server, path: &str) -> (StatusCode, Value) {
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
async fn journey_answers_follow_ingested_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let (status, body) = call(
        &server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &events()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, funnel) = ask(
        &server,
        "funnel?since=1d&steps=GET%20%2Fapi%2Fproducts,POST%20%2Fapi%2Fcart,POST%20%2Fapi%2Fcheckout&window=1h",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{funnel}");
    let entered: Vec<u64> = funnel["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["entered"].as_u64().expect("entered"))
        .collect();
    assert_eq!(entered, vec![4, 3, 2]);
    assert_eq!(funnel["steps"][0]["went_instead"][0]["event"], "(left)");

    let (status, by_plan) = ask(
        &server,
        "funnel?since=1d&steps=GET%20%2Fapi%2Fproducts,outcome:purchase&by=plan&per=session",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_plan}");
    assert_eq!(by_plan["groups"][0]["group"], "pro");
    assert_eq!(by_plan["steps"][1]["entered"], 2);

    let (status, paths) = ask(
        &server,
        "paths?since=1d&start=GET%20%2Fapi%2Fproducts&depth=3",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paths}");
    assert_eq!(paths["actors"], 4);
    assert_eq!(paths["tree"]["children"][0]["event"], "POST /api/cart");
    assert_eq!(paths["tree"]["children"][0]["actors"], 3);

    let (status, retention) = ask(&server, "retention?since=1d&period=day&periods=2").await;
    assert_eq!(status, StatusCode::OK, "{retention}");
    assert_eq!(retention["cohorts"][0]["size"], 4);

    let (status, ttv) = ask(&server, "ttv?since=1d").await;
    assert_eq!(status, StatusCode::OK, "{ttv}");
    assert_eq!(
        (ttv["new_actors"].as_u64(), ttv["reached"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(ttv["p50_ms"], 5 * MIN);

    let (status, churn) = ask(&server, "churn-risk?recent=1d&baseline=2d&min_calls=1").await;
    assert_eq!(status, StatusCode::OK, "{churn}");
    assert_eq!(churn["per"], "account");

    let (status, list) = ask(&server, "experiments?since=1d").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["experiments"]["reco"], json!(["control", "ml_v2"]));

    let (status, experiment) = ask(&server, "experiment?since=1d&experiment=reco").await;
    assert_eq!(status, StatusCode::OK, "{experiment}");
    assert_eq!(experiment["control"], "control");
    assert_eq!(experiment["variants"][1]["exposed"], 2);
    assert_eq!(experiment["correction"], "holm");
}

#[tokio::test]
async fn bad_journey_parameters_get_a_400_that_names_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    for (path, needle) in [
        ("funnel?since=1d", "`steps` is required"),
        ("funnel?steps=GET%20%2Fa", "2 to 10 steps"),
        ("funnel?steps=GET%20%2Fa,checkout", "steps[1]"),
        (
            "funnel?steps=GET%20%2Fa,GET%20%2Fb&window=soon",
            "`window=soon`",
        ),
        (
            "funnel?steps=GET%20%2Fa,GET%20%2Fb&order=loose",
            "sequential or strict",
        ),
        (
            "funnel?steps=GET%20%2Fa,GET%20%2Fb&per=team",
            "user, session or account",
        ),
        ("paths?depth=3", "exactly one of `start`"),
        ("paths?start=GET%20%2Fa&depth=40", "between 2 and 10"),
        ("retention?period=year", "day, week or month"),
        ("retention?periods=x", "must be a number"),
        ("ttv?cohort=month", "day or week"),
        ("churn-risk?threshold=2", "(0, 1]"),
        ("experiment?since=1d", "`experiment` is required"),
        ("experiment?since=1d&experiment=nope", "experiments seen"),
        (
            "funnel?steps=GET%20%2Fa,GET%20%2Fb&colour=red",
            "unknown parameter `colour`",
        ),
    ] {
        let (status, body) = ask(&server, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body.to_string().contains(needle), "{path}: {body}");
    }
}
