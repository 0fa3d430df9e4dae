//! The background sender: drains the queue on its own thread, batches by size and time,
//! gzip-compresses, and POSTs to the collector's `/v1/batch` with the ingest key. Failed batches
//! are retried with jittered exponential [`Backoff`] while the [`Breaker`] allows; when the breaker
//! is open or the retries are used up, the batch is dropped and counted (the host never waits).
//! `shutdown` stops taking new events and flushes what is queued within a deadline.
//!
//! The HTTP client is a minimal HTTP/1.1 POST over `std::net::TcpStream` (plain `http://`; a
//! TLS-terminating sidecar or a local collector is the expected deployment), so the host gains no
//! async runtime or TLS stack from this crate.

use crate::aggregate::{Aggregator, Window, to_events};
use crate::backoff::Backoff;
use crate::breaker::{Breaker, State};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};
use valuetrace_model::{ApiCall, Event};

/// How often the sender looks at the queue when it is empty.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The aggregates the sender ships at every flush interval as `api_aggregate` events.
#[derive(Clone)]
pub struct AggregateSource {
    pub aggregator: Arc<Aggregator>,
    /// The recorder whose request threads hand their kept calls over: the sender builds their
    /// events at every poll.
    pub recorder: Option<&'static crate::layer::Recorder>,
    pub service: String,
    /// Unique to the process: the prefix of the aggregates' event ids.
    pub id_prefix: String,
}

#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// `http://host:port` of the collector.
    pub url: String,
    pub ingest_key: String,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub breaker_failures: u32,
    pub breaker_cool_down_ms: i64,
}

impl SenderConfig {
    pub fn new(url: &str, ingest_key: &str) -> SenderConfig {
        SenderConfig {
            url: url.trim_end_matches('/').into(),
            ingest_key: ingest_key.into(),
            batch_size: 500,
            flush_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff_base_ms: 100,
            backoff_max_ms: 5_000,
            breaker_failures: 5,
            breaker_cool_down_ms: 30_000,
        }
    }
}

/// What the sender did, readable by the host at any time.
#[derive(Debug, Default)]
pub struct SenderStats {
    pub sent_events: AtomicU64,
    pub sent_batches: AtomicU64,
    pub retries: AtomicU64,
    /// Events dropped after their batch failed for good or while the breaker was open.
    pub dropped_events: AtomicU64,
    pub breaker_open: AtomicBool,
}

pub struct SenderHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<SenderStats>,
}

impl SenderHandle {
    /// Stops taking new events, sends what is queued, and returns within about `deadline`
    /// (a batch in flight gets the configured timeout).
    pub fn shutdown(mut self, deadline: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let started = Instant::now();
            while !thread.is_finished() && started.elapsed() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Starts the sender thread over `receiver` (raw events only; see [`spawn_with_aggregates`]).
pub fn spawn(receiver: Receiver<ApiCall>, config: SenderConfig) -> SenderHandle {
    spawn_with_aggregates(receiver, config, None)
}

/// Starts the sender thread over `receiver`; with `aggregates`, every flush interval (and at
/// shutdown) it also drains the aggregator and sends its counts as `api_aggregate` events.
pub fn spawn_with_aggregates(
    receiver: Receiver<ApiCall>,
    config: SenderConfig,
    aggregates: Option<AggregateSource>,
) -> SenderHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SenderStats::default());
    let (thread_stop, thread_stats) = (stop.clone(), stats.clone());
    let thread = std::thread::Builder::new()
        .name("valuetrace-sender".into())
        .spawn(move || run(receiver, config, aggregates, &thread_stop, &thread_stats))
        .ok();
    SenderHandle {
        stop,
        thread,
        stats,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Drains the aggregator into `batch` as the window `[*window_start, now)`.
fn drain_aggregates(
    source: Option<&AggregateSource>,
    window_start: &mut i64,
    flush: &mut u64,
    batch: &mut Vec<Event>,
) {
    let Some(source) = source else { return };
    let end = now_ms();
    let window = Window {
        service: &source.service,
        start_ms: *window_start,
        end_ms: end,
        id_prefix: &source.id_prefix,
        flush: *flush,
    };
    batch.extend(
        to_events(source.aggregator.drain(), window)
            .into_iter()
            .map(Event::ApiAggregate),
    );
    *window_start = end;
    *flush += 1;
}

fn run(
    receiver: Receiver<ApiCall>,
    config: SenderConfig,
    aggregates: Option<AggregateSource>,
    stop: &AtomicBool,
    stats: &SenderStats,
) {
    let mut breaker = Breaker::new(config.breaker_failures, config.breaker_cool_down_ms);
    let mut backoff = Backoff::new(
        config.backoff_base_ms,
        config.backoff_max_ms,
        config.max_retries,
        now_ms() as u64,
    );
    let mut batch: Vec<Event> = Vec::with_capacity(config.batch_size);
    let mut batch_started = Instant::now();
    let (mut window_start, mut flush) = (now_ms(), 0u64);
    let mut aggregates_due = Instant::now() + config.flush_interval;
    let mut send = |batch: &mut Vec<Event>| {
        send_with_retries(&config, batch, &mut breaker, &mut backoff, stats, stop);
    };
    loop {
        if let Some(recorder) = aggregates.as_ref().and_then(|source| source.recorder) {
            recorder.process_handoff();
        }
        if stop.load(Ordering::SeqCst) {
            // Shutdown: send everything already queued (one attempt per batch) and the last
            // aggregates, then stop. Calls handed over since the poll above are built first.
            if let Some(recorder) = aggregates.as_ref().and_then(|source| source.recorder) {
                recorder.process_handoff();
            }
            while let Ok(call) = receiver.try_recv() {
                batch.push(Event::ApiCall(call));
                if batch.len() >= config.batch_size {
                    send(&mut batch);
                }
            }
            drain_aggregates(
                aggregates.as_ref(),
                &mut window_start,
                &mut flush,
                &mut batch,
            );
            while !batch.is_empty() {
                let rest = batch.split_off(batch.len().min(config.batch_size));
                send(&mut batch);
                batch = rest;
            }
            return;
        }
        if aggregates.is_some() && Instant::now() >= aggregates_due {
            let before = batch.len();
            drain_aggregates(
                aggregates.as_ref(),
                &mut window_start,
                &mut flush,
                &mut batch,
            );
            aggregates_due = Instant::now() + config.flush_interval;
            if before == 0 && !batch.is_empty() {
                batch_started = Instant::now() - config.flush_interval;
            }
        }
        // Poll, never block on the queue: a receiver blocked in `recv` makes every push on the
        // host's request path wake it (a futex syscall and a context switch, visible in the
        // host's p99); a polling one is never waiting, so pushes stay a few atomics.
        let mut disconnected = false;
        while batch.len() < config.batch_size {
            match receiver.try_recv() {
                Ok(call) => {
                    if batch.is_empty() {
                        batch_started = Instant::now();
                    }
                    batch.push(Event::ApiCall(call));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        if disconnected {
            drain_aggregates(
                aggregates.as_ref(),
                &mut window_start,
                &mut flush,
                &mut batch,
            );
            while !batch.is_empty() {
                let rest = batch.split_off(batch.len().min(config.batch_size));
                send(&mut batch);
                batch = rest;
            }
            return;
        }
        if batch.len() < config.batch_size {
            let left = if batch.is_empty() {
                config.flush_interval
            } else {
                config
                    .flush_interval
                    .saturating_sub(batch_started.elapsed())
            };
            std::thread::sleep(left.min(POLL_INTERVAL));
        }
        let due = batch.len() >= config.batch_size
            || (!batch.is_empty() && batch_started.elapsed() >= config.flush_interval);
        if due {
            while batch.len() > config.batch_size {
                let rest = batch.split_off(config.batch_size);
                send(&mut batch);
                batch = rest;
            }
            send(&mut batch);
        }
    }
}

fn send_with_retries(
    config: &SenderConfig,
    batch: &mut Vec<Event>,
    breaker: &mut Breaker,
    backoff: &mut Backoff,
    stats: &SenderStats,
    stop: &AtomicBool,
) {
    let events = batch.len() as u64;
    // Encoded only once the breaker lets a send through: with the collector down, dropped
    // batches cost no compression.
    let mut body: Option<Vec<u8>> = None;
    let mut attempt = 0;
    loop {
        if !breaker.allow(now_ms()) {
            stats.breaker_open.store(true, Ordering::Relaxed);
            stats.dropped_events.fetch_add(events, Ordering::Relaxed);
            batch.clear();
            return;
        }
        if body.is_none() {
            body = encode(batch);
            batch.clear();
        }
        let Some(body) = body.as_deref() else {
            stats.dropped_events.fetch_add(events, Ordering::Relaxed);
            return;
        };
        match post(config, body) {
            Ok(status) if (200..300).contains(&status) => {
                breaker.success();
                stats.breaker_open.store(false, Ordering::Relaxed);
                stats.sent_events.fetch_add(events, Ordering::Relaxed);
                stats.sent_batches.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // A 4xx other than 408/429 will not get better by retrying: drop it. The collector
            // answered, so it is up: a half-open breaker closes (else it would refuse forever).
            Ok(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
                breaker.success();
                stats.breaker_open.store(false, Ordering::Relaxed);
                stats.dropped_events.fetch_add(events, Ordering::Relaxed);
                return;
            }
            _ => {
                breaker.failure(now_ms());
                stats
                    .breaker_open
                    .store(breaker.state() == State::Open, Ordering::Relaxed);
            }
        }
        match backoff.delay(attempt) {
            Some(delay) if !stop.load(Ordering::SeqCst) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(delay));
                attempt += 1;
            }
            _ => {
                stats.dropped_events.fetch_add(events, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The batch as gzip-compressed NDJSON (each line an event with its `type` tag).
fn encode(batch: &[Event]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for event in batch {
        serde_json::to_writer(&mut encoder, event).ok()?;
        encoder.write_all(b"\n").ok()?;
    }
    encoder.finish().ok()
}

/// One HTTP/1.1 POST of `body` to `{url}/v1/batch`; the response's status code.
fn post(config: &SenderConfig, body: &[u8]) -> std::io::Result<u16> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_owned());
    let authority = config
        .url
        .strip_prefix("http://")
        .ok_or_else(|| bad("the collector URL must start with http://"))?;
    let address = std::net::ToSocketAddrs::to_socket_addrs(authority)?
        .next()
        .ok_or_else(|| bad("the collector address does not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&address, config.timeout)?;
    stream.set_read_timeout(Some(config.timeout))?;
    stream.set_write_timeout(Some(config.timeout))?;
    let head = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\nContent-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        config.ingest_key,
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    // The status line may arrive over several reads (a server may write it in pieces).
    let mut response = [0u8; 256];
    let mut filled = 0;
    while filled < response.len() && !response[..filled].windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut response[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    let line = String::from_utf8_lossy(&response[..filled]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("the collector answered without an HTTP status line"))
}
