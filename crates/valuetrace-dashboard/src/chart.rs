//! Charts as inline SVG, written with maud like the rest of the page: every mark carries a
//! `<title>` (the browser shows it on hover) and an accessible label, colours come from the
//! Okabe–Ito colour-blind-safe palette, and the chart has a text fallback (the tables next to
//! it). No chart crate: the ones available draw SVG without per-mark titles.

use maud::{Markup, PreEscaped, html};

/// Okabe–Ito: blue, orange, bluish green, vermillion, reddish purple, sky blue, yellow, grey.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#999999",
];
pub const BLUE: &str = PALETTE[0];
pub const ORANGE: &str = PALETTE[1];
pub const GREEN: &str = PALETTE[2];
pub const RED: &str = PALETTE[3];
pub const PURPLE: &str = PALETTE[4];
pub const SKY: &str = PALETTE[5];
pub const GREY: &str = PALETTE[7];

/// One segment of a horizontal bar.
pub struct Segment {
    pub value: f64,
    pub color: &'static str,
    pub title: String,
}

pub struct Bar {
    pub label: String,
    /// Shown after the bar.
    pub note: String,
    pub segments: Vec<Segment>,
    pub href: Option<String>,
}

/// Horizontal (stacked) bars, one per row, scaled to the largest total.
pub fn hbars(aria: &str, bars: &[Bar]) -> Markup {
    bars_of(aria, bars, false)
}

/// Horizontal bars with each segment on its own thin bar from the axis (not stacked): for views
/// of the same quantity that must never be read as a sum.
pub fn hbars_grouped(aria: &str, bars: &[Bar]) -> Markup {
    bars_of(aria, bars, true)
}

fn bars_of(aria: &str, bars: &[Bar], grouped: bool) -> Markup {
    if bars.is_empty() {
        return empty();
    }
    let (width, label_w, note_w, row_h) = (760.0, 250.0, if grouped { 170.0 } else { 110.0 }, 22.0);
    let plot_w = width - label_w - note_w;
    let length = |b: &Bar| {
        let values = b.segments.iter().map(|s| s.value.max(0.0));
        if grouped {
            values.fold(0.0, f64::max)
        } else {
            values.sum::<f64>()
        }
    };
    let max = bars
        .iter()
        .map(length)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = row_h * bars.len() as f64 + 4.0;
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(aria) {
            @for (i, bar) in bars.iter().enumerate() {
                @let y = i as f64 * row_h + 2.0;
                g {
                    @if let Some(href) = &bar.href {
                        a href=(href) {
                            text.label x=(label_w - 8.0) y=(y + 15.0) text-anchor="end" { (clip(&bar.label, 34)) }
                        }
                    } @else {
                        text.label x=(label_w - 8.0) y=(y + 15.0) text-anchor="end" { (clip(&bar.label, 34)) }
                    }
                    @let placed = place(label_w, &bar.segments, max, plot_w, grouped);
                    @let thick = if grouped { (row_h - 6.0) / bar.segments.len().max(1) as f64 } else { row_h - 6.0 };
                    @for (k, (segment, (x, w))) in bar.segments.iter().zip(&placed).enumerate() {
                        @let top = if grouped { y + 3.0 + thick * k as f64 } else { y + 3.0 };
                        rect x=(fmt(*x)) y=(fmt(top)) width=(fmt(w.max(0.5))) height=(fmt(thick)) fill=(segment.color) {
                            title { (bar.label) ": " (segment.title) }
                        }
                    }
                    @let end = placed.iter().map(|(x, w)| x + w).fold(label_w, f64::max);
                    text.note x=(fmt(end + 6.0)) y=(y + 15.0) { (bar.note) }
                }
            }
        }
    }
}

/// `(x, width)` of each segment laid end to end from `start` (each from `start` if `grouped`).
fn place(
    start: f64,
    segments: &[Segment],
    max: f64,
    plot_w: f64,
    grouped: bool,
) -> Vec<(f64, f64)> {
    let mut x = start;
    segments
        .iter()
        .map(|segment| {
            let w = segment.value.max(0.0) / max * plot_w;
            let at = x;
            if !grouped {
                x += w;
            }
            (at, w)
        })
        .collect()
}

/// A series of a line chart: points `(x = epoch ms, y)`; gaps where `y` is `None`.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(i64, Option<f64>)>,
}

/// How a line chart is drawn beyond its points.
#[derive(Debug, Default, Clone)]
pub struct Axes {
    /// Fit the y axis to the data instead of starting it at 0: rates near 97–99% would look flat
    /// on a 0–100% axis.
    pub fit_y: bool,
    /// The x (period starts) of points whose period the range cuts short (the first period when
    /// the range starts inside it, the current one): drawn dashed and lighter, with a legend
    /// note, so a partial period does not read as a real dip.
    pub incomplete: Vec<i64>,
}

/// Lines over time with a y axis (nice ticks formatted by `fmt_y`) and dates on the x axis,
/// drawn by plotters' SVG backend; a `<title>` hover target is laid over every point at the
/// position plotters mapped it to.
pub fn lines(aria: &str, series: &[Series], fmt_y: &dyn Fn(f64) -> String) -> Markup {
    lines_with(aria, series, fmt_y, &Axes::default())
}

/// The y range of a chart: from 0 (counts), or fitted to the data with a little room.
fn y_range(values: &[f64], fit: bool) -> Vec<f64> {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    if !fit {
        return nice_ticks(min.min(0.0), max.max(0.0), 5);
    }
    let (mut lo, mut hi) = (min, max);
    if hi - lo < 1e-9 * hi.abs().max(1.0) {
        let pad = (hi.abs() * 0.05).max(1e-3);
        (lo, hi) = (lo - pad, hi + pad);
        if min >= 0.0 {
            lo = lo.max(0.0);
        }
    }
    nice_ticks(lo, hi, 5)
}

/// Candidate x tick steps, all round times (UTC).
const TIME_STEPS: &[i64] = &[
    60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    2 * 86_400_000,
    7 * 86_400_000,
    14 * 86_400_000,
    30 * 86_400_000,
];

/// X ticks on round times within `[x0, x1]` (multiples of a step of `TIME_STEPS`: 00:00, 06:00,
/// 12:00 …, never the range's own odd start) and the step.
pub fn time_ticks(x0: i64, x1: i64) -> (Vec<i64>, i64) {
    let span = (x1 - x0).max(1);
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 6)
        .unwrap_or(span.max(1));
    let first = x0.div_euclid(step) * step + if x0.rem_euclid(step) == 0 { 0 } else { step };
    let ticks = (0..)
        .map(|k| first + k * step)
        .take_while(|t| *t <= x1)
        .take(12)
        .collect();
    (ticks, step)
}

/// A tick's label: the time of day below a day's step (the date at midnight), else the date.
pub fn time_label(t: i64, step: i64) -> String {
    let text = crate::format::time(t); // 2026-12-06 17:40
    let date = text.get(5..10).unwrap_or(&text).to_owned();
    let clock = text.get(11..16).unwrap_or("").to_owned();
    if step >= 86_400_000 || clock == "00:00" {
        date
    } else {
        clock
    }
}

/// Lines with [`Axes`]: fitted y, incomplete periods marked.
pub fn lines_with(
    aria: &str,
    series: &[Series],
    fmt_y: &dyn Fn(f64) -> String,
    axes: &Axes,
) -> Markup {
    let all: Vec<(i64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(x, y)| y.map(|y| (*x, y))))
        .collect();
    if all.is_empty() {
        return empty();
    }
    let (width, height) = (760u32, 230u32);
    let x0 = all.iter().map(|p| p.0).min().unwrap_or(0);
    let x1 = all.iter().map(|p| p.0).max().unwrap_or(1).max(x0 + 1);
    let values: Vec<f64> = all.iter().map(|p| p.1).collect();
    let ticks = y_range(&values, axes.fit_y);
    let (lo, hi) = (ticks[0], *ticks.last().unwrap_or(&1.0));
    let (x_ticks, x_step) = time_ticks(x0, x1);
    let incomplete = |x: i64| axes.incomplete.contains(&x);
    // A run worth a solid line: any point, unless it is one incomplete point (drawn dashed).
    let solid = |run: &[(i64, f64)]| match run {
        [] => false,
        [(x, _)] => !incomplete(*x),
        _ => true,
    };
    let mut svg = String::new();
    let mut hovers = Vec::new();
    let mut dashed = Vec::new();
    let mut x_marks = Vec::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        use plotters::prelude::*;
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(10)
            .margin_right(60)
            .margin_left(4)
            .x_label_area_size(26)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, lo..hi)?;
        let grey = RGBColor(102, 102, 102);
        // X ticks are drawn below (round times); plotters draws the y axis and its grid.
        chart
            .configure_mesh()
            // (plotters cannot take 0 labels: one, unlabelled)
            .x_labels(1)
            .x_label_formatter(&|_| String::new())
            .disable_x_mesh()
            .y_labels(ticks.len())
            .y_label_formatter(&|y| fmt_y(*y))
            .label_style(("sans-serif", 13).into_font().color(&grey))
            .bold_line_style(RGBColor(230, 233, 239))
            .light_line_style(TRANSPARENT)
            .axis_style(RGBColor(190, 196, 206))
            .draw()?;
        for t in &x_ticks {
            let (px, bottom) = chart.backend_coord(&(*t, lo));
            let (_, top) = chart.backend_coord(&(*t, hi));
            x_marks.push((px, top, bottom, time_label(*t, x_step)));
        }
        for s in series {
            let color = rgb(s.color);
            // A gap (`None`) lifts the pen, and so does an incomplete period: one solid line per
            // run of complete points; a segment touching an incomplete point is drawn dashed.
            let mut run: Vec<(i64, f64)> = Vec::new();
            let mut previous: Option<(i64, f64)> = None;
            for (x, y) in &s.points {
                let Some(y) = y else {
                    let run = std::mem::take(&mut run);
                    if solid(&run) {
                        chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
                    }
                    previous = None;
                    continue;
                };
                if let Some((px, py)) = previous
                    && (incomplete(px) || incomplete(*x))
                {
                    let run = std::mem::take(&mut run);
                    if solid(&run) {
                        chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
                    }
                    dashed.push((
                        chart.backend_coord(&(px, py)),
                        chart.backend_coord(&(*x, *y)),
                        s.color,
                    ));
                }
                run.push((*x, *y));
                previous = Some((*x, *y));
            }
            if solid(&run) {
                chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
            }
            for (x, y) in &s.points {
                if let Some(y) = y {
                    let (px, py) = chart.backend_coord(&(*x, *y));
                    let note = if incomplete(*x) {
                        " (incomplete period)"
                    } else {
                        ""
                    };
                    hovers.push((
                        px,
                        py,
                        s.color,
                        incomplete(*x),
                        format!(
                            "{} at {}: {}{note}",
                            s.name,
                            crate::format::time(*x),
                            fmt_y(*y)
                        ),
                    ));
                }
            }
        }
        root.present()?;
        Ok(())
    })();
    if drawn.is_err() {
        return empty();
    }
    let any_incomplete = hovers.iter().any(|h| h.3);
    let marks = html! {
        @for (x, top, bottom, label) in &x_marks {
            line x1=(x) x2=(x) y1=(top) y2=(bottom) stroke="#E6E9EF" {}
            line x1=(x) x2=(x) y1=(bottom) y2=(bottom + 4) stroke="#BEC4CE" {}
            text x=(x) y=(bottom + 18) text-anchor="middle" font-family="sans-serif" font-size="13" fill="#666666" { (label) }
        }
        @for ((ax, ay), (bx, by), color) in &dashed {
            line.incomplete x1=(ax) y1=(ay) x2=(bx) y2=(by) stroke=(color) stroke-width="2" stroke-dasharray="5 4" stroke-opacity="0.5" {}
        }
        @for (x, y, color, partial, title) in &hovers {
            @if *partial {
                circle cx=(x) cy=(y) r="3" fill="#fff" stroke=(color) stroke-width="1.5" { title { (title) } }
            } @else {
                circle cx=(x) cy=(y) r="3" fill=(color) { title { (title) } }
            }
        }
    };
    // The backend's fixed size becomes a responsive, labelled image.
    let svg = svg
        .replacen(
            &format!(r#"<svg width="{width}" height="{height}" "#),
            &format!(
                r#"<svg class="chart" role="img" aria-label="{}" "#,
                maud::html!((aria)).into_string()
            ),
            1,
        )
        .replace("</svg>", &format!("{}</svg>", marks.into_string()));
    html! {
        (PreEscaped(svg))
        @if series.len() > 1 || any_incomplete {
            p.legend {
                @if series.len() > 1 {
                    @for s in series {
                        span.key style=(format!("background:{}", s.color)) {} " " (s.name) " "
                    }
                }
                @if any_incomplete {
                    span.incomplete-note { " Dashed, hollow: an incomplete period (the range starts or ends inside it), not a real dip." }
                }
            }
        }
    }
}

/// The points of a timeseries answer and the starts of those whose period the range cuts short
/// (`end − start` below the interval).
pub fn timeseries(answer: &serde_json::Value) -> (Vec<(i64, Option<f64>)>, Vec<i64>) {
    use crate::format::{list, num, text};
    let width = match text(answer, "interval") {
        "1m" => 60_000.0,
        "1h" => 3_600_000.0,
        _ => 86_400_000.0,
    };
    let points = list(answer, "points");
    let values = points
        .iter()
        .map(|p| (num(p, "start").unwrap_or(0.0) as i64, num(p, "value")))
        .collect();
    let incomplete = points
        .iter()
        .filter(|p| num(p, "end").unwrap_or(0.0) - num(p, "start").unwrap_or(0.0) < width)
        .map(|p| num(p, "start").unwrap_or(0.0) as i64)
        .collect();
    (values, incomplete)
}

/// The starts of trend buckets (equal widths from `from`, as the insights answers cut them) whose
/// bucket ends after `to`: the last, when the range is not a whole number of buckets.
pub fn incomplete_buckets(starts: &[i64], from: i64, to: i64) -> Vec<i64> {
    let width = match starts {
        [a, b, ..] => b - a,
        _ if to - from <= 2 * 86_400_000 => 3_600_000,
        _ => 86_400_000,
    };
    starts.iter().copied().filter(|s| s + width > to).collect()
}

/// `#RRGGBB` as a plotters colour.
fn rgb(hex: &str) -> plotters::style::RGBColor {
    let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    plotters::style::RGBColor(channel(1), channel(3), channel(5))
}

pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub color: &'static str,
    pub title: String,
    pub href: Option<String>,
}

/// A scatter with the plane split at `(x_split, y_split)` into four labelled quadrants
/// (`labels`: top-left, top-right, bottom-left, bottom-right). `x` and `y` are in [0, 1].
pub fn quadrant(
    aria: &str,
    dots: &[Dot],
    axes: (&str, &str),
    split: (f64, f64),
    labels: [&str; 4],
) -> Markup {
    if dots.is_empty() {
        return empty();
    }
    let (width, height, left, bottom, pad) = (760.0, 360.0, 40.0, 34.0, 10.0);
    let sx = |x: f64| left + x.clamp(0.0, 1.0) * (width - left - pad);
    let sy = |y: f64| pad + (1.0 - y.clamp(0.0, 1.0)) * (height - pad - bottom);
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(aria) {
            rect x=(left) y=(pad) width=(width - left - pad) height=(height - pad - bottom) fill="none" stroke="#bbb" {}
            line.grid x1=(fmt(sx(split.0))) x2=(fmt(sx(split.0))) y1=(pad) y2=(height - bottom) {}
            line.grid x1=(left) x2=(width - pad) y1=(fmt(sy(split.1))) y2=(fmt(sy(split.1))) {}
            text.quad x=(left + 8.0) y=(pad + 16.0) { (labels[0]) }
            text.quad x=(width - pad - 8.0) y=(pad + 16.0) text-anchor="end" { (labels[1]) }
            text.quad x=(left + 8.0) y=(height - bottom - 8.0) { (labels[2]) }
            text.quad x=(width - pad - 8.0) y=(height - bottom - 8.0) text-anchor="end" { (labels[3]) }
            text.axis x=(fmt((left + width) / 2.0)) y=(height - 10.0) text-anchor="middle" { (axes.0) " →" }
            text.axis x="12" y=(fmt(height / 2.0)) text-anchor="middle" transform=(format!("rotate(-90 12 {})", height / 2.0)) { (axes.1) " →" }
            @for dot in dots {
                @let circle = html! {
                    circle cx=(fmt(sx(dot.x))) cy=(fmt(sy(dot.y))) r="6" fill=(dot.color) fill-opacity="0.85" stroke="#fff" {
                        title { (dot.title) }
                    }
                };
                @if let Some(href) = &dot.href { a href=(href) { (circle) } } @else { (circle) }
            }
        }
    }
}

/// A heat map: one row per `rows` label, one column per `columns` label, cells in [0, 1] shaded
/// from white to blue with the value written in the cell.
pub fn heatmap(
    aria: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<Option<f64>>],
    fmt_cell: &dyn Fn(f64) -> String,
) -> Markup {
    if rows.is_empty() || columns.is_empty() {
        return empty();
    }
    let (label_w, cell_w, cell_h, head_h) = (130.0, 58.0, 24.0, 22.0);
    let width = label_w + cell_w * columns.len() as f64;
    let height = head_h + cell_h * rows.len() as f64;
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(aria) style=(format!("max-width:{width}px")) {
            @for (j, column) in columns.iter().enumerate() {
                text.axis x=(fmt(label_w + cell_w * (j as f64 + 0.5))) y="15" text-anchor="middle" { (column) }
            }
            @for (i, row) in rows.iter().enumerate() {
                @let y = head_h + cell_h * i as f64;
                text.label x=(label_w - 8.0) y=(fmt(y + 16.0)) text-anchor="end" { (row) }
                @for (j, cell) in cells.get(i).map_or(&[][..], Vec::as_slice).iter().enumerate() {
                    @if let Some(v) = cell {
                        @let x = label_w + cell_w * j as f64;
                        rect x=(fmt(x)) y=(fmt(y)) width=(cell_w - 2.0) height=(cell_h - 2.0) fill=(shade(*v)) {
                            title { (row) ", " (columns.get(j).map_or("", String::as_str)) ": " (fmt_cell(*v)) }
                        }
                        text x=(fmt(x + cell_w / 2.0 - 1.0)) y=(fmt(y + 16.0)) text-anchor="middle" style=(if *v > 0.55 { "fill:#fff" } else { "fill:#222" }) font-size="11" { (fmt_cell(*v)) }
                    }
                }
            }
        }
    }
}

/// One row of an interval chart: an estimate with its 95% interval.
pub struct Interval {
    pub label: String,
    /// The point estimate (a dot); `None` draws the interval alone.
    pub estimate: Option<f64>,
    pub low: f64,
    pub high: f64,
    pub color: &'static str,
    /// Hover text of the row's marks.
    pub title: String,
    /// Shown after the plot.
    pub note: String,
}

/// The axis ticks of an interval chart: round values covering every interval, every estimate and
/// `reference` (e.g. 0 for differences, so the "no effect" line is always on the chart).
pub fn interval_ticks(rows: &[Interval], reference: Option<f64>) -> Vec<f64> {
    let values = rows
        .iter()
        .flat_map(|r| [Some(r.low), Some(r.high), r.estimate])
        .chain([reference])
        .flatten()
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return vec![0.0, 1.0];
    }
    nice_ticks(lo, hi, 4)
}

/// Intervals as whiskers (a forest plot): one row per interval, a dot at the estimate, a dashed
/// line at `reference`, the x axis formatted by `fmt_x`.
pub fn intervals(
    aria: &str,
    rows: &[Interval],
    reference: Option<f64>,
    fmt_x: &dyn Fn(f64) -> String,
) -> Markup {
    if rows.is_empty() {
        return empty();
    }
    let (width, label_w, note_w, row_h, axis_h) = (760.0, 250.0, 150.0, 24.0, 22.0);
    let ticks = interval_ticks(rows, reference);
    let (lo, hi) = (ticks[0], *ticks.last().unwrap_or(&1.0));
    let plot_w = width - label_w - note_w - 10.0;
    let sx = |x: f64| label_w + (x - lo) / (hi - lo).max(f64::MIN_POSITIVE) * plot_w;
    let height = row_h * rows.len() as f64 + axis_h + 4.0;
    let bottom = row_h * rows.len() as f64 + 2.0;
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(aria) {
            @for t in &ticks {
                line.grid x1=(fmt(sx(*t))) x2=(fmt(sx(*t))) y1="0" y2=(fmt(bottom)) {}
                text.axis x=(fmt(sx(*t))) y=(fmt(bottom + 15.0)) text-anchor="middle" { (fmt_x(*t)) }
            }
            @if let Some(r) = reference {
                line x1=(fmt(sx(r))) x2=(fmt(sx(r))) y1="0" y2=(fmt(bottom)) stroke="#555" stroke-dasharray="4 3" {}
            }
            @for (i, row) in rows.iter().enumerate() {
                @let y = i as f64 * row_h + row_h / 2.0 + 2.0;
                @let (x0, x1) = (sx(row.low.max(lo)), sx(row.high.min(hi)));
                g {
                    text.label x=(label_w - 8.0) y=(fmt(y + 4.0)) text-anchor="end" { (clip(&row.label, 34)) }
                    rect x=(fmt(x0)) y=(fmt(y - 7.0)) width=(fmt((x1 - x0).max(2.0))) height="14" fill=(row.color) fill-opacity="0.18" {
                        title { (row.label) ": " (row.title) }
                    }
                    line x1=(fmt(x0)) x2=(fmt(x1)) y1=(fmt(y)) y2=(fmt(y)) stroke=(row.color) stroke-width="2" {
                        title { (row.label) ": " (row.title) }
                    }
                    line x1=(fmt(x0)) x2=(fmt(x0)) y1=(fmt(y - 5.0)) y2=(fmt(y + 5.0)) stroke=(row.color) stroke-width="2" {}
                    line x1=(fmt(x1)) x2=(fmt(x1)) y1=(fmt(y - 5.0)) y2=(fmt(y + 5.0)) stroke=(row.color) stroke-width="2" {}
                    @if let Some(e) = row.estimate {
                        circle cx=(fmt(sx(e.clamp(lo, hi)))) cy=(fmt(y)) r="4.5" fill=(row.color) stroke="#fff" {
                            title { (row.label) ": " (row.title) }
                        }
                    }
                    text.note x=(width - note_w + 4.0) y=(fmt(y + 4.0)) { (row.note) }
                }
            }
        }
    }
}

/// One row of a tree: a node at `depth` (0 = the root) with a bar for `value`.
pub struct TreeRow {
    pub depth: usize,
    pub label: String,
    pub value: f64,
    pub color: &'static str,
    pub title: String,
    pub note: String,
}

/// An indented tree (rows in depth-first order) with connectors to the parent and a bar per
/// node scaled to the largest value (usually the root).
pub fn tree(aria: &str, rows: &[TreeRow]) -> Markup {
    if rows.is_empty() {
        return empty();
    }
    let (width, label_w, note_w, row_h, indent) = (760.0, 340.0, 130.0, 22.0, 16.0);
    let plot_w = width - label_w - note_w;
    let max = rows
        .iter()
        .map(|r| r.value)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = row_h * rows.len() as f64 + 4.0;
    let mid = |i: usize| i as f64 * row_h + 2.0 + row_h / 2.0;
    html! {
        svg.chart viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(aria) {
            @for (i, row) in rows.iter().enumerate() {
                @let x = 4.0 + indent * row.depth as f64;
                g {
                    @if let Some(parent) = tree_parent(rows, i) {
                        @let px = 4.0 + indent * rows[parent].depth as f64 + 4.0;
                        path d=(format!("M{} {} V{} H{}", fmt(px), fmt(mid(parent) + 6.0), fmt(mid(i)), fmt(x - 2.0))) fill="none" stroke="#b8c0cc" {}
                    }
                    text.label x=(fmt(x)) y=(fmt(mid(i) + 4.0)) { (clip(&row.label, 44usize.saturating_sub(2 * row.depth).max(12))) }
                    @let w = row.value.max(0.0) / max * plot_w;
                    rect x=(label_w) y=(fmt(mid(i) - 7.0)) width=(fmt(w.max(0.5))) height="14" fill=(row.color) {
                        title { (row.label) ": " (row.title) }
                    }
                    text.note x=(fmt(label_w + w + 6.0)) y=(fmt(mid(i) + 4.0)) { (row.note) }
                }
            }
        }
    }
}

/// The row of `i`'s parent: the nearest row above it one level up.
fn tree_parent(rows: &[TreeRow], i: usize) -> Option<usize> {
    let depth = rows[i].depth.checked_sub(1)?;
    (0..i).rev().find(|j| rows[*j].depth == depth)
}

/// White → Okabe–Ito blue.
fn shade(v: f64) -> String {
    let v = v.clamp(0.0, 1.0);
    let mix = |from: f64, to: f64| (from + (to - from) * v).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(255.0, 0.0),
        mix(255.0, 114.0),
        mix(255.0, 178.0)
    )
}

pub fn empty() -> Markup {
    html! { p.empty { "No data in this range and slice." } }
}

/// About `count` round tick values covering `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = (hi - lo) / count.max(1) as f64;
    let exponent = raw.log10().floor() as i32;
    let magnitude = 10f64.powi(exponent);
    let mantissa = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|m| m * magnitude >= raw)
        .unwrap_or(10.0);
    let step = mantissa * magnitude;
    // k × mantissa scaled by the power of ten in one operation, so 3 × 0.05 prints as 0.15.
    let at = |k: f64| {
        if exponent >= 0 {
            k * mantissa * magnitude
        } else {
            k * mantissa / 10f64.powi(-exponent)
        }
    };
    let first = (lo / step).floor();
    let mut ticks = Vec::new();
    let mut k = first;
    while at(k) < hi + step * 0.999 && ticks.len() <= 50 {
        ticks.push(at(k));
        k += 1.0;
    }
    ticks
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

fn fmt(x: f64) -> String {
    format!("{x:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 97.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(
            nice_ticks(0.0, 0.23, 5),
            vec![0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
        );
        assert_eq!(nice_ticks(5.0, 5.0, 5).first(), Some(&5.0));
    }

    #[test]
    fn every_mark_has_a_hover_title() {
        let bars = hbars(
            "value",
            &[Bar {
                label: "POST /api/payments".into(),
                note: "$1.2k".into(),
                segments: vec![Segment {
                    value: 3.0,
                    color: BLUE,
                    title: "direct $1.2k".into(),
                }],
                href: None,
            }],
        )
        .into_string();
        assert!(
            bars.contains("<title>POST /api/payments: direct $1.2k</title>"),
            "{bars}"
        );
        let line = lines(
            "requests",
            &[Series {
                name: "requests".into(),
                color: BLUE,
                points: vec![(0, Some(1.0)), (60_000, None), (120_000, Some(3.0))],
            }],
            &|v| format!("{v}"),
        )
        .into_string();
        assert_eq!(
            line.matches("<circle").count(),
            2,
            "a hover target per point"
        );
        assert_eq!(line.matches("<title>requests at").count(), 2);
        let series_lines = line
            .matches(r##"<polyline fill="none" opacity="1" stroke="#0072B2""##)
            .count();
        assert_eq!(series_lines, 2, "a gap lifts the pen: {line}");
        assert!(line.starts_with(r#"<svg class="chart" role="img" aria-label="requests""#));
        assert!(empty().into_string().contains("No data"));
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn issue_18_time_ticks_fall_on_round_times() {
        // A 24 h range starting at 08:26: ticks at 12:00, 18:00, 00:00 (the date), 06:00.
        let x0 = 1_790_000_000_000 - 1_790_000_000_000 % (24 * HOUR) + 8 * HOUR + 26 * 60_000;
        let (ticks, step) = time_ticks(x0, x0 + 24 * HOUR);
        assert_eq!(step, 6 * HOUR);
        assert!(ticks.iter().all(|t| t % step == 0), "{ticks:?}");
        assert!(ticks.len() >= 3 && ticks.len() <= 6, "{ticks:?}");
        let labels: Vec<String> = ticks.iter().map(|t| time_label(*t, step)).collect();
        assert_eq!(labels[0], "12:00");
        assert!(
            labels.iter().any(|l| l.len() == 5 && l.contains('-')),
            "a date at midnight: {labels:?}"
        );
        // Seven days: daily ticks at midnight, labelled with the date.
        let (ticks, step) = time_ticks(x0, x0 + 7 * 24 * HOUR);
        assert!(step >= 24 * HOUR && ticks.iter().all(|t| t % (24 * HOUR) == 0));
        let chart = lines(
            "r",
            &[Series {
                name: "r".into(),
                color: BLUE,
                points: vec![(x0, Some(1.0)), (x0 + 24 * HOUR, Some(2.0))],
            }],
            &|v| format!("{v}"),
        )
        .into_string();
        assert!(chart.contains(">12:00</text>"), "{chart}");
        assert!(!chart.contains(":26<"), "no tick at the range's odd start");
    }

    #[test]
    fn issue_18_rate_charts_fit_their_axis_and_incomplete_periods_are_marked() {
        let ticks = y_range(&[0.971, 0.985, 0.99], true);
        assert!(ticks[0] > 0.9 && ticks[0] <= 0.971, "{ticks:?}");
        assert!(
            *ticks.last().unwrap() >= 0.99 && *ticks.last().unwrap() <= 1.0,
            "{ticks:?}"
        );
        assert_eq!(y_range(&[0.971, 0.99], false)[0], 0.0, "counts start at 0");
        let flat = y_range(&[0.5], true);
        assert!(
            flat[0] < 0.5 && *flat.last().unwrap() > 0.5 && flat[0] > 0.0,
            "{flat:?}"
        );

        let series = [Series {
            name: "rate".into(),
            color: RED,
            points: vec![
                (0, Some(0.2)),
                (HOUR, Some(0.98)),
                (2 * HOUR, Some(0.97)),
                (3 * HOUR, Some(0.3)),
            ],
        }];
        let axes = Axes {
            fit_y: true,
            incomplete: vec![0, 3 * HOUR],
        };
        let svg = lines_with("rate", &series, &|v| format!("{v}"), &axes).into_string();
        assert_eq!(
            svg.matches(r#"class="incomplete""#).count(),
            2,
            "first and last segments dashed: {svg}"
        );
        assert_eq!(svg.matches("(incomplete period)</title>").count(), 2);
        assert!(svg.contains("an incomplete period"), "legend note");
        assert_eq!(
            svg.matches(r##"<polyline fill="none" opacity="1" stroke="#D55E00""##)
                .count(),
            1,
            "one solid run between"
        );

        let answer = serde_json::json!({"interval": "1h", "points": [
            {"start": 30 * 60_000, "end": HOUR, "value": 1.0},
            {"start": HOUR, "end": 2 * HOUR, "value": 2.0},
            {"start": 2 * HOUR, "end": 2 * HOUR + 60_000, "value": 0.0},
        ]});
        assert_eq!(timeseries(&answer).1, vec![30 * 60_000, 2 * HOUR]);
        assert_eq!(
            incomplete_buckets(&[0, HOUR, 2 * HOUR], 0, 2 * HOUR + 5),
            vec![2 * HOUR]
        );
        assert!(incomplete_buckets(&[0, HOUR], 0, 2 * HOUR).is_empty());
    }

    #[test]
    fn interval_axis_covers_the_intervals_and_the_reference() {
        let row = |low: f64, high: f64| Interval {
            label: "x".into(),
            estimate: Some((low + high) / 2.0),
            low,
            high,
            color: BLUE,
            title: "t".into(),
            note: String::new(),
        };
        let ticks = interval_ticks(&[row(0.013, 0.086)], Some(0.0));
        assert_eq!(ticks.first(), Some(&0.0));
        assert!(*ticks.last().unwrap() >= 0.086, "{ticks:?}");
        let ticks = interval_ticks(&[row(-3.0, -1.0), row(-2.0, 4.5)], Some(0.0));
        assert!(
            ticks[0] <= -3.0 && *ticks.last().unwrap() >= 4.5,
            "{ticks:?}"
        );
        assert_eq!(interval_ticks(&[], None), vec![0.0, 1.0]);
        let svg = intervals("ci", &[row(-1.0, 2.0)], Some(0.0), &|v| format!("{v}")).into_string();
        assert_eq!(svg.matches("<title>x: t</title>").count(), 3, "{svg}");
        assert!(
            svg.contains("stroke-dasharray"),
            "the reference line is drawn"
        );
    }

    #[test]
    fn tree_rows_connect_to_their_parent() {
        let row = |depth: usize, label: &str| TreeRow {
            depth,
            label: label.into(),
            value: 10.0,
            color: BLUE,
            title: "10 users".into(),
            note: String::new(),
        };
        let rows = [row(0, "a"), row(1, "b"), row(2, "c"), row(1, "d")];
        assert_eq!(tree_parent(&rows, 0), None);
        assert_eq!(tree_parent(&rows, 2), Some(1));
        assert_eq!(tree_parent(&rows, 3), Some(0));
        let svg = tree("paths", &rows).into_string();
        assert_eq!(svg.matches("<title>").count(), 4);
        assert_eq!(svg.matches("<path").count(), 3);
    }
}
