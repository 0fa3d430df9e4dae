//! Feature priority: features are groups of routes with an effort estimate (config).
//!
//! `adoption` = users of any of the feature's routes ÷ active users (from the SDKs' user sketches
//! where their aggregates cover the window: `users_kind`, `adoption_ci95`, see [`crate::users`]); `engagement_depth` = the
//! feature's calls per session that used it; `value` = direct value plus linear assisted value of
//! its endpoints; `development_cost` = effort_hours × hourly_cost;
//! `score = adoption × engagement_depth × value ÷ development_cost` (the seed's formula);
//! `high` above `high_priority`, `medium` above `medium_priority`, else `low`;
//! `expected_return` = value ÷ development_cost per window, and per year at the window's rate.

use crate::Ctx;
use crate::config::route_matches;
use crate::impact::{ExactUsage, parts};
use crate::stats::ratio;
use crate::usage::BitSet;
use crate::users::{Kind, UserCount};
use serde::{Deserialize, Serialize};
use valuetrace_store::sketch::CellUsers;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub feature: String,
    pub endpoints: Vec<String>,
    pub users: usize,
    pub users_kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_ci95: Option<[u64; 2]>,
    pub adoption: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adoption_ci95: Option<[f64; 2]>,
    pub engagement_depth: Option<f64>,
    pub value: f64,
    pub effort_hours: f64,
    pub development_cost: f64,
    pub score: Option<f64>,
    pub recommendation: String,
    pub expected_return: Option<f64>,
    pub expected_return_per_year: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub active_users: usize,
    pub active_users_kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_users_ci95: Option<[u64; 2]>,
    pub hourly_cost: f64,
    pub thresholds: [f64; 2],
    pub features: Vec<FeatureRow>,
}

pub fn answer(ctx: &Ctx) -> PriorityAnswer {
    answer_with(ctx, None)
}

/// The answer, with users from the clients' sketches where their aggregates cover the window.
pub fn answer_with(ctx: &Ctx, exact: Option<&ExactUsage>) -> PriorityAnswer {
    let q = ctx.question;
    let names = &ctx.scope.names;
    let mut parts = parts(ctx);
    parts.sketched_users = exact.map(|e| e.users.clone());
    let sketched = parts.sketched_users.as_ref();
    let active = parts.active_all();
    let years = q.span() as f64 / (365.0 * 86_400_000.0);
    let mut features = Vec::new();
    for feature in &ctx.config.features {
        let matches = |e: u32| {
            let key = names.endpoint(e);
            !key.outbound
                && feature
                    .routes
                    .iter()
                    .any(|p| route_matches(p, &key.method, &key.route))
        };
        let mut users = BitSet::default();
        let mut sketch = CellUsers::default();
        let mut sampled_calls = false;
        let mut sessions = BitSet::default();
        let (mut calls_in_sessions, mut value) = (0.0, 0.0);
        let mut endpoints = Vec::new();
        for (endpoint, group, u) in parts.current.keys.iter() {
            if !matches(endpoint) {
                continue;
            }
            endpoints.push(names.endpoint(endpoint).label());
            users.union_with(&u.users);
            sampled_calls |= u.requests.sampled();
            if let Some(key) = sketched.and_then(|s| s.keys.get(&(endpoint, group))) {
                sketch.merge(key);
            }
            sessions.union_with(&u.sessions);
            calls_in_sessions += u.calls_in_sessions;
            value += u.direct.sum
                + parts
                    .attribution
                    .credits
                    .get(endpoint, group)
                    .map_or(0.0, |c| c.linear);
        }
        // Endpoints credited only through calls before the window (the attribution look-back).
        for (endpoint, group, credit) in parts.attribution.credits.iter() {
            if matches(endpoint) && parts.current.keys.get(endpoint, group).is_none() {
                endpoints.push(names.endpoint(endpoint).label());
                value += credit.linear;
            }
        }
        endpoints.sort();
        endpoints.dedup();
        let users = match sketched {
            Some(_) => UserCount::of_sketch(&sketch),
            None => UserCount::of_facts(users.len(), sampled_calls),
        };
        let (adoption, adoption_ci95) = users.share_of(&active);
        let depth = ratio(calls_in_sessions, sessions.len() as f64);
        let cost = feature.effort_hours * ctx.config.hourly_cost;
        let score = adoption.zip(depth).map(|(a, d)| a * d * value / cost);
        let recommendation = match score {
            Some(s) if s > ctx.config.high_priority => "high",
            Some(s) if s > ctx.config.medium_priority => "medium",
            _ => "low",
        };
        features.push(FeatureRow {
            feature: feature.name.clone(),
            endpoints,
            users: users.value,
            users_kind: users.kind,
            users_ci95: users.ci95,
            adoption,
            adoption_ci95,
            engagement_depth: depth,
            value,
            effort_hours: feature.effort_hours,
            development_cost: cost,
            score,
            recommendation: recommendation.into(),
            expected_return: ratio(value, cost),
            expected_return_per_year: ratio(value, cost).and_then(|r| ratio(r, years)),
        });
    }
    features.sort_by(|a, b| {
        b.score
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.score.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| a.feature.cmp(&b.feature))
    });
    PriorityAnswer {
        project: q.project.clone(),
        from: q.from,
        to: q.to,
        active_users: active.value,
        active_users_kind: active.kind,
        active_users_ci95: active.ci95,
        hourly_cost: ctx.config.hourly_cost,
        thresholds: [ctx.config.high_priority, ctx.config.medium_priority],
        features,
    }
}
