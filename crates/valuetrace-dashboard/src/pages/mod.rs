//! One module per page. Each takes the request's [`Ctx`] and returns the page body; sections
//! whose answer failed show the API's message in place (the rest of the page still renders).

pub mod alerts;
pub mod endpoint;
pub mod errors;
pub mod growth;
pub mod health;
pub mod journeys;
pub mod quality;

use crate::api::{Answer, Api};
use crate::filters::{Filters, encode};
use crate::format::{list, text};
use crate::layout::Choices;
use maud::Markup;
use std::collections::HashMap;

pub struct Ctx<'a> {
    pub api: &'a Api,
    pub key: &'a str,
    pub project: &'a str,
    pub filters: &'a Filters,
    /// Every query parameter (pages read their own, e.g. funnel steps).
    pub params: &'a HashMap<String, String>,
    /// Every query parameter in order, repeats kept (`params` keeps one value per name).
    pub pairs: &'a [(String, String)],
    /// Answers not cached by then render as "being computed".
    pub deadline: std::time::Instant,
    /// Set when some answer was still being computed: the page reloads itself.
    pub pending: std::sync::atomic::AtomicBool,
}

impl Ctx<'_> {
    /// `GET /api/v1/projects/{project}/{answer}?{query}`.
    pub async fn get(&self, answer: &str, query: &str) -> Answer {
        let path = format!("/api/v1/projects/{}/{answer}?{query}", encode(self.project));
        let answer = self.api.get(self.key, &path, self.deadline).await;
        if let Ok(value) = &answer {
            crate::format::note_currency(value);
        }
        if answer.as_ref().is_err_and(crate::api::Failure::is_pending) {
            self.pending
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        answer
    }

    /// The answer with the page's filters plus `extra`.
    pub fn ask(
        &self,
        answer: &str,
        extra: &[(&str, &str)],
    ) -> impl std::future::Future<Output = Answer> + '_ {
        let query = self.filters.api_query(extra);
        let answer = answer.to_owned();
        async move { self.get(&answer, &query).await }
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    /// Every value of a repeated parameter, in order (e.g. `step=a&step=b`).
    pub fn param_all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A dashboard URL of this project keeping the filters.
    pub fn link(&self, page: &str, extra: &[(&str, &str)]) -> String {
        self.filters
            .link(&format!("/p/{}/{page}", encode(self.project)), extra)
    }

    /// The drill-down link of an endpoint (`METHOD /route`).
    pub fn endpoint_link(&self, endpoint: &str) -> String {
        let (method, route) = endpoint.split_once(' ').unwrap_or(("", endpoint));
        self.link("endpoint", &[("method", method), ("route", route)])
    }

    /// Values seen in the range for the filter bar's choices (the `dimensions` answer: day
    /// rollup cells, cheap at any volume).
    pub async fn choices(&self) -> Choices {
        let values = |answer: &serde_json::Value, field: &str| -> Vec<String> {
            list(answer, field)
                .iter()
                .map(|v| text(v, "value").to_owned())
                .filter(|v| !v.is_empty())
                .take(50)
                .collect()
        };
        let (plans, segments, variants, services) =
            match self.get("dimensions", &self.filters.range_query(&[])).await {
                Ok(d) => (
                    values(&d, "plans"),
                    values(&d, "segments"),
                    values(&d, "variants"),
                    values(&d, "services"),
                ),
                Err(_) => Default::default(),
            };
        let keep = self
            .pairs
            .iter()
            .filter(|(name, _)| !crate::filters::is_filter(name))
            .cloned()
            .collect();
        Choices {
            plans,
            segments,
            variants,
            services,
            keep,
        }
    }
}

/// The body of `page`; money on it is in the currency its answers name.
pub async fn render(ctx: &Ctx<'_>, page: &str) -> Option<Markup> {
    crate::format::page_currency(async {
        Some(match page {
            "health" => health::render(ctx).await,
            "journeys" => journeys::render(ctx).await,
            "growth" => growth::render(ctx).await,
            "errors" => errors::render(ctx).await,
            "alerts" => alerts::render(ctx).await,
            "quality" => quality::render(ctx).await,
            "endpoint" => endpoint::render(ctx).await,
            _ => return None,
        })
    })
    .await
}
