//! `valuetrace-bench`: the benchmarks behind every performance figure in docs/benchmarks.md.
//!
//! - `ingest`: durable ingest over HTTP on loopback (real server, fsync on), batches of 500.
//! - `health`: endpoint health over a synthetic history (default 50M events / 30 days).
//! - `wal`: WAL appends from many threads with group commit.
//! - `insights`: every business answer over a month of demo traffic (default 50M events).
//! - `dashboard`: every dashboard page over the `insights` store, cold and warm.
//! - `client-overhead`: what the client middleware's tower layer adds per request.
//!
//! Run with `cargo run --release -p valuetrace --bin valuetrace-bench -- <name> [options]`.

#[path = "bench/client_overhead.rs"]
mod bench_client;
#[path = "bench/dashboard.rs"]
mod bench_dashboard;
#[path = "bench/insights.rs"]
mod bench_insights;
#[path = "../demo/mod.rs"]
#[allow(dead_code)]
mod demo;

use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    valuetrace_alerts::deliver::install_tls_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|index| args.get(index + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let text_option = |name: &str| -> Option<String> {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|index| args.get(index + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("ingest") => ingest(
            option("--events", 2_000_000),
            option("--batch", 500) as usize,
            option("--connections", 8) as usize,
        ),
        Some("health") => health(
            option("--reopen", 0) == 1,
            option("--events", 50_000_000),
            option("--days", 30),
            option("--runs", 30) as usize,
        ),
        Some("insights") => bench_insights::run(bench_insights::Options {
            events: option("--events", 50_000_000),
            days: option("--days", 30),
            runs: option("--runs", 5) as usize,
            data: text_option("--data").map(Into::into),
            only: text_option("--only"),
        }),
        Some("dashboard") => bench_dashboard::run(
            text_option("--data").map(Into::into).ok_or_else(|| {
                anyhow::anyhow!(
                    "dashboard needs --data DIR (a store loaded by `insights --data DIR`)"
                )
            })?,
            option("--runs", 5) as usize,
        ),
        Some("client-overhead") => bench_client::run(
            option("--requests", 200_000) as u32,
            option("--rounds", 7) as usize,
            text_option("--only").as_deref(),
        ),
        Some("wal") => wal(
            option("--frames", 50_000),
            option("--bytes", 16_384) as usize,
            option("--threads", 8) as usize,
        ),
        _ => {
            eprintln!(
                "usage: valuetrace-bench ingest [--events N --batch N --connections N] | health [--events N --days N --runs N --reopen 1] | wal [--frames N --bytes N --threads N] | insights [--events N --days N --runs N --data DIR --only NAME] | dashboard --data DIR [--runs N] | client-overhead [--requests N --rounds N --only without|with|noop]"
            );
            std::process::exit(2);
        }
    }
}

/// A tiny deterministic PRNG (SplitMix64) so that runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let z = valuetrace_model::mix::mix(self.0);
        self.0 = self.0.wrapping_add(valuetrace_model::mix::GOLDEN_GAMMA);
        z
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Zipf-like skew over `n` items.
    fn skewed(&mut self, n: u64) -> u64 {
        ((self.unit().powi(3)) * n as f64) as u64 % n
    }
}

const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
const SEGMENTS: [&str; 3] = ["new", "returning", "power"];
const VARIANTS: [&str; 2] = ["control", "ml_v2"];

fn synthetic_call(rng: &mut Rng, id: u64, timestamp: i64) -> valuetrace_model::ApiCall {
    let route = rng.skewed(40);
    let status = match rng.below(1000) {
        0..=9 => 500,
        10..=39 => 400,
        _ => 200,
    };
    let user = rng.below(200_000);
    let mut experiments = std::collections::BTreeMap::new();
    experiments.insert("reco".to_owned(), VARIANTS[(user % 2) as usize].to_owned());
    valuetrace_model::ApiCall {
        schema_version: 1,
        event_id: format!("bench-{id}"),
        timestamp,
        service: format!("svc{}", route % 8),
        method: if route.is_multiple_of(3) {
            "POST"
        } else {
            "GET"
        }
        .into(),
        route: format!("/api/resource{route}/{{id}}"),
        status,
        latency_ms: 5.0 + rng.unit().powi(4) * 2000.0,
        user_id: Some(format!("{user:032x}")),
        plan: Some(PLANS[(user % 10).min(2) as usize].into()),
        segment: Some(SEGMENTS[(user % 3) as usize].into()),
        experiments,
        value: (route == 7 && status == 200).then(|| 10.0 + rng.unit() * 100.0),
        ..Default::default()
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn health(reopen: bool, events: u64, days: u64, runs: usize) -> anyhow::Result<()> {
    use valuetrace_query::{EndpointsQuery, Filter, QueryBackend, SortKey};
    use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};
    let dir = tempfile::tempdir()?;
    let now = valuetrace_store::wall_clock_ms();
    let span = days as i64 * 86_400_000;
    let mut options = StoreOptions::new(dir.path());
    options.dedup_window_ms = 24 * 3_600_000;
    let store = EmbeddedStore::open(options.clone(), now)?;
    let mut rng = Rng(7);
    let began = Instant::now();
    let chunk = 10_000u64;
    let mut since_persist = 0;
    for start in (0..events).step_by(chunk as usize) {
        let batch: Vec<StoredEvent> = (start..(start + chunk).min(events))
            .map(|id| {
                let timestamp = now - span + (id as i128 * span as i128 / events as i128) as i64;
                StoredEvent {
                    event: valuetrace_model::Event::ApiCall(synthetic_call(
                        &mut rng, id, timestamp,
                    )),
                    received_at: timestamp,
                    skew_ms: 0,
                }
            })
            .collect();
        since_persist += batch.len();
        store.append("bench", batch)?;
        if since_persist >= 2_000_000 {
            let ticket = store.begin_persist()?;
            store.finish_persist(ticket, now)?;
            since_persist = 0;
            eprintln!(
                "  loaded {} events ({:.0} s, {:.0} MiB RSS)",
                start + chunk,
                began.elapsed().as_secs_f64(),
                rss_mib()
            );
        }
    }
    let ticket = store.begin_persist()?;
    store.finish_persist(ticket, now)?;
    println!(
        "loaded {events} events over {days} days in {:.1} s; RSS {:.0} MiB",
        began.elapsed().as_secs_f64(),
        rss_mib()
    );
    let query = |from: i64, filter: Filter| EndpointsQuery {
        project: "bench".into(),
        from,
        to: now,
        filter,
        sort: SortKey::Requests,
        limit: 100,
        currency: Default::default(),
    };
    let plan = Filter {
        plan: Some("pro".into()),
        ..Filter::default()
    };
    let hour = 3_600_000;
    let aligned = |filter: Filter| EndpointsQuery {
        from: (now - span).div_euclid(hour) * hour + hour,
        to: now.div_euclid(hour) * hour,
        ..query(0, filter)
    };
    let cases = [
        (
            format!("{days} days, no filter"),
            query(now - span + 12_345, Filter::default()),
        ),
        (
            format!("{days} days aligned to hours (cells only), no filter"),
            aligned(Filter::default()),
        ),
        (
            format!("{days} days, plan=pro"),
            query(now - span + 12_345, plan.clone()),
        ),
        (
            "last hour, no filter".to_owned(),
            query(now - 3_600_000, Filter::default()),
        ),
        (
            "last hour, plan=pro".to_owned(),
            query(now - 3_600_000, plan),
        ),
    ];
    for (name, spec) in cases {
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let answer = store.endpoints(&spec)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            requests = answer.endpoints.iter().map(|row| row.requests).sum::<u64>();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "endpoint health, {name}: p50 {:.1} ms, p95 {:.1} ms over {runs} runs ({requests} requests counted)",
            quantile(&times, 0.5),
            quantile(&times, 0.95)
        );
    }
    if reopen {
        // A running server snapshots up to four quiet days per persist (every 30 s): catch up.
        let started = Instant::now();
        let mut snapshots = 0;
        loop {
            let ticket = store.begin_persist()?;
            let written = store.finish_persist(ticket, now)?.snapshots_written;
            if written == 0 {
                break;
            }
            snapshots += written;
        }
        println!(
            "rollup snapshots of quiet days: {snapshots} written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        drop(store);
        let started = Instant::now();
        let reopened = EmbeddedStore::open(options, now)?;
        println!(
            "reopen (rebuild rollups and dedup index from Parquet): {:.1} s; RSS {:.0} MiB; {} projects",
            started.elapsed().as_secs_f64(),
            rss_mib(),
            reopened.project_names().len()
        );
    }
    Ok(())
}

fn ingest(events: u64, batch: usize, connections: usize) -> anyhow::Result<()> {
    use valuetrace_server::Server;
    use valuetrace_server::auth::key_hash_string;
    use valuetrace_server::config::{Config, ProjectConfig};
    let dir = tempfile::tempdir()?;
    let key = "vt_ingest_bench";
    let config = Config {
        data_dir: dir.path().to_owned(),
        projects: vec![ProjectConfig {
            // The benchmark measures capacity: no rate limit.
            events_per_second: Some(0.0),
            ..ProjectConfig::new("bench", vec![key_hash_string(key)], vec![])
        }],
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = Server::open(config).map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1/batch", listener.local_addr()?);
        let running = server.spawn(listener);
        let now = valuetrace_store::wall_clock_ms();
        let mut rng = Rng(11);
        let bodies: Vec<bytes::Bytes> = (0..events.div_ceil(batch as u64))
            .map(|number| {
                let calls: Vec<_> = (0..batch as u64)
                    .map(|i| valuetrace_model::Event::ApiCall(synthetic_call(&mut rng, number * batch as u64 + i, now - 60_000)))
                    .collect();
                bytes::Bytes::from(serde_json::to_vec(&calls).expect("serialize"))
            })
            .collect();
        let bodies = Arc::new(bodies);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..connections {
            let (bodies, next, client, url) = (bodies.clone(), next.clone(), client.clone(), url.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(index) else { break };
                    let sent = Instant::now();
                    let response = client.post(&url).bearer_auth(key).header("content-type", "application/json").body(body.clone()).send().await?;
                    anyhow::ensure!(response.status().is_success(), "status {}", response.status());
                    let _ = response.bytes().await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                anyhow::Ok(latencies)
            });
        }
        let mut latencies = Vec::new();
        while let Some(result) = tasks.join_next().await {
            latencies.extend(result??);
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        println!(
            "durable ingest: {events} events in batches of {batch} over {connections} connections: {:.0} events/s; ack latency p50 {:.1} ms, p99 {:.1} ms; RSS {:.0} MiB",
            events as f64 / elapsed,
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            rss_mib()
        );
        running.stop().await?;
        anyhow::Ok(())
    })
}

fn wal(frames: u64, bytes: usize, threads: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (wal, _) =
        valuetrace_wal::Wal::open(valuetrace_wal::WalOptions::new(dir.path()), |_, _| {})?;
    let wal = Arc::new(wal);
    let payload = vec![b'x'; bytes];
    let started = Instant::now();
    let per_thread = frames / threads as u64;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (wal, payload) = (wal.clone(), payload.clone());
            std::thread::spawn(move || -> anyhow::Result<Vec<f64>> {
                let mut latencies = Vec::new();
                for _ in 0..per_thread {
                    let sent = Instant::now();
                    wal.append(&payload)?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("thread panicked"))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let stats = wal.stats();
    let total = per_thread * threads as u64;
    println!(
        "wal append: {total} frames of {bytes} B from {threads} threads: {:.0} frames/s, {:.1} MiB/s, {} fsyncs ({:.1} frames per fsync), latency p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / elapsed,
        total as f64 * bytes as f64 / elapsed / (1 << 20) as f64,
        stats.fsyncs,
        total as f64 / stats.fsyncs.max(1) as f64,
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99)
    );
    Ok(())
}
