//! Naming and labelling rules of the catalog: `noun_unit[_total]`, bounded labels, an owner.
//!
//! - Names: lowercase `snake_case`, at least two words, no `valuetrace_` prefix (the server's
//!   own metrics use it). Counters (`count`, `value_sum`) end in `_total`; nothing else does.
//!   A gauge or histogram ends in its unit (`_percent`, `_ratio`, `_seconds`, …), and the
//!   `unit` field says the same.
//! - Labels: only those in [`ALLOWED_LABELS`] (dimensions with few values); user, session and
//!   account ids never; non-additive metrics (quantiles, distinct users, gaps, funnels) none.
//! - Every metric has an owner team.

use crate::catalog::{MetricDef, MetricKind};

/// Labels the exposition may break a metric down by: endpoint dimensions with bounded values.
pub const ALLOWED_LABELS: [&str; 6] = [
    "route",
    "method",
    "service",
    "provider",
    "direction",
    "status_class",
];

/// Units a gauge or histogram name may end in.
pub const UNITS: [&str; 12] = [
    "percent",
    "ratio",
    "seconds",
    "bytes",
    "users",
    "requests",
    "calls",
    "events",
    "eur",
    "usd",
    "per_second",
    "count",
];

/// Words that betray a per-user label; refused whatever the allow-list says.
const IDENTITY_WORDS: [&str; 7] = [
    "user", "session", "account", "email", "ip", "customer", "id",
];

/// Problems with the name, unit, labels and ownership of `def`, each naming the field.
pub fn lint_metric(def: &MetricDef, here: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let name = def.name.as_str();
    let well_formed = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.contains("__")
        && !name.ends_with('_');
    if !well_formed {
        problems.push(format!(
            "{here}.name: `{name}` must be lowercase snake_case (noun_unit[_total]), e.g. payment_conversion_rate_percent"
        ));
        return problems;
    }
    if name.starts_with("valuetrace_") {
        problems.push(format!(
            "{here}.name: the `valuetrace_` prefix is reserved for the server's own metrics"
        ));
    }
    if name.split('_').count() < 2 {
        problems.push(format!(
            "{here}.name: `{name}` needs a noun and a unit or `_total`, e.g. {name}_total"
        ));
    }
    let counter = def.kind.prometheus_type() == "counter";
    match (counter, name.strip_suffix("_total")) {
        (true, None) => problems.push(format!(
            "{here}.name: `{name}` is a counter ({}) and must end in `_total`",
            crate::catalog::kind_name(def.kind)
        )),
        (false, Some(_)) => problems.push(format!(
            "{here}.name: `{name}` is a {} and must not end in `_total` (Prometheus reserves it for counters)",
            def.kind.prometheus_type()
        )),
        (false, None) => {
            let unit_suffix = UNITS.iter().find(|unit| name.ends_with(&format!("_{unit}")));
            match unit_suffix {
                None => problems.push(format!(
                    "{here}.name: `{name}` must end in its unit, one of {}",
                    UNITS.join(", ")
                )),
                Some(unit) if *unit != def.unit => problems.push(format!(
                    "{here}.unit: `{}` but the name ends in `_{unit}`",
                    def.unit
                )),
                Some(_) => {}
            }
            let latency = matches!(def.kind, MetricKind::Latency | MetricKind::LatencyQuantile);
            if latency && def.unit != "seconds" {
                problems.push(format!(
                    "{here}.unit: latency is exposed in seconds; name it `..._seconds`"
                ));
            }
        }
        (true, Some(_)) => {}
    }
    if def.unit.trim().is_empty() {
        problems.push(format!(
            "{here}.unit: required (`percent`, `seconds`, `requests`, `eur`, …)"
        ));
    }
    if def.owner.trim().is_empty() {
        problems.push(format!(
            "{here}.owner: every metric has an owner team (`payments`, `product`)"
        ));
    }
    problems.extend(lint_labels(def, here));
    problems
}

fn lint_labels(def: &MetricDef, here: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !def.labels.is_empty() && !def.kind.is_additive() {
        problems.push(format!(
            "{here}.labels: a {} cannot be broken down and folded into `other`; drop the labels",
            crate::catalog::kind_name(def.kind)
        ));
    }
    let outcome_based = [&def.select, &def.numerator, &def.denominator]
        .into_iter()
        .flatten()
        .any(|selector| selector.is_outcome());
    for label in &def.labels {
        let identity = label.split('_').any(|word| IDENTITY_WORDS.contains(&word));
        if identity {
            problems.push(format!(
                "{here}.labels: `{label}` would put user, session or account ids in labels; never"
            ));
        } else if !ALLOWED_LABELS.contains(&label.as_str()) {
            problems.push(format!(
                "{here}.labels: `{label}` is not allowed; use {}",
                ALLOWED_LABELS.join(", ")
            ));
        } else if outcome_based {
            problems.push(format!(
                "{here}.labels: `{label}` describes API calls; an outcome-based metric has none"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MetricDef;

    fn def(text: &str) -> MetricDef {
        toml::from_str(text).expect("test metric parses")
    }

    #[test]
    fn the_seed_names_pass() {
        let conversion = def(r#"name = "payment_conversion_rate_percent"
            kind = "ratio"
            unit = "percent"
            owner = "payments"
            numerator = { outcome = "purchase" }
            denominator = { route = "/api/checkout" }"#);
        assert_eq!(lint_metric(&conversion, "m"), Vec::<String>::new());
        let usage = def(r#"name = "feature_usage_total"
            kind = "count"
            unit = "calls"
            owner = "product"
            labels = ["route"]
            select = { route = "/api/recommendations*" }"#);
        assert_eq!(lint_metric(&usage, "m"), Vec::<String>::new());
    }

    #[test]
    fn bad_names_and_labels_are_named() {
        let bad = def(r#"name = "ConversionRate"
            kind = "ratio"
            unit = "percent"
            owner = "payments""#);
        assert!(lint_metric(&bad, "m")[0].starts_with("m.name:"));
        let counter = def(r#"name = "checkout_requests"
            kind = "count"
            unit = "requests"
            owner = "" 
            labels = ["user_id", "plan"]"#);
        let problems = lint_metric(&counter, "m").join("\n");
        assert!(problems.contains("must end in `_total`"), "{problems}");
        assert!(problems.contains("m.owner:"), "{problems}");
        assert!(problems.contains("`user_id` would put user"), "{problems}");
        assert!(problems.contains("`plan` is not allowed"), "{problems}");
        let gauge = def(r#"name = "checkout_latency_p95"
            kind = "latency_quantile"
            unit = "seconds"
            owner = "payments""#);
        assert!(lint_metric(&gauge, "m")[0].contains("must end in its unit"));
    }
}
