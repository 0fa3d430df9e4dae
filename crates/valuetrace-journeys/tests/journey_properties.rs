//! Properties of the journey answers over random datasets, and a naive second implementation of
//! the funnel (plain loops over each user's events, labels instead of ids):
//! - funnel counts never increase from step to step, and breakdown groups sum to the totals;
//! - path drop-offs equal strict-funnel drop-offs on the same steps;
//! - retention period 0 equals the cohort size, and no period exceeds it;
//! - the production funnel (sequential and strict) equals the naive one.

#[path = "../../valuetrace-insights/tests/common/mod.rs"]
mod common;

use common::*;
use proptest::prelude::*;
use valuetrace_insights::scope::Dim;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_journeys::funnel::{FunnelAnswer, FunnelSpec, Order};
use valuetrace_journeys::paths::{PathNode, PathSpec};
use valuetrace_journeys::retention::{Period, RetentionSpec};
use valuetrace_journeys::{Actor, Journeys};
use valuetrace_model::Event;

const ROUTES: [&str; 4] = ["GET /a", "GET /b", "POST /c", "GET /d"];
const NOISE: &str = "GET /health";
const BUY: &str = "outcome:buy";
const WINDOW: i64 = 2 * HOUR;

/// One user's events: (time, label) with distinct times, in time order.
type Timeline = Vec<(i64, String)>;

/// Random users over one day: each has a plan and a timeline of calls (noise included) and
/// purchases, seconds to an hour apart, all in `[T0, T0 + DAY)`.
fn dataset(seed: u64) -> (Vec<Event>, Vec<Timeline>) {
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    };
    let (mut events, mut timelines) = (Vec::new(), Vec::new());
    for u in 0..(3 + next(6)) {
        let user = format!("u{u}");
        let plan = ["free", "pro"][next(2) as usize];
        let mut t = T0 + next(6 * 3600) as i64 * SEC;
        let mut timeline = Vec::new();
        for _ in 0..(1 + next(12)) {
            let spread = if next(4) == 0 { 3600 } else { 120 };
            t += SEC + next(spread) as i64 * SEC;
            if t >= T0 + DAY {
                break;
            }
            let session = format!("{user}-s{}", (t - T0) / (4 * HOUR));
            let label = match next(10) {
                0 => NOISE.to_owned(),
                1 => BUY.to_owned(),
                k => ROUTES[(k % 4) as usize].to_owned(),
            };
            let event = if label == BUY {
                Event::Outcome(outcome(t, "buy").user(&user).session(&session).value(10.0))
            } else {
                Event::ApiCall(
                    call(t, &label, 200, 10.0)
                        .user(&user)
                        .session(&session)
                        .plan(plan),
                )
            };
            events.push(event);
            timeline.push((t, label));
        }
        timelines.push(timeline);
    }
    (events, timelines)
}

/// The naive funnel: per user, entry = first step-1 event; each next step the earliest matching
/// event after the previous one (sequential) or the next distinct non-noise event (strict), all
/// before entry + window.
fn naive_funnel(timelines: &[Timeline], steps: &[&str], strict: bool) -> Vec<u64> {
    let mut entered = vec![0u64; steps.len()];
    for timeline in timelines {
        let Some(entry) = timeline.iter().position(|(_, l)| l == steps[0]) else {
            continue;
        };
        let deadline = timeline[entry].0 + WINDOW;
        entered[0] += 1;
        let mut at = entry;
        for (i, step) in steps.iter().enumerate().skip(1) {
            let later = (at + 1..timeline.len()).filter(|j| timeline[*j].0 < deadline);
            let found = if strict {
                let current = &timeline[at].1;
                later
                    .into_iter()
                    .find(|j| timeline[*j].1 != NOISE && timeline[*j].1 != *current)
                    .filter(|j| timeline[*j].1 == *step)
            } else {
                later.into_iter().find(|j| timeline[*j].1 == *step)
            };
            match found {
                Some(j) => {
                    entered[i] += 1;
                    at = j;
                }
                None => break,
            }
        }
    }
    entered
}

fn entered(answer: &FunnelAnswer) -> Vec<u64> {
    answer.steps.iter().map(|s| s.entered).collect()
}

fn pick_steps(seed: u64, k: usize) -> Vec<&'static str> {
    let mut labels: Vec<&str> = ROUTES.iter().copied().chain([BUY]).collect();
    let mut state = seed;
    // A seeded shuffle, then the first k (distinct steps).
    for i in (1..labels.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        labels.swap(i, (state >> 33) as usize % (i + 1));
    }
    labels.truncate(k);
    labels
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn funnels_match_a_naive_walk_and_never_grow(seed in any::<u64>(), k in 2usize..5) {
        let (events, timelines) = dataset(seed);
        let steps = pick_steps(seed ^ 0x5eed, k);
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with(dir.path(), &events, T0 + 2 * DAY);
        let insights = Insights::default();
        let journeys = Journeys { facts: &insights.cache, store: &store };
        let config = AnalysisConfig::default();
        let texts: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        for (order, strict) in [(Order::Sequential, false), (Order::Strict, true)] {
            let spec = FunnelSpec::parse(&texts, WINDOW, order).expect("valid");
            let q = question(T0, T0 + DAY, T0 + 2 * DAY);
            let answer = journeys.funnel(&q, &config, Actor::User, &spec).expect("funnel");
            let counts = entered(&answer);
            prop_assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
            prop_assert_eq!(&counts, &naive_funnel(&timelines, &steps, strict), "{:?} {:?}", order, steps);
            // Breakdown groups sum to the totals.
            let by = journeys
                .funnel(&with_by(q.clone(), Dim::Plan), &config, Actor::User, &spec)
                .expect("funnel by plan");
            for (i, count) in counts.iter().enumerate() {
                let sum: u64 = by.groups.iter().map(|g| g.steps[i].entered).sum();
                prop_assert_eq!(sum, *count);
            }
            // Per session never counts fewer entries than per user (a user has ≥ 1 session).
            let sessions = journeys.funnel(&q, &config, Actor::Session, &spec).expect("funnel");
            prop_assert!(sessions.steps[0].entered >= counts[0]);
            prop_assert!(entered(&sessions).windows(2).all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn path_drop_offs_equal_strict_funnel_drop_offs(seed in any::<u64>(), k in 2usize..5) {
        let (events, _) = dataset(seed);
        let steps = pick_steps(seed.rotate_left(7), k);
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with(dir.path(), &events, T0 + 2 * DAY);
        let insights = Insights::default();
        let journeys = Journeys { facts: &insights.cache, store: &store };
        let config = AnalysisConfig::default();
        let q = question(T0, T0 + DAY, T0 + 2 * DAY);
        let texts: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        let spec = FunnelSpec::parse(&texts, WINDOW, Order::Strict).expect("valid");
        let funnel = journeys.funnel(&q, &config, Actor::User, &spec).expect("funnel");
        let paths = journeys
            .paths(&q, &config, Actor::User, &PathSpec::new(steps[0], false, k, 100, WINDOW).expect("valid"))
            .expect("paths");
        // Follow the steps down the tree; a missing node means nobody went that way.
        let mut node: Option<PathNode> = Some(paths.tree.clone());
        let mut counts = vec![paths.actors];
        for step in &steps[1..] {
            node = node.and_then(|n| n.children.into_iter().find(|c| c.event == *step));
            counts.push(node.as_ref().map_or(0, |n| n.actors));
        }
        prop_assert_eq!(entered(&funnel), counts.clone());
        for i in 1..k {
            prop_assert_eq!(funnel.steps[i].dropped, counts[i - 1] - counts[i]);
        }
    }

    #[test]
    fn retention_period_zero_is_the_cohort(seed in any::<u64>()) {
        let (events, _) = dataset(seed);
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with(dir.path(), &events, T0 + 2 * DAY);
        let insights = Insights::default();
        let journeys = Journeys { facts: &insights.cache, store: &store };
        let spec = RetentionSpec::new("any", "GET /a", Period::Day, 3).expect("valid");
        for per in [Actor::User, Actor::Session] {
            let answer = journeys
                .retention(&question(T0, T0 + 2 * DAY, T0 + 2 * DAY), &AnalysisConfig::default(), per, &spec)
                .expect("retention");
            for cohort in &answer.cohorts {
                prop_assert_eq!(cohort.periods[0].actors, cohort.size);
                prop_assert!(cohort.periods.iter().all(|p| p.actors <= cohort.size));
            }
            prop_assert!(answer.average.iter().all(|p| p.rate.is_none_or(|r| (0.0..=1.0).contains(&r))));
        }
    }
}
