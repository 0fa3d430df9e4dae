//! Exact counts from the store's health counts, preferred to estimates from sampled calls.
//!
//! The client SDKs count every call in `api_aggregate` events and flag the raw calls they also
//! send as `aggregated`; the store's rollups add the aggregates' counts and the unaggregated raw
//! calls. So when no call of a question's scope was sampled (rate below 1) without being
//! aggregated, the rollups' counts of calls and status classes are exact, while the fact columns
//! only hold the kept calls (re-weighted estimates). Rollups know route, method, service,
//! provider, direction, plan, segment and variant, not app versions or route patterns: other
//! slices keep the estimates.

use crate::Backend;
use crate::errors::ExactCounts;
use crate::impact::{ExactUsage, SketchedUsers};
use crate::{Ctx, Error, Question, Result};
use std::collections::HashMap;

/// The rollup filter of a question's slice, `None` when the slice names something rollups lack.
fn filter_of(question: &Question) -> Option<valuetrace_query::Filter> {
    let slice = &question.slice;
    if slice.app_version.is_some()
        || slice.provider.is_some()
        || slice.route.is_some()
        || slice.method.is_some()
    {
        return None;
    }
    Some(valuetrace_query::Filter {
        plan: slice.plan.clone(),
        segment: slice.segment.clone(),
        variant: slice.variant.clone(),
        service: slice.service.clone(),
        route: None,
        method: None,
        direction: slice.direction.clone(),
    })
}

fn summarize(
    store: &impl Backend,
    question: &Question,
    filter: &valuetrace_query::Filter,
) -> Result<valuetrace_query::summary::Summary> {
    summarize_window(store, question, filter, question.from, question.to)
}

fn summarize_window(
    store: &impl Backend,
    question: &Question,
    filter: &valuetrace_query::Filter,
    from: i64,
    to: i64,
) -> Result<valuetrace_query::summary::Summary> {
    store
        .summary(&question.project, from, to, filter)
        .map_err(|error| match error {
            valuetrace_query::Error::InvalidQuery(message) => Error::InvalidQuery(message),
            valuetrace_query::Error::Store(error) => Error::Store(error),
        })
}

/// [calls, failed (status ≥ 400), server errors (5xx)] of rollup counts.
fn triple(counts: &valuetrace_store::rollup::Counts) -> [f64; 3] {
    let failed = counts.status_classes[3] + counts.status_classes[4];
    [
        counts.count as f64,
        failed as f64,
        counts.status_classes[4] as f64,
    ]
}

/// The window's calls and failed calls from the health counts; `None` when the slice names a
/// dimension they lack. The caller checks that no call of the scope was sampled without an
/// aggregate counting it.
pub fn error_counts(store: &impl Backend, question: &Question) -> Result<Option<ExactCounts>> {
    let Some(filter) = filter_of(question) else {
        return Ok(None);
    };
    let [calls, failed, _] = triple(&summarize(store, question, &filter)?.total().counts);
    Ok(Some(ExactCounts { calls, failed }))
}

/// Whether the calls in scope of `[from, to)` include aggregated ones and no call sampled without
/// an aggregate (the health counts are then exact and hold calls the facts never saw).
fn aggregates_cover(ctx: &Ctx, from: i64, to: i64) -> bool {
    let everything = ctx.scope.is_everything();
    let (mut aggregated, mut sampled_alone) = (false, false);
    for seg in &ctx.facts.calls {
        if seg.max_ts < from || seg.min_ts >= to {
            continue;
        }
        for row in 0..seg.len() {
            let t = seg.ts[row];
            if t < from || t >= to || (!everything && !ctx.scope.call_ok(seg, row)) {
                continue;
            }
            aggregated |= seg.aggregated[row];
            sampled_alone |= seg.weight[row] > 1.0 && !seg.aggregated[row];
        }
    }
    aggregated && !sampled_alone
}

/// An endpoint by its names: method, route, service, direction, provider.
type EndpointName<'a> = (&'a str, &'a str, &'a str, bool, Option<&'a str>);

fn name_of(key: &valuetrace_query::summary::EndpointKey) -> EndpointName<'_> {
    (
        key.method.as_str(),
        key.route.as_str(),
        key.service.as_str(),
        key.outbound,
        key.provider.as_deref(),
    )
}

/// Exact requests per endpoint for `impact` without a breakdown, and the users of the clients'
/// sketches, when the aggregates cover the window; `None` otherwise (or when an endpoint of the
/// counts has no id: none of its calls was kept, and the answer keeps its estimates rather than
/// drop the endpoint).
pub fn requests(store: &impl Backend, ctx: &Ctx) -> Result<Option<ExactUsage>> {
    let Some(filter) = filter_of(ctx.question) else {
        return Ok(None);
    };
    let (from, to, span) = (ctx.question.from, ctx.question.to, ctx.question.span());
    if ctx.question.by.is_some() || !aggregates_cover(ctx, from, to) {
        return Ok(None);
    }
    let ids: HashMap<EndpointName, u32> = ctx
        .scope
        .names
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let name = (
                key.method.as_str(),
                key.route.as_str(),
                key.service.as_str(),
                key.outbound,
                key.provider.as_deref(),
            );
            (name, i as u32 + 1)
        })
        .collect();
    let summary = summarize(store, ctx.question, &filter)?;
    let mut exact = ExactUsage::default();
    for (key, accum) in &summary.endpoints {
        let Some(&id) = ids.get(&name_of(key)) else {
            return Ok(None);
        };
        exact.calls.insert((id, 0), triple(&accum.counts));
        exact.users.keys.insert((id, 0), accum.users.clone());
        exact.users.active.merge(&accum.users);
    }
    // The previous period is compared with only when its users come from sketches too.
    if aggregates_cover(ctx, from - span, from) {
        let previous = summarize_window(store, ctx.question, &filter, from - span, from)?;
        let mut users = SketchedUsers::default();
        for (key, accum) in &previous.endpoints {
            if let Some(&id) = ids.get(&name_of(key)) {
                users.keys.insert((id, 0), accum.users.clone());
            }
            users.active.merge(&accum.users);
        }
        exact.previous_users = Some(users);
    }
    Ok(Some(exact))
}
