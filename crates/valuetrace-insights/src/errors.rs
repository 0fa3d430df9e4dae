//! Errors in business terms: classes, the share of `unknown` errors over time, users and sessions
//! affected, value at risk, and the top error patterns by segment, plan and provider.
//!
//! A call failed when its status is 400 or above. Its class is the first matching
//! `error_rules` entry (status and route), else its `error_type`, else `unknown` — the share to
//! drive down. Value at risk of a failed call: the value it carried, else the average value of the
//! endpoint's successful value-carrying calls in the window (0 for endpoints that carry none).
//! Lost conversions, per endpoint: among sessions that called the endpoint, those that met a
//! failure on it converted less often than those that did not; the difference × the sessions
//! with a failure (0 when they converted as often or more). Comparing sessions of the same
//! endpoint keeps long sessions (which both convert more and meet more errors) from hiding the
//! loss. The total sums the endpoints (a session failing on two endpoints counts in both); lost
//! value = lost conversions × the average conversion value. The session-level rates with and
//! without any error are shown too, as context.

use crate::Ctx;
use crate::config::{parse_status, route_matches};
use crate::facts::EndpointKey;
use crate::stats::{Draw, Rate, Tally, ratio, ratio_estimate, sampling_unit, wilson};
use crate::usage::{BitSet, KeySet, par_calls, session_conversions};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub calls: f64,
    /// Share of all failed calls.
    pub share: Option<f64>,
    pub users: usize,
    pub sessions: usize,
    pub value_at_risk: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub start: i64,
    pub failed: f64,
    pub unknown: f64,
    pub unknown_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionImpact {
    pub sessions_with_error: usize,
    pub sessions_without_error: usize,
    pub conversion_with_error: Rate,
    pub conversion_without_error: Rate,
    pub lost_conversions: f64,
    pub average_conversion_value: Option<f64>,
    pub lost_value: f64,
    /// Endpoints with lost conversions, most first.
    pub by_endpoint: Vec<EndpointLoss>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointLoss {
    pub endpoint: String,
    pub sessions_with_failure: usize,
    pub sessions_without_failure: usize,
    pub conversion_with_failure: Rate,
    pub conversion_without_failure: Rate,
    pub lost_conversions: f64,
    pub lost_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    pub endpoint: String,
    pub class: String,
    pub plan: Option<String>,
    pub segment: Option<String>,
    pub provider: Option<String>,
    pub calls: f64,
    pub users: usize,
    pub value_at_risk: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorsAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub calls: f64,
    /// 95% interval of `calls` when sampled (each session, else user, the client sampled as a
    /// whole is one unit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls_ci95: Option<[f64; 2]>,
    pub failed: f64,
    /// `failed / calls`; when sampled, Beale's ratio estimate (unbiased to first order although
    /// errors are kept whole and the calls around them sampled: [`crate::stats::ratio_estimate`]).
    pub error_rate: Option<f64>,
    /// 95% interval of `error_rate` when sampled (linearized over the sampling units).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate_ci95: Option<[f64; 2]>,
    /// `calls`, `failed` and `error_rate` are exact: counted from the clients' `api_aggregate`
    /// events and unsampled calls (the health counts), not estimated from sampled calls.
    #[serde(default)]
    pub exact_counts: bool,
    pub unknown: f64,
    pub unknown_share: Option<f64>,
    pub value_at_risk: f64,
    pub classes: Vec<ClassRow>,
    pub unknown_trend: Vec<TrendPoint>,
    pub sessions: SessionImpact,
    pub patterns: Vec<Pattern>,
    pub estimate: bool,
}

/// Error classification with a cache per (endpoint, status, error_type).
pub struct Classifier<'a> {
    rules: Vec<((u16, u16), Option<&'a str>, &'a str)>,
    pub classes: Vec<String>,
    cache: HashMap<(u32, u16, u32), u16>,
}

pub const UNKNOWN: &str = "unknown";

impl<'a> Classifier<'a> {
    pub fn new(config: &'a crate::AnalysisConfig) -> Self {
        let rules = config
            .error_rules
            .iter()
            .filter_map(|r| {
                Some((
                    parse_status(&r.status)?,
                    r.route.as_deref(),
                    r.class.as_str(),
                ))
            })
            .collect();
        Classifier {
            rules,
            classes: vec![UNKNOWN.into()],
            cache: HashMap::new(),
        }
    }

    /// Index into `classes` of a failed call's class (0 is `unknown`).
    pub fn class(
        &mut self,
        endpoint_id: u32,
        endpoint: &EndpointKey,
        status: u16,
        error_type_id: u32,
        error_type: &str,
    ) -> u16 {
        if let Some(&class) = self.cache.get(&(endpoint_id, status, error_type_id)) {
            return class;
        }
        let by_rule = self.rules.iter().find(|((lo, hi), route, _)| {
            (*lo..=*hi).contains(&status)
                && route.is_none_or(|r| route_matches(r, &endpoint.method, &endpoint.route))
        });
        let name = match by_rule {
            Some((_, _, class)) => *class,
            None if !error_type.is_empty() => error_type,
            None => UNKNOWN,
        };
        let index = self.index_of(name);
        self.cache
            .insert((endpoint_id, status, error_type_id), index);
        index
    }

    /// The index of a class name, added if new (`unknown` is 0).
    pub fn index_of(&mut self, name: &str) -> u16 {
        (match self.classes.iter().position(|c| c == name) {
            Some(index) => index,
            None => {
                self.classes.push(name.to_owned());
                self.classes.len() - 1
            }
        }) as u16
    }
}

#[derive(Default)]
struct ClassAcc {
    calls: f64,
    users: BitSet,
    sessions: BitSet,
    value_at_risk: f64,
}

#[derive(Default)]
struct PatternAcc {
    calls: f64,
    users: BitSet,
    value_at_risk: f64,
}

/// Average value of successful value-carrying calls per endpoint id.
pub fn endpoint_order_values(ctx: &Ctx, from: i64, to: i64) -> Vec<f64> {
    let n = ctx.scope.names.endpoints.len() + 1;
    let (mut sum, mut count) = (vec![0.0; n], vec![0.0; n]);
    for seg in &ctx.facts.calls {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            if t < from || t >= to || seg.status[row] >= 400 || !seg.has_value(row) {
                continue;
            }
            let (e, w) = (seg.endpoint[row] as usize, f64::from(seg.weight[row]));
            sum[e] += w * seg.value[row];
            count[e] += w;
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(s, c)| ratio(*s, *c).unwrap_or(0.0))
        .collect()
}

/// What one thread gathers over its segments.
struct Pass<'c> {
    classifier: Classifier<'c>,
    classes: HashMap<(u16, u32), ClassAcc>,
    patterns: HashMap<(u32, u16, u32, u32, u32), PatternAcc>,
    calls: Tally,
    failed: f64,
    /// Sampled calls per (sampling unit, rate): [failed, calls], re-weighted.
    draws: Vec<Draw>,
    /// Some call was sampled (rate below 1) and no client aggregate counted it: the health
    /// counts miss the calls dropped with it, so they are not exact.
    sampled_unaggregated: bool,
    unknown: f64,
    value_at_risk: f64,
    trend: Vec<(f64, f64)>,
    seen: BitSet,
    with_error: BitSet,
    /// Endpoint id → (sessions that called it, sessions with a failure on it).
    endpoint_sessions: Vec<(BitSet, BitSet)>,
}

impl ClassAcc {
    fn merge(&mut self, other: &ClassAcc) {
        self.calls += other.calls;
        self.value_at_risk += other.value_at_risk;
        self.users.union_with(&other.users);
        self.sessions.union_with(&other.sessions);
    }
}

impl PatternAcc {
    fn merge(&mut self, other: &PatternAcc) {
        self.calls += other.calls;
        self.value_at_risk += other.value_at_risk;
        self.users.union_with(&other.users);
    }
}

#[allow(clippy::too_many_arguments)]
fn pass_segment(
    p: &mut Pass,
    ctx: &Ctx,
    seg: &crate::facts::CallSeg,
    from: i64,
    to: i64,
    interval: i64,
    aov: &[f64],
) {
    let names = &ctx.scope.names;
    let inside = seg.min_ts >= from && seg.max_ts < to;
    let everything = ctx.scope.is_everything();
    let (mut called, mut failed_on) = (KeySet::default(), KeySet::default());
    let mut start = 0;
    while start < seg.len() {
        let end = seg.run_end(start);
        let session = seg.session[start];
        called.clear();
        failed_on.clear();
        for row in start..end {
            let t = seg.ts[row];
            if (!inside && (t < from || t >= to)) || (!everything && !ctx.scope.call_ok(seg, row)) {
                continue;
            }
            let weight = seg.weight[row];
            let w = f64::from(weight);
            let status = seg.status[row];
            p.calls.sum += w;
            if weight > 1.0 {
                p.sampled_unaggregated |= !seg.aggregated[row];
                // Errors are usually kept with certainty (no draw); the calls around them are
                // not: each call counts at its own rate, the unit at the client's.
                p.draws.push(Draw {
                    unit: sampling_unit(session, seg.user[row]),
                    weight,
                    values: [if status >= 400 { w } else { 0.0 }, w],
                });
            }
            let endpoint = seg.endpoint[row];
            called.insert(endpoint, 0);
            if status < 400 {
                continue;
            }
            failed_on.insert(endpoint, 0);
            let error_type = seg.error_type[row];
            let class = p.classifier.class(
                endpoint,
                names.endpoint(endpoint),
                status,
                error_type,
                names.dim(error_type),
            );
            p.failed += w;
            let bucket = ((t - from) / interval) as usize;
            p.trend[bucket].0 += w;
            if class == 0 {
                p.unknown += w;
                p.trend[bucket].1 += w;
            }
            let at_risk = w * if seg.has_value(row) {
                seg.value[row]
            } else {
                aov[endpoint as usize]
            };
            p.value_at_risk += at_risk;
            let user = seg.user[row];
            let acc = p
                .classes
                .entry((class, ctx.scope.group(seg, row)))
                .or_default();
            acc.calls += w;
            acc.value_at_risk += at_risk;
            if user != 0 {
                acc.users.insert(user);
            }
            if session != 0 {
                acc.sessions.insert(session);
            }
            let provider = ctx.scope.provider_of(endpoint);
            let pattern = p
                .patterns
                .entry((endpoint, class, seg.plan[row], seg.segment[row], provider))
                .or_default();
            pattern.calls += w;
            pattern.value_at_risk += at_risk;
            if user != 0 {
                pattern.users.insert(user);
            }
        }
        if session != 0 {
            let mut any = false;
            called.for_each(|endpoint, _| {
                any = true;
                p.endpoint_sessions[endpoint as usize].0.insert(session);
            });
            if any {
                p.seen.insert(session);
            }
            let mut failed_any = false;
            failed_on.for_each(|endpoint, _| {
                failed_any = true;
                p.endpoint_sessions[endpoint as usize].1.insert(session);
            });
            if failed_any {
                p.with_error.insert(session);
            }
        }
        start = end;
    }
}

/// Exact counts of the answer's calls: all of them, and those with status 400 or above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExactCounts {
    pub calls: f64,
    pub failed: f64,
}

impl ErrorsAnswer {
    /// Replaces the estimated `calls`, `failed` and `error_rate` with exact counts.
    pub fn use_exact(&mut self, exact: ExactCounts) {
        self.calls = exact.calls;
        self.calls_ci95 = None;
        self.failed = exact.failed;
        self.error_rate = ratio(exact.failed, exact.calls);
        self.error_rate_ci95 = None;
        self.exact_counts = true;
    }
}

pub fn answer(ctx: &Ctx) -> ErrorsAnswer {
    answer_and_coverage(ctx).0
}

/// The answer, and whether the store's health counts of the window are exact for it (no call
/// of the scope was sampled without an aggregate counting it).
pub fn answer_and_coverage(ctx: &Ctx) -> (ErrorsAnswer, bool) {
    let q = ctx.question;
    let (from, to) = (q.from, q.to);
    let names = &ctx.scope.names;
    let aov = endpoint_order_values(ctx, from, to);
    let conversion = names.dim_id(&ctx.config.conversion_outcome);
    let conversions = session_conversions(&ctx.facts, conversion, from, to);
    let interval = crate::trend_interval(q.span());
    let buckets = ((to - from + interval - 1) / interval) as usize;
    let sessions_cap = names.sessions + 1;
    let init = || Pass {
        classifier: Classifier::new(ctx.config),
        classes: HashMap::new(),
        patterns: HashMap::new(),
        calls: Tally::default(),
        failed: 0.0,
        draws: Vec::new(),
        sampled_unaggregated: false,
        unknown: 0.0,
        value_at_risk: 0.0,
        trend: vec![(0.0, 0.0); buckets],
        seen: BitSet::with_capacity(sessions_cap),
        with_error: BitSet::with_capacity(sessions_cap),
        endpoint_sessions: vec![Default::default(); names.endpoints.len() + 1],
    };
    let passes = par_calls(&ctx.facts.calls, from, to, init, |p, seg| {
        pass_segment(p, ctx, seg, from, to, interval, &aov)
    });
    // Merge the threads' passes; classes by name (each thread numbered its own).
    let (mut calls, mut failed, mut unknown, mut var) = (Tally::default(), 0.0, 0.0, 0.0);
    let mut draws: Vec<Draw> = Vec::new();
    let mut sampled_unaggregated = false;
    let mut trend = vec![(0.0, 0.0); buckets];
    let (mut seen, mut with_error) = (
        BitSet::with_capacity(sessions_cap),
        BitSet::with_capacity(sessions_cap),
    );
    let mut endpoint_sessions: Vec<(BitSet, BitSet)> =
        vec![Default::default(); names.endpoints.len() + 1];
    let mut classifier = Classifier::new(ctx.config);
    let mut classes: HashMap<(u16, u32), ClassAcc> = HashMap::new();
    let mut patterns: HashMap<(u32, u16, u32, u32, u32), PatternAcc> = HashMap::new();
    for mut p in passes {
        calls.merge(&p.calls);
        draws.append(&mut p.draws);
        sampled_unaggregated |= p.sampled_unaggregated;
        failed += p.failed;
        unknown += p.unknown;
        var += p.value_at_risk;
        for (mine, theirs) in trend.iter_mut().zip(&p.trend) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        seen.union_with(&p.seen);
        with_error.union_with(&p.with_error);
        for (mine, theirs) in endpoint_sessions.iter_mut().zip(&p.endpoint_sessions) {
            mine.0.union_with(&theirs.0);
            mine.1.union_with(&theirs.1);
        }
        let index = |name: &str, classifier: &mut Classifier| classifier.index_of(name);
        for ((class, group), acc) in &p.classes {
            let class = index(&p.classifier.classes[*class as usize], &mut classifier);
            classes.entry((class, *group)).or_default().merge(acc);
        }
        for ((endpoint, class, plan, segment, provider), acc) in &p.patterns {
            let class = index(&p.classifier.classes[*class as usize], &mut classifier);
            patterns
                .entry((*endpoint, class, *plan, *segment, *provider))
                .or_default()
                .merge(acc);
        }
    }
    let mut class_rows: Vec<ClassRow> = classes
        .into_iter()
        .map(|((class, group), acc)| ClassRow {
            class: classifier.classes[class as usize].clone(),
            group: ctx.scope.group_label(group),
            calls: acc.calls,
            share: ratio(acc.calls, failed),
            users: acc.users.len(),
            sessions: acc.sessions.len(),
            value_at_risk: acc.value_at_risk,
        })
        .collect();
    class_rows.sort_by(|a, b| {
        b.calls
            .total_cmp(&a.calls)
            .then_with(|| a.class.cmp(&b.class))
            .then_with(|| a.group.cmp(&b.group))
    });
    let mut pattern_rows: Vec<Pattern> = patterns
        .into_iter()
        .map(|((endpoint, class, plan, segment, provider), acc)| {
            let text = |id: u32| (id != 0).then(|| names.dim(id).to_owned());
            Pattern {
                endpoint: names.endpoint(endpoint).label(),
                class: classifier.classes[class as usize].clone(),
                plan: text(plan),
                segment: text(segment),
                provider: text(provider),
                calls: acc.calls,
                users: acc.users.len(),
                value_at_risk: acc.value_at_risk,
            }
        })
        .collect();
    pattern_rows.sort_by(|a, b| {
        b.value_at_risk
            .total_cmp(&a.value_at_risk)
            .then_with(|| b.calls.total_cmp(&a.calls))
            .then_with(|| {
                (&a.endpoint, &a.class, &a.plan, &a.segment).cmp(&(
                    &b.endpoint,
                    &b.class,
                    &b.plan,
                    &b.segment,
                ))
            })
    });
    pattern_rows.truncate(20);
    let (mut conv_with, mut conv_without) = (0.0, 0.0);
    for session in seen.iter() {
        if conversions.of(session) > 0.0 {
            if with_error.contains(session) {
                conv_with += 1.0;
            } else {
                conv_without += 1.0;
            }
        }
    }
    let n_with = with_error.len() as f64;
    let n_without = (seen.len() - with_error.len()) as f64;
    let rate_with = wilson(conv_with, n_with);
    let rate_without = wilson(conv_without, n_without);
    let average_value = conversions.average_value();
    let mut by_endpoint = Vec::new();
    for (endpoint, (called, failed)) in endpoint_sessions.iter().enumerate().skip(1) {
        if failed.is_empty() {
            continue;
        }
        let converted = |set: &BitSet, failed_only: Option<bool>| {
            set.iter()
                .filter(|s| failed_only.is_none_or(|f| failed.contains(*s) == f))
                .filter(|s| conversions.of(*s) > 0.0)
                .count() as f64
        };
        let (n_failed, n_ok) = (failed.len(), called.len() - failed.len());
        let with = wilson(converted(failed, None), n_failed as f64);
        let without = wilson(converted(called, Some(false)), n_ok as f64);
        let lost = match (with.rate, without.rate) {
            (Some(a), Some(b)) => ((b - a) * n_failed as f64).max(0.0),
            _ => 0.0,
        };
        if lost > 0.0 {
            by_endpoint.push(EndpointLoss {
                endpoint: names.endpoint(endpoint as u32).label(),
                sessions_with_failure: n_failed,
                sessions_without_failure: n_ok,
                conversion_with_failure: with,
                conversion_without_failure: without,
                lost_conversions: lost,
                lost_value: lost * average_value.unwrap_or(0.0),
            });
        }
    }
    by_endpoint.sort_by(|a, b| {
        b.lost_conversions
            .total_cmp(&a.lost_conversions)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    let lost: f64 = by_endpoint.iter().map(|e| e.lost_conversions).sum();
    // A session read from several segments or threads is one unit.
    Draw::coalesce(&mut draws);
    calls.settle(&draws, |v| v[1]);
    let (error_rate, error_rate_ci95) = ratio_estimate(failed, calls.sum, &draws)
        .map_or((None, None), |(rate, interval)| (Some(rate), interval));
    let answer = ErrorsAnswer {
        project: q.project.clone(),
        from,
        to,
        calls: calls.sum,
        calls_ci95: calls.interval(),
        failed,
        error_rate,
        error_rate_ci95,
        exact_counts: !calls.sampled(),
        unknown,
        unknown_share: ratio(unknown, failed),
        value_at_risk: var,
        classes: class_rows,
        unknown_trend: trend
            .iter()
            .enumerate()
            .map(|(i, (f, u))| TrendPoint {
                start: from + i as i64 * interval,
                failed: *f,
                unknown: *u,
                unknown_share: ratio(*u, *f),
            })
            .collect(),
        sessions: SessionImpact {
            sessions_with_error: with_error.len(),
            sessions_without_error: n_without as usize,
            conversion_with_error: rate_with,
            conversion_without_error: rate_without,
            lost_conversions: lost,
            average_conversion_value: average_value,
            lost_value: lost * average_value.unwrap_or(0.0),
            by_endpoint,
        },
        patterns: pattern_rows,
        estimate: calls.sampled(),
    };
    (answer, !sampled_unaggregated)
}
