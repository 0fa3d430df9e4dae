//! Drill-down of one endpoint (`?method=POST&route=/api/payments`): its health, value and
//! adoption, requests / error rate / p95 over time, and its error classes.
//!
//! Adoption, impact score and value are the endpoint's row of the project's impact answer (the
//! very answer the health table shows, same URL, same cache entry): asking impact with `route=`
//! would leave only this endpoint in the project, so its adoption would read 100% and its share
//! of value the whole.

use super::Ctx;
use crate::chart::{self, Series};
use crate::format::{count, list, money, ms, num, or_dash, pct, text};
use crate::layout::{failure, tile};
use maud::{Markup, html};

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    let (method, route) = (ctx.param("method"), ctx.param("route"));
    if route.is_empty() {
        return html! { div.error { "Choose an endpoint from a table (this page needs `route` and `method`)." } };
    }
    let which = [("route", route), ("method", method)];
    let step = super::health::interval(ctx);
    let (endpoints, impact, errors, requests, error_rate, p95) = tokio::join!(
        ctx.ask("endpoints", &which),
        ctx.ask("impact", &[]),
        ctx.ask("errors", &which),
        ctx.ask(
            "timeseries",
            &[
                which[0],
                which[1],
                ("metric", "requests"),
                ("interval", step)
            ]
        ),
        ctx.ask(
            "timeseries",
            &[
                which[0],
                which[1],
                ("metric", "error_rate"),
                ("interval", step)
            ]
        ),
        ctx.ask(
            "timeseries",
            &[which[0], which[1], ("metric", "p95"), ("interval", step)]
        ),
    );
    let health = endpoints
        .as_ref()
        .ok()
        .and_then(|e| list(e, "endpoints").first().cloned());
    let row = impact.as_ref().ok().and_then(|i| {
        list(i, "rows")
            .iter()
            .find(|r| text(r, "endpoint") == format!("{method} {route}"))
            .cloned()
    });
    let series = |answer: &crate::api::Answer,
                  name: &str,
                  color: &'static str,
                  fmt: &dyn Fn(f64) -> String,
                  fit_y: bool| match answer {
        Ok(a) => {
            let (points, incomplete) = chart::timeseries(a);
            let axes = chart::Axes { fit_y, incomplete };
            html! {
                h3 { (name) }
                (chart::lines_with(name, &[Series { name: name.to_owned(), color, points }], fmt, &axes))
            }
        }
        Err(f) => failure(name, f),
    };
    html! {
        @match &health {
            None => p.empty { "No calls of this endpoint in this range and slice." },
            Some(h) => div.tiles {
                (tile("Requests", &count(num(h, "requests").unwrap_or(0.0)), &format!("{} per minute", or_dash(num(h, "requests_per_minute"), |v| format!("{v:.1}")))))
                (tile("Users", &count(num(h, "unique_users").unwrap_or(0.0)), ""))
                (tile("Server errors", &or_dash(num(h, "server_error_rate"), pct), &format!("client errors {}", or_dash(num(h, "client_error_rate"), pct))))
                (tile("Latency p95", &or_dash(num(h, "p95_ms"), ms), &format!("p50 {} · p99 {}", or_dash(num(h, "p50_ms"), ms), or_dash(num(h, "p99_ms"), ms))))
                (tile("Order value carried", &money(num(h, "value_sum").unwrap_or(0.0)), ""))
            },
        }
        @if let Some(r) = &row {
            div.tiles {
                @let direct = num(r, "direct_value").unwrap_or(0.0);
                @let assisted = (num(r, "attributed_value").unwrap_or(direct) - direct).max(0.0);
                (tile("Direct value", &money(direct), "carried by its own successful calls"))
                (tile("Assisted value", &money(assisted), "outcomes of users who called it within the attribution window (the same revenue seen from the outcomes: never add the two)"))
                (tile("Adoption", &crate::format::adoption(r), &[crate::format::adoption_interval(r), or_dash(num(r, "adoption_change_pp"), |v| format!("{v:+.1} pp vs previous period"))].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(" · ")))
                (tile("Impact score", &or_dash(num(r, "score"), |v| format!("{v:.2}")), text(r, "quadrant")))
                (tile("Calls per user", &or_dash(num(r, "calls_per_user"), |v| format!("{v:.1}")), &format!("{} per session", or_dash(num(r, "calls_per_session"), |v| format!("{v:.1}")))))
            }
        }
        section.card {
            h2 { "Over time" }
            (series(&requests, "requests", chart::BLUE, &crate::format::tick, false))
            (series(&error_rate, "error rate", chart::RED, &pct, true))
            (series(&p95, "p95 latency", chart::ORANGE, &ms, false))
        }
        section.card {
            h2 { "Errors of this endpoint" }
            @match &errors {
                Err(f) => (failure("The errors answer", f)),
                Ok(e) if list(e, "classes").is_empty() => p.empty { "No failed calls." },
                Ok(e) => table {
                    thead { tr { th { "Class" } th.num { "Calls" } th.num { "Share" } th.num { "Users" } th.num { "Value at risk" } } }
                    tbody {
                        @for c in list(e, "classes") {
                            tr {
                                td { (text(c, "class")) }
                                td.num { (count(num(c, "calls").unwrap_or(0.0))) }
                                td.num { (or_dash(num(c, "share"), pct)) }
                                td.num { (count(num(c, "users").unwrap_or(0.0))) }
                                td.num { (money(num(c, "value_at_risk").unwrap_or(0.0))) }
                            }
                        }
                    }
                },
            }
        }
    }
}

/// The page's `<h1>` and `<title>`: the endpoint it shows.
pub fn heading(ctx: &Ctx<'_>) -> String {
    let (method, route) = (ctx.param("method"), ctx.param("route"));
    if route.is_empty() {
        return "Endpoint".to_owned();
    }
    format!("{method} {route}").trim().to_owned()
}
