//! [`FakeSource`]: events placed by hand, for tests — calls and outcomes at given times,
//! counted (not one entry per event) so tests can lay down weeks of traffic.

use crate::selector::Selector;
use crate::source::{
    EndpointLabels, EndpointStats, FunnelStats, LatencyView, MetricSource, OutcomeStats,
    SourceError,
};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
pub struct FakeSource {
    /// time → (endpoint, status, latency ms, count)
    pub calls: BTreeMap<i64, Vec<(EndpointLabels, u16, f64, u64)>>,
    /// time → (name, count)
    pub outcomes: BTreeMap<i64, Vec<(String, u64)>>,
}

/// (latency, count) sorted by latency.
#[derive(Debug)]
struct SortedLatencies(Vec<(f64, u64)>);

impl SortedLatencies {
    fn new(mut pairs: Vec<(f64, u64)>) -> Self {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        SortedLatencies(pairs)
    }
}

impl LatencyView for SortedLatencies {
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = valuetrace_model::quantile::nearest_rank(n, q);
        let mut seen = 0;
        self.0.iter().find_map(|(latency, count)| {
            seen += count;
            (seen > rank).then_some(*latency)
        })
    }

    fn count_at_most_ms(&self, ms: f64) -> u64 {
        self.0
            .iter()
            .filter(|(latency, _)| *latency <= ms)
            .map(|(_, count)| count)
            .sum()
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|(_, count)| count).sum()
    }
}

impl FakeSource {
    pub fn endpoint(method: &str, route: &str) -> EndpointLabels {
        EndpointLabels {
            route: route.into(),
            method: method.into(),
            service: "shop".into(),
            provider: String::new(),
            direction: "inbound".into(),
        }
    }

    /// `count` calls at `at` with status `status` taking 50 ms.
    pub fn add_calls(&mut self, at: i64, endpoint: &EndpointLabels, status: u16, count: u64) {
        self.add_timed_calls(at, endpoint, status, 50.0, count);
    }

    pub fn add_timed_calls(
        &mut self,
        at: i64,
        endpoint: &EndpointLabels,
        status: u16,
        latency_ms: f64,
        count: u64,
    ) {
        if count > 0 {
            self.calls
                .entry(at)
                .or_default()
                .push((endpoint.clone(), status, latency_ms, count));
        }
    }

    pub fn add_outcomes(&mut self, at: i64, name: &str, count: u64) {
        if count > 0 {
            self.outcomes
                .entry(at)
                .or_default()
                .push((name.to_owned(), count));
        }
    }

    fn matching(
        &self,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = &(EndpointLabels, u16, f64, u64)> {
        self.calls
            .range(from..to.max(from))
            .flat_map(|(_, entries)| entries)
            .filter(move |entry| labels_match(selector, &entry.0))
    }
}

fn labels_match(selector: &Selector, labels: &EndpointLabels) -> bool {
    let same =
        |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
    selector.route_matches(&labels.route)
        && selector
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(&labels.method))
        && same(&selector.service, &labels.service)
        && same(&selector.provider, &labels.provider)
        && same(&selector.direction, &labels.direction)
}

impl MetricSource for FakeSource {
    fn calls(
        &self,
        _project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Vec<EndpointStats>, SourceError> {
        let mut by_endpoint: BTreeMap<EndpointLabels, (EndpointStats, Vec<(f64, u64)>)> =
            BTreeMap::new();
        for (labels, status, latency, count) in self.matching(selector, from, to) {
            let (stats, latencies) = by_endpoint.entry(labels.clone()).or_insert_with(|| {
                let stats = EndpointStats {
                    labels: labels.clone(),
                    count: 0,
                    status_classes: [0; 5],
                    errors: 0,
                    value_sum: 0.0,
                    currency: None,
                    latency_sum_ms: 0.0,
                    latency: Arc::new(SortedLatencies(Vec::new())),
                };
                (stats, Vec::new())
            });
            stats.count += count;
            stats.status_classes[usize::from(status / 100).clamp(1, 5) - 1] += count;
            stats.errors += if *status >= 500 { *count } else { 0 };
            stats.latency_sum_ms += latency * *count as f64;
            latencies.push((*latency, *count));
        }
        Ok(by_endpoint
            .into_values()
            .map(|(mut stats, latencies)| {
                stats.latency = Arc::new(SortedLatencies::new(latencies));
                stats
            })
            .collect())
    }

    fn outcomes(
        &self,
        _project: &str,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<OutcomeStats, SourceError> {
        let count = self
            .outcomes
            .range(from..to.max(from))
            .flat_map(|(_, entries)| entries)
            .filter(|(outcome, _)| outcome == name)
            .map(|(_, count)| count)
            .sum();
        Ok(OutcomeStats {
            count,
            value_sum: 0.0,
            currency: None,
        })
    }

    fn latency(
        &self,
        _project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Arc<dyn LatencyView>, SourceError> {
        let pairs = self
            .matching(selector, from, to)
            .map(|(_, _, latency, count)| (*latency, *count))
            .collect();
        Ok(Arc::new(SortedLatencies::new(pairs)))
    }

    /// Counts calls as users (the fake has no identities).
    fn distinct_users(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<u64, SourceError> {
        let calls = self.calls(project, selector, from, to)?;
        Ok(calls.iter().map(|stats| stats.selected(selector)).sum())
    }

    fn funnel(
        &self,
        _project: &str,
        _steps: &[String],
        _window_ms: i64,
        _from: i64,
        _to: i64,
    ) -> Result<FunnelStats, SourceError> {
        Err(SourceError::Invalid(
            "the fake source has no funnels".into(),
        ))
    }
}
