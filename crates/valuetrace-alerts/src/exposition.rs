//! Prometheus text exposition (format 0.0.4) with a cardinality guard.
//!
//! The guard keeps, per label, the values with the most volume (at most `max_label_values`,
//! `other` included: the top `max_label_values − 1` and `other` once there are more), merges the
//! series that become equal, then keeps at most `max_series` series per metric (the rest fold
//! into one series whose labels are all `other`). Only additive values can be folded: counts,
//! sums, ratios (numerator and denominator add up) and histograms.

use std::collections::BTreeMap;

pub const OTHER: &str = "other";

#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    /// A counter or a gauge that adds up.
    Sum(f64),
    /// `numerator / denominator × scale`, a gauge.
    Ratio {
        numerator: f64,
        denominator: f64,
        scale: f64,
    },
    /// Per second over `seconds`.
    Rate { count: f64, seconds: f64 },
    /// Cumulative bucket counts for `bounds` (+Inf is `count`).
    Histogram {
        bounds: Vec<f64>,
        cumulative: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

impl SeriesValue {
    /// How much traffic the series carries (for the top-k choices).
    pub fn volume(&self) -> f64 {
        match self {
            SeriesValue::Sum(value) => value.abs(),
            SeriesValue::Ratio { denominator, .. } => *denominator,
            SeriesValue::Rate { count, .. } => *count,
            SeriesValue::Histogram { count, .. } => *count as f64,
        }
    }

    fn merge(&mut self, other: &SeriesValue) {
        match (self, other) {
            (SeriesValue::Sum(a), SeriesValue::Sum(b)) => *a += b,
            (
                SeriesValue::Ratio {
                    numerator,
                    denominator,
                    ..
                },
                SeriesValue::Ratio {
                    numerator: n,
                    denominator: d,
                    ..
                },
            ) => {
                *numerator += n;
                *denominator += d;
            }
            (SeriesValue::Rate { count, .. }, SeriesValue::Rate { count: c, .. }) => *count += c,
            (
                SeriesValue::Histogram {
                    cumulative,
                    sum,
                    count,
                    ..
                },
                SeriesValue::Histogram {
                    cumulative: c,
                    sum: s,
                    count: n,
                    ..
                },
            ) => {
                for (mine, theirs) in cumulative.iter_mut().zip(c) {
                    *mine += theirs;
                }
                *sum += s;
                *count += n;
            }
            _ => debug_assert!(false, "series of one metric share a value kind"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub value: SeriesValue,
}

/// Applies the cardinality guard (see the module docs).
pub fn guard(series: Vec<Series>, max_label_values: usize, max_series: usize) -> Vec<Series> {
    let mut names: Vec<String> = series
        .iter()
        .flat_map(|s| s.labels.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let mut kept: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for name in &names {
        let mut volume: BTreeMap<&str, f64> = BTreeMap::new();
        for s in &series {
            *volume
                .entry(s.labels.get(name).map_or("", String::as_str))
                .or_default() += s.value.volume();
        }
        let mut ranked: Vec<(&str, f64)> = volume.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let keep = if ranked.len() <= max_label_values {
            ranked.len()
        } else {
            max_label_values.saturating_sub(1)
        };
        kept.insert(
            name,
            ranked
                .iter()
                .take(keep)
                .map(|(value, _)| (*value).to_owned())
                .collect(),
        );
    }
    let mut merged: BTreeMap<BTreeMap<String, String>, SeriesValue> = BTreeMap::new();
    for s in &series {
        let labels = s
            .labels
            .iter()
            .map(|(name, value)| {
                let keep = kept
                    .get(name.as_str())
                    .is_some_and(|values| values.contains(value));
                (
                    name.clone(),
                    if keep {
                        value.clone()
                    } else {
                        OTHER.to_owned()
                    },
                )
            })
            .collect();
        merge_into(&mut merged, labels, &s.value);
    }
    if merged.len() <= max_series {
        return merged
            .into_iter()
            .map(|(labels, value)| Series { labels, value })
            .collect();
    }
    let mut ranked: Vec<(BTreeMap<String, String>, SeriesValue)> = merged.into_iter().collect();
    ranked.sort_by(|a, b| {
        b.1.volume()
            .total_cmp(&a.1.volume())
            .then_with(|| a.0.cmp(&b.0))
    });
    let rest = ranked.split_off(max_series.saturating_sub(1));
    let mut result: BTreeMap<BTreeMap<String, String>, SeriesValue> = ranked.into_iter().collect();
    for (labels, value) in rest {
        let folded = labels
            .keys()
            .map(|name| (name.clone(), OTHER.to_owned()))
            .collect();
        merge_into(&mut result, folded, &value);
    }
    result
        .into_iter()
        .map(|(labels, value)| Series { labels, value })
        .collect()
}

fn merge_into(
    into: &mut BTreeMap<BTreeMap<String, String>, SeriesValue>,
    labels: BTreeMap<String, String>,
    value: &SeriesValue,
) {
    match into.get_mut(&labels) {
        Some(existing) => existing.merge(value),
        None => {
            into.insert(labels, value.clone());
        }
    }
}

/// One metric family: `# HELP`, `# TYPE` and its samples.
pub fn render_family(out: &mut String, name: &str, help: &str, kind: &str, series: &[Series]) {
    text::header(out, name, help, kind);
    for s in series {
        match &s.value {
            SeriesValue::Sum(value) => sample(out, name, &s.labels, None, *value),
            SeriesValue::Ratio {
                numerator,
                denominator,
                scale,
            } => {
                if *denominator > 0.0 {
                    sample(out, name, &s.labels, None, numerator / denominator * scale);
                }
            }
            SeriesValue::Rate { count, seconds } => sample(
                out,
                name,
                &s.labels,
                None,
                if *seconds > 0.0 { count / seconds } else { 0.0 },
            ),
            SeriesValue::Histogram {
                bounds,
                cumulative,
                sum,
                count,
            } => {
                let bucket = format!("{name}_bucket");
                for (bound, at_most) in bounds.iter().zip(cumulative) {
                    sample(
                        out,
                        &bucket,
                        &s.labels,
                        Some(("le", format_float(*bound))),
                        *at_most as f64,
                    );
                }
                sample(
                    out,
                    &bucket,
                    &s.labels,
                    Some(("le", "+Inf".into())),
                    *count as f64,
                );
                sample(out, &format!("{name}_sum"), &s.labels, None, *sum);
                sample(
                    out,
                    &format!("{name}_count"),
                    &s.labels,
                    None,
                    *count as f64,
                );
            }
        }
    }
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &BTreeMap<String, String>,
    extra: Option<(&str, String)>,
    value: f64,
) {
    let pairs = labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    match &extra {
        Some((label, extra)) => {
            text::sample(out, name, pairs.chain([(*label, extra.as_str())]), value)
        }
        None => text::sample(out, name, pairs, value),
    }
}

pub use text::format_float;

/// The Prometheus text exposition format (0.0.4), written in one place for both endpoints that
/// speak it: the catalog's `/api/v1/projects/{project}/metrics` and the server's own `/metrics`.
pub mod text {
    use std::fmt::Write;

    /// `# HELP` (escaped) and `# TYPE` of a family.
    pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    }

    /// One sample line: `name{label="value",...} value`, label values escaped.
    pub fn sample<'a>(
        out: &mut String,
        name: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        value: f64,
    ) {
        out.push_str(name);
        let mut first = true;
        for (label, text) in labels {
            out.push(if first { '{' } else { ',' });
            first = false;
            let escaped = text
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, "{label}=\"{escaped}\"");
        }
        if !first {
            out.push('}');
        }
        let _ = writeln!(out, " {}", format_float(value));
    }

    /// A sample value: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back the same
    /// (`1` for 1.0).
    pub fn format_float(value: f64) -> String {
        if value.is_nan() {
            "NaN".into()
        } else if value.is_infinite() {
            if value > 0.0 {
                "+Inf".into()
            } else {
                "-Inf".into()
            }
        } else {
            format!("{value}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(route: &str, count: f64) -> Series {
        Series {
            labels: [("route".to_owned(), route.to_owned())].into(),
            value: SeriesValue::Sum(count),
        }
    }

    #[test]
    fn ten_thousand_values_become_ten_and_nothing_is_lost() {
        let input: Vec<Series> = (0..10_000)
            .map(|i| series(&format!("/r/{i}"), f64::from(i)))
            .collect();
        let total: f64 = input.iter().map(|s| s.value.volume()).sum();
        let guarded = guard(input, 10, 1000);
        assert_eq!(guarded.len(), 10);
        let other = guarded
            .iter()
            .find(|s| s.labels["route"] == OTHER)
            .expect("other");
        assert!(other.value.volume() > 0.0);
        assert!(
            guarded.iter().any(|s| s.labels["route"] == "/r/9999"),
            "the biggest stays"
        );
        let kept: f64 = guarded.iter().map(|s| s.value.volume()).sum();
        assert_eq!(kept, total);
    }

    #[test]
    fn series_cap_folds_the_smallest() {
        // 3 labels × 10 values = 1000 combinations; cap at 100.
        let mut input = Vec::new();
        for a in 0..10 {
            for b in 0..10 {
                for c in 0..10 {
                    input.push(Series {
                        labels: [
                            ("route".to_owned(), format!("r{a}")),
                            ("method".to_owned(), format!("m{b}")),
                            ("service".to_owned(), format!("s{c}")),
                        ]
                        .into(),
                        value: SeriesValue::Sum(f64::from(a * 100 + b * 10 + c + 1)),
                    });
                }
            }
        }
        let guarded = guard(input, 10, 100);
        assert_eq!(guarded.len(), 100);
        assert!(
            guarded
                .iter()
                .any(|s| s.labels.values().all(|v| v == OTHER))
        );
    }

    #[test]
    fn rendering_escapes_and_types() {
        let mut out = String::new();
        let labels: BTreeMap<String, String> = [("route".to_owned(), "/a\"b\\".to_owned())].into();
        render_family(
            &mut out,
            "x_seconds",
            "help\nline",
            "histogram",
            &[Series {
                labels,
                value: SeriesValue::Histogram {
                    bounds: vec![0.1, 1.0],
                    cumulative: vec![1, 2],
                    sum: 1.5,
                    count: 3,
                },
            }],
        );
        assert!(out.contains("# HELP x_seconds help\\nline\n"));
        assert!(
            out.contains("x_seconds_bucket{route=\"/a\\\"b\\\\\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{route=\"/a\\\"b\\\\\"} 3\n"));
    }
}
