//! Typed query specs and the kernels that answer them over the embedded store.
//!
//! Read path: a query names a project, a window `[from, to)` (any millisecond) and filters.
//! [`window::decompose`] splits the window into whole rollup buckets (day, hour, minute cells)
//! and raw edges; [`summary`] merges the cells and scans only the raw edges, so counts and sums
//! are exact for any window and quantiles / distinct counts carry the sketches' stated error.
//! Answers ([`EndpointsAnswer`], [`TimeseriesAnswer`]) are serde types shared by the JSON API and
//! the CLI.
//!
//! [`QueryBackend`] is the seam a ClickHouse backend implements behind the same API.

pub mod aggregates;
pub mod currency;
pub mod dimensions;
pub mod endpoints;
pub mod filter;
pub mod summary;
pub mod timeseries;
pub mod window;

pub use currency::CurrencyRule;
pub use endpoints::{EndpointRow, EndpointsAnswer, EndpointsQuery, SortKey};
pub use filter::Filter;
pub use timeseries::{Interval, Metric, TimeseriesAnswer, TimeseriesPoint, TimeseriesQuery};

/// Every backend answers the same typed queries.
pub trait QueryBackend: Send + Sync {
    fn endpoints(&self, query: &EndpointsQuery) -> Result<EndpointsAnswer>;
    fn timeseries(&self, query: &TimeseriesQuery) -> Result<TimeseriesAnswer>;
    /// The health counts of the project's calls in `[from, to)` matching `filter`, per endpoint
    /// (counts, latency, users): what the business answers take where aggregates make it exact.
    fn summary(
        &self,
        project: &str,
        from: i64,
        to: i64,
        filter: &Filter,
    ) -> Result<summary::Summary>;
}

/// A shared backend answers as the backend itself.
impl<T: QueryBackend + ?Sized> QueryBackend for std::sync::Arc<T> {
    fn endpoints(&self, query: &EndpointsQuery) -> Result<EndpointsAnswer> {
        (**self).endpoints(query)
    }

    fn timeseries(&self, query: &TimeseriesQuery) -> Result<TimeseriesAnswer> {
        (**self).timeseries(query)
    }

    fn summary(
        &self,
        project: &str,
        from: i64,
        to: i64,
        filter: &Filter,
    ) -> Result<summary::Summary> {
        (**self).summary(project, from, to, filter)
    }
}

impl QueryBackend for valuetrace_store::EmbeddedStore {
    fn endpoints(&self, query: &EndpointsQuery) -> Result<EndpointsAnswer> {
        endpoints::run(self, query)
    }

    fn timeseries(&self, query: &TimeseriesQuery) -> Result<TimeseriesAnswer> {
        timeseries::run(self, query)
    }

    fn summary(
        &self,
        project: &str,
        from: i64,
        to: i64,
        filter: &Filter,
    ) -> Result<summary::Summary> {
        summary::summarize(self, project, from, to, filter)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query itself is wrong: the message tells the user what to change.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("store error")]
    Store(#[from] valuetrace_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
