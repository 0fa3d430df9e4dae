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
    pub storage: StorageConfig,
    pub projects: Vec<ProjectConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("valuetrace-data"),
            limits: IngestLimits::default(),
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
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 5 << 20,
            max_decompressed_bytes: 20 << 20,
            max_event_bytes: 32 << 10,
            max_batch_events: 10_000,
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
}

/// Durations of the storage section, parsed.
#[derive(Debug, Clone, Copy)]
pub struct StorageDurations {
    pub persist_interval_ms: i64,
    pub minute_rollup_retention_ms: i64,
    pub dedup_window_ms: i64,
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
                        "storage.{field}: `{text}` is not a duration such as `30s`, `15m`, `48h`"
                    ));
                    0
                })
        };
        let durations = StorageDurations {
            persist_interval_ms: duration(
                "persist_interval",
                &self.storage.persist_interval,
                &mut problems,
            ),
            minute_rollup_retention_ms: duration(
                "minute_rollup_retention",
                &self.storage.minute_rollup_retention,
                &mut problems,
            ),
            dedup_window_ms: duration("dedup_window", &self.storage.dedup_window, &mut problems),
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
