//! Per-project analysis settings (`[projects.analysis]` in `valuetrace.toml`): attribution
//! window, the conversion outcome, the cost model, error classification rules, silent-failure
//! pairs, features for priority scoring and the impact score's weights.

use serde::{Deserialize, Serialize};
use valuetrace_model::time::parse_duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// An outcome is attributed to the endpoints its user (or session) called within this time
    /// before it.
    pub attribution_window: String,
    /// Attribution model used for the impact score: `linear`, `first_touch` or `last_touch`.
    pub attribution_model: String,
    /// Outcomes whose value is attributed; empty: every outcome that carries a value.
    pub attributed_outcomes: Vec<String>,
    /// The outcome that counts as a successful transaction (conversion) in session answers.
    pub conversion_outcome: String,
    /// Success rate (non-5xx share) below which an endpoint counts as unreliable.
    pub reliability_target: f64,
    /// Fewest sessions a latency bucket needs before its conversion rate is trusted.
    pub min_bucket_sessions: u64,
    pub impact_weights: ImpactWeights,
    pub costs: Vec<CostRule>,
    pub error_rules: Vec<ErrorRule>,
    pub gaps: Vec<GapRule>,
    pub features: Vec<Feature>,
    /// Cost of one hour of development, for feature priority.
    pub hourly_cost: f64,
    /// Priority score above which a feature is `high` (and above `medium_priority`, `medium`).
    pub high_priority: f64,
    pub medium_priority: f64,
    /// Routes left out of paths, strict funnels and "where did they go instead" (health checks,
    /// static files): route patterns such as `/health*` or `GET /static/*`.
    pub noise_routes: Vec<String>,
    /// The event that counts as the first value for time to first value (a step such as
    /// `outcome:purchase` or `POST /api/orders status=2xx`).
    pub value_event: String,
    /// The outcome that marks a churned actor, to validate the churn-risk score.
    pub churn_outcome: String,
    /// The ISO 4217 code every money figure is reported in; unset: the most frequent currency
    /// among the valued events of the answer's window. Values without a currency are taken to be
    /// in it.
    pub reporting_currency: Option<String>,
    /// One unit of each other currency in the reporting currency (`USD = 0.92`). Values in a
    /// currency with no rate are never summed with the rest: answers report them apart.
    pub currency_rates: std::collections::BTreeMap<String, f64>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            attribution_window: "24h".into(),
            attribution_model: "linear".into(),
            attributed_outcomes: Vec::new(),
            conversion_outcome: "purchase".into(),
            reliability_target: 0.99,
            min_bucket_sessions: 30,
            impact_weights: ImpactWeights::default(),
            costs: Vec::new(),
            error_rules: Vec::new(),
            gaps: Vec::new(),
            features: Vec::new(),
            hourly_cost: 100.0,
            high_priority: 0.8,
            medium_priority: 0.4,
            noise_routes: vec![
                "/health*".into(),
                "/metrics".into(),
                "/static/*".into(),
                "/favicon.ico".into(),
            ],
            value_event: "outcome:purchase".into(),
            churn_outcome: "churn".into(),
            reporting_currency: None,
            currency_rates: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpactWeights {
    pub value: f64,
    pub engagement: f64,
}

impl Default for ImpactWeights {
    fn default() -> Self {
        ImpactWeights {
            value: 0.6,
            engagement: 0.4,
        }
    }
}

/// Infrastructure cost of the endpoints a rule matches. The most specific rule applies to an
/// endpoint: one with `route`, else one with `service`, else one with neither (the default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostRule {
    pub service: Option<String>,
    /// `POST /api/payments*` or `/api/search*` (`*` matches anything).
    pub route: Option<String>,
    pub per_request: f64,
    /// Per second of request latency (a proxy for CPU time).
    pub per_cpu_second: f64,
    /// A monthly bill split across the matched endpoints by their share of requests, prorated to
    /// the window (30 days = one month).
    pub monthly: f64,
}

/// Failed calls matching `status` (and `route`, if given) belong to `class`, before `error_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// `503`, `5xx` or `500-504`.
    pub status: String,
    #[serde(default)]
    pub route: Option<String>,
    pub class: String,
}

/// A silent-failure pair: every `start` should be followed by an `end` within `within`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapRule {
    pub name: String,
    /// `POST /api/payments` (successful calls of that route) or `outcome:payment_initiated`.
    pub start: String,
    pub end: String,
    pub within: String,
    /// `session`, `user`, `account` or `property:<name>` (e.g. `property:order_id`).
    #[serde(default = "default_match")]
    pub match_by: String,
}

fn default_match() -> String {
    "session".into()
}

/// A product feature: a group of routes with a development effort estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub name: String,
    /// Route patterns, as in cost rules.
    pub routes: Vec<String>,
    pub effort_hours: f64,
}

pub use valuetrace_model::pattern::{glob, route_matches};

/// A parsed status pattern: inclusive range.
pub fn parse_status(pattern: &str) -> Option<(u16, u16)> {
    let pattern = pattern.trim();
    if let Some(class) = pattern.strip_suffix("xx") {
        let digit: u16 = class.parse().ok().filter(|d| (1..=5).contains(d))?;
        return Some((digit * 100, digit * 100 + 99));
    }
    if let Some((lo, hi)) = pattern.split_once('-') {
        let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        return (lo <= hi).then_some((lo, hi));
    }
    pattern.parse().ok().map(|s| (s, s))
}

/// What a gap rule's `start` or `end` names.
#[derive(Debug, Clone, PartialEq)]
pub enum StepSpec {
    Route(String),
    Outcome(String),
}

impl StepSpec {
    pub fn parse(text: &str) -> Option<StepSpec> {
        match text.strip_prefix("outcome:") {
            Some(name) if !name.trim().is_empty() => Some(StepSpec::Outcome(name.trim().into())),
            Some(_) => None,
            None if text.contains('/') => Some(StepSpec::Route(text.trim().into())),
            None => None,
        }
    }
}

impl AnalysisConfig {
    /// Per endpoint id (index 0 unused): whether the endpoint is noise for journeys.
    pub fn noise(&self, names: &crate::facts::Names) -> Vec<bool> {
        std::iter::once(false)
            .chain(names.endpoints.iter().map(|e| {
                self.noise_routes
                    .iter()
                    .any(|pattern| route_matches(pattern, &e.method, &e.route))
            }))
            .collect()
    }

    pub fn attribution_window_ms(&self) -> i64 {
        parse_duration(&self.attribution_window).unwrap_or(86_400_000)
    }

    /// Every problem, each naming the field, so a bad file is refused with all reasons at once.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if parse_duration(&self.attribution_window).is_none_or(|ms| ms <= 0) {
            problems.push(format!(
                "{at}.attribution_window: `{}` is not a duration such as 24h",
                self.attribution_window
            ));
        }
        if !["linear", "first_touch", "last_touch"].contains(&self.attribution_model.as_str()) {
            problems.push(format!(
                "{at}.attribution_model: `{}` must be linear, first_touch or last_touch",
                self.attribution_model
            ));
        }
        if !(0.0..=1.0).contains(&self.reliability_target) {
            problems.push(format!("{at}.reliability_target: must be between 0 and 1"));
        }
        problems.extend(crate::money::config_problems(self, at));
        let w = &self.impact_weights;
        if !(w.value >= 0.0 && w.engagement >= 0.0 && w.value + w.engagement > 0.0) {
            problems.push(format!(
                "{at}.impact_weights: value and engagement must be >= 0 and not both 0"
            ));
        }
        for (i, rule) in self.costs.iter().enumerate() {
            let numbers = [rule.per_request, rule.per_cpu_second, rule.monthly];
            if numbers.iter().any(|n| !(n.is_finite() && *n >= 0.0)) {
                problems.push(format!("{at}.costs[{i}]: costs must be finite and >= 0"));
            }
            if rule.service.is_some() && rule.route.is_some() {
                problems.push(format!("{at}.costs[{i}]: give service or route, not both"));
            }
        }
        for (i, rule) in self.error_rules.iter().enumerate() {
            if parse_status(&rule.status).is_none() {
                problems.push(format!(
                    "{at}.error_rules[{i}].status: `{}` must be a status (503), a class (5xx) or a range (500-504)",
                    rule.status
                ));
            }
            if rule.class.trim().is_empty() {
                problems.push(format!("{at}.error_rules[{i}].class: must not be empty"));
            }
        }
        for (i, gap) in self.gaps.iter().enumerate() {
            for (field, step) in [("start", &gap.start), ("end", &gap.end)] {
                if StepSpec::parse(step).is_none() {
                    problems.push(format!(
                        "{at}.gaps[{i}].{field}: `{step}` must be a route such as `POST /api/payments` or `outcome:<name>`"
                    ));
                }
            }
            if parse_duration(&gap.within).is_none_or(|ms| ms <= 0) {
                problems.push(format!(
                    "{at}.gaps[{i}].within: `{}` is not a duration",
                    gap.within
                ));
            }
            let by = gap.match_by.as_str();
            let property = by.strip_prefix("property:").is_some_and(|p| !p.is_empty());
            if !(["session", "user", "account"].contains(&by) || property) {
                problems.push(format!(
                    "{at}.gaps[{i}].match_by: `{by}` must be session, user, account or property:<name>"
                ));
            }
        }
        for (i, route) in self.noise_routes.iter().enumerate() {
            if !route.contains('/') {
                problems.push(format!(
                    "{at}.noise_routes[{i}]: `{route}` must be a route pattern such as `/health*`"
                ));
            }
        }
        if StepSpec::parse(&self.value_event).is_none() {
            problems.push(format!(
                "{at}.value_event: `{}` must be a route such as `POST /api/orders` or `outcome:<name>`",
                self.value_event
            ));
        }
        for (i, feature) in self.features.iter().enumerate() {
            if feature.routes.is_empty() {
                problems.push(format!(
                    "{at}.features[{i}] ({}): routes must not be empty",
                    feature.name
                ));
            }
            if !(feature.effort_hours.is_finite() && feature.effort_hours > 0.0) {
                problems.push(format!(
                    "{at}.features[{i}] ({}): effort_hours must be > 0",
                    feature.name
                ));
            }
        }
        if !(self.hourly_cost.is_finite() && self.hourly_cost > 0.0) {
            problems.push(format!("{at}.hourly_cost: must be > 0"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("/api/payments*", "/api/payments/{id}/confirm"));
        assert!(glob("/api/*/items", "/api/cart/items"));
        assert!(!glob("/api/*/items", "/api/cart/items/{id}"));
        assert!(glob("/healthz", "/healthz"));
        assert!(!glob("/health", "/healthz"));
        assert!(route_matches(
            "POST /api/payments*",
            "POST",
            "/api/payments"
        ));
        assert!(!route_matches(
            "POST /api/payments*",
            "GET",
            "/api/payments/{id}"
        ));
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("5xx"), Some((500, 599)));
        assert_eq!(parse_status("429"), Some((429, 429)));
        assert_eq!(parse_status("500-504"), Some((500, 504)));
        assert_eq!(parse_status("504-500"), None);
        assert_eq!(parse_status("9xx"), None);
    }

    #[test]
    fn bad_settings_are_named() {
        let mut config = AnalysisConfig {
            attribution_model: "magic".into(),
            ..AnalysisConfig::default()
        };
        config.gaps.push(GapRule {
            name: "webhook".into(),
            start: "payments".into(),
            end: "outcome:".into(),
            within: "soon".into(),
            match_by: "cookie".into(),
        });
        let problems = config.problems("projects[0].analysis");
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].contains("attribution_model"));
    }
}
