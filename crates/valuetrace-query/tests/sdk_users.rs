//! Issue 18, point 4: distinct users of SDK traffic. The client counts every call in its
//! aggregates and sends raw calls of a sample of users only; the endpoint's users must come
//! from the aggregates' user sketches (an estimate whose 95% interval covers the truth), not
//! from the sampled raw calls (which showed 320 real users as 25). Aggregates without a sketch
//! (older clients) still count, and their users are reported as a lower bound.

mod common;

use common::*;
use std::collections::BTreeMap;
use valuetrace_client::aggregate::{Aggregator, CallKey, Window, to_events};
use valuetrace_client::sampling::{stable_hash, threshold};
use valuetrace_model::time::{DAY_MS, HOUR_MS};
use valuetrace_model::{ApiCall, Event};
use valuetrace_query::{EndpointsQuery, Filter, QueryBackend, SortKey};
use valuetrace_store::{EmbeddedStore, Store, StoredEvent, wall_clock_ms};

const WINDOW_MS: i64 = 10_000;

/// `users` users each calling `/api/items/{id}` in a few flush windows over two days, as the
/// client ships them: every window's aggregates, and the raw calls of the users sampling keeps
/// (rate 0.08), flagged `aggregated`. `sketch`: whether the aggregates carry their users.
fn sdk_traffic(users: usize, now: i64, sketch: bool) -> (Vec<Event>, usize) {
    let aggregator = Aggregator::default();
    let experiments = BTreeMap::new();
    let mut events = Vec::new();
    let mut kept = std::collections::BTreeSet::new();
    let windows = 48;
    for window in 0..windows {
        let end = now - 2 * DAY_MS + (window as i64 + 1) * HOUR_MS - 1;
        for user in (0..users).filter(|u| (u + window) % 8 == 0 || *u % 47 == window % 47) {
            let user_id = format!("user-{user}");
            let call = CallKey {
                route: "/api/items/{id}",
                method: "GET",
                status: 200,
                plan: None,
                experiments: &experiments,
                provider: None,
                user_id: Some(&user_id),
            };
            aggregator.record(&call, 12.0);
            if stable_hash(&user_id) <= threshold(0.08) {
                kept.insert(user);
                events.push(Event::ApiCall(ApiCall {
                    user_id: Some(user_id.clone()),
                    aggregated: true,
                    sample_rate: Some(0.08),
                    ..simple_call(
                        &format!("call-{window}-{user}"),
                        end - 1,
                        "/api/items/{id}",
                        200,
                        12.0,
                    )
                }));
            }
        }
        let drained = aggregator.drain();
        let flush = Window {
            service: "web",
            start_ms: end - WINDOW_MS,
            end_ms: end,
            id_prefix: "host-1",
            flush: window as u64,
        };
        events.extend(to_events(drained, flush).into_iter().map(|mut aggregate| {
            if !sketch {
                aggregate.user_sketch = None;
            }
            Event::ApiAggregate(aggregate)
        }));
    }
    (events, kept.len())
}

fn append_events(store: &EmbeddedStore, events: &[Event], now: i64) {
    let stored = events
        .iter()
        .map(|event| StoredEvent {
            event: event.clone(),
            received_at: now,
            skew_ms: 0,
        })
        .collect();
    Store::append(store, PROJECT, stored).expect("append");
}

/// `(unique_users, users_kind, users_ci95)` of the one endpoint over the last three days.
fn users_of(store: &EmbeddedStore, now: i64) -> (u64, String, Option<(u64, Option<u64>)>) {
    let answer = store
        .endpoints(&EndpointsQuery {
            project: PROJECT.into(),
            from: now - 3 * DAY_MS,
            to: now,
            filter: Filter::default(),
            sort: SortKey::Route,
            limit: 10,
            currency: Default::default(),
        })
        .expect("endpoints");
    let [row] = answer.endpoints.as_slice() else {
        panic!("one endpoint expected: {:?}", answer.endpoints)
    };
    (row.unique_users, row.users_kind.clone(), row.users_ci95)
}

fn covers(ci: Option<(u64, Option<u64>)>, truth: u64) -> bool {
    ci.is_some_and(|(low, high)| low <= truth && high.is_none_or(|high| truth <= high))
}

#[test]
fn sdk_users_come_from_the_client_sketch_with_an_interval_that_covers_the_truth() {
    let now = wall_clock_ms();
    for truth in [20usize, 320] {
        let (events, sampled) = sdk_traffic(truth, now, true);
        assert!(sampled < truth / 4, "only a sample of users sent raw calls");
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), now, 6 * HOUR_MS);
        append_events(&store, &events, now);
        let mut store = store;
        for stage in ["buffered", "persisted", "reopened"] {
            match stage {
                "persisted" => {
                    persist(&store, now);
                }
                "reopened" => {
                    drop(store);
                    store = open(dir.path(), now, 6 * HOUR_MS);
                }
                _ => {}
            }
            let (users, kind, ci) = users_of(&store, now);
            assert_eq!(kind, "estimate", "{stage}, {truth} users");
            assert!(
                covers(ci, truth as u64),
                "{stage}: {truth} real users reported as {users} {ci:?} ({sampled} sampled)"
            );
            let (low, high) = ci.expect("interval");
            let high = high.expect("an estimate has an upper bound");
            assert!(
                high - low <= (truth as u64 / 10).max(2),
                "{stage}: interval {low}–{high} too wide for {truth} users"
            );
        }
    }
}

#[test]
fn aggregates_without_a_sketch_report_users_as_a_lower_bound() {
    let now = wall_clock_ms();
    let (events, sampled) = sdk_traffic(320, now, false);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), now, 6 * HOUR_MS);
    append_events(&store, &events, now);
    let (users, kind, ci) = users_of(&store, now);
    // What the server said before clients sent sketches (then labelled exact): the sampled
    // users only. Now it says that this is a lower bound.
    assert_eq!(users, sampled as u64);
    assert_eq!(kind, "lower_bound");
    assert_eq!(ci, Some((sampled as u64, None)));
}

/// The client's sketch, merged as the store merges it, over many repetitions of fresh ids shaped
/// like real ones (a prefix, then a counter): the 95% interval holds the truth at least 93% of
/// the time and the estimate is unbiased. The client's old id hash let ids of this shape collide
/// (2,000 users read as 1,970 on average, the interval covering the truth 68% of the time).
#[test]
fn sdk_user_intervals_cover_the_truth_over_repetitions() {
    use valuetrace_client::users::{UserSketch, user_hash};
    use valuetrace_store::sketch::CellUsers;
    for (users, reps) in [(300usize, 400usize), (2_000, 400), (20_000, 100)] {
        let (mut covered, mut sum) = (0, 0.0);
        for rep in 0..reps {
            // Two hosts, each with its own sketch of an overlapping half of the users.
            let (mut a, mut b) = (UserSketch::default(), UserSketch::default());
            for user in 0..users {
                let hash = user_hash(format!("acct{rep}-user-{user}").as_bytes());
                if user % 3 != 0 {
                    a.insert(hash);
                }
                if user % 3 != 1 {
                    b.insert(hash);
                }
            }
            let mut cell = CellUsers::default();
            cell.add_aggregate(Some(&a.registers()), 1);
            cell.add_aggregate(Some(&b.registers()), 1);
            let report = cell.report();
            let high = report.high.expect("an estimate has an upper bound");
            covered += usize::from(report.low as usize <= users && users <= high as usize);
            sum += report.value as f64;
        }
        let coverage = covered as f64 / reps as f64;
        let bias = sum / reps as f64 / users as f64 - 1.0;
        assert!(
            coverage >= 0.93,
            "{users} users: covered in {covered} of {reps}"
        );
        assert!(
            bias.abs() < 0.005,
            "{users} users: mean estimate off by {bias:+.4}"
        );
    }
}
