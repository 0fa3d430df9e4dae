//! Growth Engineering: experiments (per variant: exposure, conversion with its 95% interval, value
//! per user; each treatment against the control with Holm-adjusted p-values and the intervals that
//! agree with them;
//! per-endpoint results), churn-risk accounts, latency vs conversion on a route, feature priority.

use super::Ctx;
use super::journeys::inbound_routes;
use crate::api::{Failure, PENDING};
use crate::chart::{self, Bar, Interval, Segment};
use crate::format::{count, list, money, ms, num, or_dash, pct, text};
use crate::layout::{failure, tile};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::BTreeMap;

/// Experiments shown at once when none is chosen.
const MAX_EXPERIMENTS: usize = 3;
/// Plans asked one by one to label the churn-risk accounts (more: no plan column).
const MAX_PLANS: usize = 8;
/// Accounts listed in the churn-risk table.
const CHURN_TOP: &str = "15";

/// The `conversion_ci95` of an experiment variant (the API's Wilson interval).
fn conversion_ci(variant: &Value) -> Option<(f64, f64)> {
    let ci = variant.get("conversion_ci95")?.as_array()?;
    Some((ci.first()?.as_f64()?, ci.get(1)?.as_f64()?))
}

/// A period in ms as whole days ("7 days"), else as a duration.
pub fn days(ms: f64) -> String {
    let d = ms / 86_400_000.0;
    if d >= 1.0 && d.fract() == 0.0 {
        format!("{d:.0} day{}", if d == 1.0 { "" } else { "s" })
    } else {
        crate::format::duration(ms)
    }
}

/// Calls per day: whole above 10, else one or two decimals.
fn per_day(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 1.0 || x == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Whether a bigger value of the metric is an improvement.
fn higher_is_better(metric: &str) -> bool {
    matches!(metric, "conversion" | "value_per_actor")
}

/// What a comparison says: `(words, css class, colour)`.
pub fn verdict(
    metric: &str,
    difference: f64,
    significant: bool,
) -> (&'static str, &'static str, &'static str) {
    if !significant || difference == 0.0 {
        ("no clear difference", "", chart::GREY)
    } else if (difference > 0.0) == higher_is_better(metric) {
        ("better", "up", chart::GREEN)
    } else {
        ("worse", "down", chart::RED)
    }
}

/// A metric's value as people read it.
pub fn value_text(metric: &str, x: f64) -> String {
    match metric {
        "conversion" | "error_rate" => pct(x),
        "value_per_actor" => money(x),
        _ => ms(x),
    }
}

/// A difference of the metric, signed: percentage points for rates.
pub fn difference_text(metric: &str, x: f64) -> String {
    let sign = if x < 0.0 { "−" } else { "+" };
    let a = x.abs();
    match metric {
        "conversion" | "error_rate" if a != 0.0 && a < 0.001 => {
            format!("{sign}{:.3} pp", a * 100.0)
        }
        "conversion" | "error_rate" => format!("{sign}{:.1} pp", a * 100.0),
        "value_per_actor" => format!("{sign}{}", money(a)),
        _ => format!("{sign}{:.1} ms", a),
    }
}

fn metric_name(metric: &str) -> &str {
    match metric {
        "conversion" => "Conversion",
        "value_per_actor" => "Value per user",
        "error_rate" => "Error rate (5xx)",
        "latency_p50" => "p50 latency",
        "latency_p95" => "p95 latency",
        other => other,
    }
}

/// The route of the latency-vs-conversion section: the busiest POST checkout route, else the
/// busiest POST.
pub fn default_latency_route(endpoints: &[Value]) -> Option<String> {
    let routes = inbound_routes(endpoints);
    routes
        .iter()
        .find(|(m, r, _)| *m == "POST" && r.to_ascii_lowercase().contains("checkout"))
        .or_else(|| routes.iter().find(|(m, _, _)| *m == "POST"))
        .map(|(m, r, _)| format!("{m} {r}"))
}

/// Plan names of a `dimensions` answer.
fn plans(dimensions: &Value) -> Vec<String> {
    let mut plans: Vec<String> = list(dimensions, "plans")
        .iter()
        .map(|p| text(p, "value").to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    plans.sort();
    plans.dedup();
    plans
}

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    let endpoints_query = ctx.filters.range_query(&[("limit", "500")]);
    let label_plans = ctx.filters.plan.is_empty();
    let (experiments, endpoints, churn, priority, by_plan) = tokio::join!(
        ctx.ask("experiments", &[]),
        ctx.get("endpoints", &endpoints_query),
        ctx.ask("churn-risk", &[("top", CHURN_TOP)]),
        ctx.ask("priority", &[]),
        async {
            if label_plans {
                ctx.get("dimensions", &ctx.filters.range_query(&[]))
                    .await
                    .ok()
            } else {
                None
            }
        },
    );
    let routes: &[Value] = endpoints.as_ref().map_or(&[], |e| list(e, "endpoints"));
    let names: Vec<String> = experiments
        .as_ref()
        .ok()
        .and_then(|e| e["experiments"].as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let chosen = ctx.param("experiment").trim();
    let shown: Vec<String> = if chosen.is_empty() {
        names.iter().take(MAX_EXPERIMENTS).cloned().collect()
    } else {
        vec![chosen.to_owned()]
    };
    let pattern = ctx.param("endpoints").trim();
    let route = match ctx.param("route").trim() {
        "" => default_latency_route(routes),
        r => Some(r.to_owned()),
    };
    // Without a route of its own the section waits for the routes.
    let route_pending =
        ctx.param("route").trim().is_empty() && endpoints.as_ref().is_err_and(Failure::is_pending);
    let plan_names = by_plan.as_deref().map(plans).unwrap_or_default();

    let (results, latency, churn_plans) = tokio::join!(
        async {
            let mut results = Vec::new();
            for name in &shown {
                let mut extra = vec![("experiment", name.as_str())];
                if !pattern.is_empty() {
                    extra.push(("endpoints", pattern));
                }
                results.push((name.clone(), ctx.ask("experiment", &extra).await));
            }
            results
        },
        async {
            match &route {
                _ if route_pending => Some(Err(Failure {
                    status: PENDING,
                    message: "still being computed".into(),
                })),
                Some(r) => Some(ctx.ask("latency-conversion", &[("route", r)]).await),
                None => None,
            }
        },
        async {
            let mut labels: BTreeMap<String, Vec<String>> = BTreeMap::new();
            if churn.is_err() || plan_names.len() > MAX_PLANS {
                return labels;
            }
            for plan in &plan_names {
                let mut filters = ctx.filters.clone();
                filters.plan = plan.clone();
                if let Ok(answer) = ctx
                    .get("churn-risk", &filters.api_query(&[("top", CHURN_TOP)]))
                    .await
                {
                    for actor in list(&answer, "actors") {
                        labels
                            .entry(text(actor, "id").to_owned())
                            .or_default()
                            .push(plan.clone());
                    }
                }
            }
            labels
        },
    );

    html! {
        section.card {
            h2 { "Experiments" }
            (experiment_picker(ctx, &names, chosen, pattern))
            @match &experiments {
                Err(f) => (failure("The experiments list", f)),
                Ok(_) if names.is_empty() && chosen.is_empty() => p.empty { "No experiments in this range: calls carry none in their " code { "experiments" } " field." },
                Ok(_) => {
                    @for (name, result) in &results {
                        @match result {
                            Err(f) => (failure(&format!("Experiment `{name}`"), f)),
                            Ok(answer) => (experiment_section(ctx, answer)),
                        }
                    }
                    @if chosen.is_empty() && names.len() > MAX_EXPERIMENTS {
                        p.note { (names.len() - MAX_EXPERIMENTS) " more experiments: choose one above." }
                    }
                }
            }
        }
        section.card {
            h2 { "Accounts at risk of churning" }
            @match &churn {
                Err(f) => (failure("The churn-risk answer", f)),
                Ok(answer) => (churn_section(answer, &churn_plans, label_plans && plan_names.len() <= MAX_PLANS, &ctx.filters.plan)),
            }
        }
        section.card {
            h2 { "Latency vs conversion" }
            (route_picker(ctx, routes, route.as_deref().unwrap_or("")))
            @match &latency {
                None => p.empty { "No POST route in this range to relate latency and conversion on." },
                Some(Err(f)) => (failure("The latency-conversion answer", f)),
                Some(Ok(answer)) => (latency_section(answer)),
            }
        }
        section.card {
            h2 { "Feature priority" }
            @match &priority {
                Err(f) => (failure("The priority answer", f)),
                Ok(answer) => (priority_section(answer)),
            }
        }
    }
}

fn hidden_filters(ctx: &Ctx<'_>) -> Markup {
    html! {
        @for (name, value) in ctx.filters.pairs() {
            input type="hidden" name=(name) value=(value);
        }
    }
}

fn experiment_picker(ctx: &Ctx<'_>, names: &[String], chosen: &str, pattern: &str) -> Markup {
    html! {
        form.filters method="get" aria-label="experiment" {
            (hidden_filters(ctx))
            @if !ctx.param("route").is_empty() { input type="hidden" name="route" value=(ctx.param("route")); }
            label { "Experiment "
                select name="experiment" {
                    option value="" selected[chosen.is_empty()] { "all (up to " (MAX_EXPERIMENTS) ")" }
                    @for name in names { option value=(name) selected[name == chosen] { (name) } }
                    @if !chosen.is_empty() && !names.iter().any(|n| n == chosen) { option value=(chosen) selected { (chosen) } }
                }
            }
            label { "Endpoints compared"
                input type="text" name="endpoints" value=(pattern) placeholder="busiest 10, or /api/recommendations*" size="28";
            }
            button type="submit" { "Show" }
        }
    }
}

fn experiment_section(ctx: &Ctx<'_>, answer: &Value) -> Markup {
    let name = text(answer, "experiment");
    let control = text(answer, "control");
    let variants = list(answer, "variants");
    let comparisons = list(answer, "comparisons");
    let srm = &answer["sample_ratio"];
    let exposed: f64 = variants.iter().filter_map(|v| num(v, "exposed")).sum();
    let headline: Vec<&Value> = comparisons
        .iter()
        .filter(|c| c.get("endpoint").is_none())
        .collect();
    let conversion_rows: Vec<Interval> = variants
        .iter()
        .filter_map(|v| {
            let (low, high) = conversion_ci(v)?;
            let (exposed, converted) = (num(v, "exposed")?, num(v, "converted").unwrap_or(0.0));
            let rate = num(v, "conversion_rate");
            let variant = text(v, "variant");
            Some(Interval {
                label: format!(
                    "{variant}{}",
                    if variant == control && variant != "control" {
                        " (control)"
                    } else {
                        ""
                    }
                ),
                estimate: rate,
                low,
                high,
                color: if variant == control {
                    chart::GREY
                } else {
                    chart::BLUE
                },
                title: format!(
                    "{} of {} exposed users converted: {} (95% CI {} to {})",
                    count(converted),
                    count(exposed),
                    or_dash(rate, pct),
                    pct(low),
                    pct(high)
                ),
                note: format!(
                    "{} · {}",
                    or_dash(rate, pct),
                    or_dash(num(v, "value_per_actor"), money)
                ),
            })
        })
        .collect();
    let value_bars: Vec<Bar> = variants
        .iter()
        .map(|v| {
            let value = num(v, "value_per_actor").unwrap_or(0.0);
            Bar {
                label: text(v, "variant").to_owned(),
                note: money(value),
                segments: vec![Segment {
                    value,
                    color: if text(v, "variant") == control {
                        chart::GREY
                    } else {
                        chart::BLUE
                    },
                    title: format!(
                        "{} per exposed user (outcome values after exposure, zeros included)",
                        money(value)
                    ),
                }],
                href: None,
            }
        })
        .collect();
    let treatments = variants.len().saturating_sub(1);
    let mut by_metric: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for c in comparisons.iter().filter(|c| c.get("endpoint").is_some()) {
        by_metric.entry(text(c, "metric")).or_default().push(c);
    }
    html! {
        h3 { "Experiment " code { (name) } " · control " code { (control) } }
        @if exposed == 0.0 {
            p.empty { "Nobody was exposed to this experiment in this range and slice." }
        } @else {
        @if srm["mismatch"] == true {
            div.error role="alert" { strong { "Sample ratio mismatch: " } "the variants' exposure differs from equal shares more than chance explains (χ² p = " (format!("{:.2e}", num(srm, "p_value").unwrap_or(0.0))) "). Check the assignment before trusting the comparisons." }
        }
        @for c in &headline {
            @let metric = text(c, "metric");
            @let difference = num(c, "difference").unwrap_or(0.0);
            @let significant = c["significant"] == true;
            @let (words, class, _) = verdict(metric, difference, significant);
            @let (low, high, level) = adjusted_ci(c);
            p {
                strong { (metric_name(metric)) } ": " code { (text(c, "variant")) } " vs " code { (control) } " "
                span class=(class) { (difference_text(metric, difference)) }
                " (" (value_text(metric, num(c, "treatment").unwrap_or(0.0))) " vs " (value_text(metric, num(c, "control").unwrap_or(0.0))) "; " (level) " CI "
                (difference_text(metric, low)) " to " (difference_text(metric, high))
                "), p = " (format!("{:.3}", num(c, "p_value").unwrap_or(1.0))) " after Holm among the primary metrics (" (format!("{:.3}", num(c, "p_value_unadjusted").unwrap_or(1.0))) " alone): "
                strong class=(class) { (words) }
            }
        }
        h3 { "Conversion by variant" }
        p.note { "Share of exposed users with a " code { (text(answer, "conversion_outcome")) } " after exposure, with its Wilson 95% interval (the numbers after each row: conversion · value per user)." }
        (chart::intervals("conversion rate by variant", &conversion_rows, None, &pct))
        h3 { "Value per user by variant" }
        p.note { "Outcome value after exposure per exposed user, zeros included." }
        (chart::hbars("value per user by variant", &value_bars))
        table {
            thead { tr { th { "Variant" } th.num { "Exposed users" } th.num { "Share" } th.num { "Converted" } th.num { "Conversion" } th.num { "95% CI" } th.num { "Value per user" } } }
            tbody {
                @for v in variants {
                    @let ci = conversion_ci(v);
                    tr {
                        td { (text(v, "variant")) @if text(v, "variant") == control && control != "control" { " " span.badge { "control" } } }
                        td.num { (count(num(v, "exposed").unwrap_or(0.0))) }
                        td.num { (or_dash(num(v, "share"), pct)) }
                        td.num { (count(num(v, "converted").unwrap_or(0.0))) }
                        td.num { (or_dash(num(v, "conversion_rate"), pct)) }
                        td.num { (ci.map_or_else(|| "–".to_owned(), |(l, h)| format!("[{}, {}]", pct(l), pct(h)))) }
                        td.num { (or_dash(num(v, "value_per_actor"), money)) }
                    }
                }
            }
        }
        p.note {
            "Sample ratio χ² p = " (or_dash(num(srm, "p_value"), |p| format!("{p:.3}"))) "; "
            (count(num(answer, "mixed").unwrap_or(0.0))) " users seen in two variants left out. "
            "p-values are adjusted (" (text(answer, "correction")) ") in two families: the primary metrics (conversion, value per user) among themselves, the per-endpoint guardrails among themselves, so comparing more endpoints never changes the verdict on conversion. "
            "Each interval is at the level its adjusted p-value was tested at (wider than 95% after adjustment): it excludes 0 exactly when p < 0.05."
        }
        @if !by_metric.is_empty() {
            h3 { "Per endpoint: treatment − control with Holm-adjusted intervals" }
            p.note { "Right of the dashed line: the treatment is higher. Green: significantly better, vermillion: significantly worse, grey: no clear difference (p ≥ 0.05 after Holm among the guardrails; the interval then contains 0). p50 latency is in the table below." }
            @for (metric, rows) in by_metric.iter().filter(|(m, _)| **m != "latency_p50") {
                h3 { (metric_name(metric)) }
                (chart::intervals(&format!("{metric} difference per endpoint"), &comparison_rows(rows, treatments > 1), Some(0.0), &|x| difference_text(metric, x)))
            }
            details {
                summary style="cursor:pointer;margin:10px 0" { "All " (comparisons.len()) " comparisons as a table" }
            table {
                thead { tr {
                    th data-sort { "Endpoint" } th data-sort { "Metric" } th data-sort { "Variant" }
                    th.num data-sort { "Control" } th.num data-sort { "Treatment" } th.num data-sort { "Difference" }
                    th.num { "Adjusted CI" } th.num data-sort { "p (Holm)" } th.num data-sort { "p alone" } th data-sort { "Verdict" }
                } }
                tbody {
                    @for c in comparisons {
                        @let metric = text(c, "metric");
                        @let difference = num(c, "difference").unwrap_or(0.0);
                        @let (words, class, _) = verdict(metric, difference, c["significant"] == true);
                        @let (low, high, level) = adjusted_ci(c);
                        @let endpoint = text(c, "endpoint");
                        tr {
                            td { @if endpoint.is_empty() { "(per user)" } @else { a href=(ctx.endpoint_link(endpoint)) { (endpoint) } } }
                            td { (metric_name(metric)) }
                            td { (text(c, "variant")) }
                            td.num data-v=(num(c, "control").unwrap_or(0.0)) { (value_text(metric, num(c, "control").unwrap_or(0.0))) }
                            td.num data-v=(num(c, "treatment").unwrap_or(0.0)) { (value_text(metric, num(c, "treatment").unwrap_or(0.0))) }
                            td.num data-v=(difference) class=(class) { (difference_text(metric, difference)) }
                            td.num title=(format!("{level} interval")) { "[" (difference_text(metric, low)) ", " (difference_text(metric, high)) "]" }
                            td.num data-v=(num(c, "p_value").unwrap_or(1.0)) { (format!("{:.3}", num(c, "p_value").unwrap_or(1.0))) }
                            td.num data-v=(num(c, "p_value_unadjusted").unwrap_or(1.0)) { (format!("{:.3}", num(c, "p_value_unadjusted").unwrap_or(1.0))) }
                            td class=(class) { (words) }
                        }
                    }
                }
            }
            }
        }
        @let endpoints = list(answer, "endpoints");
        @if endpoints.is_empty() {
            p.empty { "No endpoint has 100 calls in every variant to compare." }
        } @else {
            details {
                summary style="cursor:pointer;margin:10px 0" { "Calls, error rate and latency per endpoint and variant" }
            table {
                thead { tr { th { "Endpoint" } th { "Variant" } th.num { "Calls" } th.num { "Error rate" } th.num { "p50" } th.num { "p95" } } }
                tbody {
                    @for e in endpoints {
                        @for (i, v) in list(e, "variants").iter().enumerate() {
                            tr {
                                td { @if i == 0 { a href=(ctx.endpoint_link(text(e, "endpoint"))) { (text(e, "endpoint")) } } }
                                td { (text(v, "variant")) }
                                td.num { (count(num(v, "calls").unwrap_or(0.0))) }
                                td.num { (or_dash(num(v, "error_rate"), pct)) }
                                td.num { (or_dash(num(v, "p50_ms"), ms)) }
                                td.num { (or_dash(num(v, "p95_ms"), ms)) }
                            }
                        }
                    }
                }
            }
            }
        }
        }
    }
}

/// The interval that goes with a comparison's adjusted p-value (`ci`, at `ci_level`) and its
/// level as text (`99.4%`); the unadjusted `ci95` for answers without it.
fn adjusted_ci(c: &Value) -> (f64, f64, String) {
    let difference = num(c, "difference").unwrap_or(0.0);
    let (ci, level) = match num(c, "ci_level") {
        Some(level) => (list(c, "ci"), level),
        None => (list(c, "ci95"), 0.95),
    };
    let low = ci.first().and_then(Value::as_f64).unwrap_or(difference);
    let high = ci.get(1).and_then(Value::as_f64).unwrap_or(difference);
    let level = format!("{:.1}%", level * 100.0).replace(".0%", "%");
    (low, high, level)
}

fn comparison_rows(rows: &[&Value], with_variant: bool) -> Vec<Interval> {
    rows.iter()
        .map(|c| {
            let metric = text(c, "metric");
            let difference = num(c, "difference").unwrap_or(0.0);
            let (low, high, level) = adjusted_ci(c);
            let (words, _, color) = verdict(metric, difference, c["significant"] == true);
            let p = num(c, "p_value").unwrap_or(1.0);
            Interval {
                label: if with_variant {
                    format!("{} · {}", text(c, "endpoint"), text(c, "variant"))
                } else {
                    text(c, "endpoint").to_owned()
                },
                estimate: Some(difference),
                low,
                high,
                color,
                title: format!(
                    "{} {} → {}: {} ({level} CI {} to {}), p = {p:.3} after Holm: {words}",
                    metric_name(metric),
                    value_text(metric, num(c, "control").unwrap_or(0.0)),
                    value_text(metric, num(c, "treatment").unwrap_or(0.0)),
                    difference_text(metric, difference),
                    difference_text(metric, low),
                    difference_text(metric, high),
                ),
                note: format!("{} · p {p:.2}", difference_text(metric, difference)),
            }
        })
        .collect()
}

fn churn_section(
    answer: &Value,
    plans: &BTreeMap<String, Vec<String>>,
    with_plans: bool,
    filtered_plan: &str,
) -> Markup {
    let actors = list(answer, "actors");
    let backtest = &answer["backtest"];
    let days = |field: &str| days(num(answer, field).unwrap_or(0.0));
    html! {
        div.tiles {
            (tile("At risk", &count(num(answer, "at_risk").unwrap_or(0.0)), &format!("of {} accounts scored", count(num(answer, "scored").unwrap_or(0.0)))))
            (tile("Share at risk", &or_dash(num(answer, "at_risk_share"), pct), &format!("score ≥ {}", num(answer, "threshold").unwrap_or(0.5))))
            @if num(backtest, "scored").unwrap_or(0.0) > 0.0 {
                (tile("Back-test precision", &or_dash(num(backtest, "precision"), pct), &format!("recall {}", or_dash(num(backtest, "recall"), pct))))
            } @else {
                (tile("Back-test", "–", "no earlier period in the data to test on"))
            }
        }
        p.note {
            "Score = 1 − recent calls per day ÷ baseline calls per day (0 to 1), recent = the last " (days("recent_ms")) ", baseline = the " (days("baseline_ms")) " before; accounts with at least 10 baseline calls and no churn outcome. "
            @if num(backtest, "scored").unwrap_or(0.0) == 0.0 { "No back-test: the data does not reach back far enough to score a period before this one." }
            @else { "Back-test: scored the same way one recent period ago and compared with the churn outcomes since (" (count(num(backtest, "flagged_and_churned").unwrap_or(0.0))) " of " (count(num(backtest, "flagged").unwrap_or(0.0))) " flagged churned)." }
        }
        @if actors.is_empty() { p.empty { "No account at risk in this slice." } } @else {
            table {
                thead { tr {
                    th data-sort { "Account" } th data-sort { "Plan" } th.num data-sort { "Risk" }
                    th.num data-sort { "Calls/day before" } th.num data-sort { "Calls/day recently" } th { "Routes that fell most (per day, before → recently)" }
                } }
                tbody {
                    @for a in actors {
                        @let id = text(a, "id");
                        @let score = num(a, "score").unwrap_or(0.0);
                        tr {
                            td title=(id) { code { (id.chars().take(12).collect::<String>()) "…" } }
                            td {
                                @if !filtered_plan.is_empty() { (filtered_plan) }
                                @else if with_plans { (plans.get(id).map_or_else(|| "–".to_owned(), |p| p.join(", "))) }
                                @else { "–" }
                            }
                            td.num data-v=(score) {
                                svg width="60" height="10" role="img" aria-label=(format!("risk {}", pct(score))) style="vertical-align:middle;margin-right:6px" {
                                    rect x="0" y="1" width="60" height="8" fill="#eef1f5" {}
                                    rect x="0" y="1" width=(format!("{:.1}", score * 60.0)) height="8" fill=(if score >= 0.8 { chart::RED } else { chart::ORANGE }) { title { "risk " (pct(score)) } }
                                }
                                (pct(score))
                            }
                            td.num data-v=(num(a, "baseline_per_day").unwrap_or(0.0)) { (per_day(num(a, "baseline_per_day").unwrap_or(0.0))) }
                            td.num data-v=(num(a, "recent_per_day").unwrap_or(0.0)) { (per_day(num(a, "recent_per_day").unwrap_or(0.0))) }
                            td {
                                @for (i, r) in list(a, "falling_routes").iter().enumerate() {
                                    @if i > 0 { "; " }
                                    (text(r, "route")) " " span.note { (per_day(num(r, "baseline_per_day").unwrap_or(0.0))) " → " (per_day(num(r, "recent_per_day").unwrap_or(0.0))) }
                                }
                            }
                        }
                    }
                }
            }
            @if num(answer, "at_risk").unwrap_or(0.0) > actors.len() as f64 {
                p.note { "The " (actors.len()) " riskiest of " (count(num(answer, "at_risk").unwrap_or(0.0))) " shown." }
            }
            @if with_plans && filtered_plan.is_empty() { p.note { "Plan: the plan of the account's calls (the same answer asked per plan)." } }
        }
    }
}

fn route_picker(ctx: &Ctx<'_>, routes: &[Value], current: &str) -> Markup {
    let mut options: Vec<String> = inbound_routes(routes)
        .iter()
        .map(|(m, r, _)| format!("{m} {r}"))
        .collect();
    options.sort_by_key(|o| !o.starts_with("POST "));
    html! {
        form.filters method="get" aria-label="latency route" {
            (hidden_filters(ctx))
            @if !ctx.param("experiment").is_empty() { input type="hidden" name="experiment" value=(ctx.param("experiment")); }
            @if !ctx.param("endpoints").is_empty() { input type="hidden" name="endpoints" value=(ctx.param("endpoints")); }
            label { "Route "
                select name="route" {
                    @for o in &options { option value=(o) selected[o == current] { (o) } }
                    @if !current.is_empty() && !options.iter().any(|o| o == current) { option value=(current) selected { (current) } }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

fn bucket_label(b: &Value) -> String {
    let from = num(b, "from_ms").unwrap_or(0.0);
    match num(b, "to_ms") {
        Some(to) => format!("{from:.0}–{to:.0} ms"),
        None => format!("≥ {from:.0} ms"),
    }
}

fn latency_section(answer: &Value) -> Markup {
    let buckets = list(answer, "buckets");
    let best = num(answer, "best_bucket_from_ms");
    let below = &answer["conversion_below_threshold"];
    let above = &answer["conversion_above_threshold"];
    let threshold = num(answer, "threshold_ms").unwrap_or(1000.0);
    let sessions: f64 = buckets.iter().filter_map(|b| num(b, "sessions")).sum();
    let rows: Vec<Interval> = buckets
        .iter()
        .filter_map(|b| {
            let c = &b["conversion"];
            let rate = num(c, "rate")?;
            let is_best = best == num(b, "from_ms");
            let low_sample = b["low_sample"] == true;
            Some(Interval {
                label: bucket_label(b),
                estimate: Some(rate),
                low: num(c, "ci_low").unwrap_or(rate),
                high: num(c, "ci_high").unwrap_or(rate),
                color: if low_sample {
                    chart::GREY
                } else if is_best {
                    chart::GREEN
                } else {
                    chart::BLUE
                },
                title: format!(
                    "{} sessions, {} converted: {} (95% CI {} to {}){}{}",
                    count(num(b, "sessions").unwrap_or(0.0)),
                    count(num(b, "conversions").unwrap_or(0.0)),
                    pct(rate),
                    or_dash(num(c, "ci_low"), pct),
                    or_dash(num(c, "ci_high"), pct),
                    if is_best { "; the best bucket" } else { "" },
                    if low_sample {
                        "; too few sessions to judge"
                    } else {
                        ""
                    }
                ),
                note: format!(
                    "{} · {} sessions",
                    pct(rate),
                    count(num(b, "sessions").unwrap_or(0.0))
                ),
            })
        })
        .collect();
    html! {
        p.note { "Sessions that called " code { (text(answer, "route")) } " by the slowest latency they saw on it, and the share that reached " code { (text(answer, "outcome")) } "." }
        div.tiles {
            (tile("Best bucket", &best.map_or_else(|| "–".to_owned(), |b| buckets.iter().find(|x| num(x, "from_ms") == Some(b)).map_or_else(|| format!("from {b:.0} ms"), bucket_label)), "highest conversion with enough sessions"))
            (tile(&format!("Conversion under {}", ms(threshold)), &or_dash(num(below, "rate"), pct), &format!("{} sessions", count(num(below, "trials").unwrap_or(0.0)))))
            (tile(&format!("Conversion at {}+", ms(threshold)), &or_dash(num(above, "rate"), pct), &format!("{} sessions", count(num(answer, "sessions_above_threshold").unwrap_or(0.0)))))
            @match num(answer, "value_at_risk") {
                Some(value) => (tile("Value at risk", &money(value), &format!("conversions lost above {} × {} average", ms(threshold), or_dash(num(answer, "average_outcome_value"), money)))),
                // Too few sessions on a side of the threshold: no headline from a handful.
                None => (tile("Value at risk", "–", &format!("fewer than {} sessions above or below {}: too few to say ({} average order)", count(num(answer, "min_bucket_sessions").unwrap_or(0.0)), ms(threshold), or_dash(num(answer, "average_outcome_value"), money)))),
            }
        }
        @if sessions == 0.0 {
            p.empty { "No session called " code { (text(answer, "route")) } " in this range and slice." }
        } @else {
        (chart::intervals("conversion by latency bucket", &rows, None, &pct))
        p.legend {
            span.key style=(format!("background:{}", chart::GREEN)) {} " best bucket "
            span.key style=(format!("background:{}", chart::BLUE)) {} " other buckets "
            span.key style=(format!("background:{}", chart::GREY)) {} " fewer than " (count(num(answer, "min_bucket_sessions").unwrap_or(0.0))) " sessions (shown, never the best)"
        }
        table {
            thead { tr { th { "Slowest call" } th.num { "Sessions" } th.num { "Converted" } th.num { "Conversion" } th.num { "95% CI" } th { "" } } }
            tbody {
                @for b in buckets {
                    @let c = &b["conversion"];
                    tr {
                        td { (bucket_label(b)) }
                        td.num { (count(num(b, "sessions").unwrap_or(0.0))) }
                        td.num { (count(num(b, "conversions").unwrap_or(0.0))) }
                        td.num { (or_dash(num(c, "rate"), pct)) }
                        td.num { @if let (Some(l), Some(h)) = (num(c, "ci_low"), num(c, "ci_high")) { "[" (pct(l)) ", " (pct(h)) "]" } @else { "–" } }
                        td {
                            @if best == num(b, "from_ms") { span.badge.protect { "best" } }
                            @if b["low_sample"] == true { span.badge { "low sample" } }
                        }
                    }
                }
            }
        }
        }
    }
}

fn priority_section(answer: &Value) -> Markup {
    let features = list(answer, "features");
    if features.is_empty() {
        return html! { p.empty { "No features configured: add " code { "[[projects.analysis.features]]" } " (name, routes, effort hours) to rank them." } };
    }
    let color = |r: &str| match r {
        "high" => chart::GREEN,
        "medium" => chart::ORANGE,
        _ => chart::GREY,
    };
    let bars: Vec<Bar> = features
        .iter()
        .map(|f| {
            let score = num(f, "score").unwrap_or(0.0);
            let recommendation = text(f, "recommendation");
            Bar {
                label: text(f, "feature").to_owned(),
                note: format!("{score:.2} · {recommendation}"),
                segments: vec![Segment {
                    value: score,
                    color: color(recommendation),
                    title: format!(
                        "score {score:.2} = adoption {} × depth {} × value {} ÷ cost {}; {recommendation} priority",
                        or_dash(num(f, "adoption"), pct),
                        or_dash(num(f, "engagement_depth"), |d| format!("{d:.2}")),
                        money(num(f, "value").unwrap_or(0.0)),
                        money(num(f, "development_cost").unwrap_or(0.0))
                    ),
                }],
                href: None,
            }
        })
        .collect();
    let thresholds = list(answer, "thresholds");
    html! {
        p.note {
            "Score = adoption × engagement depth (calls per session that used it) × value ÷ development cost (effort × "
            (money(num(answer, "hourly_cost").unwrap_or(0.0))) "/h). High above "
            (thresholds.first().and_then(Value::as_f64).unwrap_or(0.8)) ", medium above " (thresholds.get(1).and_then(Value::as_f64).unwrap_or(0.4)) "."
        }
        @if features.iter().all(|f| num(f, "users").unwrap_or(0.0) == 0.0) {
            p.empty { "No feature was used in this range and slice." }
        } @else {
            (chart::hbars("feature priority score", &bars))
            p.legend {
                span.key style=(format!("background:{}", chart::GREEN)) {} " high "
                span.key style=(format!("background:{}", chart::ORANGE)) {} " medium "
                span.key style=(format!("background:{}", chart::GREY)) {} " low"
            }
        }
        table {
            thead { tr {
                th data-sort { "Feature" } th.num data-sort { "Users" } th.num data-sort { "Adoption" } th.num data-sort { "Depth" }
                th.num data-sort { "Value" } th.num data-sort { "Effort" } th.num data-sort { "Cost" } th.num data-sort { "Score" }
                th data-sort { "Priority" } th.num data-sort { "Return in range" } th.num data-sort { "Return per year" }
            } }
            tbody {
                @for f in features {
                    tr {
                        td title=(list(f, "endpoints").iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) { (text(f, "feature")) }
                        td.num data-v=(num(f, "users").unwrap_or(0.0)) { (crate::format::users(f, "users")) }
                        td.num data-v=(num(f, "adoption").unwrap_or(-1.0)) title=(crate::format::adoption_interval(f)) { (crate::format::adoption(f)) }
                        td.num data-v=(num(f, "engagement_depth").unwrap_or(-1.0)) { (or_dash(num(f, "engagement_depth"), |d| format!("{d:.2}"))) }
                        td.num data-v=(num(f, "value").unwrap_or(0.0)) { (money(num(f, "value").unwrap_or(0.0))) }
                        td.num data-v=(num(f, "effort_hours").unwrap_or(0.0)) { (count(num(f, "effort_hours").unwrap_or(0.0))) " h" }
                        td.num data-v=(num(f, "development_cost").unwrap_or(0.0)) { (money(num(f, "development_cost").unwrap_or(0.0))) }
                        td.num data-v=(num(f, "score").unwrap_or(-1.0)) { (or_dash(num(f, "score"), |s| format!("{s:.2}"))) }
                        td { span class=(format!("badge {}", match text(f, "recommendation") { "high" => "protect", "medium" => "invest", _ => "maintain" })) { (text(f, "recommendation")) } }
                        td.num data-v=(num(f, "expected_return").unwrap_or(-1.0)) { (or_dash(num(f, "expected_return"), |r| format!("{r:.2}×"))) }
                        td.num data-v=(num(f, "expected_return_per_year").unwrap_or(-1.0)) { (or_dash(num(f, "expected_return_per_year"), |r| format!("{r:.1}×"))) }
                    }
                }
            }
        }
        p.note { "Expected return = the feature's value in the range ÷ its development cost, and the same scaled to a year." }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verdicts_know_which_direction_is_better() {
        assert_eq!(verdict("conversion", 0.05, true).0, "better");
        assert_eq!(verdict("conversion", 0.05, false).0, "no clear difference");
        assert_eq!(verdict("error_rate", 0.01, true).0, "worse");
        assert_eq!(verdict("latency_p95", -12.0, true).0, "better");
        assert_eq!(verdict("value_per_actor", -3.0, true).0, "worse");
    }

    #[test]
    fn differences_read_in_points_money_and_ms() {
        assert_eq!(difference_text("conversion", 0.050_07), "+5.0 pp");
        assert_eq!(difference_text("error_rate", -0.000_4), "−0.040 pp");
        // Outside a page no currency is known: a bare number (pages print their answers' currency).
        assert_eq!(difference_text("value_per_actor", 13.2), "+13.20");
        assert_eq!(difference_text("latency_p95", -0.1), "−0.1 ms");
        assert_eq!(value_text("conversion", 0.425), "42.5%");
        assert_eq!(days(7.0 * 86_400_000.0), "7 days");
        assert_eq!(days(86_400_000.0), "1 day");
        assert_eq!(days(90_000.0), "2 min");
    }

    #[test]
    fn latency_defaults_to_the_checkout_then_the_busiest_post() {
        let e = |m: &str, r: &str, n: f64| json!({"method": m, "route": r, "requests": n, "direction": "inbound"});
        let endpoints = vec![
            e("GET", "/api/products", 9e4),
            e("POST", "/api/cart/items", 8e3),
            e("PUT", "/api/checkout/{id}/shipping", 5e3),
            e("POST", "/api/checkout", 3e3),
        ];
        assert_eq!(
            default_latency_route(&endpoints).as_deref(),
            Some("POST /api/checkout")
        );
        assert_eq!(
            default_latency_route(&endpoints[..3]).as_deref(),
            Some("POST /api/cart/items")
        );
        assert_eq!(default_latency_route(&endpoints[..1]), None);
    }

    #[test]
    fn plans_come_from_the_dimensions() {
        let dimensions = json!({"plans": [{"value": "pro", "calls": 9}, {"value": "free", "calls": 20}, {"value": "", "calls": 1}]});
        assert_eq!(plans(&dimensions), ["free", "pro"]);
    }
}
