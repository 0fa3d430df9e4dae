//! Alerts and the metric catalog over HTTP, and the loops that evaluate rules and deliver
//! notifications.
//!
//! - `GET /api/v1/projects/{project}/alerts/rules|states|history`, `POST .../alerts/test/{rule}`
//!   (dry run: evaluates now, renders what would be sent, changes nothing),
//!   `POST .../alerts/test/{rule}/send` (a marked test notification through the rule's real
//!   channels, with each receiver's answer), `GET .../alerts/series/{rule}` (the rule's value
//!   over a range next to its bounds), silences
//!   (`GET|POST .../alerts/silences`, `DELETE .../alerts/silences/{id}`): read key.
//! - `GET /api/v1/projects/{project}/metrics/catalog|orphans`: read key.
//! - `GET /api/v1/projects/{project}/metrics`: the catalog in the Prometheus text format, for a
//!   scrape token (`alerts.scrape_token_hashes`) or a read key.
//!
//! The evaluation and delivery loop is in [`crate::alerts_loop`].

use crate::AppState;
use crate::error::ApiError;
use crate::query_api::authorize;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use valuetrace_alerts::deliver::lock;
use valuetrace_alerts::state::Silence;
use valuetrace_alerts::store_source::StoreSource;
use valuetrace_alerts::{Engine, ProjectAlerts};

/// The alert engine of every project, opened from `<data_dir>/alerts/<project>.json`.
pub struct AlertEngines {
    dir: PathBuf,
    engines: Mutex<HashMap<String, Arc<Mutex<Engine>>>>,
    /// When a test notification of (project, rule) was last sent: at most one per
    /// [`TEST_SEND_INTERVAL`], so a read key cannot flood a channel.
    test_sends: Mutex<HashMap<(String, String), std::time::Instant>>,
}

/// Shortest time between two test notifications of one rule.
pub const TEST_SEND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl AlertEngines {
    pub fn new(dir: PathBuf) -> Self {
        AlertEngines {
            dir,
            engines: Mutex::new(HashMap::new()),
            test_sends: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(
        &self,
        project: &str,
    ) -> Result<Arc<Mutex<Engine>>, valuetrace_alerts::engine::StateFileError> {
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(engine) = engines.get(project) {
            return Ok(engine.clone());
        }
        let engine = Arc::new(Mutex::new(Engine::open(
            &self.dir.join(format!("{project}.json")),
        )?));
        engines.insert(project.to_owned(), engine.clone());
        Ok(engine)
    }
}

/// A source over the store as the server sees it now.
pub fn source(state: &AppState, now: i64) -> StoreSource {
    StoreSource {
        store: state.pipeline.store().clone(),
        insights: state.insights.clone(),
        analysis: state
            .live()
            .projects
            .iter()
            .map(|(id, project)| (id.clone(), project.analysis.clone()))
            .collect(),
        now,
    }
}

pub(crate) fn project_alerts(state: &AppState, project: &str) -> Arc<ProjectAlerts> {
    state
        .live()
        .projects
        .get(project)
        .map(|runtime| runtime.alerts.clone())
        .unwrap_or_default()
}

fn engine_of(state: &AppState, project: &str) -> Result<Arc<Mutex<Engine>>, ApiError> {
    state
        .alert_engines
        .get(project)
        .map_err(|error| ApiError::internal(&error))
}

type Params = HashMap<String, String>;

/// `GET .../alerts/rules`: the rules, the catalog and the channels (without secrets).
pub async fn rules(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let alerts = project_alerts(&state, &project);
    let rules: Vec<Value> = alerts
        .rules
        .iter()
        .map(|rule| json!({"rule": rule.def, "channels": rule.channels, "group": rule.group}))
        .collect();
    let metrics: Vec<_> = alerts.catalog.metrics.iter().map(|m| &m.def).collect();
    Ok(Json(json!({
        "project": project,
        "evaluation_interval_ms": alerts.evaluation_interval_ms,
        "rules": rules,
        "metrics": metrics,
        "channels": alerts.config.channels,
        "dry_run": alerts.config.dry_run,
    })))
}

/// `GET .../alerts/states`: every series with its phase, value and threshold; `phase=firing`
/// keeps one phase.
pub async fn states(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let engine = engine_of(&state, &project)?;
    let engine = lock(&engine);
    let wanted = params.get("phase").map(|p| p.to_ascii_lowercase());
    let states: Vec<Value> = engine
        .state
        .states
        .iter()
        .filter(|(_, s)| wanted.as_deref().is_none_or(|w| json!(s.phase) == json!(w)))
        .map(|(fingerprint, s)| {
            let mut value = json!(s);
            value["fingerprint"] = json!(fingerprint);
            value
        })
        .collect();
    Ok(Json(json!({
        "project": project,
        "states": states,
        "silences": engine.state.silences,
        "outbox": {
            "pending": engine.state.outbox.pending.len(),
            "abandoned": engine.state.outbox.abandoned,
            "rejected": engine.state.outbox.rejected,
            "rejections": engine.state.outbox.rejections.iter().rev().collect::<Vec<_>>(),
            "waiting": engine.state.outbox.pending.iter().map(|entry| json!({
                "id": entry.id,
                "channel": entry.channel,
                "created_at": entry.created_at,
                "attempts": entry.attempts,
                "next_attempt_at": entry.next_attempt_at,
                "last_error": entry.last_error,
            })).collect::<Vec<_>>(),
        },
    })))
}

/// `GET .../alerts/history?rule=&limit=`: transitions, newest first (default 100).
pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let limit: usize = match params.get("limit") {
        None => 100,
        Some(text) => text.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("`limit={text}` must be a number"),
            )
        })?,
    };
    let engine = engine_of(&state, &project)?;
    let engine = lock(&engine);
    let transitions: Vec<_> = engine
        .state
        .history
        .iter()
        .rev()
        .filter(|t| params.get("rule").is_none_or(|rule| &t.rule == rule))
        .take(limit)
        .collect();
    Ok(Json(
        json!({"project": project, "transitions": transitions}),
    ))
}

/// `POST .../alerts/test/{rule}`: evaluates the rule now and shows what would be sent.
pub async fn test_rule(
    State(state): State<Arc<AppState>>,
    Path((project, rule)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<valuetrace_alerts::dry_run::DryRun>, ApiError> {
    authorize(&state, &headers, &project)?;
    let alerts = project_alerts(&state, &project);
    if alerts.rule(&rule).is_none() {
        return Err(ApiError::not_found(&format!("rule `{rule}`")));
    }
    let now = (state.clock)();
    let source = source(&state, now);
    let answer = tokio::task::spawn_blocking(move || {
        valuetrace_alerts::dry_run::dry_run(&source, &alerts, &project, &rule, now)
    })
    .await
    .map_err(|error| ApiError::internal(&error))?;
    answer.map(Json).map_err(|error| {
        use valuetrace_alerts::dry_run::DryRunError;
        use valuetrace_alerts::source::SourceError;
        match error {
            DryRunError::UnknownRule(rule) => ApiError::not_found(&format!("rule `{rule}`")),
            DryRunError::Source(SourceError::Invalid(problem)) => {
                ApiError::bad_request("invalid_rule", problem)
            }
            // The store's text can name files: the log has it, the client a generic 500.
            DryRunError::Source(error @ SourceError::Store(_)) => ApiError::internal(&error),
        }
    })
}

/// `POST .../alerts/test/{rule}/send?channel=`: sends a test notification of the rule, marked
/// as such, through each of its channels (or `channel` only) and returns each receiver's answer.
/// Nothing else changes (no state, no outbox). One per rule every [`TEST_SEND_INTERVAL`].
pub async fn send_test(
    State(state): State<Arc<AppState>>,
    Path((project, rule)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    crate::query_api::check_known(&params, &["channel"])?;
    let alerts = project_alerts(&state, &project);
    if alerts.rule(&rule).is_none() {
        return Err(ApiError::not_found(&format!("rule `{rule}`")));
    }
    {
        let mut sends = lock_map(&state.alert_engines.test_sends);
        let key = (project.clone(), rule.clone());
        if let Some(at) = sends.get(&key)
            && at.elapsed() < TEST_SEND_INTERVAL
        {
            let wait = (TEST_SEND_INTERVAL - at.elapsed()).as_secs() + 1;
            return Err(ApiError::new(
                crate::error::ErrorKind::TooManyRequests,
                "test_too_soon",
                format!("a test notification of `{rule}` was just sent; try again in {wait} s"),
            )
            .retry_after(wait));
        }
        sends.retain(|_, at| at.elapsed() < TEST_SEND_INTERVAL);
        sends.insert(key, std::time::Instant::now());
    }
    let now = (state.clock)();
    let source = source(&state, now);
    let only = params.get("channel").cloned();
    let (rendering, project_name, rule_name) = (alerts.clone(), project.clone(), rule.clone());
    let payloads = tokio::task::spawn_blocking(move || {
        valuetrace_alerts::test_send::render_test(
            &source,
            &rendering,
            &project_name,
            &rule_name,
            only.as_deref(),
            now,
        )
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
    .map_err(|problem| ApiError::bad_request("invalid_test", problem))?;
    let results = valuetrace_alerts::test_send::send_test(&alerts, payloads).await;
    for result in &results {
        tracing::info!(project, rule, channel = %result.channel, action = result.action, ok = result.ok, status = ?result.status, error = ?result.error, "test notification sent");
    }
    let ok = !results.is_empty() && results.iter().all(|r| r.ok);
    Ok(Json(json!({
        "project": project,
        "rule": rule,
        "sent_at": now,
        "dry_run": alerts.config.dry_run,
        "ok": ok,
        "results": results,
    })))
}

/// `GET .../alerts/series/{rule}?since=|from=&to=&points=`: the rule's value at `points`
/// evaluations over the range (default the last 24 h, 60 points), with its bounds.
pub async fn series(
    State(state): State<Arc<AppState>>,
    Path((project, rule)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<valuetrace_alerts::rule_series::RuleSeries>, ApiError> {
    authorize(&state, &headers, &project)?;
    crate::query_api::check_known(&params, &["since", "from", "to", "points"])?;
    let alerts = project_alerts(&state, &project);
    if alerts.rule(&rule).is_none() {
        return Err(ApiError::not_found(&format!("rule `{rule}`")));
    }
    let now = (state.clock)();
    let (from, to) = crate::query_api::window(&params, now)?;
    let points: usize = match params.get("points") {
        None => 60,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (2..=valuetrace_alerts::rule_series::MAX_POINTS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!(
                        "`points={text}` must be a number from 2 to {}",
                        valuetrace_alerts::rule_series::MAX_POINTS
                    ),
                )
            })?,
    };
    let source = source(&state, now);
    tokio::task::spawn_blocking(move || {
        valuetrace_alerts::rule_series::rule_series(
            &source, &alerts, &project, &rule, from, to, points,
        )
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
    .map(Json)
    .map_err(|problem| ApiError::bad_request("invalid_parameter", problem))
}

fn lock_map<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `GET .../alerts/silences`.
pub async fn silences(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let engine = engine_of(&state, &project)?;
    let now = (state.clock)();
    let engine = lock(&engine);
    let active: Vec<&Silence> = engine
        .state
        .silences
        .iter()
        .filter(|s| s.ends_at > now)
        .collect();
    Ok(Json(json!({"project": project, "silences": active})))
}

/// `POST .../alerts/silences` with a silence (`ends_at` required, ms since the epoch).
pub async fn add_silence(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let silence: Silence = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("invalid_silence", format!("not a silence: {error}; send {{\"rule\": \"...\", \"matchers\": {{}}, \"ends_at\": <ms>, \"comment\": \"...\"}}"))
    })?;
    let now = (state.clock)();
    if silence.ends_at <= now {
        return Err(ApiError::bad_request(
            "invalid_silence",
            "`ends_at` must be in the future",
        ));
    }
    let engine = engine_of(&state, &project)?;
    let mut engine = lock(&engine);
    let id = engine.silence(silence, now);
    engine.save().map_err(|error| ApiError::internal(&error))?;
    Ok(Json(json!({"id": id})))
}

/// `DELETE .../alerts/silences/{id}`.
pub async fn remove_silence(
    State(state): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let engine = engine_of(&state, &project)?;
    let mut engine = lock(&engine);
    if !engine.unsilence(&id) {
        return Err(ApiError::not_found(&format!("silence `{id}`")));
    }
    engine.save().map_err(|error| ApiError::internal(&error))?;
    Ok(Json(json!({"removed": id})))
}

/// `GET .../metrics/catalog`: the catalog with owners, criticality and channels.
pub async fn catalog(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &project)?;
    let alerts = project_alerts(&state, &project);
    let metrics: Vec<_> = alerts.catalog.metrics.iter().map(|m| &m.def).collect();
    Ok(Json(json!({"project": project, "metrics": metrics})))
}

/// `GET .../metrics/orphans`: catalog metrics without data for `alerts.orphan_after`.
pub async fn orphans(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<valuetrace_alerts::orphans::OrphanReport>, ApiError> {
    authorize(&state, &headers, &project)?;
    let alerts = project_alerts(&state, &project);
    let now = (state.clock)();
    let source = source(&state, now);
    tokio::task::spawn_blocking(move || {
        valuetrace_alerts::orphans::orphans(&source, &alerts, &project, now)
    })
    .await
    .map(Json)
    .map_err(|error| ApiError::internal(&error))
}

/// `GET /api/v1/projects/{project}/metrics`: Prometheus text of the catalog.
pub async fn exposition(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<([(&'static str, &'static str); 1], String), ApiError> {
    let token = crate::bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    let hash = crate::auth::hash_key(token);
    let live = state.live();
    let scrape_ok = live
        .projects
        .get(&project)
        .is_some_and(|p| p.scrape_token_hashes.contains(&hash));
    if !scrape_ok {
        authorize(&state, &headers, &project)?;
    }
    let alerts = project_alerts(&state, &project);
    let now = (state.clock)();
    let source = source(&state, now);
    let text = tokio::task::spawn_blocking(move || {
        valuetrace_alerts::collect::exposition(&source, &alerts, &project, now)
    })
    .await
    .map_err(|error| ApiError::internal(&error))?;
    Ok((
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        text,
    ))
}
