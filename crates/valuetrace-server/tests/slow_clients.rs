//! Slow and abusive clients over raw TCP: slowloris connections are closed within the header
//! timeout while normal requests keep their latency, a body that does not arrive gets 408, idle
//! keep-alive connections are closed, and connections beyond the limit are refused.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

async fn start(max_connections: usize) -> LiveServer {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let mut config = two_projects(&dir);
    config.http.header_read_timeout = "1s".into();
    config.http.body_read_timeout = "1s".into();
    config.http.max_connections = max_connections;
    LiveServer::start(config).await
}

/// Waits until the server closes `stream` (read returns 0 or an error) and returns how long it
/// took, failing after `limit`. Whatever the server sent before closing is returned too.
fn wait_closed(stream: &mut TcpStream, limit: Duration) -> (Duration, String) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        assert!(
            start.elapsed() < limit,
            "connection still open after {limit:?}"
        );
    }
    (
        start.elapsed(),
        String::from_utf8_lossy(&received).into_owned(),
    )
}

fn valid_batch(id: &str) -> Vec<u8> {
    serde_json::to_vec(&[api_call(id, valuetrace_store::wall_clock_ms())]).expect("serialize")
}

/// Latencies of `rounds` normal batches, `pause` apart (blocking).
fn timed_batches(
    address: std::net::SocketAddr,
    label: &str,
    rounds: usize,
    pause: Duration,
) -> Vec<Duration> {
    (0..rounds)
        .map(|round| {
            let start = Instant::now();
            let (status, _, body) = http(
                address,
                "POST",
                "/v1/batch",
                Some(SHOP_INGEST),
                &valid_batch(&format!("{label}-{round}")),
            )
            .expect("request");
            assert_eq!(status, 200, "{body}");
            let elapsed = start.elapsed();
            std::thread::sleep(pause);
            elapsed
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_while_normal_requests_keep_their_latency() {
    let server = start(256).await;
    let address = server.address;
    let result = tokio::task::spawn_blocking(move || {
        let baseline = timed_batches(address, "base", 10, Duration::ZERO);
        // 50 slowloris connections trickle a header byte every 100 ms, forever.
        let attackers: Vec<_> = (0..50)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut stream = TcpStream::connect(address).expect("connect");
                    let opened = Instant::now();
                    let request = b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                    for byte in request.iter().cycle() {
                        if stream.write_all(&[*byte]).is_err() {
                            break; // closed by the server
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        if opened.elapsed() > Duration::from_secs(10) {
                            panic!("slowloris connection still open after 10 s");
                        }
                    }
                    opened.elapsed()
                })
            })
            .collect();
        // Normal requests meanwhile.
        std::thread::sleep(Duration::from_millis(200));
        let under_attack = timed_batches(address, "attack", 20, Duration::from_millis(50));
        let lifetimes: Vec<Duration> = attackers
            .into_iter()
            .map(|attacker| attacker.join().expect("attacker"))
            .collect();
        (baseline, under_attack, lifetimes)
    })
    .await
    .expect("join");
    let (mut baseline, mut under_attack, lifetimes) = result;
    baseline.sort();
    under_attack.sort();
    let longest = lifetimes.iter().max().expect("attackers");
    eprintln!(
        "slowloris closed after at most {longest:?}; normal max latency {:?} alone, {:?} under attack",
        baseline.last(),
        under_attack.last()
    );
    // Closed within the header timeout (plus the write that notices and scheduling slack).
    assert!(
        *longest < HEADER_TIMEOUT + Duration::from_millis(1500),
        "{lifetimes:?}"
    );
    assert!(
        *under_attack.last().expect("samples")
            < *baseline.last().expect("samples") * 5 + Duration::from_millis(200),
        "normal latency under attack {under_attack:?} vs {baseline:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_gets_408_and_the_server_stays_healthy() {
    let server = start(256).await;
    let address = server.address;
    let metrics_address = address;
    let (elapsed, answer) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).expect("connect");
        let head = format!(
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SHOP_INGEST}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"type\""
        );
        stream.write_all(head.as_bytes()).expect("write");
        wait_closed(&mut stream, Duration::from_secs(5))
    })
    .await
    .expect("join");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("body_timeout") && answer.contains("http.body_read_timeout"),
        "{answer}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        http(
            metrics_address,
            "POST",
            "/v1/batch",
            Some(SHOP_INGEST),
            &valid_batch("after"),
        )
    })
    .await
    .expect("join")
    .expect("request");
    assert_eq!(status, 200, "{body}");
    assert!(
        server
            .state
            .render_metrics()
            .contains("valuetrace_http_body_timeouts_total 1\n")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let server = start(256).await;
    let address = server.address;
    let (elapsed, answer) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        // The answer comes, then the connection idles until the server closes it.
        wait_closed(&mut stream, Duration::from_secs(5))
    })
    .await
    .expect("join");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        elapsed < HEADER_TIMEOUT + Duration::from_secs(1),
        "{elapsed:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_and_counted() {
    let server = start(8).await;
    let address = server.address;
    let state = server.state.clone();
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..8)
            .map(|_| TcpStream::connect(address).expect("connect"))
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut extra = TcpStream::connect(address).expect("the kernel accepts");
        let (elapsed, answer) = wait_closed(&mut extra, Duration::from_secs(1));
        assert!(answer.is_empty(), "{answer}");
        assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
        drop(held);
        // Once the held connections are gone, new ones are served again.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match http(address, "GET", "/healthz", None, b"") {
                Ok((200, _, _)) => break,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("not served again: {other:?}"),
            }
        }
    })
    .await
    .expect("join");
    let metrics = state.render_metrics();
    assert!(
        !metrics.contains("valuetrace_http_connections_refused_total 0\n")
            && metrics.contains("valuetrace_http_connections_refused_total "),
        "{metrics}"
    );
    server.stop().await;
}
