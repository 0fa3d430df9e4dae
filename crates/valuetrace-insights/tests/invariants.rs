//! Invariants that hold for any data, checked on small random datasets (where edge cases are
//! dense: calls before the window, anonymous outcomes, plans that come and go), and regression
//! tests for the cases they found.

mod common;

use common::*;
use proptest::prelude::*;
use valuetrace_insights::config::GapRule;
use valuetrace_insights::gaps::GapCounts;
use valuetrace_insights::latency::LatencySpec;
use valuetrace_insights::scope::Dim;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_model::Event;

const ROUTES: [&str; 4] = [
    "GET /api/search",
    "POST /api/cart",
    "POST /api/checkout",
    "GET /api/items/{id}",
];
const PLANS: [Option<&str>; 3] = [None, Some("pro"), Some("free")];

/// One call: minutes from T0 (−120 .. 60: before the window is the look-back), user, session,
/// route, status, plan.
type CallSpec = (i64, Option<u8>, Option<u8>, usize, u16, usize);
/// One outcome: minutes from T0, user, session, value, purchase (or signup).
type OutcomeSpec = (i64, Option<u8>, Option<u8>, Option<u16>, bool);

fn call_spec() -> impl Strategy<Value = CallSpec> {
    (
        -120i64..60,
        proptest::option::of(0u8..4),
        proptest::option::of(0u8..5),
        0..ROUTES.len(),
        prop_oneof![Just(200u16), Just(200), Just(404), Just(500)],
        0..PLANS.len(),
    )
}

fn outcome_spec() -> impl Strategy<Value = OutcomeSpec> {
    (
        -30i64..75,
        proptest::option::of(0u8..4),
        proptest::option::of(0u8..5),
        proptest::option::of(1u16..500),
        any::<bool>(),
    )
}

fn events(calls: &[CallSpec], outcomes: &[OutcomeSpec]) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, &(minute, user, session, route, status, plan)) in calls.iter().enumerate() {
        // Distinct instants, so that first and last touch are never a tie.
        let mut c = call(
            T0 + minute * MIN + i as i64,
            ROUTES[route],
            status,
            100.0 + i as f64,
        );
        c.user_id = user.map(|u| format!("u{u}"));
        c.session_id = session.map(|s| format!("s{s}"));
        c.plan = PLANS[plan].map(str::to_owned);
        if ROUTES[route] == "POST /api/checkout" {
            c = c.value(10.0 + i as f64);
        }
        events.push(Event::ApiCall(c));
    }
    for &(minute, user, session, value, purchase) in outcomes {
        let mut o = outcome(
            T0 + minute * MIN,
            if purchase { "purchase" } else { "signup" },
        );
        o.user_id = user.map(|u| format!("u{u}"));
        o.session_id = session.map(|s| format!("s{s}"));
        o.value = value.map(f64::from);
        events.push(Event::Outcome(o));
    }
    events
}

fn config(window: &str) -> AnalysisConfig {
    AnalysisConfig {
        attribution_window: window.into(),
        min_bucket_sessions: 2,
        gaps: vec![
            GapRule {
                name: "cart_to_checkout".into(),
                start: "POST /api/cart".into(),
                end: "POST /api/checkout".into(),
                within: "10m".into(),
                match_by: "user".into(),
            },
            GapRule {
                name: "checkout_to_purchase".into(),
                start: "POST /api/checkout".into(),
                end: "outcome:purchase".into(),
                within: "15m".into(),
                match_by: "session".into(),
            },
        ],
        ..Default::default()
    }
}

fn gap_sums(counts: &GapCounts) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        counts.started,
        counts.completed + counts.pending + counts.gaps,
        "{:?}",
        counts
    );
    Ok(())
}

/// Value of the outcomes attribution considers: valued, in the window, with a user or a session.
fn attributable(outcomes: &[OutcomeSpec]) -> f64 {
    outcomes
        .iter()
        .filter(|(minute, user, session, value, _)| {
            (0..60).contains(minute) && value.is_some() && (user.is_some() || session.is_some())
        })
        .map(|o| f64::from(o.3.unwrap()))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn answers_add_up(
        calls in proptest::collection::vec(call_spec(), 0..40),
        outcomes in proptest::collection::vec(outcome_spec(), 0..10),
        window in prop_oneof![Just("20m"), Just("2h")],
        by_plan in any::<bool>(),
        only_pro in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let now = T0 + 70 * MIN;
        let store = store_with(dir.path(), &events(&calls, &outcomes), now);
        let config = config(window);
        let mut q = question(T0, T0 + HOUR, now);
        if by_plan {
            q = with_by(q, Dim::Plan);
        }
        if only_pro {
            q = with_plan(q, "pro");
        }
        let insights = Insights::default();

        // Impact: every model hands out exactly the attributed value across the rows; attributed
        // and unattributed together are the value of every attributable outcome.
        let impact = insights.impact(&store, &q, &config).unwrap();
        let total = impact.attributed_outcome_value;
        let sum = |f: fn(&valuetrace_insights::impact::ImpactRow) -> f64| impact.rows.iter().map(f).sum::<f64>();
        prop_assert!(near(sum(|r| r.assisted_value.linear), total, 1e-9), "linear {} vs {total}", sum(|r| r.assisted_value.linear));
        prop_assert!(near(sum(|r| r.assisted_value.first_touch), total, 1e-9), "first touch {} vs {total}", sum(|r| r.assisted_value.first_touch));
        prop_assert!(near(sum(|r| r.assisted_value.last_touch), total, 1e-9), "last touch {} vs {total}", sum(|r| r.assisted_value.last_touch));
        prop_assert!(near(total + impact.unattributed_outcome_value, attributable(&outcomes), 1e-9));
        for row in &impact.rows {
            prop_assert!(row.adoption.is_none_or(|a| (0.0..=1.0).contains(&a)));
            prop_assert!(row.success_rate.is_none_or(|s| (0.0..=1.0).contains(&s)));
        }
        if sum(|r| r.attributed_value) > 0.0 {
            prop_assert!(near(sum(|r| r.components.value_share), 1.0, 1e-9));
        }

        // Every breakdown (their usage summaries are kept on first ask, plan's with the facts)
        // splits the same requests and direct value as the answer without one.
        if !by_plan && !only_pro {
            let requests: f64 = impact.rows.iter().map(|r| r.requests).sum();
            let direct: f64 = impact.rows.iter().map(|r| r.direct_value).sum();
            for dim in [Dim::Plan, Dim::Segment, Dim::Variant, Dim::Service, Dim::AppVersion, Dim::Provider] {
                for ask in 0..2 {
                    let split = insights.impact(&store, &with_by(q.clone(), dim), &config).unwrap();
                    let split_requests: f64 = split.rows.iter().map(|r| r.requests).sum();
                    let split_direct: f64 = split.rows.iter().map(|r| r.direct_value).sum();
                    prop_assert!(near(split_requests, requests, 1e-9), "{dim:?} ask {ask}: {split_requests} vs {requests} requests");
                    prop_assert!(near(split_direct, direct, 1e-9), "{dim:?} ask {ask}: {split_direct} vs {direct} direct value");
                }
            }
        }

        // Gaps: every start is completed, pending or a gap, overall and per group.
        let gaps = insights.gaps(&store, &q, &config).unwrap();
        for rule in &gaps.gaps {
            gap_sums(&rule.counts)?;
            for counts in rule.groups.values() {
                gap_sums(counts)?;
            }
            if by_plan {
                let started: u64 = rule.groups.values().map(|c| c.started).sum();
                prop_assert_eq!(started, rule.counts.started);
            }
        }

        // Errors: the classes partition the failed calls.
        let errors = insights.errors(&store, &q, &config).unwrap();
        let class_calls: f64 = errors.classes.iter().map(|c| c.calls).sum();
        prop_assert!(near(class_calls, errors.failed, 1e-9));
        prop_assert!(errors.unknown <= errors.failed);
        prop_assert!(errors.sessions.lost_conversions >= 0.0);

        // Latency: the buckets partition the sessions, and so does the threshold.
        let spec = LatencySpec { route: "POST /api/checkout".into(), edges_ms: vec![110.0, 120.0], threshold_ms: 115.0, ..Default::default() };
        let latency = insights.latency_conversion(&store, &q, &config, &spec).unwrap();
        let sessions: u64 = latency.buckets.iter().map(|b| b.sessions).sum();
        let below = latency.conversion_below_threshold.trials as u64;
        prop_assert_eq!(sessions, latency.sessions_above_threshold + below);
        prop_assert!(latency.value_at_risk.is_none_or(|v| v >= 0.0));

        // Scorecard: ranks in [0, 1], scores in [0, 100].
        let scorecard = insights.scorecard(&store, &q, &config).unwrap();
        for row in &scorecard.rows {
            prop_assert!((0.0..=100.0).contains(&row.bridge_score));
            prop_assert!((0.0..=1.0).contains(&row.business_impact.rank));
        }
    }
}

#[test]
fn credit_earned_before_the_window_keeps_its_row() {
    // u1 lands (30 min before the window, so only in the look-back) then buys inside the window.
    let dir = tempfile::tempdir().unwrap();
    let events = vec![
        Event::ApiCall(
            call(T0 - 30 * MIN, "GET /api/landing", 200, 10.0)
                .user("u1")
                .session("s1"),
        ),
        Event::ApiCall(
            call(T0 + 10 * MIN, "POST /api/buy", 200, 10.0)
                .user("u1")
                .session("s1"),
        ),
        Event::Outcome(
            outcome(T0 + 20 * MIN, "purchase")
                .user("u1")
                .session("s1")
                .value(100.0),
        ),
    ];
    let store = store_with(dir.path(), &events, T0 + HOUR);
    let config = config("2h");
    let a = Insights::default()
        .impact(&store, &question(T0, T0 + HOUR, T0 + HOUR), &config)
        .unwrap();
    assert_close(a.attributed_outcome_value, 100.0);
    // Linear 50 / 50; first touch all to the landing page, last touch all to buy.
    let landing = a
        .rows
        .iter()
        .find(|r| r.endpoint == "GET /api/landing")
        .expect("a row for the landing page");
    assert_close(landing.assisted_value.linear, 50.0);
    assert_close(landing.assisted_value.first_touch, 100.0);
    assert_close(landing.requests, 0.0);
    assert_eq!(landing.users, 0);
    let linear: f64 = a.rows.iter().map(|r| r.assisted_value.linear).sum();
    assert_close(linear, 100.0);
}

#[test]
fn latency_groups_a_session_by_its_first_call() {
    // s1 starts on the free plan and upgrades; the calls arrive newest first.
    let dir = tempfile::tempdir().unwrap();
    let first = call(T0 + 10 * MIN, "POST /api/checkout", 200, 300.0)
        .user("u1")
        .session("s1")
        .plan("free");
    let second = call(T0 + 20 * MIN, "POST /api/checkout", 200, 900.0)
        .user("u1")
        .session("s1")
        .plan("pro");
    let events = vec![Event::ApiCall(second), Event::ApiCall(first)];
    let store = store_with(dir.path(), &events, T0 + HOUR);
    let spec = LatencySpec {
        route: "POST /api/checkout".into(),
        ..Default::default()
    };
    let q = with_by(question(T0, T0 + HOUR, T0 + HOUR), Dim::Plan);
    let groups = |store: &valuetrace_store::EmbeddedStore| {
        let a = Insights::default()
            .latency_conversion(store, &q, &config("2h"), &spec)
            .unwrap();
        a.buckets
            .iter()
            .filter(|b| b.sessions > 0)
            .map(|b| (b.group.clone().unwrap(), b.from_ms))
            .collect::<Vec<_>>()
    };
    // The slowest call (900 ms → [500, 1000)), in the group of the first call (free).
    assert_eq!(groups(&store), [("free".to_owned(), 500.0)]);
    persist(&store, T0 + HOUR);
    assert_eq!(groups(&store), [("free".to_owned(), 500.0)]);
}
