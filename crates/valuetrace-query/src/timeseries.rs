//! Time series of one metric over aligned intervals.

use crate::endpoints::check_window;
use crate::filter::Filter;
use crate::summary::summarize;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use valuetrace_model::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use valuetrace_store::EmbeddedStore;

/// Most points one answer may hold.
pub const MAX_POINTS: i64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Requests,
    ErrorRate,
    P95,
    Users,
    Value,
}

impl Metric {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "requests" => Metric::Requests,
            "error_rate" => Metric::ErrorRate,
            "p95" => Metric::P95,
            "users" => Metric::Users,
            "value" => Metric::Value,
            other => {
                return Err(Error::InvalidQuery(format!(
                    "unknown metric `{other}`; use requests, error_rate, p95, users or value"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl Interval {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "1m" => Interval::Minute,
            "1h" => Interval::Hour,
            "1d" => Interval::Day,
            other => {
                return Err(Error::InvalidQuery(format!(
                    "unknown interval `{other}`; use 1m, 1h or 1d"
                )));
            }
        })
    }

    pub fn width_ms(self) -> i64 {
        match self {
            Interval::Minute => MINUTE_MS,
            Interval::Hour => HOUR_MS,
            Interval::Day => DAY_MS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesQuery {
    pub project: String,
    pub metric: Metric,
    pub interval: Interval,
    pub from: i64,
    pub to: i64,
    pub filter: Filter,
    /// How value sums become the reporting currency (metric `value`).
    #[serde(default)]
    pub currency: crate::currency::CurrencyRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesPoint {
    /// Start of the interval (the first point starts at `from` when `from` is not aligned).
    pub start: i64,
    pub end: i64,
    /// `None` when the metric is undefined (no requests for a rate or quantile).
    pub value: Option<f64>,
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesAnswer {
    pub project: String,
    pub metric: Metric,
    pub interval: Interval,
    pub from: i64,
    pub to: i64,
    pub points: Vec<TimeseriesPoint>,
    /// The currency of the `value` metric's points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

pub fn run(store: &EmbeddedStore, query: &TimeseriesQuery) -> Result<TimeseriesAnswer> {
    check_window(query.from, query.to)?;
    let width = query.interval.width_ms();
    let points_needed = (query.to - query.from + width - 1) / width;
    if points_needed > MAX_POINTS {
        return Err(Error::InvalidQuery(format!(
            "{points_needed} points at interval {:?} exceed the limit of {MAX_POINTS}; choose a larger interval or a shorter window",
            query.interval
        )));
    }
    // The reporting currency of the whole window, so every point is in the same one.
    let currency = match (query.metric, &query.currency.reporting) {
        (Metric::Value, None) => {
            let whole = summarize(store, &query.project, query.from, query.to, &query.filter)?;
            query.currency.resolve(whole.endpoints.values())
        }
        (_, reporting) => reporting.clone(),
    };
    let mut points = Vec::new();
    let mut start = query.from;
    while start < query.to {
        let end = ((start.div_euclid(width) + 1) * width).min(query.to);
        let total = summarize(store, &query.project, start, end, &query.filter)?.total();
        let value = match query.metric {
            Metric::Requests => Some(total.counts.count as f64),
            Metric::ErrorRate => (total.counts.count > 0)
                .then(|| total.counts.status_classes[4] as f64 / total.counts.count as f64),
            Metric::P95 => total.latency.quantile(0.95),
            Metric::Users => Some(total.users.estimate() as f64),
            Metric::Value => query.currency.value_in(currency.as_deref(), &total.counts),
        };
        points.push(TimeseriesPoint {
            start,
            end,
            value,
            requests: total.counts.count,
        });
        start = end;
    }
    Ok(TimeseriesAnswer {
        project: query.project.clone(),
        metric: query.metric,
        interval: query.interval,
        from: query.from,
        to: query.to,
        points,
        currency: (query.metric == Metric::Value)
            .then_some(currency)
            .flatten(),
    })
}
