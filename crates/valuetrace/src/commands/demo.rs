//! `valuetrace demo`: the whole product on generated traffic, in one command.
//!
//! Starts the server on the embedded store, creates project `demo`, backfills `--days` of
//! realistic e-commerce traffic through the real ingest API (`POST /v1/batch`), prints the
//! address, the keys and a summary table, writes them to `<data_dir>/demo.json`, then keeps
//! sending live traffic until Ctrl-C.

use crate::demo::traffic::{Generator, TrafficConfig};
use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use valuetrace_model::time::{DAY_MS, HOUR_MS};
use valuetrace_server::Server;
use valuetrace_server::auth::{generate_key, key_hash_string};
use valuetrace_server::config::{Config, ProjectConfig};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps its data (wiped at start); default: the user's data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: std::net::SocketAddr,
    /// Days of history to backfill.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Seed of the traffic generator: the same seed gives the same traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Exit after the backfill and the summary instead of sending live traffic.
    #[arg(long)]
    pub no_live: bool,
}

/// What the demo writes to `demo.json` for scripts and `valuetrace query`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoFile {
    pub url: String,
    pub project: String,
    pub ingest_key: String,
    pub read_key: String,
}

const PROJECT: &str = "demo";
const BATCH_SIZE: usize = 500;
const IN_FLIGHT: usize = 4;

/// `$XDG_DATA_HOME/valuetrace/demo`, else `~/.local/share/valuetrace/demo`.
pub fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("valuetrace").join("demo")
}

pub fn read_demo_file(dir: &Path) -> Option<DemoFile> {
    serde_json::from_slice(&std::fs::read(dir.join("demo.json")).ok()?).ok()
}

fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join("demo.json").exists() {
            bail!(
                "{} is not empty and was not created by the demo; pass another --data-dir",
                dir.display()
            );
        }
        for sub in ["store", "wal", "secrets", "demo.json"] {
            let path = dir.join(sub);
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("cannot clear {}", path.display()))?;
            } else if path.exists() {
                std::fs::remove_file(&path)?;
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    prepare_data_dir(&data_dir)?;
    let ingest_key = generate_key("vt_ingest");
    let read_key = generate_key("vt_read");
    let config = Config {
        listen: args.listen,
        data_dir: data_dir.clone(),
        projects: vec![ProjectConfig {
            name: "Demo Shop API".into(),
            // The demo loads days of history at once: no rate limit.
            events_per_second: Some(0.0),
            analysis: crate::demo::analysis::demo_analysis(),
            metrics: crate::demo::alerts::demo_alerts().0,
            alerts: crate::demo::alerts::demo_alerts().1,
            ..ProjectConfig::new(
                PROJECT,
                vec![key_hash_string(&ingest_key)],
                vec![key_hash_string(&read_key)],
            )
        }],
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (pass --listen 127.0.0.1:0 for a free port)",
                    args.listen
                )
            })?;
        let address = listener.local_addr()?;
        let url = format!("http://{address}");
        let server = Server::open(config).map_err(anyhow::Error::msg)?;
        let running = server.spawn(listener);
        let demo = DemoFile {
            url: url.clone(),
            project: PROJECT.into(),
            ingest_key,
            read_key,
        };
        let outcome = drive(&args, &demo, &data_dir).await;
        running.stop().await.context("server failed")?;
        outcome
    })
}

async fn drive(args: &DemoArgs, demo: &DemoFile, data_dir: &Path) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().build()?;
    let sender = Arc::new(Sender {
        client,
        url: format!("{}/v1/batch", demo.url),
        key: demo.ingest_key.clone(),
    });
    let now = valuetrace_store::wall_clock_ms();
    let start = now - i64::from(args.days) * DAY_MS;
    let mut generator = Generator::new(TrafficConfig::new(args.seed, start, now));
    let incidents = generator.incidents();
    eprintln!(
        "valuetrace demo: backfilling {} days of traffic through {} ...",
        args.days, sender.url
    );
    let began = Instant::now();
    let mut totals = Totals::default();
    let mut cursor = start;
    while cursor < now {
        cursor = (cursor + HOUR_MS).min(now);
        let mut events = generator.next_until(cursor);
        for event in &mut events {
            // A backfill is an import: `sent_at` would describe a send that never happened.
            if let Some(object) = event.as_object_mut() {
                object.remove("sent_at");
            }
        }
        totals.add(sender.send_all(events).await?);
        if (cursor - start) % DAY_MS == 0 {
            eprintln!(
                "  day {:>2}/{}: {} events accepted so far",
                (cursor - start) / DAY_MS,
                args.days,
                totals.accepted
            );
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    eprintln!(
        "backfill done: {} accepted, {} duplicates, {} rejected in {elapsed:.1} s ({:.0} events/s)",
        totals.accepted,
        totals.duplicates,
        totals.rejected,
        totals.accepted as f64 / elapsed.max(1e-9)
    );
    std::fs::write(data_dir.join("demo.json"), serde_json::to_vec_pretty(demo)?)?;
    print_summary(demo, data_dir).await?;
    println!();
    println!(
        "The history spans {} route templates and holds these incidents to find:",
        crate::demo::traffic::route_count()
    );
    for incident in &incidents {
        println!(
            "  {}: {} – {}",
            incident.name,
            valuetrace_model::time::format_rfc3339(incident.start_ms),
            valuetrace_model::time::format_rfc3339(incident.end_ms)
        );
    }
    if args.no_live {
        return Ok(());
    }
    // A live incident so the alert rules have something to fire on and resolve: a flash sale
    // (traffic well above the same hour of earlier days) during which checkout fails under load.
    // Sessions up to five minutes ahead were simulated during the backfill; both start later.
    let live_start = valuetrace_store::wall_clock_ms();
    let minute = 60_000;
    let (sale, burst) = generator.schedule_live_incident(
        (live_start + 5 * minute, live_start + 30 * minute),
        (live_start + 7 * minute, live_start + 19 * minute),
    );
    let time = valuetrace_model::time::format_rfc3339;
    eprintln!(
        "sending live traffic; press Ctrl-C to stop.\n\
         Live incident: a flash sale {} – {} brings several times the usual traffic, and \
         checkout fails under the load {} – {}.\n\
         Watch `valuetrace alerts states{}`: CheckoutErrorBurst fires a few minutes into the \
         failures and resolves within ten minutes after them; TrafficAnomalyDetection sees the \
         sale. Transitions are printed here as they happen.",
        time(sale.start_ms),
        time(sale.end_ms),
        time(burst.start_ms),
        time(burst.end_ms),
        alerts_location(demo, data_dir)
    );
    let mut seen_transitions = 0usize;
    let mut last_alert_check = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    // One signal future for the whole loop, so a Ctrl-C during a send is not missed.
    let shutdown = crate::commands::shutdown_signal();
    tokio::pin!(shutdown);
    let mut live = Totals::default();
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {
                let events = generator.next_until(valuetrace_store::wall_clock_ms());
                match sender.send_all(events).await {
                    Ok(sent) => live.add(sent),
                    Err(error) => eprintln!("live traffic: {error:#}"),
                }
                if last_alert_check.elapsed() >= Duration::from_secs(10) {
                    last_alert_check = Instant::now();
                    seen_transitions = print_alert_changes(demo, seen_transitions).await;
                }
                if last_report.elapsed() >= Duration::from_secs(60) {
                    eprintln!("live: {} events accepted in the last minute ({} rejected)", live.accepted, live.rejected);
                    live = Totals::default();
                    last_report = Instant::now();
                }
            }
        }
    }
    eprintln!("stopping: persisting buffered data ...");
    Ok(())
}

/// Prints the alert transitions after the first `seen` (history is newest first); returns how
/// many there are now.
async fn print_alert_changes(demo: &DemoFile, seen: usize) -> usize {
    let url = format!(
        "{}/api/v1/projects/{}/alerts/history?limit=1000",
        demo.url, demo.project
    );
    let answer: Option<Value> = async {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&demo.read_key)
            .send()
            .await
            .ok()?;
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }
    .await;
    let Some(transitions) = answer.and_then(|a| a["transitions"].as_array().cloned()) else {
        return seen;
    };
    for transition in transitions
        .iter()
        .take(transitions.len().saturating_sub(seen))
        .rev()
    {
        let to = transition["to"].as_str().unwrap_or_default();
        if to == "firing" || to == "resolved" {
            eprintln!(
                "alert {} {to}: {} ({}) {}",
                transition["rule"].as_str().unwrap_or_default(),
                transition["value"],
                transition["threshold"].as_str().unwrap_or_default(),
                transition["labels"]
            );
        }
    }
    transitions.len()
}

async fn print_summary(demo: &DemoFile, data_dir: &Path) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/projects/{}/endpoints?since=24h&limit=15",
            demo.url, demo.project
        ))
        .bearer_auth(&demo.read_key)
        .send()
        .await?;
    let answer: Value = response.json_value().await?;
    println!();
    println!("valuetrace demo is running at {}", demo.url);
    println!(
        "  dashboard:  {}/login?project={}&key={}  (open it and press Sign in)",
        demo.url, demo.project, demo.read_key
    );
    println!("  project:    {}", demo.project);
    println!("  ingest key: {}", demo.ingest_key);
    println!("  read key:   {}", demo.read_key);
    println!(
        "  data dir:   {}  (address and keys in demo.json)",
        data_dir.display()
    );
    println!();
    println!(
        "Top endpoints, last 24 h ({} endpoints in all):",
        answer["total_endpoints"]
    );
    println!("{}", crate::commands::query::endpoints_table(&answer));
    let mut by_value: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/projects/{}/endpoints?since=24h&sort=value&limit=5",
            demo.url, demo.project
        ))
        .bearer_auth(&demo.read_key)
        .send()
        .await?
        .json_value()
        .await?;
    if let Some(rows) = by_value["endpoints"].as_array_mut() {
        rows.retain(|row| row["value_sum"].as_f64().unwrap_or(0.0) > 0.0);
    }
    println!("Where the order value flows, last 24 h:");
    println!("{}", crate::commands::query::endpoints_table(&by_value));
    println!();
    let impact: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/projects/{}/impact?since=7d",
            demo.url, demo.project
        ))
        .bearer_auth(&demo.read_key)
        .send()
        .await?
        .json_value()
        .await?;
    println!("Which endpoints create value, last 7 days (Business Impact Score):");
    crate::commands::answers::print_impact(
        &impact,
        12,
        &mut crate::commands::output::Output::terminal(),
    );
    println!();
    let exe = std::env::current_exe()
        .map(|path| shell_word(&path.display().to_string()))
        .unwrap_or_else(|_| "valuetrace".into());
    let at = query_location(data_dir);
    let commands = [
        ("impact --since 7d", "value, adoption, cost, impact score"),
        (
            "errors --since 7d",
            "error classes, value at risk, lost conversions",
        ),
        (
            "integrations --since 7d --by plan",
            "stripe vs paypal, per plan",
        ),
        (
            "gaps --since 7d --by plan",
            "payments whose webhook never came",
        ),
        (
            "latency-conversion --since 7d --route 'POST /api/checkout'",
            "",
        ),
        ("scorecard --since 7d", "BRIDGE"),
        ("priority --since 7d", "feature priority"),
        (
            "funnel --since 7d --step 'GET /api/products' --step 'POST /api/cart/items' --step 'POST /api/checkout' --step outcome:purchase",
            "",
        ),
        (
            "paths --since 7d --start 'POST /api/cart/items' --depth 4",
            "",
        ),
        ("retention --since 14d --period day --periods 7", ""),
        ("ttv --since 14d", "first call → first purchase"),
        (
            "churn-risk --recent 3d --baseline 7d",
            "accounts going quiet, with a back-test",
        ),
        (
            "experiment --since 14d --experiment reco_algo --endpoints '/api/recommendations*'",
            "",
        ),
        ("endpoints --since 7d --sort p95", ""),
        ("endpoints --plan enterprise --service payments", ""),
        (
            "timeseries --metric error_rate --interval 1h --since 3d",
            "",
        ),
        ("endpoints --since 7d --csv", "any query as CSV"),
    ];
    println!("Try (while the demo runs, from any terminal):");
    for (command, comment) in commands {
        let comment = if comment.is_empty() {
            String::new()
        } else {
            format!("   # {comment}")
        };
        println!("  {exe} query {command}{at}{comment}");
    }
    println!(
        "Or set the connection once per shell (then plain `{exe} query ...` and `{exe} alerts ...` ask this demo):"
    );
    println!(
        "  export VALUETRACE_URL={} VALUETRACE_READ_KEY={} VALUETRACE_PROJECT={}",
        demo.url, demo.read_key, demo.project
    );
    println!(
        "  curl -H 'Authorization: Bearer {}' '{}/api/v1/projects/{}/endpoints?since=24h'",
        demo.read_key, demo.url, demo.project
    );
    Ok(())
}

/// What the printed `query` commands need to find this demo: nothing in the default data
/// directory (the CLI looks there), else ` --data-dir DIR`, absolute so that the command works
/// from any directory.
fn query_location(data_dir: &Path) -> String {
    if data_dir == default_data_dir() {
        return String::new();
    }
    let absolute = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!(
        " --data-dir {}",
        shell_word(&absolute.display().to_string())
    )
}

/// What the printed `alerts` commands need to find this demo (they take no --data-dir).
fn alerts_location(demo: &DemoFile, data_dir: &Path) -> String {
    if data_dir == default_data_dir() {
        String::new()
    } else {
        format!(
            " --url {} --key {} --project {}",
            demo.url, demo.read_key, demo.project
        )
    }
}

/// `word` as one POSIX shell word: as is when it holds only safe characters, else single-quoted.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
    }
}

struct Sender {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Sender {
    /// Sends events in batches of 500, a few batches in flight at once.
    async fn send_all(self: &Arc<Self>, events: Vec<Value>) -> anyhow::Result<Totals> {
        let mut totals = Totals::default();
        let mut in_flight = JoinSet::new();
        for chunk in events.chunks(BATCH_SIZE) {
            let body = serde_json::to_vec(chunk)?;
            let sender = self.clone();
            in_flight.spawn(async move { sender.send(body).await });
            if in_flight.len() >= IN_FLIGHT
                && let Some(result) = in_flight.join_next().await
            {
                totals.add(result??);
            }
        }
        while let Some(result) = in_flight.join_next().await {
            totals.add(result??);
        }
        Ok(totals)
    }

    async fn send(&self, body: Vec<u8>) -> anyhow::Result<Totals> {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .context("sending a batch")?;
        let status = response.status();
        let answer: Value =
            serde_json::from_slice(&response.bytes().await?).context("reading the batch answer")?;
        // A batch whose events were all rejected answers 400 with the per-event body.
        let wholly_rejected =
            status == reqwest::StatusCode::BAD_REQUEST && answer["rejected"].is_array();
        if !status.is_success() && !wholly_rejected {
            bail!(
                "batch refused with {status}: {}",
                answer["error"]["message"]
            );
        }
        let rejected = answer["rejected"].as_array().map_or(0, Vec::len) as u64;
        if let Some(first) = answer["rejected"].as_array().and_then(|list| list.first()) {
            tracing::warn!(error = %first["error"], "demo event rejected");
        }
        Ok(Totals {
            accepted: answer["accepted"].as_u64().unwrap_or(0),
            duplicates: answer["duplicates"].as_u64().unwrap_or(0),
            rejected,
        })
    }
}

/// Reads a response body as JSON (reqwest is built without its `json` feature).
trait JsonValue {
    async fn json_value(self) -> anyhow::Result<Value>;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> anyhow::Result<Value> {
        let status = self.status();
        let value: Value =
            serde_json::from_slice(&self.bytes().await?).context("the server answered non-JSON")?;
        if !status.is_success() {
            bail!(
                "the server answered {status}: {}",
                value["error"]["message"]
            );
        }
        Ok(value)
    }
}
