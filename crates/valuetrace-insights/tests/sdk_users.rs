//! Issue 18, point 4: users and adoption of SDK traffic in the business answers.
//!
//! The client SDK counts every call in `api_aggregate` events, each with the HyperLogLog registers
//! of its users, and sends the raw calls of a sample of users only (rate 0.08, flagged
//! `aggregated`). `impact` and `priority` must count users from the sketches — an estimate, said
//! so, with a 95% interval that covers the truth — not from the sampled raw calls, which showed
//! 320 real users as 25. Adoption inherits it, and the change against the previous period
//! compares sketches with sketches. Each repetition draws fresh user ids, so it is an independent
//! draw of which users the client keeps and where their hashes fall.

mod common;

use common::*;
use std::collections::BTreeMap;
use valuetrace_client::aggregate::{Aggregator, CallKey, Window, to_events};
use valuetrace_client::sampling::{stable_hash, threshold};
use valuetrace_insights::config::Feature;
use valuetrace_insights::users::Kind;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_model::{ApiCall, Event};

const RATE: f64 = 0.08;
const USERS: usize = 400;
const SEARCH: &str = "/api/search";
const PAYMENTS: &str = "/api/payments";

/// Whether user `u` pays in `day` (0: the previous day, 1: the current one): 20% of users the
/// day before, 30% in the window.
fn pays(u: usize, day: usize) -> bool {
    u % 10 < 2 + day
}

/// Two days of SDK traffic of repetition `rep`: each hour's aggregates of every user's calls,
/// and the raw calls of the users sampling keeps. Returns the events and how many users kept.
fn traffic(rep: usize) -> (Vec<Event>, usize) {
    let aggregator = Aggregator::default();
    let experiments = BTreeMap::new();
    let mut events = Vec::new();
    let mut kept = std::collections::BTreeSet::new();
    for day in 0..2 {
        for hour in 0..24 {
            let start = T0 - DAY + day as i64 * DAY + hour * HOUR;
            for u in (0..USERS).filter(|&u| calls_in_hour(u, hour as usize)) {
                let user_id = format!("r{rep}-user-{u}");
                let sampled = stable_hash(&user_id) <= threshold(RATE);
                let routes = [(SEARCH, true), (PAYMENTS, pays(u, day))];
                for (route, _) in routes.iter().filter(|(_, called)| *called) {
                    aggregator.record(
                        &CallKey {
                            route,
                            method: "POST",
                            status: 200,
                            plan: None,
                            experiments: &experiments,
                            provider: None,
                            user_id: Some(&user_id),
                        },
                        20.0,
                    );
                    if sampled {
                        kept.insert(u);
                        let mut raw = call(start, &format!("POST {route}"), 200, 20.0);
                        raw.service = "web".into();
                        events.push(Event::ApiCall(ApiCall {
                            user_id: Some(user_id.clone()),
                            aggregated: true,
                            sample_rate: Some(RATE),
                            ..raw
                        }));
                    }
                }
            }
            let window = Window {
                service: "web",
                start_ms: start,
                end_ms: start + 10 * SEC,
                id_prefix: "host-1",
                flush: (day * 24 + hour as usize) as u64,
            };
            events.extend(
                to_events(aggregator.drain(), window)
                    .into_iter()
                    .map(Event::ApiAggregate),
            );
        }
    }
    (events, kept.len())
}

/// Users who called each route on the current day (the window), and the active users.
fn truth() -> (f64, f64, f64) {
    let active = (0..USERS).filter(|&u| calls_in_window(u)).count() as f64;
    let payers = (0..USERS)
        .filter(|&u| calls_in_window(u) && pays(u, 1))
        .count() as f64;
    (active, active, payers)
}

fn calls_in_window(u: usize) -> bool {
    (0..24).any(|hour| calls_in_hour(u, hour))
}

/// Every user calls in each day's first hour (so each day's data starts at its midnight), then
/// in some of the others.
fn calls_in_hour(u: usize, hour: usize) -> bool {
    hour == 0 || (u + hour).is_multiple_of(6) || u % 24 == hour
}

fn covers(ci: Option<[u64; 2]>, truth: f64) -> bool {
    ci.is_some_and(|[low, high]| low as f64 <= truth && truth <= high as f64)
}

#[test]
fn users_and_adoption_of_sdk_traffic_are_estimates_whose_intervals_cover_the_truth() {
    let (active_truth, search_truth, payers_truth) = truth();
    let adoption_truth = payers_truth / active_truth;
    let previous_adoption = 0.2;
    let config = AnalysisConfig {
        features: vec![Feature {
            name: "checkout".into(),
            routes: vec![format!("POST {PAYMENTS}")],
            effort_hours: 10.0,
        }],
        ..AnalysisConfig::default()
    };
    let reps = 40;
    let mut covered = [0usize; 4];
    for rep in 0..reps {
        let (events, kept) = traffic(rep);
        assert!(kept < USERS / 5, "only a sample of users sent raw calls");
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &events, T0 + DAY);
        let insights = Insights::new(1 << 28);
        let question = question(T0, T0 + DAY, T0 + DAY);
        let impact = insights.impact(&store, &question, &config).expect("impact");
        assert_eq!(impact.active_users_kind, Kind::Estimate);
        covered[0] += usize::from(covers(impact.active_users_ci95, active_truth));
        let row = |route: &str| {
            impact
                .rows
                .iter()
                .find(|r| r.endpoint == format!("POST {route}"))
                .unwrap_or_else(|| panic!("a row for {route}"))
        };
        let (search, payments) = (row(SEARCH), row(PAYMENTS));
        for r in [search, payments] {
            assert_eq!(r.users_kind, Kind::Estimate, "{}", r.endpoint);
            assert!(
                r.users as f64 > 0.8 * payers_truth,
                "rep {rep}: {} users of {} from {kept} sampled users",
                r.users,
                r.endpoint
            );
        }
        covered[1] += usize::from(covers(search.users_ci95, search_truth));
        covered[2] += usize::from(covers(payments.users_ci95, payers_truth));
        let [low, high] = payments.adoption_ci95.expect("an adoption interval");
        covered[3] += usize::from(low <= adoption_truth && adoption_truth <= high);
        // Sketches against sketches: +10 pp, not the noise of the sampled users.
        let change = payments
            .adoption_change_pp
            .expect("a complete previous period");
        let true_change = (adoption_truth - previous_adoption) * 100.0;
        assert!(
            (change - true_change).abs() < 3.0,
            "rep {rep}: adoption change {change:+.2} pp for a true {true_change:+.2} pp"
        );
        let priority = insights
            .priority(&store, &question, &config)
            .expect("priority");
        let feature = &priority.features[0];
        assert_eq!(feature.users_kind, Kind::Estimate);
        assert_eq!(
            (feature.users, feature.adoption),
            (payments.users, payments.adoption),
            "the feature is the one endpoint"
        );
    }
    // 95% intervals (linear counting's is conservative at a few hundred users): 40 of 40 for
    // each when written; the adoption interval divides bound by bound, so it is wider still. At
    // least 90% allows for the draw.
    for (name, c) in ["active users", "search users", "payers", "adoption"]
        .iter()
        .zip(covered)
    {
        assert!(
            c as f64 >= 0.9 * reps as f64,
            "{name}: the interval covered the truth in {c} of {reps} repetitions"
        );
    }
}

#[test]
fn users_of_sampled_calls_no_aggregate_counted_are_a_lower_bound() {
    // A third-party client that samples users without aggregates: the kept users are a floor.
    let mut events = Vec::new();
    for u in 0..200 {
        let user_id = format!("user-{u}");
        if stable_hash(&user_id) > threshold(0.25) {
            continue;
        }
        let mut raw = call(T0 + HOUR, &format!("POST {SEARCH}"), 200, 20.0).user(&user_id);
        raw.sample_rate = Some(0.25);
        events.push(Event::ApiCall(raw));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &events, T0 + DAY);
    let impact = Insights::new(1 << 28)
        .impact(
            &store,
            &question(T0, T0 + DAY, T0 + DAY),
            &AnalysisConfig::default(),
        )
        .expect("impact");
    assert_eq!(impact.active_users_kind, Kind::LowerBound);
    let row = &impact.rows[0];
    assert_eq!(
        (row.users_kind, row.users, row.users_ci95),
        (Kind::LowerBound, events.len(), None)
    );
    // Every call kept whole: exact.
    let dir = tempfile::tempdir().unwrap();
    let mut whole = call(T0 + HOUR, &format!("POST {SEARCH}"), 200, 20.0).user("u");
    whole.event_id = "w".into();
    let store = store_with(dir.path(), &[Event::ApiCall(whole)], T0 + DAY);
    let impact = Insights::new(1 << 28)
        .impact(
            &store,
            &question(T0, T0 + DAY, T0 + DAY),
            &AnalysisConfig::default(),
        )
        .expect("impact");
    assert_eq!(
        (impact.active_users_kind, impact.rows[0].users_kind),
        (Kind::Exact, Kind::Exact)
    );
}
