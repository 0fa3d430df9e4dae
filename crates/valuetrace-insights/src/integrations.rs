//! Third-party integration health from outbound calls: per provider success rate, latency, error
//! classes, trend, and the conversion of sessions that met a provider failure vs those that did not.
//!
//! A provider call failed when its status is 5xx, 408 or 429 (the provider's fault or limit);
//! other 4xx are business answers (a declined card) and count as handled.

use crate::Ctx;
use crate::errors::Classifier;
use crate::stats::{Rate, quantile, ratio, wilson};
use crate::usage::{BitSet, session_conversions};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderTrend {
    pub start: i64,
    pub calls: f64,
    pub failures: f64,
    pub success_rate: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRow {
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub endpoints: Vec<String>,
    pub calls: f64,
    pub failures: f64,
    pub success_rate: Rate,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub error_classes: BTreeMap<String, f64>,
    pub trend: Vec<ProviderTrend>,
    pub sessions_with_failure: usize,
    pub sessions_without_failure: usize,
    pub conversion_with_failure: Rate,
    pub conversion_without_failure: Rate,
    /// Conversion without failure minus with failure, percentage points.
    pub conversion_gap_pp: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationsAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub providers: Vec<ProviderRow>,
}

pub fn is_provider_failure(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

#[derive(Default)]
struct Acc {
    endpoints: Vec<u32>,
    calls: f64,
    failures: f64,
    latencies: Vec<f32>,
    classes: HashMap<u16, f64>,
    buckets: Vec<(f64, f64, Vec<f32>)>,
    sessions: BitSet,
    failed_sessions: BitSet,
}

pub fn answer(ctx: &Ctx) -> IntegrationsAnswer {
    let q = ctx.question;
    let (from, to) = (q.from, q.to);
    let names = &ctx.scope.names;
    let conversion = names.dim_id(&ctx.config.conversion_outcome);
    let conversions = session_conversions(&ctx.facts, conversion, from, to);
    let interval = crate::trend_interval(q.span());
    let buckets = ((to - from + interval - 1) / interval) as usize;
    let mut classifier = Classifier::new(ctx.config);
    let mut by_provider: HashMap<(u32, u32), Acc> = HashMap::new();
    for seg in &ctx.facts.calls {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            let endpoint = seg.endpoint[row];
            let provider = ctx.scope.provider_of(endpoint);
            if provider == 0
                || t < from
                || t >= to
                || !names.endpoint(endpoint).outbound
                || !ctx.scope.call_ok(seg, row)
            {
                continue;
            }
            let acc = by_provider
                .entry((provider, ctx.scope.group(seg, row)))
                .or_default();
            if acc.buckets.is_empty() {
                acc.buckets = vec![(0.0, 0.0, Vec::new()); buckets];
            }
            if !acc.endpoints.contains(&endpoint) {
                acc.endpoints.push(endpoint);
            }
            let w = f64::from(seg.weight[row]);
            let status = seg.status[row];
            let failed = is_provider_failure(status);
            acc.calls += w;
            acc.latencies.push(seg.latency[row]);
            let bucket = &mut acc.buckets[((t - from) / interval) as usize];
            bucket.0 += w;
            bucket.2.push(seg.latency[row]);
            if status >= 400 {
                let error_type = seg.error_type[row];
                let class = classifier.class(
                    endpoint,
                    names.endpoint(endpoint),
                    status,
                    error_type,
                    names.dim(error_type),
                );
                *acc.classes.entry(class).or_default() += w;
            }
            if failed {
                acc.failures += w;
                bucket.1 += w;
            }
            let session = seg.session[row];
            if session != 0 {
                acc.sessions.insert(session);
                if failed {
                    acc.failed_sessions.insert(session);
                }
            }
        }
    }
    let mut providers: Vec<ProviderRow> = by_provider
        .into_iter()
        .map(|((provider, group), mut acc)| {
            let (mut conv_failed, mut conv_ok) = (0.0, 0.0);
            for session in acc.sessions.iter() {
                if conversions.of(session) > 0.0 {
                    if acc.failed_sessions.contains(session) {
                        conv_failed += 1.0;
                    } else {
                        conv_ok += 1.0;
                    }
                }
            }
            let n_failed = acc.failed_sessions.len();
            let n_ok = acc.sessions.len() - n_failed;
            let with = wilson(conv_failed, n_failed as f64);
            let without = wilson(conv_ok, n_ok as f64);
            let mut endpoints: Vec<String> = acc
                .endpoints
                .iter()
                .map(|e| names.endpoint(*e).label())
                .collect();
            endpoints.sort();
            ProviderRow {
                provider: names.dim(provider).to_owned(),
                group: ctx.scope.group_label(group),
                endpoints,
                calls: acc.calls,
                failures: acc.failures,
                success_rate: wilson(acc.calls - acc.failures, acc.calls),
                p50_ms: quantile(&mut acc.latencies, 0.5),
                p95_ms: quantile(&mut acc.latencies, 0.95),
                error_classes: acc
                    .classes
                    .iter()
                    .map(|(class, n)| (classifier.classes[*class as usize].clone(), *n))
                    .collect(),
                trend: acc
                    .buckets
                    .iter_mut()
                    .enumerate()
                    .map(|(i, (calls, failures, latencies))| ProviderTrend {
                        start: from + i as i64 * interval,
                        calls: *calls,
                        failures: *failures,
                        success_rate: ratio(*calls - *failures, *calls),
                        p95_ms: quantile(latencies, 0.95),
                    })
                    .collect(),
                sessions_with_failure: n_failed,
                sessions_without_failure: n_ok,
                conversion_gap_pp: without
                    .rate
                    .zip(with.rate)
                    .map(|(a, b)| crate::stats::round((a - b) * 100.0, 3)),
                conversion_with_failure: with,
                conversion_without_failure: without,
            }
        })
        .collect();
    providers.sort_by(|a, b| {
        b.calls
            .total_cmp(&a.calls)
            .then_with(|| a.provider.cmp(&b.provider))
            .then_with(|| a.group.cmp(&b.group))
    });
    IntegrationsAnswer {
        project: q.project.clone(),
        from,
        to,
        providers,
    }
}
