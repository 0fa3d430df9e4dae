//! The client middleware's sender against a real server on a real socket: every event pushed is
//! stored exactly once after a flush on shutdown, and with the collector gone the host's pushes
//! never block while the breaker opens and drops are counted.

mod common;

use common::{LiveServer, SHOP_INGEST, SHOP_READ, http, total_requests, two_projects};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use valuetrace_client::queue::bounded;
use valuetrace_client::sender::{SenderConfig, spawn};
use valuetrace_model::ApiCall;

fn call(i: u64, now: i64) -> ApiCall {
    ApiCall {
        schema_version: 1,
        event_id: format!("client-{i}"),
        timestamp: now - 60_000,
        service: "shop".into(),
        method: "GET".into(),
        route: if i.is_multiple_of(3) {
            "/api/items/{id}"
        } else {
            "/api/search"
        }
        .into(),
        status: if i.is_multiple_of(10) { 503 } else { 200 },
        latency_ms: (i % 97) as f64,
        user_id: Some(format!("user-{}", i % 17)),
        ..Default::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pushed_event_reaches_the_server_once_after_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LiveServer::start(two_projects(dir.path())).await;
    let address = server.address;
    let total = tokio::task::spawn_blocking(move || {
        let (producer, receiver, counters) = bounded(10_000);
        let mut config = SenderConfig::new(&format!("http://{address}"), SHOP_INGEST);
        config.batch_size = 100;
        config.flush_interval = Duration::from_millis(50);
        let sender = spawn(receiver, config);
        let now = now_ms();
        for i in 0..1_234 {
            assert!(producer.push(call(i, now)));
        }
        let stats = sender.stats.clone();
        sender.shutdown(Duration::from_secs(10));
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(stats.sent_events.load(Ordering::Relaxed), 1_234);
        assert!(stats.sent_batches.load(Ordering::Relaxed) >= 13);
        let (status, _, body) = http(
            address,
            "GET",
            "/api/v1/projects/shop/endpoints?since=1h&limit=100",
            Some(SHOP_READ),
            b"",
        )
        .expect("query");
        assert_eq!(status, 200, "{body}");
        total_requests(&body)
    })
    .await
    .expect("blocking part");
    assert_eq!(total, 1_234);
    server.stop().await;
}

#[test]
fn with_the_collector_gone_pushes_never_block_and_the_breaker_opens() {
    // A port nobody listens on.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let (producer, receiver, counters) = bounded(1_000);
    let mut config = SenderConfig::new(&format!("http://{address}"), SHOP_INGEST);
    config.batch_size = 10;
    config.flush_interval = Duration::from_millis(10);
    config.max_retries = 1;
    config.backoff_base_ms = 1;
    config.breaker_failures = 3;
    config.breaker_cool_down_ms = 60_000;
    let sender = spawn(receiver, config);
    let now = now_ms();
    let started = Instant::now();
    for i in 0..5_000 {
        producer.push(call(i, now));
    }
    // 5,000 non-blocking pushes take well under a second even with the collector down.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sender.stats.breaker_open.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the breaker never opened");
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = sender.stats.clone();
    sender.shutdown(Duration::from_secs(5));
    let pushed =
        counters.enqueued.load(Ordering::Relaxed) + counters.dropped.load(Ordering::Relaxed);
    assert_eq!(pushed, 5_000);
    assert_eq!(stats.sent_events.load(Ordering::Relaxed), 0);
    assert!(stats.dropped_events.load(Ordering::Relaxed) > 0);
    assert!(stats.retries.load(Ordering::Relaxed) >= 1);
}
