//! Where metric values come from: [`MetricSource`] answers counts of calls and outcomes over a
//! window `[from, to)`. [`crate::store_source::StoreSource`] reads the embedded store's rollups;
//! tests use [`crate::fake_source::FakeSource`], whose events they place by hand.

use crate::selector::{Selector, StatusMatch};
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
    /// Value carried by the calls, in `currency`: never a sum over currencies (values that no
    /// rate converts are left out).
    pub value_sum: f64,
    /// The currency of `value_sum` (the project's reporting currency; `None` when no value named
    /// one).
    pub currency: Option<String>,
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeStats {
    pub count: u64,
    /// In `currency`, as [`EndpointStats::value_sum`].
    pub value_sum: f64,
    pub currency: Option<String>,
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
