//! Infrastructure cost per (endpoint, group) from the configured cost rules.

use crate::config::{CostRule, route_matches};
use crate::facts::EndpointKey;
use crate::usage::{KeyTable, Usage};
use std::collections::HashMap;

const MONTH_MS: f64 = 30.0 * 86_400_000.0;

/// The rule that applies to an endpoint: route rules before service rules before the default.
pub fn rule_for<'a>(
    rules: &'a [CostRule],
    endpoint: &EndpointKey,
) -> Option<(usize, &'a CostRule)> {
    let by_route = rules.iter().enumerate().find(|(_, r)| {
        r.route
            .as_ref()
            .is_some_and(|p| route_matches(p, &endpoint.method, &endpoint.route))
    });
    let by_service = || {
        rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.route.is_none() && r.service.as_ref() == Some(&endpoint.service))
    };
    let default = || {
        rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.route.is_none() && r.service.is_none())
    };
    by_route.or_else(by_service).or_else(default)
}

/// Cost of each filled key of `usage` over a window of `span_ms`; `None` without any cost rule.
pub fn costs(
    rules: &[CostRule],
    endpoints: &[EndpointKey],
    usage: &KeyTable<Usage>,
    span_ms: i64,
) -> Option<HashMap<(u32, u32), f64>> {
    if rules.is_empty() {
        return None;
    }
    let rule_of = |endpoint: u32| rule_for(rules, &endpoints[endpoint as usize - 1]);
    let mut rule_requests: HashMap<usize, f64> = HashMap::new();
    for (endpoint, _, u) in usage.iter() {
        if let Some((index, _)) = rule_of(endpoint) {
            *rule_requests.entry(index).or_default() += u.requests.sum;
        }
    }
    let months = span_ms as f64 / MONTH_MS;
    let mut out = HashMap::new();
    for (endpoint, group, u) in usage.iter() {
        let cost = match rule_of(endpoint) {
            None => 0.0,
            Some((index, rule)) => {
                let share =
                    crate::stats::ratio(u.requests.sum, rule_requests[&index]).unwrap_or(0.0);
                rule.per_request * u.requests.sum
                    + rule.per_cpu_second * u.latency_ms / 1000.0
                    + rule.monthly * months * share
            }
        };
        out.insert((endpoint, group), cost);
    }
    Some(out)
}
