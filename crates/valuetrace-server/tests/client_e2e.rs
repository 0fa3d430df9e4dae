//! End to end: an axum app instrumented with the client middleware, under load from several
//! threads, against a real server. Raw events are sampled, yet the server's endpoint health
//! equals the load generator's own counts exactly, because they come from the client's
//! aggregates.

mod common;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use common::{LiveServer, SHOP_INGEST, SHOP_READ, http, two_projects};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;
use valuetrace_client::layer::{Identity, header};
use valuetrace_client::{Client, ClientConfig};

/// One request to the app with the caller's identity in headers; the status code.
fn request(app: std::net::SocketAddr, method: &str, path: &str, user: u64) -> u16 {
    let mut stream = std::net::TcpStream::connect(app).expect("connect to the app");
    let plan = ["free", "pro", "enterprise"][(user % 3) as usize];
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: app\r\nx-user-id: user-{user}\r\nx-plan: {plan}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line")
}

fn app(client: &Client) -> Router {
    Router::new()
        .route("/api/items/{id}", get(|| async { "an item" }))
        .route(
            "/api/items/{id}/reviews",
            get(|| async { StatusCode::NOT_FOUND }),
        )
        .route("/api/health", get(|| async { "ok" }))
        .route("/api/payments", post(|| async { "paid" }))
        .route(
            "/api/recommendations",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route_layer(client.layer())
}

/// (method, path) of request `i`: a mix of routes and status classes.
fn pick(i: u64) -> (&'static str, String) {
    match i % 10 {
        0..=3 => ("GET", format!("/api/items/{}", i % 97)),
        4 => ("GET", format!("/api/items/{}/reviews", i % 13)),
        5 | 6 => ("GET", "/api/health".into()),
        7 => ("POST", "/api/payments".into()),
        _ => ("GET", "/api/recommendations".into()),
    }
}

fn template(path: &str) -> &'static str {
    if path.ends_with("/reviews") {
        "/api/items/{id}/reviews"
    } else if path.starts_with("/api/items/") {
        "/api/items/{id}"
    } else if path == "/api/health" {
        "/api/health"
    } else if path == "/api/payments" {
        "/api/payments"
    } else {
        "/api/recommendations"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_health_equals_the_load_generators_counts_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LiveServer::start(two_projects(dir.path())).await;
    let collector = format!("http://{}", server.address);
    let mut config = ClientConfig::new(&collector, SHOP_INGEST, "shop");
    config.sender.flush_interval = Duration::from_millis(200);
    config.sender.batch_size = 200;
    let client = Client::start(config, |headers, _| Identity {
        user_id: header(headers, "x-user-id"),
        plan: header(headers, "x-plan"),
        ..Identity::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app_address = listener.local_addr().expect("address");
    let serving = tokio::spawn(axum::serve(listener, app(&client)).into_future());

    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 1_000;
    let expected = tokio::task::spawn_blocking(move || {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut counts: BTreeMap<(String, u16), u64> = BTreeMap::new();
                    for n in 0..PER_THREAD {
                        let i = t * PER_THREAD + n;
                        let (method, path) = pick(i);
                        let status = request(app_address, method, &path, i % 211);
                        let key = (format!("{method} {}", template(&path)), status / 100);
                        *counts.entry(key).or_default() += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut all: BTreeMap<(String, u16), u64> = BTreeMap::new();
        for worker in workers {
            for (key, n) in worker.join().expect("load thread") {
                *all.entry(key).or_default() += n;
            }
        }
        all
    })
    .await
    .expect("load");
    serving.abort();
    let stats = tokio::task::spawn_blocking(move || client.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let total = THREADS * PER_THREAD;
    assert_eq!(
        stats.dropped_queue_full + stats.dropped_undeliverable,
        0,
        "{stats:?}"
    );
    assert!(
        stats.enqueued < total * 3 / 5,
        "raw events are sampled: {} of {total} sent raw",
        stats.enqueued
    );

    let address = server.address;
    let body = tokio::task::spawn_blocking(move || {
        let (status, _, body) = http(
            address,
            "GET",
            "/api/v1/projects/shop/endpoints?since=1h&limit=100",
            Some(SHOP_READ),
            b"",
        )
        .expect("query");
        assert_eq!(status, 200, "{body}");
        body
    })
    .await
    .expect("query");
    let answer: Value = serde_json::from_str(&body).expect("json");
    let mut got: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for row in answer["endpoints"].as_array().expect("rows") {
        let requests = row["requests"].as_u64().expect("requests");
        let rate = |field: &str| (row[field].as_f64().unwrap_or(0.0) * requests as f64).round();
        got.insert(
            format!(
                "{} {}",
                row["method"].as_str().unwrap(),
                row["route"].as_str().unwrap()
            ),
            (
                requests,
                rate("client_error_rate") as u64,
                rate("server_error_rate") as u64,
            ),
        );
    }
    let mut want: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for ((endpoint, class), n) in &expected {
        let slot = want.entry(endpoint.clone()).or_default();
        slot.0 += n;
        match class {
            4 => slot.1 += n,
            5 => slot.2 += n,
            _ => {}
        }
    }
    assert_eq!(got, want, "server health vs the load generator's counts");
    assert_eq!(got.values().map(|v| v.0).sum::<u64>(), total);
    server.stop().await;
}

/// Issue 18 point 16: a batch of which the server stores nothing answers 400; the Rust sender
/// drops it at once (counted as dropped), never retries it, keeps its breaker closed, and the
/// next good batch goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wholly_rejected_batch_is_dropped_once_not_retried() {
    use std::sync::atomic::Ordering;
    use valuetrace_client::queue::bounded;
    use valuetrace_client::sender::{SenderConfig, spawn};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LiveServer::start(two_projects(dir.path())).await;
    let mut config = SenderConfig::new(&format!("http://{}", server.address), SHOP_INGEST);
    config.batch_size = 5;
    config.flush_interval = Duration::from_millis(10);
    config.max_retries = 3;
    config.backoff_base_ms = 1;
    let now = valuetrace_store::wall_clock_ms();
    let call = |i: u64, route: &str| valuetrace_model::ApiCall {
        schema_version: 1,
        event_id: format!("rejected-batch-{i}"),
        timestamp: now,
        service: "shop".into(),
        method: "GET".into(),
        route: route.into(),
        status: 200,
        latency_ms: 3.0,
        ..valuetrace_model::ApiCall::default()
    };
    let (producer, receiver, _) = bounded(100);
    // Raw ids instead of route templates: every event is rejected.
    for i in 0..5 {
        producer.push(call(i, &format!("/api/orders/{}", 100_000 + i)));
    }
    let sender = spawn(receiver, config);
    let stats = sender.stats.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.dropped_events.load(Ordering::Relaxed) < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    assert_eq!(stats.sent_events.load(Ordering::Relaxed), 0);
    assert!(!stats.breaker_open.load(Ordering::Relaxed));
    for i in 5..10 {
        producer.push(call(i, "/api/orders/{id}"));
    }
    while stats.sent_events.load(Ordering::Relaxed) < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the good batch was not sent"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    tokio::task::spawn_blocking(move || sender.shutdown(Duration::from_secs(1)))
        .await
        .expect("shutdown");
    server.stop().await;
}
