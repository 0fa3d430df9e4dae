//! Overload and backpressure: a project over its rate gets 429, a server whose writer is behind
//! or whose in-flight budget is spent answers 503 with `Retry-After`, and under three times the
//! allowed load memory stays under the configured caps, nothing acknowledged is lost, and the
//! quiet project keeps its latency.

mod common;

use axum::http::StatusCode;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use valuetrace_server::Server;

const NOW: i64 = 1_795_256_130_123;

fn events(prefix: &str, count: usize, timestamp: i64) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| api_call(&format!("{prefix}-{i}"), timestamp))
        .collect()
}

fn bearer(key: &str) -> Option<String> {
    Some(format!("Bearer {key}"))
}

#[tokio::test]
async fn over_its_rate_a_project_gets_429_and_the_others_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = two_projects(dir.path());
    config.projects[0].events_per_second = Some(100.0);
    config.projects[0].burst_events = Some(300.0);
    let server = Server::open_with_clock(config, Arc::new(|| NOW)).expect("server");
    let shop = bearer(SHOP_INGEST);
    // The burst, then one batch of debt.
    for round in 0..2 {
        let batch = events(&format!("a{round}"), 200, NOW - 1000);
        let (status, body) = call_text(&server, batch_request(shop.as_deref(), &batch)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = call_full(
        &server,
        batch_request(shop.as_deref(), &events("b", 10, NOW - 1000)),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry_after: u64 = header(&headers, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    assert!(body.contains("\"code\":\"rate_limited\""), "{body}");
    assert!(body.contains("events_per_second"), "{body}");
    // The other project is not affected.
    let (status, body) = call_text(
        &server,
        batch_request(
            bearer(OTHER_INGEST).as_deref(),
            &events("c", 500, NOW - 1000),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let metrics = server.state.render_metrics();
    assert!(
        metrics.contains("valuetrace_ingest_rate_limited_requests_total{project=\"shop\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "valuetrace_ingest_requests_total{project=\"shop\",code=\"rate_limited\"} 1\n"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_writer_that_is_behind_answers_503_until_a_persist_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = two_projects(dir.path());
    config.storage.persist_max_rows = 100;
    config.storage.max_buffered_rows = 250;
    let server = Server::open_with_clock(config, Arc::new(|| NOW)).expect("server");
    let shop = bearer(SHOP_INGEST);
    let (status, _) = call_text(
        &server,
        batch_request(shop.as_deref(), &events("a", 300, NOW - 1000)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for key in [SHOP_INGEST, OTHER_INGEST] {
        let (status, headers, body) = call_full(
            &server,
            batch_request(bearer(key).as_deref(), &events("b", 1, NOW)),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            header(&headers, "retry-after").is_some(),
            "Retry-After missing"
        );
        assert!(
            body.contains("writer_behind") && body.contains("max_buffered_rows"),
            "{body}"
        );
    }
    server.state.pipeline.persist(NOW).expect("persist");
    let (status, body) = call_text(
        &server,
        batch_request(shop.as_deref(), &events("b", 1, NOW - 1000)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_noisy_project_cannot_take_the_whole_in_flight_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = two_projects(dir.path());
    config.limits.max_in_flight_bytes = 16 << 20;
    let server = Server::open_with_clock(config, Arc::new(|| NOW)).expect("server");
    // The noisy project holds its whole share (half the budget) in requests still running.
    let held = server
        .state
        .in_flight
        .reserve("shop", 8 << 20)
        .expect("shop's share");
    let (status, headers, body) = call_full(
        &server,
        batch_request(bearer(SHOP_INGEST).as_deref(), &events("a", 1, NOW)),
    )
    .await;
    let retry_after = header(&headers, "retry-after");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("in_flight_full") && body.contains("max_in_flight_bytes"),
        "{body}"
    );
    assert!(retry_after.is_some());
    let (status, body) = call_text(
        &server,
        batch_request(bearer(OTHER_INGEST).as_deref(), &events("b", 1, NOW - 1000)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "other still has its share: {body}");
    drop(held);
    let (status, _) = call_text(
        &server,
        batch_request(bearer(SHOP_INGEST).as_deref(), &events("c", 1, NOW - 1000)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_compressed_body_reserves_its_decoded_size_while_it_grows() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = two_projects(dir.path());
    config.limits.max_in_flight_bytes = 8 << 20;
    let server = Server::open_with_clock(config, Arc::new(|| NOW)).expect("server");
    // One event and 6 MiB of blank lines: small on the wire, 6 MiB decoded.
    let mut ndjson = serde_json::to_vec(&api_call("padded", NOW - 1000)).expect("json");
    ndjson.extend(std::iter::repeat_n(b'\n', 6 << 20));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&ndjson).expect("gzip");
    let gzipped = encoder.finish().expect("gzip");
    let request = || {
        axum::http::Request::post("/v1/batch")
            .header("authorization", format!("Bearer {OTHER_INGEST}"))
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .body(axum::body::Body::from(gzipped.clone()))
            .expect("request")
    };
    // Another request holds 4 MiB: the decoded 6 MiB do not fit next to it.
    let held = server
        .state
        .in_flight
        .reserve("shop", 4 << 20)
        .expect("reserve");
    let (status, headers, body) = call_full(&server, request()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("in_flight_full"), "{body}");
    assert!(header(&headers, "retry-after").is_some());
    assert_eq!(
        server.state.in_flight.in_use(),
        (4 << 20, 1),
        "released on refusal"
    );
    drop(held);
    // Alone, the same body is admitted even though it needs more than the budget.
    let (status, _, body) = call_full(&server, request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"accepted\":1"), "{body}");
    assert_eq!(server.state.in_flight.in_use(), (0, 0));
}

/// Peak resident memory of this process (the server runs in it), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

#[derive(Default)]
struct Tally {
    acknowledged: AtomicU64,
    rate_limited: AtomicU64,
    unavailable: AtomicU64,
    offered: AtomicU64,
}

/// Sends batches of `size` as fast as it can until `stop`; counts what came back.
fn noisy_client(
    address: std::net::SocketAddr,
    worker: usize,
    size: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let now = valuetrace_store::wall_clock_ms();
    let mut number = 0;
    while !stop.load(Ordering::Relaxed) {
        number += 1;
        let body = serde_json::to_vec(&events(&format!("n{worker}-{number}"), size, now))
            .expect("serialize");
        tally.offered.fetch_add(size as u64, Ordering::Relaxed);
        match http(address, "POST", "/v1/batch", Some(SHOP_INGEST), &body) {
            Ok((200, _, answer)) => {
                let answer: serde_json::Value = serde_json::from_str(&answer).expect("json");
                let accepted = answer["accepted"].as_u64().expect("accepted");
                tally.acknowledged.fetch_add(accepted, Ordering::Relaxed);
            }
            Ok((429, retry_after, _)) => {
                assert!(retry_after.is_some(), "429 without Retry-After");
                tally.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            Ok((503, retry_after, _)) => {
                assert!(retry_after.is_some(), "503 without Retry-After");
                tally.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, _, body)) => panic!("noisy client: {status} {body}"),
            Err(error) => panic!("noisy client: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_times_the_allowed_load_keeps_memory_bounded_loses_nothing_and_spares_the_quiet_project()
 {
    const RATE: f64 = 5_000.0;
    const BURST: f64 = 5_000.0;
    const SECONDS: f64 = 6.0;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = two_projects(dir.path());
    config.projects[0].events_per_second = Some(RATE);
    config.projects[0].burst_events = Some(BURST);
    config.limits.max_in_flight_bytes = 32 << 20;
    config.storage.persist_interval = "1s".into();
    config.storage.persist_max_rows = 20_000;
    config.storage.max_buffered_rows = 60_000;
    let server = LiveServer::start(config).await;
    let address = server.address;

    // The quiet project's latency alone.
    let quiet = |label: &'static str, rounds: usize| {
        tokio::task::spawn_blocking(move || {
            let now = valuetrace_store::wall_clock_ms();
            let mut latencies = Vec::new();
            for round in 0..rounds {
                let body = serde_json::to_vec(&events(&format!("q-{label}-{round}"), 20, now))
                    .expect("serialize");
                let start = Instant::now();
                let (status, _, answer) =
                    http(address, "POST", "/v1/batch", Some(OTHER_INGEST), &body).expect("quiet");
                latencies.push(start.elapsed());
                assert_eq!(status, 200, "quiet project refused: {answer}");
                std::thread::sleep(Duration::from_millis(40));
            }
            latencies.sort();
            latencies[latencies.len() * 95 / 100]
        })
    };
    let baseline = quiet("base", 20).await.expect("baseline");

    let rss_before = peak_rss();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let noisy: Vec<_> = (0..3)
        .map(|worker| {
            let (stop, tally) = (stop.clone(), tally.clone());
            std::thread::spawn(move || noisy_client(address, worker, 1000, stop, tally))
        })
        .collect();
    // Watch the caps while the load runs.
    let watcher = {
        let (stop, state) = (stop.clone(), server.state.clone());
        std::thread::spawn(move || {
            let (mut in_flight_peak, mut buffered_peak) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                in_flight_peak = in_flight_peak.max(state.in_flight.in_use().0);
                buffered_peak = buffered_peak.max(state.pipeline.store().buffered_rows());
                std::thread::sleep(Duration::from_millis(5));
            }
            (in_flight_peak, buffered_peak)
        })
    };
    let under_load = quiet("load", (SECONDS * 1000.0 / 60.0) as usize)
        .await
        .expect("quiet under load");
    stop.store(true, Ordering::Relaxed);
    for client in noisy {
        client.join().expect("noisy client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (in_flight_peak, buffered_peak) = watcher.join().expect("watcher");
    let rss_growth = peak_rss().saturating_sub(rss_before);

    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    let offered = tally.offered.load(Ordering::Relaxed);
    let allowed = RATE * elapsed + BURST;
    eprintln!(
        "offered {offered} events in {elapsed:.1} s ({:.1}x the allowed {allowed:.0}); acknowledged {acknowledged}; 429: {}, 503: {}; quiet p95 {baseline:?} alone, {under_load:?} under load; in-flight peak {in_flight_peak} B, buffered peak {buffered_peak} rows, peak RSS growth {} MiB",
        offered as f64 / allowed,
        tally.rate_limited.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        rss_growth >> 20
    );
    assert!(
        offered as f64 >= 3.0 * allowed,
        "the test must offer at least 3x the allowed load: offered {offered}, allowed {allowed:.0}"
    );
    // The limit holds: at most the rate, the burst, and one batch of debt per concurrent client.
    assert!(
        (acknowledged as f64) <= allowed + 3.0 * 1000.0,
        "acknowledged {acknowledged} > allowed {allowed:.0}"
    );
    assert!(tally.rate_limited.load(Ordering::Relaxed) > 0);
    assert!(in_flight_peak <= 32 << 20, "in-flight {in_flight_peak}");
    assert!(buffered_peak <= 60_000 + 1000, "buffered {buffered_peak}");
    assert!(
        rss_growth < 512 << 20,
        "peak RSS grew {} MiB",
        rss_growth >> 20
    );
    assert!(
        under_load <= baseline * 5 + Duration::from_millis(250),
        "quiet project p95 {under_load:?} under load vs {baseline:?} alone"
    );

    // Nothing acknowledged is lost: the store counts exactly what was acknowledged.
    let count = |project: &'static str| async move {
        let (status, _, body) = tokio::task::spawn_blocking(move || {
            let key = if project == "shop" {
                SHOP_READ
            } else {
                OTHER_READ
            };
            http(
                address,
                "GET",
                &format!("/api/v1/projects/{project}/endpoints?since=1h"),
                Some(key),
                b"",
            )
        })
        .await
        .expect("join")
        .expect("query");
        assert_eq!(status, 200, "{body}");
        total_requests(&body)
    };
    assert_eq!(count("shop").await, acknowledged);
    let quiet_rounds = 20 + (SECONDS * 1000.0 / 60.0) as u64;
    assert_eq!(count("other").await, quiet_rounds * 20);
    server.stop().await;
}
