//! Alerts: what is firing or pending now, each rule's value over the range against its
//! threshold, the rules (each with a button that sends a test notification through its real
//! channels), notifications receivers refused or that wait for a retry, the recent history of
//! transitions, active silences, and the metric catalog with owners (and the metrics without
//! data).
//!
//! Notifications link here (`?rule=<rule>&from=&to=#rule-<rule>`): the rule's chart comes
//! first, marked, at the range of the incident.

use super::Ctx;
use crate::Dashboard;
use crate::chart::{self, Series};
use crate::filters::{Filters, encode};
use crate::format::{list, num, text, time};
use crate::layout::{failure, tile};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

fn labels(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// An alert's value; money in its currency (`€1,137`).
fn value(v: &Value) -> String {
    let currency = v.get("currency").and_then(Value::as_str);
    num(v, "value").map_or_else(
        || "–".to_owned(),
        |x| match currency {
            Some(code) => crate::format::money_in(x, Some(code)),
            None if x.abs() >= 100.0 => format!("{x:.0}"),
            None => format!("{x:.3}"),
        },
    )
}

/// The rule's condition in words.
fn condition(rule: &Value) -> String {
    let metric = text(rule, "metric");
    match text(rule, "kind") {
        "threshold" => format!(
            "{metric} {} {} over {}",
            text(rule, "op"),
            num(rule, "threshold").unwrap_or(0.0),
            text(rule, "window")
        ),
        "ratio_to_yesterday" => format!(
            "{metric} over {} below {} × yesterday",
            text(rule, "window"),
            num(rule, "below").unwrap_or(0.0)
        ),
        "seasonal" => format!(
            "{metric} outside {} × the same hour of the last {} days",
            rule["band"],
            num(rule, "days").unwrap_or(7.0)
        ),
        "burn_rate" => format!(
            "{} SLO {}% burning fast",
            text(rule, "sli"),
            num(rule, "objective").unwrap_or(0.0)
        ),
        other => other.to_owned(),
    }
}

/// `12.5`, `94`, `0.512`: the axis and hover labels of the rule charts.
fn plain(x: f64) -> String {
    if x.abs() >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// The element id of a rule's chart (notification links end with `#rule-<name>`).
fn anchor(rule: &str) -> String {
    format!("rule-{rule}")
}

/// One rule's value over the range (one line per series) and its bounds as flat lines.
async fn rule_chart(ctx: &Ctx<'_>, rule: &Value) -> Markup {
    let name = text(rule, "name");
    let answer = ctx
        .get(
            &format!("alerts/series/{}", encode(name)),
            &ctx.filters.range_query(&[("points", "48")]),
        )
        .await;
    let selected = ctx.param("rule") == name;
    html! {
        div id=(anchor(name)) class=(if selected { "rule-chart selected" } else { "rule-chart" }) {
            h3 { (name) " " span.note { (condition(rule)) } }
            @match &answer {
                Err(f) => (failure("This rule's values", f)),
                Ok(a) => {
                    @let lines = rule_lines(a);
                    @if lines.is_empty() {
                        p.empty { "No value in this range." @if let Some(e) = a["error"].as_str() { " " (e) } }
                    } @else {
                        (chart::lines(&format!("{name}: value against its threshold"), &lines, &plain))
                        @let hidden = list(a, "series").len().saturating_sub(MAX_LINES);
                        @if hidden > 0 { p.note { (hidden) " more series not drawn (the " (MAX_LINES) " that came closest to their bound are)." } }
                    }
                }
            }
            (send_button(ctx, name))
        }
    }
}

/// Value lines drawn per rule (a per-route burn-rate rule has one per route and window pair):
/// the ones that came closest to their bound.
const MAX_LINES: usize = 6;

/// How close a series came to (or how far past) its first bound: its peak ÷ the bound.
fn closeness(series: &Value) -> f64 {
    let peak = list(series, "points")
        .iter()
        .filter_map(|p| p.get(1).and_then(Value::as_f64))
        .fold(f64::NEG_INFINITY, f64::max);
    let bound = list(series, "bounds")
        .first()
        .and_then(|b| num(b, "value"))
        .filter(|b| *b != 0.0)
        .unwrap_or(1.0);
    peak / bound
}

/// The value lines of a `alerts/series` answer (at most [`MAX_LINES`]), then one flat line per
/// bound.
fn rule_lines(answer: &Value) -> Vec<Series> {
    let mut lines = Vec::new();
    let mut bounds = Vec::new();
    let mut ranked: Vec<&Value> = list(answer, "series").iter().collect();
    ranked.sort_by(|a, b| closeness(b).total_cmp(&closeness(a)));
    ranked.truncate(MAX_LINES);
    for (index, series) in ranked.into_iter().enumerate() {
        let points: Vec<(i64, Option<f64>)> = list(series, "points")
            .iter()
            .filter_map(|p| Some((p.get(0)?.as_i64()?, p.get(1).and_then(Value::as_f64))))
            .collect();
        if points.iter().all(|(_, y)| y.is_none()) {
            continue;
        }
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            continue;
        };
        let (first, last) = (first.0, last.0);
        let label = labels(&series["labels"]);
        let name = if label.is_empty() {
            "value".to_owned()
        } else {
            label.clone()
        };
        for bound in list(series, "bounds") {
            if let Some(value) = num(bound, "value") {
                let name = text(bound, "name").to_owned();
                if !bounds.iter().any(|(n, v, _, _)| *n == name && *v == value) {
                    bounds.push((name, value, first, last));
                }
            }
        }
        lines.push(Series {
            name,
            color: [
                chart::BLUE,
                chart::GREEN,
                chart::PURPLE,
                chart::SKY,
                chart::ORANGE,
                chart::GREY,
            ][index % MAX_LINES],
            points,
        });
    }
    for (name, value, first, last) in bounds {
        lines.push(Series {
            name: format!("threshold {name}"),
            color: chart::RED,
            points: vec![(first, Some(value)), (last, Some(value))],
        });
    }
    lines
}

/// The form that sends a test notification of `rule` (a POST: it acts; no JavaScript).
fn send_button(ctx: &Ctx<'_>, rule: &str) -> Markup {
    html! {
        form.inline method="post" action=(ctx.link("alerts/test", &[])) {
            input type="hidden" name="rule" value=(rule);
            button type="submit" title="Sends a notification marked as a test through this rule's channels and shows what each receiver answered" { "Send a test notification" }
        }
    }
}

/// The receivers' answers to a test notification.
fn sent(rule: &str, answer: &Result<Value, crate::api::Failure>) -> Markup {
    html! {
        section.card.test-result role="status" {
            h2 { "Test notification of " (rule) }
            @match answer {
                Err(f) => div.error role="alert" { "Not sent: " (f.message) },
                Ok(a) => {
                    @if a["dry_run"] == true {
                        p.note { "Dry run (alerts.dry_run = true): notifications are logged, not sent." }
                    } @else if a["ok"] == true {
                        p { "Every receiver accepted it." }
                    } @else {
                        div.error role="alert" { "Not every receiver accepted it: see their answers below." }
                    }
                    table {
                        thead { tr { th { "Channel" } th { "Kind" } th { "Sent" } th { "Answer" } th { "Receiver said" } } }
                        tbody {
                            @for r in list(a, "results") {
                                tr {
                                    td { (text(r, "channel")) }
                                    td { (text(r, "kind")) }
                                    td { (text(r, "action")) }
                                    td {
                                        @match num(r, "status") {
                                            Some(status) => span class=(if r["ok"] == true { "badge resolved" } else { "badge firing" }) { "HTTP " (status) } ,
                                            None => span.badge.firing { (text(r, "error")) },
                                        }
                                    }
                                    td { code { (text(r, "body")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Notifications a receiver refused for good, and those waiting for a retry with the last
/// error (empty when deliveries are fine).
fn delivery_problems(states: &Value) -> Markup {
    let outbox = &states["outbox"];
    let rejections = list(outbox, "rejections");
    let waiting: Vec<&Value> = list(outbox, "waiting")
        .iter()
        .filter(|w| !text(w, "last_error").is_empty())
        .collect();
    if rejections.is_empty() && waiting.is_empty() {
        return html! {};
    }
    html! {
        section.card {
            h2 { "Delivery problems" }
            p.note { "A receiver that answers a 4xx other than 408 or 429 refuses the notification for good: it is not retried. Fix the channel (URL, key, payload), then send a test notification." }
            table {
                thead { tr { th { "When" } th { "Channel" } th { "Status" } th.num { "Attempts" } th { "Receiver's answer" } } }
                tbody {
                    @for r in rejections {
                        tr {
                            td { (time(num(r, "at").unwrap_or(0.0) as i64)) }
                            td { (text(r, "channel")) }
                            td { span.badge.firing { "refused, not retried" } }
                            td.num { (num(r, "attempts").unwrap_or(0.0)) }
                            td { code { (text(r, "error")) } }
                        }
                    }
                    @for w in &waiting {
                        tr {
                            td { (time(num(w, "created_at").unwrap_or(0.0) as i64)) }
                            td { (text(w, "channel")) }
                            td { span.badge.pending { "retrying" } }
                            td.num { (num(w, "attempts").unwrap_or(0.0)) }
                            td { code { (text(w, "last_error")) } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    render_with(ctx, None).await
}

/// The page, with the answer to a test notification on top when one was just sent.
pub async fn render_with(ctx: &Ctx<'_>, notice: Option<Markup>) -> Markup {
    let (rules, states, history, orphans) = tokio::join!(
        ctx.get("alerts/rules", ""),
        ctx.get("alerts/states", ""),
        ctx.get("alerts/history", "limit=100"),
        ctx.get("metrics/orphans", ""),
    );
    let states_list: Vec<&Value> = states
        .as_ref()
        .map(|s| list(s, "states").iter().collect())
        .unwrap_or_default();
    let firing = states_list
        .iter()
        .filter(|s| text(s, "phase") == "firing")
        .count();
    let pending = states_list
        .iter()
        .filter(|s| text(s, "phase") == "pending")
        .count();
    let mut active: Vec<&&Value> = states_list
        .iter()
        .filter(|s| matches!(text(s, "phase"), "firing" | "pending"))
        .collect();
    active.sort_by_key(|s| (text(s, "phase") != "firing", text(s, "rule").to_owned()));
    let mut chart_rules: Vec<&Value> = rules
        .as_ref()
        .map(|r| {
            list(r, "rules")
                .iter()
                .map(|entry| &entry["rule"])
                .collect()
        })
        .unwrap_or_default();
    // The rule a notification linked to comes first.
    chart_rules.sort_by_key(|rule| text(rule, "name") != ctx.param("rule"));
    let mut charts = Vec::with_capacity(chart_rules.len());
    for rule in chart_rules {
        charts.push(rule_chart(ctx, rule).await);
    }
    html! {
        style { ".rule-chart.selected{outline:2px solid #D55E00;outline-offset:6px;border-radius:4px} form.inline{display:inline;margin:0}" }
        @if let Some(notice) = notice { (notice) }
        div.tiles {
            div.tile.north {
                div.tile-label { "Firing now" }
                div.tile-value class=(if firing > 0 { "down" } else { "up" }) { (firing) }
                div.tile-detail { (pending) " pending" }
            }
            @if let Ok(r) = &rules {
                (tile("Rules", &list(r, "rules").len().to_string(), if r["dry_run"] == true { "dry run: notifications are logged, not sent" } else { "" }))
                (tile("Catalog metrics", &list(r, "metrics").len().to_string(), ""))
            }
            @if let Ok(s) = &states {
                (tile("Notifications waiting", &num(&s["outbox"], "pending").unwrap_or(0.0).to_string(), &format!("{} abandoned, {} refused by the receiver", num(&s["outbox"], "abandoned").unwrap_or(0.0), num(&s["outbox"], "rejected").unwrap_or(0.0))))
            }
        }
        @if let Ok(s) = &states { (delivery_problems(s)) }
        section.card {
            h2 { "Firing and pending" }
            @match &states {
                Err(f) => (failure("The alert states", f)),
                Ok(_) if active.is_empty() => p.empty { "Nothing is firing or pending. All quiet." },
                Ok(_) => table {
                    thead { tr { th { "State" } th { "Rule" } th { "Severity" } th { "Labels" } th.num { "Value" } th { "Threshold" } th { "Since" } th { "Silenced" } } }
                    tbody {
                        @for s in &active {
                            tr {
                                td { span class=(format!("badge {}", text(s, "phase"))) { (text(s, "phase")) } }
                                td { strong { (text(s, "rule")) } }
                                td { (text(s, "severity")) }
                                td { (labels(&s["labels"])) }
                                td.num { (value(s)) }
                                td { (text(s, "threshold")) }
                                td { (num(s, "fired_at").or(num(s, "active_since")).map_or_else(|| "–".to_owned(), |t| time(t as i64))) }
                                td { @if s["silenced"] == true { "yes" } @else { "no" } }
                            }
                        }
                    }
                },
            }
        }
        @if !charts.is_empty() {
            section.card {
                h2 { "Each rule against its threshold" }
                p.note { "The value each rule judges, evaluated as the alert engine does at evenly spaced times of the range, and the bound it is compared with (red)." }
                @for c in &charts { (c) }
            }
        }
        section.card {
            h2 { "Rules" }
            @match &rules {
                Err(f) => (failure("The alert rules", f)),
                Ok(r) => table {
                    thead { tr { th data-sort { "Rule" } th data-sort { "Kind" } th { "Condition" } th { "For" } th data-sort { "Severity" } th { "Channels" } th { "Summary" } th { "Test" } } }
                    tbody {
                        @for entry in list(r, "rules") {
                            @let rule = &entry["rule"];
                            tr {
                                td { strong { (text(rule, "name")) } }
                                td { (text(rule, "kind")) }
                                td { (condition(rule)) }
                                td { (text(rule, "for")) }
                                td { (text(rule, "severity")) }
                                td { (list(entry, "channels").iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) }
                                td {
                                    (text(rule, "summary"))
                                    @if !text(rule, "runbook").is_empty() { " " a href=(text(rule, "runbook")) { "runbook" } }
                                }
                                td { (send_button(ctx, text(rule, "name"))) }
                            }
                        }
                    }
                },
            }
        }
        section.card {
            h2 { "History" }
            p.note { "The last 100 transitions, newest first." }
            @match &history {
                Err(f) => (failure("The alert history", f)),
                Ok(h) if list(h, "transitions").is_empty() => p.empty { "No transitions yet." },
                Ok(h) => table {
                    thead { tr { th { "When" } th { "Rule" } th { "Labels" } th { "From" } th { "To" } th.num { "Value" } th { "Threshold" } } }
                    tbody {
                        @for t in list(h, "transitions") {
                            tr {
                                td { (time(num(t, "at").unwrap_or(0.0) as i64)) }
                                td { (text(t, "rule")) }
                                td { (labels(&t["labels"])) }
                                td { (text(t, "from")) }
                                td { span class=(format!("badge {}", text(t, "to"))) { (text(t, "to")) } }
                                td.num { (value(t)) }
                                td { (text(t, "threshold")) }
                            }
                        }
                    }
                },
            }
        }
        section.card {
            h2 { "Metric catalog" }
            @match &rules {
                Err(f) => (failure("The metric catalog", f)),
                Ok(r) => table {
                    thead { tr { th data-sort { "Metric" } th data-sort { "Owner" } th data-sort { "Kind" } th { "Unit" } th data-sort { "Criticality" } th { "Description" } th { "Docs" } } }
                    tbody {
                        @for m in list(r, "metrics") {
                            tr {
                                td { code { (text(m, "name")) } }
                                td { (text(m, "owner")) }
                                td { (text(m, "kind")) }
                                td { (text(m, "unit")) }
                                td { (text(m, "criticality")) }
                                td { (text(m, "description")) }
                                td { @if !text(m, "docs").is_empty() { a href=(text(m, "docs")) { "docs" } } }
                            }
                        }
                    }
                },
            }
            @if let Ok(o) = &orphans {
                @let orphan_list = list(o, "orphans");
                @if !orphan_list.is_empty() {
                    h3 { "Metrics without data" }
                    ul { @for m in orphan_list { li { code { (text(m, "name")) } " (owner " (text(m, "owner")) ")" } } }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct TestForm {
    rule: String,
}

/// `POST /p/{project}/alerts/test` (the button): sends a test notification of the rule through
/// the API (`alerts/test/{rule}/send`, the session's key) and shows the Alerts page with each
/// receiver's answer on top. The session cookie is `SameSite=Strict`, and a cross-site
/// `Origin` is refused, so another site cannot make a signed-in browser send one.
pub async fn send_test(
    State(state): State<Arc<Dashboard>>,
    Path(project): Path<String>,
    Query(filters): Query<Filters>,
    headers: HeaderMap,
    Form(form): Form<TestForm>,
) -> Response {
    let Some((_, session)) = crate::session(&state, &headers).filter(|(_, s)| s.project == project)
    else {
        let next = format!("/p/{}/alerts", encode(&project));
        let login = format!("/login?project={}&next={}", encode(&project), encode(&next));
        return Redirect::to(&login).into_response();
    };
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let path = format!(
        "/api/v1/projects/{}/alerts/test/{}/send",
        encode(&project),
        encode(&form.rule)
    );
    let answer = state.api.post(&session.key, &path).await;
    let (extra, pairs) = (std::collections::HashMap::new(), Vec::new());
    let ctx = Ctx {
        api: &state.api,
        key: &session.key,
        project: &project,
        filters: &filters,
        params: &extra,
        pairs: &pairs,
        deadline: std::time::Instant::now() + state.memory.render_budget(),
        pending: Default::default(),
    };
    let body = render_with(&ctx, Some(sent(&form.rule, &answer))).await;
    let choices = ctx.choices().await;
    let markup = crate::layout::page(&project, "alerts", &filters, &choices, body, false);
    let mut response = Html(markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// Whether the request comes from a page of this dashboard. Browsers say so in
/// `Sec-Fetch-Site`; without it, an `Origin` must name the host asked (`Host`, or
/// `X-Forwarded-Host` behind a proxy that rewrites `Host`). A request with neither is not a
/// browser's cross-site form post (the session cookie is `SameSite=Strict` anyway).
fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = value("origin") else {
        return true;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    [value("host"), value("x-forwarded-host")]
        .into_iter()
        .flatten()
        .any(|host| !host.is_empty() && origin_host.eq_ignore_ascii_case(host))
}
