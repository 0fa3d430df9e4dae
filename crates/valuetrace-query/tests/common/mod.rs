//! Helpers for the rollup integration tests: event builders, store states and brute-force answers.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use valuetrace_model::{ApiCall, Direction, Event, SCHEMA_VERSION};
use valuetrace_query::{EndpointRow, EndpointsQuery, Filter, QueryBackend, SortKey};
use valuetrace_store::sketch::RELATIVE_ERROR;
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

pub const PROJECT: &str = "p";

pub const ROUTES: [&str; 4] = ["/api/orders/{id}", "/api/orders", "/api/cart", "/health"];
pub const METHODS: [&str; 3] = ["GET", "POST", "PUT"];
pub const SERVICES: [&str; 2] = ["web", "billing"];
pub const PROVIDERS: [&str; 2] = ["stripe", "paypal"];
pub const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
pub const SEGMENTS: [&str; 2] = ["smb", "mid_market"];
/// Experiment name → its variants. `control` is a variant of both, so a bare `control` filter
/// matches calls of either experiment.
pub const EXPERIMENTS: [(&str, [&str; 3]); 2] = [
    ("reco", ["ml_v1", "ml_v2", "control"]),
    ("checkout", ["one_page", "wizard", "control"]),
];
pub const ERROR_TYPES: [&str; 3] = ["upstream_timeout", "validation", "internal"];

/// A generated instant, relative to `now`.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// `now - age`.
    Age(i64),
    /// `floor(now, width) - k × width + delta`: on or next to a bucket boundary.
    Boundary { width: i64, k: i64, delta: i64 },
}

impl At {
    pub fn resolve(self, now: i64) -> i64 {
        match self {
            At::Age(age) => now - age,
            At::Boundary { width, k, delta } => now.div_euclid(width) * width - k * width + delta,
        }
    }
}

/// A generated API call before it is given an id and an absolute timestamp.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub at: At,
    pub route: usize,
    pub method: usize,
    pub service: usize,
    pub provider: Option<usize>,
    pub plan: Option<usize>,
    pub segment: Option<usize>,
    /// (experiment index, variant index) pairs; later pairs of the same experiment win.
    pub experiments: Vec<(usize, usize)>,
    pub status: u16,
    pub latency_ms: f64,
    pub value: Option<f64>,
    pub error_type: Option<usize>,
    pub user: Option<usize>,
}

impl CallSpec {
    pub fn to_call(&self, id: &str, now: i64) -> ApiCall {
        ApiCall {
            schema_version: SCHEMA_VERSION,
            event_id: id.to_owned(),
            timestamp: self.at.resolve(now),
            service: SERVICES[self.service].into(),
            method: METHODS[self.method].into(),
            route: ROUTES[self.route].into(),
            status: self.status,
            latency_ms: self.latency_ms,
            user_id: self.user.map(|u| format!("user-{u}")),
            plan: self.plan.map(|p| PLANS[p].into()),
            segment: self.segment.map(|s| SEGMENTS[s].into()),
            experiments: self
                .experiments
                .iter()
                .map(|&(e, v)| (EXPERIMENTS[e].0.to_owned(), EXPERIMENTS[e].1[v].to_owned()))
                .collect(),
            error_type: self.error_type.map(|e| ERROR_TYPES[e].into()),
            direction: if self.provider.is_some() {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            provider: self.provider.map(|p| PROVIDERS[p].into()),
            value: self.value,
            currency: self.value.map(|_| "EUR".into()),
            ..ApiCall::default()
        }
    }
}

/// A simple call at `timestamp`, for hand-written tests.
pub fn simple_call(id: &str, timestamp: i64, route: &str, status: u16, latency_ms: f64) -> ApiCall {
    ApiCall {
        schema_version: SCHEMA_VERSION,
        event_id: id.to_owned(),
        timestamp,
        service: "web".into(),
        method: "GET".into(),
        route: route.into(),
        status,
        latency_ms,
        user_id: Some(format!("user-{}", id.len() % 7)),
        ..ApiCall::default()
    }
}

pub fn stored(call: &ApiCall, received_at: i64) -> StoredEvent {
    StoredEvent {
        event: Event::ApiCall(call.clone()),
        received_at,
        skew_ms: 0,
    }
}

pub fn open(dir: &Path, now: i64, minute_retention_ms: i64) -> EmbeddedStore {
    let mut options = StoreOptions::new(dir);
    options.minute_retention_ms = minute_retention_ms;
    EmbeddedStore::open(options, now).expect("open store")
}

pub fn append(
    store: &EmbeddedStore,
    calls: &[ApiCall],
    received_at: i64,
) -> valuetrace_store::AppendOutcome {
    Store::append(
        store,
        PROJECT,
        calls.iter().map(|call| stored(call, received_at)).collect(),
    )
    .expect("append")
}

pub fn persist(store: &EmbeddedStore, now: i64) -> valuetrace_store::PersistStats {
    let ticket = store.begin_persist().expect("begin persist");
    store.finish_persist(ticket, now).expect("finish persist")
}

/// The state a query was answered in, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Buffered,
    Persisted,
    Reopened,
}

// ---------------------------------------------------------------------------------------------
// Filters

/// A filter as generated; `Variant` carries its spelling.
#[derive(Debug, Clone)]
pub enum FilterSpec {
    None,
    Plan(String),
    Segment(String),
    /// (experiment, variant, spelling: 0 = `v`, 1 = `exp=v`, 2 = `exp:v`)
    Variant(String, String, u8),
    Service(String),
    Direction(&'static str),
    /// Two dimensions at once: a service and a plan.
    ServiceAndPlan(String, String),
}

impl FilterSpec {
    pub fn to_filter(&self) -> Filter {
        let mut filter = Filter::default();
        match self {
            FilterSpec::None => {}
            FilterSpec::Plan(plan) => filter.plan = Some(plan.clone()),
            FilterSpec::Segment(segment) => filter.segment = Some(segment.clone()),
            FilterSpec::Variant(experiment, variant, spelling) => {
                filter.variant = Some(match spelling {
                    0 => variant.clone(),
                    1 => format!("{experiment}={variant}"),
                    _ => format!("{experiment}:{variant}"),
                });
            }
            FilterSpec::Service(service) => filter.service = Some(service.clone()),
            FilterSpec::Direction(direction) => filter.direction = Some((*direction).to_owned()),
            FilterSpec::ServiceAndPlan(service, plan) => {
                filter.service = Some(service.clone());
                filter.plan = Some(plan.clone());
            }
        }
        filter
    }

    /// The brute-force predicate.
    pub fn matches(&self, call: &ApiCall) -> bool {
        match self {
            FilterSpec::None => true,
            FilterSpec::Plan(plan) => call.plan.as_deref() == Some(plan),
            FilterSpec::Segment(segment) => call.segment.as_deref() == Some(segment),
            FilterSpec::Variant(experiment, variant, spelling) => {
                if *spelling == 0 {
                    call.experiments.values().any(|v| v == variant)
                } else {
                    call.experiments.get(experiment) == Some(variant)
                }
            }
            FilterSpec::Service(service) => &call.service == service,
            FilterSpec::Direction(direction) => call.direction.as_str() == *direction,
            FilterSpec::ServiceAndPlan(service, plan) => {
                &call.service == service && call.plan.as_deref() == Some(plan)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Brute force

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub route: String,
    pub method: String,
    pub service: String,
    pub provider: Option<String>,
}

impl Key {
    pub fn of_call(call: &ApiCall) -> Self {
        Key {
            route: call.route.clone(),
            method: call.method.clone(),
            service: call.service.clone(),
            provider: call.provider.clone(),
        }
    }

    pub fn of_row(row: &EndpointRow) -> Self {
        Key {
            route: row.route.clone(),
            method: row.method.clone(),
            service: row.service.clone(),
            provider: row.provider.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub requests: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub errors: u64,
    pub value_sum: f64,
    /// Sum of |value| over the same calls: the scale for the floating-point tolerance.
    pub value_abs_sum: f64,
    pub latency_sum: f64,
    pub latencies: Vec<f64>,
    pub users: BTreeSet<String>,
}

/// Per endpoint, the calls of `calls` in `[from, to)` that `filter` keeps.
pub fn brute_force(
    calls: &[ApiCall],
    from: i64,
    to: i64,
    filter: &FilterSpec,
) -> BTreeMap<Key, Expected> {
    let mut out: BTreeMap<Key, Expected> = BTreeMap::new();
    for call in calls
        .iter()
        .filter(|c| c.timestamp >= from && c.timestamp < to && filter.matches(c))
    {
        let e = out.entry(Key::of_call(call)).or_default();
        e.requests += 1;
        match call.status / 100 {
            4 => e.status_4xx += 1,
            5 => e.status_5xx += 1,
            _ => {}
        }
        if call.error_type.is_some() || call.status >= 500 {
            e.errors += 1;
        }
        if let Some(value) = call.value
            && call.status < 400
        {
            e.value_sum += value;
            e.value_abs_sum += value.abs();
        }
        e.latency_sum += call.latency_ms;
        e.latencies.push(if call.latency_ms < 0.001 {
            0.0
        } else {
            call.latency_ms
        });
        if let Some(user) = &call.user_id {
            e.users.insert(user.clone());
        }
    }
    for e in out.values_mut() {
        e.latencies.sort_by(f64::total_cmp);
    }
    out
}

/// Exact nearest-rank quantile: the value at 1-based rank ⌈q × n⌉ of the sorted sample.
pub fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

pub fn close(got: f64, want: f64, scale: f64) -> bool {
    (got - want).abs() <= 1e-6 * scale.abs().max(want.abs()) + 1e-9
}

/// Asserts that `rows` (all endpoints of a query over `[from, to)`) match the brute force.
pub fn assert_rows(
    rows: &[EndpointRow],
    expected: &BTreeMap<Key, Expected>,
    from: i64,
    to: i64,
    context: &str,
) {
    let got: BTreeMap<Key, &EndpointRow> = rows.iter().map(|row| (Key::of_row(row), row)).collect();
    assert_eq!(got.len(), rows.len(), "{context}: duplicate endpoint rows");
    let got_keys: Vec<&Key> = got.keys().collect();
    let want_keys: Vec<&Key> = expected.keys().collect();
    assert_eq!(got_keys, want_keys, "{context}: endpoints differ");
    for (key, want) in expected {
        let row = got[key];
        let ctx = format!("{context}, endpoint {key:?}");
        assert_eq!(row.requests, want.requests, "{ctx}: requests");
        assert_eq!(
            row.direction,
            if key.provider.is_some() {
                "outbound"
            } else {
                "inbound"
            },
            "{ctx}: direction"
        );
        let n = want.requests as f64;
        assert_eq!(
            row.client_error_rate,
            want.status_4xx as f64 / n,
            "{ctx}: 4xx share"
        );
        assert_eq!(
            row.server_error_rate,
            want.status_5xx as f64 / n,
            "{ctx}: 5xx share"
        );
        assert_eq!(row.errors, want.errors, "{ctx}: errors");
        assert!(
            close(
                row.value_sum.expect("one currency"),
                want.value_sum,
                want.value_abs_sum
            ),
            "{ctx}: value_sum {:?} != {}",
            row.value_sum,
            want.value_sum
        );
        let mean = row.mean_ms.expect("mean of a non-empty endpoint");
        assert!(
            close(mean, want.latency_sum / n, want.latency_sum / n),
            "{ctx}: mean {mean} != {}",
            want.latency_sum / n
        );
        let minutes = (to - from) as f64 / 60_000.0;
        assert_eq!(
            row.requests_per_minute,
            n / minutes,
            "{ctx}: requests per minute"
        );
        if want.users.len() <= 512 {
            assert_eq!(
                row.unique_users,
                want.users.len() as u64,
                "{ctx}: unique users"
            );
        }
        for (q, got) in [(0.5, row.p50_ms), (0.95, row.p95_ms), (0.99, row.p99_ms)] {
            let exact = exact_quantile(&want.latencies, q);
            let got = got.unwrap_or_else(|| panic!("{ctx}: p{} missing", q * 100.0));
            // 1e-12 slack for a value sitting exactly on a bucket boundary (ln rounding).
            let bound = RELATIVE_ERROR * exact * (1.0 + 1e-12) + 1e-12;
            assert!(
                (got - exact).abs() <= bound,
                "{ctx}: q={q} estimate {got} not within 1% of exact {exact}"
            );
        }
    }
}

/// Runs the endpoints query for `[from, to)` and `filter` and checks every row against the brute force.
pub fn check_endpoints(
    store: &EmbeddedStore,
    calls: &[ApiCall],
    from: i64,
    to: i64,
    filter: &FilterSpec,
    context: &str,
) -> Vec<EndpointRow> {
    let answer = store
        .endpoints(&EndpointsQuery {
            project: PROJECT.into(),
            from,
            to,
            filter: filter.to_filter(),
            sort: SortKey::Route,
            limit: 1000,
            currency: Default::default(),
        })
        .expect("endpoints query");
    let expected = brute_force(calls, from, to, filter);
    assert_eq!(
        answer.total_endpoints,
        expected.len(),
        "{context}: total endpoints"
    );
    assert_eq!((answer.from, answer.to), (from, to));
    assert_rows(&answer.endpoints, &expected, from, to, context);
    answer.endpoints
}

/// Total requests of the project in `[from, to)` by brute force.
pub fn count_in(calls: &[ApiCall], from: i64, to: i64, filter: &FilterSpec) -> u64 {
    calls
        .iter()
        .filter(|c| c.timestamp >= from && c.timestamp < to && filter.matches(c))
        .count() as u64
}

/// Sorted file names of a directory.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The `day=YYYY-MM-DD` directory of the api_calls table holding `timestamp`.
pub fn day_dir(data_dir: &Path, timestamp: i64) -> std::path::PathBuf {
    data_dir
        .join("projects")
        .join(PROJECT)
        .join("api_calls")
        .join(format!(
            "day={}",
            valuetrace_model::time::format_day(timestamp)
        ))
}
