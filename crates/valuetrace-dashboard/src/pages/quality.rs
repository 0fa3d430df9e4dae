//! Data Quality: can the numbers on the other pages be trusted? Ingest volume per hour, rejects
//! by reason, duplicates (retries the server recognised), clock-skew corrections, late and
//! clamped events, the sampling rates in effect (answers re-weight sampled events and say so)
//! and the schema versions and SDKs seen. From the server's per-project quality ledger
//! (`/data-quality`), counted at ingest by receive time.

use super::Ctx;
use crate::chart::{self, Bar, Segment, Series};
use crate::format::{count, list, ms, num, pct, text};
use crate::layout::{failure, tile};
use maud::{Markup, html};
use serde_json::Value;

pub async fn render(ctx: &Ctx<'_>) -> Markup {
    // The ledger is per project and time only: the slice filters do not apply.
    let answer = ctx.get("data-quality", &ctx.filters.range_query(&[])).await;
    let q = match answer {
        Ok(q) => q,
        Err(f) => return failure("The data-quality answer", &f),
    };
    let totals = &q["totals"];
    let total = |field: &str| num(totals, field).unwrap_or(0.0);
    let received = total("received");
    let share = |n: f64| {
        if received > 0.0 {
            pct(n / received)
        } else {
            "–".into()
        }
    };
    let hours = list(&q, "hours");
    let series = |field: &str| -> Vec<(i64, Option<f64>)> {
        hours
            .iter()
            .map(|h| (num(h, "hour").unwrap_or(0.0) as i64, num(h, field)))
            .collect()
    };
    let slice_set = crate::filters::SLICE
        .iter()
        .any(|name| !ctx.filters.slice_value(name).is_empty());
    html! {
        @if slice_set {
            p.note { "Quality is counted per project at ingest: the plan, segment, variant and service filters do not apply on this page." }
        }
        div.tiles {
            div.tile.north {
                div.tile-label { "Accepted" }
                div.tile-value { (count(total("accepted"))) }
                div.tile-detail { (share(total("accepted"))) " of " (count(received)) " received" }
            }
            (tile("Rejected", &count(total("rejected")), &format!("{} of received", share(total("rejected")))))
            (tile("Duplicates", &count(total("duplicates")), "retries recognised by event id, counted once"))
            (tile("Skew corrected", &count(total("skew_corrected")), &format!("median {} · max {}", ms(num(&q["skew"], "median_abs_ms").unwrap_or(0.0)), ms(num(&q["skew"], "max_abs_ms").unwrap_or(0.0)))))
            (tile("Late", &count(total("late")), "arrived over 5 min after their time (imports and backfills count here)"))
            (tile("Clamped", &count(total("clamped")), "timestamps too far in the future"))
            (tile("Sampled", &pct(num(&q, "sampled_share").unwrap_or(0.0)), "of API calls carry sample_rate < 1"))
        }
        (unconverted(&q))
        section.card {
            h2 { "Ingest volume per hour" }
            (chart::lines("events per hour", &[
                Series { name: "accepted".into(), color: chart::BLUE, points: series("accepted") },
                Series { name: "rejected".into(), color: chart::RED, points: series("rejected") },
                Series { name: "duplicates".into(), color: chart::ORANGE, points: series("duplicates") },
                Series { name: "late".into(), color: chart::PURPLE, points: series("late") },
            ], &crate::format::tick))
        }
        div.grid2 {
            section.card {
                h2 { "Rejects by reason" }
                p.note { "The field that broke a rule (or json, size); each rejected event got an error naming it and its index, and the valid events of its batch were kept." }
                (reasons(list(&q, "rejects_by_reason")))
            }
            section.card {
                h2 { "Events by type" }
                (counts_table(list(&q, "events_by_type"), "type", "Type"))
                h3 { "Schema versions" }
                (counts_table(list(&q, "schema_versions"), "version", "Version"))
                h3 { "SDKs" }
                (counts_table(list(&q, "sdks"), "sdk", "SDK"))
            }
        }
        section.card {
            h2 { "Sampling rates in effect" }
            p.note { "API calls by the sample_rate they carried. Answers re-weight sampled calls by 1/rate and mark themselves as estimates." }
            (chart::hbars("events per sample rate", &list(&q, "sample_rates").iter().map(|r| {
                let rate = num(r, "rate").unwrap_or(1.0);
                let events = num(r, "events").unwrap_or(0.0);
                Bar {
                    label: format!("rate {rate}"),
                    note: count(events),
                    segments: vec![Segment { value: events, color: if rate < 1.0 { chart::ORANGE } else { chart::BLUE }, title: format!("{} events kept at rate {rate} (each counts as {:.0})", count(events), 1.0 / rate.max(1e-9)) }],
                    href: None,
                }
            }).collect::<Vec<_>>()))
        }
    }
}

fn reasons(rows: &[Value]) -> Markup {
    if rows.is_empty() {
        return html! { p.empty { "No event was rejected in this range." } };
    }
    chart::hbars(
        "rejected events by reason",
        &rows
            .iter()
            .map(|r| {
                let events = num(r, "events").unwrap_or(0.0);
                Bar {
                    label: text(r, "reason").to_owned(),
                    note: count(events),
                    segments: vec![Segment {
                        value: events,
                        color: chart::RED,
                        title: format!("{} rejected", count(events)),
                    }],
                    href: None,
                }
            })
            .collect::<Vec<_>>(),
    )
}

fn counts_table(rows: &[Value], field: &str, head: &str) -> Markup {
    if rows.is_empty() {
        return html! { p.empty { "None in this range." } };
    }
    html! {
        table {
            thead { tr { th { (head) } th.num { "Events" } } }
            tbody {
                @for r in rows {
                    tr {
                        td { (r.get(field).map_or_else(String::new, |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))) }
                        td.num { (count(num(r, "events").unwrap_or(0.0))) }
                    }
                }
            }
        }
    }
}

/// Values in a currency without a rate: left out of every money figure, so listed here.
fn unconverted(q: &Value) -> Markup {
    let apart = list(&q["money"], "unconverted");
    if apart.is_empty() {
        return html! {};
    }
    html! {
        section.card {
            h2 { "Values in currencies without a rate" }
            p.note {
                "Money on every page is in " (text(&q["money"], "currency"))
                ". These values are in no figure until their currency gets a rate in "
                code { "[projects.analysis.currency_rates]" } "."
            }
            table {
                thead { tr { th { "Currency" } th.num { "Events" } th.num { "Value (in that currency)" } } }
                tbody {
                    @for row in apart {
                        tr {
                            td { (text(row, "currency")) }
                            td.num { (count(num(row, "events").unwrap_or(0.0))) }
                            td.num { (format!("{:.2}", num(row, "value").unwrap_or(0.0))) }
                        }
                    }
                }
            }
        }
    }
}
