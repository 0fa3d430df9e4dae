//! Journeys and experiments over HTTP: `GET /api/v1/projects/{project}/{funnel|paths|retention|
//! ttv|churn-risk|experiment|experiments}`. Same key rules, window, filters, breakdown and errors
//! as the business answers (`insights_api`); each answer adds its own parameters.

use crate::AppState;
use crate::error::ApiError;
use crate::insights_api::{Asked, Params, ask};
use crate::query_api::authorize;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Serialize;
use std::sync::Arc;
use valuetrace_facts::money::WithMoney;
use valuetrace_facts::{AnalysisConfig, Question};
use valuetrace_journeys::churn::ChurnSpec;
use valuetrace_journeys::experiment::ExperimentSpec;
use valuetrace_journeys::funnel::{FunnelSpec, Order};
use valuetrace_journeys::paths::PathSpec;
use valuetrace_journeys::retention::{Period, RetentionSpec};
use valuetrace_journeys::ttv::TtvSpec;
use valuetrace_journeys::{Actor, Journeys};
use valuetrace_model::time::parse_duration;

const DAY_MS: i64 = 86_400_000;

impl From<valuetrace_journeys::Error> for ApiError {
    fn from(error: valuetrace_journeys::Error) -> Self {
        match error {
            valuetrace_journeys::Error::InvalidQuery(message) => {
                ApiError::bad_request("invalid_query", message)
            }
            valuetrace_journeys::Error::Facts(error) => error.into(),
        }
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

/// Answers without a breakdown refuse `by` rather than ignore it.
fn no_breakdown(params: &Params, answer: &str, instead: &str) -> Result<(), ApiError> {
    match params.get("by") {
        Some(by) => Err(invalid(format!(
            "`by={by}`: {answer} has no breakdown yet; {instead}"
        ))),
        None => Ok(()),
    }
}

/// Removes the answer's own parameters from `params` (so `ask` sees only the common ones).
struct Own<'a>(&'a mut Params);

impl Own<'_> {
    fn text(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.trim().is_empty())
    }

    fn duration(&mut self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.text(name) {
            None => Ok(default),
            Some(text) => parse_duration(&text).filter(|ms| *ms > 0).ok_or_else(|| {
                invalid(format!(
                    "`{name}={text}` is not a duration such as 30m, 24h or 7d"
                ))
            }),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T, ApiError> {
        match self.text(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| invalid(format!("`{name}={text}` must be a number"))),
        }
    }

    fn per(&mut self, default: Actor) -> Result<Actor, ApiError> {
        match self.text("per") {
            None => Ok(default),
            Some(text) => Ok(Actor::parse(&text)?),
        }
    }
}

async fn answer<T: Serialize + Send + 'static>(
    asked: Asked,
    compute: impl FnOnce(
        &Journeys<valuetrace_store::EmbeddedStore>,
        &Question,
        &AnalysisConfig,
    ) -> valuetrace_journeys::Result<T>
    + Send
    + 'static,
) -> Result<Json<WithMoney<T>>, ApiError> {
    let result = tokio::task::spawn_blocking(move || {
        let journeys = Journeys {
            facts: &asked.insights.cache,
            store: asked.store.as_ref(),
        };
        let answer = compute(&journeys, &asked.question, &asked.config)?;
        let money = asked
            .insights
            .money(&asked.store, &asked.question, &asked.config)?;
        Ok::<_, valuetrace_journeys::Error>(WithMoney { answer, money })
    })
    .await
    .map_err(|error| ApiError::internal(&error))??;
    Ok(Json(result))
}

/// `steps` (2–10 steps separated by `,`), `window` (default 1d), `order`, `per`.
pub async fn funnel(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::funnel::FunnelAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let mut own = Own(&mut params);
    let steps: Vec<String> = own
        .text("steps")
        .ok_or_else(|| {
            invalid(
                "`steps` is required: 2 to 10 steps separated by commas, e.g. steps=GET /api/products,POST /api/checkout,outcome:purchase".into(),
            )
        })?
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    let window = own.duration("window", DAY_MS)?;
    let order = match own.text("order") {
        None => Order::Sequential,
        Some(text) => Order::parse(&text)?,
    };
    let per = own.per(Actor::User)?;
    let spec = FunnelSpec::parse(&steps, window, order)?;
    let asked = ask(&state, &headers, project, &params, &[])?;
    answer(asked, move |j, q, c| j.funnel(q, c, per, &spec)).await
}

/// `start` or `end` (one step), `depth` (default 5), `top` (default 10), `window`, `per`.
pub async fn paths(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::paths::PathsAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let mut own = Own(&mut params);
    let (anchor, towards) = match (own.text("start"), own.text("end")) {
        (Some(start), None) => (start, false),
        (None, Some(end)) => (end, true),
        _ => {
            return Err(invalid(
                "give exactly one of `start` (paths after a step) or `end` (paths leading to it)"
                    .into(),
            ));
        }
    };
    no_breakdown(own.0, "paths", "filter instead, e.g. plan=pro")?;
    let depth = own.number("depth", 5usize)?;
    let top = own.number("top", 10usize)?;
    let window = own.duration("window", DAY_MS)?;
    let per = own.per(Actor::User)?;
    let spec = PathSpec::new(&anchor, towards, depth, top, window)?;
    let asked = ask(&state, &headers, project, &params, &[])?;
    answer(asked, move |j, q, c| j.paths(q, c, per, &spec)).await
}

/// `cohort` and `return` (steps, default `any`), `period` (default week), `periods` (default 8).
pub async fn retention(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::retention::RetentionAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let mut own = Own(&mut params);
    let cohort = own.text("cohort").unwrap_or_else(|| "any".into());
    let returning = own.text("return").unwrap_or_else(|| "any".into());
    let period = match own.text("period") {
        None => Period::Week,
        Some(text) => Period::parse(&text)?,
    };
    let periods = own.number("periods", 8usize)?;
    let per = own.per(Actor::User)?;
    let spec = RetentionSpec::new(&cohort, &returning, period, periods)?;
    let asked = ask(&state, &headers, project, &params, &[])?;
    answer(asked, move |j, q, c| j.retention(q, c, per, &spec)).await
}

/// `start` (default `/*`, the first API call), `value` (default the project's `value_event`),
/// `cohort` (day or week), `within`, `per`.
pub async fn ttv(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::ttv::TtvAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let mut own = Own(&mut params);
    let start = own.text("start").unwrap_or_else(|| "/*".into());
    let value = own.text("value");
    let cohort = match own.text("cohort").as_deref() {
        None | Some("day") => Period::Day,
        Some("week") => Period::Week,
        Some(other) => return Err(invalid(format!("`cohort={other}` must be day or week"))),
    };
    let within = match own.text("within") {
        None => None,
        Some(text) => Some(
            parse_duration(&text)
                .filter(|ms| *ms > 0)
                .ok_or_else(|| invalid(format!("`within={text}` is not a duration")))?,
        ),
    };
    let per = own.per(Actor::User)?;
    let asked = ask(&state, &headers, project, &params, &[])?;
    let value = value.unwrap_or_else(|| asked.config.value_event.clone());
    let spec = TtvSpec::new(&start, &value, cohort, within)?;
    answer(asked, move |j, q, c| j.ttv(q, c, per, &spec)).await
}

/// `recent` (default 7d), `baseline` (default 28d), `threshold` (0.5), `min_calls` (10), `top`
/// (50), `per` (default account).
pub async fn churn_risk(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::churn::ChurnAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let mut own = Own(&mut params);
    no_breakdown(own.0, "churn risk", "filter instead, e.g. plan=pro")?;
    let recent = own.duration("recent", 7 * DAY_MS)?;
    let baseline = own.duration("baseline", 28 * DAY_MS)?;
    let threshold = own.number("threshold", 0.5f64)?;
    let min_calls = own.number("min_calls", 10.0f64)?;
    let top = own.number("top", 50usize)?;
    let per = own.per(Actor::Account)?;
    let asked = ask(&state, &headers, project, &params, &[])?;
    let spec = ChurnSpec {
        recent_ms: recent,
        baseline_ms: baseline,
        threshold,
        min_baseline_calls: min_calls,
        churn_outcome: asked.config.churn_outcome.clone(),
        top,
    };
    spec.check()?;
    answer(asked, move |j, q, c| j.churn_risk(q, c, per, &spec)).await
}

/// `experiment` (required), `control`, `outcome` (default the project's conversion outcome),
/// `top` endpoints (default 10), `endpoints` (a route pattern), `per`.
pub async fn experiment(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(mut params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::experiment::ExperimentAnswer>>, ApiError> {
    authorize(&state, &headers, &project)?;
    let mut own = Own(&mut params);
    let name = own.text("experiment").ok_or_else(|| {
        invalid("`experiment` is required; GET .../experiments lists the experiments seen".into())
    })?;
    no_breakdown(
        own.0,
        "an experiment",
        "it is already per variant; filter instead, e.g. plan=pro",
    )?;
    let control = own.text("control");
    let outcome = own.text("outcome");
    let top = own.number("top", 10usize)?;
    let endpoints = own.text("endpoints");
    let per = own.per(Actor::User)?;
    let asked = ask(&state, &headers, project, &params, &[])?;
    let spec = ExperimentSpec {
        endpoints,
        experiment: name,
        control,
        conversion: outcome.unwrap_or_else(|| asked.config.conversion_outcome.clone()),
        top_endpoints: top,
    };
    answer(asked, move |j, q, c| j.experiment(q, c, per, &spec)).await
}

/// The experiments and variants seen in the window.
pub async fn experiments(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<WithMoney<valuetrace_journeys::experiment::ExperimentList>>, ApiError> {
    let asked = ask(&state, &headers, project, &params, &[])?;
    answer(asked, |j, q, c| j.experiments(q, c)).await
}
