//! Sampled estimates, checked by simulation (issue 18, points 5 and 7).
//!
//! One fixed workload with a known truth — sessions of very different sizes, users whose calls
//! carry no session, anonymous calls, error-prone sessions, sessions that cross midnight — is
//! sampled many times the way the client SDK samples (`valuetrace_client::sampling`: whole
//! sessions, else users, kept by one hash against the call's rate; errors always kept), each time
//! under fresh ids, so each repetition is an independent draw of the client's design. The kept
//! events are stored in several batches and two day partitions, and the product's answers
//! (`impact`, `errors`) estimate the totals. Over the repetitions the 95% intervals must hold the
//! truth 93–97% of the time, and the error rate must be unbiased.

mod common;

use common::*;
use valuetrace_client::sampling::{CallFacts, SamplingPolicy};
use valuetrace_insights::{AnalysisConfig, Insights, Question, Slice};
use valuetrace_model::{ApiCall, Event};
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

/// The routes and their share of calls (per mille); the default policy samples them at 0.1,
/// 0.1, 0.3, 0.8 and 1 (premium plans × 1.5).
const ROUTES: [(&str, u64); 5] = [
    ("GET /api/search", 400),
    ("GET /api/items/{id}", 250),
    ("GET /api/users/{id}", 200),
    ("GET /api/recommendations", 100),
    ("POST /api/payments", 50),
];
/// Sessions of the workload.
const SESSIONS: u32 = 1_000;
/// Users of the workload: 360 with sessions, 72 API-key users (ids from 1,000) without.
const USERS: u32 = 1_072;
/// The routes whose counts are sampled (the last one is kept whole).
const SAMPLED: usize = 4;

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
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1_000) < per_mille
    }
}

/// One call of the workload, before ids are given.
#[derive(Clone, Copy)]
struct Planned {
    ts: i64,
    route: usize,
    status: u16,
    /// Index of the session (None: a call outside any session).
    session: Option<u32>,
    /// Index of the user (None: anonymous).
    user: Option<u32>,
    premium: bool,
}

/// The workload: ~10,000 calls in 1,000 sessions of 1 to 80 calls, plus session-less calls of
/// API-key users and anonymous calls; sessions start within 13 h of midnight (`T0`), so many
/// are split between two days.
fn workload() -> Vec<Planned> {
    let mut rng = Rng(18);
    let mut calls = Vec::new();
    let users = 360;
    let route = |rng: &mut Rng| {
        let mut pick = rng.below(1_000);
        for (i, (_, share)) in ROUTES.iter().enumerate() {
            if pick < *share {
                return i;
            }
            pick -= share;
        }
        0
    };
    for session in 0..SESSIONS {
        let user = rng.below(users);
        let premium = user.is_multiple_of(4);
        // Sizes: mostly short, a heavy tail of long sessions.
        let size = match rng.below(100) {
            0..=59 => 1 + rng.below(5),
            60..=91 => 5 + rng.below(12),
            _ => 20 + rng.below(60),
        };
        // One session in six is error-prone (a broken client), the others rarely fail.
        let error_per_mille = if rng.chance(166) { 200 } else { 15 };
        let mut ts = T0 - 13 * HOUR + rng.below(26 * 60) as i64 * MIN;
        for _ in 0..size {
            ts += (1 + rng.below(6) as i64) * MIN;
            let status = if rng.chance(error_per_mille) {
                503
            } else {
                200
            };
            calls.push(Planned {
                ts,
                route: route(&mut rng),
                status,
                session: Some(session),
                user: Some(user as u32),
                premium,
            });
        }
    }
    // API-key users: calls without a session (the client samples them by user).
    for _ in 0..960 {
        let user = 1_000 + rng.below(u64::from(USERS) - 1_000) as u32;
        calls.push(Planned {
            ts: T0 - 12 * HOUR + rng.below(24 * 60) as i64 * MIN,
            route: route(&mut rng),
            status: if rng.chance(40) { 500 } else { 200 },
            session: None,
            user: Some(user),
            premium: false,
        });
    }
    // Anonymous calls: each sampled alone.
    for _ in 0..360 {
        calls.push(Planned {
            ts: T0 - 12 * HOUR + rng.below(24 * 60) as i64 * MIN,
            route: route(&mut rng),
            status: if rng.chance(40) { 500 } else { 200 },
            session: None,
            user: None,
            premium: false,
        });
    }
    calls
}

/// The calls of one repetition that the client keeps, with ids unique to the repetition (the
/// client's hash of fresh ids is a fresh draw).
fn sample(calls: &[Planned], policy: &SamplingPolicy, rep: usize) -> Vec<ApiCall> {
    let mut kept = Vec::new();
    // The repetition's ids, made once (the loop runs millions of times in a debug build).
    let sessions: Vec<String> = (0..SESSIONS).map(|s| format!("r{rep}-s{s}")).collect();
    let users: Vec<String> = (0..USERS).map(|u| format!("r{rep}-u{u}")).collect();
    for (i, planned) in calls.iter().enumerate() {
        let (method, route) = ROUTES[planned.route].0.split_once(' ').expect("route");
        let session = planned.session.map(|s| sessions[s as usize].as_str());
        let user = planned.user.map(|u| users[u as usize].as_str());
        let event_id = if session.is_none() && user.is_none() {
            format!("r{rep}-e{i}")
        } else {
            String::new()
        };
        let plan = if planned.premium { "pro" } else { "free" };
        let facts = CallFacts {
            method,
            route,
            status: planned.status,
            latency_ms: 20.0,
            has_value: false,
            plan: Some(plan),
            session_id: session,
            user_id: user,
            event_id: &event_id,
        };
        let rate = policy.rate_of(&facts, false);
        if !policy.keep_of(&facts, rate) {
            continue;
        }
        let mut call = call(planned.ts, ROUTES[planned.route].0, planned.status, 20.0);
        call.event_id = format!("r{rep}-e{i}");
        call.session_id = session.map(str::to_owned);
        call.user_id = user.map(str::to_owned);
        call.plan = Some(plan.into());
        call.sample_rate = (rate < 1.0).then_some(rate);
        kept.push(call);
    }
    kept
}

/// Stores `calls` in `batches` appends (each a buffered batch of its own), the calls dealt
/// round-robin so that a session's calls land in several of them.
fn store_in(store: &EmbeddedStore, project: &str, calls: &[ApiCall], batches: usize) {
    for batch in 0..batches {
        let events: Vec<StoredEvent> = calls
            .iter()
            .skip(batch)
            .step_by(batches)
            .map(|call| StoredEvent {
                event: Event::ApiCall(call.clone()),
                received_at: T0 + DAY,
                skew_ms: 0,
            })
            .collect();
        store.append(project, events).expect("append");
    }
}

fn question(project: &str) -> Question {
    Question {
        project: project.into(),
        from: T0 - DAY,
        to: T0 + DAY,
        now: T0 + DAY,
        slice: Slice::default(),
        by: None,
    }
}

/// Coverage of one estimated quantity over the repetitions.
#[derive(Default)]
struct Coverage {
    name: String,
    covered: usize,
    /// Intervals entirely below the truth.
    below: usize,
    intervals: usize,
    estimates: f64,
}

impl Coverage {
    fn add(&mut self, truth: f64, estimate: f64, interval: Option<[f64; 2]>) {
        let [low, high] =
            interval.unwrap_or_else(|| panic!("{}: a sampled estimate has an interval", self.name));
        self.intervals += 1;
        self.covered += usize::from(low <= truth && truth <= high);
        self.below += usize::from(high < truth);
        self.estimates += estimate;
    }

    fn rate(&self) -> f64 {
        self.covered as f64 / self.intervals as f64
    }
}

#[test]
fn intervals_cover_the_truth_95_percent_of_the_time_and_error_rates_are_unbiased() {
    let calls = workload();
    let policy = SamplingPolicy::default();
    let total = calls.len() as f64;
    let per_route: Vec<f64> = (0..ROUTES.len())
        .map(|r| calls.iter().filter(|c| c.route == r).count() as f64)
        .collect();
    let failed = calls.iter().filter(|c| c.status >= 400).count() as f64;
    let error_rate = failed / total;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(StoreOptions::new(dir.path()), T0 + DAY).expect("store");
    let insights = Insights::new(1 << 30);
    let config = AnalysisConfig::default();
    let mut coverage: Vec<Coverage> = ["requests"]
        .into_iter()
        .map(str::to_owned)
        .chain(ROUTES[..SAMPLED].iter().map(|(r, _)| (*r).to_owned()))
        .chain(["error rate".to_owned()])
        .map(|name| Coverage {
            name,
            ..Default::default()
        })
        .collect();
    let reps = 400;
    let mut kept_calls = 0;
    for rep in 0..reps {
        let kept = sample(&calls, &policy, rep);
        kept_calls += kept.len();
        let project = format!("r{rep}");
        store_in(&store, &project, &kept, 3);
        let question = question(&project);
        let impact = insights.impact(&store, &question, &config).expect("impact");
        coverage[0].add(total, impact.requests, impact.requests_ci95);
        for (r, (endpoint, _)) in ROUTES[..SAMPLED].iter().enumerate() {
            let row = impact
                .rows
                .iter()
                .find(|row| row.endpoint == *endpoint)
                .expect("a row per endpoint");
            coverage[1 + r].add(per_route[r], row.requests, row.requests_ci95);
        }
        let errors = insights.errors(&store, &question, &config).expect("errors");
        assert_eq!(errors.failed, failed, "errors are kept whole: exact");
        let estimate = errors.error_rate.expect("a rate");
        coverage[SAMPLED + 1].add(error_rate, estimate, errors.error_rate_ci95);
    }
    let (mut covered, mut intervals) = (0, 0);
    for c in &coverage {
        eprintln!(
            "{:26} coverage {:.3} of {} ({} below the truth) · mean estimate {:.5}",
            c.name,
            c.rate(),
            c.intervals,
            c.below,
            c.estimates / c.intervals as f64
        );
        covered += c.covered;
        intervals += c.intervals;
    }
    eprintln!(
        "truth: {total} requests, error rate {error_rate:.5}; {:.0} calls kept per repetition",
        kept_calls as f64 / reps as f64
    );
    let pooled = covered as f64 / intervals as f64;
    assert!(
        (0.93..=0.97).contains(&pooled),
        "95% intervals hold the truth in {pooled:.3} of {intervals}"
    );
    for c in &coverage {
        // One quantity over 400 repetitions: 1 standard error of its coverage is ~1.1 points.
        assert!(
            (0.915..=0.985).contains(&c.rate()),
            "{}: 95% intervals hold the truth in {:.3}",
            c.name,
            c.rate()
        );
    }
    let mean_rate = coverage[SAMPLED + 1].estimates / reps as f64;
    assert!(
        (mean_rate / error_rate - 1.0).abs() < 0.02,
        "mean error rate {mean_rate:.5} for a true {error_rate:.5}"
    );
    let mean_total = coverage[0].estimates / reps as f64;
    assert!(
        (mean_total / total - 1.0).abs() < 0.02,
        "mean requests {mean_total:.0} for a true {total}"
    );
}

/// Point 7: the interval of a sampled count depends on the data, not on how the store holds it
/// (a session whose calls sit in several buffered batches, or two days, is still one unit).
#[test]
fn intervals_do_not_depend_on_how_the_rows_are_stored() {
    let calls = workload();
    let kept = sample(&calls, &SamplingPolicy::default(), 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(StoreOptions::new(dir.path()), T0 + DAY).expect("store");
    let insights = Insights::new(1 << 30);
    let config = AnalysisConfig::default();
    let mut answers = Vec::new();
    for batches in [1, 2, 7] {
        let project = format!("b{batches}");
        store_in(&store, &project, &kept, batches);
        answers.push(
            insights
                .impact(&store, &question(&project), &config)
                .expect("impact"),
        );
    }
    // Half of the calls in Parquet files (one per day), the other half still buffered.
    let half = kept.len() / 2;
    store_in(&store, "files", &kept[..half], 2);
    let ticket = store.begin_persist().expect("persist");
    let stats = store.finish_persist(ticket, T0 + DAY).expect("persist");
    assert!(stats.files_written >= 2, "{stats:?}");
    store_in(&store, "files", &kept[half..], 3);
    answers.push(
        insights
            .impact(&store, &question("files"), &config)
            .expect("impact"),
    );
    let same = |a: Option<[f64; 2]>, b: Option<[f64; 2]>| match (a, b) {
        (Some(a), Some(b)) => {
            (a[0] - b[0]).abs() < 1e-6 * b[1] && (a[1] - b[1]).abs() < 1e-6 * b[1]
        }
        (a, b) => a == b,
    };
    for answer in &answers[1..] {
        let (a, b) = (answer.requests_ci95, answers[0].requests_ci95);
        assert!(same(a, b), "total: {a:?} in one layout, {b:?} in another");
        assert_eq!(answer.rows.len(), answers[0].rows.len());
        for (row, first) in answer.rows.iter().zip(&answers[0].rows) {
            assert_eq!(row.endpoint, first.endpoint);
            let (a, b) = (row.requests_ci95, first.requests_ci95);
            assert!(
                same(a, b),
                "{}: {a:?} in one layout, {b:?} in another",
                row.endpoint
            );
        }
    }
}

/// Point 5: where the clients' aggregates count every call (and every sampled raw call says it
/// was counted in one), `impact`'s requests and the errors answer's calls, failed calls and error
/// rate are the exact counts, not estimates; where a sampled call was not aggregated, they stay
/// estimates.
#[test]
fn counts_are_exact_where_aggregates_count_every_call() {
    let calls = workload();
    let total = calls.len() as f64;
    let failed = calls.iter().filter(|c| c.status >= 400).count() as f64;
    let mut kept = sample(&calls, &SamplingPolicy::default(), 0);
    // The client's aggregates: per (route, status class, hour), every call.
    let mut counts: std::collections::BTreeMap<(usize, u16, i64), u64> = Default::default();
    for c in &calls {
        *counts
            .entry((c.route, c.status / 100, c.ts.div_euclid(HOUR)))
            .or_default() += 1;
    }
    let aggregates: Vec<Event> = counts
        .into_iter()
        .enumerate()
        .map(|(i, ((route, class, hour), count))| {
            let (method, route) = ROUTES[route].0.split_once(' ').expect("route");
            Event::ApiAggregate(valuetrace_model::ApiAggregate {
                schema_version: 1,
                event_id: format!("agg-{i}"),
                timestamp: (hour + 1) * HOUR - 1,
                window_start: hour * HOUR,
                service: "shop".into(),
                method: method.into(),
                route: route.into(),
                status_class: class as u8,
                count,
                latency_sum_ms: 20.0 * count as f64,
                latency_buckets: vec![(valuetrace_model::event::latency_bucket(20.0), count)],
                ..Default::default()
            })
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(StoreOptions::new(dir.path()), T0 + DAY).expect("store");
    let stored = |events: Vec<Event>| -> Vec<StoredEvent> {
        events
            .into_iter()
            .map(|event| StoredEvent {
                event,
                received_at: T0 + DAY,
                skew_ms: 0,
            })
            .collect()
    };
    // Without the `aggregated` flag the raw calls are estimates of their own.
    store_in(&store, "raw", &kept, 2);
    for call in &mut kept {
        call.aggregated = true;
    }
    store_in(&store, "sdk", &kept, 2);
    store.append("sdk", stored(aggregates)).expect("append");

    let insights = Insights::new(1 << 30);
    let config = AnalysisConfig::default();
    let sdk = insights
        .errors(&store, &question("sdk"), &config)
        .expect("errors");
    assert!(sdk.exact_counts, "aggregates count every call");
    assert_eq!((sdk.calls, sdk.failed), (total, failed));
    assert_eq!(sdk.error_rate, Some(failed / total));
    assert_eq!((sdk.calls_ci95, sdk.error_rate_ci95), (None, None));

    let impact = insights
        .impact(&store, &question("sdk"), &config)
        .expect("impact");
    assert!(
        impact.estimate,
        "users and values still come from sampled calls"
    );
    assert_eq!((impact.requests, impact.requests_ci95), (total, None));
    for (r, (endpoint, _)) in ROUTES.iter().enumerate() {
        let row = impact
            .rows
            .iter()
            .find(|row| row.endpoint == *endpoint)
            .expect("a row per endpoint");
        let truth = calls.iter().filter(|c| c.route == r).count() as f64;
        assert_eq!(
            (row.requests, row.requests_ci95),
            (truth, None),
            "{endpoint}"
        );
    }
    let estimated = insights
        .impact(&store, &question("raw"), &config)
        .expect("impact");
    assert!(estimated.requests_ci95.is_some() && estimated.requests != total);

    let raw = insights
        .errors(&store, &question("raw"), &config)
        .expect("errors");
    assert!(!raw.exact_counts && raw.estimate);
    assert_ne!(raw.calls, total, "an estimate from sampled calls");
    let [low, high] = raw.error_rate_ci95.expect("an interval");
    assert!(
        low < failed / total && failed / total < high,
        "{low} {high}"
    );
}
