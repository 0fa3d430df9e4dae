//! Helpers shared by the integration tests: event builders, a store with events in it, and float
//! comparisons.
#![allow(dead_code)]

use valuetrace_insights::AnalysisConfig;
use valuetrace_insights::scope::{Dim, Question, Slice};
use valuetrace_model::{ApiCall, Direction, Event, Outcome};
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

pub const SEC: i64 = 1_000;
pub const MIN: i64 = 60 * SEC;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// 2026-01-07T00:00:00Z, a day boundary.
pub const T0: i64 = 20_460 * DAY;

/// An inbound call of `endpoint` (`POST /api/cart`) by service `shop`, nobody's, without a value.
pub fn call(ts: i64, endpoint: &str, status: u16, latency_ms: f64) -> ApiCall {
    let (method, route) = endpoint.split_once(' ').expect("`METHOD /route`");
    ApiCall {
        schema_version: 1,
        timestamp: ts,
        service: "shop".into(),
        method: method.into(),
        route: route.into(),
        status,
        latency_ms,
        ..Default::default()
    }
}

/// An outcome `name` at `ts`, nobody's, without a value.
pub fn outcome(ts: i64, name: &str) -> Outcome {
    Outcome {
        schema_version: 1,
        timestamp: ts,
        name: name.into(),
        ..Default::default()
    }
}

/// Fluent setters for calls.
pub trait CallExt: Sized {
    fn user(self, user: &str) -> Self;
    fn session(self, session: &str) -> Self;
    fn account(self, account: &str) -> Self;
    fn plan(self, plan: &str) -> Self;
    fn service(self, service: &str) -> Self;
    fn value(self, value: f64) -> Self;
    fn prop(self, name: &str, value: &str) -> Self;
    fn error_type(self, error_type: &str) -> Self;
    /// An outbound call to `provider`.
    fn outbound(self, provider: &str) -> Self;
}

impl CallExt for ApiCall {
    fn user(mut self, user: &str) -> Self {
        self.user_id = Some(user.into());
        self
    }
    fn session(mut self, session: &str) -> Self {
        self.session_id = Some(session.into());
        self
    }
    fn account(mut self, account: &str) -> Self {
        self.account_id = Some(account.into());
        self
    }
    fn plan(mut self, plan: &str) -> Self {
        self.plan = Some(plan.into());
        self
    }
    fn service(mut self, service: &str) -> Self {
        self.service = service.into();
        self
    }
    fn value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }
    fn prop(mut self, name: &str, value: &str) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
    fn error_type(mut self, error_type: &str) -> Self {
        self.error_type = Some(error_type.into());
        self
    }
    fn outbound(mut self, provider: &str) -> Self {
        self.direction = Direction::Outbound;
        self.provider = Some(provider.into());
        self
    }
}

/// Fluent setters for outcomes.
pub trait OutcomeExt: Sized {
    fn user(self, user: &str) -> Self;
    fn session(self, session: &str) -> Self;
    fn value(self, value: f64) -> Self;
    fn prop(self, name: &str, value: &str) -> Self;
}

impl OutcomeExt for Outcome {
    fn user(mut self, user: &str) -> Self {
        self.user_id = Some(user.into());
        self
    }
    fn session(mut self, session: &str) -> Self {
        self.session_id = Some(session.into());
        self
    }
    fn value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }
    fn prop(mut self, name: &str, value: &str) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
}

/// Events as the store receives them, each with a unique id (`e0`, `e1`, ...).
pub fn stored(events: &[Event]) -> Vec<StoredEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut event = event.clone();
            let id = format!("e{i}");
            match &mut event {
                Event::ApiCall(call) => call.event_id = id,
                Event::Outcome(outcome) => outcome.event_id = id,
                Event::ApiAggregate(aggregate) => aggregate.event_id = id,
            }
            StoredEvent {
                received_at: event.timestamp(),
                event,
                skew_ms: 0,
            }
        })
        .collect()
}

/// A store in `dir` holding `events` in project `p`, buffered in memory (not yet persisted).
pub fn store_with(dir: &std::path::Path, events: &[Event], now: i64) -> EmbeddedStore {
    let store = EmbeddedStore::open(StoreOptions::new(dir), now).expect("open store");
    let outcome = store.append("p", stored(events)).expect("append");
    assert_eq!(outcome.stored, events.len(), "every event is new");
    store
}

/// Writes every buffer of the store to Parquet.
pub fn persist(store: &EmbeddedStore, now: i64) {
    let ticket = store.begin_persist().expect("begin persist");
    store.finish_persist(ticket, now).expect("finish persist");
}

pub fn question(from: i64, to: i64, now: i64) -> Question {
    Question {
        project: "p".into(),
        from,
        to,
        now,
        slice: Slice::default(),
        by: None,
    }
}

pub fn with_by(mut question: Question, by: Dim) -> Question {
    question.by = Some(by);
    question
}

pub fn with_plan(mut question: Question, plan: &str) -> Question {
    question.slice.plan = Some(plan.into());
    question
}

pub fn config_with_model(config: &AnalysisConfig, model: &str) -> AnalysisConfig {
    AnalysisConfig {
        attribution_model: model.into(),
        ..config.clone()
    }
}

/// Whether `a` and `b` agree within 1e-9 relative (absolute near 0).
pub fn near(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
pub fn assert_close(actual: f64, expected: f64) {
    assert!(
        near(actual, expected, 1e-9),
        "got {actual}, expected {expected}"
    );
}

#[track_caller]
pub fn assert_close_opt(actual: Option<f64>, expected: Option<f64>) {
    match (actual, expected) {
        (Some(a), Some(e)) => assert_close(a, e),
        (None, None) => {}
        _ => panic!("got {actual:?}, expected {expected:?}"),
    }
}
