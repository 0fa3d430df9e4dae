//! Alerts: what is firing or pending now, the rules, the recent history of transitions, active
//! silences, and the metric catalog with owners (and the metrics without data).

use super::Ctx;
use crate::format::{list, num, text, time};
use crate::layout::{failure, tile};
use maud::{Markup, html};
use serde_json::Value;

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

fn value(v: &Value) -> String {
    num(v, "value").map_or_else(
        || "–".to_owned(),
        |x| {
            if x.abs() >= 100.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.3}")
            }
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

pub async fn render(ctx: &Ctx<'_>) -> Markup {
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
    html! {
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
                (tile("Notifications waiting", &num(&s["outbox"], "pending").unwrap_or(0.0).to_string(), &format!("{} abandoned", num(&s["outbox"], "abandoned").unwrap_or(0.0))))
            }
        }
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
        section.card {
            h2 { "Rules" }
            @match &rules {
                Err(f) => (failure("The alert rules", f)),
                Ok(r) => table {
                    thead { tr { th data-sort { "Rule" } th data-sort { "Kind" } th { "Condition" } th { "For" } th data-sort { "Severity" } th { "Channels" } th { "Summary" } } }
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
