//! The sender against a scripted collector (a plain TCP server answering each request with the
//! next status of a script): retries with backoff, the breaker opening and probing, and a
//! half-open probe answered with a 4xx closing the breaker (the collector is up) instead of
//! leaving it half-open, refusing every later batch.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use valuetrace_client::queue::bounded;
use valuetrace_client::sender::{SenderConfig, spawn};
use valuetrace_model::ApiCall;

/// (status answered, bytes received) per request.
type Log = Arc<Mutex<Vec<(u16, usize)>>>;

/// The ingest key these tests' senders use: the scripted collector answers only them. (Other
/// tests point senders at a port they freed, a "stopped collector"; when the OS hands that
/// port to a scripted collector here, their requests must neither consume the script nor
/// show in the log.)
const KEY: &str = "scripted-collector-test-key";

/// Serves one status per request from `script` (then 200s); returns its address and the log.
fn scripted_collector(script: Vec<u16>) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let log = Arc::new(Mutex::new(Vec::new()));
    let served = log.clone();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut length, mut ours) = (0, false);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                ours |= line.trim_end() == format!("Authorization: Bearer {KEY}");
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if !ours {
                let _ = reader
                    .into_inner()
                    .write_all(b"HTTP/1.1 401 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            let status = script.next().unwrap_or(200);
            served.lock().unwrap().push((status, length));
            // The status line in two writes, a moment apart: the sender must read until the
            // line is whole (it once parsed whatever one `read` returned, and took a 200 split
            // after "HTTP/1.1 " for a failure).
            let mut stream = reader.into_inner();
            let _ = stream.write_all(b"HTTP/1.1 ");
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(2));
            let _ = write!(
                stream,
                "{status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (address, log)
}

fn call(i: u64) -> ApiCall {
    ApiCall {
        schema_version: 1,
        event_id: format!("e{i}"),
        timestamp: 1_795_256_130_000,
        service: "shop".into(),
        method: "GET".into(),
        route: "/api/items/{id}".into(),
        status: 200,
        latency_ms: 3.0,
        ..ApiCall::default()
    }
}

fn config(address: SocketAddr) -> SenderConfig {
    let mut config = SenderConfig::new(&format!("http://{address}"), KEY);
    config.batch_size = 10;
    config.flush_interval = Duration::from_millis(10);
    config.max_retries = 1;
    config.backoff_base_ms = 1;
    config.backoff_max_ms = 5;
    config.breaker_failures = 2;
    config.breaker_cool_down_ms = 100;
    config
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_failed_send_is_retried_and_then_delivered() {
    let (address, log) = scripted_collector(vec![503]);
    let (producer, receiver, _) = bounded(100);
    // Queued before the sender starts, so they leave as one batch.
    for i in 0..10 {
        producer.push(call(i));
    }
    let sender = spawn(receiver, config(address));
    let stats = sender.stats.clone();
    wait_for("delivery", || {
        stats.sent_events.load(Ordering::Relaxed) == 10
    });
    assert_eq!(stats.retries.load(Ordering::Relaxed), 1);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [503, 200]);
    assert_eq!(log[0].1, log[1].1, "the retry resends the same body");
    sender.shutdown(Duration::from_secs(1));
}

#[test]
fn a_half_open_probe_answered_with_a_4xx_closes_the_breaker() {
    // One event per batch, one batch per phase, so the phases cannot overlap: the first batch
    // fails twice (503s) and the breaker opens; after the cool-down the probe gets a 400 (that
    // batch is dropped); the next batch must be sent, not refused.
    let (address, log) = scripted_collector(vec![503, 503, 400]);
    let (producer, receiver, _) = bounded(100);
    let mut config = config(address);
    config.batch_size = 1;
    let sender = spawn(receiver, config);
    let stats = sender.stats.clone();
    producer.push(call(0));
    wait_for("the breaker to open", || {
        stats.breaker_open.load(Ordering::Relaxed)
    });
    std::thread::sleep(Duration::from_millis(150));
    producer.push(call(1));
    wait_for("the probe", || log.lock().unwrap().len() >= 3);
    producer.push(call(2));
    wait_for("the batch after the probe", || {
        stats.sent_events.load(Ordering::Relaxed) == 1
    });
    assert!(!stats.breaker_open.load(Ordering::Relaxed));
    let statuses: Vec<u16> = log.lock().unwrap().iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [503, 503, 400, 200]);
    sender.shutdown(Duration::from_secs(1));
}
