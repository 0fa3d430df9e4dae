//! Tables for the business answers of `valuetrace query impact|errors|integrations|gaps|
//! latency-conversion|scorecard|priority` (the JSON shapes are `valuetrace_insights`' answers).

use super::output::Output;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

pub(super) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        // A whole number the server sent as a float (an estimated count) reads as one: `14`,
        // not `14.0`.
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A count: a whole number with thousands separators (estimates are rounded), `–` if missing.
pub(super) fn count(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |n| group_thousands(n.round(), 0))
}

/// Milliseconds as a short duration a person reads at a glance: 850 ms, 42 s, 3.5 min, 2.1 h,
/// 1.5 d (never `98956 s`); `–` if missing.
pub(super) fn duration_text(value: &Value) -> String {
    value.as_f64().map_or_else(
        || "–".to_owned(),
        |ms| match ms {
            ms if ms < 1_000.0 => format!("{ms:.0} ms"),
            ms if ms < 60_000.0 => format!("{:.0} s", ms / 1_000.0),
            ms if ms < 3_600_000.0 => format!("{:.1} min", ms / 60_000.0),
            ms if ms < 86_400_000.0 => format!("{:.1} h", ms / 3_600_000.0),
            ms => format!("{:.1} d", ms / 86_400_000.0),
        },
    )
}

pub(super) fn num(value: &Value, decimals: usize) -> Cell {
    let text = value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |n| group_thousands(n, decimals));
    Cell::new(text).set_alignment(CellAlignment::Right)
}

pub(super) fn pct(value: &Value) -> Cell {
    let text = value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |s| format!("{:.1}%", s * 100.0));
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// A row's `users`, marked by how it was obtained: `≈1,234` for an estimate from the SDKs'
/// sketches, `≥25` for a lower bound (sampled calls no aggregate counted).
fn users(row: &Value) -> Cell {
    let n = group_thousands(row["users"].as_f64().unwrap_or(0.0), 0);
    let text = match row["users_kind"].as_str() {
        Some("estimate") => format!("≈{n}"),
        Some("lower_bound") => format!("≥{n}"),
        _ => n,
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// A row's `adoption`, with its 95% interval when the users are an estimate.
fn adoption(row: &Value) -> Cell {
    let ci = row["adoption_ci95"].as_array();
    let text = match (
        row["adoption"].as_f64(),
        ci.map(|c| (c[0].as_f64(), c[1].as_f64())),
    ) {
        (Some(a), Some((Some(lo), Some(hi)))) => {
            format!("≈{:.1}% [{:.1}–{:.1}]", a * 100.0, lo * 100.0, hi * 100.0)
        }
        (Some(a), _) => format!("{:.1}%", a * 100.0),
        (None, _) => "–".into(),
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

fn pp(value: &Value) -> Cell {
    let text = value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |p| format!("{p:+.1} pp"));
    Cell::new(text).set_alignment(CellAlignment::Right)
}

fn rate_ci(rate: &Value) -> Cell {
    let text = match (
        rate["rate"].as_f64(),
        rate["ci_low"].as_f64(),
        rate["ci_high"].as_f64(),
    ) {
        (Some(r), Some(lo), Some(hi)) => {
            format!("{:.1}% [{:.1}–{:.1}]", r * 100.0, lo * 100.0, hi * 100.0)
        }
        _ => "–".into(),
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

pub(crate) fn group_thousands(n: f64, decimals: usize) -> String {
    let text = format!("{n:.decimals$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn endpoint(row: &Value) -> String {
    match row["group"].as_str() {
        Some(group) => format!("{} [{group}]", text(&row["endpoint"])),
        None => text(&row["endpoint"]),
    }
}

fn rows(answer: &Value, field: &str) -> Vec<Value> {
    answer[field].as_array().cloned().unwrap_or_default()
}

pub fn print_impact(answer: &Value, limit: usize, out: &mut Output) {
    let mut t = table(&[
        "endpoint",
        "score",
        "quadrant",
        "value",
        "direct",
        "assisted",
        "users",
        "adoption",
        "Δ adoption",
        "calls/user",
        "success",
        "cost",
        "value/cost",
    ]);
    let model = text(&answer["model"]);
    for row in rows(answer, "rows").iter().take(limit) {
        t.add_row(vec![
            Cell::new(endpoint(row)),
            num(&row["score"], 2),
            Cell::new(text(&row["quadrant"])),
            num(&row["attributed_value"], 0),
            num(&row["direct_value"], 0),
            num(&row["assisted_value"][model.as_str()], 0),
            users(row),
            adoption(row),
            pp(&row["adoption_change_pp"]),
            num(&row["calls_per_user"], 1),
            pct(&row["success_rate"]),
            num(&row["cost"], 2),
            num(&row["cost_efficiency"], 1),
        ]);
    }
    out.table("impact", t);
    out.line(format!(
        "model {model} · window {} h · active users {} · conversions {} · calls per conversion {} · attributed {} · unattributed {}{}",
        answer["attribution_window_ms"].as_f64().unwrap_or(0.0) / 3_600_000.0,
        match answer["active_users_kind"].as_str() {
            Some("estimate") => format!("≈{}", count(&answer["active_users"])),
            Some("lower_bound") => format!("≥{}", count(&answer["active_users"])),
            _ => count(&answer["active_users"]),
        },
        count(&answer["conversions"]),
        answer["session_quality"]
            .as_f64()
            .map_or("–".into(), |q| format!("{q:.1}")),
        group_thousands(
            answer["attributed_outcome_value"].as_f64().unwrap_or(0.0),
            0
        ),
        group_thousands(
            answer["unattributed_outcome_value"].as_f64().unwrap_or(0.0),
            0
        ),
        if answer["estimate"].as_bool() == Some(true) {
            " · sampled data: estimates"
        } else {
            ""
        },
    ));
    out.line(
        "score = (0.6·value share + 0.4·user share) ÷ cost share; 1 = pulls exactly its share of cost"
    );
}

pub fn print_errors(answer: &Value, out: &mut Output) {
    out.line(format!(
        "{} failed of {} calls ({}) · unknown {} of failures · value at risk {}",
        group_thousands(answer["failed"].as_f64().unwrap_or(0.0), 0),
        group_thousands(answer["calls"].as_f64().unwrap_or(0.0), 0),
        answer["error_rate"]
            .as_f64()
            .map_or("–".into(), |r| format!("{:.2}%", r * 100.0)),
        answer["unknown_share"]
            .as_f64()
            .map_or("–".into(), |r| format!("{:.1}%", r * 100.0)),
        group_thousands(answer["value_at_risk"].as_f64().unwrap_or(0.0), 0),
    ));
    let mut t = table(&[
        "class",
        "calls",
        "share",
        "users",
        "sessions",
        "value at risk",
    ]);
    for row in rows(answer, "classes") {
        let class = match row["group"].as_str() {
            Some(group) => format!("{} [{group}]", text(&row["class"])),
            None => text(&row["class"]),
        };
        t.add_row(vec![
            Cell::new(class),
            num(&row["calls"], 0),
            pct(&row["share"]),
            num(&row["users"], 0),
            num(&row["sessions"], 0),
            num(&row["value_at_risk"], 0),
        ]);
    }
    out.table("classes", t);
    let s = &answer["sessions"];
    let mut t = table(&[
        "lost conversions by endpoint",
        "sessions w/ failure",
        "conv. w/ failure",
        "conv. w/o",
        "lost",
        "lost value",
    ]);
    for row in rows(s, "by_endpoint").iter().take(8) {
        t.add_row(vec![
            Cell::new(text(&row["endpoint"])),
            num(&row["sessions_with_failure"], 0),
            rate_ci(&row["conversion_with_failure"]),
            rate_ci(&row["conversion_without_failure"]),
            num(&row["lost_conversions"], 1),
            num(&row["lost_value"], 0),
        ]);
    }
    out.table("lost_conversions", t);
    out.line(format!(
        "{} lost conversions ≈ {} lost value (sessions with any error convert {} vs {} without: longer sessions meet more errors)",
        group_thousands(s["lost_conversions"].as_f64().unwrap_or(0.0), 1),
        group_thousands(s["lost_value"].as_f64().unwrap_or(0.0), 0),
        text_rate(&s["conversion_with_error"]),
        text_rate(&s["conversion_without_error"]),
    ));
    let mut t = table(&[
        "top patterns by value at risk",
        "class",
        "plan",
        "segment",
        "provider",
        "calls",
        "users",
        "value at risk",
    ]);
    for row in rows(answer, "patterns").iter().take(10) {
        t.add_row(vec![
            Cell::new(text(&row["endpoint"])),
            Cell::new(text(&row["class"])),
            Cell::new(text(&row["plan"])),
            Cell::new(text(&row["segment"])),
            Cell::new(text(&row["provider"])),
            num(&row["calls"], 0),
            num(&row["users"], 0),
            num(&row["value_at_risk"], 0),
        ]);
    }
    out.table("patterns", t);
    let trend: Vec<String> = rows(answer, "unknown_trend")
        .iter()
        .map(|p| {
            p["unknown_share"]
                .as_f64()
                .map_or("–".into(), |s| format!("{:.1}", s * 100.0))
        })
        .collect();
    out.line(format!("unknown share per bucket (%): {}", trend.join(" ")));
}

fn text_rate(rate: &Value) -> String {
    rate["rate"]
        .as_f64()
        .map_or("–".into(), |r| format!("{:.1}%", r * 100.0))
}

pub fn print_integrations(answer: &Value, out: &mut Output) {
    let mut t = table(&[
        "provider",
        "calls",
        "success rate [95% CI]",
        "p50 ms",
        "p95 ms",
        "errors",
        "conv. w/ failure",
        "conv. w/o",
        "gap",
    ]);
    for row in rows(answer, "providers") {
        let provider = match row["group"].as_str() {
            Some(group) => format!("{} [{group}]", text(&row["provider"])),
            None => text(&row["provider"]),
        };
        let classes = row["error_classes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {}", text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        t.add_row(vec![
            Cell::new(provider),
            num(&row["calls"], 0),
            rate_ci(&row["success_rate"]),
            num(&row["p50_ms"], 0),
            num(&row["p95_ms"], 0),
            Cell::new(classes),
            rate_ci(&row["conversion_with_failure"]),
            rate_ci(&row["conversion_without_failure"]),
            pp(&row["conversion_gap_pp"]),
        ]);
    }
    out.table("providers", t);
}

pub fn print_gaps(answer: &Value, out: &mut Output) {
    let mut t = table(&[
        "pair",
        "started",
        "completed",
        "pending",
        "gaps",
        "gap rate",
        "p50 s",
        "p95 s",
        "oldest unmatched (UTC)",
    ]);
    let mut add = |label: String, c: &Value| {
        t.add_row(vec![
            Cell::new(label),
            num(&c["started"], 0),
            num(&c["completed"], 0),
            num(&c["pending"], 0),
            num(&c["gaps"], 0),
            pct(&c["gap_rate"]),
            num(
                &c["completion_p50_ms"]
                    .as_f64()
                    .map_or(Value::Null, |v| (v / 1000.0).into()),
                1,
            ),
            num(
                &c["completion_p95_ms"]
                    .as_f64()
                    .map_or(Value::Null, |v| (v / 1000.0).into()),
                1,
            ),
            Cell::new(
                c["oldest_unmatched"]
                    .as_i64()
                    .map(valuetrace_model::time::format_rfc3339)
                    .unwrap_or_else(|| "–".into()),
            ),
        ]);
    };
    for row in rows(answer, "gaps") {
        add(
            format!(
                "{}: {} → {} ({})",
                text(&row["name"]),
                text(&row["start"]),
                text(&row["end"]),
                text(&row["match_by"])
            ),
            &row,
        );
        if let Some(groups) = row["groups"].as_object() {
            for (group, counts) in groups {
                add(format!("  [{group}]"), counts);
            }
        }
    }
    out.table("gaps", t);
}

pub fn print_latency(answer: &Value, out: &mut Output) {
    out.line(format!(
        "{} → {} ({})",
        text(&answer["route"]),
        text(&answer["outcome"]),
        rows(answer, "endpoints")
            .iter()
            .map(text)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut t = table(&[
        "latency bucket",
        "sessions",
        "conversions",
        "conversion [95% CI]",
        "",
    ]);
    let best = answer["best_bucket_from_ms"].as_f64();
    for row in rows(answer, "buckets") {
        let range = match row["to_ms"].as_f64() {
            Some(to) => format!("{}–{} ms", text(&row["from_ms"]), to),
            None => format!("≥ {} ms", text(&row["from_ms"])),
        };
        let label = match row["group"].as_str() {
            Some(group) => format!("{range} [{group}]"),
            None => range,
        };
        let mut marks = Vec::new();
        if row["low_sample"].as_bool() == Some(true) {
            marks.push("low sample");
        }
        if row["group"].is_null() && best == row["from_ms"].as_f64() {
            marks.push("best");
        }
        t.add_row(vec![
            Cell::new(label),
            num(&row["sessions"], 0),
            num(&row["conversions"], 0),
            rate_ci(&row["conversion"]),
            Cell::new(marks.join(", ")),
        ]);
    }
    out.table("buckets", t);
    out.line(format!(
        "above {} ms: {} sessions convert {} vs {} below → value at risk {}",
        text(&answer["threshold_ms"]),
        count(&answer["sessions_above_threshold"]),
        text_rate(&answer["conversion_above_threshold"]),
        text_rate(&answer["conversion_below_threshold"]),
        match answer["value_at_risk"].as_f64() {
            Some(value) => group_thousands(value, 0),
            None => format!(
                "– (fewer than {} sessions on a side of the threshold)",
                text(&answer["min_bucket_sessions"])
            ),
        },
    ));
}

pub fn print_scorecard(answer: &Value, limit: usize, out: &mut Output) {
    let mut t = table(&[
        "endpoint",
        "BRIDGE",
        "B value",
        "R adoption",
        "I value/cost",
        "D 4xx · TTFS",
        "G Δ adoption",
        "E value at risk",
    ]);
    let grade = |p: &Value| text(&p["grade"]);
    for row in rows(answer, "rows").iter().take(limit) {
        let ttfs = duration_text(&row["time_to_first_success_ms"]);
        t.add_row(vec![
            Cell::new(endpoint(row)),
            num(&row["bridge_score"], 0),
            Cell::new(format!(
                "{} {}",
                grade(&row["business_impact"]),
                group_thousands(row["attributed_value"].as_f64().unwrap_or(0.0), 0)
            )),
            Cell::new(format!(
                "{} {}",
                grade(&row["real_engagement"]),
                row["adoption"]
                    .as_f64()
                    .map_or("–".into(), |a| format!("{:.1}%", a * 100.0))
            )),
            Cell::new(format!(
                "{} {}",
                grade(&row["infrastructure_roi"]),
                row["infrastructure_roi"]["value"]
                    .as_f64()
                    .map_or("–".into(), |v| format!("{v:.1}"))
            )),
            Cell::new(format!(
                "{} {} · {ttfs}",
                grade(&row["developer_experience"]),
                row["client_error_share"]
                    .as_f64()
                    .map_or("–".into(), |s| format!("{:.1}%", s * 100.0))
            )),
            Cell::new(format!(
                "{} {}",
                grade(&row["growth_signals"]),
                row["adoption_change_pp"]
                    .as_f64()
                    .map_or("–".into(), |p| format!("{p:+.1} pp"))
            )),
            Cell::new(format!(
                "{} {}",
                grade(&row["error_impact"]),
                group_thousands(row["value_at_risk"].as_f64().unwrap_or(0.0), 0)
            )),
        ]);
    }
    out.table("scorecard", t);
    out.line(
        "grades rank endpoints against each other: A top quarter … D bottom quarter; BRIDGE = 100 × mean rank"
    );
}

pub fn print_priority(answer: &Value, out: &mut Output) {
    let mut t = table(&[
        "feature",
        "score",
        "recommendation",
        "adoption",
        "calls/session",
        "value",
        "effort h",
        "dev cost",
        "return",
        "return/year",
    ]);
    for row in rows(answer, "features") {
        t.add_row(vec![
            Cell::new(text(&row["feature"])),
            num(&row["score"], 2),
            Cell::new(text(&row["recommendation"])),
            adoption(&row),
            num(&row["engagement_depth"], 2),
            num(&row["value"], 0),
            num(&row["effort_hours"], 0),
            num(&row["development_cost"], 0),
            num(&row["expected_return"], 2),
            num(&row["expected_return_per_year"], 1),
        ]);
    }
    out.table("features", t);
    out.line(format!(
        "score = adoption × calls per session × attributed value ÷ (effort × hourly cost); high > {}, medium > {}",
        text(&answer["thresholds"][0]),
        text(&answer["thresholds"][1])
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(1234567.891, 2), "1,234,567.89");
        assert_eq!(group_thousands(-1234.0, 0), "-1,234");
        assert_eq!(group_thousands(12.0, 0), "12");
    }

    /// Issue 18 point 7: counts the server sends as floats read as integers.
    #[test]
    fn counts_print_as_integers() {
        assert_eq!(text(&json!(14.0)), "14");
        assert_eq!(text(&json!(14)), "14");
        assert_eq!(text(&json!(0.25)), "0.25");
        assert_eq!(count(&json!(14.0)), "14");
        assert_eq!(count(&json!(2439.6)), "2,440");
        assert_eq!(count(&Value::Null), "–");
    }

    /// Issue 18 point 7: time to first success as a readable duration, not `98956 s`.
    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration_text(&json!(98_956_000.0)), "1.1 d");
        assert_eq!(duration_text(&json!(5_400_000)), "1.5 h");
        assert_eq!(duration_text(&json!(90_000)), "1.5 min");
        assert_eq!(duration_text(&json!(42_000)), "42 s");
        assert_eq!(duration_text(&json!(850)), "850 ms");
        assert_eq!(duration_text(&Value::Null), "–");
    }

    /// The scorecard's developer-experience cell shows time to first success as a duration.
    #[test]
    fn scorecard_shows_time_to_first_success_as_a_duration() {
        let answer = json!({"rows": [{
            "endpoint": "POST /api/checkout",
            "bridge_score": 60.0,
            "time_to_first_success_ms": 98_956_000.0,
            "client_error_share": 0.02,
        }]});
        let mut output = Output::new(Some(String::new()));
        print_scorecard(&answer, 10, &mut output);
        let mut bytes = Vec::new();
        let (_, table) = output.tables().first().expect("scorecard table");
        super::super::output::write_csv(table, &mut bytes).expect("csv");
        let csv = String::from_utf8(bytes).expect("utf-8");
        assert!(csv.contains("2.0% · 1.1 d"), "{csv}");
        assert!(!csv.contains("98956"), "{csv}");
    }
}
