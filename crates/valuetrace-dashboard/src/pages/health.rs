//! API Business Health. North Star: the API's value per 1,000 requests against the previous
//! period of the same length; the endpoints table (sortable), value attribution per endpoint, the
//! adoption trend and the value vs reliability quadrant.
//!
//! Revenue is counted once. The impact answer sees the same order twice: as the direct value of
//! the call that carried it (the payment call) and as the outcome it led to (the purchase),
//! credited to the calls before it. Each is a complete view of the revenue, so the page shows them
//! side by side, labelled, and never adds them (an endpoint row's `attributed_value` is such a
//! sum, so the page does not print it).

use super::Ctx;
use crate::chart::{self, Bar, Dot, Segment, Series};
use crate::format::{count, list, money, ms, num, or_dash, pct, text};
use crate::layout::{failure, tile};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

/// The interval of trend charts for a range: minutes up to 3 hours, hours up to two days (as
/// the insights' own trends), days beyond. Custom ranges use their span too.
pub fn interval(ctx: &Ctx<'_>) -> &'static str {
    interval_for(ctx.filters.span_ms())
}

pub fn interval_for(span: Option<i64>) -> &'static str {
    match span {
        Some(span) if span <= 3 * 3_600_000 => "1m",
        Some(span) if span <= 2 * 86_400_000 => "1h",
        _ => "1d",
    }
}

/// The two views of revenue in an impact answer, and its requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Revenue {
    /// Σ `direct_value`: value carried by the API's own successful calls.
    pub direct: f64,
    /// `attributed_outcome_value`: valued outcomes credited to the calls before them.
    pub outcomes: f64,
    /// Every valued outcome, attributed or not (whether the project records valued outcomes).
    pub all_outcomes: f64,
    pub requests: f64,
}

impl Revenue {
    pub fn of(impact: &Value) -> Revenue {
        let (direct, requests) = list(impact, "rows").iter().fold((0.0, 0.0), |(v, r), row| {
            (
                v + num(row, "direct_value").unwrap_or(0.0),
                r + num(row, "requests").unwrap_or(0.0),
            )
        });
        let outcomes = num(impact, "attributed_outcome_value").unwrap_or(0.0);
        Revenue {
            direct,
            outcomes,
            all_outcomes: outcomes + num(impact, "unattributed_outcome_value").unwrap_or(0.0),
            requests,
        }
    }

    /// The view the North Star uses: outcome value attributed to the API when the project
    /// records valued outcomes (the revenue the business books), else the value its calls carry.
    pub fn basis(&self) -> Basis {
        if self.all_outcomes > 0.0 {
            Basis::Outcomes
        } else {
            Basis::Direct
        }
    }

    pub fn value(&self, basis: Basis) -> f64 {
        match basis {
            Basis::Outcomes => self.outcomes,
            Basis::Direct => self.direct,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Outcomes,
    Direct,
}

impl Basis {
    fn words(self) -> &'static str {
        match self {
            Basis::Outcomes => "outcome value attributed to API calls",
            Basis::Direct => "value carried by API calls",
        }
    }
}

fn per_thousand(value: f64, requests: f64) -> Option<f64> {
    (requests > 0.0).then(|| value / requests * 1000.0)
}

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    let step = interval(ctx);
    let (impact, endpoints, users, value, requests) = tokio::join!(
        ctx.ask("impact", &[]),
        ctx.ask("endpoints", &[("limit", "500")]),
        ctx.ask("timeseries", &[("metric", "users"), ("interval", step)]),
        ctx.ask("timeseries", &[("metric", "value"), ("interval", step)]),
        ctx.ask("timeseries", &[("metric", "requests"), ("interval", step)]),
    );
    let impact = match impact {
        Ok(impact) => impact,
        Err(f) => return failure("The impact answer", &f),
    };
    let (from, to) = (
        num(&impact, "from").unwrap_or(0.0) as i64,
        num(&impact, "to").unwrap_or(0.0) as i64,
    );
    let previous_range = [
        ("from", (from - (to - from)).to_string()),
        ("to", from.to_string()),
    ];
    let mut previous_filters = ctx.filters.clone();
    previous_filters.from = previous_range[0].1.clone();
    previous_filters.to = previous_range[1].1.clone();
    let previous = ctx
        .get("impact", &previous_filters.api_query(&[]))
        .await
        .ok();
    let revenue = Revenue::of(&impact);
    let basis = revenue.basis();
    let north = per_thousand(revenue.value(basis), revenue.requests);
    // The previous period in the same view, so the change compares like with like.
    let north_before = previous.as_deref().and_then(|p| {
        let before = Revenue::of(p);
        per_thousand(before.value(basis), before.requests)
    });
    let change = north
        .zip(north_before)
        .and_then(|(now, before)| (before > 0.0).then(|| (now - before) / before));
    let health: HashMap<String, &Value> = endpoints
        .as_ref()
        .map(|e| {
            list(e, "endpoints")
                .iter()
                .map(|row| {
                    (
                        format!("{} {}", text(row, "method"), text(row, "route")),
                        row,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let total_requests: f64 = health.values().filter_map(|e| num(e, "requests")).sum();
    let server_errors: f64 = health
        .values()
        .map(|e| num(e, "requests").unwrap_or(0.0) * num(e, "server_error_rate").unwrap_or(0.0))
        .sum();
    let rows = list(&impact, "rows");
    html! {
        div.tiles {
            div.tile.north {
                div.tile-label { "North Star · value per 1,000 requests" }
                div.tile-value { (or_dash(north, money)) }
                div.tile-detail { "from " (basis.words()) }
                div.tile-detail {
                    @match change {
                        Some(c) if c >= 0.0 => { span.up { "▲ " (pct(c)) } " vs previous period (" (or_dash(north_before, money)) ")" }
                        Some(c) => { span.down { "▼ " (pct(-c)) } " vs previous period (" (or_dash(north_before, money)) ")" }
                        None => { "no previous period to compare" }
                    }
                }
            }
            (tile("Direct value", &money(revenue.direct), "carried by the API's own calls (e.g. the payment call)"))
            (tile("Attributed outcome value", &money(revenue.outcomes), &format!("outcomes credited to the calls before them ({} model, {} window); the same revenue as direct value seen from the outcomes: never add the two", text(&impact, "model"), crate::format::duration(num(&impact, "attribution_window_ms").unwrap_or(0.0)))))
            (tile("Requests", &count(total_requests), if impact["estimate"] == true { "estimate (sampled data)" } else { "" }))
            (tile("Active users", &crate::format::users(&impact, "active_users"), match text(&impact, "active_users_kind") { "estimate" => "estimate from the SDKs' user sketches", "lower_bound" => "at least: sampled calls only", _ => "" }))
            (tile("Server error rate", &or_dash((total_requests > 0.0).then(|| server_errors / total_requests), pct), "5xx ÷ requests"))
            (tile("Conversions", &count(num(&impact, "conversions").unwrap_or(0.0)), &format!("session quality {} calls per conversion", or_dash(num(&impact, "session_quality"), |q| format!("{q:.1}")))))
        }
        section.card {
            h2 { "Endpoints" }
            p.note { "Direct value: carried by the endpoint's own successful calls. Assisted value: outcomes of users who called it within the attribution window, under the answer's model. Two views of the same revenue: never add them. Impact score = (0.6 × value share + 0.4 × engagement share) ÷ cost share, each share across this answer's endpoints; 1 means an endpoint returns its share of cost in value. Click a column to sort, an endpoint for its detail." }
            @if rows.is_empty() { (chart::empty()) } @else {
                table {
                    thead { tr {
                        th data-sort { "Endpoint" }
                        th.num data-sort { "Requests" }
                        th.num data-sort { "Users" }
                        th.num data-sort { "Adoption" }
                        th.num data-sort { "Error rate" }
                        th.num data-sort { "p95" }
                        th.num data-sort { "Direct value" }
                        th.num data-sort { "Assisted value" }
                        th.num data-sort { "Cost efficiency" }
                        th.num data-sort { "Impact score" }
                        th data-sort { "Quadrant" }
                    } }
                    tbody {
                        @for row in rows {
                            @let endpoint = text(row, "endpoint");
                            @let h = health.get(endpoint);
                            @let error_rate = h.and_then(|h| num(h, "server_error_rate"));
                            @let p95 = h.and_then(|h| num(h, "p95_ms"));
                            tr {
                                td { a href=(ctx.endpoint_link(endpoint)) { (endpoint) } }
                                td.num data-v=(num(row, "requests").unwrap_or(0.0)) { (count(num(row, "requests").unwrap_or(0.0))) }
                                td.num data-v=(num(row, "users").unwrap_or(0.0)) { (crate::format::users(row, "users")) }
                                td.num data-v=(num(row, "adoption").unwrap_or(-1.0)) title=(crate::format::adoption_interval(row)) { (crate::format::adoption(row)) }
                                td.num data-v=(error_rate.unwrap_or(-1.0)) { (or_dash(error_rate, pct)) }
                                td.num data-v=(p95.unwrap_or(-1.0)) { (or_dash(p95, ms)) }
                                @let (direct, assisted) = views(row);
                                td.num data-v=(direct) { (money(direct)) }
                                td.num data-v=(assisted) { (money(assisted)) }
                                td.num data-v=(num(row, "cost_efficiency").unwrap_or(-1.0)) { (or_dash(num(row, "cost_efficiency"), |e| format!("{e:.1}×"))) }
                                td.num data-v=(num(row, "score").unwrap_or(-1.0)) { (or_dash(num(row, "score"), |s| format!("{s:.2}"))) }
                                td { span class=(format!("badge {}", text(row, "quadrant"))) { (text(row, "quadrant")) } }
                            }
                        }
                    }
                }
            }
        }
        div.grid2 {
            section.card {
                h2 { "Value attribution per endpoint" }
                p.note { "Direct value (carried by the endpoint's own successful calls) and assisted value (outcomes of users who called it within the attribution window), top 12." }
                (attribution_chart(ctx, rows))
            }
            section.card {
                h2 { "Value vs reliability" }
                p.note { "Each endpoint by success rate (x) and attributed value rank (y). Top left: valuable but unreliable — invest. Bottom right: reliable but little value — check its cost." }
                (quadrant_chart(ctx, rows))
            }
        }
        section.card {
            h2 { "Adoption trend" }
            p.note { "Distinct users and requests per " (match step { "1m" => "minute", "1h" => "hour", _ => "day" }) "; the table shows the endpoints whose adoption moved most against the previous period." }
            (trend(&users, "users", chart::BLUE, &crate::format::tick))
            (trend(&requests, "requests", chart::ORANGE, &crate::format::tick))
            @if let Ok(value) = &value { (trend(&Ok(value.clone()), "direct value", chart::GREEN, &money)) }
            (adoption_movers(ctx, rows))
        }
    }
}

fn trend(
    answer: &crate::api::Answer,
    name: &str,
    color: &'static str,
    fmt: &dyn Fn(f64) -> String,
) -> Markup {
    match answer {
        Ok(series) => {
            let (points, incomplete) = chart::timeseries(series);
            let axes = chart::Axes {
                fit_y: false,
                incomplete,
            };
            html! {
                h3 { (name) }
                (chart::lines_with(name, &[Series { name: name.to_owned(), color, points }], fmt, &axes))
            }
        }
        Err(f) => failure(name, f),
    }
}

/// An endpoint row's two views of value: `(direct, assisted under the answer's model)`.
fn views(row: &Value) -> (f64, f64) {
    let direct = num(row, "direct_value").unwrap_or(0.0);
    let attributed = num(row, "attributed_value").unwrap_or(direct);
    (direct, (attributed - direct).max(0.0))
}

fn attribution_chart(ctx: &Ctx<'_>, rows: &[Value]) -> Markup {
    let larger = |row: &Value| {
        let (direct, assisted) = views(row);
        direct.max(assisted)
    };
    let mut rows: Vec<&Value> = rows.iter().filter(|r| larger(r) > 0.0).collect();
    rows.sort_by(|a, b| larger(b).total_cmp(&larger(a)));
    let bars: Vec<Bar> = rows
        .iter()
        .take(12)
        .map(|row| {
            let (direct, assisted) = views(row);
            let endpoint = text(row, "endpoint");
            Bar {
                label: endpoint.to_owned(),
                note: format!("{} · {}", money(direct), money(assisted)),
                segments: vec![
                    Segment {
                        value: direct,
                        color: chart::BLUE,
                        title: format!("direct {}", money(direct)),
                    },
                    Segment {
                        value: assisted,
                        color: chart::ORANGE,
                        title: format!("assisted {}", money(assisted)),
                    },
                ],
                href: Some(ctx.endpoint_link(endpoint)),
            }
        })
        .collect();
    html! {
        (chart::hbars_grouped("direct and assisted value per endpoint", &bars))
        p.legend { span.key style="background:#0072B2" {} " direct " span.key style="background:#E69F00" {} " assisted (two views of the same revenue, side by side: not stacked, never added)" }
    }
}

fn quadrant_chart(ctx: &Ctx<'_>, rows: &[Value]) -> Markup {
    let value_of = |row: &Value| num(row, "attributed_value").unwrap_or(0.0);
    let mut values: Vec<f64> = rows.iter().map(value_of).collect();
    values.sort_by(f64::total_cmp);
    let rank = |v: f64| {
        let below = values.iter().filter(|x| **x < v).count();
        if values.len() <= 1 {
            1.0
        } else {
            below as f64 / (values.len() - 1) as f64
        }
    };
    let dots: Vec<Dot> = rows
        .iter()
        .filter_map(|row| {
            let success = num(row, "success_rate")?;
            let (direct, assisted) = views(row);
            let quadrant = text(row, "quadrant");
            let color = match quadrant {
                "invest" => chart::RED,
                "protect" => chart::GREEN,
                "cut" => chart::PURPLE,
                _ => chart::SKY,
            };
            // Success rates cluster near 100%: spread 90–100% over most of the axis.
            let x = ((success - 0.9) / 0.1).clamp(0.0, 1.0);
            Some(Dot {
                x,
                y: rank(value_of(row)),
                color,
                title: format!(
                    "{}: {} success, direct {}, assisted {}, {}",
                    text(row, "endpoint"),
                    pct(success),
                    money(direct),
                    money(assisted),
                    quadrant
                ),
                href: Some(ctx.endpoint_link(text(row, "endpoint"))),
            })
        })
        .collect();
    html! {
        (chart::quadrant("value vs reliability", &dots, ("success rate, 90% … 100%", "value (rank, as the impact score weighs it)"), (0.5, 0.5), ["invest", "protect", "maintain or cut", "maintain"]))
        p.legend {
            span.key style="background:#D55E00" {} " invest "
            span.key style="background:#009E73" {} " protect "
            span.key style="background:#CC79A7" {} " cut "
            span.key style="background:#56B4E9" {} " maintain"
        }
    }
}

fn adoption_movers(ctx: &Ctx<'_>, rows: &[Value]) -> Markup {
    let mut movers: Vec<&Value> = rows
        .iter()
        .filter(|r| num(r, "adoption_change_pp").is_some())
        .collect();
    movers.sort_by(|a, b| {
        num(b, "adoption_change_pp")
            .unwrap_or(0.0)
            .abs()
            .total_cmp(&num(a, "adoption_change_pp").unwrap_or(0.0).abs())
    });
    html! {
        @if movers.is_empty() { p.empty { "No previous period to compare adoption with." } } @else {
            table {
                thead { tr { th { "Endpoint" } th.num { "Adoption now" } th.num { "Before" } th.num { "Change" } } }
                tbody {
                    @for row in movers.iter().take(8) {
                        @let change = num(row, "adoption_change_pp").unwrap_or(0.0);
                        tr {
                            td { a href=(ctx.endpoint_link(text(row, "endpoint"))) { (text(row, "endpoint")) } }
                            td.num { (or_dash(num(row, "adoption"), pct)) }
                            td.num { (or_dash(num(row, "adoption_previous"), pct)) }
                            td.num class=(if change >= 0.0 { "up" } else { "down" }) { (format!("{change:+.1} pp")) }
                        }
                    }
                }
            }
        }
    }
}
