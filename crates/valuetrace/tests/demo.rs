//! `valuetrace demo` end to end: the real binary backfills history through the ingest API, and
//! the endpoints API then answers for at least 30 routes with requests, error rates and latency;
//! every business answer of `valuetrace query` is non-trivial on the demo's traffic.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_backfills_through_the_api_and_answers_for_thirty_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_valuetrace"))
        .args([
            "demo",
            "--days",
            "2",
            "--seed",
            "7",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .env("VALUETRACE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let demo_file = data_dir.join("demo.json");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !demo_file.exists() {
        assert!(Instant::now() < deadline, "demo.json did not appear");
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the demo exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&demo_file).expect("read demo.json")).expect("json");
    let address: std::net::SocketAddr = demo["url"]
        .as_str()
        .expect("url")
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let key = demo["read_key"].as_str().expect("read key");
    let (status, body) = common::request(
        address,
        "GET",
        "/api/v1/projects/demo/endpoints?since=2d&limit=1000",
        Some(key),
        b"",
    )
    .expect("query");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    let rows = answer["endpoints"].as_array().expect("rows");
    let routes: std::collections::HashSet<&str> = rows
        .iter()
        .filter_map(|row| row["route"].as_str())
        .collect();
    assert!(
        routes.len() >= 30,
        "only {} routes: {routes:?}",
        routes.len()
    );
    let requests: u64 = rows
        .iter()
        .map(|row| row["requests"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        requests > 50_000,
        "two days of traffic should be > 50k calls, got {requests}"
    );
    assert!(
        rows.iter()
            .any(|row| row["server_error_rate"].as_f64().unwrap_or(0.0) > 0.0),
        "some endpoint has errors"
    );
    assert!(
        rows.iter().all(|row| row["p95_ms"].as_f64().is_some()),
        "every endpoint has latency"
    );
    assert!(
        rows.iter()
            .any(|row| row["provider"].as_str() == Some("stripe")),
        "outbound stripe calls are tracked"
    );
    assert!(
        rows.iter()
            .any(|row| row["value_sum"].as_f64().unwrap_or(0.0) > 0.0),
        "payments carry order value"
    );
    business_answers_are_plausible(demo["url"].as_str().expect("url"), key);
    journeys_are_plausible(demo["url"].as_str().expect("url"), key);
    // Ctrl-C (SIGINT) stops the demo cleanly.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "demo exited with {exit}");
    let mut output = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut output)
        .expect("stdout");
    assert!(
        output.contains("read key:") && output.contains("Top endpoints"),
        "{output}"
    );
}

/// Runs `valuetrace query <args> --json` against the demo and parses the answer.
fn query_json(url: &str, key: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_valuetrace"))
        .arg("query")
        .args(args)
        .args([
            "--since",
            "2d",
            "--json",
            "--url",
            url,
            "--key",
            key,
            "--project",
            "demo",
        ])
        .output()
        .expect("run valuetrace query");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "valuetrace query {args:?}: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

fn f(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

fn business_answers_are_plausible(url: &str, key: &str) {
    let impact = query_json(url, key, &["impact"]);
    let rows = impact["rows"].as_array().expect("impact rows");
    assert!(rows.len() >= 30, "{} impact rows", rows.len());
    let row = |endpoint: &str| {
        rows.iter()
            .find(|r| r["endpoint"] == endpoint)
            .unwrap_or_else(|| panic!("no impact row for {endpoint}"))
    };
    assert!(f(&row("POST /api/payments")["direct_value"]) > 0.0);
    assert!(f(&row("GET /api/recommendations")["assisted_value"]["linear"]) > 0.0);
    let linear: f64 = rows.iter().map(|r| f(&r["assisted_value"]["linear"])).sum();
    let attributed = f(&impact["attributed_outcome_value"]);
    assert!(
        (linear - attributed).abs() <= 1e-6 * attributed.max(1.0),
        "{linear} vs {attributed}"
    );
    let quadrants: std::collections::HashSet<&str> =
        rows.iter().filter_map(|r| r["quadrant"].as_str()).collect();
    assert!(quadrants.len() >= 3, "{quadrants:?}");
    assert!(
        rows.iter().all(|r| r["components"]["cost_basis"] == "cost"),
        "the demo has cost rules"
    );

    let errors = query_json(url, key, &["errors"]);
    let unknown = f(&errors["unknown_share"]);
    assert!(unknown > 0.0 && unknown < 0.5, "unknown share {unknown}");
    assert!(f(&errors["value_at_risk"]) > 0.0);
    assert!(
        errors["classes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["class"] == "payment_declined"))
    );

    let integrations = query_json(url, key, &["integrations", "--by", "plan"]);
    let providers = integrations["providers"].as_array().expect("providers");
    assert!(
        providers
            .iter()
            .any(|p| p["provider"] == "stripe" && f(&p["failures"]) > 0.0)
    );

    let gaps = query_json(url, key, &["gaps"]);
    let stripe = gaps["gaps"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "stripe_webhook"))
        .expect("stripe_webhook pair");
    assert!(
        f(&stripe["started"]) > 50.0 && f(&stripe["gaps"]) > 0.0,
        "{stripe}"
    );
    assert!(f(&stripe["completed"]) > f(&stripe["gaps"]), "{stripe}");

    let latency = query_json(
        url,
        key,
        &["latency-conversion", "--route", "POST /api/checkout"],
    );
    let sessions: f64 = latency["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| f(&b["sessions"]))
        .sum();
    assert!(sessions > 100.0, "{latency}");

    let scorecard = query_json(url, key, &["scorecard"]);
    assert!(scorecard["rows"].as_array().is_some_and(|r| r.len() >= 30));

    let priority = query_json(url, key, &["priority"]);
    let features = priority["features"].as_array().expect("features");
    assert_eq!(features.len(), 5);
    // Scores scale with the window's value: two days rank the features without reaching the
    // `high` threshold; the ranking itself must be there.
    assert!(
        features.iter().all(
            |f| ["high", "medium", "low"].contains(&f["recommendation"].as_str().unwrap_or(""))
        ) && f(&features[0]["score"]) > f(&features[4]["score"]),
        "{priority}"
    );

    // The tables print too.
    let output = Command::new(env!("CARGO_BIN_EXE_valuetrace"))
        .args([
            "query",
            "impact",
            "--since",
            "2d",
            "--url",
            url,
            "--key",
            key,
            "--project",
            "demo",
        ])
        .output()
        .expect("run valuetrace query impact");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && table.contains("POST /api/payments")
            && table.contains("quadrant"),
        "{table}"
    );
}

fn journeys_are_plausible(url: &str, key: &str) {
    let funnel = query_json(
        url,
        key,
        &[
            "funnel",
            "--step",
            "GET /api/products",
            "--step",
            "POST /api/cart/items",
            "--step",
            "POST /api/checkout",
        ],
    );
    let entered: Vec<f64> = funnel["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| f(&s["entered"]))
        .collect();
    assert!(
        entered[0] > 100.0
            && entered[0] > entered[1]
            && entered[1] > entered[2]
            && entered[2] > 0.0,
        "{funnel}"
    );
    // A clear drop at checkout, and somewhere the dropped went.
    assert!(
        f(&funnel["steps"][2]["dropped"]) > 0.2 * entered[1],
        "{funnel}"
    );
    assert!(
        !funnel["steps"][1]["went_instead"]
            .as_array()
            .expect("went")
            .is_empty()
    );

    let paths = query_json(
        url,
        key,
        &["paths", "--start", "GET /api/products", "--depth", "4"],
    );
    assert!(f(&paths["actors"]) > 100.0, "{paths}");
    assert!(
        paths["tree"]["children"]
            .as_array()
            .is_some_and(|c| c.len() >= 3),
        "{paths}"
    );

    let retention = query_json(
        url,
        key,
        &["retention", "--period", "day", "--periods", "2"],
    );
    let cohorts = retention["cohorts"].as_array().expect("cohorts");
    assert!(!cohorts.is_empty() && cohorts.iter().all(|c| f(&c["periods"][0]["rate"]) == 1.0));

    let ttv = query_json(url, key, &["ttv"]);
    assert!(f(&ttv["new_actors"]) > 0.0, "{ttv}");

    let churn = query_json(
        url,
        key,
        &["churn-risk", "--recent", "1d", "--baseline", "1d"],
    );
    assert!(churn["backtest"].is_object(), "{churn}");

    let experiment = query_json(url, key, &["experiment", "--experiment", "reco_algo"]);
    let variants = experiment["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 2, "{experiment}");
    assert!(
        variants.iter().all(|v| f(&v["exposed"]) > 50.0),
        "{experiment}"
    );
    // ml_v2 is slower on recommendations.
    let slower = experiment["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .find(|c| c["metric"] == "latency_p50" && c["endpoint"] == "GET /api/recommendations")
        .expect("p50 of recommendations");
    assert!(f(&slower["difference"]) > 0.0, "{slower}");

    let output = Command::new(env!("CARGO_BIN_EXE_valuetrace"))
        .args([
            "query",
            "funnel",
            "--since",
            "2d",
            "--step",
            "GET /api/products",
            "--step",
            "POST /api/checkout",
            "--url",
            url,
            "--key",
            key,
            "--project",
            "demo",
        ])
        .output()
        .expect("run valuetrace query funnel");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && table.contains("went to"),
        "{table}"
    );
}
