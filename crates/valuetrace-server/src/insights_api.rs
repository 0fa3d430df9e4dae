//! Business answers over HTTP: `GET /api/v1/projects/{project}/{impact|errors|integrations|gaps|
//! latency-conversion|scorecard|priority}`. Same key rules, window and errors as `query_api`.

use crate::AppState;
use crate::error::{ApiError, display_chain};
use crate::query_api::{authorize, check_known, window};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use valuetrace_facts::money::WithMoney;
use valuetrace_facts::{AnalysisConfig, Dim, Question, Slice};
use valuetrace_insights::Insights;
use valuetrace_insights::latency::LatencySpec;
use valuetrace_model::time::parse_duration;
use valuetrace_store::EmbeddedStore;

pub(crate) type Params = HashMap<String, String>;

const COMMON: &[&str] = &[
    "from",
    "to",
    "since",
    "plan",
    "segment",
    "variant",
    "service",
    "app_version",
    "provider",
    "route",
    "method",
    "direction",
    "by",
];

impl From<valuetrace_facts::Error> for ApiError {
    fn from(error: valuetrace_facts::Error) -> Self {
        match error {
            valuetrace_facts::Error::InvalidQuery(message) => {
                ApiError::bad_request("invalid_query", message)
            }
            valuetrace_facts::Error::Store(error) => ApiError::internal(&display_chain(&error)),
        }
    }
}

fn slice(params: &Params) -> Slice {
    let get = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    Slice {
        plan: get("plan"),
        segment: get("segment"),
        variant: get("variant"),
        service: get("service"),
        app_version: get("app_version"),
        provider: get("provider"),
        route: get("route"),
        method: get("method"),
        direction: get("direction"),
    }
}

pub(crate) struct Asked {
    pub(crate) question: Question,
    pub(crate) config: AnalysisConfig,
    pub(crate) store: Arc<EmbeddedStore>,
    pub(crate) insights: Arc<Insights>,
}

/// Authorizes, checks parameter names, and builds the question with the project's settings
/// (`model` and `window` override the attribution model and window for this question).
pub(crate) fn ask(
    state: &AppState,
    headers: &HeaderMap,
    project: String,
    params: &Params,
    extra: &[&str],
) -> Result<Asked, ApiError> {
    authorize(state, headers, &project)?;
    check_known(params, &[COMMON, &["model", "window"], extra].concat())?;
    let now = (state.clock)();
    let (from, to) = window(params, now)?;
    let by = params.get("by").map(|b| Dim::parse(b)).transpose()?;
    let mut config = state
        .live()
        .projects
        .get(&project)
        .map(|p| (*p.analysis).clone())
        .unwrap_or_default();
    if let Some(model) = params.get("model") {
        config.attribution_model = model.clone();
    }
    if let Some(window) = params.get("window") {
        if parse_duration(window).is_none_or(|ms| ms <= 0) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("`window={window}` is not a duration such as 24h or 7d"),
            ));
        }
        config.attribution_window = window.clone();
    }
    if let Some(problem) = config.problems("query").into_iter().next() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            problem.replace("query.", ""),
        ));
    }
    Ok(Asked {
        question: Question {
            project,
            from,
            to,
            now,
            slice: slice(params),
            by,
        },
        config,
        store: state.pipeline.store().clone(),
        insights: state.insights.clone(),
    })
}

async fn run<T: Serialize + Send + 'static>(
    asked: Asked,
    answer: impl FnOnce(
        &Insights,
        &EmbeddedStore,
        &Question,
        &AnalysisConfig,
    ) -> valuetrace_facts::Result<T>
    + Send
    + 'static,
) -> Result<Json<WithMoney<T>>, ApiError> {
    let result = tokio::task::spawn_blocking(move || {
        let (insights, store) = (&asked.insights, &asked.store);
        let answer = answer(insights, store, &asked.question, &asked.config)?;
        let money = insights.money(store, &asked.question, &asked.config)?;
        Ok::<_, valuetrace_facts::Error>(WithMoney { answer, money })
    })
    .await
    .map_err(|error| ApiError::internal(&error))??;
    Ok(Json(result))
}

macro_rules! answer_handler {
    ($name:ident, $method:ident, $answer:ty) => {
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            Path(project): Path<String>,
            Query(params): Query<Params>,
            headers: HeaderMap,
        ) -> Result<Json<WithMoney<$answer>>, ApiError> {
            let asked = ask(&state, &headers, project, &params, &[])?;
            run(asked, |insights, store, question, config| {
                insights.$method(store, question, config)
            })
            .await
        }
    };
}

answer_handler!(impact, impact, valuetrace_insights::impact::ImpactAnswer);
answer_handler!(errors, errors, valuetrace_insights::errors::ErrorsAnswer);
answer_handler!(
    integrations,
    integrations,
    valuetrace_insights::integrations::IntegrationsAnswer
);
answer_handler!(gaps, gaps, valuetrace_insights::gaps::GapsAnswer);
answer_handler!(
    scorecard,
    scorecard,
    valuetrace_insights::scorecard::ScorecardAnswer
);
answer_handler!(
    priority,
    priority,
    valuetrace_insights::priority::PriorityAnswer
);

fn number_list(name: &str, text: &str) -> Result<Vec<f64>, ApiError> {
    text.split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "`{name}={text}` must be comma-separated milliseconds, e.g. 100,250,500,1000"
                ),
            )
        })
}

/// `route` (required; here the latency route, not a filter), `outcome`, `buckets`, `threshold`.
pub async fn latency_conversion(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_insights::latency::LatencyAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let route = params.remove("route").unwrap_or_default();
    if route.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "`route` is required, e.g. route=POST /api/checkout",
        ));
    }
    let mut spec = LatencySpec {
        route,
        ..LatencySpec::default()
    };
    if let Some(outcome) = params.remove("outcome") {
        spec.outcome = Some(outcome);
    }
    if let Some(buckets) = params.remove("buckets") {
        spec.edges_ms = number_list("buckets", &buckets)?;
    }
    if let Some(threshold) = params.remove("threshold") {
        spec.threshold_ms = number_list("threshold", &threshold)?
            .first()
            .copied()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    "`threshold` must be a positive number of ms",
                )
            })?;
    }
    let asked = ask(&state, &headers, project, &params, &[])?;
    run(asked, move |insights, store, question, config| {
        insights.latency_conversion(store, question, config, &spec)
    })
    .await
}
