//! `valuetrace demo` end to end: the real binary backfills history through the ingest API, and
//! the endpoints API then answers for at least 30 routes with requests, error rates and latency.

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
