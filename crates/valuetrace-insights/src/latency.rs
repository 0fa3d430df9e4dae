//! Latency vs conversion: sessions that called a route, bucketed by the slowest latency they saw
//! on it; per bucket the share of sessions with the conversion outcome, with a 95% Wilson
//! interval. Buckets with fewer sessions than `min_bucket_sessions` are marked `low_sample` (shown,
//! never hidden) and cannot be the best bucket. Value at risk above the threshold: (conversion
//! below − conversion above) × sessions above × average value of the outcome, given only when both
//! sides of the threshold have at least `min_bucket_sessions` sessions: from one slow session the
//! difference of conversions is noise, and a headline built on it misleads.

use crate::config::route_matches;
use crate::stats::{Rate, wilson};
use crate::usage::session_conversions;
use crate::{Ctx, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySpec {
    /// Route pattern, e.g. `POST /api/checkout`.
    pub route: String,
    /// Conversion outcome; default: the project's `conversion_outcome`.
    pub outcome: Option<String>,
    /// Upper bucket edges in ms (ascending); a last open bucket is added.
    pub edges_ms: Vec<f64>,
    pub threshold_ms: f64,
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            route: String::new(),
            outcome: None,
            edges_ms: vec![100.0, 250.0, 500.0, 1000.0, 2500.0],
            threshold_ms: 1000.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub from_ms: f64,
    pub to_ms: Option<f64>,
    pub sessions: u64,
    pub conversions: u64,
    pub conversion: Rate,
    pub low_sample: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub route: String,
    pub outcome: String,
    pub endpoints: Vec<String>,
    pub min_bucket_sessions: u64,
    pub buckets: Vec<Bucket>,
    /// The bucket (by its lower edge) with the highest conversion among trusted buckets.
    pub best_bucket_from_ms: Option<f64>,
    pub threshold_ms: f64,
    pub sessions_above_threshold: u64,
    pub conversion_below_threshold: Rate,
    pub conversion_above_threshold: Rate,
    pub average_outcome_value: Option<f64>,
    /// Null when a side of the threshold has fewer than `min_bucket_sessions` sessions
    /// (`value_at_risk_low_sample`).
    pub value_at_risk: Option<f64>,
    /// True when a side of the threshold has too few sessions for a value at risk.
    pub value_at_risk_low_sample: bool,
}

pub fn answer(ctx: &Ctx, spec: &LatencySpec) -> Result<LatencyAnswer> {
    let names = &ctx.scope.names;
    if spec.route.trim().is_empty() {
        return Err(Error::InvalidQuery(
            "`route` is required, e.g. route=POST /api/checkout".into(),
        ));
    }
    if spec.edges_ms.windows(2).any(|w| w[0] >= w[1])
        || spec.edges_ms.iter().any(|e| !(e.is_finite() && *e > 0.0))
    {
        return Err(Error::InvalidQuery(
            "`buckets` must be ascending positive milliseconds, e.g. 100,250,500,1000".into(),
        ));
    }
    let outcome = spec
        .outcome
        .clone()
        .unwrap_or_else(|| ctx.config.conversion_outcome.clone());
    let q = ctx.question;
    let wanted: Vec<bool> = std::iter::once(false)
        .chain(
            names
                .endpoints
                .iter()
                .map(|e| route_matches(&spec.route, &e.method, &e.route)),
        )
        .collect();
    let mut endpoints: Vec<String> = names
        .endpoints
        .iter()
        .filter(|e| route_matches(&spec.route, &e.method, &e.route))
        .map(|e| e.label())
        .collect();
    endpoints.sort();
    endpoints.dedup();
    let conversions = session_conversions(&ctx.facts, names.dim_id(&outcome), q.from, q.to);
    // Session → (slowest latency on the route, group of its first call, time of that call).
    // Rows come in storage order (arrival order until persisted), so "first" is by timestamp.
    let mut sessions: HashMap<u32, (f32, u32, i64)> = HashMap::new();
    for seg in &ctx.facts.calls {
        if seg.max_ts < q.from || seg.min_ts >= q.to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            let session = seg.session[row];
            if session == 0
                || t < q.from
                || t >= q.to
                || !wanted[seg.endpoint[row] as usize]
                || !ctx.scope.call_ok(seg, row)
            {
                continue;
            }
            let group = ctx.scope.group(seg, row);
            let entry = sessions.entry(session).or_insert((0.0, group, t));
            entry.0 = entry.0.max(seg.latency[row]);
            if t < entry.2 {
                (entry.1, entry.2) = (group, t);
            }
        }
    }
    let n = spec.edges_ms.len() + 1;
    let mut counts: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    let (mut above, mut above_conv, mut below, mut below_conv) = (0u64, 0u64, 0u64, 0u64);
    for (session, (latency, group, _)) in &sessions {
        let latency = f64::from(*latency);
        let bucket = spec.edges_ms.partition_point(|edge| *edge <= latency);
        let converted = conversions.of(*session) > 0.0;
        let slot = &mut counts.entry(*group).or_insert_with(|| vec![(0, 0); n])[bucket];
        slot.0 += 1;
        slot.1 += u64::from(converted);
        if latency > spec.threshold_ms {
            above += 1;
            above_conv += u64::from(converted);
        } else {
            below += 1;
            below_conv += u64::from(converted);
        }
    }
    let min = ctx.config.min_bucket_sessions;
    let mut groups: Vec<u32> = counts.keys().copied().collect();
    groups.sort_by_key(|g| ctx.scope.group_label(*g));
    let mut buckets = Vec::new();
    for group in groups {
        for (i, (sessions, conv)) in counts[&group].iter().enumerate() {
            buckets.push(Bucket {
                group: ctx.scope.group_label(group),
                from_ms: if i == 0 { 0.0 } else { spec.edges_ms[i - 1] },
                to_ms: spec.edges_ms.get(i).copied(),
                sessions: *sessions,
                conversions: *conv,
                conversion: wilson(*conv as f64, *sessions as f64),
                low_sample: *sessions < min,
            });
        }
    }
    let best = buckets
        .iter()
        .filter(|b| !b.low_sample && b.group.is_none())
        .max_by(|a, b| {
            a.conversion
                .rate
                .unwrap_or(0.0)
                .total_cmp(&b.conversion.rate.unwrap_or(0.0))
        })
        .map(|b| b.from_ms);
    let below_rate = wilson(below_conv as f64, below as f64);
    let above_rate = wilson(above_conv as f64, above as f64);
    let average_value = conversions.average_value();
    let low_sample = above < min || below < min;
    let value_at_risk = match (below_rate.rate, above_rate.rate, average_value) {
        (Some(b), Some(a), Some(v)) if !low_sample => Some(((b - a) * above as f64 * v).max(0.0)),
        _ => None,
    };
    Ok(LatencyAnswer {
        project: q.project.clone(),
        from: q.from,
        to: q.to,
        route: spec.route.clone(),
        outcome,
        endpoints,
        min_bucket_sessions: min,
        buckets,
        best_bucket_from_ms: best,
        threshold_ms: spec.threshold_ms,
        sessions_above_threshold: above,
        conversion_below_threshold: below_rate,
        conversion_above_threshold: above_rate,
        average_outcome_value: average_value,
        value_at_risk,
        value_at_risk_low_sample: low_sample,
    })
}
