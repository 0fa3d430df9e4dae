//! The valuetrace HTTP server (axum): ingest, query API, health.
//!
//! - `POST /v1/batch` ([`ingest`]): ingest key → validate → pseudonymize → [`pipeline`] (WAL,
//!   then store) → per-event answer.
//! - `GET /api/v1/projects/{project}/endpoints|timeseries` ([`query_api`]): read key → typed
//!   query → [`valuetrace_query`].
//! - `GET /healthz` (process alive), `GET /readyz` (can make writes durable).
//!
//! [`Server::open`] replays the WAL into the store before serving; [`Server::run`] also runs the
//! periodic persist and persists once more on shutdown.

pub mod auth;
pub mod config;
pub mod error;
pub mod ingest;
pub mod pipeline;
pub mod pseudonym;
pub mod query_api;

use auth::{KeyEntry, KeyRing, KeyRole, parse_key_hash};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use config::{Config, IngestLimits, StorageDurations};
use pipeline::Pipeline;
use pseudonym::Pseudonymizer;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use valuetrace_model::Limits;
use valuetrace_store::{EmbeddedStore, StoreOptions};
use valuetrace_wal::WalOptions;

/// A source of "now" in epoch ms; tests inject a fixed clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct ProjectRuntime {
    pub name: String,
    pub pseudonymizer: Pseudonymizer,
}

pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub keys: KeyRing,
    pub projects: HashMap<String, ProjectRuntime>,
    pub limits: IngestLimits,
    pub validation: Limits,
    pub clock: Clock,
}

pub struct Server {
    pub state: Arc<AppState>,
    pub config: Config,
    durations: StorageDurations,
}

/// The key of `Authorization: Bearer <key>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(key.trim())
        .filter(|key| !key.is_empty())
}

impl Server {
    /// Validates the configuration, opens the store and replays the WAL.
    pub fn open(config: Config) -> Result<Server, String> {
        Self::open_with_clock(config, Arc::new(valuetrace_store::wall_clock_ms))
    }

    pub fn open_with_clock(config: Config, clock: Clock) -> Result<Server, String> {
        let durations = config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|error| {
            format!(
                "cannot create data dir {}: {error}",
                config.data_dir.display()
            )
        })?;
        let mut store_options = StoreOptions::new(config.data_dir.join("store"));
        store_options.minute_retention_ms = durations.minute_rollup_retention_ms;
        store_options.dedup_window_ms = durations.dedup_window_ms;
        store_options.dedup_load_from_ms =
            pipeline::oldest_wal_receipt(&config.data_dir.join("wal"));
        let now = clock();
        let store =
            Arc::new(EmbeddedStore::open(store_options, now).map_err(|error| {
                format!("cannot open the store: {}", error::display_chain(&error))
            })?);
        let mut wal_options = WalOptions::new(config.data_dir.join("wal"));
        wal_options.segment_max_bytes = config.storage.wal_segment_bytes;
        wal_options.sync = config.storage.fsync;
        let pipeline = Pipeline::open(store, wal_options)
            .map_err(|error| format!("cannot open the write-ahead log: {error}"))?;
        let replay = &pipeline.replay;
        tracing::info!(
            frames = replay.frames,
            corrupt_frames = replay.corrupt_frames,
            truncated_bytes = replay.truncated_bytes,
            "wal replayed"
        );
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
            let secret = pseudonym::load_or_create_secret(
                &config.data_dir,
                &project.id,
                project.secret_env.as_deref(),
            )
            .map_err(|error| {
                format!(
                    "project {}: cannot load the pseudonymization secret: {error}",
                    project.id
                )
            })?;
            let name = if project.name.is_empty() {
                project.id.clone()
            } else {
                project.name.clone()
            };
            projects.insert(
                project.id.clone(),
                ProjectRuntime {
                    name,
                    pseudonymizer: Pseudonymizer::new(secret),
                },
            );
        }
        let state = AppState {
            pipeline: Arc::new(pipeline),
            keys: KeyRing::new(entries),
            projects,
            limits: config.limits.clone(),
            validation: Limits::default(),
            clock,
        };
        Ok(Server {
            state: Arc::new(state),
            config,
            durations,
        })
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves until `shutdown` completes, then persists buffered rows.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let persister = tokio::spawn(persist_loop(
            self.state.clone(),
            self.durations,
            self.config.storage.persist_max_rows,
        ));
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await?;
        persister.abort();
        let state = self.state.clone();
        let now = (state.clock)();
        let result = tokio::task::spawn_blocking(move || state.pipeline.persist(now)).await;
        if let Ok(Err(error)) = result {
            tracing::error!(%error, "final persist failed; the WAL still holds the data");
        }
        Ok(())
    }
}

/// A server running on a task of the current runtime (the demo and the benchmarks embed one).
pub struct RunningServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves on `listener` until [`RunningServer::stop`].
    pub fn spawn(self, listener: tokio::net::TcpListener) -> RunningServer {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(listener, async move {
            let _ = stopped.await;
        }));
        RunningServer { stop, task }
    }
}

impl RunningServer {
    /// Stops accepting requests, finishes the ones in flight, persists, and waits for all that.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/batch", post(ingest::batch))
        .route(
            "/api/v1/projects/{project}/endpoints",
            get(query_api::endpoints),
        )
        .route(
            "/api/v1/projects/{project}/timeseries",
            get(query_api::timeseries),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(|| async { error::ApiError::not_found("route") })
        .with_state(state)
}

async fn readyz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> (StatusCode, &'static str) {
    if state.pipeline.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "write-ahead log failed; not accepting writes\n",
        )
    }
}

async fn persist_loop(state: Arc<AppState>, durations: StorageDurations, max_rows: usize) {
    let interval = Duration::from_millis(durations.persist_interval_ms.max(100) as u64);
    let mut last = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let due = last.elapsed() >= interval || state.pipeline.store().buffered_rows() >= max_rows;
        if !due {
            continue;
        }
        last = tokio::time::Instant::now();
        let worker = state.clone();
        let now = (state.clock)();
        match tokio::task::spawn_blocking(move || worker.pipeline.persist(now)).await {
            Ok(Ok(stats)) if stats.rows_written > 0 => {
                tracing::info!(
                    files = stats.files_written,
                    rows = stats.rows_written,
                    compacted = stats.files_compacted,
                    "persisted"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "persist failed; will retry"),
            Err(error) => tracing::error!(%error, "persist task panicked"),
        }
    }
}
