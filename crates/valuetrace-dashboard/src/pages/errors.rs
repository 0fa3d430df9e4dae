//! Errors & Integrations: error classes and what they cost, the unknown-error share over time
//! (the number to drive down), the top error patterns by value at risk, the third-party
//! integration scorecard, and the silent-failure gaps.

use super::Ctx;
use crate::chart::{self, Bar, Segment, Series};
use crate::format::{count, duration, list, money, ms, num, or_dash, pct, text, time};
use crate::layout::{failure, tile};
use maud::{Markup, html};
use serde_json::Value;

/// `rate [ci_low, ci_high]` of a proportion object.
fn proportion(p: &Value) -> String {
    match (num(p, "rate"), num(p, "ci_low"), num(p, "ci_high")) {
        (Some(rate), Some(lo), Some(hi)) => {
            format!("{} [{} – {}]", pct(rate), pct(lo), pct(hi))
        }
        (Some(rate), _, _) => pct(rate),
        _ => "–".into(),
    }
}

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    let step = super::health::interval(ctx);
    let (errors, integrations, gaps, error_rate) = tokio::join!(
        ctx.ask("errors", &[]),
        ctx.ask("integrations", &[]),
        ctx.ask("gaps", &[]),
        ctx.ask(
            "timeseries",
            &[("metric", "error_rate"), ("interval", step)]
        ),
    );
    html! {
        @match &errors {
            Ok(e) => (errors_section(ctx, e)),
            Err(f) => (failure("The errors answer", f)),
        }
        section.card {
            h2 { "Error rate over time" }
            p.note { "Server errors (5xx) ÷ requests per " (match step { "1m" => "minute", "1h" => "hour", _ => "day" }) "; the axis fits the data." }
            @match &error_rate {
                Ok(series) => (error_rate_chart(series)),
                Err(f) => (failure("The error-rate trend", f)),
            }
        }
        section.card {
            h2 { "Third-party integrations" }
            @match &integrations {
                Ok(i) => (integrations_section(i)),
                Err(f) => (failure("The integrations answer", f)),
            }
        }
        section.card {
            h2 { "Silent-failure gaps" }
            p.note { "Pairs declared in the configuration: something started (a call or an outcome) and its completion should follow within the deadline. Gaps are the ones that never completed." }
            @match &gaps {
                Ok(g) => (gaps_section(g)),
                Err(f) => (failure("The gaps answer", f)),
            }
        }
    }
}

fn error_rate_chart(series: &Value) -> Markup {
    let (points, incomplete) = chart::timeseries(series);
    let axes = chart::Axes {
        fit_y: true,
        incomplete,
    };
    let line = Series {
        name: "server error rate".into(),
        color: chart::RED,
        points,
    };
    chart::lines_with("server error rate", &[line], &pct, &axes)
}

/// The incomplete buckets of an insights trend (`starts`) over the answer's range.
fn incomplete(answer: &Value, starts: &[i64]) -> Vec<i64> {
    let (from, to) = (
        num(answer, "from").unwrap_or(0.0) as i64,
        num(answer, "to").unwrap_or(0.0) as i64,
    );
    chart::incomplete_buckets(starts, from, to)
}

fn errors_section(ctx: &Ctx<'_>, e: &Value) -> Markup {
    let sessions = &e["sessions"];
    let classes = list(e, "classes");
    let trend: Vec<(i64, Option<f64>)> = list(e, "unknown_trend")
        .iter()
        .map(|p| {
            (
                num(p, "start").unwrap_or(0.0) as i64,
                num(p, "unknown_share"),
            )
        })
        .collect();
    html! {
        div.tiles {
            (tile("Failed calls", &count(num(e, "failed").unwrap_or(0.0)), &format!("{} of {} calls", or_dash(num(e, "error_rate"), pct), count(num(e, "calls").unwrap_or(0.0)))))
            div.tile.north {
                div.tile-label { "Unknown errors · drive it down" }
                div.tile-value { (or_dash(num(e, "unknown_share"), pct)) }
                div.tile-detail { (count(num(e, "unknown").unwrap_or(0.0))) " failures nobody has classified" }
            }
            (tile("Value at risk", &money(num(e, "value_at_risk").unwrap_or(0.0)), "failed calls on value-carrying routes × their average order value"))
            (tile("Lost conversions", &count(num(sessions, "lost_conversions").unwrap_or(0.0)), &format!("≈ {} in sessions that hit an error", money(num(sessions, "lost_value").unwrap_or(0.0)))))
        }
        div.grid2 {
            section.card {
                h2 { "Error classes" }
                (chart::hbars("failed calls per error class", &classes.iter().map(|c| {
                    let calls = num(c, "calls").unwrap_or(0.0);
                    let class = text(c, "class");
                    Bar {
                        label: class.to_owned(),
                        note: format!("{} · {}", count(calls), pct(num(c, "share").unwrap_or(0.0))),
                        segments: vec![Segment { value: calls, color: if class == "unknown" { chart::RED } else { chart::BLUE }, title: format!("{} failed calls, {} users, {} at risk", count(calls), count(num(c, "users").unwrap_or(0.0)), money(num(c, "value_at_risk").unwrap_or(0.0))) }],
                        href: None,
                    }
                }).collect::<Vec<_>>()))
                table {
                    thead { tr { th data-sort { "Class" } th.num data-sort { "Calls" } th.num data-sort { "Share" } th.num data-sort { "Users" } th.num data-sort { "Sessions" } th.num data-sort { "Value at risk" } } }
                    tbody {
                        @for c in classes {
                            tr {
                                td { (text(c, "class")) }
                                td.num data-v=(num(c, "calls").unwrap_or(0.0)) { (count(num(c, "calls").unwrap_or(0.0))) }
                                td.num data-v=(num(c, "share").unwrap_or(0.0)) { (or_dash(num(c, "share"), pct)) }
                                td.num data-v=(num(c, "users").unwrap_or(0.0)) { (count(num(c, "users").unwrap_or(0.0))) }
                                td.num data-v=(num(c, "sessions").unwrap_or(0.0)) { (count(num(c, "sessions").unwrap_or(0.0))) }
                                td.num data-v=(num(c, "value_at_risk").unwrap_or(0.0)) { (money(num(c, "value_at_risk").unwrap_or(0.0))) }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Unknown-error share over time" }
                p.note { "Share of failed calls without a known class, per interval; a gap means no failures." }
                @let starts: Vec<i64> = trend.iter().map(|p| p.0).collect();
                @let axes = chart::Axes { fit_y: true, incomplete: incomplete(e, &starts) };
                (chart::lines_with("unknown error share", &[Series { name: "unknown share".into(), color: chart::RED, points: trend }], &pct, &axes))
                h3 { "Conversion with and without an error" }
                table {
                    tbody {
                        tr { td { "Sessions that hit an error" } td.num { (count(num(sessions, "sessions_with_error").unwrap_or(0.0))) } td.num { (proportion(&sessions["conversion_with_error"])) } }
                        tr { td { "Sessions without" } td.num { (count(num(sessions, "sessions_without_error").unwrap_or(0.0))) } td.num { (proportion(&sessions["conversion_without_error"])) } }
                    }
                }
            }
        }
        section.card {
            h2 { "Where failures cost conversions" }
            p.note { "Per endpoint: conversion of sessions where it failed vs where it did not (95% intervals), and the conversions and value that difference represents." }
            table {
                thead { tr { th data-sort { "Endpoint" } th.num data-sort { "Sessions with failure" } th.num { "Conversion with failure" } th.num { "Without" } th.num data-sort { "Lost conversions" } th.num data-sort { "Lost value" } } }
                tbody {
                    @for row in list(sessions, "by_endpoint").iter().take(15) {
                        tr {
                            td { a href=(ctx.endpoint_link(text(row, "endpoint"))) { (text(row, "endpoint")) } }
                            td.num data-v=(num(row, "sessions_with_failure").unwrap_or(0.0)) { (count(num(row, "sessions_with_failure").unwrap_or(0.0))) }
                            td.num { (proportion(&row["conversion_with_failure"])) }
                            td.num { (proportion(&row["conversion_without_failure"])) }
                            td.num data-v=(num(row, "lost_conversions").unwrap_or(0.0)) { (or_dash(num(row, "lost_conversions"), count)) }
                            td.num data-v=(num(row, "lost_value").unwrap_or(0.0)) { (money(num(row, "lost_value").unwrap_or(0.0))) }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Top error patterns by value at risk" }
            table {
                thead { tr { th data-sort { "Endpoint" } th data-sort { "Class" } th data-sort { "Plan" } th data-sort { "Segment" } th data-sort { "Provider" } th.num data-sort { "Calls" } th.num data-sort { "Users" } th.num data-sort { "Value at risk" } } }
                tbody {
                    @for p in list(e, "patterns") {
                        tr {
                            td { a href=(ctx.endpoint_link(text(p, "endpoint"))) { (text(p, "endpoint")) } }
                            td { (text(p, "class")) }
                            td { (text(p, "plan")) }
                            td { (text(p, "segment")) }
                            td { (text(p, "provider")) }
                            td.num data-v=(num(p, "calls").unwrap_or(0.0)) { (count(num(p, "calls").unwrap_or(0.0))) }
                            td.num data-v=(num(p, "users").unwrap_or(0.0)) { (count(num(p, "users").unwrap_or(0.0))) }
                            td.num data-v=(num(p, "value_at_risk").unwrap_or(0.0)) { (money(num(p, "value_at_risk").unwrap_or(0.0))) }
                        }
                    }
                }
            }
        }
    }
}

fn integrations_section(i: &Value) -> Markup {
    let providers = list(i, "providers");
    if providers.is_empty() {
        return html! { p.empty { "No outbound calls in this range." } };
    }
    html! {
        table {
            thead { tr { th data-sort { "Provider" } th.num data-sort { "Calls" } th.num { "Success rate [95% CI]" } th.num data-sort { "p50" } th.num data-sort { "p95" } th { "Error classes" } th.num { "Conversion with a failure" } th.num { "Without" } th.num data-sort { "Gap" } } }
            tbody {
                @for p in providers {
                    tr {
                        td { strong { (text(p, "provider")) } }
                        td.num data-v=(num(p, "calls").unwrap_or(0.0)) { (count(num(p, "calls").unwrap_or(0.0))) }
                        td.num { (proportion(&p["success_rate"])) }
                        td.num data-v=(num(p, "p50_ms").unwrap_or(0.0)) { (or_dash(num(p, "p50_ms"), ms)) }
                        td.num data-v=(num(p, "p95_ms").unwrap_or(0.0)) { (or_dash(num(p, "p95_ms"), ms)) }
                        td {
                            @if let Some(classes) = p["error_classes"].as_object() {
                                @for (class, calls) in classes {
                                    span.badge { (class) " " (count(calls.as_f64().unwrap_or(0.0))) } " "
                                }
                            }
                        }
                        td.num { (proportion(&p["conversion_with_failure"])) }
                        td.num { (proportion(&p["conversion_without_failure"])) }
                        td.num data-v=(num(p, "conversion_gap_pp").unwrap_or(0.0)) { (or_dash(num(p, "conversion_gap_pp"), |v| format!("{v:.1} pp"))) }
                    }
                }
            }
        }
        h3 { "Success rate over time" }
        @let series: Vec<Series> = providers.iter().enumerate().map(|(n, p)| Series {
            name: text(p, "provider").to_owned(),
            color: chart::PALETTE[n % chart::PALETTE.len()],
            points: list(p, "trend").iter().map(|t| (num(t, "start").unwrap_or(0.0) as i64, num(t, "success_rate"))).collect(),
        }).collect();
        @let starts: Vec<i64> = series.first().map(|s| s.points.iter().map(|p| p.0).collect()).unwrap_or_default();
        @let axes = chart::Axes { fit_y: true, incomplete: incomplete(i, &starts) };
        (chart::lines_with("provider success rate", &series, &pct, &axes))
    }
}

fn gaps_section(g: &Value) -> Markup {
    let gaps = list(g, "gaps");
    if gaps.is_empty() {
        return html! { p.empty { "No gap pairs are configured for this project (see `[projects.analysis]` gaps in valuetrace.toml)." } };
    }
    html! {
        table {
            thead { tr { th { "Pair" } th.num { "Within" } th { "Matched by" } th.num { "Started" } th.num { "Completed" } th.num { "Pending" } th.num { "Gaps" } th.num { "Gap rate" } th { "Oldest unmatched" } th.num { "p95 completion" } } }
            tbody {
                @for row in gaps {
                    tr {
                        td { strong { (text(row, "name")) } br; span.note { (text(row, "start")) " → " (text(row, "end")) } }
                        td.num { (duration(num(row, "within_ms").unwrap_or(0.0))) }
                        td { (text(row, "match_by")) }
                        td.num { (count(num(row, "started").unwrap_or(0.0))) }
                        td.num { (count(num(row, "completed").unwrap_or(0.0))) }
                        td.num { (count(num(row, "pending").unwrap_or(0.0))) }
                        td.num { (count(num(row, "gaps").unwrap_or(0.0))) }
                        td.num class=(if num(row, "gap_rate").unwrap_or(0.0) > 0.05 { "down" } else { "" }) { (or_dash(num(row, "gap_rate"), pct)) }
                        td { (num(row, "oldest_unmatched").map_or_else(|| "–".to_owned(), |t| time(t as i64))) }
                        td.num { (or_dash(num(row, "completion_p95_ms"), duration)) }
                    }
                }
            }
        }
    }
}
