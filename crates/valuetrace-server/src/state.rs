//! The shared state of the request handlers, and what a configuration reload may change.
//!
//! Keys and projects live in [`Live`] behind an `RwLock<Arc<_>>`: a request takes a snapshot
//! (one `Arc` clone), a reload swaps in a new one, so keys are added or revoked without a restart
//! and without blocking requests. Everything else (limits, storage, listen address) needs a
//! restart; a reload that changes it says so in the log.

use crate::Clock;
use crate::admission::{InFlight, TokenBucket};
use crate::auth::{KeyEntry, KeyRing, KeyRole, parse_key_hash};
use crate::config::{Config, IngestLimits, ProjectConfig};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pseudonym::{self, Pseudonymizer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use valuetrace_model::Limits;

pub struct ProjectRuntime {
    pub name: String,
    pub pseudonymizer: Pseudonymizer,
    /// `None`: no rate limit.
    pub bucket: Option<Arc<TokenBucket>>,
    rate: (f64, f64),
    pub analysis: Arc<valuetrace_facts::AnalysisConfig>,
    /// The metric catalog, alert rules and channels, checked.
    pub alerts: Arc<valuetrace_alerts::ProjectAlerts>,
    /// SHA-256 hashes of the tokens that may scrape the project's catalog metrics.
    pub scrape_token_hashes: Vec<[u8; 32]>,
}

/// The reloadable part: keys and projects.
pub struct Live {
    pub keys: KeyRing,
    pub projects: HashMap<String, ProjectRuntime>,
}

pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    live: RwLock<Arc<Live>>,
    pub limits: IngestLimits,
    pub validation: Limits,
    pub in_flight: Arc<InFlight>,
    pub metrics: Metrics,
    pub max_buffered_rows: usize,
    /// The part of `max_buffered_rows` one project may hold.
    pub project_max_buffered_rows: usize,
    pub body_read_timeout: Duration,
    pub clock: Clock,
    pub insights: Arc<valuetrace_insights::Insights>,
    /// Alert engines by project (state, history, silences, outbox), opened on first use.
    pub alert_engines: crate::alerts_api::AlertEngines,
    /// Per-project, per-hour ingest quality counters (`<data_dir>/quality.json`).
    pub quality: crate::quality::QualityLedger,
    /// The dashboard's sessions and answer cache (they outlive any one router).
    pub dashboard: Arc<valuetrace_dashboard::Memory>,
    data_dir: PathBuf,
    config: RwLock<Config>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub projects: usize,
    pub keys: usize,
    pub added_projects: Vec<String>,
    pub removed_projects: Vec<String>,
    /// Settings that differ from the running ones but only take effect after a restart.
    pub needs_restart: Vec<String>,
}

impl AppState {
    pub fn new(pipeline: Arc<Pipeline>, config: &Config, clock: Clock) -> Result<Self, String> {
        let durations = config.validate()?;
        let live = build_live(config, None)?;
        let validation = Limits {
            max_future_ms: durations.max_future_ms,
            max_age_ms: durations.max_event_age_ms,
            ..Limits::default()
        };
        let share = if config.projects.len() > 1 {
            config.limits.project_in_flight_share
        } else {
            1.0
        };
        let quality =
            crate::quality::QualityLedger::open(config.data_dir.join("quality.json"), clock());
        Ok(AppState {
            pipeline,
            live: RwLock::new(Arc::new(live)),
            limits: config.limits.clone(),
            validation,
            in_flight: InFlight::new(config.limits.max_in_flight_bytes, share),
            metrics: Metrics::default(),
            max_buffered_rows: config.storage.max_buffered_rows,
            project_max_buffered_rows: (config.storage.max_buffered_rows as f64 * share) as usize,
            body_read_timeout: Duration::from_millis(durations.body_read_timeout_ms as u64),
            clock,
            insights: Arc::new(valuetrace_insights::Insights::new(
                config.storage.fact_cache_bytes,
            )),
            alert_engines: crate::alerts_api::AlertEngines::new(config.data_dir.join("alerts")),
            quality,
            dashboard: Arc::default(),
            data_dir: config.data_dir.clone(),
            config: RwLock::new(config.clone()),
        })
    }

    /// Writes buffered rows to Parquet ([`Pipeline::persist`]) and saves the data-quality
    /// ledger (a failure to save it is logged, never fails the persist). Blocking.
    pub fn persist(
        &self,
        now_ms: i64,
    ) -> Result<valuetrace_store::PersistStats, crate::pipeline::PipelineError> {
        let result = self.pipeline.persist(now_ms);
        self.quality.save_logged();
        result
    }

    /// The current keys and projects.
    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The project `key` may act on in `role`.
    pub fn project_of(&self, key: &str, role: KeyRole) -> Option<String> {
        self.live().keys.project_of(key, role)
    }

    /// Applies the keys and projects of `config` (validated first; on any error nothing
    /// changes). Rate-limit buckets of unchanged projects keep their state.
    pub fn reload(&self, config: &Config) -> Result<ReloadSummary, String> {
        let result = self.try_reload(config);
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.metrics
            .inc("valuetrace_config_reloads_total", &[("result", outcome)]);
        result
    }

    fn try_reload(&self, config: &Config) -> Result<ReloadSummary, String> {
        config.validate()?;
        let mut running = self.config.write().unwrap_or_else(|p| p.into_inner());
        if config.data_dir != self.data_dir {
            return Err(format!(
                "data_dir changed ({} → {}); that needs a restart",
                self.data_dir.display(),
                config.data_dir.display()
            ));
        }
        let old = self.live();
        let live = build_live(config, Some(&old))?;
        let mut summary = ReloadSummary {
            projects: live.projects.len(),
            keys: live.keys.len(),
            ..ReloadSummary::default()
        };
        summary.added_projects = live
            .projects
            .keys()
            .filter(|id| !old.projects.contains_key(*id))
            .cloned()
            .collect();
        summary.removed_projects = old
            .projects
            .keys()
            .filter(|id| !live.projects.contains_key(*id))
            .cloned()
            .collect();
        summary.added_projects.sort();
        summary.removed_projects.sort();
        for (name, changed) in [
            ("listen", config.listen != running.listen),
            ("limits", config.limits != running.limits),
            ("http", config.http != running.http),
            ("storage", config.storage != running.storage),
        ] {
            if changed {
                summary.needs_restart.push(name.to_owned());
            }
        }
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
        let mut applied = running.clone();
        applied.projects = config.projects.clone();
        *running = applied;
        Ok(summary)
    }
}

fn build_live(config: &Config, old: Option<&Live>) -> Result<Live, String> {
    let mut entries = Vec::new();
    let mut projects = HashMap::new();
    for project in &config.projects {
        for (hashes, role) in [
            (&project.ingest_key_hashes, KeyRole::Ingest),
            (&project.read_key_hashes, KeyRole::Read),
        ] {
            for hash in hashes {
                let hash = parse_key_hash(hash)
                    .ok_or_else(|| format!("project {}: invalid key hash", project.id))?;
                entries.push(KeyEntry {
                    hash,
                    role,
                    project: project.id.clone(),
                });
            }
        }
        let previous = old.and_then(|old| old.projects.get(&project.id));
        projects.insert(
            project.id.clone(),
            project_runtime(config, project, previous)?,
        );
    }
    Ok(Live {
        keys: KeyRing::new(entries),
        projects,
    })
}

fn project_runtime(
    config: &Config,
    project: &ProjectConfig,
    previous: Option<&ProjectRuntime>,
) -> Result<ProjectRuntime, String> {
    let version = project.secret_version;
    let pseudonymizer = match previous {
        Some(previous) if previous.pseudonymizer.version() == version => {
            previous.pseudonymizer.clone()
        }
        _ => {
            let secret = pseudonym::load_or_create_secret(
                &config.data_dir,
                &project.id,
                project.secret_env.as_deref(),
                version,
            )
            .map_err(|error| {
                format!(
                    "project {}: cannot load the pseudonymization secret (version {version}): {error}",
                    project.id
                )
            })?;
            Pseudonymizer::new(secret, version)
        }
    };
    let rate = (
        project
            .events_per_second
            .unwrap_or(config.limits.events_per_second),
        project.burst_events.unwrap_or(config.limits.burst_events),
    );
    let bucket = match previous {
        Some(previous) if previous.rate == rate => previous.bucket.clone(),
        _ => (rate.0 > 0.0).then(|| Arc::new(TokenBucket::new(rate.0, rate.1))),
    };
    Ok(ProjectRuntime {
        name: if project.name.is_empty() {
            project.id.clone()
        } else {
            project.name.clone()
        },
        pseudonymizer,
        bucket,
        rate,
        analysis: Arc::new(project.analysis.clone()),
        alerts: Arc::new(
            valuetrace_alerts::ProjectAlerts::build(&project.metrics, &project.alerts, &project.id)
                .map_err(|problems| problems.join("\n"))?,
        ),
        scrape_token_hashes: project
            .alerts
            .scrape_token_hashes
            .iter()
            .filter_map(|hash| parse_key_hash(hash))
            .collect(),
    })
}

impl AppState {
    /// Everything `/metrics` shows: the request counters plus gauges and WAL statistics read now.
    pub fn render_metrics(&self) -> String {
        use crate::metrics::{HistogramSample, Sample};
        use std::sync::atomic::Ordering::Relaxed;
        let mut samples = self.metrics.snapshot();
        let pipeline = &self.pipeline;
        let wal = pipeline.wal().stats();
        let (in_flight_bytes, _) = self.in_flight.in_use();
        let counters = &pipeline.counters;
        samples.extend([
            Sample::new(
                "valuetrace_store_buffered_rows",
                &[],
                pipeline.store().rows_in_memory("").0 as f64,
            ),
            Sample::new(
                "valuetrace_ingest_in_flight_bytes",
                &[],
                in_flight_bytes as f64,
            ),
            Sample::new(
                "valuetrace_persists_total",
                &[("result", "ok")],
                counters.persists.load(Relaxed) as f64,
            ),
            Sample::new(
                "valuetrace_persists_total",
                &[("result", "failed")],
                counters.persist_failures.load(Relaxed) as f64,
            ),
            Sample::new(
                "valuetrace_wal_frames_total",
                &[],
                wal.frames_appended as f64,
            ),
            Sample::new("valuetrace_wal_bytes_total", &[], wal.bytes_appended as f64),
            Sample::new(
                "valuetrace_wal_corrupt_frames_total",
                &[],
                (wal.corrupt_frames_at_open + counters.unreadable_frames.load(Relaxed)) as f64,
            ),
            Sample::new(
                "valuetrace_wal_unreadable_segments_total",
                &[],
                wal.unreadable_segments_at_open as f64,
            ),
            Sample::new(
                "valuetrace_wal_failures_total",
                &[("kind", "write")],
                wal.write_failures as f64,
            ),
            Sample::new(
                "valuetrace_wal_failures_total",
                &[("kind", "sync")],
                wal.sync_failures as f64,
            ),
            Sample::new(
                "valuetrace_wal_recoveries_total",
                &[],
                wal.recoveries as f64,
            ),
            Sample::new(
                "valuetrace_wal_poisoned",
                &[],
                if pipeline.is_ready() { 0.0 } else { 1.0 },
            ),
        ]);
        let histogram = |name, h: &valuetrace_wal::Histogram| {
            let mut running = 0;
            HistogramSample {
                name,
                bounds: h.bounds.to_vec(),
                cumulative: h
                    .counts
                    .iter()
                    .map(|count| {
                        running += count;
                        running
                    })
                    .collect(),
                sum: h.sum,
                count: h.count,
            }
        };
        let histograms = [
            histogram("valuetrace_wal_fsync_seconds", &wal.fsync_seconds),
            histogram("valuetrace_wal_frames_per_fsync", &wal.frames_per_fsync),
        ];
        crate::metrics::render(&samples, &histograms)
    }
}
