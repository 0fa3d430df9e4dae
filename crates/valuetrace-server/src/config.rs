//! The root configuration (`valuetrace.toml`): defaults < file < environment < command-line flags.
//!
//! Every field is documented in `config/valuetrace.example.toml`, which a test loads. Keys are
//! stored only as SHA-256 hashes (`sha256:<hex>`); `valuetrace keygen` prints a key and its hash.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use valuetrace_model::time::parse_duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory holding the WAL, the Parquet files and generated secrets.
    pub data_dir: PathBuf,
    pub limits: IngestLimits,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub projects: Vec<ProjectConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("valuetrace-data"),
            limits: IngestLimits::default(),
            http: HttpConfig::default(),
            storage: StorageConfig::default(),
            projects: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestLimits {
    /// Largest request body as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Largest body after decompression; enforced while decompressing.
    pub max_decompressed_bytes: usize,
    /// Largest single event (its JSON text).
    pub max_event_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Memory all ingest requests in flight may hold (bodies, decoded bodies, parsed events);
    /// beyond it requests are answered 503 with `Retry-After`.
    pub max_in_flight_bytes: usize,
    /// The part of `max_in_flight_bytes` and of `storage.max_buffered_rows` one project may hold
    /// (0 < share <= 1) when several are configured, so that a noisy project cannot starve the
    /// others.
    pub project_in_flight_share: f64,
    /// Default rate limit of a project in events per second (0: none); beyond it, 429.
    pub events_per_second: f64,
    /// Default burst of a project in events: how far above its rate it may go for a moment.
    pub burst_events: f64,
    /// Events whose (skew-corrected) timestamp lies further in the future are clamped to the
    /// receive time and counted (`valuetrace_ingest_clamped_events_total`).
    pub max_future: String,
    /// Events older than this (by timestamp, at receipt) are refused with a clear reason.
    pub max_event_age: String,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 5 << 20,
            max_decompressed_bytes: 20 << 20,
            max_event_bytes: 32 << 10,
            max_batch_events: 10_000,
            max_in_flight_bytes: 256 << 20,
            project_in_flight_share: 0.5,
            events_per_second: 100_000.0,
            burst_events: 200_000.0,
            max_future: "10m".into(),
            max_event_age: "400d".into(),
        }
    }
}

/// Connection handling: slow and abusive clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A request's headers must arrive within this; it is also how long an idle keep-alive
    /// connection is kept (hyper starts the header timer when it waits for the next request).
    pub header_read_timeout: String,
    /// A request's body must arrive within this after its headers, else 408.
    pub body_read_timeout: String,
    /// Open connections at most; further connections are closed at once.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: "10s".into(),
            body_read_timeout: "30s".into(),
            max_connections: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// How often buffered rows are written to Parquet (the WAL covers them until then).
    pub persist_interval: String,
    /// Persist earlier when this many rows are buffered.
    pub persist_max_rows: usize,
    /// How long minute rollups are kept.
    pub minute_rollup_retention: String,
    /// How long event ids are remembered for deduplication (at least 24h).
    pub dedup_window: String,
    /// WAL segment size before rotation.
    pub wal_segment_bytes: u64,
    /// fsync every acknowledged batch; turn off only for throwaway benchmarks.
    pub fsync: bool,
    /// Rows held in memory at most, buffered or being persisted (the writer is behind, e.g. the
    /// disk is full); beyond it ingest answers 503 with `Retry-After` instead of growing memory.
    pub max_buffered_rows: usize,
    /// Memory the business answers' fact cache may hold (compact columns of Parquet files and
    /// buffers, least recently used out first).
    pub fact_cache_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            persist_interval: "30s".into(),
            persist_max_rows: 1_000_000,
            minute_rollup_retention: "48h".into(),
            dedup_window: "48h".into(),
            wal_segment_bytes: 64 << 20,
            fsync: true,
            max_buffered_rows: 3_000_000,
            fact_cache_bytes: 6 << 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Identifier used in URLs and paths: lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// SHA-256 hashes (`sha256:<hex>`) of the keys allowed to write events.
    #[serde(default)]
    pub ingest_key_hashes: Vec<String>,
    /// SHA-256 hashes of the keys allowed to read answers.
    #[serde(default)]
    pub read_key_hashes: Vec<String>,
    /// Environment variable holding the pseudonymization secret; when unset or empty, a secret
    /// is generated on first start and kept in `<data_dir>/secrets/<id>.key` (mode 0600).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Version of the pseudonymization secret. Raising it starts a new secret (a new file, or
    /// the value of `secret_env`): pseudonyms stay consistent within a version, and version 2
    /// onwards are prefixed `v<N>.` so the two never collide. See docs/reliability.md.
    #[serde(default = "first_version")]
    pub secret_version: u32,
    /// This project's rate limit in events per second (default: `limits.events_per_second`).
    #[serde(default)]
    pub events_per_second: Option<f64>,
    /// This project's burst in events (default: `limits.burst_events`).
    #[serde(default)]
    pub burst_events: Option<f64>,
    /// Business analysis settings: attribution, costs, error rules, gap pairs, features.
    #[serde(default)]
    pub analysis: valuetrace_facts::AnalysisConfig,
    /// The metric catalog (`[[projects.metrics]]`): business metrics as code.
    #[serde(default)]
    pub metrics: Vec<valuetrace_alerts::MetricDef>,
    /// Alert rules, channels and the Prometheus exposition settings (`[projects.alerts]`).
    #[serde(default)]
    pub alerts: valuetrace_alerts::AlertsConfig,
}

fn first_version() -> u32 {
    1
}

impl ProjectConfig {
    /// A project with default settings and the given keys' hashes.
    pub fn new(id: &str, ingest_key_hashes: Vec<String>, read_key_hashes: Vec<String>) -> Self {
        ProjectConfig {
            id: id.to_owned(),
            name: String::new(),
            ingest_key_hashes,
            read_key_hashes,
            secret_env: None,
            secret_version: 1,
            events_per_second: None,
            burst_events: None,
            analysis: Default::default(),
            metrics: Vec::new(),
            alerts: Default::default(),
        }
    }
}

/// Durations of the configuration, parsed.
#[derive(Debug, Clone, Copy)]
pub struct StorageDurations {
    pub persist_interval_ms: i64,
    pub minute_rollup_retention_ms: i64,
    pub dedup_window_ms: i64,
    pub max_future_ms: i64,
    pub max_event_age_ms: i64,
    pub header_read_timeout_ms: i64,
    pub body_read_timeout_ms: i64,
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Applies `VALUETRACE_LISTEN` and `VALUETRACE_DATA_DIR` when set.
    pub fn apply_env(&mut self) -> Result<(), String> {
        if let Ok(listen) = std::env::var("VALUETRACE_LISTEN") {
            self.listen = listen
                .parse()
                .map_err(|error| format!("VALUETRACE_LISTEN `{listen}`: {error}"))?;
        }
        if let Ok(dir) = std::env::var("VALUETRACE_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        Ok(())
    }

    /// Checks every rule; returns all problems rather than fixing values silently.
    pub fn validate(&self) -> Result<StorageDurations, String> {
        let mut problems = Vec::new();
        let duration = |field: &str, text: &str, problems: &mut Vec<String>| {
            parse_duration(text)
                .filter(|ms| *ms > 0)
                .unwrap_or_else(|| {
                    problems.push(format!(
                        "{field}: `{text}` is not a duration such as `30s`, `15m`, `48h`"
                    ));
                    0
                })
        };
        let durations = StorageDurations {
            persist_interval_ms: duration(
                "storage.persist_interval",
                &self.storage.persist_interval,
                &mut problems,
            ),
            minute_rollup_retention_ms: duration(
                "storage.minute_rollup_retention",
                &self.storage.minute_rollup_retention,
                &mut problems,
            ),
            dedup_window_ms: duration(
                "storage.dedup_window",
                &self.storage.dedup_window,
                &mut problems,
            ),
            max_future_ms: duration("limits.max_future", &self.limits.max_future, &mut problems),
            max_event_age_ms: duration(
                "limits.max_event_age",
                &self.limits.max_event_age,
                &mut problems,
            ),
            header_read_timeout_ms: duration(
                "http.header_read_timeout",
                &self.http.header_read_timeout,
                &mut problems,
            ),
            body_read_timeout_ms: duration(
                "http.body_read_timeout",
                &self.http.body_read_timeout,
                &mut problems,
            ),
        };
        if durations.dedup_window_ms > 0 && durations.dedup_window_ms < 24 * 3_600_000 {
            problems.push(
                "storage.dedup_window: must be at least 24h so that client retries are recognised"
                    .into(),
            );
        }
        let limits = &self.limits;
        if limits.max_decompressed_bytes < limits.max_body_bytes {
            problems.push(
                "limits.max_decompressed_bytes: must be at least limits.max_body_bytes".into(),
            );
        }
        if limits.max_event_bytes == 0 || limits.max_batch_events == 0 {
            problems.push("limits: max_event_bytes and max_batch_events must be positive".into());
        }
        if limits.max_in_flight_bytes < limits.max_body_bytes {
            problems
                .push("limits.max_in_flight_bytes: must be at least limits.max_body_bytes".into());
        }
        if !(limits.project_in_flight_share > 0.0 && limits.project_in_flight_share <= 1.0) {
            problems.push("limits.project_in_flight_share: must be in (0, 1]".into());
        }
        if self.http.max_connections == 0 {
            problems.push("http.max_connections: must be positive".into());
        }
        if self.storage.max_buffered_rows <= self.storage.persist_max_rows {
            problems.push(
                "storage.max_buffered_rows: must be above storage.persist_max_rows, or every persist would start with ingest refused".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (index, project) in self.projects.iter().enumerate() {
            let valid_id = !project.id.is_empty()
                && project.id.len() <= 64
                && project.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid_id {
                problems.push(format!(
                    "projects[{index}].id: `{}` must be 1-64 of a-z, 0-9, `-`, `_`",
                    project.id
                ));
            }
            if !seen.insert(project.id.clone()) {
                problems.push(format!(
                    "projects[{index}].id: `{}` is defined twice",
                    project.id
                ));
            }
            let rate = project
                .events_per_second
                .unwrap_or(limits.events_per_second);
            let burst = project.burst_events.unwrap_or(limits.burst_events);
            if !(rate.is_finite() && rate >= 0.0 && burst.is_finite() && burst >= 1.0) {
                problems.push(format!(
                    "projects[{index}] ({}): events_per_second must be >= 0 (0: no limit) and burst_events >= 1",
                    project.id
                ));
            }
            problems.extend(
                project
                    .analysis
                    .problems(&format!("projects[{index}] ({}).analysis", project.id)),
            );
            let at = format!("projects[{index}] ({})", project.id);
            if let Err(found) =
                valuetrace_alerts::ProjectAlerts::build(&project.metrics, &project.alerts, &at)
            {
                problems.extend(found);
            }
            for hash in &project.alerts.scrape_token_hashes {
                if crate::auth::parse_key_hash(hash).is_none() {
                    problems.push(format!("{at}.alerts.scrape_token_hashes: `{hash}` must be `sha256:` followed by 64 hex digits"));
                }
            }
            if project.secret_version == 0 {
                problems.push(format!(
                    "projects[{index}] ({}): secret_version starts at 1",
                    project.id
                ));
            }
            for hash in project
                .ingest_key_hashes
                .iter()
                .chain(&project.read_key_hashes)
            {
                if crate::auth::parse_key_hash(hash).is_none() {
                    problems.push(format!("projects[{index}] ({}): key hash `{hash}` must be `sha256:` followed by 64 hex digits", project.id));
                }
            }
        }
        if problems.is_empty() {
            Ok(durations)
        } else {
            Err(problems.join("\n"))
        }
    }
}
