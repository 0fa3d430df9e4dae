//! Alert rules over catalog metrics, as written in `[[projects.alerts.rules]]`, and their checks.
//!
//! ```toml
//! [[projects.alerts.rules]]
//! name = "ConversionRateDegrade"
//! kind = "threshold"               # threshold | ratio_to_yesterday | seasonal | burn_rate
//! metric = "payment_conversion_rate_percent"
//! op = "<"
//! threshold = 94
//! window = "5m"
//! for = "15m"
//! min_volume = 20                  # fewer checkouts than this in the window: no judgment
//! severity = "critical"
//! summary = "Payment conversion rate below SLO"
//! ```

use crate::burn::{BurnWindow, workbook_windows};
use crate::catalog::Catalog;
use crate::selector::Selector;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use valuetrace_model::time::parse_duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The metric compared with a fixed threshold.
    Threshold,
    /// The metric over the window ÷ the same window one day earlier, outside [below, above].
    RatioToYesterday,
    /// The metric ÷ the mean (or median) of the same window on each of the last `days` days,
    /// outside `band`.
    Seasonal,
    /// Multi-window multi-burn-rate SLO alert (availability or latency) on selected calls.
    BurnRate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Below => value < threshold,
            Op::AtMost => value <= threshold,
            Op::Above => value > threshold,
            Op::AtLeast => value >= threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Below => "<",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::AtLeast => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sli {
    /// Good: not a 5xx.
    Availability,
    /// Good: at or below `latency_threshold`.
    Latency,
}

/// One rule as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: String,
    pub kind: RuleKind,
    /// The catalog metric (every kind but `burn_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The window the metric is computed over at each evaluation.
    #[serde(default = "five_minutes")]
    pub window: String,
    /// How long the condition must hold before the alert fires.
    #[serde(default = "zero", rename = "for")]
    pub for_duration: String,
    /// ratio_to_yesterday: fire when today ÷ yesterday is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// ratio_to_yesterday: fire when today ÷ yesterday is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// seasonal: the normal band of current ÷ baseline.
    #[serde(default = "default_band")]
    pub band: [f64; 2],
    /// seasonal: how many previous days make the baseline.
    #[serde(default = "seven")]
    pub days: u32,
    /// seasonal: median baseline, and fire only beyond `mad_k` scaled MADs of it too.
    #[serde(default)]
    pub robust: bool,
    #[serde(default = "three")]
    pub mad_k: f64,
    /// No judgment while the volume (or, for comparisons, the baseline's) is below this.
    #[serde(default)]
    pub min_volume: u64,
    /// burn_rate: the calls of the SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sli: Option<Sli>,
    /// burn_rate, latency SLI: a good call is at most this slow (`300ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_threshold: Option<String>,
    /// burn_rate: the SLO in percent (99.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<f64>,
    /// burn_rate: one alert per route and method instead of one for all selected calls.
    #[serde(default)]
    pub per_route: bool,
    /// burn_rate: the window pairs (default: the SRE workbook's four).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<BurnWindow>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub runbook: String,
    /// Channels to notify; default: the metric's.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Alerts of one group are notified together; default: the metric's owner.
    #[serde(default)]
    pub group: String,
    /// Extra labels on every alert of this rule (`team = "payments"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn five_minutes() -> String {
    "5m".into()
}
fn zero() -> String {
    "0s".into()
}
fn default_band() -> [f64; 2] {
    [0.5, 2.0]
}
fn seven() -> u32 {
    7
}
fn three() -> f64 {
    3.0
}

/// A rule with its durations parsed and its references checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub def: RuleDef,
    pub window_ms: i64,
    pub for_ms: i64,
    pub latency_threshold_ms: f64,
    pub windows: Vec<BurnWindow>,
    pub channels: Vec<String>,
    pub group: String,
}

/// Checks every rule against the catalog and the channel names; `at` names the place.
pub fn build_rules(
    defs: &[RuleDef],
    catalog: &Catalog,
    channels: &[String],
    at: &str,
) -> Result<Vec<Rule>, Vec<String>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, def) in defs.iter().enumerate() {
        let here = format!("{at}[{index}] ({})", def.name);
        if def.name.trim().is_empty() || !seen.insert(def.name.as_str()) {
            problems.push(format!("{here}.name: must be present and unique"));
        }
        let before = problems.len();
        let rule = check_rule(def, catalog, channels, &here, &mut problems);
        if problems.len() == before {
            rules.push(rule);
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn check_rule(
    def: &RuleDef,
    catalog: &Catalog,
    channels: &[String],
    here: &str,
    problems: &mut Vec<String>,
) -> Rule {
    let mut duration = |field: &str, text: &str, allow_zero: bool| match parse_duration(text)
        .filter(|ms| *ms > 0 || (allow_zero && *ms == 0))
    {
        Some(ms) => ms,
        None => {
            problems.push(format!(
                "{here}.{field}: `{text}` is not a duration such as `5m`, `15m`, `1h`"
            ));
            0
        }
    };
    let window_ms = duration("window", &def.window, false);
    let for_ms = duration("for", &def.for_duration, true);
    let latency_threshold_ms = match (&def.sli, &def.latency_threshold) {
        (Some(Sli::Latency), Some(text)) => duration("latency_threshold", text, false) as f64,
        _ => 0.0,
    };
    let metric = def.metric.as_deref().and_then(|name| catalog.get(name));
    let mut need = |ok: bool, field: &str, what: &str| {
        if !ok {
            problems.push(format!("{here}.{field}: {what}"));
        }
    };
    if def.kind == RuleKind::BurnRate {
        need(
            def.select.is_some(),
            "select",
            "required: the calls of the SLO, e.g. { route = \"/api/checkout\" }",
        );
        need(
            def.sli.is_some(),
            "sli",
            "required: `availability` or `latency`",
        );
        let objective = def.objective.unwrap_or(f64::NAN);
        need(
            objective > 0.0 && objective < 100.0,
            "objective",
            "required: the SLO in percent, between 0 and 100 (99.9)",
        );
        need(
            def.sli != Some(Sli::Latency) || def.latency_threshold.is_some(),
            "latency_threshold",
            "required for the latency SLI (`300ms`)",
        );
        if let Some(select) = &def.select {
            need(
                !select.is_outcome(),
                "select.outcome",
                "an SLO is over API calls",
            );
            need(
                select.status.is_none(),
                "select.status",
                "the SLI decides good and bad; drop `status`",
            );
        }
    } else {
        match (&def.metric, metric) {
            (None, _) => need(false, "metric", "required: the name of a catalog metric"),
            (Some(name), None) => need(
                false,
                "metric",
                &format!("`{name}` is not in [[projects.metrics]]"),
            ),
            _ => {}
        }
    }
    match def.kind {
        RuleKind::Threshold => {
            need(def.op.is_some(), "op", "required: one of <, <=, >, >=");
            need(
                def.threshold.is_some_and(f64::is_finite),
                "threshold",
                "required: a number",
            );
        }
        RuleKind::RatioToYesterday => need(
            def.below.is_some() || def.above.is_some(),
            "below",
            "give `below` (0.7: under 70% of yesterday) and/or `above`",
        ),
        RuleKind::Seasonal => {
            let [low, high] = def.band;
            need(
                low >= 0.0 && low < high,
                "band",
                "[low, high] with 0 <= low < high, e.g. [0.5, 2.0]",
            );
            need(
                (1..=28).contains(&def.days),
                "days",
                "1 to 28 previous days",
            );
            need(def.mad_k > 0.0, "mad_k", "must be positive");
        }
        RuleKind::BurnRate => {}
    }
    let windows = if def.windows.is_empty() {
        workbook_windows()
    } else {
        def.windows.clone()
    };
    for (index, window) in windows.iter().enumerate() {
        if let Err(problem) = window.check() {
            problems.push(format!("{here}.windows[{index}]: {problem}"));
        }
    }
    let metric_channels = metric.map(|m| m.def.channels.clone()).unwrap_or_default();
    let rule_channels = if def.channels.is_empty() {
        metric_channels
    } else {
        def.channels.clone()
    };
    for channel in &rule_channels {
        if !channels.contains(channel) {
            problems.push(format!(
                "{here}.channels: `{channel}` is not a [[projects.alerts.channels]] name"
            ));
        }
    }
    let group = if def.group.is_empty() {
        metric.map_or_else(|| def.name.clone(), |m| m.def.owner.clone())
    } else {
        def.group.clone()
    };
    Rule {
        def: def.clone(),
        window_ms,
        for_ms,
        latency_threshold_ms,
        windows,
        channels: rule_channels,
        group,
    }
}
