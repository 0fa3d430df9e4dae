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
use crate::impact::{ImpactParts, ImpactRow, parts, rows};
use crate::scope::{key, key_parts};
use crate::stats::{quantile_ms, ratio};
use crate::usage::{FxHashMap, KeyTable, par_calls};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    value_at_risk: f64,
    /// Failed calls of endpoints that carry no value of their own.
    failed_without_value: f64,
}

/// Per thread: the per-key extras, and per (new account, key) the first success.
struct Pass {
    extra: KeyTable<Extra>,
    first_success: FirstSuccess,
}

/// First successful call per (new account, key): a dense array when new accounts × keys is
/// small enough (the common case: no per-row hashing), else a hash map.
///
/// Dense tables with at most 64 keys also remember, per account, which keys were first seen in
/// an earlier segment and the latest of those first successes: rows of a segment that starts at
/// or after it cannot lower them and skip the table. Threads read segments oldest first, so past
/// an account's first segment almost every row skips (a cache-resident mask test instead of a
/// random write).
enum FirstSuccess {
    Dense {
        keys: usize,
        /// `t - base + 1` of the first success, 0 when none: 4-byte cells (half the memory
        /// traffic of i64), zero-initialized by the allocator.
        at: Vec<u32>,
        base: i64,
        masks: Vec<Masks>,
    },
    Sparse(FxHashMap<(u32, u32), i64>),
}

#[derive(Clone, Copy)]
struct Masks {
    /// Start of the segment `fresh` belongs to.
    segment: i64,
    old: u64,
    old_latest: i64,
    fresh: u64,
    fresh_latest: i64,
}

const NO_MASKS: Masks = Masks {
    segment: i64::MIN,
    old: 0,
    old_latest: i64::MIN,
    fresh: 0,
    fresh_latest: i64::MIN,
};

const DENSE_FIRST_SUCCESS: usize = 8 << 20;

impl FirstSuccess {
    /// For successes in `[from, to)`.
    fn new(new_accounts: usize, keys: usize, from: i64, to: i64) -> FirstSuccess {
        let fits = to.saturating_sub(from) < i64::from(u32::MAX) - 1;
        match new_accounts.checked_mul(keys) {
            Some(n) if n <= DENSE_FIRST_SUCCESS && fits => FirstSuccess::Dense {
                keys,
                at: vec![0; n],
                base: from,
                masks: if keys <= 64 {
                    vec![NO_MASKS; new_accounts]
                } else {
                    Vec::new()
                },
            },
            _ => FirstSuccess::Sparse(FxHashMap::default()),
        }
    }

    /// Offers a success at `t` from a segment whose rows start at `segment_start`.
    #[inline]
    fn offer(&mut self, account: u32, slot: u32, t: i64, segment_start: i64) {
        match self {
            FirstSuccess::Dense {
                keys,
                at,
                base,
                masks,
            } => {
                let a = account as usize;
                let cell = &mut at[a * *keys + slot as usize];
                let v = (t - *base) as u32 + 1;
                let Some(m) = masks.get_mut(a) else {
                    if *cell == 0 || v < *cell {
                        *cell = v;
                    }
                    return;
                };
                if m.segment != segment_start {
                    m.old |= m.fresh;
                    m.old_latest = m.old_latest.max(m.fresh_latest);
                    m.fresh = 0;
                    m.fresh_latest = i64::MIN;
                    m.segment = segment_start;
                }
                let bit = 1u64 << slot;
                if m.old & bit != 0 && m.old_latest <= segment_start {
                    return;
                }
                if *cell == 0 || v < *cell {
                    *cell = v;
                }
                m.fresh |= bit;
                m.fresh_latest = m.fresh_latest.max(*base + i64::from(*cell) - 1);
            }
            FirstSuccess::Sparse(_) => self.offer_min(account, slot, t),
        }
    }

    /// Offers a success without the skip masks (summaries hold one success per account and
    /// key: nothing to skip). Masks that do not know the cell only skip less.
    #[inline]
    fn offer_min(&mut self, account: u32, slot: u32, t: i64) {
        match self {
            FirstSuccess::Dense { keys, at, base, .. } => {
                let cell = &mut at[account as usize * *keys + slot as usize];
                let v = (t - *base) as u32 + 1;
                if *cell == 0 || v < *cell {
                    *cell = v;
                }
            }
            FirstSuccess::Sparse(map) => {
                let cell = map.entry((account, slot)).or_insert(t);
                *cell = (*cell).min(t);
            }
        }
    }

    fn merge(&mut self, other: FirstSuccess) {
        match (self, other) {
            (FirstSuccess::Dense { at, .. }, FirstSuccess::Dense { at: theirs, .. }) => {
                for (mine, theirs) in at.iter_mut().zip(theirs) {
                    if *mine == 0 || (theirs != 0 && theirs < *mine) {
                        *mine = theirs;
                    }
                }
            }
            (mine, FirstSuccess::Sparse(theirs)) => {
                for ((account, slot), t) in theirs {
                    mine.offer(account, slot, t, i64::MIN);
                }
            }
            (FirstSuccess::Sparse(_), FirstSuccess::Dense { .. }) => {
                unreachable!("every thread picks the same representation")
            }
        }
    }

    /// `(new account, key slot, first success)` of every filled cell.
    fn cells(self) -> Vec<(u32, u32, i64)> {
        match self {
            FirstSuccess::Dense { keys, at, base, .. } => at
                .into_iter()
                .enumerate()
                .filter(|(_, v)| *v != 0)
                .map(|(i, v)| {
                    (
                        (i / keys) as u32,
                        (i % keys) as u32,
                        base + i64::from(v) - 1,
                    )
                })
                .collect(),
            FirstSuccess::Sparse(map) => map.into_iter().map(|((a, s), t)| (a, s, t)).collect(),
        }
    }
}

/// What the scorecard's extra pass takes from one whole segment without a slice or breakdown:
/// the first success per (account, endpoint), in account order, and per endpoint the failed
/// calls' weights. Window-independent: built once with the segment's facts, merged by every
/// scorecard whose window holds the whole segment (segments at the window's edges, sliced and
/// broken-down scorecards scan rows).
#[derive(Debug, Default)]
pub struct SegSummary {
    /// (account, endpoint, first successful call), sorted by account.
    first_success: Vec<(u32, u32, i64)>,
    /// endpoint → failed calls: Σ weight × value of those that carried a value, Σ weight of
    /// those that did not, Σ weight of those that carried a value of 0.
    failed: Vec<(u32, Failed)>,
    /// Earliest call of each account and of each user in the segment, sorted by id.
    account_first: Vec<(u32, i64)>,
    user_first: Vec<(u32, i64)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Failed {
    valued: f64,
    unvalued: f64,
    zero: f64,
}

/// Made with each call segment the business answers' cache builds
/// ([`crate::Insights::cache`]): the first scorecard after a restart then merges summaries instead
/// of scanning every row.
pub fn summarize(seg: &crate::facts::CallSeg) {
    seg.extensions.get_or_init(|| SegSummary::of(seg));
}

impl valuetrace_facts::extensions::SegExtension for SegSummary {
    fn bytes(&self) -> usize {
        SegSummary::bytes(self)
    }
}

impl SegSummary {
    pub fn bytes(&self) -> usize {
        self.first_success.len() * 16
            + self.failed.len() * 32
            + (self.account_first.len() + self.user_first.len()) * 16
    }

    pub fn of(seg: &crate::facts::CallSeg) -> SegSummary {
        let mut first: FxHashMap<(u32, u32), i64> = FxHashMap::default();
        let mut failed: FxHashMap<u32, Failed> = FxHashMap::default();
        for row in 0..seg.len() {
            let (t, endpoint) = (seg.ts[row], seg.endpoint[row]);
            if seg.status[row] < 400 {
                let cell = first.entry((seg.account[row], endpoint)).or_insert(t);
                *cell = (*cell).min(t);
                continue;
            }
            let w = f64::from(seg.weight[row]);
            let f = failed.entry(endpoint).or_default();
            if seg.has_value(row) {
                f.valued += w * seg.value[row];
                if seg.value[row] == 0.0 {
                    f.zero += w;
                }
            } else {
                f.unvalued += w;
            }
        }
        let mut first_success: Vec<(u32, u32, i64)> =
            first.into_iter().map(|((a, e), t)| (a, e, t)).collect();
        first_success.sort_unstable();
        let earliest = |ids: &[u32]| {
            let mut first: FxHashMap<u32, i64> = FxHashMap::default();
            for (row, id) in ids.iter().enumerate() {
                let cell = first.entry(*id).or_insert(seg.ts[row]);
                *cell = (*cell).min(seg.ts[row]);
            }
            let mut sorted: Vec<(u32, i64)> = first.into_iter().collect();
            sorted.sort_unstable();
            sorted
        };
        SegSummary {
            first_success,
            failed: failed.into_iter().collect(),
            account_first: earliest(&seg.account),
            user_first: earliest(&seg.user),
        }
    }
}

/// Earliest call per account and per user before `to`, in parallel. Rows are sorted by session
/// and time, so a run of one id only needs its first row.
fn first_seen(ctx: &Ctx, to: i64) -> (Vec<i64>, Vec<i64>) {
    let names = &ctx.scope.names;
    let (accounts, users) = (names.accounts + 1, names.users + 1);
    let passes = par_calls(
        &ctx.facts.calls,
        i64::MIN,
        to,
        || (vec![i64::MAX; accounts], vec![i64::MAX; users]),
        |(account_first, user_first), seg| {
            if seg.max_ts < to
                && let Some(summary) = seg.extensions.get::<SegSummary>()
            {
                for (firsts, seen) in [
                    (&mut *account_first, &summary.account_first),
                    (&mut *user_first, &summary.user_first),
                ] {
                    for &(id, t) in seen {
                        firsts[id as usize] = firsts[id as usize].min(t);
                    }
                }
                return;
            }
            let (mut account, mut user) = (u32::MAX, u32::MAX);
            for row in 0..seg.len() {
                if seg.account[row] != account {
                    account = seg.account[row];
                    let slot = &mut account_first[account as usize];
                    *slot = (*slot).min(seg.ts[row]);
                }
                if seg.user[row] != user {
                    user = seg.user[row];
                    let slot = &mut user_first[user as usize];
                    *slot = (*slot).min(seg.ts[row]);
                }
            }
        },
    );
    let mut passes = passes.into_iter();
    let (mut account_first, mut user_first) = passes
        .next()
        .unwrap_or_else(|| (vec![i64::MAX; accounts], vec![i64::MAX; users]));
    for (accounts, users) in passes {
        for (mine, theirs) in account_first.iter_mut().zip(accounts) {
            *mine = (*mine).min(theirs);
        }
        for (mine, theirs) in user_first.iter_mut().zip(users) {
            *mine = (*mine).min(theirs);
        }
    }
    (account_first, user_first)
}

/// Average order value of each endpoint's successful calls that carried a value, in the
/// question's slice (from the impact pass: no extra scan).
fn order_values(parts: &ImpactParts, endpoints: usize) -> Vec<f64> {
    let mut sums = vec![(0.0, 0.0); endpoints + 1];
    for (endpoint, _, usage) in parts.current.keys.iter() {
        let slot = &mut sums[endpoint as usize];
        slot.0 += usage.direct.sum;
        slot.1 += usage.direct_calls;
    }
    sums.iter()
        .map(|(sum, calls)| ratio(*sum, *calls).unwrap_or(0.0))
        .collect()
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
    let (account_first, user_first) = first_seen(ctx, to);
    let aov = order_values(&parts, names.endpoints.len());
    // Dense index of the accounts first seen inside the window (u32::MAX: not new).
    let mut new_accounts: Vec<u32> = Vec::new();
    let new_index: Vec<u32> = account_first
        .iter()
        .enumerate()
        .map(|(account, first)| {
            if account != 0 && *first >= from && *first != i64::MAX {
                new_accounts.push(account as u32);
                new_accounts.len() as u32 - 1
            } else {
                u32::MAX
            }
        })
        .collect();
    let width = if ctx.scope.by().is_some() {
        names.dim_count() + 1
    } else {
        1
    };
    let slots = (names.endpoints.len() + 1) * width;
    let passes = par_calls(
        &ctx.facts.calls,
        from,
        to,
        || Pass {
            extra: KeyTable::<Extra>::new(&ctx.scope),
            first_success: FirstSuccess::new(new_accounts.len(), slots, from, to),
        },
        |pass, seg| {
            let whole = seg.min_ts >= from && seg.max_ts < to;
            if whole && ctx.scope.is_everything() && ctx.scope.by().is_none() {
                let summary = seg.extensions.get_or_init(|| SegSummary::of(seg));
                for &(account, endpoint, t) in &summary.first_success {
                    let new = new_index[account as usize];
                    if new != u32::MAX {
                        pass.first_success.offer_min(new, endpoint, t);
                    }
                }
                for &(endpoint, f) in &summary.failed {
                    let acc = pass.extra.get_mut(endpoint, 0);
                    let average = aov[endpoint as usize];
                    acc.value_at_risk += f.valued + f.unvalued * average;
                    acc.failed_without_value +=
                        f.zero + if average == 0.0 { f.unvalued } else { 0.0 };
                }
                return;
            }
            for row in 0..seg.len() {
                let t = seg.ts[row];
                if t < from || t >= to || !ctx.scope.call_ok(seg, row) {
                    continue;
                }
                let (account, status) = (seg.account[row], seg.status[row]);
                if status < 400 {
                    let new = new_index[account as usize];
                    if new == u32::MAX {
                        continue;
                    }
                    let slot =
                        seg.endpoint[row] as usize * width + ctx.scope.group(seg, row) as usize;
                    pass.first_success.offer(new, slot as u32, t, seg.min_ts);
                    continue;
                }
                let endpoint = seg.endpoint[row];
                let acc = pass.extra.get_mut(endpoint, ctx.scope.group(seg, row));
                let value = if seg.has_value(row) {
                    seg.value[row]
                } else {
                    aov[endpoint as usize]
                };
                acc.value_at_risk += f64::from(seg.weight[row]) * value;
                if value == 0.0 {
                    acc.failed_without_value += f64::from(seg.weight[row]);
                }
            }
        },
    );
    let mut extra = KeyTable::new(&ctx.scope);
    let mut first_success = FirstSuccess::new(new_accounts.len(), slots, from, to);
    for other in passes {
        first_success.merge(other.first_success);
        extra.merge_with(other.extra, |mine, theirs| {
            mine.value_at_risk += theirs.value_at_risk;
            mine.failed_without_value += theirs.failed_without_value;
        });
    }
    let mut delays_by_slot: FxHashMap<u32, Vec<i64>> = FxHashMap::default();
    for (new, slot, t) in first_success.cells() {
        let account = new_accounts[new as usize];
        delays_by_slot
            .entry(slot)
            .or_default()
            .push(t - account_first[account as usize]);
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
        let slot = endpoint as usize * width + group as usize;
        let mut delays: Vec<i64> = delays_by_slot.remove(&(slot as u32)).unwrap_or_default();
        let new_users = u
            .users
            .iter()
            .filter(|user| user_first[*user as usize] >= from)
            .count();
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
            new_user_share: ratio(new_users as f64, u.users.len() as f64),
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
