//! Tables for the journey answers of `valuetrace query funnel|paths|retention|ttv|churn-risk|
//! experiment` (the JSON shapes are `valuetrace_journeys`' answers).

use super::answers::{duration_text, num, pct, table, text};
use super::output::Output;
use comfy_table::{Cell, CellAlignment};
use serde_json::Value;

fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// Milliseconds as a short duration: 850 ms, 42 s, 3.5 min, 2.1 h, 1.5 d.
fn duration(value: &Value) -> Cell {
    Cell::new(duration_text(value)).set_alignment(CellAlignment::Right)
}

fn funnel_table(steps: &Value) -> comfy_table::Table {
    let mut t = table(&[
        "step",
        "entered",
        "conversion",
        "from start",
        "dropped",
        "median time",
        "p90 time",
        "dropped ones went to",
    ]);
    for step in items(steps) {
        let went: Vec<String> = items(&step["went_instead"])
            .iter()
            .take(3)
            .map(|n| format!("{} ({})", text(&n["event"]), text(&n["actors"])))
            .collect();
        t.add_row(vec![
            Cell::new(text(&step["step"])),
            num(&step["entered"], 0),
            pct(&step["conversion_rate"]),
            pct(&step["conversion_from_start"]),
            num(&step["dropped"], 0),
            duration(&step["median_ms_from_previous"]),
            duration(&step["p90_ms_from_previous"]),
            Cell::new(went.join(", ")),
        ]);
    }
    t
}

pub fn print_funnel(answer: &Value, out: &mut Output) {
    out.line(format!(
        "Funnel per {} · {} order · window {}",
        text(&answer["per"]),
        text(&answer["order"]),
        duration(&answer["window_ms"]).content()
    ));
    out.table("steps", funnel_table(&answer["steps"]));
    for group in items(&answer["groups"]) {
        let group_name = text(&group["group"]);
        out.line(format!("\n{group_name}:"));
        out.table(format!("group:{group_name}"), funnel_table(&group["steps"]));
    }
}

fn print_node(node: &Value, depth: usize, lines: &mut Vec<String>) {
    lines.push(format!(
        "{}{}  {} ({:.0}% of parent, {} stop here)",
        "  ".repeat(depth),
        text(&node["event"]),
        text(&node["actors"]),
        node["share_of_parent"].as_f64().unwrap_or(0.0) * 100.0,
        text(&node["dropped"]),
    ));
    for child in items(&node["children"]) {
        print_node(child, depth + 1, lines);
    }
}

pub fn print_paths(answer: &Value, out: &mut Output) {
    out.line(format!(
        "Paths {} {} per {} · {} actors · depth {}",
        text(&answer["direction"]),
        text(&answer["anchor"]),
        text(&answer["per"]),
        text(&answer["actors"]),
        text(&answer["depth"])
    ));
    let mut lines = Vec::new();
    print_node(&answer["tree"], 0, &mut lines);
    out.line(lines.join("\n"));
    let mut t = table(&["top path", "actors", "share"]);
    for path in items(&answer["top_paths"]) {
        let events: Vec<String> = items(&path["events"]).iter().map(text).collect();
        t.add_row(vec![
            Cell::new(events.join(" → ")),
            num(&path["actors"], 0),
            pct(&path["share"]),
        ]);
    }
    out.table("top_paths", t);
}

pub fn print_retention(answer: &Value, out: &mut Output) {
    out.line(format!(
        "Retention per {} · cohort {} · return {} · by {}",
        text(&answer["per"]),
        text(&answer["cohort_event"]),
        text(&answer["return_event"]),
        text(&answer["period"])
    ));
    let periods = items(&answer["average"]).len();
    let mut header = vec!["cohort".to_owned(), "size".to_owned()];
    header.extend((0..periods).map(|p| format!("{p}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = table(&header);
    let cell = |c: &Value| {
        let rate = c["rate"]
            .as_f64()
            .map_or("–".into(), |r| format!("{:.0}%", r * 100.0));
        let mark = if c["complete"].as_bool() == Some(false) {
            "…"
        } else {
            ""
        };
        Cell::new(format!("{rate}{mark}")).set_alignment(CellAlignment::Right)
    };
    for cohort in items(&answer["cohorts"]) {
        let name = match cohort["group"].as_str() {
            Some(group) => format!("{} {group}", text(&cohort["cohort"])),
            None => text(&cohort["cohort"]),
        };
        let mut row = vec![Cell::new(name), num(&cohort["size"], 0)];
        row.extend(items(&cohort["periods"]).iter().map(cell));
        t.add_row(row);
    }
    let mut row = vec![Cell::new("average"), Cell::new("")];
    row.extend(items(&answer["average"]).iter().map(cell));
    t.add_row(row);
    out.table("cohorts", t);
    out.line("… the period is not over for every actor of the cohort yet");
}

pub fn print_ttv(answer: &Value, out: &mut Output) {
    out.line(format!(
        "Time to first value per {}: {} → {}",
        text(&answer["per"]),
        text(&answer["start_event"]),
        text(&answer["value_event"])
    ));
    let mut t = table(&["cohort", "new", "reached value", "share", "p50", "p90"]);
    let row = |name: String, s: &Value| {
        vec![
            Cell::new(name),
            num(&s["new_actors"], 0),
            num(&s["reached"], 0),
            pct(&s["reached_share"]),
            duration(&s["p50_ms"]),
            duration(&s["p90_ms"]),
        ]
    };
    t.add_row(row("all".into(), answer));
    for cohort in items(&answer["trend"]) {
        t.add_row(row(text(&cohort["cohort"]), cohort));
    }
    if let Some(groups) = answer["groups"].as_object() {
        for (group, stats) in groups {
            t.add_row(row(group.clone(), stats));
        }
    }
    out.table("ttv", t);
}

pub fn print_churn(answer: &Value, out: &mut Output) {
    out.line(format!(
        "Churn risk per {}: {} of {} scored actors at risk (score ≥ {}; last {} vs the {} before)",
        text(&answer["per"]),
        text(&answer["at_risk"]),
        text(&answer["scored"]),
        text(&answer["threshold"]),
        duration(&answer["recent_ms"]).content(),
        duration(&answer["baseline_ms"]).content()
    ));
    let mut t = table(&[
        "actor",
        "score",
        "baseline/day",
        "recent/day",
        "routes that fell",
    ]);
    for actor in items(&answer["actors"]) {
        let routes: Vec<String> = items(&actor["falling_routes"])
            .iter()
            .map(|r| {
                format!(
                    "{} ({:.1} → {:.1}/day)",
                    text(&r["route"]),
                    r["baseline_per_day"].as_f64().unwrap_or(0.0),
                    r["recent_per_day"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        t.add_row(vec![
            Cell::new(text(&actor["id"])),
            num(&actor["score"], 2),
            num(&actor["baseline_per_day"], 1),
            num(&actor["recent_per_day"], 1),
            Cell::new(routes.join(", ")),
        ]);
    }
    out.table("actors", t);
    let b = &answer["backtest"];
    out.line(format!(
        "Back-test (scored one period earlier, churn outcomes since): {} flagged, {} churned, {} both · precision {} · recall {}",
        text(&b["flagged"]),
        text(&b["churned"]),
        text(&b["flagged_and_churned"]),
        pct(&b["precision"]).content(),
        pct(&b["recall"]).content()
    ));
}

pub fn print_experiment(answer: &Value, out: &mut Output) {
    out.line(format!(
        "Experiment {} per {} · control {} · conversion to {}",
        text(&answer["experiment"]),
        text(&answer["per"]),
        text(&answer["control"]),
        text(&answer["conversion_outcome"])
    ));
    let mut t = table(&[
        "variant",
        "exposed",
        "share",
        "converted",
        "conversion",
        "value/actor",
    ]);
    for v in items(&answer["variants"]) {
        t.add_row(vec![
            Cell::new(text(&v["variant"])),
            num(&v["exposed"], 0),
            pct(&v["share"]),
            num(&v["converted"], 0),
            pct(&v["conversion_rate"]),
            num(&v["value_per_actor"], 2),
        ]);
    }
    out.table("variants", t);
    let srm = &answer["sample_ratio"];
    out.line(format!(
        "Sample ratio: chi-square {} p = {} → {} · {} actors in several variants left out",
        num(&srm["statistic"], 2).content(),
        num(&srm["p_value"], 4).content(),
        if srm["mismatch"].as_bool() == Some(true) {
            "MISMATCH: assignment is broken, do not trust the results"
        } else {
            "ok"
        },
        text(&answer["mixed"])
    ));
    let mut t = table(&[
        "metric",
        "endpoint",
        "variant",
        "control",
        "treatment",
        "difference",
        "adjusted CI (level)",
        "p (Holm)",
        "significant",
    ]);
    for c in items(&answer["comparisons"]) {
        // The interval at the level Holm tested this comparison at: it excludes 0 iff p < 0.05.
        let ci = match (
            c["ci"][0].as_f64(),
            c["ci"][1].as_f64(),
            c["ci_level"].as_f64(),
        ) {
            (Some(lo), Some(hi), Some(level)) => {
                format!("[{lo:.3}, {hi:.3}] ({:.1}%)", level * 100.0)
            }
            _ => "–".into(),
        };
        t.add_row(vec![
            Cell::new(text(&c["metric"])),
            Cell::new(c["endpoint"].as_str().unwrap_or("")),
            Cell::new(text(&c["variant"])),
            num(&c["control"], 3),
            num(&c["treatment"], 3),
            num(&c["difference"], 3),
            Cell::new(ci),
            num(&c["p_value"], 4),
            Cell::new(if c["significant"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            }),
        ]);
    }
    out.table("comparisons", t);
    out.line(
        "p (Holm): conversion and value/actor adjusted among themselves, per-endpoint rows among themselves",
    );
}
