//! Client aggregates in health answers: a client that counts every call in `api_aggregate`
//! events and sends only a sample of raw calls (flagged `aggregated`) gets the same endpoint
//! counts as if every call had been sent raw — in memory, after a persist, after a restart (a
//! rebuild from Parquet) and with rollup snapshots of old days — and no call counts twice.

mod common;

use common::*;
use std::collections::BTreeMap;
use valuetrace_model::event::latency_bucket;
use valuetrace_model::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use valuetrace_model::{ApiAggregate, ApiCall, Event, SCHEMA_VERSION};
use valuetrace_query::{EndpointsQuery, Filter, QueryBackend, SortKey};
use valuetrace_store::{EmbeddedStore, Store, StoredEvent, wall_clock_ms};

const WINDOW_MS: i64 = 10_000;

/// A deterministic pseudo-random stream (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let z = valuetrace_model::mix::mix(self.0);
        self.0 = self.0.wrapping_add(valuetrace_model::mix::GOLDEN_GAMMA);
        z
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The calls a host served over the last three days, each at the end of its flush window (an
/// aggregate reports its calls at its window's end, so that is where the truth puts them too).
fn served_calls(now: i64, n: usize) -> Vec<ApiCall> {
    let mut rng = Rng(7);
    (0..n)
        .map(|i| {
            let at = now - 1 - rng.below((3 * DAY_MS) as u64) as i64;
            let end = (at / WINDOW_MS + 1) * WINDOW_MS;
            let status = match rng.below(20) {
                0 => 503,
                1 | 2 => 404,
                _ => 200,
            };
            let mut experiments = BTreeMap::new();
            if rng.below(2) == 0 {
                experiments.insert(
                    "reco".into(),
                    ["ml_v1", "ml_v2"][rng.below(2) as usize].into(),
                );
            }
            ApiCall {
                schema_version: SCHEMA_VERSION,
                event_id: format!("call-{i}"),
                timestamp: end.min(now - 1),
                service: "web".into(),
                method: METHODS[rng.below(2) as usize].into(),
                route: ROUTES[rng.below(4) as usize].into(),
                status,
                latency_ms: 1.0 + rng.below(2_000) as f64 / 7.0,
                user_id: Some(format!("user-{}", rng.below(300))),
                plan: Some(PLANS[rng.below(3) as usize].into()),
                experiments,
                value: (status == 200 && rng.below(10) == 0).then_some(25.0),
                ..ApiCall::default()
            }
        })
        .collect()
}

/// What the client sends for `calls`: one aggregate per key and window, and ~10% of the raw
/// calls (all value-carrying ones) flagged as counted in the aggregates.
fn client_events(calls: &[ApiCall]) -> Vec<Event> {
    type Key = (
        i64,
        String,
        String,
        u8,
        Option<String>,
        BTreeMap<String, String>,
    );
    let mut groups: BTreeMap<Key, (u64, f64, BTreeMap<u32, u64>)> = BTreeMap::new();
    let mut events = Vec::new();
    let mut rng = Rng(11);
    for call in calls {
        let key = (
            call.timestamp,
            call.route.clone(),
            call.method.clone(),
            (call.status / 100) as u8,
            call.plan.clone(),
            call.experiments.clone(),
        );
        let group = groups.entry(key).or_default();
        group.0 += 1;
        group.1 += call.latency_ms;
        *group.2.entry(latency_bucket(call.latency_ms)).or_default() += 1;
        if call.value.is_some() || rng.below(10) == 0 {
            events.push(Event::ApiCall(ApiCall {
                aggregated: true,
                sample_rate: call.value.is_none().then_some(0.1),
                ..call.clone()
            }));
        }
    }
    for (i, ((end, route, method, class, plan, experiments), (count, sum, buckets))) in
        groups.into_iter().enumerate()
    {
        events.push(Event::ApiAggregate(ApiAggregate {
            schema_version: SCHEMA_VERSION,
            event_id: format!("agg-{i}"),
            timestamp: end,
            window_start: end - WINDOW_MS,
            service: "web".into(),
            method,
            route,
            status_class: class,
            plan,
            experiments,
            count,
            latency_sum_ms: sum,
            latency_buckets: buckets.into_iter().collect(),
            ..ApiAggregate::default()
        }));
    }
    events
}

fn append_events(store: &EmbeddedStore, events: &[Event], now: i64) {
    for chunk in events.chunks(700) {
        let stored = chunk
            .iter()
            .map(|event| StoredEvent {
                event: event.clone(),
                received_at: now,
                skew_ms: 0,
            })
            .collect();
        let outcome = Store::append(store, PROJECT, stored).expect("append");
        assert_eq!(outcome.duplicates, 0);
    }
}

fn rows(
    store: &EmbeddedStore,
    from: i64,
    to: i64,
    filter: Filter,
) -> Vec<(String, u64, u64, u64, f64, f64)> {
    let answer = store
        .endpoints(&EndpointsQuery {
            project: PROJECT.into(),
            from,
            to,
            filter,
            sort: SortKey::Route,
            limit: 100,
            currency: Default::default(),
        })
        .expect("endpoints");
    let mut rows: Vec<_> = answer
        .endpoints
        .iter()
        .map(|r| {
            (
                format!("{} {}", r.method, r.route),
                r.requests,
                (r.server_error_rate * r.requests as f64).round() as u64,
                (r.client_error_rate * r.requests as f64).round() as u64,
                r.value_sum.expect("one currency"),
                r.p95_ms.unwrap_or(0.0),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn windows(now: i64) -> Vec<(i64, i64, Filter)> {
    let plan = |p: &str| Filter {
        plan: Some(p.into()),
        ..Filter::default()
    };
    let variant = Filter {
        variant: Some("reco:ml_v2".into()),
        ..Filter::default()
    };
    vec![
        (now - 3 * DAY_MS, now, Filter::default()),
        (
            now - DAY_MS - 7 * MINUTE_MS - 1_234,
            now - 5 * HOUR_MS + 4_321,
            Filter::default(),
        ),
        (
            now - 2 * HOUR_MS + 17,
            now - 3 * MINUTE_MS - 5_000,
            plan("pro"),
        ),
        (now - 3 * DAY_MS, now, variant),
    ]
}

/// The client's store answers like the truth's: counts, error counts and value sums exactly, p95
/// within the two histograms' error (2% bucket + 1% sketch).
fn assert_same(client: &EmbeddedStore, truth: &EmbeddedStore, now: i64, state: &str) {
    for (from, to, filter) in windows(now) {
        let context = format!("{state}: [{from}, {to}) {filter:?}");
        let got = rows(client, from, to, filter.clone());
        let want = rows(truth, from, to, filter);
        assert_eq!(got.len(), want.len(), "{context}: endpoints");
        assert!(!want.is_empty(), "{context}: the window has calls");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.0, g.1, g.2, g.3), (&w.0, w.1, w.2, w.3), "{context}");
            assert!(
                (g.4 - w.4).abs() < 1e-6,
                "{context}: value {} vs {}",
                g.4,
                w.4
            );
            assert!(
                (g.5 - w.5).abs() / w.5 < 0.035,
                "{context}: p95 {} vs {}",
                g.5,
                w.5
            );
        }
    }
}

#[test]
fn endpoint_health_from_aggregates_equals_every_call_sent_raw() {
    let now = wall_clock_ms();
    let calls = served_calls(now, 30_000);
    let events = client_events(&calls);
    let raw_sent = events
        .iter()
        .filter(|e| matches!(e, Event::ApiCall(_)))
        .count();
    assert!(
        raw_sent < calls.len() / 5,
        "only a sample of raw calls is sent"
    );
    let (client_dir, truth_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Minute cells for the last 6 hours: older windows read hour cells, raw edges and snapshots.
    let retention = 6 * HOUR_MS;
    let client = open(client_dir.path(), now, retention);
    let truth = open(truth_dir.path(), now, retention);
    append_events(&client, &events, now);
    append(&truth, &calls, now);
    assert_same(&client, &truth, now, "buffered");
    // The persist also writes rollup snapshots of the quiet old days (calls and aggregates).
    let stats = persist(&client, now);
    assert!(stats.snapshots_written > 0, "{stats:?}");
    persist(&truth, now);
    assert_same(&client, &truth, now, "persisted");
    drop((client, truth));
    let client = open(client_dir.path(), now, retention);
    let truth = open(truth_dir.path(), now, retention);
    assert_same(&client, &truth, now, &format!("reopened ({stats:?})"));
    // Re-sending the same aggregates and calls (a client retry) changes nothing.
    let again: Vec<StoredEvent> = events[..50]
        .iter()
        .map(|event| StoredEvent {
            event: event.clone(),
            received_at: now,
            skew_ms: 0,
        })
        .collect();
    let outcome = Store::append(&client, PROJECT, again).expect("append");
    assert_eq!((outcome.stored, outcome.duplicates), (0, 50));
    assert_same(&client, &truth, now, "after a retried batch");
}
