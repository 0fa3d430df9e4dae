//! The host does not notice the collector: with the collector stopped (connections refused) or
//! answering slowly (connections accepted, never answered), an instrumented app's p99 request
//! latency over 10,000 requests stays within 5% of its baseline, the same app sending to a
//! healthy collector. (The middleware's own cost is the overhead benchmark's subject, in release
//! builds; here the app without the middleware is printed for reference.)
//!
//! The handler does ~50 µs of work, as a real one would; the apps are driven in interleaved
//! blocks of 100 requests so that machine noise hits all of them alike. Run alone (see
//! `.config/nextest.toml`): other tests on the same two cores would be that noise.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tower::ServiceExt;
use valuetrace_client::layer::Identity;
use valuetrace_client::{Client, ClientConfig};

const REQUESTS: usize = 10_000;
const BLOCK: usize = 100;

/// ~50 µs of CPU work.
async fn handler() -> &'static str {
    let started = Instant::now();
    let mut x = 0u64;
    while started.elapsed() < Duration::from_micros(50) {
        for i in 0..64u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
    "item"
}

fn router() -> Router {
    Router::new().route("/api/items/{id}", get(handler))
}

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url, "key", "shop");
    config.queue_capacity = 1_000;
    config.sender.batch_size = 100;
    config.sender.flush_interval = Duration::from_millis(20);
    config.sender.timeout = Duration::from_secs(2);
    // Keep every call so the queue and the sender are under the most pressure.
    config.sampling.default_weight = 1.0;
    Client::start(config, |headers, _| Identity {
        user_id: headers
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .map(Into::into),
        ..Identity::default()
    })
}

async fn one(app: &Router, i: usize) -> Duration {
    let request = Request::builder()
        .uri(format!("/api/items/{}", i % 50))
        .header("x-user-id", format!("user-{}", i % 300))
        .body(Body::empty())
        .expect("request");
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("response");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    elapsed
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() * 99 / 100]
}

/// A collector that answers every batch at once with 200.
fn healthy_collector() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader
                .into_inner()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    address
}

#[test]
fn p99_stays_within_five_percent_with_the_collector_stopped_or_slow() {
    let healthy_address = healthy_collector();
    // Stopped: a port nobody listens on.
    let stopped = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    // Slow: accepts connections and never answers.
    let slow = TcpListener::bind("127.0.0.1:0").expect("bind");
    let slow_address = slow.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in slow.incoming().flatten() {
            held.push(stream);
        }
    });
    let healthy = client(&format!("http://{healthy_address}"));
    let down = client(&format!("http://{stopped}"));
    let hanging = client(&format!("http://{slow_address}"));
    let apps = [
        ("collector healthy", router().route_layer(healthy.layer())),
        ("collector stopped", router().route_layer(down.layer())),
        ("collector slow", router().route_layer(hanging.layer())),
        ("no middleware", router()),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); apps.len()];
    runtime.block_on(async {
        for (_, app) in &apps {
            for i in 0..1_000 {
                one(app, i).await; // warm-up
            }
        }
        for block in 0..REQUESTS / BLOCK {
            for (k, (_, app)) in apps.iter().enumerate() {
                for i in 0..BLOCK {
                    samples[k].push(one(app, block * BLOCK + i).await);
                }
            }
        }
    });
    let p99s: Vec<Duration> = samples.into_iter().map(p99).collect();
    let (down_stats, slow_stats) = (down.stats(), hanging.stats());
    assert!(healthy.stats().sent_events > 0, "{:?}", healthy.stats());
    for ((name, _), p) in apps.iter().zip(&p99s) {
        eprintln!("{name:18} p99 {p:?}");
    }
    eprintln!("stopped: {down_stats:?}\nslow: {slow_stats:?}");
    // The collector really was unusable: nothing was delivered and events were dropped.
    assert_eq!(down_stats.sent_events + slow_stats.sent_events, 0);
    assert!(down_stats.dropped_undeliverable + down_stats.dropped_queue_full > 0);
    assert!(slow_stats.dropped_queue_full > 0, "{slow_stats:?}");
    for (k, (name, _)) in apps.iter().enumerate().take(3).skip(1) {
        let ratio = p99s[k].as_secs_f64() / p99s[0].as_secs_f64();
        assert!(
            ratio <= 1.05,
            "{name}: p99 {:?} is {:.1}% above the healthy baseline's {:?}",
            p99s[k],
            (ratio - 1.0) * 100.0,
            p99s[0]
        );
    }
    healthy.shutdown(Duration::from_millis(100));
    down.shutdown(Duration::from_millis(100));
    hanging.shutdown(Duration::from_millis(100));
}
