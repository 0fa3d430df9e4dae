//! The page shell: navigation between the six pages, the filter bar (a plain GET form, so the
//! filters live in the URL), the stylesheet and a few lines of optional JavaScript (sortable
//! tables; everything works without it).

use crate::filters::{Filters, PRESETS};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The six pages: path segment, title, the question it answers.
pub const PAGES: &[(&str, &str, &str)] = &[
    (
        "health",
        "API Business Health",
        "Which endpoints create value, and how reliably?",
    ),
    (
        "journeys",
        "User Journey",
        "Where do users drop, and do they come back?",
    ),
    (
        "growth",
        "Growth Engineering",
        "Did the experiment help, who is about to churn, what to build next?",
    ),
    (
        "errors",
        "Errors & Integrations",
        "What do errors cost, and which providers fail us?",
    ),
    (
        "alerts",
        "Alerts",
        "What is firing, and what happened before?",
    ),
    (
        "quality",
        "Data Quality",
        "Can the numbers above be trusted?",
    ),
];

/// Values offered in the slice selects (seen in the range; any other value works through the URL).
pub struct Choices {
    pub plans: Vec<String>,
    pub segments: Vec<String>,
    /// `experiment=variant`.
    pub variants: Vec<String>,
    pub services: Vec<String>,
    /// The page's own parameters (funnel steps, the chosen experiment …): carried through the
    /// filter bar as hidden fields, so applying a filter keeps them.
    pub keep: Vec<(String, String)>,
}

pub fn page(
    project: &str,
    current: &str,
    filters: &Filters,
    choices: &Choices,
    body: Markup,
    refresh: bool,
) -> Markup {
    page_titled(project, current, None, filters, choices, body, refresh)
}

/// [`page`] whose `<h1>` and `<title>` say `heading` (e.g. the endpoint a drill-down shows)
/// instead of the page's name.
pub fn page_titled(
    project: &str,
    current: &str,
    heading: Option<&str>,
    filters: &Filters,
    choices: &Choices,
    body: Markup,
    refresh: bool,
) -> Markup {
    let (title, question) = PAGES
        .iter()
        .find(|(path, _, _)| *path == current)
        .map_or(("valuetrace", ""), |(_, title, question)| {
            (*title, *question)
        });
    let title = heading.unwrap_or(title);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh {
                    // Some answers were still being computed: look again shortly (no script).
                    meta http-equiv="refresh" content="2";
                }
                title { (title) " · " (project) " · valuetrace" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top {
                    a.brand href="/" { "valuetrace" }
                    span.project { "project " strong { (project) } }
                    nav aria-label="pages" {
                        @for (path, name, _) in PAGES {
                            @let href = filters.link(&format!("/p/{}/{path}", crate::filters::encode(project)), &[]);
                            @if *path == current {
                                a.current href=(href) aria-current="page" { (name) }
                            } @else {
                                a href=(href) { (name) }
                            }
                        }
                    }
                    form.logout method="post" action="/logout" { button type="submit" { "Sign out" } }
                }
                main {
                    h1 { (title) }
                    p.question { (question) }
                    (filter_bar(filters, choices))
                    (body)
                }
                script { (PreEscaped(JS)) }
            }
        }
    }
}

fn filter_bar(filters: &Filters, choices: &Choices) -> Markup {
    let since = filters.since();
    html! {
        form.filters method="get" {
            label { "Range "
                select name="since" {
                    @for (value, name) in PRESETS {
                        option value=(value) selected[!filters.custom_range() && since == *value] { (name) }
                    }
                    @if !filters.custom_range() && !PRESETS.iter().any(|(v, _)| *v == since) {
                        option value=(since) selected { "last " (since) }
                    }
                }
            }
            label { "or from " input type="text" name="from" value=(filters.from) placeholder="2026-12-01T00:00:00Z" size="20"; }
            label { "to " input type="text" name="to" value=(filters.to) placeholder="now" size="20"; }
            (select("plan", "Plan", &filters.plan, &choices.plans))
            (select("segment", "Segment", &filters.segment, &choices.segments))
            (select("variant", "Variant", &filters.variant, &choices.variants))
            (select("service", "Service", &filters.service, &choices.services))
            @for (name, value) in &choices.keep {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { "Apply" }
            a.reset href="?" { "Reset" }
        }
    }
}

fn select(name: &str, label: &str, current: &str, values: &[String]) -> Markup {
    html! {
        label { (label) " "
            select name=(name) {
                option value="" selected[current.is_empty()] { "any" }
                @for value in values {
                    option value=(value) selected[current == value] { (value) }
                }
                @if !current.is_empty() && !values.iter().any(|v| v == current) {
                    option value=(current) selected { (current) }
                }
            }
        }
    }
}

/// A standalone page (login, errors) without navigation.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · valuetrace" }
                style { (PreEscaped(CSS)) }
            }
            body { main.narrow { h1 { (title) } (body) } }
        }
    }
}

/// A failed answer, shown where its section would be.
pub fn failure(what: &str, failure: &crate::api::Failure) -> Markup {
    if failure.is_pending() {
        return html! {
            div.pending role="status" {
                (what) " is being computed (a large range takes a few seconds); this page reloads itself."
            }
        };
    }
    html! {
        div.error role="alert" {
            strong { (what) " is not available: " }
            (failure.message)
            " (" (failure.status) ")"
        }
    }
}

/// A key figure.
pub fn tile(label: &str, value: &str, detail: &str) -> Markup {
    html! {
        div.tile {
            div.tile-label { (label) }
            div.tile-value { (value) }
            @if !detail.is_empty() { div.tile-detail { (detail) } }
        }
    }
}

pub const CSS: &str = r#"
:root { --ink:#1d2330; --muted:#5b6475; --line:#dfe3ea; --bg:#f6f7f9; --blue:#0072B2; --red:#D55E00; --green:#009E73; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header.top { display:flex; flex-wrap:wrap; gap:12px 18px; align-items:center; padding:10px 20px; background:#fff; border-bottom:1px solid var(--line); }
.brand { font-weight:700; color:var(--blue); text-decoration:none; font-size:16px; }
.project { color:var(--muted); }
nav { display:flex; flex-wrap:wrap; gap:4px; flex:1; }
nav a { padding:6px 10px; border-radius:6px; color:var(--ink); text-decoration:none; }
nav a:hover { background:var(--bg); }
nav a.current { background:var(--blue); color:#fff; }
form.logout button { background:none; border:1px solid var(--line); border-radius:6px; padding:5px 10px; cursor:pointer; }
main { padding:16px 20px 40px; max-width:1280px; }
main.narrow { max-width:460px; margin:60px auto; background:#fff; border:1px solid var(--line); border-radius:10px; padding:24px; }
h1 { margin:4px 0 0; font-size:22px; }
h2 { font-size:17px; margin:26px 0 8px; }
h3 { font-size:15px; margin:16px 0 6px; }
p.question { margin:2px 0 12px; color:var(--muted); }
.filters { display:flex; flex-wrap:wrap; gap:8px 14px; align-items:end; background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 12px; margin-bottom:14px; }
.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:2px; }
.filters input, .filters select, form.stack input, form.stack select { font:inherit; padding:4px 6px; border:1px solid #c5ccd8; border-radius:5px; background:#fff; color:var(--ink); }
button { font:inherit; }
.filters button, form.stack button { background:var(--blue); color:#fff; border:0; border-radius:6px; padding:6px 14px; cursor:pointer; }
.filters a.reset { align-self:center; color:var(--muted); }
form.stack { display:flex; flex-direction:column; gap:12px; }
form.stack label { display:flex; flex-direction:column; gap:4px; font-weight:600; }
section.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin:12px 0; overflow-x:auto; }
section.card > h2:first-child { margin-top:4px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill, minmax(190px, 1fr)); gap:10px; margin:10px 0; }
.tile { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.tile.north { border:2px solid var(--blue); }
.tile-label { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; }
.tile-value { font-size:24px; font-weight:650; margin-top:2px; }
.tile-detail { font-size:12px; color:var(--muted); }
.up { color:var(--green); } .down { color:var(--red); }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
td a, td code, td.num, th.num { white-space:nowrap; }
th { font-size:12px; color:var(--muted); font-weight:600; position:sticky; top:0; background:#fff; }
th[data-sort] { cursor:pointer; }
th[data-sort]:after { content:" ↕"; color:#aab; }
td.num, th.num { text-align:right; }
tr:hover td { background:#f3f6fb; }
.badge { display:inline-block; padding:1px 7px; border-radius:10px; font-size:12px; background:#eef1f5; }
.badge.invest { background:#fde7d9; } .badge.protect { background:#dcefe8; } .badge.cut { background:#f3dfea; } .badge.maintain { background:#e8eef6; }
.badge.firing { background:#D55E00; color:#fff; } .badge.pending { background:#E69F00; } .badge.resolved, .badge.inactive { background:#dcefe8; }
.pending { background:#eef4fb; border:1px dashed #9bbbe0; border-radius:6px; padding:8px 10px; margin:8px 0; color:var(--muted); }
.error { background:#fdece4; border:1px solid #f3c2a8; border-radius:6px; padding:8px 10px; margin:8px 0; }
.empty { color:var(--muted); font-style:italic; }
.note { color:var(--muted); font-size:12px; }
svg.chart { width:100%; height:auto; display:block; }
svg.chart text { font-size:13px; fill:#333; }
svg.chart text.axis { fill:#666; }
svg.chart text.quad { fill:#8a93a3; font-size:12px; font-weight:600; }
svg.chart line.grid { stroke:#e6e9ef; }
svg.chart a text { fill:var(--blue); }
.legend { font-size:12px; color:var(--muted); }
p.export { margin:4px 0; font-size:12px; text-align:right; }
.legend .key { display:inline-block; width:10px; height:10px; border-radius:2px; margin-left:8px; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:12px; }
"#;

/// Click a column head to sort (numbers by `data-v`, else text); optional.
const JS: &str = r#"
document.querySelectorAll('th[data-sort]').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[i], y = b.cells[i];
      var p = parseFloat(x.dataset.v), q = parseFloat(y.dataset.v);
      var c = (!isNaN(p) && !isNaN(q)) ? p - q : x.textContent.localeCompare(y.textContent);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"#;
