//! The JSON query API: `GET /api/v1/projects/{project}/endpoints` and `/timeseries`.
//!
//! A read key sees only its own project: any other project, existing or not, answers 404.

use crate::AppState;
use crate::auth::KeyRole;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Arc;
use valuetrace_model::time::{DAY_MS, parse_duration, parse_time};
use valuetrace_query::CurrencyRule;
use valuetrace_query::{
    EndpointsAnswer, EndpointsQuery, Filter, Interval, Metric, QueryBackend, SortKey,
    TimeseriesAnswer, TimeseriesQuery,
};

type Params = HashMap<String, String>;

pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    project: &str,
) -> Result<(), ApiError> {
    let key_project = crate::bearer(headers)
        .and_then(|key| state.project_of(key, KeyRole::Read))
        .ok_or_else(ApiError::unauthorized)?;
    if key_project != project {
        return Err(ApiError::not_found(&format!("project `{project}`")));
    }
    Ok(())
}

fn parse_instant(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|text| {
            parse_time(text).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("`{name}={text}` is not an RFC 3339 time or epoch milliseconds"),
                )
            })
        })
        .transpose()
}

/// `from`/`to` (RFC 3339 or epoch ms), or `since` (a duration back from now); default: last 24 h.
pub fn window(params: &Params, now_ms: i64) -> Result<(i64, i64), ApiError> {
    let to = parse_instant(params, "to")?.unwrap_or(now_ms);
    let from = match (parse_instant(params, "from")?, params.get("since")) {
        (Some(from), _) => from,
        (None, Some(since)) => {
            let span = parse_duration(since).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("`since={since}` is not a duration such as 15m, 24h or 30d"),
                )
            })?;
            to - span
        }
        (None, None) => to - DAY_MS,
    };
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`from` ({from}) must be before `to` ({to})"),
        ));
    }
    Ok((from, to))
}

pub fn filter(params: &Params) -> Filter {
    let get = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    Filter {
        plan: get("plan"),
        segment: get("segment"),
        variant: get("variant"),
        service: get("service"),
        route: get("route"),
        method: get("method"),
        direction: get("direction"),
    }
}

pub(crate) fn check_known(params: &Params, known: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("unknown parameter `{unknown}`; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

const FILTERS: &[&str] = &[
    "from",
    "to",
    "since",
    "plan",
    "segment",
    "variant",
    "service",
    "route",
    "method",
    "direction",
];

pub async fn endpoints(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<EndpointsAnswer>, ApiError> {
    authorize(&state, &headers, &project)?;
    check_known(&params, &[FILTERS, &["sort", "limit"]].concat())?;
    let (from, to) = window(&params, (state.clock)())?;
    let sort = params
        .get("sort")
        .map(|text| SortKey::parse(text))
        .transpose()?
        .unwrap_or_default();
    let limit = match params.get("limit") {
        None => 100,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=1000).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("`limit={text}` must be an integer from 1 to 1000"),
                )
            })?,
    };
    let query_project = project.clone();
    let query = EndpointsQuery {
        project,
        from,
        to,
        filter: filter(&params),
        currency: currency_rule(&state, &query_project),
        sort,
        limit,
    };
    let store = state.pipeline.store().clone();
    let answer = tokio::task::spawn_blocking(move || store.endpoints(&query))
        .await
        .map_err(|error| ApiError::internal(&error))??;
    Ok(Json(answer))
}

/// The project's reporting currency and rates (`[projects.analysis]`).
fn currency_rule(state: &AppState, project: &str) -> CurrencyRule {
    let analysis = crate::analysis(state, project);
    CurrencyRule {
        reporting: analysis.reporting_currency,
        rates: analysis.currency_rates,
    }
}

pub async fn timeseries(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<TimeseriesAnswer>, ApiError> {
    authorize(&state, &headers, &project)?;
    check_known(&params, &[FILTERS, &["metric", "interval"]].concat())?;
    let (from, to) = window(&params, (state.clock)())?;
    let metric = Metric::parse(params.get("metric").map_or("requests", String::as_str))?;
    let interval = Interval::parse(params.get("interval").map_or("1h", String::as_str))?;
    let query_project = project.clone();
    let query = TimeseriesQuery {
        project,
        metric,
        interval,
        from,
        to,
        filter: filter(&params),
        currency: currency_rule(&state, &query_project),
    };
    let store = state.pipeline.store().clone();
    let answer = tokio::task::spawn_blocking(move || store.timeseries(&query))
        .await
        .map_err(|error| ApiError::internal(&error))??;
    Ok(Json(answer))
}

/// `GET /api/v1/projects/{project}/dimensions?since=7d`: the plans, segments, variants, services
/// and providers seen in the window's days, with call counts (filter choices).
pub async fn dimensions(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<valuetrace_query::dimensions::DimensionsAnswer>, ApiError> {
    authorize(&state, &headers, &project)?;
    check_known(&params, &["from", "to", "since"])?;
    let (from, to) = window(&params, (state.clock)())?;
    let store = state.pipeline.store().clone();
    let answer = tokio::task::spawn_blocking(move || {
        valuetrace_query::dimensions::run(&store, &project, from, to)
    })
    .await
    .map_err(|error| ApiError::internal(&error))??;
    Ok(Json(answer))
}
