//! Golden tests: a hand-built hour of journeys with every expected number worked out below.

#[path = "../../valuetrace-insights/tests/common/mod.rs"]
mod common;

use common::*;
use valuetrace_insights::scope::Dim;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_journeys::funnel::{FunnelSpec, Order};
use valuetrace_journeys::paths::{PathNode, PathSpec};
use valuetrace_journeys::{Actor, Journeys};
use valuetrace_model::Event;

const A: &str = "GET /api/products";
const B: &str = "POST /api/cart";
const C: &str = "POST /api/checkout";
const X: &str = "GET /api/search";
const NOISE: &str = "GET /health";

/// Seven users, times in minutes after T0 + 1h (the window is [T0, T0 + 1 day), funnel window 1h):
/// - u1 (pro):  A@0, B@1, C@3                      — the happy path.
/// - u2 (pro):  A@0, A@1, health@1.5, B@2, X@3, C@4 — repeat and noise between A and B.
/// - u3:        A@0, X@1                           — leaves for search.
/// - u4:        B@0, A@1, C@2                      — B before A does not count.
/// - u5:        A@0, B@120                         — B after the 1 h window.
/// - u7:        A@0, B@30, C@70                    — C after the window.
/// - u8:        X@0                                — never enters.
fn events() -> Vec<Event> {
    let start = T0 + HOUR;
    let at = |minutes: f64| start + (minutes * MIN as f64) as i64;
    let mut events = Vec::new();
    let mut calls = |user: &str, plan: &str, steps: &[(f64, &str)]| {
        for (minutes, endpoint) in steps {
            let call = call(at(*minutes), endpoint, 200, 50.0)
                .user(user)
                .session(&format!("s-{user}"))
                .plan(plan);
            events.push(Event::ApiCall(call));
        }
    };
    calls("u1", "pro", &[(0.0, A), (1.0, B), (3.0, C)]);
    calls(
        "u2",
        "pro",
        &[
            (0.0, A),
            (1.0, A),
            (1.5, NOISE),
            (2.0, B),
            (3.0, X),
            (4.0, C),
        ],
    );
    calls("u3", "free", &[(0.0, A), (1.0, X)]);
    calls("u4", "free", &[(0.0, B), (1.0, A), (2.0, C)]);
    calls("u5", "free", &[(0.0, A), (120.0, B)]);
    calls("u7", "free", &[(0.0, A), (30.0, B), (70.0, C)]);
    calls("u8", "free", &[(0.0, X)]);
    events
}

fn run<T>(f: impl FnOnce(&Journeys<valuetrace_store::EmbeddedStore>) -> T) -> T {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with(dir.path(), &events(), T0 + DAY);
    let insights = Insights::default();
    let journeys = Journeys {
        facts: &insights.cache,
        store: &store,
    };
    f(&journeys)
}

fn funnel_spec(order: Order) -> FunnelSpec {
    FunnelSpec::parse(&[A.into(), B.into(), C.into()], HOUR, order).expect("valid funnel")
}

#[test]
fn sequential_funnel_counts_entries_conversions_delays_and_where_they_went() {
    let answer = run(|j| {
        j.funnel(
            &question(T0, T0 + DAY, T0 + DAY),
            &AnalysisConfig::default(),
            Actor::User,
            &funnel_spec(Order::Sequential),
        )
    })
    .expect("funnel");
    let s = &answer.steps;
    // Entered A: u1 u2 u3 u4 u5 u7 = 6 (u8 never did A).
    assert_eq!(s[0].entered, 6);
    // Reached B after A within 1h: u1 (1 min), u2 (2 min after its first A), u7 (30 min) = 3;
    // u4's B came before its A, u5's B after the window.
    assert_eq!((s[1].entered, s[1].dropped), (3, 3));
    assert_eq!(s[1].conversion_rate, Some(0.5));
    // Delays 60 s, 120 s, 1800 s: nearest-rank median 120 s, p90 1800 s.
    assert_eq!(s[1].median_ms_from_previous, Some(2 * MIN));
    assert_eq!(s[1].p90_ms_from_previous, Some(30 * MIN));
    // Reached C: u1 and u2; u7's C came 70 min after entry.
    assert_eq!((s[2].entered, s[2].dropped), (2, 1));
    assert_eq!(s[2].conversion_from_start, Some(2.0 / 6.0));
    // Dropped after A: u3 went to search, u4 to checkout (its next distinct event after A),
    // u5 left (its B is past the window). One each, a third of the three.
    let went: Vec<(&str, u64)> = s[0]
        .went_instead
        .iter()
        .map(|n| (n.event.as_str(), n.actors))
        .collect();
    assert_eq!(went, vec![("(left)", 1), (X, 1), (C, 1)]);
    assert!((s[0].went_instead[0].share - 1.0 / 3.0).abs() < 1e-12);
    // Dropped after B: u7 (C outside the window): left.
    assert_eq!(s[1].went_instead[0].event, "(left)");
    assert!(s[2].went_instead.is_empty());
}

#[test]
fn strict_funnel_needs_each_step_next_and_agrees_with_the_path_tree() {
    let config = AnalysisConfig::default();
    let q = question(T0, T0 + DAY, T0 + DAY);
    let (funnel, paths) = run(|j| {
        (
            j.funnel(&q, &config, Actor::User, &funnel_spec(Order::Strict))
                .expect("funnel"),
            j.paths(
                &q,
                &config,
                Actor::User,
                &PathSpec::new(A, false, 3, 10, HOUR).expect("valid paths"),
            )
            .expect("paths"),
        )
    });
    // Strict: B must be the next distinct event after A (u2's repeat A and health check are
    // skipped): u1, u2, u7 = 3. C must follow B next: only u1 (u2 went to search first).
    let entered: Vec<u64> = funnel.steps.iter().map(|s| s.entered).collect();
    assert_eq!(entered, vec![6, 3, 1]);
    // The path tree from A: A(6) → B(3) → C(1), X(1); A → X(1) (u3); A → C(1) (u4); u5 ends at A.
    let tree = &paths.tree;
    assert_eq!((tree.actors, tree.dropped), (6, 1));
    let child = |node: &PathNode, event: &str| -> PathNode {
        node.children
            .iter()
            .find(|c| c.event == event)
            .cloned()
            .unwrap_or_else(|| panic!("no child {event} under {}", node.event))
    };
    let b = child(tree, B);
    assert_eq!((b.actors, b.dropped), (3, 1));
    assert_eq!(child(&b, C).actors, 1);
    assert_eq!(child(&b, X).actors, 1);
    assert_eq!(child(tree, X).actors, 1);
    assert_eq!(child(tree, C).actors, 1);
    // Path drop-offs equal strict-funnel drop-offs on the same steps.
    assert_eq!(tree.actors - b.actors, funnel.steps[1].dropped);
    assert_eq!(b.actors - child(&b, C).actors, funnel.steps[2].dropped);
    // Six distinct paths, one actor each.
    assert_eq!(paths.top_paths.len(), 6);
    assert!(paths.top_paths.iter().all(|p| p.actors == 1));
}

#[test]
fn paths_towards_an_end_step_walk_back_within_the_window() {
    let answer = run(|j| {
        j.paths(
            &question(T0, T0 + DAY, T0 + DAY),
            &AnalysisConfig::default(),
            Actor::User,
            &PathSpec::new(C, true, 3, 10, HOUR).expect("valid paths"),
        )
    })
    .expect("paths");
    // Users with C: u1, u2, u4, u7 = 4. Back from C: u1 B←A; u2 X←B; u4 A←B; u7 B (its A is
    // 70 min before C, outside the hour).
    assert_eq!(answer.tree.actors, 4);
    let counts: Vec<(String, u64)> = answer
        .tree
        .children
        .iter()
        .map(|c| (c.event.clone(), c.actors))
        .collect();
    assert_eq!(counts, vec![(B.into(), 2), (A.into(), 1), (X.into(), 1)]);
    let mut paths: Vec<Vec<String>> = answer.top_paths.iter().map(|p| p.events.clone()).collect();
    paths.sort();
    let strings = |events: &[&str]| events.iter().map(|e| e.to_string()).collect::<Vec<_>>();
    assert_eq!(
        paths,
        vec![
            strings(&[A, B, C]),
            strings(&[B, A, C]),
            strings(&[B, X, C]),
            strings(&[B, C]),
        ]
    );
}

#[test]
fn funnels_break_down_by_the_entry_calls_plan_and_count_per_session() {
    let q = with_by(question(T0, T0 + DAY, T0 + DAY), Dim::Plan);
    let answer = run(|j| {
        j.funnel(
            &q,
            &AnalysisConfig::default(),
            Actor::Session,
            &funnel_spec(Order::Sequential),
        )
    })
    .expect("funnel");
    // pro: u1, u2 both convert; free: u3 u4 u5 u7 enter, u7 reaches B.
    let groups: Vec<(String, Vec<u64>)> = answer
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.steps.iter().map(|s| s.entered).collect()))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("free".into(), vec![4, 1, 0]),
            ("pro".into(), vec![2, 2, 2]),
        ]
    );
    let total: Vec<u64> = answer.steps.iter().map(|s| s.entered).collect();
    assert_eq!(total, vec![6, 3, 2]);
}

#[test]
fn bad_funnels_are_refused_with_the_reason() {
    let too_short = FunnelSpec::parse(&[A.into()], HOUR, Order::Sequential)
        .expect_err("one step")
        .to_string();
    assert!(too_short.contains("2 to 10 steps"), "{too_short}");
    let bad_step = FunnelSpec::parse(&[A.into(), "checkout".into()], HOUR, Order::Sequential)
        .expect_err("bad step")
        .to_string();
    assert!(bad_step.contains("steps[1]"), "{bad_step}");
}

/// Retention over four days, daily periods, cohort and return on any event:
/// - r1: day 0 10:00, day 1 10:30 (24.5 h later: period 1, with a purchase worth 50), day 3 09:00
///   (71 h later: period 2);
/// - r2: day 0 12:00 only;
/// - r3: day 1 08:00, day 2 09:00 (25 h later: period 1);
/// - r4: two days before the window and on day 0: not new, in no cohort.
#[test]
fn retention_counts_cohorts_returns_value_and_completeness() {
    use valuetrace_journeys::retention::{Period, RetentionSpec};
    let at = |day: i64, hour: f64| T0 + day * DAY + (hour * HOUR as f64) as i64;
    let visit = |user: &str, t: i64| Event::ApiCall(call(t, A, 200, 10.0).user(user));
    let events = vec![
        visit("r1", at(0, 10.0)),
        visit("r1", at(1, 10.5)),
        Event::Outcome(outcome(at(1, 10.5), "purchase").user("r1").value(50.0)),
        visit("r1", at(3, 9.0)),
        visit("r2", at(0, 12.0)),
        visit("r3", at(1, 8.0)),
        visit("r3", at(2, 9.0)),
        visit("r4", at(-2, 9.0)),
        visit("r4", at(0, 9.0)),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with(dir.path(), &events, T0 + 4 * DAY);
    let insights = Insights::default();
    let journeys = Journeys {
        facts: &insights.cache,
        store: &store,
    };
    let spec = RetentionSpec::new("any", "any", Period::Day, 4).expect("valid");
    let answer = journeys
        .retention(
            &question(T0, T0 + 4 * DAY, T0 + 4 * DAY),
            &AnalysisConfig::default(),
            Actor::User,
            &spec,
        )
        .expect("retention");
    let rows: Vec<(String, u64, Vec<u64>, Vec<bool>)> = answer
        .cohorts
        .iter()
        .map(|c| {
            (
                c.cohort.clone(),
                c.size,
                c.periods.iter().map(|p| p.actors).collect(),
                c.periods.iter().map(|p| p.complete).collect(),
            )
        })
        .collect();
    // Day 0: r1 and r2 (period 0 = size 2), r1 back in periods 1 and 2; periods complete while
    // the cohort's last day + (n + 1) days fits in the window: n ≤ 2. Day 1: r3, back in period 1.
    assert_eq!(
        rows,
        vec![
            (
                "2026-01-07".into(),
                2,
                vec![2, 1, 1, 0],
                vec![true, true, true, false]
            ),
            (
                "2026-01-08".into(),
                1,
                vec![1, 1, 0, 0],
                vec![true, true, false, false]
            ),
        ]
    );
    assert_eq!(answer.cohorts[0].periods[1].value, 50.0);
    // Average over complete cohorts: period 1 (1 + 1) / (2 + 1); period 2 only day 0: 1 / 2.
    assert!((answer.average[1].rate.expect("complete") - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(answer.average[2].rate, Some(0.5));
    // Issue 18 (7d): no complete cohort in period 3: nothing to average, not `rate 0, value -0`.
    let last = &answer.average[3];
    assert!(!last.complete);
    assert_eq!((last.actors, last.rate, last.value), (None, None, None));
}

/// An experiment `reco` with 10 control and 10 `ml_v2` users, each making 10 calls of
/// `GET /api/recommendations` (control latencies 1..=100 ms, ml_v2 51..=150 ms; each ml_v2 user's
/// first call is a 503). Purchases worth 100 after exposure: c0, c1 (2 of 10) and t0..t4 (5 of
/// 10); c2's purchase before its first call does not count. m0 calls in both variants: mixed.
#[test]
fn experiments_compare_variants_per_endpoint_with_corrected_p_values() {
    use valuetrace_journeys::experiment::ExperimentSpec;
    const RECO: &str = "GET /api/recommendations";
    let mut events = Vec::new();
    let with_variant = |mut call: valuetrace_model::ApiCall, variant: &str| {
        call.experiments.insert("reco".into(), variant.into());
        call
    };
    for i in 0..10i64 {
        for j in 0..10i64 {
            let t = T0 + HOUR + i * MIN + j * SEC;
            let control = call(t, RECO, 200, (1 + i * 10 + j) as f64).user(&format!("c{i}"));
            events.push(Event::ApiCall(with_variant(control, "control")));
            let status = if j == 0 { 503 } else { 200 };
            let treated = call(t, RECO, status, (51 + i * 10 + j) as f64).user(&format!("t{i}"));
            events.push(Event::ApiCall(with_variant(treated, "ml_v2")));
        }
    }
    let buy = |user: &str, t: i64| Event::Outcome(outcome(t, "purchase").user(user).value(100.0));
    for user in ["c0", "c1", "t0", "t1", "t2", "t3", "t4"] {
        events.push(buy(user, T0 + 2 * HOUR));
    }
    events.push(buy("c2", T0 + 30 * MIN));
    for variant in ["control", "ml_v2"] {
        let call = call(T0 + 3 * HOUR, "GET /api/other", 200, 5.0).user("m0");
        events.push(Event::ApiCall(with_variant(call, variant)));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with(dir.path(), &events, T0 + DAY);
    let insights = Insights::default();
    let journeys = Journeys {
        facts: &insights.cache,
        store: &store,
    };
    let spec = ExperimentSpec {
        experiment: "reco".into(),
        control: None,
        conversion: "purchase".into(),
        top_endpoints: 10,
        endpoints: None,
    };
    let answer = journeys
        .experiment(
            &question(T0, T0 + DAY, T0 + DAY),
            &AnalysisConfig::default(),
            Actor::User,
            &spec,
        )
        .expect("experiment");
    assert_eq!(answer.control, "control");
    assert_eq!(answer.mixed, 1);
    let v: Vec<(String, u64, u64, Option<f64>)> = answer
        .variants
        .iter()
        .map(|v| (v.variant.clone(), v.exposed, v.converted, v.value_per_actor))
        .collect();
    assert_eq!(
        v,
        vec![
            ("control".into(), 10, 2, Some(20.0)),
            ("ml_v2".into(), 10, 5, Some(50.0)),
        ]
    );
    // Wilson 95% for 5 of 10: centre (0.5 + 1.92/10) / 1.384 = 0.5, half-width
    // 1.96 · sqrt(0.025 + 0.0096) / 1.384 = 0.2634 → [0.2366, 0.7634].
    let [low, high] = answer.variants[1].conversion_ci95.expect("an interval");
    assert!(
        (low - 0.2366).abs() < 5e-4 && (high - 0.7634).abs() < 5e-4,
        "{low} {high}"
    );
    // 10 vs 10 with equal shares expected: chi-square 0, p = 1.
    let srm = answer.sample_ratio.expect("srm");
    assert_eq!((srm.statistic, srm.mismatch), (0.0, false));
    // One endpoint with ≥ 100 calls per variant (m0's endpoint has 1 each).
    assert_eq!(answer.endpoints.len(), 1);
    let e = &answer.endpoints[0].variants;
    // Nearest-rank quantiles (the product's one definition): p50 of 1..=100 is 50, of 51..=150
    // 100; p95 95 and 145 (numpy-linear gave 50.5, 100.5, 95.05, 145.05).
    assert_eq!((e[0].p50_ms, e[1].p50_ms), (Some(50.0), Some(100.0)));
    assert_eq!((e[0].p95_ms, e[1].p95_ms), (Some(95.0), Some(145.0)));
    assert_eq!((e[0].error_rate, e[1].error_rate), (Some(0.0), Some(0.1)));
    // Five comparisons (conversion, value, error rate, p50, p95), Holm-adjusted: never below the
    // unadjusted p-value; the latency shift of 50 ms is significant.
    assert_eq!(answer.comparisons.len(), 5);
    for m in &answer.comparisons {
        assert!(m.comparison.p_value >= m.p_value_unadjusted, "{m:?}");
    }
    let p50 = answer
        .comparisons
        .iter()
        .find(|m| m.metric == "latency_p50")
        .expect("p50 comparison");
    assert_eq!(p50.comparison.difference, 50.0);
    assert!(p50.comparison.significant);
    let conversion = &answer.comparisons[0];
    assert_eq!(conversion.metric, "conversion");
    assert!((conversion.comparison.difference - 0.3).abs() < 1e-12);
}

/// Issue 18 (6): 300 users per variant, each calling 10 endpoints; conversion 60/300 vs 85/300
/// (p ≈ 0.017 alone). The verdict on a primary metric must not depend on how many endpoints are
/// compared as guardrails, and every interval shown next to an adjusted p-value must agree with it.
#[test]
fn issue_18_primary_verdicts_do_not_depend_on_the_number_of_endpoints_compared() {
    use valuetrace_journeys::experiment::{ExperimentSpec, Family};
    let mut events = Vec::new();
    for (variant, converters) in [("control", 60), ("ml_v2", 85)] {
        for i in 0..300i64 {
            let user = format!("{variant}{i}");
            for k in 0..10i64 {
                let t = T0 + HOUR + i * SEC + k;
                let endpoint = format!("GET /api/e{k}");
                // Endpoint 0 is slower and fails more in the treatment: a real guardrail signal.
                let slower = if variant == "ml_v2" && k == 0 {
                    30.0
                } else {
                    0.0
                };
                let status = if variant == "ml_v2" && k == 0 && i % 10 == 0 {
                    500
                } else {
                    200
                };
                let latency = 20.0 + ((i * 37 + k * 11) % 50) as f64 + slower;
                let mut call = call(t, &endpoint, status, latency).user(&user);
                call.experiments.insert("reco".into(), variant.into());
                events.push(Event::ApiCall(call));
            }
            if i < converters {
                let buy = outcome(T0 + 2 * HOUR, "purchase").user(&user).value(100.0);
                events.push(Event::Outcome(buy));
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with(dir.path(), &events, T0 + DAY);
    let insights = Insights::default();
    let journeys = Journeys {
        facts: &insights.cache,
        store: &store,
    };
    let run = |top_endpoints: usize| {
        let spec = ExperimentSpec {
            experiment: "reco".into(),
            control: None,
            conversion: "purchase".into(),
            top_endpoints,
            endpoints: None,
        };
        journeys
            .experiment(
                &question(T0, T0 + DAY, T0 + DAY),
                &AnalysisConfig::default(),
                Actor::User,
                &spec,
            )
            .expect("experiment")
    };
    let (three, ten) = (run(3), run(10));
    assert_eq!((three.endpoints.len(), ten.endpoints.len()), (3, 10));
    let conversion = |answer: &valuetrace_journeys::experiment::ExperimentAnswer| {
        answer
            .comparisons
            .iter()
            .find(|m| m.metric == "conversion")
            .expect("conversion compared")
            .clone()
    };
    let (c3, c10) = (conversion(&three), conversion(&ten));
    assert_eq!(
        c3, c10,
        "the conversion verdict moved with the endpoints compared"
    );
    assert_eq!(c10.family, Family::Primary);
    // Alone p ≈ 0.017; Holm among the two primary metrics (value per actor has the same
    // relative difference and p ≈ 0.017 too): still below 0.05.
    assert!(c10.p_value_unadjusted < 0.02, "{c10:?}");
    assert!(c10.comparison.significant, "{c10:?}");
    for answer in [&three, &ten] {
        let guardrails = answer
            .comparisons
            .iter()
            .filter(|m| m.family == Family::Guardrail)
            .count();
        assert_eq!(guardrails, 3 * answer.endpoints.len());
        for m in &answer.comparisons {
            let excludes_zero = m.ci[0] > 0.0 || m.ci[1] < 0.0;
            assert_eq!(excludes_zero, m.comparison.p_value < 0.05, "{m:?}");
            assert!(m.ci[0] <= m.comparison.difference && m.comparison.difference <= m.ci[1]);
            assert!(m.comparison.p_value >= m.p_value_unadjusted, "{m:?}");
            assert!((0.95..1.0).contains(&m.ci_level), "{m:?}");
        }
    }
    // Endpoint 0's 30 ms slowdown survives the guardrail correction.
    let p50 = ten
        .comparisons
        .iter()
        .find(|m| m.metric == "latency_p50" && m.endpoint.as_deref() == Some("GET /api/e0"))
        .expect("e0 p50");
    assert!(p50.comparison.significant, "{p50:?}");
}

/// Time to first value over two days (start: any API call, value: a purchase):
/// - n1: first call 01:00, purchase 03:00 → 2 h;
/// - n2: first call 02:00, purchase the next day 02:00 → 24 h;
/// - n3: first call 05:00, never buys;
/// - n4: buys at 01:00, first call 04:00: the purchase before the start does not count;
/// - o1: first call three days before the window: not new.
#[test]
fn time_to_first_value_counts_new_actors_and_their_delays() {
    use valuetrace_journeys::retention::Period;
    use valuetrace_journeys::ttv::TtvSpec;
    let visit = |user: &str, t: i64| Event::ApiCall(call(t, A, 200, 10.0).user(user));
    let buy = |user: &str, t: i64| Event::Outcome(outcome(t, "purchase").user(user).value(10.0));
    let events = vec![
        visit("n1", T0 + HOUR),
        buy("n1", T0 + 3 * HOUR),
        visit("n2", T0 + 2 * HOUR),
        buy("n2", T0 + DAY + 2 * HOUR),
        visit("n3", T0 + 5 * HOUR),
        buy("n4", T0 + HOUR),
        visit("n4", T0 + 4 * HOUR),
        visit("o1", T0 - 3 * DAY),
        visit("o1", T0 + HOUR),
        buy("o1", T0 + 2 * HOUR),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with(dir.path(), &events, T0 + 2 * DAY);
    let insights = Insights::default();
    let journeys = Journeys {
        facts: &insights.cache,
        store: &store,
    };
    let spec = TtvSpec::new("/*", "outcome:purchase", Period::Day, None).expect("valid");
    let answer = journeys
        .ttv(
            &question(T0, T0 + 2 * DAY, T0 + 2 * DAY),
            &AnalysisConfig::default(),
            Actor::User,
            &spec,
        )
        .expect("ttv");
    let o = &answer.overall;
    assert_eq!((o.new_actors, o.reached), (4, 2));
    assert_eq!(o.reached_share, Some(0.5));
    // Nearest rank over [2 h, 24 h]: p50 2 h, p90 24 h.
    assert_eq!((o.p50_ms, o.p90_ms), (Some(2 * HOUR), Some(DAY)));
    assert_eq!(answer.trend.len(), 1);
    assert_eq!(answer.trend[0].cohort, "2026-01-07");
}

/// Churn risk per user as of day 28 (recent 7 days, baseline 14, threshold 0.5, ≥ 5 baseline
/// calls), one call a day at noon unless said otherwise:
///
/// - a: every day 0–27: steady (score 0);
/// - b: two a day on days 0–20, silent since: score 1, falling on GET /api/products;
/// - c: days 0–13, churned on day 14: already gone, not scored;
/// - d: two a day on days 0–13, churned on day 24;
/// - e: days 0–13, silent since, never churns.
///
/// Now: scored a, b, e (baselines 14, 28, 7 calls); at risk b and e (score 1, b's baseline first).
///
/// Back-test as of day 21: scored a, b, d, e; flagged d and e (silent over days 14–20); d churned
/// on day 24: precision 1/2, recall 1/1.
#[test]
fn churn_risk_scores_falling_activity_and_backtests_against_churn_outcomes() {
    use valuetrace_journeys::churn::ChurnSpec;
    let noon = |day: i64, k: i64| T0 + day * DAY + 12 * HOUR + k * MIN;
    let mut events = Vec::new();
    let mut visits = |user: &str, days: std::ops::Range<i64>, per_day: i64| {
        for day in days {
            for k in 0..per_day {
                events.push(Event::ApiCall(call(noon(day, k), A, 200, 10.0).user(user)));
            }
        }
    };
    visits("a", 0..28, 1);
    visits("b", 0..21, 2);
    visits("c", 0..14, 1);
    visits("d", 0..14, 2);
    visits("e", 0..14, 1);
    events.push(Event::Outcome(outcome(noon(14, 30), "churn").user("c")));
    events.push(Event::Outcome(outcome(noon(24, 0), "churn").user("d")));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with(dir.path(), &events, T0 + 28 * DAY);
    let insights = Insights::default();
    let journeys = Journeys {
        facts: &insights.cache,
        store: &store,
    };
    let spec = ChurnSpec {
        recent_ms: 7 * DAY,
        baseline_ms: 14 * DAY,
        threshold: 0.5,
        min_baseline_calls: 5.0,
        churn_outcome: "churn".into(),
        top: 10,
    };
    let answer = journeys
        .churn_risk(
            &question(T0, T0 + 28 * DAY, T0 + 28 * DAY),
            &AnalysisConfig::default(),
            Actor::User,
            &spec,
        )
        .expect("churn risk");
    assert_eq!((answer.scored, answer.at_risk), (3, 2));
    let listed: Vec<(&str, f64)> = answer
        .actors
        .iter()
        .map(|a| (a.id.as_str(), a.score))
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].1, 1.0);
    assert_eq!(listed[1].1, 1.0);
    let b = &answer.actors[0];
    assert!((b.baseline_per_day - 2.0).abs() < 1e-9, "{b:?}");
    assert_eq!(b.falling_routes[0].route, A);
    let t = &answer.backtest;
    assert_eq!(
        (t.scored, t.flagged, t.churned, t.flagged_and_churned),
        (4, 2, 1, 1)
    );
    assert_eq!((t.precision, t.recall), (Some(0.5), Some(1.0)));
}
