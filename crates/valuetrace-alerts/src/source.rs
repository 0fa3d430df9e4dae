//! Where metric values come from: [`MetricSource`] answers counts of calls and outcomes over a
//! window `[from, to)`. [`crate::store_source::StoreSource`] reads the embedded store's rollups;
//! tests use [`FakeSource`], whose events they place by hand.

use crate::selector::{Selector, StatusMatch};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(String),
}

/// Latency of a set of calls; the store answers from its sketches (±1% relative error).
pub trait LatencyView: Send + Sync + std::fmt::Debug {
    /// The quantile `q` in milliseconds.
    fn quantile_ms(&self, q: f64) -> Option<f64>;
    /// Calls at or below `ms` milliseconds.
    fn count_at_most_ms(&self, ms: f64) -> u64;
    fn count(&self) -> u64;
}

/// The endpoint dimensions a call metric may be labelled with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EndpointLabels {
    pub route: String,
    pub method: String,
    pub service: String,
    pub provider: String,
    pub direction: String,
}

impl EndpointLabels {
    /// The value of an allowed label (`status_class` is per class, not per endpoint).
    pub fn get(&self, label: &str) -> &str {
        match label {
            "route" => &self.route,
            "method" => &self.method,
            "service" => &self.service,
            "provider" => &self.provider,
            "direction" => &self.direction,
            _ => "",
        }
    }
}

/// The calls of one endpoint in a window.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub labels: EndpointLabels,
    pub count: u64,
    /// Index 0 = 1xx .. 4 = 5xx.
    pub status_classes: [u64; 5],
    /// 5xx or with an `error_type`.
    pub errors: u64,
    pub value_sum: f64,
    pub latency_sum_ms: f64,
    pub latency: Arc<dyn LatencyView>,
}

impl EndpointStats {
    /// Calls kept by the selector's status match.
    pub fn selected(&self, selector: &Selector) -> u64 {
        match selector.status {
            None => self.count,
            Some(StatusMatch::Error) => self.errors,
            Some(_) => (0..5)
                .filter(|class| selector.keeps_class(*class))
                .map(|class| self.status_classes[class])
                .sum(),
        }
    }
}

/// Outcomes of one name in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutcomeStats {
    pub count: u64,
    pub value_sum: f64,
}

/// Conversion of a funnel whose first step happened in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FunnelStats {
    pub entered: u64,
    pub converted: u64,
}

pub trait MetricSource: Send + Sync {
    /// Calls in `[from, to)` matching the selector's dimensions (not its status), per endpoint.
    fn calls(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Vec<EndpointStats>, SourceError>;

    /// Outcomes named `name` in `[from, to)`.
    fn outcomes(
        &self,
        project: &str,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<OutcomeStats, SourceError>;

    /// The latency of all matching calls in `[from, to)`, merged across endpoints.
    fn latency(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Arc<dyn LatencyView>, SourceError>;

    /// Distinct users of the matching calls in `[from, to)`.
    fn distinct_users(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<u64, SourceError>;

    /// Actors whose first step falls in `[from, to)` and how many reached the last step.
    fn funnel(
        &self,
        project: &str,
        steps: &[String],
        window_ms: i64,
        from: i64,
        to: i64,
    ) -> Result<FunnelStats, SourceError>;
}

/// Events placed by hand, for tests: calls and outcomes at given times.
#[derive(Debug, Default, Clone)]
pub struct FakeSource {
    /// (time, endpoint, status, latency ms, value)
    pub calls: Vec<(i64, EndpointLabels, u16, f64, f64)>,
    /// time → (name, count)
    pub outcomes: BTreeMap<i64, Vec<(String, u64)>>,
}

#[derive(Debug)]
struct SortedLatencies(Vec<f64>);

impl LatencyView for SortedLatencies {
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.0.len();
        (n > 0).then(|| self.0[((q * (n - 1) as f64).floor() as usize).min(n - 1)])
    }
    fn count_at_most_ms(&self, ms: f64) -> u64 {
        self.0.partition_point(|latency| *latency <= ms) as u64
    }
    fn count(&self) -> u64 {
        self.0.len() as u64
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

    /// `count` calls at `at`, spread over nothing (all at the same millisecond).
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
        for _ in 0..count {
            self.calls
                .push((at, endpoint.clone(), status, latency_ms, 0.0));
        }
    }

    pub fn add_outcomes(&mut self, at: i64, name: &str, count: u64) {
        self.outcomes
            .entry(at)
            .or_default()
            .push((name.to_owned(), count));
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
        let mut by_endpoint: BTreeMap<EndpointLabels, (EndpointStats, Vec<f64>)> = BTreeMap::new();
        let inside = self
            .calls
            .iter()
            .filter(|call| call.0 >= from && call.0 < to);
        for (_, labels, status, latency, value) in inside.filter(|c| labels_match(selector, &c.1)) {
            let (stats, latencies) = by_endpoint.entry(labels.clone()).or_insert_with(|| {
                let stats = EndpointStats {
                    labels: labels.clone(),
                    count: 0,
                    status_classes: [0; 5],
                    errors: 0,
                    value_sum: 0.0,
                    latency_sum_ms: 0.0,
                    latency: Arc::new(SortedLatencies(Vec::new())),
                };
                (stats, Vec::new())
            });
            stats.count += 1;
            stats.status_classes[usize::from(status / 100).clamp(1, 5) - 1] += 1;
            stats.errors += u64::from(*status >= 500);
            stats.value_sum += if *status < 400 { *value } else { 0.0 };
            stats.latency_sum_ms += latency;
            latencies.push(*latency);
        }
        Ok(by_endpoint
            .into_values()
            .map(|(mut stats, mut latencies)| {
                latencies.sort_by(f64::total_cmp);
                stats.latency = Arc::new(SortedLatencies(latencies));
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
            .range(from..to)
            .flat_map(|(_, entries)| entries)
            .filter(|(outcome, _)| outcome == name)
            .map(|(_, count)| count)
            .sum();
        Ok(OutcomeStats {
            count,
            value_sum: 0.0,
        })
    }

    fn latency(
        &self,
        _project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Arc<dyn LatencyView>, SourceError> {
        let mut latencies: Vec<f64> = self
            .calls
            .iter()
            .filter(|call| call.0 >= from && call.0 < to && labels_match(selector, &call.1))
            .map(|call| call.3)
            .collect();
        latencies.sort_by(f64::total_cmp);
        Ok(Arc::new(SortedLatencies(latencies)))
    }

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
