//! The metric catalog: business metrics as code, one `[[projects.metrics]]` table each.
//!
//! A metric names what it measures (`definition`: a count, a rate, a ratio of two counts, a
//! latency quantile or histogram, a value sum, distinct users, a silent-failure gap or a funnel's
//! conversion), who owns it and how much it matters. Rules alert on catalog metrics by name, the
//! per-project Prometheus endpoint exposes them, and the orphan report lists those without data.
//!
//! ```toml
//! [[projects.metrics]]
//! name = "payment_conversion_rate_percent"
//! description = "Share of checkouts that end in a purchase"
//! kind = "ratio"
//! numerator = { outcome = "purchase" }
//! denominator = { route = "/api/checkout", method = "POST" }
//! scale = 100
//! unit = "percent"
//! owner = "payments"
//! criticality = "high"
//! retention = "business_critical"
//! channels = ["payments-alerts", "business-critical"]
//! docs = "https://wiki.example.com/metrics/conversion-rate"
//! ```

use crate::selector::Selector;
use serde::{Deserialize, Serialize};
use valuetrace_model::time::parse_duration;

/// How a metric is computed (`kind` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Matching API calls or outcomes (a counter).
    Count,
    /// Matching calls or outcomes per second over the window (a gauge).
    Rate,
    /// `numerator / denominator × scale` (a gauge).
    Ratio,
    /// A latency quantile of matching calls in seconds (a gauge).
    LatencyQuantile,
    /// The latency distribution of matching calls in seconds (a histogram).
    Latency,
    /// The sum of `value` of matching successful calls or outcomes (a counter).
    ValueSum,
    /// Distinct users of matching calls over the window (a gauge).
    DistinctUsers,
    /// Share of `initiated` without a `confirmed` (a gauge): payments whose webhook never came.
    Gap,
    /// Conversion from a funnel's first step to its last (a gauge).
    FunnelConversion,
}

impl MetricKind {
    /// The Prometheus type of the metric.
    pub fn prometheus_type(self) -> &'static str {
        match self {
            MetricKind::Count | MetricKind::ValueSum => "counter",
            MetricKind::Latency => "histogram",
            _ => "gauge",
        }
    }

    /// Whether values of several label sets add up (so labels can be folded into `other`).
    pub fn is_additive(self) -> bool {
        matches!(
            self,
            MetricKind::Count
                | MetricKind::ValueSum
                | MetricKind::Latency
                | MetricKind::Rate
                | MetricKind::Ratio
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

/// One catalog entry as written in `valuetrace.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: MetricKind,
    /// The calls or outcomes counted (count, rate, latency, value_sum, distinct_users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<Selector>,
    /// Gap: the events that start something (`payment_initiated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated: Option<Selector>,
    /// Gap: the events that confirm it (`payment_webhook_received`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Selector>,
    /// Gap: how long a confirmation may take; the window is judged this much later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_within: Option<String>,
    /// Funnel: steps in the journeys syntax (`GET /api/products`, `outcome:purchase`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Funnel: how long after the first step the last may come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel_window: Option<String>,
    /// Latency quantile in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Histogram bucket bounds in seconds (latency); defaults to [`DEFAULT_BUCKETS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<f64>,
    /// Multiplies ratios and gaps (100 for percent).
    #[serde(default = "one")]
    pub scale: f64,
    /// The window a gauge is computed over when scraped (default 5m).
    #[serde(default = "five_minutes")]
    pub window: String,
    pub unit: String,
    pub owner: String,
    #[serde(default)]
    pub criticality: Criticality,
    /// Retention class (`business_critical`, `product`, `technical`).
    #[serde(default = "product")]
    pub retention: String,
    /// Notification channels (names of `[[projects.alerts.channels]]`).
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub docs: String,
    /// Labels the Prometheus exposition breaks this metric down by (see `lint::ALLOWED_LABELS`).
    #[serde(default)]
    pub labels: Vec<String>,
}

/// Latency histogram buckets in seconds, Prometheus' defaults.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn one() -> f64 {
    1.0
}

fn five_minutes() -> String {
    "5m".into()
}

fn product() -> String {
    "product".into()
}

/// What a metric computes, checked: every variant holds exactly what it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Count(Selector),
    Rate(Selector),
    Ratio {
        numerator: Selector,
        denominator: Selector,
        scale: f64,
    },
    LatencyQuantile {
        select: Selector,
        quantile: f64,
    },
    Latency {
        select: Selector,
        buckets: Vec<f64>,
    },
    ValueSum(Selector),
    DistinctUsers(Selector),
    Gap {
        initiated: Selector,
        confirmed: Selector,
        confirm_within_ms: i64,
        scale: f64,
    },
    FunnelConversion {
        steps: Vec<String>,
        window_ms: i64,
        scale: f64,
    },
}

/// A catalog metric with its definition resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub def: MetricDef,
    pub definition: Definition,
    pub window_ms: i64,
}

/// The checked catalog of one project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub metrics: Vec<Metric>,
}

impl Catalog {
    /// Checks every entry; `at` names the place in the file (`projects[0] (shop).metrics`).
    pub fn build(defs: &[MetricDef], at: &str) -> Result<Catalog, Vec<String>> {
        let mut problems = Vec::new();
        let mut metrics = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, def) in defs.iter().enumerate() {
            let here = format!("{at}[{index}] ({})", def.name);
            if !seen.insert(def.name.as_str()) {
                problems.push(format!("{here}.name: `{}` is defined twice", def.name));
            }
            problems.extend(crate::lint::lint_metric(def, &here));
            match resolve(def, &here) {
                Ok(metric) => metrics.push(metric),
                Err(found) => problems.extend(found),
            }
        }
        if problems.is_empty() {
            Ok(Catalog { metrics })
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|metric| metric.def.name == name)
    }
}

fn resolve(def: &MetricDef, here: &str) -> Result<Metric, Vec<String>> {
    let mut problems = Vec::new();
    let mut need = |field: &str, value: &Option<Selector>| -> Selector {
        match value {
            Some(selector) => {
                problems.extend(selector.problems(&format!("{here}.{field}")));
                selector.clone()
            }
            None => {
                problems.push(format!(
                    "{here}.{field}: required for kind `{}`",
                    kind_name(def.kind)
                ));
                Selector::default()
            }
        }
    };
    let duration = |field: &str, text: &str, problems: &mut Vec<String>| {
        parse_duration(text)
            .filter(|ms| *ms > 0)
            .unwrap_or_else(|| {
                problems.push(format!(
                    "{here}.{field}: `{text}` is not a duration such as `5m`, `1h`, `2d`"
                ));
                0
            })
    };
    let definition = match def.kind {
        MetricKind::Count => Definition::Count(need("select", &def.select)),
        MetricKind::Rate => Definition::Rate(need("select", &def.select)),
        MetricKind::ValueSum => Definition::ValueSum(need("select", &def.select)),
        MetricKind::DistinctUsers => Definition::DistinctUsers(need("select", &def.select)),
        MetricKind::Ratio => Definition::Ratio {
            numerator: need("numerator", &def.numerator),
            denominator: need("denominator", &def.denominator),
            scale: def.scale,
        },
        MetricKind::LatencyQuantile => {
            let select = need("select", &def.select);
            let quantile = def.quantile.unwrap_or(f64::NAN);
            if !(quantile > 0.0 && quantile < 1.0) {
                problems.push(format!(
                    "{here}.quantile: required for kind `latency_quantile`, between 0 and 1 (0.95)"
                ));
            }
            Definition::LatencyQuantile { select, quantile }
        }
        MetricKind::Latency => {
            let select = need("select", &def.select);
            let buckets = if def.buckets.is_empty() {
                DEFAULT_BUCKETS.to_vec()
            } else {
                def.buckets.clone()
            };
            let increasing = buckets.windows(2).all(|pair| pair[0] < pair[1]);
            if !increasing || buckets.iter().any(|b| !b.is_finite() || *b <= 0.0) {
                problems.push(format!(
                    "{here}.buckets: bounds must be positive seconds in increasing order"
                ));
            }
            Definition::Latency { select, buckets }
        }
        MetricKind::Gap => {
            let initiated = need("initiated", &def.initiated);
            let confirmed = need("confirmed", &def.confirmed);
            let within = def.confirm_within.as_deref().unwrap_or("10m");
            Definition::Gap {
                initiated,
                confirmed,
                confirm_within_ms: duration("confirm_within", within, &mut problems),
                scale: def.scale,
            }
        }
        MetricKind::FunnelConversion => {
            if !(2..=10).contains(&def.steps.len()) {
                problems.push(format!(
                    "{here}.steps: a funnel needs 2 to 10 steps, e.g. [\"POST /api/checkout\", \"outcome:purchase\"]"
                ));
            }
            let window = def.funnel_window.as_deref().unwrap_or("1h");
            Definition::FunnelConversion {
                steps: def.steps.clone(),
                window_ms: duration("funnel_window", window, &mut problems),
                scale: def.scale,
            }
        }
    };
    if !(def.scale.is_finite() && def.scale > 0.0) {
        problems.push(format!("{here}.scale: must be a positive number"));
    }
    let window_ms = duration("window", &def.window, &mut problems);
    if problems.is_empty() {
        Ok(Metric {
            def: def.clone(),
            definition,
            window_ms,
        })
    } else {
        Err(problems)
    }
}

pub fn kind_name(kind: MetricKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Definition {
    /// The selector whose matching events measure how much traffic a value rests on (the
    /// denominator of a ratio, the initiations of a gap): minimum volumes and orphans use it.
    pub fn volume_selector(&self) -> Option<&Selector> {
        match self {
            Definition::Count(s)
            | Definition::Rate(s)
            | Definition::ValueSum(s)
            | Definition::DistinctUsers(s) => Some(s),
            Definition::Ratio { denominator, .. } => Some(denominator),
            Definition::LatencyQuantile { select, .. } | Definition::Latency { select, .. } => {
                Some(select)
            }
            Definition::Gap { initiated, .. } => Some(initiated),
            Definition::FunnelConversion { .. } => None,
        }
    }
}
