//! Experiments per variant and per endpoint.
//!
//! Exposure: an actor is exposed to the variant its calls carry for the experiment (the
//! `experiments` object of the call); its first such call is its exposure time. Actors seen in two
//! variants are `mixed` and left out of the per-actor metrics (counted apart). Per variant:
//! exposed actors; conversion = share of exposed actors with the conversion outcome at or after
//! their exposure; value per actor = the values of their outcomes at or after exposure (zeros
//! included). Per endpoint and variant, over the calls carrying the variant: calls, error rate
//! (5xx), p50 and p95 latency (exact up to 50,000 calls, else on a deterministic sample of about
//! 50,000: see [`LATENCY_SAMPLE`]).
//!
//! Each treatment is compared with the control: conversion and error rates with the two-proportion
//! z-test, value per actor with Welch's t-test, latency quantiles with a bootstrap (2,000
//! resamples, fixed seed). A chi-square test checks the sample ratio against equal shares.
//!
//! Multiplicity: the p-values are adjusted with Holm's method (family-wise error ≤ 5%) in two
//! separate families, so that a verdict on the primary metrics does not depend on how many endpoints
//! are looked at:
//! - `primary`: conversion and value per actor of every treatment, adjusted among themselves only
//!   (with one treatment, a family of two);
//! - `guardrail`: the per-endpoint error rates and latency quantiles, adjusted among themselves.
//!
//! The unadjusted p-value and 95% interval are kept beside the adjusted ones. The interval `ci`
//! shown with an adjusted p-value is computed at the level Holm tested that hypothesis at
//! ([`holm_levels`]) by the interval that inverts the same test, so it excludes 0 exactly when the
//! adjusted p-value is below 0.05.

use crate::abstats::{
    ALPHA, Comparison, Srm, Summary, Welford, bootstrap_interval, bootstrap_quantile_diff_draws,
    holm, holm_levels, sample_ratio_mismatch, two_proportion, two_proportion_interval, welch,
    welch_interval,
};
use crate::pass::Cx;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use valuetrace_facts::config::route_matches;

/// Endpoints with fewer calls than this in the control or a treatment are not compared.
pub const MIN_CALLS: f64 = 100.0;
const RESAMPLES: usize = 2_000;
/// Latencies kept per (endpoint, variant) for quantiles: every call up to this many, else a
/// deterministic sample of about this many.
pub const LATENCY_SAMPLE: f64 = 50_000.0;
const MIXED: u16 = u16::MAX - 1;
const NONE: u16 = u16::MAX;

#[derive(Debug, Clone)]
pub struct ExperimentSpec {
    pub experiment: String,
    /// The control variant; default `control` when present, else the first variant by name.
    pub control: Option<String>,
    /// The conversion outcome; default: the project's `conversion_outcome`.
    pub conversion: String,
    /// Endpoints compared, the busiest first.
    pub top_endpoints: usize,
    /// Only endpoints matching this route pattern are compared (`/api/recommendations*`).
    pub endpoints: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    pub variant: String,
    pub exposed: u64,
    pub share: f64,
    pub converted: u64,
    pub conversion_rate: Option<f64>,
    /// Wilson 95% interval of `conversion_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_ci95: Option<[f64; 2]>,
    pub value_per_actor: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointVariant {
    pub variant: String,
    pub calls: f64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    pub endpoint: String,
    pub variants: Vec<EndpointVariant>,
}

/// The group of comparisons a p-value is adjusted within (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Conversion and value per actor: the experiment's verdict.
    Primary,
    /// Per-endpoint error rates and latencies: checks that nothing broke.
    Guardrail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// `conversion`, `value_per_actor`, `error_rate`, `latency_p50` or `latency_p95`.
    pub metric: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub variant: String,
    /// The family its p-value is adjusted within.
    pub family: Family,
    /// With the Holm-adjusted p-value (`significant` follows it) and the unadjusted `ci95`.
    #[serde(flatten)]
    pub comparison: Comparison,
    pub p_value_unadjusted: f64,
    /// Interval of `difference` that agrees with the adjusted `p_value`: it excludes 0 iff
    /// `p_value < 0.05`. Its confidence is `ci_level`.
    pub ci: [f64; 2],
    /// Confidence of `ci`: 1 − the level Holm tested this comparison at (0.95 / m … 0.95).
    pub ci_level: f64,
}

/// What a comparison's interval is recomputed from at another level.
enum Source {
    Rates([f64; 4]),
    Means(Summary, Summary),
    Draws(Vec<f64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentAnswer {
    pub project: String,
    pub from: i64,
    pub to: i64,
    pub per: crate::step::Actor,
    pub experiment: String,
    pub control: String,
    pub conversion_outcome: String,
    pub variants: Vec<VariantSummary>,
    /// Actors seen in more than one variant (left out of the per-actor metrics).
    pub mixed: u64,
    pub sample_ratio: Option<Srm>,
    pub correction: String,
    pub comparisons: Vec<MetricComparison>,
    pub endpoints: Vec<EndpointStats>,
}

/// Experiments seen in the window, with their variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentList {
    pub experiments: BTreeMap<String, BTreeSet<String>>,
}

fn experiments_of(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// Every experiment and variant named by the calls' `experiments` values.
pub fn list(cx: &Cx) -> ExperimentList {
    let names = cx.names();
    let mut experiments: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in 1..=names.dim_count() as u32 {
        let text = names.dim(id);
        if text.starts_with('{') {
            for (experiment, variant) in experiments_of(text) {
                experiments.entry(experiment).or_default().insert(variant);
            }
        }
    }
    ExperimentList { experiments }
}

/// Per thread: exposure per actor, and per (variant, endpoint) call counts.
struct Exposure {
    first: Vec<(i64, u16)>,
    calls: Vec<CallAcc>,
}

#[derive(Default, Clone)]
struct CallAcc {
    calls: f64,
    errors: f64,
}

pub fn answer(
    cx: &Cx,
    question: &valuetrace_facts::Question,
    spec: &ExperimentSpec,
) -> Result<ExperimentAnswer> {
    let names = cx.names();
    let mut variants: BTreeSet<String> = BTreeSet::new();
    let mut raw_variant: Vec<Option<String>> = vec![None; names.dim_count() + 1];
    for (id, slot) in raw_variant.iter_mut().enumerate().skip(1) {
        let text = names.dim(id as u32);
        if text.starts_with('{')
            && let Some(variant) = experiments_of(text).remove(&spec.experiment)
        {
            variants.insert(variant.clone());
            *slot = Some(variant);
        }
    }
    let variants: Vec<String> = variants.into_iter().collect();
    if variants.len() < 2 {
        let known = list(cx)
            .experiments
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::InvalidQuery(format!(
            "experiment `{}` has {} variant(s) in this window; experiments seen: {}",
            spec.experiment,
            variants.len(),
            if known.is_empty() {
                "none".into()
            } else {
                known
            }
        )));
    }
    let control_name = match &spec.control {
        Some(control) if variants.contains(control) => control.clone(),
        Some(control) => {
            return Err(Error::InvalidQuery(format!(
                "`control={control}` is not a variant of `{}` (variants: {})",
                spec.experiment,
                variants.join(", ")
            )));
        }
        None if variants.iter().any(|v| v == "control") => "control".into(),
        None => variants[0].clone(),
    };
    let control = variants
        .iter()
        .position(|v| *v == control_name)
        .unwrap_or(0);
    let variant_of: Vec<u16> = raw_variant
        .iter()
        .map(|v| {
            v.as_ref()
                .and_then(|v| variants.iter().position(|x| x == v))
                .map_or(NONE, |i| i as u16)
        })
        .collect();
    let (from, to) = (question.from, question.to);
    let n = cx.actors();
    let endpoints = names.endpoints.len() + 1;
    let width = variants.len();
    let conversion = names.dim_id(&spec.conversion);
    let exposure = cx.scan(
        (from, to),
        true,
        || Exposure {
            first: vec![(i64::MAX, NONE); n],
            calls: vec![CallAcc::default(); endpoints * width],
        },
        |state, seg, row, t| {
            let variant = variant_of[seg.experiments[row] as usize];
            if variant == NONE {
                return;
            }
            let acc = &mut state.calls[seg.endpoint[row] as usize * width + variant as usize];
            let w = f64::from(seg.weight[row]);
            acc.calls += w;
            if seg.status[row] >= 500 {
                acc.errors += w;
            }
            let actor = cx.actor.of_call(seg, row) as usize;
            if actor != 0 {
                expose(&mut state.first[actor], t, variant);
            }
        },
        |state, other| {
            for (mine, theirs) in state.first.iter_mut().zip(other.first) {
                if theirs.1 != NONE {
                    expose(mine, theirs.0, theirs.1);
                }
            }
            for (mine, theirs) in state.calls.iter_mut().zip(other.calls) {
                mine.calls += theirs.calls;
                mine.errors += theirs.errors;
            }
        },
        |_, _, _, _| {},
    );
    // Outcomes after exposure: conversion and value per actor.
    let mut converted = vec![false; n];
    let mut value = vec![0.0f64; n];
    for seg in &cx.facts.outcomes {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            let actor = cx.actor.of_outcome(seg, row) as usize;
            let (exposed_at, variant) = exposure.first[actor];
            if actor == 0 || t < from || t >= to || variant >= MIXED || t < exposed_at {
                continue;
            }
            if Some(seg.name[row]) == conversion {
                converted[actor] = true;
            }
            if seg.value[row].is_finite() {
                value[actor] += f64::from(seg.weight[row]) * seg.value[row];
            }
        }
    }
    let mut exposed = vec![0u64; width];
    let mut conversions = vec![0u64; width];
    let mut values = vec![Welford::new(); width];
    let mut mixed = 0;
    for (actor, (_, variant)) in exposure.first.iter().enumerate().skip(1) {
        match *variant {
            NONE => {}
            MIXED => mixed += 1,
            v => {
                let v = v as usize;
                exposed[v] += 1;
                conversions[v] += u64::from(converted[actor]);
                values[v].push(value[actor]);
            }
        }
    }
    let total: u64 = exposed.iter().sum();
    let summaries = (0..width)
        .map(|v| VariantSummary {
            variant: variants[v].clone(),
            exposed: exposed[v],
            share: exposed[v] as f64 / total.max(1) as f64,
            converted: conversions[v],
            conversion_rate: (exposed[v] > 0).then(|| conversions[v] as f64 / exposed[v] as f64),
            conversion_ci95: {
                let rate =
                    valuetrace_facts::stats::wilson(conversions[v] as f64, exposed[v] as f64);
                rate.ci_low.zip(rate.ci_high).map(|(low, high)| [low, high])
            },
            value_per_actor: (exposed[v] > 0).then(|| values[v].summary().mean),
        })
        .collect();
    let observed: Vec<f64> = exposed.iter().map(|e| *e as f64).collect();
    let sample_ratio = sample_ratio_mismatch(&observed, &vec![1.0; width]);
    let mut primary: Vec<(MetricComparison, Source)> = Vec::new();
    let mut guardrails: Vec<(MetricComparison, Source)> = Vec::new();
    let treatments: Vec<usize> = (0..width).filter(|v| *v != control).collect();
    for &v in &treatments {
        let c = control;
        let counts = [
            conversions[c] as f64,
            exposed[c] as f64,
            conversions[v] as f64,
            exposed[v] as f64,
        ];
        if let Some(cmp) = two_proportion(counts[0], counts[1], counts[2], counts[3]) {
            let m = metric("conversion", None, &variants[v], Family::Primary, cmp);
            primary.push((m, Source::Rates(counts)));
        }
        let (sc, sv) = (values[c].summary(), values[v].summary());
        if let Some(cmp) = welch(&sc, &sv) {
            let m = metric("value_per_actor", None, &variants[v], Family::Primary, cmp);
            primary.push((m, Source::Means(sc, sv)));
        }
    }
    let wanted = |e: usize| {
        let key = names.endpoint(e as u32);
        spec.endpoints
            .as_deref()
            .is_none_or(|pattern| route_matches(pattern, &key.method, &key.route))
    };
    let mut busiest: Vec<usize> = (1..endpoints)
        .filter(|e| wanted(*e))
        .filter(|e| (0..width).all(|v| exposure.calls[e * width + v].calls >= MIN_CALLS))
        .collect();
    busiest.sort_by(|a, b| {
        let calls = |e: usize| -> f64 {
            (0..width)
                .map(|v| exposure.calls[e * width + v].calls)
                .sum()
        };
        calls(*b).total_cmp(&calls(*a))
    });
    busiest.truncate(spec.top_endpoints);
    let latencies = sample_latencies(
        cx,
        (from, to),
        &exposure.calls,
        &busiest,
        &variant_of,
        width,
    );
    let mut endpoint_stats = Vec::new();
    for &e in &busiest {
        let label = names.endpoint(e as u32).label();
        let sorted: Vec<Vec<f64>> = (0..width)
            .map(|v| {
                let mut l = latencies.get(&(e, v)).cloned().unwrap_or_default();
                l.sort_unstable_by(f32::total_cmp);
                l.into_iter().map(f64::from).collect()
            })
            .collect();
        let acc = |v: usize| &exposure.calls[e * width + v];
        endpoint_stats.push(EndpointStats {
            endpoint: label.clone(),
            variants: (0..width)
                .map(|v| EndpointVariant {
                    variant: variants[v].clone(),
                    calls: acc(v).calls,
                    error_rate: (acc(v).calls > 0.0).then(|| acc(v).errors / acc(v).calls),
                    p50_ms: crate::abstats::quantile(&sorted[v], 0.5),
                    p95_ms: crate::abstats::quantile(&sorted[v], 0.95),
                })
                .collect(),
        });
        for &v in &treatments {
            let (c, t) = (acc(control), acc(v));
            let counts = [c.errors, c.calls, t.errors, t.calls];
            if let Some(cmp) = two_proportion(counts[0], counts[1], counts[2], counts[3]) {
                let m = metric("error_rate", Some(&label), &variants[v], GUARD, cmp);
                guardrails.push((m, Source::Rates(counts)));
            }
            for (name, q) in [("latency_p50", 0.5), ("latency_p95", 0.95)] {
                let seed = (e as u64) << 8 | v as u64;
                if let Some((cmp, draws)) =
                    bootstrap_quantile_diff_draws(&sorted[control], &sorted[v], q, RESAMPLES, seed)
                {
                    let m = metric(name, Some(&label), &variants[v], GUARD, cmp);
                    guardrails.push((m, Source::Draws(draws)));
                }
            }
        }
    }
    let mut comparisons = adjust(primary);
    comparisons.extend(adjust(guardrails));
    Ok(ExperimentAnswer {
        project: question.project.clone(),
        from,
        to,
        per: cx.actor,
        experiment: spec.experiment.clone(),
        control: control_name,
        conversion_outcome: spec.conversion.clone(),
        variants: summaries,
        mixed,
        sample_ratio,
        correction: "holm".into(),
        comparisons,
        endpoints: endpoint_stats,
    })
}

/// Latencies per (busiest endpoint, variant): every call when the cell has at most
/// [`LATENCY_SAMPLE`] calls, else a deterministic sample of about that many (a hash of the call's
/// timestamp, actor and endpoint against the cell's rate), so quantiles and their bootstrap cost the
/// same at 1M calls as at 50k.
fn sample_latencies(
    cx: &Cx,
    (from, to): (i64, i64),
    calls: &[CallAcc],
    busiest: &[usize],
    variant_of: &[u16],
    width: usize,
) -> HashMap<(usize, usize), Vec<f32>> {
    let mut threshold = vec![0u64; calls.len()];
    for &e in busiest {
        for v in 0..width {
            let cell = e * width + v;
            let rate = (LATENCY_SAMPLE / calls[cell].calls.max(1.0)).min(1.0);
            threshold[cell] = (rate * u64::MAX as f64) as u64;
        }
    }
    cx.scan(
        (from, to),
        !busiest.is_empty(),
        HashMap::<(usize, usize), Vec<f32>>::new,
        |state, seg, row, t| {
            let variant = variant_of[seg.experiments[row] as usize];
            let endpoint = seg.endpoint[row] as usize;
            if variant == NONE || threshold[endpoint * width + variant as usize] == 0 {
                return;
            }
            let limit = threshold[endpoint * width + variant as usize];
            let actor = u64::from(cx.actor.of_call(seg, row));
            if limit != u64::MAX && mix(t as u64 ^ actor << 40 ^ (endpoint as u64) << 20) > limit {
                return;
            }
            state
                .entry((endpoint, variant as usize))
                .or_default()
                .push(seg.latency[row]);
        },
        |state, other| {
            for (key, values) in other {
                state.entry(key).or_default().extend(values);
            }
        },
        |_, _, _, _| {},
    )
}

use valuetrace_model::mix::mix;

/// Records an exposure: the earliest call wins; a second variant marks the actor mixed.
#[inline]
fn expose(slot: &mut (i64, u16), t: i64, variant: u16) {
    if slot.1 == NONE {
        *slot = (t, variant);
    } else {
        if slot.1 != variant {
            slot.1 = MIXED;
        }
        slot.0 = slot.0.min(t);
    }
}

const GUARD: Family = Family::Guardrail;

fn metric(
    name: &str,
    endpoint: Option<&str>,
    variant: &str,
    family: Family,
    comparison: Comparison,
) -> MetricComparison {
    MetricComparison {
        metric: name.into(),
        endpoint: endpoint.map(Into::into),
        variant: variant.into(),
        family,
        p_value_unadjusted: comparison.p_value,
        ci: comparison.ci95,
        ci_level: 0.95,
        comparison,
    }
}

/// Holm-adjusts one family's p-values and gives each the interval at the level it was tested at
/// (see the module doc), so interval and adjusted p-value never disagree.
fn adjust(family: Vec<(MetricComparison, Source)>) -> Vec<MetricComparison> {
    let p: Vec<f64> = family.iter().map(|(m, _)| m.p_value_unadjusted).collect();
    let (adjusted, levels) = (holm(&p), holm_levels(&p, ALPHA));
    family
        .into_iter()
        .zip(adjusted.into_iter().zip(levels))
        .map(|((mut m, source), (p, level))| {
            m.comparison = m.comparison.clone().with_p_value(p);
            let difference = m.comparison.difference;
            let interval = match &source {
                Source::Rates([cs, cn, ts, tn]) => {
                    two_proportion_interval(*cs, *cn, *ts, *tn, level)
                }
                Source::Means(c, t) => welch_interval(c, t, level),
                Source::Draws(draws) => bootstrap_interval(draws, difference, level),
            };
            if let Some(interval) = interval {
                m.ci = interval;
                m.ci_level = 1.0 - level;
            }
            m
        })
        .collect()
}
