//! The BRIDGE scorecard per endpoint: Business impact, Real engagement, Infrastructure ROI,
//! Developer experience, Growth signals, Error impact.
//!
//! Each pillar is one number ranked across the answer's endpoints (1 = best, 0 = worst):
//! B attributed value (higher better), R adoption, I cost efficiency (value per unit of cost, or per
//! request without a cost model), D integration friction (4xx share, lower better), G adoption
//! change vs the previous period, E value at risk from failed calls (lower better: the value a
//! failed call carried, else the endpoint's average order value, else its assisted value per
//! call). Grades: A for
//! the top quarter, then B, C, D; `bridge_score` is 100 × the mean rank.
//!
//! New accounts and users are those whose first call to the project (looking back
//! [`NEW_USER_LOOKBACK_MS`] before the window) falls inside the window.

use crate::Ctx;
use crate::errors::endpoint_order_values;
use crate::impact::{ImpactRow, parts, rows};
use crate::scope::{key, key_parts};
use crate::stats::{quantile_ms, ratio};
use crate::usage::{BitSet, KeyTable, par_calls};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const NEW_USER_LOOKBACK_MS: i64 = 30 * 86_400_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pillar {
    pub value: Option<f64>,
    pub rank: f64,
    pub grade: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardRow {
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub bridge_score: f64,
    pub business_impact: Pillar,
    pub real_engagement: Pillar,
    pub infrastructure_roi: Pillar,
    pub developer_experience: Pillar,
    pub growth_signals: Pillar,
    pub error_impact: Pillar,
    pub attributed_value: f64,
    pub impact_score: Option<f64>,
    pub users: usize,
    pub adoption: Option<f64>,
    pub calls_per_user: Option<f64>,
    pub session_quality: Option<f64>,
    pub cost: Option<f64>,
    pub cost_efficiency: Option<f64>,
    /// Median time from a new account's first call to its first successful call of this endpoint.
    pub time_to_first_success_ms: Option<i64>,
    pub new_accounts: usize,
    pub client_error_share: Option<f64>,
    pub adoption_change_pp: Option<f64>,
    pub new_user_share: Option<f64>,
    pub error_rate: Option<f64>,
    pub value_at_risk: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub rows: Vec<ScorecardRow>,
}

#[derive(Default)]
struct Extra {
    first_success: HashMap<u32, i64>,
    new_users: BitSet,
    value_at_risk: f64,
    /// Failed calls of endpoints that carry no value of their own.
    failed_without_value: f64,
}

fn first_seen(ids: &[u32], ts: &[i64], into: &mut [i64]) {
    for (id, t) in ids.iter().zip(ts) {
        let slot = &mut into[*id as usize];
        if *t < *slot {
            *slot = *t;
        }
    }
}

/// Ranks of `values` in [0, 1] (1 = best): the share of the other endpoints that do no better.
/// Ties share the upper rank (ten endpoints without any value at risk are all best); `None` (no
/// data) ranks 0.
fn ranks(values: &[Option<f64>], higher_is_better: bool) -> Vec<f64> {
    let n = values.len();
    if n <= 1 {
        return vec![1.0; n];
    }
    let score = |v: f64| if higher_is_better { v } else { -v };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let Some(v) = v else { return 0.0 };
            let no_better = values
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && o.is_none_or(|o| score(o) <= score(*v)))
                .count();
            no_better as f64 / (n - 1) as f64
        })
        .collect()
}

fn grade(rank: f64) -> String {
    match rank {
        r if r >= 0.75 => "A",
        r if r >= 0.5 => "B",
        r if r >= 0.25 => "C",
        _ => "D",
    }
    .into()
}

pub fn answer(ctx: &Ctx) -> ScorecardAnswer {
    let q = ctx.question;
    let (from, to) = (q.from, q.to);
    let names = &ctx.scope.names;
    let parts = parts(ctx);
    let impact_rows: Vec<ImpactRow> = rows(ctx, &parts);
    let mut account_first = vec![i64::MAX; names.accounts + 1];
    let mut user_first = vec![i64::MAX; names.users + 1];
    for seg in &ctx.facts.calls {
        if seg.min_ts >= to {
            continue;
        }
        first_seen(&seg.account, &seg.ts, &mut account_first);
        first_seen(&seg.user, &seg.ts, &mut user_first);
    }
    let aov = endpoint_order_values(ctx, from, to);
    let passes = par_calls(
        &ctx.facts.calls,
        from,
        to,
        || KeyTable::<Extra>::new(&ctx.scope),
        |extra, seg| {
            for row in 0..seg.len() {
                let t = seg.ts[row];
                if t < from || t >= to || !ctx.scope.call_ok(seg, row) {
                    continue;
                }
                let (account, user, status) = (seg.account[row], seg.user[row], seg.status[row]);
                let new_account = account != 0 && account_first[account as usize] >= from;
                let new_user = user != 0 && user_first[user as usize] >= from;
                if status < 400 && !new_account && !new_user {
                    continue;
                }
                let endpoint = seg.endpoint[row];
                let acc = extra.get_mut(endpoint, ctx.scope.group(seg, row));
                if status >= 400 {
                    let value = if seg.has_value(row) {
                        seg.value[row]
                    } else {
                        aov[endpoint as usize]
                    };
                    acc.value_at_risk += f64::from(seg.weight[row]) * value;
                    if value == 0.0 {
                        acc.failed_without_value += f64::from(seg.weight[row]);
                    }
                } else if new_account {
                    let first = acc.first_success.entry(account).or_insert(t);
                    *first = (*first).min(t);
                }
                if new_user {
                    acc.new_users.insert(user);
                }
            }
        },
    );
    let mut passes = passes.into_iter();
    let mut extra = passes.next().unwrap_or_else(|| KeyTable::new(&ctx.scope));
    for other in passes {
        extra.merge_with(other, |mine, theirs| {
            for (account, t) in theirs.first_success {
                let first = mine.first_success.entry(account).or_insert(t);
                *first = (*first).min(t);
            }
            mine.new_users.union_with(&theirs.new_users);
            mine.value_at_risk += theirs.value_at_risk;
            mine.failed_without_value += theirs.failed_without_value;
        });
    }
    let mut by_label: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for (endpoint, group, _) in parts.current.keys.iter() {
        by_label.insert(
            (
                names.endpoint(endpoint).label(),
                ctx.scope.group_label(group),
            ),
            key(endpoint, group),
        );
    }
    let mut out = Vec::new();
    for row in impact_rows {
        let Some(&k) = by_label.get(&(row.endpoint.clone(), row.group.clone())) else {
            continue;
        };
        let (endpoint, group) = key_parts(k);
        let Some(u) = parts.current.keys.get(endpoint, group) else {
            continue;
        };
        let mut acc = extra.take(endpoint, group).unwrap_or_default();
        // An endpoint without value of its own risks the value it assists, per call.
        acc.value_at_risk += acc.failed_without_value
            * ratio(row.attributed_value - row.direct_value, row.requests).unwrap_or(0.0);
        let mut delays: Vec<i64> = acc
            .first_success
            .iter()
            .map(|(account, t)| t - account_first[*account as usize])
            .collect();
        let efficiency = row
            .cost_efficiency
            .or_else(|| ratio(row.attributed_value, row.requests));
        out.push(ScorecardRow {
            endpoint: row.endpoint.clone(),
            group: row.group.clone(),
            bridge_score: 0.0,
            business_impact: Pillar {
                value: Some(row.attributed_value),
                rank: 0.0,
                grade: String::new(),
            },
            real_engagement: Pillar {
                value: row.adoption,
                rank: 0.0,
                grade: String::new(),
            },
            infrastructure_roi: Pillar {
                value: efficiency,
                rank: 0.0,
                grade: String::new(),
            },
            developer_experience: Pillar {
                value: ratio(u.client_errors, u.requests.sum),
                rank: 0.0,
                grade: String::new(),
            },
            growth_signals: Pillar {
                value: row.adoption_change_pp,
                rank: 0.0,
                grade: String::new(),
            },
            error_impact: Pillar {
                value: Some(acc.value_at_risk),
                rank: 0.0,
                grade: String::new(),
            },
            attributed_value: row.attributed_value,
            impact_score: row.score,
            users: row.users,
            adoption: row.adoption,
            calls_per_user: row.calls_per_user,
            session_quality: row.session_quality,
            cost: row.cost,
            cost_efficiency: row.cost_efficiency,
            time_to_first_success_ms: quantile_ms(&mut delays, 0.5),
            new_accounts: delays.len(),
            client_error_share: ratio(u.client_errors, u.requests.sum),
            adoption_change_pp: row.adoption_change_pp,
            new_user_share: ratio(acc.new_users.len() as f64, u.users.len() as f64),
            error_rate: ratio(u.failures, u.requests.sum),
            value_at_risk: acc.value_at_risk,
        });
    }
    type Get = fn(&mut ScorecardRow) -> &mut Pillar;
    let pillars: [(Get, bool); 6] = [
        (|r| &mut r.business_impact, true),
        (|r| &mut r.real_engagement, true),
        (|r| &mut r.infrastructure_roi, true),
        (|r| &mut r.developer_experience, false),
        (|r| &mut r.growth_signals, true),
        (|r| &mut r.error_impact, false),
    ];
    for (get, higher) in pillars {
        let values: Vec<Option<f64>> = out.iter_mut().map(|r| get(r).value).collect();
        for (row, rank) in out.iter_mut().zip(ranks(&values, higher)) {
            let pillar = get(row);
            pillar.rank = crate::stats::round(rank, 4);
            pillar.grade = grade(rank);
            row.bridge_score += rank / 6.0 * 100.0;
        }
    }
    for row in &mut out {
        row.bridge_score = crate::stats::round(row.bridge_score, 1);
    }
    out.sort_by(|a, b| {
        b.bridge_score
            .total_cmp(&a.bridge_score)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    ScorecardAnswer {
        project: q.project.clone(),
        from,
        to,
        rows: out,
    }
}
