//! Which events a metric counts: API calls by route, method, service, provider, direction,
//! plan, segment, variant and status, or outcomes by name.

use serde::{Deserialize, Serialize};

/// Status classes a call selector may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusMatch {
    #[serde(rename = "2xx")]
    S2xx,
    #[serde(rename = "3xx")]
    S3xx,
    #[serde(rename = "4xx")]
    S4xx,
    #[serde(rename = "5xx")]
    S5xx,
    /// Below 400.
    Success,
    /// A 5xx or a call with an `error_type`.
    Error,
}

/// A set of API calls, or of outcomes when `outcome` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selector {
    /// Outcomes with this name (`purchase`, `payment_initiated`) instead of API calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Route template; `*` matches any characters (`/api/payments/*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Third-party provider of the call (`stripe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `inbound` or `outbound`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// `ml_v2`, `reco=ml_v2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusMatch>,
}

impl Selector {
    pub fn calls() -> Selector {
        Selector::default()
    }

    pub fn outcome(name: &str) -> Selector {
        Selector {
            outcome: Some(name.to_owned()),
            ..Selector::default()
        }
    }

    pub fn route(method: &str, route: &str) -> Selector {
        Selector {
            method: Some(method.to_owned()),
            route: Some(route.to_owned()),
            ..Selector::default()
        }
    }

    pub fn is_outcome(&self) -> bool {
        self.outcome.is_some()
    }

    /// The same selector without its status class (the total a rate divides by).
    pub fn without_status(&self) -> Selector {
        Selector {
            status: None,
            ..self.clone()
        }
    }

    /// Problems with this selector, each naming the field under `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(name) = &self.outcome {
            if name.trim().is_empty() {
                problems.push(format!("{at}.outcome: must not be empty"));
            }
            let call_fields = [
                ("route", self.route.is_some()),
                ("method", self.method.is_some()),
                ("service", self.service.is_some()),
                ("provider", self.provider.is_some()),
                ("direction", self.direction.is_some()),
                ("plan", self.plan.is_some()),
                ("segment", self.segment.is_some()),
                ("variant", self.variant.is_some()),
                ("status", self.status.is_some()),
            ];
            for (field, set) in call_fields {
                if set {
                    problems.push(format!(
                        "{at}.{field}: outcomes are selected by name only; drop `{field}` or select API calls"
                    ));
                }
            }
        }
        if let Some(direction) = &self.direction
            && direction != "inbound"
            && direction != "outbound"
        {
            problems.push(format!(
                "{at}.direction: `{direction}` must be `inbound` or `outbound`"
            ));
        }
        problems
    }

    /// Whether a route template matches `route` (`*` is any run of characters).
    pub fn route_matches(&self, route: &str) -> bool {
        self.route
            .as_deref()
            .is_none_or(|pattern| glob_matches(pattern, route))
    }

    /// Whether a status class (index 0 = 1xx .. 4 = 5xx) is kept; errors are handled apart.
    pub fn keeps_class(&self, class: usize) -> bool {
        match self.status {
            None | Some(StatusMatch::Error) => true,
            Some(StatusMatch::S2xx) => class == 1,
            Some(StatusMatch::S3xx) => class == 2,
            Some(StatusMatch::S4xx) => class == 3,
            Some(StatusMatch::S5xx) => class == 4,
            Some(StatusMatch::Success) => class < 3,
        }
    }
}

/// `*` matches any run of characters, everything else itself: the same globs as the
/// business answers' route patterns.
pub use valuetrace_model::pattern::glob as glob_matches;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_route_templates() {
        assert!(glob_matches("/api/payments/*", "/api/payments/{id}"));
        assert!(glob_matches("*", "/x"));
        assert!(glob_matches("/a/*/c*", "/a/b/cd"));
        assert!(!glob_matches("/a/*/c", "/a/b/d"));
        assert!(!glob_matches("/ab*ba", "/aba"));
        assert!(glob_matches("/exact", "/exact"));
        assert!(!glob_matches("/exact", "/exactly"));
    }

    #[test]
    fn outcome_selectors_refuse_call_fields() {
        let selector = Selector {
            outcome: Some("purchase".into()),
            route: Some("/x".into()),
            ..Selector::default()
        };
        let problems = selector.problems("m.numerator");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("m.numerator.route:"),
            "{problems:?}"
        );
    }
}
