//! User Journey: a funnel builder (steps in the URL as repeated `step=`; without them a storefront
//! funnel discovered from the data), the paths after a start step as a tree, session quality
//! (calls per conversion), the retention heat map and time to first value.

use super::Ctx;
use crate::api::{Failure, PENDING};
use crate::chart::{self, Bar, Segment, TreeRow};
use crate::format::{count, duration, list, num, or_dash, pct, text};
use crate::layout::{failure, tile};
use maud::{Markup, html};
use serde_json::Value;

/// Steps a funnel may have on this page (the API takes up to 10).
pub const MAX_STEPS: usize = 6;
const DAY_MS: i64 = 86_400_000;

const WINDOWS: &[(&str, &str)] = &[
    ("1h", "1 hour"),
    ("6h", "6 hours"),
    ("1d", "1 day"),
    ("3d", "3 days"),
    ("7d", "7 days"),
];
const ORDERS: &[(&str, &str)] = &[
    ("sequential", "sequential: later, in order"),
    ("strict", "strict: each the very next event"),
];
const PERS: &[(&str, &str)] = &[
    ("user", "users"),
    ("session", "sessions"),
    ("account", "accounts"),
];
const BYS: &[(&str, &str)] = &[
    ("", "none"),
    ("plan", "plan"),
    ("segment", "segment"),
    ("variant", "variant"),
    ("app_version", "app version"),
];

/// `value` when it is one of `options`, else `default`.
fn choose<'a>(value: &'a str, options: &[(&'static str, &str)], default: &'static str) -> &'a str {
    if options.iter().any(|(v, _)| *v == value) {
        value
    } else {
        default
    }
}

/// Routes the paths and funnels leave out anyway (`analysis.noise_routes` by default), and
/// probes: never a funnel step.
fn is_noise(route: &str) -> bool {
    route.starts_with("/health")
        || route.starts_with("/static/")
        || matches!(route, "/metrics" | "/readyz" | "/livez" | "/favicon.ico")
}

/// `(method, route, requests)` of the inbound, non-noise endpoints, busiest first.
pub(super) fn inbound_routes(endpoints: &[Value]) -> Vec<(&str, &str, f64)> {
    let mut routes: Vec<(&str, &str, f64)> = endpoints
        .iter()
        .filter(|e| text(e, "direction") != "outbound" && !is_noise(text(e, "route")))
        .map(|e| {
            (
                text(e, "method"),
                text(e, "route"),
                num(e, "requests").unwrap_or(0.0),
            )
        })
        .collect();
    routes.sort_by(|a, b| b.2.total_cmp(&a.2));
    routes
}

/// The default funnel: the busiest GET product or listing route, the cart add, the checkout, then
/// `outcome` (the value outcome, when the data has it); if fewer than two of those routes exist,
/// the three busiest routes.
pub fn default_steps(endpoints: &[Value], outcome: Option<&str>) -> Vec<String> {
    let routes = inbound_routes(endpoints);
    let has = |route: &str, words: &[&str]| {
        let route = route.to_ascii_lowercase();
        words.iter().any(|w| route.contains(w))
    };
    let step = |(method, route, _): &(&str, &str, f64)| format!("{method} {route}");
    let listing = routes.iter().find(|(m, r, _)| {
        *m == "GET"
            && has(
                r,
                &["product", "listing", "catalog", "categor", "item", "offer"],
            )
            && !has(r, &["cart", "basket", "checkout", "order"])
    });
    let carts = || {
        routes
            .iter()
            .filter(|(m, r, _)| matches!(*m, "POST" | "PUT") && has(r, &["cart", "basket"]))
    };
    let cart = carts()
        .find(|(_, r, _)| has(r, &["item", "add", "line"]))
        .or_else(|| carts().next());
    let checkout = routes
        .iter()
        .find(|(m, r, _)| *m == "POST" && has(r, &["checkout"]))
        .or_else(|| {
            routes
                .iter()
                .find(|(m, r, _)| *m == "POST" && has(r, &["order"]))
        });
    let found: Vec<String> = [listing, cart, checkout]
        .into_iter()
        .flatten()
        .map(step)
        .collect();
    if found.len() >= 2 {
        found
            .into_iter()
            .chain(outcome.map(str::to_owned))
            .take(MAX_STEPS)
            .collect()
    } else {
        routes.iter().take(3).map(step).collect()
    }
}

/// The steps asked for in the URL (trimmed, empty inputs skipped), or why they cannot be used.
pub fn asked_steps(values: &[&str]) -> Result<Vec<String>, String> {
    let steps: Vec<String> = values
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if steps.iter().any(|s| s.contains(',')) {
        return Err("A step cannot contain a comma.".into());
    }
    match steps.len() {
        0 => Ok(steps),
        1 => Err("A funnel needs at least two steps.".into()),
        n if n > MAX_STEPS => Err(format!("At most {MAX_STEPS} steps.")),
        _ => Ok(steps),
    }
}

/// The retention grid for a range: weekly periods from 14 days on, else daily; as many periods as
/// the range holds (2 to 14).
pub fn retention_shape(span_ms: i64) -> (&'static str, i64, usize) {
    let (period, period_ms) = if span_ms >= 14 * DAY_MS {
        ("week", 7 * DAY_MS)
    } else {
        ("day", DAY_MS)
    };
    let periods = (span_ms.max(0) + period_ms - 1) / period_ms;
    (period, period_ms, periods.clamp(2, 14) as usize)
}

/// A retention cell: the rate, or `None` for a period no actor of the cohort has reached yet
/// (the cohort's start + n periods is at or after the window's end) and for a running period
/// nobody has returned in so far (its actors may not have reached it: the cohort's label is the
/// period's start, its first actor may come later).
pub fn retention_cell(
    cohort_start: Option<i64>,
    period_ms: i64,
    to: i64,
    cell: &Value,
) -> Option<f64> {
    let n = num(cell, "period").unwrap_or(0.0) as i64;
    let complete = cell["complete"] == true;
    let actors = num(cell, "actors").unwrap_or(0.0);
    let started = match cohort_start {
        Some(start) => start + n * period_ms < to,
        None => true,
    } && (complete || actors > 0.0);
    started.then(|| num(cell, "rate")).flatten()
}

/// A path-tree node flattened for drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRow {
    pub depth: usize,
    pub event: String,
    pub actors: f64,
    pub dropped: f64,
    pub share_of_parent: f64,
}

/// The tree depth first, keeping at most `max_children` children per node, each with at least
/// `min_share` of the root's actors.
pub fn flatten_paths(root: &Value, min_share: f64, max_children: usize) -> Vec<PathRow> {
    fn walk(node: &Value, depth: usize, floor: f64, max: usize, out: &mut Vec<PathRow>) {
        out.push(PathRow {
            depth,
            event: text(node, "event").to_owned(),
            actors: num(node, "actors").unwrap_or(0.0),
            dropped: num(node, "dropped").unwrap_or(0.0),
            share_of_parent: num(node, "share_of_parent").unwrap_or(0.0),
        });
        let mut children: Vec<&Value> = list(node, "children")
            .iter()
            .filter(|c| num(c, "actors").unwrap_or(0.0) >= floor)
            .collect();
        children.sort_by(|a, b| {
            num(b, "actors")
                .unwrap_or(0.0)
                .total_cmp(&num(a, "actors").unwrap_or(0.0))
        });
        for child in children.into_iter().take(max) {
            walk(child, depth + 1, floor, max, out);
        }
    }
    let mut out = Vec::new();
    if root.get("event").is_some() {
        let floor = (num(root, "actors").unwrap_or(0.0) * min_share).max(1.0);
        walk(root, 0, floor, max_children, &mut out);
    }
    out
}

/// The range in ms: the preset, or `from`..`to` (now when `to` is empty).
fn span_ms(ctx: &Ctx<'_>) -> i64 {
    ctx.filters.span_ms().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let parse = valuetrace_model::time::parse_time;
        let from = parse(&ctx.filters.from).unwrap_or(now - 7 * DAY_MS);
        let to = if ctx.filters.to.is_empty() {
            now
        } else {
            parse(&ctx.filters.to).unwrap_or(now)
        };
        to - from
    })
}

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    let window = choose(ctx.param("window"), WINDOWS, "1d");
    let order = choose(ctx.param("order"), ORDERS, "sequential");
    let per = choose(ctx.param("per"), PERS, "user");
    let by = choose(ctx.param("by"), BYS, "");
    let who = PERS
        .iter()
        .find(|(v, _)| *v == per)
        .map_or("users", |(_, n)| *n);
    let (period, period_ms, periods) = retention_shape(span_ms(ctx));
    let periods_text = periods.to_string();
    let endpoints_query = ctx.filters.range_query(&[("limit", "500")]);

    // Stage 1: what the data has (routes, the value outcome), session quality, time to value.
    let (endpoints, impact, ttv, retention) = tokio::join!(
        ctx.get("endpoints", &endpoints_query),
        ctx.ask("impact", &[]),
        ctx.ask("ttv", &[]),
        ctx.ask(
            "retention",
            &[("period", period), ("periods", &periods_text)]
        ),
    );
    let routes: &[Value] = endpoints.as_ref().map_or(&[], |e| list(e, "endpoints"));
    let outcome = ttv.as_ref().ok().and_then(|t| {
        let event = text(t, "value_event");
        let seen = num(t, "reached").unwrap_or(0.0) > 0.0
            || impact
                .as_ref()
                .is_ok_and(|i| num(i, "conversions").unwrap_or(0.0) > 0.0);
        (event.starts_with("outcome:") && seen).then(|| event.to_owned())
    });
    let asked = asked_steps(&ctx.param_all("step"));
    let (steps, defaulted) = match &asked {
        Ok(steps) if !steps.is_empty() => (steps.clone(), false),
        _ => (default_steps(routes, outcome.as_deref()), true),
    };
    // The default funnel needs the routes and the value outcome: while either is still being
    // computed, so are the funnel and (without its own start) the paths.
    let discovering = defaulted
        && [&endpoints, &ttv]
            .iter()
            .any(|a| a.as_ref().is_err_and(Failure::is_pending));
    let start = match ctx.param("start").trim() {
        "" => steps.first().cloned().unwrap_or_default(),
        s => s.to_owned(),
    };
    let still = || Failure {
        status: PENDING,
        message: "still being computed".into(),
    };

    // Stage 2: the funnel and the paths.
    let joined = steps.join(",");
    let mut funnel_params = vec![
        ("steps", joined.as_str()),
        ("window", window),
        ("order", order),
        ("per", per),
    ];
    if !by.is_empty() {
        funnel_params.push(("by", by));
    }
    let (funnel, paths) = tokio::join!(
        async {
            if discovering {
                Some(Err(still()))
            } else if steps.len() < 2 {
                None
            } else {
                Some(ctx.ask("funnel", &funnel_params).await)
            }
        },
        async {
            if discovering && ctx.param("start").trim().is_empty() {
                Some(Err(still()))
            } else if start.is_empty() {
                None
            } else {
                Some(
                    ctx.ask(
                        "paths",
                        &[
                            ("start", start.as_str()),
                            ("depth", "4"),
                            ("top", "5"),
                            ("window", window),
                            ("per", per),
                        ],
                    )
                    .await,
                )
            }
        },
    );

    html! {
        section.card {
            h2 { "Funnel" }
            (builder(ctx, &steps, routes, outcome.as_deref(), window, order, per, by, &start))
            @if let Err(problem) = &asked { div.error role="alert" { (problem) " Showing the default funnel instead." } }
            @if defaulted && !discovering {
                p.note { "Default funnel, discovered from the data: the busiest product or listing route, the cart add, the checkout and the value outcome (else the three busiest routes). Change the steps above." }
            }
            @match &funnel {
                None => p.empty { "No routes in this range to build a funnel from." },
                Some(Err(f)) => (failure("The funnel", f)),
                Some(Ok(answer)) => (funnel_section(answer, who, by)),
            }
        }
        section.card {
            h2 { "Paths after " @if start.is_empty() { "the first step" } @else { code { (start) } } }
            p.note { "Each of the " (who) " who did the start step in the range contributes one path: its next distinct events (noise routes such as health checks left out), up to 4 events within the conversion window. Branches with under 1% of the start are hidden; green marks the funnel's steps." }
            @match &paths {
                None => p.empty { "No start step." },
                Some(Err(f)) => (failure("The paths answer", f)),
                Some(Ok(answer)) => (paths_section(answer, &steps, who)),
            }
        }
        section.card {
                h2 { "Session quality" }
                @match &impact {
                    Err(f) => (failure("The impact answer", f)),
                    Ok(answer) => (session_quality(ctx, answer)),
                }
            }
        section.card {
                h2 { "Time to first value" }
                @match &ttv {
                    Err(f) => (failure("The time-to-value answer", f)),
                    Ok(answer) => (time_to_value(answer)),
                }
        }
        section.card {
            h2 { "Retention" }
            @match &retention {
                Err(f) => (failure("The retention answer", f)),
                Ok(answer) => (retention_section(answer, period, period_ms)),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn builder(
    ctx: &Ctx<'_>,
    steps: &[String],
    routes: &[Value],
    outcome: Option<&str>,
    window: &str,
    order: &str,
    per: &str,
    by: &str,
    start: &str,
) -> Markup {
    let options: Vec<String> = inbound_routes(routes)
        .iter()
        .map(|(m, r, _)| format!("{m} {r}"))
        .chain(outcome.map(str::to_owned))
        .collect();
    let select = |name: &str, label: &str, current: &str, values: &[(&str, &str)]| {
        html! {
            label { (label) " "
                select name=(name) {
                    @for (value, text) in values {
                        option value=(value) selected[*value == current] { (text) }
                    }
                }
            }
        }
    };
    html! {
        form.filters method="get" aria-label="funnel steps" {
            @for (name, value) in ctx.filters.pairs() {
                input type="hidden" name=(name) value=(value);
            }
            @for i in 0..MAX_STEPS {
                label { "Step " (i + 1)
                    input type="text" name="step" list="vt-steps" size="24"
                        value=(steps.get(i).map_or("", String::as_str))
                        placeholder=(if i < 2 { "GET /api/products" } else { "optional" });
                }
            }
            (select("window", "Within", window, WINDOWS))
            (select("order", "Order", order, ORDERS))
            (select("per", "Count", per, PERS))
            (select("by", "Breakdown", by, BYS))
            label { "Paths from"
                input type="text" name="start" list="vt-steps" size="24" value=(start);
            }
            button type="submit" { "Build" }
            datalist id="vt-steps" {
                @for option in &options { option value=(option) {} }
                option value="any" {}
            }
        }
        p.note { "A step is a route (" code { "POST /api/checkout" } ", " code { "*" } " globs), " code { "outcome:purchase" } " or " code { "any" } ", optionally followed by filters such as " code { "status=2xx" } " or a property " code { "provider=stripe" } "." }
    }
}

fn funnel_section(answer: &Value, who: &str, by: &str) -> Markup {
    let steps = list(answer, "steps");
    let first = steps.first().and_then(|s| num(s, "entered")).unwrap_or(0.0);
    let bars: Vec<Bar> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let entered = num(s, "entered").unwrap_or(0.0);
            let dropped = num(s, "dropped").unwrap_or(0.0);
            let from_start = num(s, "conversion_from_start");
            let from_previous = num(s, "conversion_rate");
            let mut segments = vec![Segment {
                value: entered,
                color: chart::BLUE,
                title: format!(
                    "{} {who} reached it; {} of step 1, {} of the previous step",
                    count(entered),
                    or_dash(from_start, pct),
                    or_dash(from_previous, pct)
                ),
            }];
            if i > 0 {
                let previous = entered + dropped;
                segments.push(Segment {
                    value: dropped,
                    color: chart::GREY,
                    title: format!(
                        "{} {who} dropped since the previous step ({} of it)",
                        count(dropped),
                        or_dash((previous > 0.0).then(|| dropped / previous), pct)
                    ),
                });
            }
            Bar {
                label: format!("{}. {}", i + 1, text(s, "step")),
                note: format!("{} · {}", count(entered), or_dash(from_start, pct)),
                segments,
                href: None,
            }
        })
        .collect();
    let last = steps.last().and_then(|s| num(s, "entered")).unwrap_or(0.0);
    html! {
        div.tiles {
            (tile(&format!("Entered ({who})"), &count(first), "did step 1 in the range"))
            (tile("Completed", &count(last), "reached the last step"))
            (tile("Conversion", &or_dash((first > 0.0).then(|| last / first), pct), "last step ÷ step 1"))
        }
        @if first == 0.0 {
            p.empty { "Nobody did the first step in this range and slice." }
        } @else {
            (chart::hbars("funnel: who reached each step", &bars))
            p.legend { span.key style=(format!("background:{}", chart::BLUE)) {} " reached the step " span.key style=(format!("background:{}", chart::GREY)) {} " dropped since the previous step" }
        }
        table {
            thead { tr {
                th { "#" } th { "Step" } th.num { "Reached" } th.num { "From previous" } th.num { "From step 1" }
                th.num { "Dropped" } th.num { "Median time" } th.num { "p90 time" } th { "Where those who stopped here went instead" }
            } }
            tbody {
                @for (i, s) in steps.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { code { (text(s, "step")) } }
                        td.num { (count(num(s, "entered").unwrap_or(0.0))) }
                        td.num { (or_dash(num(s, "conversion_rate"), pct)) }
                        td.num { (or_dash(num(s, "conversion_from_start"), pct)) }
                        td.num { @if i > 0 { (count(num(s, "dropped").unwrap_or(0.0))) } @else { "–" } }
                        td.num { (or_dash(num(s, "median_ms_from_previous"), duration)) }
                        td.num { (or_dash(num(s, "p90_ms_from_previous"), duration)) }
                        td {
                            @if i + 1 < steps.len() {
                                @for (j, next) in list(s, "went_instead").iter().take(3).enumerate() {
                                    @if j > 0 { ", " }
                                    (text(next, "event")) " " span.note { (or_dash(num(next, "share"), pct)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.note { "Window " (super::growth::days(num(answer, "window_ms").unwrap_or(0.0))) " from entry, " (text(answer, "order")) " order. Times are from the previous step (nearest rank)." }
        @let groups = list(answer, "groups");
        @if !by.is_empty() {
            h3 { "By " (by) }
            @if groups.is_empty() { p.empty { "No groups." } } @else {
                table {
                    thead { tr {
                        th data-sort { (by) }
                        @for (i, s) in steps.iter().enumerate() {
                            th.num data-sort title=(text(s, "step")) { (i + 1) ". " (crate::format::text(s, "step").chars().take(24).collect::<String>()) }
                        }
                    } }
                    tbody {
                        @for g in groups {
                            tr {
                                td { (text(g, "group")) }
                                @for (i, s) in list(g, "steps").iter().enumerate() {
                                    @let entered = num(s, "entered").unwrap_or(0.0);
                                    @let share = num(s, "conversion_from_start");
                                    td.num data-v=(if i == 0 { entered } else { share.unwrap_or(-1.0) }) {
                                        @if i == 0 { (count(entered)) } @else { (count(entered)) " " span.note { (or_dash(share, pct)) } }
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

fn paths_section(answer: &Value, steps: &[String], who: &str) -> Markup {
    let root = &answer["tree"];
    let total = num(answer, "actors").unwrap_or(0.0);
    let rows = flatten_paths(root, 0.01, 4);
    if total == 0.0 || rows.is_empty() {
        return html! { p.empty { "Nobody did the start step in this range and slice." } };
    }
    let tree: Vec<TreeRow> = rows
        .iter()
        .map(|r| TreeRow {
            depth: r.depth,
            label: r.event.clone(),
            value: r.actors,
            color: if steps.contains(&r.event) {
                chart::GREEN
            } else {
                chart::BLUE
            },
            title: format!(
                "{} {who}: {} of the previous step, {} of the start; {} stopped here",
                count(r.actors),
                pct(r.share_of_parent),
                pct(r.actors / total),
                count(r.dropped)
            ),
            note: if r.depth == 0 {
                count(r.actors)
            } else {
                format!("{} · {}", count(r.actors), pct(r.share_of_parent))
            },
        })
        .collect();
    html! {
        (chart::tree("paths after the start step", &tree))
        h3 { "Most common paths" }
        table {
            thead { tr { th { "Path" } th.num data-sort { (who) } th.num data-sort { "Share" } } }
            tbody {
                @for p in list(answer, "top_paths") {
                    @let events: Vec<&str> = list(p, "events").iter().filter_map(Value::as_str).collect();
                    tr {
                        td { (events.join(" → ")) }
                        td.num data-v=(num(p, "actors").unwrap_or(0.0)) { (count(num(p, "actors").unwrap_or(0.0))) }
                        td.num data-v=(num(p, "share").unwrap_or(0.0)) { (or_dash(num(p, "share"), pct)) }
                    }
                }
            }
        }
    }
}

fn session_quality(ctx: &Ctx<'_>, impact: &Value) -> Markup {
    let sliced = !(ctx.filters.plan.is_empty()
        && ctx.filters.segment.is_empty()
        && ctx.filters.variant.is_empty());
    let mut rows: Vec<&Value> = list(impact, "rows")
        .iter()
        .filter(|r| num(r, "session_quality").is_some())
        .collect();
    rows.sort_by(|a, b| {
        num(b, "session_quality")
            .unwrap_or(0.0)
            .total_cmp(&num(a, "session_quality").unwrap_or(0.0))
    });
    let bars: Vec<Bar> = rows
        .iter()
        .take(10)
        .map(|r| {
            let q = num(r, "session_quality").unwrap_or(0.0);
            let endpoint = text(r, "endpoint");
            Bar {
                label: endpoint.to_owned(),
                note: format!("{q:.2}"),
                segments: vec![Segment {
                    value: q,
                    color: chart::BLUE,
                    title: format!(
                        "{q:.2} calls per conversion in converting sessions; {} calls per session overall",
                        or_dash(num(r, "calls_per_session"), |c| format!("{c:.2}"))
                    ),
                }],
                href: Some(ctx.endpoint_link(endpoint)),
            }
        })
        .collect();
    html! {
        div.tiles {
            (tile("Calls per conversion", &or_dash(num(impact, "session_quality").filter(|q| *q > 0.0), |q| format!("{q:.1}")), "API calls in converting sessions ÷ their conversions"))
            (tile("Conversions", &count(num(impact, "conversions").unwrap_or(0.0)), if sliced { "outcomes carry no plan or variant: not sliced" } else { "" }))
        }
        p.note { "Per endpoint: its calls in converting sessions ÷ the conversions of those sessions (the endpoints needing most calls per conversion first). Fewer calls for the same conversion is a smoother journey." }
        (chart::hbars("calls per conversion by endpoint", &bars))
    }
}

fn time_to_value(ttv: &Value) -> Markup {
    let trend = list(ttv, "trend");
    html! {
        p.note { "New users (first " code { (text(ttv, "start_event")) } " in the range, none in the 30 days before) and the time to their first " code { (text(ttv, "value_event")) } "." }
        div.tiles {
            (tile("New users", &count(num(ttv, "new_actors").unwrap_or(0.0)), ""))
            (tile("Reached value", &or_dash(num(ttv, "reached_share"), pct), &format!("{} users", count(num(ttv, "reached").unwrap_or(0.0)))))
            (tile("Median time", &or_dash(num(ttv, "p50_ms"), duration), &format!("p90 {}", or_dash(num(ttv, "p90_ms"), duration))))
        }
        @if !trend.is_empty() {
            table {
                thead { tr { th { "Start cohort" } th.num { "New" } th.num { "Reached" } th.num { "Median" } th.num { "p90" } } }
                tbody {
                    @for c in trend.iter().rev().take(8) {
                        tr {
                            td { (text(c, "cohort")) }
                            td.num { (count(num(c, "new_actors").unwrap_or(0.0))) }
                            td.num { (or_dash(num(c, "reached_share"), pct)) }
                            td.num { (or_dash(num(c, "p50_ms"), duration)) }
                            td.num { (or_dash(num(c, "p90_ms"), duration)) }
                        }
                    }
                }
            }
        }
    }
}

fn retention_section(answer: &Value, period: &str, period_ms: i64) -> Markup {
    let cohorts = list(answer, "cohorts");
    let to = num(answer, "to").unwrap_or(0.0) as i64;
    let width = list(answer, "average").len().max(
        cohorts
            .iter()
            .map(|c| list(c, "periods").len())
            .max()
            .unwrap_or(0),
    );
    let columns: Vec<String> = (0..width)
        .map(|n| format!("{} {n}", if period == "week" { "week" } else { "day" }))
        .collect();
    let mut rows = vec!["all (complete)".to_owned()];
    let mut cells = vec![
        list(answer, "average")
            .iter()
            .map(|c| (c["complete"] == true).then(|| num(c, "rate")).flatten())
            .collect::<Vec<_>>(),
    ];
    for c in cohorts {
        rows.push(format!(
            "{} · {}",
            text(c, "cohort"),
            count(num(c, "size").unwrap_or(0.0))
        ));
        let start =
            valuetrace_model::time::parse_rfc3339(&format!("{}T00:00:00Z", text(c, "cohort")));
        cells.push(
            list(c, "periods")
                .iter()
                .map(|cell| retention_cell(start, period_ms, to, cell))
                .collect(),
        );
    }
    html! {
        p.note { "Cohorts by the " (period) " of each user's first event (any call or outcome; first in 30 days); a cell is the share of the cohort with an event in its " (period) " n after that first event. Cells of periods still running are partial (lower than they will end); blank: a period not reached yet, or still running with nobody back so far. Top row: complete cohorts only." }
        @if cohorts.is_empty() { (chart::empty()) } @else {
            (chart::heatmap("retention by cohort", &rows, &columns, &cells, &pct))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(method: &str, route: &str, requests: f64) -> Value {
        json!({"method": method, "route": route, "requests": requests, "direction": "inbound"})
    }

    #[test]
    fn the_default_funnel_is_the_storefront_when_there_is_one() {
        let endpoints = vec![
            endpoint("GET", "/healthz", 90_000.0),
            endpoint("GET", "/api/products/{id}", 70_000.0),
            endpoint("GET", "/api/search", 60_000.0),
            endpoint("GET", "/api/products", 20_000.0),
            endpoint("GET", "/api/cart", 9_000.0),
            endpoint("POST", "/api/cart/coupon", 3_000.0),
            endpoint("POST", "/api/cart/items", 8_000.0),
            endpoint("PUT", "/api/checkout/{id}/shipping", 4_000.0),
            endpoint("POST", "/api/checkout", 3_500.0),
            json!({"method": "POST", "route": "/v1/charges", "requests": 1e6, "direction": "outbound"}),
        ];
        assert_eq!(
            default_steps(&endpoints, Some("outcome:purchase")),
            [
                "GET /api/products/{id}",
                "POST /api/cart/items",
                "POST /api/checkout",
                "outcome:purchase"
            ]
        );
        assert_eq!(
            default_steps(&endpoints[..7], None),
            ["GET /api/products/{id}", "POST /api/cart/items"]
        );
    }

    #[test]
    fn without_a_storefront_the_default_funnel_is_the_busiest_routes() {
        let endpoints = vec![
            endpoint("GET", "/healthz", 90_000.0),
            endpoint("POST", "/v2/messages", 50_000.0),
            endpoint("GET", "/v2/models", 70_000.0),
            endpoint("GET", "/v2/usage", 1_000.0),
            endpoint("GET", "/v2/keys", 500.0),
        ];
        assert_eq!(
            default_steps(&endpoints, Some("outcome:purchase")),
            ["GET /v2/models", "POST /v2/messages", "GET /v2/usage"]
        );
        assert!(default_steps(&[], None).is_empty());
    }

    #[test]
    fn asked_steps_skip_empty_inputs_and_need_two() {
        assert_eq!(
            asked_steps(&["GET /a", " ", " POST /b "]).unwrap(),
            ["GET /a", "POST /b"]
        );
        assert_eq!(asked_steps(&["", ""]).unwrap(), Vec::<String>::new());
        assert!(asked_steps(&["GET /a"]).is_err());
        assert!(asked_steps(&["GET /a", "GET /b,c"]).is_err());
        assert!(asked_steps(&["x"; 7]).is_err());
    }

    #[test]
    fn retention_is_daily_below_two_weeks() {
        assert_eq!(retention_shape(7 * DAY_MS), ("day", DAY_MS, 7));
        assert_eq!(retention_shape(3_600_000), ("day", DAY_MS, 2));
        assert_eq!(retention_shape(14 * DAY_MS), ("week", 7 * DAY_MS, 2));
        assert_eq!(retention_shape(30 * DAY_MS), ("week", 7 * DAY_MS, 5));
        assert_eq!(retention_shape(400 * DAY_MS).2, 14);
    }

    #[test]
    fn retention_cells_not_yet_reached_are_blank() {
        let cell = |period: u32, actors: u32, complete: bool| json!({"period": period, "actors": actors, "rate": f64::from(actors) / 10.0, "complete": complete});
        let to = 10 * DAY_MS;
        assert_eq!(
            retention_cell(Some(8 * DAY_MS), DAY_MS, to, &cell(1, 4, false)),
            Some(0.4)
        );
        assert_eq!(
            retention_cell(Some(8 * DAY_MS), DAY_MS, to, &cell(2, 0, false)),
            None
        );
        // Over and nobody came back: a real zero.
        assert_eq!(
            retention_cell(Some(DAY_MS), DAY_MS, to, &cell(2, 0, true)),
            Some(0.0)
        );
        // Still running with nobody back yet: not known.
        assert_eq!(
            retention_cell(Some(DAY_MS), DAY_MS, to, &cell(8, 0, false)),
            None
        );
        assert_eq!(retention_cell(None, DAY_MS, to, &cell(3, 0, false)), None);
    }

    #[test]
    fn paths_are_flattened_depth_first_without_small_branches() {
        let tree = json!({"event": "A", "actors": 100, "dropped": 10, "share_of_parent": 1.0, "children": [
            {"event": "C", "actors": 20, "dropped": 20, "share_of_parent": 0.2, "children": []},
            {"event": "B", "actors": 60, "dropped": 5, "share_of_parent": 0.6, "children": [
                {"event": "D", "actors": 55, "dropped": 55, "share_of_parent": 0.92, "children": []}
            ]},
            {"event": "E", "actors": 1, "dropped": 1, "share_of_parent": 0.01, "children": []}
        ]});
        let rows = flatten_paths(&tree, 0.05, 4);
        let seen: Vec<(usize, &str)> = rows.iter().map(|r| (r.depth, r.event.as_str())).collect();
        assert_eq!(seen, [(0, "A"), (1, "B"), (2, "D"), (1, "C")]);
        assert_eq!(flatten_paths(&tree, 0.0, 1).len(), 3);
        assert!(flatten_paths(&Value::Null, 0.0, 4).is_empty());
    }
}
