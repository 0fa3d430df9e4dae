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

pub mod admission;
pub mod alerts_api;
pub mod alerts_loop;
pub mod auth;
pub mod config;
pub mod error;
pub mod ingest;
pub mod ingestor;
pub mod insights_api;
pub mod journeys_api;
pub mod lifecycle;
pub mod listener;
pub mod metrics;
pub mod pipeline;
pub mod pseudonym;
pub mod quality;
pub mod query_api;
pub mod state;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use config::{Config, StorageDurations};
use pipeline::Pipeline;
pub use state::{AppState, Live, ProjectRuntime, ReloadSummary};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use valuetrace_store::{EmbeddedStore, StoreOptions};
use valuetrace_wal::WalOptions;

/// A source of "now" in epoch ms; tests inject a fixed clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

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
        Self::open_with_wal_options(config, clock, |_| {})
    }

    /// Like [`Server::open_with_clock`], with a last say on the WAL options (tests inject
    /// failing writes and syncs through its hooks).
    pub fn open_with_wal_options(
        config: Config,
        clock: Clock,
        adjust_wal: impl FnOnce(&mut WalOptions),
    ) -> Result<Server, String> {
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
        adjust_wal(&mut wal_options);
        let pipeline = Pipeline::open(store, wal_options)
            .map_err(|error| format!("cannot open the write-ahead log: {error}"))?;
        let replay = &pipeline.replay;
        tracing::info!(
            frames = replay.frames,
            corrupt_frames = replay.corrupt_frames,
            truncated_bytes = replay.truncated_bytes,
            "wal replayed"
        );
        let state = AppState::new(Arc::new(pipeline), &config, clock)?;
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
        let recoverer = tokio::spawn(wal_recovery_loop(self.state.clone()));
        let alerter = tokio::spawn(alerts_loop::alert_loop(self.state.clone()));
        tokio::task::spawn_blocking({
            let state = self.state.clone();
            move || warm_fact_cache(&state)
        });
        let limits = listener::ConnectionLimits {
            header_read_timeout: Duration::from_millis(
                self.durations.header_read_timeout_ms as u64,
            ),
            max_connections: self.config.http.max_connections,
        };
        listener::serve(
            listener,
            self.router(),
            self.state.clone(),
            limits,
            shutdown,
        )
        .await?;
        persister.abort();
        recoverer.abort();
        alerter.abort();
        let state = self.state.clone();
        let now = (state.clock)();
        let result = tokio::task::spawn_blocking(move || {
            state.persist(now)?;
            // No request is running any more: the files compactions replaced can go now.
            state
                .pipeline
                .store()
                .delete_replaced_files()
                .map_err(|error| pipeline::PipelineError::Store(error.to_string()))
        })
        .await;
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

/// The JSON API and ingest, plus the dashboard at `/` (which reads the API in process).
pub fn router(state: Arc<AppState>) -> Router {
    let memory = state.dashboard.clone();
    let api = api_router(state);
    api.clone().merge(valuetrace_dashboard::router(api, memory))
}

/// Ingest, the JSON API, health and metrics.
pub fn api_router(state: Arc<AppState>) -> Router {
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
        .route(
            "/api/v1/projects/{project}/dimensions",
            get(query_api::dimensions),
        )
        .route(
            "/api/v1/projects/{project}/data-quality",
            get(quality::data_quality),
        )
        .route(
            "/api/v1/projects/{project}/impact",
            get(insights_api::impact),
        )
        .route(
            "/api/v1/projects/{project}/errors",
            get(insights_api::errors),
        )
        .route(
            "/api/v1/projects/{project}/integrations",
            get(insights_api::integrations),
        )
        .route("/api/v1/projects/{project}/gaps", get(insights_api::gaps))
        .route(
            "/api/v1/projects/{project}/latency-conversion",
            get(insights_api::latency_conversion),
        )
        .route(
            "/api/v1/projects/{project}/scorecard",
            get(insights_api::scorecard),
        )
        .route(
            "/api/v1/projects/{project}/priority",
            get(insights_api::priority),
        )
        .route(
            "/api/v1/projects/{project}/funnel",
            get(journeys_api::funnel),
        )
        .route("/api/v1/projects/{project}/paths", get(journeys_api::paths))
        .route(
            "/api/v1/projects/{project}/retention",
            get(journeys_api::retention),
        )
        .route("/api/v1/projects/{project}/ttv", get(journeys_api::ttv))
        .route(
            "/api/v1/projects/{project}/churn-risk",
            get(journeys_api::churn_risk),
        )
        .route(
            "/api/v1/projects/{project}/experiment",
            get(journeys_api::experiment),
        )
        .route(
            "/api/v1/projects/{project}/experiments",
            get(journeys_api::experiments),
        )
        .route(
            "/api/v1/projects/{project}/alerts/rules",
            get(alerts_api::rules),
        )
        .route(
            "/api/v1/projects/{project}/alerts/states",
            get(alerts_api::states),
        )
        .route(
            "/api/v1/projects/{project}/alerts/history",
            get(alerts_api::history),
        )
        .route(
            "/api/v1/projects/{project}/alerts/test/{rule}",
            post(alerts_api::test_rule),
        )
        .route(
            "/api/v1/projects/{project}/alerts/test/{rule}/send",
            post(alerts_api::send_test),
        )
        .route(
            "/api/v1/projects/{project}/alerts/series/{rule}",
            get(alerts_api::series),
        )
        .route(
            "/api/v1/projects/{project}/alerts/silences",
            get(alerts_api::silences).post(alerts_api::add_silence),
        )
        .route(
            "/api/v1/projects/{project}/alerts/silences/{id}",
            delete(alerts_api::remove_silence),
        )
        .route(
            "/api/v1/projects/{project}/metrics",
            get(alerts_api::exposition),
        )
        .route(
            "/api/v1/projects/{project}/metrics/catalog",
            get(alerts_api::catalog),
        )
        .route(
            "/api/v1/projects/{project}/metrics/orphans",
            get(alerts_api::orphans),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/openapi.json", get(openapi_json))
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

/// `GET /metrics`: Prometheus text. Unauthenticated like `/healthz`: it holds no event data,
/// only counts by configured project id; bind `listen` to a private interface or filter it at
/// the proxy if project ids are sensitive.
async fn metrics_text(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.render_metrics(),
    )
}

/// `GET /api/v1/openapi.json`: the OpenAPI document of this API (`docs/openapi.json`), no key.
async fn openapi_json() -> ([(&'static str, &'static str); 1], &'static str) {
    (
        [("content-type", "application/json")],
        include_str!("../../../docs/openapi.json"),
    )
}

/// While the WAL refuses writes (a failed write or fsync, e.g. a full disk), tries every second
/// to make it writable again; ingest answers 503 meanwhile.
async fn wal_recovery_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if state.pipeline.is_ready() {
            continue;
        }
        let worker = state.clone();
        match tokio::task::spawn_blocking(move || worker.pipeline.wal().recover()).await {
            Ok(Ok(())) => tracing::warn!("write-ahead log writable again; accepting writes"),
            Ok(Err(error)) => tracing::debug!(%error, "write-ahead log still failing"),
            Err(error) => tracing::error!(%error, "wal recovery task panicked"),
        }
    }
}

async fn persist_loop(state: Arc<AppState>, durations: StorageDurations, max_rows: usize) {
    let interval = Duration::from_millis(durations.persist_interval_ms.max(100) as u64);
    let mut last = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let store = state.pipeline.store();
        // Also when one project holds half of what it may (see `project_in_flight_share`), so a
        // noisy project is persisted before it is refused.
        let project_full = || store.largest_rows_in_memory() >= state.project_max_buffered_rows / 2;
        let due = last.elapsed() >= interval || store.buffered_rows() >= max_rows || project_full();
        if !due {
            continue;
        }
        last = tokio::time::Instant::now();
        let worker = state.clone();
        let now = (state.clock)();
        match tokio::task::spawn_blocking(move || worker.persist(now)).await {
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

/// The analysis settings of `project` (defaults for a project no longer configured).
pub(crate) fn analysis(state: &AppState, project: &str) -> valuetrace_facts::AnalysisConfig {
    state
        .live()
        .projects
        .get(project)
        .map(|p| (*p.analysis).clone())
        .unwrap_or_default()
}

/// Builds the business answers' fact cache for the last 30 days of every project in the
/// background, so the first question after a start is answered from memory.
fn warm_fact_cache(state: &AppState) {
    let now = (state.clock)();
    let store = state.pipeline.store();
    for project in store.project_names() {
        let started = std::time::Instant::now();
        match state.insights.cache.load(
            store.as_ref(),
            &project,
            now - 30 * 86_400_000,
            now,
            &analysis(state, &project),
        ) {
            Ok(facts) => tracing::info!(
                project,
                segments = facts.built,
                seconds = started.elapsed().as_secs_f64(),
                "fact cache warmed"
            ),
            Err(error) => {
                tracing::warn!(project, error = %error::display_chain(&error), "fact cache not warmed")
            }
        }
    }
}
