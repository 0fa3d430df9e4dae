//! Which endpoint creates value: revenue attribution, adoption, cost and the Business Impact Score.
//!
//! Score (dimensionless; see docs/api.md):
//! `value_share = attributed_value / Σ attributed_value`, `engagement_share = users / Σ users`,
//! `cost_share = cost / Σ cost` (the share of requests when no cost rule is configured), summed
//! over the answer's rows; `score = (w_value · value_share + w_engagement · engagement_share) /
//! cost_share`. A score of 1 means the endpoint brings exactly its share of cost in value and
//! engagement; 3 means three times its share.
//!
//! Ranking: rows are ordered by score among those with at least [`MIN_RANK_SHARE`] of the answer's
//! requests; smaller rows follow (also by score) and are marked `low_volume`. A ratio of shares
//! is unstable on a few dozen requests: one buyer can give an endpoint with 53 requests a score
//! far above checkout's.

use crate::Ctx;
use crate::attribution::{Attribution, attribute};
use crate::cost::costs;
use crate::stats::{Tally, ratio, round};
use crate::usage::{BitSet, SessionConversions, Usage, UsagePass, session_conversions, usage};
use crate::users::{Kind, UserCount};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use valuetrace_store::sketch::CellUsers;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assisted {
    pub first_touch: f64,
    pub last_touch: f64,
    pub linear: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Components {
    pub value_share: f64,
    pub engagement_share: f64,
    pub cost_share: f64,
    /// `cost` (from cost rules) or `requests` (no cost rules: share of requests instead).
    pub cost_basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpactRow {
    pub endpoint: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub requests: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_ci95: Option<[f64; 2]>,
    /// Share of calls that were not 5xx.
    pub success_rate: Option<f64>,
    pub users: usize,
    /// How `users` was obtained (`exact`, `estimate` from the SDKs' sketches, `lower_bound` from
    /// sampled calls no aggregate counted); adoption inherits it ([`crate::users`]).
    pub users_kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_ci95: Option<[u64; 2]>,
    /// Users of the endpoint ÷ active users of the project (of the same group).
    pub adoption: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adoption_ci95: Option<[f64; 2]>,
    pub adoption_previous: Option<f64>,
    /// Change in percentage points vs the previous period of the same length; null when that
    /// period is not fully covered by data (it starts before the project's first call).
    pub adoption_change_pp: Option<f64>,
    pub calls_per_user: Option<f64>,
    pub calls_per_session: Option<f64>,
    /// Calls of this endpoint in converting sessions ÷ conversions in those sessions.
    pub session_quality: Option<f64>,
    pub direct_value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_value_ci95: Option<[f64; 2]>,
    pub assisted_value: Assisted,
    /// Direct value plus assisted value under the answer's model.
    pub attributed_value: f64,
    pub contributing_users: usize,
    pub value_per_user: Option<f64>,
    pub cost: Option<f64>,
    /// Attributed value ÷ cost.
    pub cost_efficiency: Option<f64>,
    pub score: Option<f64>,
    pub components: Components,
    /// `invest` (high value, unreliable), `protect` (high value, reliable), `cut` (low value,
    /// high cost), `maintain` (low value, low cost).
    pub quadrant: String,
    /// Fewer than [`MIN_RANK_SHARE`] of the answer's requests: ranked after the others.
    pub low_volume: bool,
}

/// Share of the answer's requests a row needs to be ranked by its score with the others (1%).
pub const MIN_RANK_SHARE: f64 = 0.01;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpactAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub model: String,
    pub attribution_window_ms: i64,
    pub weights: [f64; 2],
    pub active_users: usize,
    pub active_users_kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_users_ci95: Option<[u64; 2]>,
    pub conversions: f64,
    /// All calls in converting sessions ÷ their conversions.
    pub session_quality: Option<f64>,
    pub attributed_outcome_value: f64,
    pub unattributed_outcome_value: f64,
    /// Requests of every row (inbound, or outbound when the slice asks for them), and their 95%
    /// interval when sampled: each session (else user) the client sampled as a whole is one unit.
    pub requests: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_ci95: Option<[f64; 2]>,
    /// True when some events were sampled: counts and sums are estimates (see the `_ci95` fields).
    pub estimate: bool,
    pub rows: Vec<ImpactRow>,
}

/// Everything computed for impact, kept for the scorecard and feature priority.
pub struct ImpactParts {
    pub conversions: SessionConversions,
    pub current: UsagePass,
    pub previous: UsagePass,
    pub attribution: Attribution,
    pub costs: Option<HashMap<(u32, u32), f64>>,
    /// The current window's users from the clients' sketches, when their aggregates cover it,
    /// and the previous period's when they cover it too.
    pub sketched_users: Option<SketchedUsers>,
    pub sketched_previous: Option<SketchedUsers>,
}

/// Users per (endpoint, group) and active users, from the clients' sketches.
#[derive(Debug, Clone, Default)]
pub struct SketchedUsers {
    pub keys: HashMap<(u32, u32), CellUsers>,
    pub active: CellUsers,
}

impl ImpactParts {
    /// The users of (endpoint, group) in the current window.
    pub fn users(&self, endpoint: u32, group: u32, u: &Usage) -> UserCount {
        match self.sketched_users.as_ref() {
            Some(s) => s
                .keys
                .get(&(endpoint, group))
                .map_or(UserCount::of_facts(0, false), UserCount::of_sketch),
            None => UserCount::of_facts(u.users.len(), u.requests.sampled()),
        }
    }

    /// Adoption of (endpoint, group) in the previous period, counted the way the current one is
    /// (sketches with sketches, kept users with kept users); `None` when it cannot be.
    pub fn previous_adoption(&self, endpoint: u32, group: u32) -> Option<f64> {
        match (&self.sketched_users, &self.sketched_previous) {
            (Some(_), Some(previous)) => {
                let users = UserCount::of_sketch(previous.keys.get(&(endpoint, group))?);
                users.share_of(&UserCount::of_sketch(&previous.active)).0
            }
            (Some(_), None) => None,
            (None, _) => {
                let users = self.previous.keys.get(endpoint, group)?.users.len();
                let active = self.previous.active.get(&group).map_or(0, BitSet::len);
                ratio(users as f64, active as f64)
            }
        }
    }

    /// The active users of the whole slice in the current window.
    pub fn active_all(&self) -> UserCount {
        match self.sketched_users.as_ref() {
            Some(s) => UserCount::of_sketch(&s.active),
            None => UserCount::of_facts(
                self.current.active_all.len(),
                self.current.requests.sampled() || self.current.outbound_requests.sampled(),
            ),
        }
    }

    /// The active users of `group` in the current window.
    pub fn active(&self, group: u32) -> UserCount {
        match self.sketched_users.as_ref() {
            Some(s) => UserCount::of_sketch(&s.active),
            None => UserCount::of_facts(
                self.current.active.get(&group).map_or(0, BitSet::len),
                self.current.requests.sampled() || self.current.outbound_requests.sampled(),
            ),
        }
    }
}

pub fn parts(ctx: &Ctx) -> ImpactParts {
    let (from, to, span) = (ctx.question.from, ctx.question.to, ctx.question.span());
    let conversion = ctx.scope.names.dim_id(&ctx.config.conversion_outcome);
    let conversions = session_conversions(&ctx.facts, conversion, from, to);
    let current = usage(&ctx.facts, &ctx.scope, from, to, &conversions);
    let previous = usage(
        &ctx.facts,
        &ctx.scope,
        from - span,
        from,
        &SessionConversions::default(),
    );
    let names: Vec<u32> = ctx
        .config
        .attributed_outcomes
        .iter()
        .filter_map(|n| ctx.scope.names.dim_id(n))
        .collect();
    let all = ctx.config.attributed_outcomes.is_empty();
    let window = ctx.config.attribution_window_ms();
    let attribution = attribute(&ctx.facts, &ctx.scope, from, to, window, &names, all);
    let costs = costs(
        &ctx.config.costs,
        &ctx.scope.names.endpoints,
        &current.keys,
        span,
    );
    ImpactParts {
        conversions,
        current,
        previous,
        attribution,
        costs,
        sketched_users: None,
        sketched_previous: None,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Rows for every (endpoint, group) with calls, and for those credited only through calls in the
/// attribution look-back (before the window: no requests, but their assisted value belongs to the
/// rows, whose shares must sum to the attributed total); outbound endpoints only when the slice
/// asks.
pub fn rows(ctx: &Ctx, parts: &ImpactParts) -> Vec<ImpactRow> {
    let names = &ctx.scope.names;
    let include_outbound = ctx.question.slice.direction.as_deref() == Some("outbound");
    let model = ctx.config.attribution_model.as_str();
    let weights = &ctx.config.impact_weights;
    let mut rows = Vec::new();
    let empty = BitSet::default();
    let idle = Usage::default();
    let credited_only = parts
        .attribution
        .credits
        .iter()
        .filter(|(endpoint, group, _)| parts.current.keys.get(*endpoint, *group).is_none())
        .map(|(endpoint, group, _)| (endpoint, group, &idle));
    for (endpoint, group, u) in parts.current.keys.iter().chain(credited_only) {
        let endpoint_key = names.endpoint(endpoint);
        if endpoint_key.outbound != include_outbound {
            continue;
        }
        let credit = parts.attribution.credits.get(endpoint, group);
        let assisted = Assisted {
            first_touch: credit.map_or(0.0, |c| c.first_touch),
            last_touch: credit.map_or(0.0, |c| c.last_touch),
            linear: credit.map_or(0.0, |c| c.linear),
        };
        let model_value = match model {
            "first_touch" => assisted.first_touch,
            "last_touch" => assisted.last_touch,
            _ => assisted.linear,
        };
        let attributed = u.direct.sum + model_value;
        let mut contributors = u.direct_users.clone();
        contributors.union_with(credit.map_or(&empty, |c| &c.users));
        let users = parts.users(endpoint, group, u);
        let (adoption, adoption_ci95) = users.share_of(&parts.active(group));
        // Only a previous period fully covered by data is compared with: one that starts before
        // the first event would count its missing days as lost adoption.
        let previous_complete = ctx
            .data_start
            .is_some_and(|start| start <= ctx.question.from - ctx.question.span());
        let adoption_previous = if previous_complete {
            parts.previous_adoption(endpoint, group)
        } else {
            None
        };
        let cost = parts
            .costs
            .as_ref()
            .map(|c| c.get(&(endpoint, group)).copied().unwrap_or(0.0));
        rows.push(ImpactRow {
            endpoint: endpoint_key.label(),
            service: endpoint_key.service.clone(),
            provider: endpoint_key.provider.clone(),
            group: ctx.scope.group_label(group),
            requests: u.requests.sum,
            requests_ci95: u.requests.interval(),
            success_rate: u.success_rate(),
            users: users.value,
            users_kind: users.kind,
            users_ci95: users.ci95,
            adoption,
            adoption_ci95,
            adoption_previous,
            adoption_change_pp: adoption
                .zip(adoption_previous)
                .map(|(a, b)| round((a - b) * 100.0, 3)),
            calls_per_user: ratio(u.requests.sum, users.value as f64),
            calls_per_session: ratio(u.calls_in_sessions, u.sessions.len() as f64),
            session_quality: ratio(u.calls_in_converting_sessions, u.conversions_in_sessions),
            direct_value: u.direct.sum,
            direct_value_ci95: u.direct.interval(),
            assisted_value: assisted,
            attributed_value: attributed,
            contributing_users: contributors.len(),
            value_per_user: ratio(attributed, contributors.len() as f64),
            cost,
            cost_efficiency: cost.and_then(|c| ratio(attributed, c)),
            score: None,
            components: Components {
                value_share: 0.0,
                engagement_share: 0.0,
                cost_share: 0.0,
                cost_basis: if cost.is_some() { "cost" } else { "requests" }.into(),
            },
            quadrant: String::new(),
            low_volume: false,
        });
    }
    let total_value: f64 = rows.iter().map(|r| r.attributed_value).sum();
    let total_users: f64 = rows.iter().map(|r| r.users as f64).sum();
    let total_cost: f64 = rows.iter().map(|r| r.cost.unwrap_or(r.requests)).sum();
    for row in &mut rows {
        let c = &mut row.components;
        c.value_share = ratio(row.attributed_value, total_value).unwrap_or(0.0);
        c.engagement_share = ratio(row.users as f64, total_users).unwrap_or(0.0);
        c.cost_share = ratio(row.cost.unwrap_or(row.requests), total_cost).unwrap_or(0.0);
        row.score = ratio(
            weights.value * c.value_share + weights.engagement * c.engagement_share,
            c.cost_share,
        );
    }
    let benefit = |r: &ImpactRow| {
        weights.value * r.components.value_share
            + weights.engagement * r.components.engagement_share
    };
    let benefit_median = median(rows.iter().map(benefit).collect());
    let cost_median = median(rows.iter().map(|r| r.components.cost_share).collect());
    for row in &mut rows {
        let high_value = benefit(row) > 0.0 && benefit(row) >= benefit_median;
        let reliable = row.success_rate.unwrap_or(1.0) >= ctx.config.reliability_target;
        let high_cost = row.components.cost_share >= cost_median;
        row.quadrant = match (high_value, reliable, high_cost) {
            (true, false, _) => "invest",
            (true, true, _) => "protect",
            (false, _, true) => "cut",
            (false, _, false) => "maintain",
        }
        .into();
    }
    let total_requests: f64 = rows.iter().map(|r| r.requests).sum();
    for row in &mut rows {
        row.low_volume = row.requests < MIN_RANK_SHARE * total_requests;
    }
    rows.sort_by(|a, b| {
        a.low_volume
            .cmp(&b.low_volume)
            .then_with(|| {
                b.score
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&a.score.unwrap_or(f64::NEG_INFINITY))
            })
            .then_with(|| a.endpoint.cmp(&b.endpoint))
            .then_with(|| a.group.cmp(&b.group))
    });
    rows
}

/// What the clients' aggregates give per (endpoint, group) ([`crate::exact`]): exact [requests,
/// failed (≥ 400), server errors (5xx)], and the users of their sketches.
#[derive(Debug, Clone, Default)]
pub struct ExactUsage {
    pub calls: HashMap<(u32, u32), [f64; 3]>,
    pub users: SketchedUsers,
    /// The previous period's, when the aggregates cover it too.
    pub previous_users: Option<SketchedUsers>,
}

/// Puts exact counts in place of the estimates from sampled calls: the keys' requests and
/// failures, and the pass's totals (no interval: nothing is estimated).
fn use_exact(pass: &mut UsagePass, exact: &ExactUsage, ctx: &Ctx) {
    let (mut inbound, mut outbound) = (Tally::default(), Tally::default());
    for (&(endpoint, group), &[calls, failed, server]) in &exact.calls {
        let u = pass.keys.get_mut(endpoint, group);
        u.requests = Tally {
            sum: calls,
            ..Tally::default()
        };
        u.failures = failed;
        u.server_errors = server;
        u.client_errors = failed - server;
        let total = if ctx.scope.names.endpoint(endpoint).outbound {
            &mut outbound
        } else {
            &mut inbound
        };
        total.sum += calls;
    }
    pass.requests = inbound;
    pass.outbound_requests = outbound;
}

pub fn answer(ctx: &Ctx) -> ImpactAnswer {
    answer_with(ctx, None)
}

/// The answer, with exact request counts where the clients' aggregates give them.
pub fn answer_with(ctx: &Ctx, exact: Option<&ExactUsage>) -> ImpactAnswer {
    let mut parts = parts(ctx);
    // Values still come from the sampled calls, users from the sketches: an estimate.
    let sampled = parts.current.requests.sampled() || parts.current.outbound_requests.sampled();
    if let Some(exact) = exact {
        use_exact(&mut parts.current, exact, ctx);
        parts.sketched_users = Some(exact.users.clone());
        parts.sketched_previous = exact.previous_users.clone();
        parts.costs = costs(
            &ctx.config.costs,
            &ctx.scope.names.endpoints,
            &parts.current.keys,
            ctx.question.span(),
        );
    }
    let rows = rows(ctx, &parts);
    let mut all = Tally::default();
    for (_, _, u) in parts.current.keys.iter() {
        all.merge(&u.requests);
    }
    let calls_in_converting: f64 = parts
        .current
        .keys
        .iter()
        .filter(|(e, _, _)| !ctx.scope.names.endpoint(*e).outbound)
        .map(|(_, _, u)| u.calls_in_converting_sessions)
        .sum();
    let active = parts.active_all();
    let total = if ctx.question.slice.direction.as_deref() == Some("outbound") {
        &parts.current.outbound_requests
    } else {
        &parts.current.requests
    };
    ImpactAnswer {
        project: ctx.question.project.clone(),
        from: ctx.question.from,
        to: ctx.question.to,
        model: ctx.config.attribution_model.clone(),
        attribution_window_ms: ctx.config.attribution_window_ms(),
        weights: [
            ctx.config.impact_weights.value,
            ctx.config.impact_weights.engagement,
        ],
        active_users: active.value,
        active_users_kind: active.kind,
        active_users_ci95: active.ci95,
        conversions: parts.conversions.total,
        session_quality: ratio(calls_in_converting, parts.conversions.total),
        attributed_outcome_value: parts.attribution.attributed,
        unattributed_outcome_value: parts.attribution.unattributed,
        requests: total.sum,
        requests_ci95: total.interval(),
        estimate: sampled || all.sampled() || parts.current.requests.sampled(),
        rows,
    }
}
