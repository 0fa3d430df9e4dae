//! `valuetrace-chaos`: the crash-loop harness behind the durability promise.
//!
//! It starts the real `valuetrace serve` on a temporary data dir, with a configuration that makes
//! persists, WAL rotations, WAL segment deletions and compactions frequent, and runs load clients
//! that record every acknowledged `event_id`. Clients retry an unacknowledged batch with the same
//! ids (as a real client would) and now and then re-send a batch that was already acknowledged
//! (a retry after a lost response). The server is SIGKILLed at seeded-random moments — during
//! start-up and WAL replay, just after it became ready, mid-load, while a Parquet file is being
//! written, just after a persist — and restarted each time. At the end the harness drains the
//! clients' retries, checks that the server still accepts writes, stops it gracefully and
//! verifies:
//!
//! - every acknowledged id is stored exactly once in the Parquet files (files that a compacted
//!   file replaces are not counted: start-up deletes them), and no id that was never sent is stored;
//! - the query API counts each acknowledged `api_call` once, before and after a clean restart;
//! - a re-sent acknowledged batch is never accepted again.
//!
//! ```text
//! valuetrace-chaos --kills 200 --seed 1     # the documented full run (release build)
//! valuetrace-chaos --kills 20               # the CI version (crates/valuetrace/tests/crash.rs)
//! ```
//!
//! Exit status: 0 when every check passed, 1 on any violation, 2 when the harness could not run.

use clap::Parser;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PROJECT: &str = "shop";
const INGEST_KEY: &str = "vt_ingest_chaos_harness_key";
const READ_KEY: &str = "vt_read_chaos_harness_key";
/// How long the clients may take to deliver their last batches after the load stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Parser, Debug)]
#[command(
    name = "valuetrace-chaos",
    about = "SIGKILL the server under load again and again; check that every acknowledged event is stored exactly once"
)]
struct Args {
    /// How many times to SIGKILL the server.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Seed of the kill schedule and of the clients' choices (timings still vary between runs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent load clients.
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// The `valuetrace` binary; by default the one next to this executable.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the temporary directory (config, data, server.log) even when every check passed.
    #[arg(long)]
    keep_dir: bool,
    /// Target load in events per second, across all clients.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Longest wait before a mid-load kill, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    max_delay_ms: u64,
}

/// SplitMix64: small, seeded, good enough to pick moments and sizes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5eed_c4a0_5eed_c4a0)
    }
    fn next(&mut self) -> u64 {
        let z = valuetrace_model::mix::mix(self.0);
        self.0 = self.0.wrapping_add(valuetrace_model::mix::GOLDEN_GAMMA);
        z
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("valuetrace-chaos: cannot run: {error}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let auth = key
        .map(|key| format!("Authorization: Bearer {key}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("response without a body separator"))?;
    // A response cut short by the kill must not pass for an answer.
    if let Some(length) = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    }) && body.len() != length
    {
        return Err(std::io::Error::other("truncated response"));
    }
    Ok((status, body.to_owned()))
}

fn free_address() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

// ---------------------------------------------------------------------------------------------
// Load clients

/// A batch as a client holds it until it is acknowledged.
#[derive(Clone)]
struct Batch {
    /// `(event_id, is_api_call)`.
    ids: Vec<(String, bool)>,
    body: Vec<u8>,
    /// A re-send of a batch that was already acknowledged: every event must be a duplicate.
    resend: bool,
    /// Failed attempts so far.
    attempts: u32,
}

const ROUTES: [(&str, &str); 6] = [
    ("GET", "/api/orders"),
    ("POST", "/api/cart"),
    ("GET", "/api/users/{id}"),
    ("GET", "/api/search"),
    ("POST", "/api/payments/{id}/confirm"),
    ("GET", "/health"),
];

/// A batch of `size` events with ids `<prefix>-<number>-<i>`; about one in ten is an outcome.
fn make_batch(rng: &mut Rng, prefix: &str, number: u64, size: usize) -> Batch {
    let now = valuetrace_store::wall_clock_ms();
    let mut ids = Vec::with_capacity(size);
    let mut events = Vec::with_capacity(size);
    for i in 0..size {
        let id = format!("{prefix}-{number}-{i}");
        let timestamp = now - rng.range(0, 5_000) as i64;
        let user = format!("user-{}", rng.below(500));
        let event = if rng.percent(10) {
            ids.push((id.clone(), false));
            serde_json::json!({
                "type": "outcome", "schema_version": 1, "event_id": id, "timestamp": timestamp,
                "name": if rng.percent(50) { "purchase" } else { "signup" },
                "user_id": user, "value": rng.range(1, 500) as f64 / 2.0, "currency": "EUR"
            })
        } else {
            ids.push((id.clone(), true));
            let (method, route) = ROUTES[rng.below(ROUTES.len() as u64) as usize];
            let status = match rng.below(100) {
                0..=2 => 500,
                3..=9 => 404,
                _ => 200,
            };
            serde_json::json!({
                "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": timestamp,
                "service": "shop", "method": method, "route": route, "status": status,
                "latency_ms": rng.range(1, 900) as f64 / 3.0, "user_id": user,
                "plan": if rng.percent(30) { "pro" } else { "free" }
            })
        };
        events.push(event);
    }
    Batch {
        ids,
        body: serde_json::to_vec(&events).unwrap_or_default(),
        resend: false,
        attempts: 0,
    }
}

/// What one client did, merged by the harness at the end.
#[derive(Default)]
struct ClientReport {
    acked: Vec<(String, bool)>,
    /// Ids of batches that were never acknowledged (only after a failed drain).
    unacked: Vec<String>,
    batches_acked: u64,
    failed_attempts: u64,
    resend_batches: u64,
    resend_events: u64,
    /// Events of retried batches that the server answered as duplicates: their first attempt
    /// was made durable but its answer was lost in the kill.
    retry_duplicates: u64,
    /// Retried batches answered partly as duplicates (a frame is all or nothing: suspicious).
    partial_retries: u64,
    statuses: BTreeMap<u16, u64>,
    violations: Vec<String>,
}

/// What a 200 answer says, checked against the batch.
enum Verdict {
    Acked {
        accepted: u64,
        duplicates: u64,
    },
    /// Not an answer (cut short, not JSON): retry.
    Unreadable,
    Wrong(String),
}

fn judge(batch: &Batch, body: &str) -> Verdict {
    let Ok(answer) = serde_json::from_str::<serde_json::Value>(body) else {
        return Verdict::Unreadable;
    };
    let accepted = answer["accepted"].as_u64();
    let duplicates = answer["duplicates"].as_u64();
    let rejected = answer["rejected"].as_array().map(Vec::len);
    match (accepted, duplicates, rejected) {
        (Some(accepted), Some(duplicates), Some(0))
            if accepted + duplicates == batch.ids.len() as u64 =>
        {
            Verdict::Acked {
                accepted,
                duplicates,
            }
        }
        (Some(_), Some(_), Some(_)) => Verdict::Wrong(format!(
            "answer does not account for the {} events of batch {}: {answer}",
            batch.ids.len(),
            batch.ids.first().map_or("?", |(id, _)| id.as_str())
        )),
        _ => Verdict::Unreadable,
    }
}

struct ClientSetup {
    index: usize,
    address: SocketAddr,
    seed: u64,
    events_per_second: f64,
    stop: Arc<AtomicBool>,
    /// The harness gave up: leave at once, without draining.
    abort: Arc<AtomicBool>,
    acked_events: Arc<AtomicU64>,
}

fn load_client(setup: ClientSetup) -> ClientReport {
    let mut rng = Rng::new(
        setup
            .seed
            .wrapping_mul(31)
            .wrapping_add(setup.index as u64 + 1),
    );
    let prefix = format!("c{}", setup.index);
    let mut report = ClientReport::default();
    let mut number = 0u64;
    let mut current: Option<Batch> = None;
    // A reservoir sample of acknowledged batches, old and new, to re-send now and then.
    let mut reservoir: Vec<Batch> = Vec::new();
    let mut next_send = Instant::now();
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if setup.abort.load(Ordering::Relaxed) {
            break;
        }
        let stopping = setup.stop.load(Ordering::Relaxed);
        if stopping && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
        }
        let mut batch = match current.take() {
            Some(batch) => batch,
            None if stopping => break,
            None if !reservoir.is_empty() && rng.percent(4) => {
                let mut again = reservoir[rng.below(reservoir.len() as u64) as usize].clone();
                again.resend = true;
                again.attempts = 0;
                again
            }
            None => {
                number += 1;
                let size = rng.range(20, 200) as usize;
                // Pace new batches to the target rate; never burst to catch up after a restart.
                let now = Instant::now();
                if next_send > now {
                    std::thread::sleep(next_send - now);
                } else if now - next_send > Duration::from_secs(1) {
                    next_send = now;
                }
                next_send += Duration::from_secs_f64(size as f64 / setup.events_per_second);
                make_batch(&mut rng, &prefix, number, size)
            }
        };
        if drain_deadline.is_some_and(|deadline| Instant::now() > deadline) {
            report.violations.push(format!(
                "client {}: batch {} still unacknowledged {} s after the load stopped",
                setup.index,
                batch.ids.first().map_or("?", |(id, _)| id.as_str()),
                DRAIN_TIMEOUT.as_secs()
            ));
            if !batch.resend {
                report
                    .unacked
                    .extend(batch.ids.iter().map(|(id, _)| id.clone()));
            }
            break;
        }
        let outcome = request(
            setup.address,
            "POST",
            "/v1/batch",
            Some(INGEST_KEY),
            &batch.body,
        );
        if let Ok((status, _)) = &outcome {
            *report.statuses.entry(*status).or_default() += 1;
        }
        let verdict = match outcome {
            Ok((200, body)) => judge(&batch, &body),
            // 408 (slow body) and 429 (rate limit) ask for a retry, as 503 does.
            Ok((status, body))
                if (400..500).contains(&status) && status != 408 && status != 429 =>
            {
                Verdict::Wrong(format!(
                    "valid batch answered {status}: {}",
                    body.chars().take(300).collect::<String>()
                ))
            }
            _ => Verdict::Unreadable,
        };
        match verdict {
            Verdict::Acked {
                accepted,
                duplicates,
            } => {
                if batch.resend {
                    report.resend_batches += 1;
                    report.resend_events += batch.ids.len() as u64;
                    if accepted > 0 {
                        report.violations.push(format!(
                            "client {}: a re-sent acknowledged batch ({}) had {accepted} of {} events accepted again",
                            setup.index,
                            batch.ids[0].0,
                            batch.ids.len()
                        ));
                    }
                } else {
                    if batch.attempts > 0 && duplicates > 0 {
                        report.retry_duplicates += duplicates;
                        if accepted > 0 {
                            report.partial_retries += 1;
                        }
                    }
                    report.batches_acked += 1;
                    setup
                        .acked_events
                        .fetch_add(batch.ids.len() as u64, Ordering::Relaxed);
                    report.acked.extend(batch.ids.iter().cloned());
                    batch.attempts = 0;
                    if reservoir.len() < 32 {
                        reservoir.push(batch);
                    } else {
                        let slot = rng.below(report.batches_acked) as usize;
                        if slot < reservoir.len() {
                            reservoir[slot] = batch;
                        }
                    }
                }
            }
            Verdict::Unreadable => {
                report.failed_attempts += 1;
                batch.attempts += 1;
                current = Some(batch);
                std::thread::sleep(Duration::from_millis(rng.range(5, 30)));
            }
            Verdict::Wrong(problem) => {
                report
                    .violations
                    .push(format!("client {}: {problem}", setup.index));
                if !batch.resend {
                    report
                        .unacked
                        .extend(batch.ids.iter().map(|(id, _)| id.clone()));
                }
            }
        }
    }
    report
}

// ---------------------------------------------------------------------------------------------
// The server process

/// Counts the server's warnings and errors by message, and its persists.
#[derive(Default)]
struct LogWatch {
    persists: AtomicU64,
    notes: Mutex<BTreeMap<String, u64>>,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl LogWatch {
    fn observe(&self, line: &str) {
        let mut words = line.split_whitespace();
        let _time = words.next();
        let level = words.next().unwrap_or("");
        if line.contains("persisted") {
            self.persists.fetch_add(1, Ordering::Relaxed);
        }
        if level == "WARN" || level == "ERROR" {
            let message: Vec<&str> = words.take_while(|word| !word.contains('=')).collect();
            let key = format!("{level} {}", message.join(" "));
            if let Ok(mut notes) = self.notes.lock() {
                *notes.entry(key).or_default() += 1;
            }
        }
    }
}

struct ServerProcess {
    child: Child,
    spawned: Instant,
    ready: bool,
    log_thread: Option<JoinHandle<()>>,
}

struct Harness {
    bin: PathBuf,
    config: PathBuf,
    address: SocketAddr,
    data_dir: PathBuf,
    log: Arc<Mutex<File>>,
    watch: Arc<LogWatch>,
    starts: u64,
}

impl Harness {
    fn spawn(&mut self) -> Result<ServerProcess, String> {
        self.starts += 1;
        let mut child = Command::new(&self.bin)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("VALUETRACE_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", self.bin.display()))?;
        let spawned = Instant::now();
        let stderr = child.stderr.take();
        let (log, watch, start) = (self.log.clone(), self.watch.clone(), self.starts);
        let log_thread = std::thread::spawn(move || {
            let Some(stderr) = stderr else { return };
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                watch.observe(&line);
                if let Ok(mut log) = log.lock() {
                    let _ = writeln!(log, "[start {start}] {line}");
                }
            }
        });
        Ok(ServerProcess {
            child,
            spawned,
            ready: false,
            log_thread: Some(log_thread),
        })
    }

    /// Waits for `/readyz`; returns the time from spawn to ready.
    fn wait_ready(&self, server: &mut ServerProcess) -> Result<Duration, String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok((200, _)) = request(self.address, "GET", "/readyz", None, &[]) {
                server.ready = true;
                return Ok(server.spawned.elapsed());
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "the server exited during start-up ({status}); see server.log"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the server was not ready {} s after start; see server.log",
                    READY_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&self, mut server: ServerProcess) -> Result<(), String> {
        server
            .child
            .kill()
            .map_err(|error| format!("SIGKILL failed: {error}"))?;
        server
            .child
            .wait()
            .map_err(|error| format!("reaping the server failed: {error}"))?;
        if let Some(thread) = server.log_thread.take() {
            let _ = thread.join();
        }
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit (the server persists first).
    fn stop(&self, mut server: ServerProcess) -> Result<(), String> {
        let sent = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .map_err(|error| format!("cannot run kill: {error}"))?;
        if !sent.success() {
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match server.child.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => return Err(format!("graceful stop exited with {status}")),
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.kill(server);
                    return Err("the server did not stop within 60 s of SIGTERM".into());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => return Err(format!("waiting for the server: {error}")),
            }
        }
        if let Some(thread) = server.log_thread.take() {
            let _ = thread.join();
        }
        Ok(())
    }

    fn projects_dir(&self) -> PathBuf {
        self.data_dir.join("store").join("projects")
    }

    /// Whether a Parquet file is being written right now (its temp file exists).
    fn parquet_being_written(&self) -> bool {
        walk_files(&self.projects_dir())
            .iter()
            .any(|path| path.to_string_lossy().ends_with(".parquet.tmp"))
    }

    /// What a kill left in the store: a Parquet temp file (killed mid-write), files that a
    /// compacted file replaces (killed before their deletion at the next persist).
    fn left_behind(&self) -> (bool, bool) {
        let files = walk_files(&self.projects_dir());
        let temp = files
            .iter()
            .any(|path| path.to_string_lossy().ends_with(".parquet.tmp"));
        let parquet: Vec<&PathBuf> = files
            .iter()
            .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
            .collect();
        let replaced: HashSet<PathBuf> = parquet
            .iter()
            .filter_map(|path| valuetrace_store::parquet_io::read_info(path).ok())
            .flat_map(|info| {
                let dir = info.path.parent().map(Path::to_owned).unwrap_or_default();
                info.replaces.into_iter().map(move |name| dir.join(name))
            })
            .collect();
        let replaced_present = parquet.iter().any(|path| replaced.contains(*path));
        (temp, replaced_present)
    }

    /// `requests` summed over the endpoints of the whole run.
    fn query_total(&self, from_ms: i64) -> Result<u64, String> {
        let to = valuetrace_store::wall_clock_ms() + 60_000;
        let path =
            format!("/api/v1/projects/{PROJECT}/endpoints?from={from_ms}&to={to}&limit=1000");
        let (status, body) = request(self.address, "GET", &path, Some(READ_KEY), b"")
            .map_err(|error| format!("query failed: {error}"))?;
        if status != 200 {
            return Err(format!("query answered {status}: {body}"));
        }
        let answer: serde_json::Value =
            serde_json::from_str(&body).map_err(|error| format!("query answer: {error}"))?;
        let rows = answer["endpoints"]
            .as_array()
            .ok_or_else(|| format!("query answer without endpoints: {body}"))?;
        Ok(rows
            .iter()
            .map(|row| row["requests"].as_u64().unwrap_or(0))
            .sum())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// What is stored

#[derive(Default)]
struct Stored {
    /// How many rows hold each event id.
    counts: HashMap<String, u32>,
    files: usize,
    /// Files that a compacted file replaces, still on disk (start-up deletes them): not counted.
    replaced_on_disk: usize,
    temp_files: usize,
}

/// Reads `event_id` of every live Parquet file, as start-up would see them.
fn stored_event_ids(projects_dir: &Path) -> Result<Stored, String> {
    let mut stored = Stored::default();
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for path in walk_files(projects_dir) {
        let name = path.to_string_lossy();
        if name.ends_with(".tmp") {
            stored.temp_files += 1;
        } else if name.ends_with(".parquet") {
            let dir = path.parent().map(Path::to_owned).unwrap_or_default();
            by_dir.entry(dir).or_default().push(path);
        }
    }
    for (_, paths) in by_dir {
        let mut infos = Vec::new();
        for path in paths {
            let info = valuetrace_store::parquet_io::read_info(&path)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            infos.push(info);
        }
        let replaced: HashSet<String> = infos
            .iter()
            .flat_map(|info| info.replaces.iter().cloned())
            .collect();
        for info in infos {
            let name = info
                .path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            if replaced.contains(&name) {
                stored.replaced_on_disk += 1;
                continue;
            }
            stored.files += 1;
            valuetrace_store::parquet_io::read_range(
                &info,
                i64::MIN,
                i64::MAX,
                &["event_id"],
                |batch| {
                    let column = valuetrace_store::schema::Columns::new(batch).text("event_id")?;
                    for id in column.iter().flatten() {
                        *stored.counts.entry(id.to_owned()).or_default() += 1;
                    }
                    Ok(())
                },
            )
            .map_err(|error| format!("{}: {error}", info.path.display()))?;
        }
    }
    Ok(stored)
}

// ---------------------------------------------------------------------------------------------
// The crash loop

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KillMoment {
    /// Before `/readyz` answered: store open, WAL replay, or just after.
    StartUp,
    /// Within 100 ms of becoming ready.
    JustReady,
    /// At a random moment under load.
    MidLoad,
    /// While a Parquet file is being written, or a few ms later (rename, compaction, WAL deletion).
    DuringPersist,
    /// Right after a persist finished (its log line).
    AfterPersist,
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

fn run(args: &Args) -> Result<bool, String> {
    if args.clients == 0 || args.rate == 0 {
        return Err("--clients and --rate must be positive".into());
    }
    let bin = match &args.server_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .map_err(|error| format!("cannot find this executable: {error}"))?
            .with_file_name("valuetrace"),
    };
    if !bin.is_file() {
        return Err(format!(
            "no server binary at {} (build it, or pass --server-bin)",
            bin.display()
        ));
    }
    let started = Instant::now();
    let start_ms = valuetrace_store::wall_clock_ms();
    let dir = tempfile::Builder::new()
        .prefix("valuetrace-chaos-")
        .tempdir()
        .map_err(|error| format!("cannot create a temp dir: {error}"))?;
    let address = free_address().map_err(|error| format!("no free port: {error}"))?;
    let data_dir = dir.path().join("data");
    let config = dir.path().join("valuetrace.toml");
    // Persist every second or every 1500 rows, 128 KiB WAL segments: under this load kills land
    // during persists, WAL rotations, segment deletions and compactions (4 small files per day).
    let text = format!(
        "listen = \"{address}\"\ndata_dir = \"{}\"\n\n[storage]\npersist_interval = \"1s\"\npersist_max_rows = 1500\nwal_segment_bytes = 131072\nfsync = true\n\n[[projects]]\nid = \"{PROJECT}\"\ningest_key_hashes = [\"{}\"]\nread_key_hashes = [\"{}\"]\n",
        data_dir.display(),
        valuetrace_server::auth::key_hash_string(INGEST_KEY),
        valuetrace_server::auth::key_hash_string(READ_KEY),
    );
    std::fs::write(&config, text).map_err(|error| format!("cannot write the config: {error}"))?;
    let log_path = dir.path().join("server.log");
    let log = File::create(&log_path).map_err(|error| format!("server.log: {error}"))?;
    let mut harness = Harness {
        bin,
        config,
        address,
        data_dir,
        log: Arc::new(Mutex::new(log)),
        watch: Arc::new(LogWatch::default()),
        starts: 0,
    };
    println!(
        "valuetrace-chaos: kills={} seed={} clients={} rate={}/s server={} dir={}",
        args.kills,
        args.seed,
        args.clients,
        args.rate,
        harness.bin.display(),
        dir.path().display()
    );

    let outcome = crash_loop(args, &mut harness, start_ms, started);
    let passed = match outcome {
        Ok(passed) => passed,
        Err(error) => {
            println!("valuetrace-chaos: FAIL (aborted): {error}");
            false
        }
    };
    if passed && !args.keep_dir {
        drop(dir);
    } else {
        let kept = dir.keep();
        println!("kept {} (config, data/, server.log)", kept.display());
    }
    Ok(passed)
}

fn crash_loop(
    args: &Args,
    harness: &mut Harness,
    start_ms: i64,
    started: Instant,
) -> Result<bool, String> {
    let mut rng = Rng::new(args.seed);
    let mut violations: Vec<String> = Vec::new();
    let mut server = harness.spawn()?;
    let first_start = harness.wait_ready(&mut server)?;
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let acked_events = Arc::new(AtomicU64::new(0));
    let clients: Vec<JoinHandle<ClientReport>> = (0..args.clients)
        .map(|index| {
            let setup = ClientSetup {
                index,
                address: harness.address,
                seed: args.seed,
                events_per_second: args.rate as f64 / args.clients as f64,
                stop: stop.clone(),
                abort: abort.clone(),
                acked_events: acked_events.clone(),
            };
            std::thread::spawn(move || load_client(setup))
        })
        .collect();

    let mut restarts: Vec<Duration> = Vec::new();
    let mut moments: BTreeMap<KillMoment, u64> = BTreeMap::new();
    let mut startup_kills_before_ready = 0u64;
    let mut persist_waits_missed = 0u64;
    let mut kills_mid_write = 0u64;
    let mut kills_before_replaced_deleted = 0u64;
    let mut became_ready = Instant::now();
    let mut failure: Option<String> = None;
    for kill in 1..=args.kills {
        let moment = if !server.ready {
            KillMoment::StartUp
        } else {
            match rng.below(100) {
                0..=14 => KillMoment::JustReady,
                15..=54 => KillMoment::MidLoad,
                55..=79 => KillMoment::DuringPersist,
                _ => KillMoment::AfterPersist,
            }
        };
        match moment {
            KillMoment::StartUp => {
                // Still starting (the previous round chose so): is it ready already?
                if !matches!(
                    request(harness.address, "GET", "/readyz", None, &[]),
                    Ok((200, _))
                ) {
                    startup_kills_before_ready += 1;
                }
            }
            KillMoment::JustReady => {
                let target = became_ready + Duration::from_millis(rng.below(100));
                std::thread::sleep(target.saturating_duration_since(Instant::now()));
            }
            KillMoment::MidLoad => {
                std::thread::sleep(Duration::from_millis(rng.range(100, args.max_delay_ms)));
            }
            KillMoment::DuringPersist => {
                // Half of the time as soon as the temp file shows (mid-write or mid-fsync), else
                // a little later (rename, compaction, WAL segment deletion).
                let delay = if rng.percent(50) {
                    Duration::ZERO
                } else {
                    Duration::from_millis(rng.below(40))
                };
                let deadline = Instant::now() + Duration::from_secs(4);
                while !harness.parquet_being_written() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if Instant::now() >= deadline {
                    persist_waits_missed += 1;
                }
                std::thread::sleep(delay);
            }
            KillMoment::AfterPersist => {
                let delay = Duration::from_millis(rng.below(15));
                let seen = harness.watch.persists.load(Ordering::Relaxed);
                let deadline = Instant::now() + Duration::from_secs(4);
                while harness.watch.persists.load(Ordering::Relaxed) == seen
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if Instant::now() >= deadline {
                    persist_waits_missed += 1;
                }
                std::thread::sleep(delay);
            }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            failure = Some(format!(
                "the server died on its own ({status}) before kill {kill}"
            ));
            break;
        }
        harness.kill(server)?;
        *moments.entry(moment).or_default() += 1;
        let (temp, replaced) = harness.left_behind();
        kills_mid_write += u64::from(temp);
        kills_before_replaced_deleted += u64::from(replaced);
        server = harness.spawn()?;
        // Now and then kill the next one while it starts: store open, WAL replay.
        let next_kill_in_startup = kill < args.kills && rng.percent(15);
        let restart_note = if next_kill_in_startup {
            let estimate = median(&mut restarts.clone()).max(Duration::from_millis(20));
            let wait = rng.below(estimate.as_millis() as u64 * 6 / 5 + 1);
            std::thread::sleep(Duration::from_millis(wait));
            format!("next kill {wait} ms into start-up")
        } else {
            match harness.wait_ready(&mut server) {
                Ok(took) => {
                    restarts.push(took);
                    became_ready = Instant::now();
                    format!("ready in {}", ms(took))
                }
                Err(error) => {
                    failure = Some(format!("after kill {kill}: {error}"));
                    break;
                }
            }
        };
        eprintln!(
            "kill {kill}/{} {moment:?}: acked {} events, {restart_note}",
            args.kills,
            acked_events.load(Ordering::Relaxed)
        );
    }
    if failure.is_none() && !server.ready {
        // Unreachable by construction (the last kill always waits), kept for safety.
        match harness.wait_ready(&mut server) {
            Ok(took) => restarts.push(took),
            Err(error) => failure = Some(error),
        }
    }
    if let Some(failure) = failure {
        abort.store(true, Ordering::Relaxed);
        drop(server);
        for client in clients {
            let _ = client.join();
        }
        return Err(failure);
    }

    // Let the last server take load for a moment, then stop the load and drain the retries.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut report = ClientReport::default();
    for client in clients {
        let part = client
            .join()
            .map_err(|_| "a load client panicked".to_owned())?;
        report.acked.extend(part.acked);
        report.unacked.extend(part.unacked);
        report.batches_acked += part.batches_acked;
        report.failed_attempts += part.failed_attempts;
        report.resend_batches += part.resend_batches;
        report.resend_events += part.resend_events;
        report.retry_duplicates += part.retry_duplicates;
        report.partial_retries += part.partial_retries;
        for (status, count) in part.statuses {
            *report.statuses.entry(status).or_default() += count;
        }
        violations.extend(part.violations);
    }

    // The server still accepts writes: one more batch, every event new.
    let mut final_rng = Rng::new(args.seed ^ 0xf1a1);
    let final_batch = make_batch(&mut final_rng, "final", 0, 50);
    match request(
        harness.address,
        "POST",
        "/v1/batch",
        Some(INGEST_KEY),
        &final_batch.body,
    ) {
        Ok((200, body)) => match judge(&final_batch, &body) {
            Verdict::Acked { accepted, .. } if accepted == final_batch.ids.len() as u64 => {
                report.acked.extend(final_batch.ids.iter().cloned());
            }
            _ => violations.push(format!("final batch: unexpected answer {body}")),
        },
        Ok((status, body)) => violations.push(format!("final batch answered {status}: {body}")),
        Err(error) => violations.push(format!("final batch failed: {error}")),
    }

    let mut acked: HashMap<String, bool> = HashMap::with_capacity(report.acked.len());
    let mut acked_twice = 0u64;
    for (id, is_call) in report.acked {
        if acked.insert(id, is_call).is_some() {
            acked_twice += 1;
        }
    }
    if acked_twice > 0 {
        violations.push(format!(
            "harness bug: {acked_twice} ids acknowledged in two batches"
        ));
    }
    let acked_calls = acked.values().filter(|is_call| **is_call).count() as u64;
    let query_total = match harness.query_total(start_ms - 2 * 3_600_000) {
        Ok(total) => Some(total),
        Err(error) => {
            violations.push(error);
            None
        }
    };
    if let Err(error) = harness.stop(server) {
        violations.push(error);
    }

    // Parquet: every acknowledged id exactly once, nothing unknown.
    let stored = stored_event_ids(&harness.projects_dir())?;
    let unacked: HashSet<String> = report.unacked.into_iter().collect();
    let lost: Vec<&String> = acked
        .keys()
        .filter(|id| !stored.counts.contains_key(*id))
        .collect();
    let twice: Vec<(&String, &u32)> = stored
        .counts
        .iter()
        .filter(|(_, count)| **count > 1)
        .collect();
    let unknown: Vec<&String> = stored
        .counts
        .keys()
        .filter(|id| !acked.contains_key(*id) && !unacked.contains(*id))
        .collect();
    let stored_unacked = stored
        .counts
        .keys()
        .filter(|id| unacked.contains(*id))
        .count();
    let sample = |ids: Vec<&String>| -> String {
        let mut ids: Vec<&String> = ids;
        ids.sort();
        ids.iter()
            .take(8)
            .map(|id| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !lost.is_empty() {
        violations.push(format!(
            "{} acknowledged events lost, e.g. {}",
            lost.len(),
            sample(lost.clone())
        ));
    }
    if !twice.is_empty() {
        let mut examples: Vec<String> = twice
            .iter()
            .map(|(id, count)| format!("{id}×{count}"))
            .collect();
        examples.sort();
        examples.truncate(8);
        violations.push(format!(
            "{} events stored more than once, e.g. {}",
            twice.len(),
            examples.join(", ")
        ));
    }
    if !unknown.is_empty() {
        violations.push(format!(
            "{} stored events were never sent, e.g. {}",
            unknown.len(),
            sample(unknown.clone())
        ));
    }
    if let Some(total) = query_total
        && total != acked_calls
    {
        violations.push(format!(
            "the query API counts {total} requests; {acked_calls} api_call events were acknowledged"
        ));
    }

    // A clean restart: rollups rebuilt from Parquet agree, and a re-sent batch is a duplicate.
    let mut clean = harness.spawn()?;
    let clean_start = harness.wait_ready(&mut clean)?;
    match harness.query_total(start_ms - 2 * 3_600_000) {
        Ok(total) if total == acked_calls => {}
        Ok(total) => violations.push(format!(
            "after a clean restart the query API counts {total} requests; {acked_calls} api_call events were acknowledged"
        )),
        Err(error) => violations.push(format!("after a clean restart: {error}")),
    }
    match request(
        harness.address,
        "POST",
        "/v1/batch",
        Some(INGEST_KEY),
        &final_batch.body,
    ) {
        Ok((200, body)) => match judge(&final_batch, &body) {
            Verdict::Acked { accepted: 0, .. } => {}
            _ => violations.push(format!(
                "after a clean restart the final batch, re-sent, was not all duplicates: {body}"
            )),
        },
        other => violations.push(format!(
            "after a clean restart the re-sent final batch failed: {other:?}"
        )),
    }
    if let Err(error) = harness.stop(clean) {
        violations.push(format!("after a clean restart: {error}"));
    }

    // Report.
    let mut all_restarts = restarts.clone();
    let restart_median = median(&mut all_restarts);
    let restart_max = restarts.iter().max().copied().unwrap_or_default();
    let moments_text = moments
        .iter()
        .map(|(moment, count)| format!("{moment:?}={count}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "kill moments: {moments_text} (start-up kills before ready: {startup_kills_before_ready}; persist waits that timed out: {persist_waits_missed})"
    );
    println!(
        "kills that left a Parquet temp file (mid-write): {kills_mid_write}; kills that left compacted-away files on disk: {kills_before_replaced_deleted}"
    );
    println!(
        "load: {} batches acknowledged, {} failed attempts retried, {} retried events answered as duplicates (lost answers), {} partly-duplicate retries; HTTP statuses {:?}",
        report.batches_acked,
        report.failed_attempts,
        report.retry_duplicates,
        report.partial_retries,
        report.statuses
    );
    println!(
        "store: {} live parquet files, {} replaced files awaiting deletion (not counted), {} temp files, {} persists logged",
        stored.files,
        stored.replaced_on_disk,
        stored.temp_files,
        harness.watch.persists.load(Ordering::Relaxed)
    );
    println!(
        "restarts to /readyz: n={} median={} max={} first={} last={} (initial start {}, clean restart {})",
        restarts.len(),
        ms(restart_median),
        ms(restart_max),
        ms(restarts.first().copied().unwrap_or_default()),
        ms(restarts.last().copied().unwrap_or_default()),
        ms(first_start),
        ms(clean_start)
    );
    if let Ok(notes) = harness.watch.notes.lock()
        && !notes.is_empty()
    {
        println!("server warnings and errors:");
        for (message, count) in notes.iter() {
            println!("  {count:>6} × {message}");
        }
    }
    for violation in &violations {
        println!("VIOLATION: {violation}");
    }
    let passed = violations.is_empty();
    println!(
        "valuetrace-chaos: {} kills={} acked_ids={} (api_calls={}) stored_rows={} duplicates_sent={} (re-sent acknowledged: {} events in {} batches; retries answered as duplicates: {}) lost={} double_counted={} unknown={} stored_unacked={} query_total={} restart_median={} restart_max={} elapsed={:.1}s seed={}",
        if passed { "PASS" } else { "FAIL" },
        moments.values().sum::<u64>(),
        acked.len(),
        acked_calls,
        stored
            .counts
            .values()
            .map(|count| *count as u64)
            .sum::<u64>(),
        report.resend_events + report.retry_duplicates,
        report.resend_events,
        report.resend_batches,
        report.retry_duplicates,
        lost.len(),
        twice.len(),
        unknown.len(),
        stored_unacked,
        query_total.map_or("?".into(), |total| total.to_string()),
        ms(restart_median),
        ms(restart_max),
        started.elapsed().as_secs_f64(),
        args.seed
    );
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_watch_counts_persists_and_warnings_by_message() {
        let watch = LogWatch::default();
        let colored = "2026-11-22T02:48:38.175620Z \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mvaluetrace_wal::replay\u{1b}[0m\u{1b}[2m:\u{1b}[0m truncating torn tail of the last wal segment segment=/x offset=16";
        watch.observe(&strip_ansi(colored));
        watch.observe("2026-11-22T02:48:39Z  WARN valuetrace_wal::replay: truncating torn tail of the last wal segment segment=/y offset=9");
        watch.observe(
            "2026-11-22T02:48:40Z  INFO valuetrace_server: persisted files=2 rows=10 compacted=0",
        );
        assert_eq!(watch.persists.load(Ordering::Relaxed), 1);
        let notes = watch.notes.lock().expect("lock");
        assert_eq!(
            notes.get("WARN valuetrace_wal::replay: truncating torn tail of the last wal segment"),
            Some(&2),
            "{notes:?}"
        );
    }

    #[test]
    fn an_answer_must_account_for_every_event() {
        let mut rng = Rng::new(1);
        let batch = make_batch(&mut rng, "t", 1, 3);
        assert!(matches!(
            judge(&batch, r#"{"accepted":1,"duplicates":2,"rejected":[]}"#),
            Verdict::Acked {
                accepted: 1,
                duplicates: 2
            }
        ));
        assert!(matches!(
            judge(&batch, r#"{"accepted":2,"duplicates":0,"rejected":[]}"#),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            judge(
                &batch,
                r#"{"accepted":2,"duplicates":0,"rejected":[{"index":2}]}"#
            ),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            judge(&batch, r#"{"accepted":3,"#),
            Verdict::Unreadable
        ));
    }
}
