//! Endpoint health: per route and method, requests, users, error rates, latency quantiles, value.

use crate::currency::CurrencyRule;
use crate::filter::Filter;
use crate::summary::{Accum, EndpointKey, summarize};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use valuetrace_model::time::MINUTE_MS;
use valuetrace_store::EmbeddedStore;
use valuetrace_store::sketch::RELATIVE_ERROR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    Requests,
    Users,
    ErrorRate,
    P95,
    Value,
    Route,
}

impl SortKey {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "requests" => SortKey::Requests,
            "users" => SortKey::Users,
            "error_rate" | "errors" => SortKey::ErrorRate,
            "p95" | "latency" => SortKey::P95,
            "value" => SortKey::Value,
            "route" => SortKey::Route,
            other => {
                return Err(Error::InvalidQuery(format!(
                    "unknown sort `{other}`; use requests, users, error_rate, p95, value or route"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointsQuery {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub filter: Filter,
    pub sort: SortKey,
    pub limit: usize,
    /// How value sums become the reporting currency.
    #[serde(default)]
    pub currency: CurrencyRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub route: String,
    pub method: String,
    pub service: String,
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub requests: u64,
    pub requests_per_minute: f64,
    pub unique_users: u64,
    /// How `unique_users` was obtained: `exact`, `estimate` (HyperLogLog: client sketches of
    /// SDK traffic, or more than 512 users in a cell) or `lower_bound` (some counted calls came
    /// from clients that ship no user sketch: only their sampled users are known).
    #[serde(default = "exact")]
    pub users_kind: String,
    /// 95% interval of the distinct users `[low, high]`; `high` is null for a lower bound.
    #[serde(default)]
    pub users_ci95: Option<(u64, Option<u64>)>,
    /// Share of 5xx responses.
    pub server_error_rate: f64,
    /// Share of 4xx responses.
    pub client_error_rate: f64,
    /// Calls with an `error_type` or a 5xx status.
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    /// Sum of `value` carried by successful calls, in the answer's `currency`; `null` when the
    /// values were in a currency without a rate, or in several currencies.
    pub value_sum: Option<f64>,
    /// The currency the values were sent in (`mixed`: several; `null`: none named).
    pub value_currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointsAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    /// Endpoints before `limit` was applied.
    pub total_endpoints: usize,
    pub endpoints: Vec<EndpointRow>,
    /// The currency of every `value_sum` (`null`: no value named a currency).
    pub currency: Option<String>,
    pub accuracy: Accuracy,
}

/// What is exact and what is estimated in an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Counts, rates and sums are exact.
    pub counts: String,
    /// Relative error bound of latency quantiles.
    pub quantile_relative_error: f64,
    /// Distinct users: exact up to 512 per rollup cell, else HyperLogLog (standard error 1.6%).
    pub unique_users: String,
}

impl Default for Accuracy {
    fn default() -> Self {
        Accuracy {
            counts: "exact".into(),
            quantile_relative_error: RELATIVE_ERROR,
            unique_users: "per row (`users_kind`, `users_ci95`): exact up to 512 distinct users per rollup cell, else HyperLogLog (1.6% standard error); SDK traffic from the client's sketch (an estimate); a lower bound where aggregates came without a sketch".into(),
        }
    }
}

fn exact() -> String {
    "exact".into()
}

pub fn check_window(from: i64, to: i64) -> Result<()> {
    if from >= to {
        return Err(Error::InvalidQuery(format!(
            "`from` ({from}) must be before `to` ({to})"
        )));
    }
    Ok(())
}

pub fn run(store: &EmbeddedStore, query: &EndpointsQuery) -> Result<EndpointsAnswer> {
    check_window(query.from, query.to)?;
    let summary = summarize(store, &query.project, query.from, query.to, &query.filter)?;
    let minutes = (query.to - query.from) as f64 / MINUTE_MS as f64;
    let currency = query.currency.resolve(summary.endpoints.values());
    let mut rows: Vec<EndpointRow> = summary
        .endpoints
        .iter()
        .map(|(key, accum)| {
            let mut row = row_of(key, accum, minutes);
            row.value_sum = query.currency.value_in(currency.as_deref(), &accum.counts);
            row
        })
        .collect();
    sort_rows(&mut rows, query.sort);
    let total_endpoints = rows.len();
    rows.truncate(query.limit);
    Ok(EndpointsAnswer {
        project: query.project.clone(),
        from: query.from,
        to: query.to,
        total_endpoints,
        endpoints: rows,
        currency,
        accuracy: Accuracy::default(),
    })
}

pub fn row_of(key: &EndpointKey, accum: &Accum, minutes: f64) -> EndpointRow {
    let users = accum.users.report();
    let share = |count: u64| {
        if accum.counts.count == 0 {
            0.0
        } else {
            count as f64 / accum.counts.count as f64
        }
    };
    EndpointRow {
        route: key.route.clone(),
        method: key.method.clone(),
        service: key.service.clone(),
        direction: if key.outbound { "outbound" } else { "inbound" }.into(),
        provider: key.provider.clone(),
        requests: accum.counts.count,
        requests_per_minute: if minutes > 0.0 {
            accum.counts.count as f64 / minutes
        } else {
            0.0
        },
        unique_users: users.value,
        users_kind: users.kind.as_str().into(),
        users_ci95: Some((users.low, users.high)),
        server_error_rate: share(accum.counts.status_classes[4]),
        client_error_rate: share(accum.counts.status_classes[3]),
        errors: accum.counts.errors,
        p50_ms: accum.latency.quantile(0.5),
        p95_ms: accum.latency.quantile(0.95),
        p99_ms: accum.latency.quantile(0.99),
        mean_ms: (accum.counts.count > 0)
            .then(|| accum.counts.latency_sum_ms / accum.counts.count as f64),
        value_sum: Some(accum.counts.value_sum),
        value_currency: crate::currency::label(&accum.counts),
    }
}

fn sort_rows(rows: &mut [EndpointRow], sort: SortKey) {
    let by_route =
        |a: &EndpointRow, b: &EndpointRow| (&a.route, &a.method).cmp(&(&b.route, &b.method));
    rows.sort_by(|a, b| {
        let primary = match sort {
            SortKey::Requests => b.requests.cmp(&a.requests),
            SortKey::Users => b.unique_users.cmp(&a.unique_users),
            SortKey::ErrorRate => b.server_error_rate.total_cmp(&a.server_error_rate),
            SortKey::P95 => b.p95_ms.unwrap_or(0.0).total_cmp(&a.p95_ms.unwrap_or(0.0)),
            SortKey::Value => {
                let value = |row: &EndpointRow| row.value_sum.unwrap_or(f64::NEG_INFINITY);
                value(b).total_cmp(&value(a))
            }
            SortKey::Route => std::cmp::Ordering::Equal,
        };
        primary.then_with(|| by_route(a, b))
    });
}
