//! Watching the business: a metric catalog, alert rules over it, notifications, and a
//! Prometheus exposition of the catalog.
//!
//! - [`catalog`] (`[[projects.metrics]]`): metrics as code — definition ([`selector`]s of calls
//!   or outcomes), unit, owner, criticality, retention class, channels, docs; [`lint`] checks
//!   names (`noun_unit[_total]`) and labels (allow-list, never identities).
//! - [`source::MetricSource`]: counts over a window; [`store_source::StoreSource`] reads the
//!   store's rollups (calls), the outcomes table, and journeys (funnels). [`measure`] turns a
//!   catalog metric into a value and the volume it rests on.
//! - [`rules`] (`[[projects.alerts.rules]]`): threshold with `for`, ratio to yesterday,
//!   [`seasonal`] anomaly (mean, or median and MAD), and [`burn`]-rate SLO alerts.
//!   [`evaluate`] judges one rule at `now`; [`state`] steps inactive → pending → firing →
//!   resolved; [`engine`] runs all rules of a project, keeps history and silences, groups
//!   notices and puts the rendered [`notify`] payloads in the [`outbox`]; [`deliver`] sends them
//!   (after the [`ssrf`] check) with retries; a 4xx other than 408/429 is refused for good
//!   and not retried. [`test_send`] sends a marked test notification through a rule's channels.
//! - [`collect`] + [`exposition`]: the catalog as Prometheus text with a cardinality guard.
//! - [`orphans`]: catalog metrics without data.
//! - [`rule_series`]: a rule's value over a range next to its bounds (the Alerts page's charts).
//!
//! Time is always passed in (`now`, ms since the epoch): tests drive a clock by hand. The crate
//! sits above the store and the answers and below the server, which runs the evaluation loop,
//! the delivery loop and the HTTP API.

pub mod burn;
pub mod catalog;
pub mod collect;
pub mod config;
pub mod deliver;
pub mod dry_run;
pub mod engine;
pub mod evaluate;
pub mod exposition;
pub mod fake_source;
pub mod lint;
pub mod measure;
pub mod notify;
pub mod orphans;
pub mod outbox;
pub mod rule_series;
pub mod rules;
pub mod seasonal;
pub mod selector;
pub mod source;
pub mod ssrf;
pub mod state;
pub mod store_source;
pub mod test_send;

pub use catalog::{Catalog, MetricDef};
pub use config::{AlertsConfig, ProjectAlerts};
pub use engine::Engine;
pub use source::MetricSource;
