//! Rollup-backed queries against brute force: endpoints and timeseries for arbitrary windows and
//! filters, in three states of the store (buffered, persisted, reopened from Parquet); dedup
//! across appends and restarts; compaction and its crash recovery.

mod common;

use common::*;
use proptest::prelude::*;
use std::path::Path;
use valuetrace_model::ApiCall;
use valuetrace_model::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use valuetrace_query::{EndpointsQuery, Interval, Metric, QueryBackend, SortKey, TimeseriesQuery};
use valuetrace_store::parquet_io;
use valuetrace_store::{EmbeddedStore, Store, wall_clock_ms};

// ---------------------------------------------------------------------------------------------
// Strategies

fn at(max_age: i64) -> impl Strategy<Value = At> {
    prop_oneof![
        4 => (0..max_age).prop_map(At::Age),
        1 => (prop_oneof![Just(MINUTE_MS), Just(HOUR_MS), Just(DAY_MS)], 0..3i64, prop_oneof![Just(0i64), Just(-1), Just(1)])
            .prop_map(|(width, k, delta)| At::Boundary { width, k, delta }),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![1 => 100..200u16, 4 => 200..300u16, 1 => 300..400u16, 2 => 400..500u16, 2 => 500..600u16]
}

fn latency() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(0.0),
        1 => Just(0.0004), // below 1 µs: counted as zero
        1 => 0.0..5.0f64,
        3 => 0.0..5000.0f64,
        1 => (0u32..=5000).prop_map(f64::from),
    ]
}

fn value() -> impl Strategy<Value = Option<f64>> {
    prop::option::weighted(
        0.4,
        prop_oneof![
            (0u32..100_000).prop_map(|cents| f64::from(cents) / 100.0),
            0.0..1000.0f64
        ],
    )
}

fn call_spec() -> impl Strategy<Value = CallSpec> {
    let dims = (
        0..ROUTES.len(),
        0..METHODS.len(),
        0..SERVICES.len(),
        prop::option::weighted(0.25, 0..PROVIDERS.len()),
        prop::option::of(0..PLANS.len()),
        prop::option::of(0..SEGMENTS.len()),
        prop::collection::vec((0..EXPERIMENTS.len(), 0..3usize), 0..3),
    );
    let facts = (
        at(3 * DAY_MS),
        status(),
        latency(),
        value(),
        prop::option::weighted(0.15, 0..ERROR_TYPES.len()),
        prop::option::weighted(0.8, 0..20usize),
    );
    (dims, facts).prop_map(
        |(
            (route, method, service, provider, plan, segment, experiments),
            (at, status, latency_ms, value, error_type, user),
        )| CallSpec {
            at,
            route,
            method,
            service,
            provider,
            plan,
            segment,
            experiments,
            status,
            latency_ms,
            value,
            error_type,
            user,
        },
    )
}

fn filter_spec() -> impl Strategy<Value = FilterSpec> {
    let plan = prop_oneof![3 => prop::sample::select(PLANS.to_vec()), 1 => Just("never_seen")]
        .prop_map(str::to_owned);
    let segment = prop::sample::select(SEGMENTS.to_vec()).prop_map(str::to_owned);
    let service = prop::sample::select(SERVICES.to_vec()).prop_map(str::to_owned);
    let variant = (0..EXPERIMENTS.len(), 0..3usize, 0..3u8).prop_map(|(e, v, spelling)| {
        FilterSpec::Variant(
            EXPERIMENTS[e].0.to_owned(),
            EXPERIMENTS[e].1[v].to_owned(),
            spelling,
        )
    });
    prop_oneof![
        3 => Just(FilterSpec::None),
        1 => plan.clone().prop_map(FilterSpec::Plan),
        1 => segment.prop_map(FilterSpec::Segment),
        2 => variant,
        1 => service.clone().prop_map(FilterSpec::Service),
        1 => prop_oneof![Just("inbound"), Just("outbound")].prop_map(FilterSpec::Direction),
        1 => (service, plan).prop_map(|(service, plan)| FilterSpec::ServiceAndPlan(service, plan)),
    ]
}

#[derive(Debug, Clone)]
struct WindowSpec {
    from: At,
    len: i64,
    filter: FilterSpec,
}

fn window_spec() -> impl Strategy<Value = WindowSpec> {
    let len = prop_oneof![
        1..2 * MINUTE_MS,
        1..6 * HOUR_MS,
        1..4 * DAY_MS,
        (
            1..6i64,
            prop_oneof![Just(MINUTE_MS), Just(HOUR_MS), Just(DAY_MS)]
        )
            .prop_map(|(k, width)| k * width),
    ];
    (at(3 * DAY_MS + 2 * HOUR_MS), len, filter_spec()).prop_map(|(from, len, filter)| WindowSpec {
        from,
        len,
        filter,
    })
}

#[derive(Debug, Clone)]
struct Scenario {
    minute_retention_ms: i64,
    calls: Vec<CallSpec>,
    /// Calls per append.
    chunk: usize,
    windows: Vec<WindowSpec>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(48 * HOUR_MS), Just(6 * HOUR_MS), Just(30 * MINUTE_MS)],
        prop::collection::vec(call_spec(), 1..250),
        1..100usize,
        prop::collection::vec(window_spec(), 1..4),
    )
        .prop_map(|(minute_retention_ms, calls, chunk, windows)| Scenario {
            minute_retention_ms,
            calls,
            chunk,
            windows,
        })
}

/// Loads the scenario into a fresh store and calls `check` in each state: buffered, persisted,
/// reopened from disk. `check` gets the store, the state, the calls and `now`.
fn in_every_state(
    scenario: &Scenario,
    mut check: impl FnMut(&EmbeddedStore, State, &[ApiCall], i64),
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = wall_clock_ms();
    let calls: Vec<ApiCall> = scenario
        .calls
        .iter()
        .enumerate()
        .map(|(i, spec)| spec.to_call(&format!("e{i}"), now))
        .collect();
    let store = open(dir.path(), now, scenario.minute_retention_ms);
    for chunk in calls.chunks(scenario.chunk) {
        let outcome = append(&store, chunk, now);
        assert_eq!((outcome.stored, outcome.duplicates), (chunk.len(), 0));
    }
    check(&store, State::Buffered, &calls, now);
    persist(&store, now);
    check(&store, State::Persisted, &calls, now);
    drop(store);
    let store = open(dir.path(), now, scenario.minute_retention_ms);
    check(&store, State::Reopened, &calls, now);
}

/// The windows of a scenario made absolute, plus one covering all data.
fn windows(scenario: &Scenario, now: i64) -> Vec<(i64, i64, FilterSpec)> {
    let mut out: Vec<(i64, i64, FilterSpec)> = scenario
        .windows
        .iter()
        .map(|w| {
            (
                w.from.resolve(now),
                w.from.resolve(now) + w.len,
                w.filter.clone(),
            )
        })
        .collect();
    out.push((now - 4 * DAY_MS + 12_345, now + HOUR_MS, FilterSpec::None));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Endpoint rows for random windows and filters equal the brute force: counts, shares, error
    /// counts and value sums exactly, quantiles within 1%, users exactly.
    #[test]
    fn endpoints_match_brute_force(scenario in scenario()) {
        in_every_state(&scenario, |store, state, calls, now| {
            for (from, to, filter) in windows(&scenario, now) {
                let context = format!("{state:?}: window [{from}, {to}) (now {now}) filter {filter:?}");
                check_endpoints(store, calls, from, to, &filter, &context);
            }
        });
    }

    /// Timeseries points tile the window, each holds the brute-force count of its interval, and
    /// they sum to the endpoints total.
    #[test]
    fn timeseries_points_match_brute_force(scenario in scenario()) {
        in_every_state(&scenario, |store, state, calls, now| {
            for (from, to, filter) in windows(&scenario, now) {
                let context = format!("{state:?}: window [{from}, {to}) (now {now}) filter {filter:?}");
                let rows = check_endpoints(store, calls, from, to, &filter, &context);
                let total: u64 = rows.iter().map(|row| row.requests).sum();
                let mut intervals = vec![Interval::Hour, Interval::Day];
                if to - from <= 3 * HOUR_MS {
                    intervals.push(Interval::Minute);
                }
                for interval in intervals {
                    for metric in [Metric::Requests, Metric::ErrorRate] {
                        check_timeseries(store, calls, from, to, &filter, interval, metric, total, &context);
                    }
                }
            }
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn check_timeseries(
    store: &EmbeddedStore,
    calls: &[ApiCall],
    from: i64,
    to: i64,
    filter: &FilterSpec,
    interval: Interval,
    metric: Metric,
    total: u64,
    context: &str,
) {
    let answer = store
        .timeseries(&TimeseriesQuery {
            project: PROJECT.into(),
            metric,
            interval,
            from,
            to,
            filter: filter.to_filter(),
            currency: Default::default(),
        })
        .expect("timeseries query");
    let context = format!("{context}, {interval:?} {metric:?}");
    let width = interval.width_ms();
    let points = &answer.points;
    assert_eq!(
        points.first().map(|p| p.start),
        Some(from),
        "{context}: first point"
    );
    assert_eq!(
        points.last().map(|p| p.end),
        Some(to),
        "{context}: last point"
    );
    for pair in points.windows(2) {
        assert_eq!(
            pair[0].end, pair[1].start,
            "{context}: points are contiguous"
        );
        assert_eq!(
            pair[0].end.rem_euclid(width),
            0,
            "{context}: inner boundaries are aligned"
        );
    }
    let mut sum = 0;
    for point in points {
        assert!(
            point.start < point.end && point.end - point.start <= width,
            "{context}: point {point:?}"
        );
        let in_point: Vec<&ApiCall> = calls
            .iter()
            .filter(|c| c.timestamp >= point.start && c.timestamp < point.end && filter.matches(c))
            .collect();
        let count = in_point.len() as u64;
        assert_eq!(
            point.requests, count,
            "{context}: requests of point [{}, {})",
            point.start, point.end
        );
        let want = match metric {
            Metric::Requests => Some(count as f64),
            Metric::ErrorRate => (count > 0)
                .then(|| in_point.iter().filter(|c| c.status >= 500).count() as f64 / count as f64),
            _ => unreachable!(),
        };
        assert_eq!(
            point.value, want,
            "{context}: value of point [{}, {})",
            point.start, point.end
        );
        sum += point.requests;
    }
    assert_eq!(sum, total, "{context}: points sum to the endpoints total");
    assert_eq!(
        sum,
        count_in(calls, from, to, filter),
        "{context}: points sum to the brute-force total"
    );
}

// ---------------------------------------------------------------------------------------------
// Deterministic data for the hand-written tests

/// `n` calls spread over `[start, start + span)` by a fixed LCG, ids `{prefix}{i}`.
fn spread_calls(prefix: &str, n: usize, start: i64, span: i64, seed: u64) -> Vec<ApiCall> {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..n)
        .map(|i| {
            let ts = start + (next() as i64).rem_euclid(span);
            let route = ROUTES[(next() % ROUTES.len() as u64) as usize];
            let status = [200, 201, 404, 500, 503][(next() % 5) as usize];
            let latency = (next() % 300_000) as f64 / 100.0;
            simple_call(&format!("{prefix}{i}"), ts, route, status, latency)
        })
        .collect()
}

/// A few windows inside `[start, start + DAY_MS)`, aligned and not.
fn day_windows(start: i64) -> Vec<(i64, i64)> {
    vec![
        (start, start + DAY_MS),
        (start - 1, start + DAY_MS + 1),
        (start + 1_234, start + 7 * HOUR_MS + 59_999),
        (start + 5 * HOUR_MS, start + 6 * HOUR_MS),
        (
            start + 13 * HOUR_MS + 30 * MINUTE_MS + 17,
            start + 13 * HOUR_MS + 31 * MINUTE_MS + 5,
        ),
    ]
}

fn check_day(store: &EmbeddedStore, calls: &[ApiCall], start: i64, context: &str) {
    for (from, to) in day_windows(start) {
        check_endpoints(
            store,
            calls,
            from,
            to,
            &FilterSpec::None,
            &format!("{context}: window [{from}, {to})"),
        );
    }
}

fn total_requests(store: &EmbeddedStore, from: i64, to: i64) -> u64 {
    store
        .endpoints(&EndpointsQuery {
            project: PROJECT.into(),
            from,
            to,
            filter: Default::default(),
            sort: SortKey::Route,
            limit: 1000,
            currency: Default::default(),
        })
        .expect("endpoints query")
        .endpoints
        .iter()
        .map(|row| row.requests)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Dedup

#[test]
fn duplicate_event_ids_are_stored_once_across_appends_persists_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = wall_clock_ms();
    let retention = 48 * HOUR_MS;
    let ts = now - 3 * HOUR_MS;
    let call = |id: &str, offset: i64, status: u16| {
        simple_call(id, ts + offset, "/api/orders", status, 10.0 + offset as f64)
    };
    let (a, b, c, d) = (
        call("a", 0, 200),
        call("b", 1_000, 200),
        call("c", 2_000, 500),
        call("d", 3_000, 200),
    );
    // Same ids with different payloads: the first stored copy wins.
    let (a2, c2) = (call("a", 50_000, 404), call("c", 60_000, 200));

    let store = open(dir.path(), now, retention);
    let outcome = append(&store, &[a.clone(), b.clone(), a2.clone()], now);
    assert_eq!(
        (outcome.stored, outcome.duplicates),
        (2, 1),
        "duplicate within one append"
    );
    let outcome = append(&store, &[b.clone(), c.clone()], now);
    assert_eq!(
        (outcome.stored, outcome.duplicates),
        (1, 1),
        "duplicate across appends"
    );
    assert!(Store::contains(&store, PROJECT, "a") && Store::contains(&store, PROJECT, "c"));
    assert!(!Store::contains(&store, PROJECT, "d"));
    let kept = [a.clone(), b.clone(), c.clone()];
    check_day(&store, &kept, ts - 5 * HOUR_MS, "buffered");

    persist(&store, now);
    let outcome = append(&store, &[a2.clone(), c2.clone()], now);
    assert_eq!(
        (outcome.stored, outcome.duplicates),
        (0, 2),
        "duplicates of persisted events"
    );
    check_day(&store, &kept, ts - 5 * HOUR_MS, "persisted");
    drop(store);

    let store = open(dir.path(), now + MINUTE_MS, retention);
    assert!(
        Store::contains(&store, PROJECT, "a"),
        "dedup index rebuilt from Parquet"
    );
    let outcome = append(&store, &[a2, c2, b, d.clone()], now + MINUTE_MS);
    assert_eq!(
        (outcome.stored, outcome.duplicates),
        (1, 3),
        "duplicates after reopen"
    );
    let kept = [a, kept[1].clone(), c, d];
    check_day(&store, &kept, ts - 5 * HOUR_MS, "reopened");
    assert_eq!(total_requests(&store, ts - DAY_MS, ts + DAY_MS), 4);
}

#[test]
fn dedup_index_after_reopen_holds_only_ids_received_within_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = wall_clock_ms();
    let store = open(dir.path(), now, 48 * HOUR_MS);
    let recent = simple_call("recent", now - HOUR_MS, "/api/cart", 200, 5.0);
    let old = simple_call("old", now - HOUR_MS + 1, "/api/cart", 200, 5.0);
    Store::append(
        &store,
        PROJECT,
        vec![stored(&recent, now), stored(&old, now - 49 * HOUR_MS)],
    )
    .expect("append");
    persist(&store, now - 49 * HOUR_MS);
    drop(store);
    let store = open(dir.path(), now, 48 * HOUR_MS);
    assert!(Store::contains(&store, PROJECT, "recent"));
    assert!(
        !Store::contains(&store, PROJECT, "old"),
        "received before the dedup window"
    );
}

// ---------------------------------------------------------------------------------------------
// Compaction

fn parquet_files(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|name| name.ends_with(".parquet"))
        .collect()
}

#[test]
fn compaction_keeps_answers_and_recovers_from_a_crash() {
    let data = tempfile::tempdir().expect("tempdir");
    let backup = tempfile::tempdir().expect("tempdir");
    let now = wall_clock_ms();
    let retention = 48 * HOUR_MS;
    let day = now.div_euclid(DAY_MS) * DAY_MS - DAY_MS; // yesterday: whole day within minute retention
    let day_dir = day_dir(data.path(), day);

    let store = open(data.path(), now, retention);
    assert_eq!(store.options().compact_min_files, 4);
    let mut calls: Vec<ApiCall> = Vec::new();
    for round in 0..5u64 {
        let batch = spread_calls(&format!("r{round}-"), 40, day, DAY_MS, round);
        let outcome = append(&store, &batch, now);
        assert_eq!(outcome.stored, 40);
        calls.extend(batch);
        let stats = persist(&store, now);
        let files = parquet_files(&day_dir);
        match round {
            0 => {
                assert_eq!(files.len(), 1);
                std::fs::copy(day_dir.join(&files[0]), backup.path().join(&files[0]))
                    .expect("back up first file");
            }
            1 | 2 => assert_eq!(files.len(), round as usize + 1),
            3 => {
                assert_eq!(
                    stats.files_compacted, 4,
                    "the fourth file triggers compaction"
                );
                // The compacted file plus the four it replaced: those are deleted at the next
                // persist, so that queries that captured them can finish reading.
                assert_eq!(files.len(), 5);
            }
            _ => assert_eq!(files.len(), 2),
        }
        check_day(&store, &calls, day, &format!("after persist {round}"));
    }
    let files = parquet_files(&day_dir);
    assert!(files.len() < 5, "compaction left {files:?}");
    drop(store);

    // Crash between writing the compacted file and deleting what it replaced: put the first file back.
    let stale = parquet_files(backup.path()).remove(0);
    assert!(!day_dir.join(&stale).exists(), "compaction deleted {stale}");
    std::fs::copy(backup.path().join(&stale), day_dir.join(&stale)).expect("restore stale file");
    let replacing: Vec<String> = parquet_files(&day_dir)
        .into_iter()
        .filter(|name| {
            let info = parquet_io::read_info(&day_dir.join(name)).expect("read footer");
            info.replaces.contains(&stale)
        })
        .collect();
    assert_eq!(
        replacing.len(),
        1,
        "exactly one file names {stale} in {}",
        parquet_io::REPLACES_KEY
    );

    let store = open(data.path(), now, retention);
    assert!(
        !day_dir.join(&stale).exists(),
        "reopen deletes the replaced file"
    );
    assert_eq!(parquet_files(&day_dir), files);
    check_day(&store, &calls, day, "after crash recovery");
    assert_eq!(total_requests(&store, day, day + DAY_MS), 200);
}

/// File names come from a counter seeded at open. After a restart whose clock is not past the
/// sequence numbers already used (restart within the same millisecond, clock stepped back), a new
/// file must not reuse the name of a live file nor of a file a compacted file replaced (start-up
/// would delete it as left over from an interrupted compaction).
#[test]
fn files_persisted_after_reopen_with_an_earlier_clock_survive_the_next_reopen() {
    let data = tempfile::tempdir().expect("tempdir");
    let now = wall_clock_ms();
    let retention = 48 * HOUR_MS;
    let day = now.div_euclid(DAY_MS) * DAY_MS - DAY_MS;
    let store = open(data.path(), now, retention);
    let mut calls = Vec::new();
    for round in 0..5u64 {
        let batch = spread_calls(&format!("r{round}-"), 10, day, DAY_MS, round);
        append(&store, &batch, now);
        calls.extend(batch);
        persist(&store, now);
    }
    drop(store);
    for (reopen, clock) in [(0, now), (1, now - MINUTE_MS)] {
        let store = open(data.path(), clock, retention);
        let batch = spread_calls(&format!("late{reopen}-"), 10, day, DAY_MS, 100 + reopen);
        assert_eq!(append(&store, &batch, clock).stored, 10);
        calls.extend(batch);
        persist(&store, clock);
        check_day(&store, &calls, day, &format!("after persist {reopen}"));
        drop(store);
        let store = open(data.path(), clock, retention);
        check_day(&store, &calls, day, &format!("after reopen {reopen}"));
        assert_eq!(
            total_requests(&store, day, day + DAY_MS),
            calls.len() as u64
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Direction of an inbound call that names a provider

/// The model accepts `provider` on an inbound call. Whole-bucket cells and raw edges must then
/// agree on its direction, or the count for a direction filter depends on window alignment.
#[test]
fn direction_filter_is_consistent_for_inbound_calls_with_a_provider() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = wall_clock_ms();
    let hour = now.div_euclid(HOUR_MS) * HOUR_MS - 3 * HOUR_MS;
    let mut call = simple_call("x", hour + 30 * MINUTE_MS, "/webhooks/stripe", 200, 12.0);
    call.provider = Some("stripe".into());
    let store = open(dir.path(), now, 48 * HOUR_MS);
    append(&store, &[call.clone()], now);
    for direction in ["inbound", "outbound"] {
        let counts: Vec<u64> = [
            (hour, hour + HOUR_MS),
            (call.timestamp, call.timestamp + 1),
            (hour + 1, hour + HOUR_MS - 1),
        ]
        .into_iter()
        .map(|(from, to)| {
            let filter = valuetrace_query::Filter {
                direction: Some(direction.into()),
                ..Default::default()
            };
            store
                .endpoints(&EndpointsQuery {
                    project: PROJECT.into(),
                    from,
                    to,
                    filter,
                    sort: SortKey::Route,
                    limit: 10,
                    currency: Default::default(),
                })
                .expect("endpoints")
                .endpoints
                .iter()
                .map(|row| row.requests)
                .sum()
        })
        .collect();
        assert!(
            counts.iter().all(|&c| c == counts[0]),
            "direction={direction}: counts {counts:?} depend on the window"
        );
    }
}
