//! Property tests of the journey answers over small random datasets (proptest strategies, so a
//! failure shrinks to a handful of events): 1–4 users in up to 3 accounts, each user's events in
//! a few visits (a visit is a session; some events have none), 3–6 routes plus the noise route
//! `GET /health`, one or two outcomes, random plans (or none) per call, repeated events, and
//! timestamps on a coarse grid so that one actor often has several events in the same
//! millisecond.
//!
//! 1. Funnel counts never increase from step to step (sequential and strict, per user, session and
//!    account, with and without a breakdown by plan); the groups sum to the totals; strict never
//!    counts more than sequential.
//! 2. Path drop-offs equal strict-funnel drop-offs on the same steps, and the funnel's "went
//!    instead" is the path node's other children.
//! 3. Retention: period 0 is the cohort size, no period exceeds it, rates are in [0, 1], and the
//!    totals agree with a naive count.
//! 4. The production funnel (sequential and strict, with delays) and time to first value against a
//!    deliberately naive implementation over the raw events — on data where no two events of one
//!    actor share a timestamp, since ties are ordered by internal event codes (endpoint ids) that a
//!    test cannot see.

#[path = "../../valuetrace-insights/tests/common/mod.rs"]
mod common;

use common::*;
use proptest::option;
use proptest::prelude::*;
use std::collections::BTreeMap;
use valuetrace_insights::scope::{Dim, Question};
use valuetrace_insights::stats::quantile_ms;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_journeys::funnel::{FunnelAnswer, FunnelSpec, Order};
use valuetrace_journeys::paths::{PathNode, PathSpec};
use valuetrace_journeys::retention::{Period, RetentionSpec};
use valuetrace_journeys::ttv::TtvSpec;
use valuetrace_journeys::{Actor, Journeys};
use valuetrace_model::Event;
use valuetrace_store::EmbeddedStore;

// ---------------------------------------------------------------------------------------------
// Random datasets

const ROUTES: [&str; 6] = [
    "GET /api/a",
    "POST /api/b",
    "GET /api/c",
    "PUT /api/d",
    "GET /api/e",
    "DELETE /api/f",
];
const OUTCOMES: [&str; 2] = ["buy", "signup"];
const PLANS: [&str; 3] = ["free", "pro", "team"];
/// Matched by the default config's `/health*` noise pattern.
const NOISE: &str = "GET /health";
const ACTORS: [Actor; 3] = [Actor::User, Actor::Session, Actor::Account];
/// Well after every event: nothing is in the future.
const NOW: i64 = T0 + 6 * DAY;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Route(usize),
    Noise,
    Outcome(usize),
}

#[derive(Debug, Clone)]
struct Ev {
    user: usize,
    session: Option<usize>,
    t: i64,
    kind: Kind,
    /// Calls only (outcomes carry no plan).
    plan: Option<usize>,
}

#[derive(Debug, Clone)]
struct Data {
    routes: usize,
    outcomes: usize,
    account_of: Vec<usize>,
    events: Vec<Ev>,
}

impl Data {
    /// The plain steps this dataset can have: its routes and outcomes (not the noise route).
    fn labels(&self) -> Vec<String> {
        ROUTES[..self.routes]
            .iter()
            .map(|r| r.to_string())
            .chain(
                OUTCOMES[..self.outcomes]
                    .iter()
                    .map(|o| format!("outcome:{o}")),
            )
            .collect()
    }

    fn label(e: &Ev) -> String {
        match e.kind {
            Kind::Route(i) => ROUTES[i].into(),
            Kind::Noise => NOISE.into(),
            Kind::Outcome(i) => format!("outcome:{}", OUTCOMES[i]),
        }
    }

    fn actor(&self, e: &Ev, per: Actor) -> Option<String> {
        match per {
            Actor::User => Some(format!("u{}", e.user)),
            Actor::Session => e.session.map(|s| format!("u{}-s{s}", e.user)),
            Actor::Account => Some(format!("a{}", self.account_of[e.user])),
        }
    }

    /// The events as the store receives them, in generation order (not time order).
    fn events(&self) -> Vec<Event> {
        self.events
            .iter()
            .map(|e| {
                let user = format!("u{}", e.user);
                let account = format!("a{}", self.account_of[e.user]);
                let session = e.session.map(|s| format!("{user}-s{s}"));
                match e.kind {
                    Kind::Outcome(i) => {
                        let mut o = outcome(e.t, OUTCOMES[i]).user(&user).value(10.0);
                        o.account_id = Some(account);
                        o.session_id = session;
                        Event::Outcome(o)
                    }
                    Kind::Route(_) | Kind::Noise => {
                        let mut c = call(e.t, &Self::label(e), 200, 10.0)
                            .user(&user)
                            .account(&account);
                        c.session_id = session;
                        c.plan = e.plan.map(|p| PLANS[p].into());
                        Event::ApiCall(c)
                    }
                }
            })
            .collect()
    }

    /// The same data with no two events of one account (hence of one user or session) in the same
    /// millisecond: the k-th event of an account at a grid point moves k ms later (the grid is
    /// minutes apart), so events at grid points a conversion window apart still fall exactly on
    /// the deadline.
    fn untied(&self) -> Data {
        let mut seen: BTreeMap<(usize, i64), i64> = BTreeMap::new();
        let mut data = self.clone();
        for e in &mut data.events {
            let k = seen.entry((self.account_of[e.user], e.t)).or_default();
            e.t += *k;
            *k += 1;
        }
        data
    }

    /// Each actor's events `(t, label)` in time order (ties in generation order); events without
    /// an id of this kind belong to nobody.
    fn timelines(&self, per: Actor) -> BTreeMap<String, Vec<(i64, String)>> {
        let mut lines: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for e in &self.events {
            if let Some(actor) = self.actor(e, per) {
                lines.entry(actor).or_default().push((e.t, Self::label(e)));
            }
        }
        for line in lines.values_mut() {
            line.sort_by_key(|(t, _)| *t);
        }
        lines
    }
}

/// Random data on a grid of `unit` from T0 (many events share a grid point): each user has
/// `visits` visits starting at one of `slots` grid points, each event falls on one of the four
/// grid points from the start of its visit, and its session is the visit (10% of events have
/// none).
fn data(slots: i64, unit: i64, visits: usize) -> impl Strategy<Value = Data> {
    (3usize..=6, 1usize..=2, 1usize..=4).prop_flat_map(move |(routes, outcomes, users)| {
        let kind = prop_oneof![
            6 => (0..routes).prop_map(Kind::Route),
            1 => Just(Kind::Noise),
            2 => (0..outcomes).prop_map(Kind::Outcome),
        ];
        let event = (
            0..users,
            0..visits,
            0i64..4,
            option::weighted(0.9, Just(())),
            kind,
            option::weighted(0.8, 0usize..PLANS.len()),
        );
        // An echo repeats the event (same actor, same kind) at the same grid point or the next:
        // consecutive repeats and same-millisecond duplicates.
        let echo = prop_oneof![4 => Just(None), 1 => Just(Some(0)), 1 => Just(Some(unit))];
        (
            proptest::collection::vec(0usize..3, users),
            proptest::collection::vec(proptest::collection::vec(0..slots, visits), users),
            proptest::collection::vec((event, echo), 1..30),
        )
            .prop_map(move |(account_of, visits, events)| {
                let events = events
                    .into_iter()
                    .flat_map(|((user, visit, offset, session, kind, plan), echo)| {
                        let e = Ev {
                            user,
                            session: session.map(|()| visit),
                            t: T0 + (visits[user][visit] + offset) * unit,
                            kind,
                            plan: if matches!(kind, Kind::Outcome(_)) {
                                None
                            } else {
                                plan
                            },
                        };
                        let again = echo.map(|dt| Ev {
                            t: e.t + dt,
                            ..e.clone()
                        });
                        std::iter::once(e).chain(again)
                    })
                    .collect();
                Data {
                    routes,
                    outcomes,
                    account_of,
                    events,
                }
            })
    })
}

/// About six hours of data on a 15-minute grid (visits start in the first 24 points).
fn day() -> impl Strategy<Value = Data> {
    data(24, 15 * MIN, 3)
}

/// Step lists that some user actually walked: windows of its collapsed non-noise sequence that
/// start at the first occurrence of their first step (the shape of a strict funnel), or with
/// `sequential` windows of its first occurrences in time order.
fn walked(d: &Data, sequential: bool) -> Vec<Vec<String>> {
    let mut walks = Vec::new();
    for line in d.timelines(Actor::User).values() {
        let mut seq: Vec<&String> = line
            .iter()
            .map(|(_, l)| l)
            .filter(|l| *l != NOISE)
            .collect();
        seq.dedup();
        if sequential {
            let mut firsts: Vec<&String> = Vec::new();
            for label in seq {
                if !firsts.contains(&label) {
                    firsts.push(label);
                }
            }
            seq = firsts;
        }
        for k in 2..=4 {
            for (at, w) in seq.windows(k).enumerate() {
                let steps: Vec<String> = w.iter().map(|l| l.to_string()).collect();
                let distinct = (1..k).all(|i| !steps[..i].contains(&steps[i]));
                let entry = !seq[..at].contains(&w[0]);
                if distinct && entry && !walks.contains(&steps) {
                    walks.push(steps);
                }
            }
        }
    }
    walks
}

/// A dataset and k = 2..4 distinct plain steps: either any of its routes and outcomes in random
/// order, or a walk some user took (so that later steps are reached often), the longest more
/// often.
fn day_and_steps(sequential: bool) -> impl Strategy<Value = (Data, Vec<String>)> {
    day().prop_flat_map(move |d| {
        let labels = d.labels();
        let random = (Just(labels).prop_shuffle(), 2usize..=4)
            .prop_map(|(labels, k)| labels[..k].to_vec())
            .boxed();
        let walks = walked(&d, sequential);
        let longest = walks.iter().map(Vec::len).max().unwrap_or(0);
        let long: Vec<Vec<String>> = walks
            .iter()
            .filter(|w| w.len() == longest)
            .cloned()
            .collect();
        let steps = if walks.is_empty() {
            random
        } else {
            prop_oneof![
                1 => random,
                1 => prop::sample::select(walks),
                2 => prop::sample::select(long),
            ]
            .boxed()
        };
        (Just(d), steps)
    })
}

fn conversion_window() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![15 * MIN, HOUR, 2 * HOUR, 8 * HOUR])
}

/// The question's window: some events before `from`, and steps after `to` within the funnel
/// window still count.
fn day_window() -> impl Strategy<Value = (i64, i64)> {
    (
        prop::sample::select(vec![T0, T0 + HOUR]),
        prop::sample::select(vec![T0 + 4 * HOUR, T0 + DAY]),
    )
}

// ---------------------------------------------------------------------------------------------
// Running the production answers

struct Fixture {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    insights: Insights,
}

impl Fixture {
    fn new(data: &Data) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with(dir.path(), &data.events(), NOW);
        Fixture {
            _dir: dir,
            store,
            insights: Insights::default(),
        }
    }

    fn journeys(&self) -> Journeys<'_, valuetrace_store::EmbeddedStore> {
        Journeys {
            facts: &self.insights.cache,
            store: &self.store,
        }
    }
}

fn funnel_spec(steps: &[String], window: i64, order: Order) -> FunnelSpec {
    let mut spec = FunnelSpec::parse(steps, window, order).expect("valid funnel");
    // List every "went instead" event (property 2 compares them all).
    spec.top_next = 100;
    spec
}

fn entered(answer: &FunnelAnswer) -> Vec<u64> {
    answer.steps.iter().map(|s| s.entered).collect()
}

fn ask(from: i64, to: i64) -> Question {
    question(from, to, NOW)
}

fn step_matches(step: &str, label: &str) -> bool {
    step == "any" || step == label
}

// ---------------------------------------------------------------------------------------------
// Naive implementations: plain loops over each actor's raw events, labels instead of ids.

/// Per step: how many actors reached it, and their delays from the previous step (ms).
///
/// Entry: the actor's first step-1 event in `[from, to)`. Sequential: each next step is the
/// earliest matching event after the previous step's event and before entry + window. Strict: the
/// next event that is neither noise nor of the previous step's kind (consecutive repeats collapsed)
/// must be the step, again before entry + window. Needs events of one actor in distinct
/// milliseconds (then "after in event order" is "later").
fn naive_funnel(
    data: &Data,
    per: Actor,
    steps: &[String],
    strict: bool,
    window: i64,
    (from, to): (i64, i64),
) -> (Vec<u64>, Vec<Vec<i64>>) {
    let mut entered = vec![0u64; steps.len()];
    let mut delays = vec![Vec::new(); steps.len()];
    for line in data.timelines(per).values() {
        let Some(entry) = line
            .iter()
            .position(|(t, l)| *t >= from && *t < to && *l == steps[0])
        else {
            continue;
        };
        let deadline = line[entry].0 + window;
        entered[0] += 1;
        let mut at = entry;
        for (i, step) in steps.iter().enumerate().skip(1) {
            let mut later = (at + 1..line.len()).filter(|j| line[*j].0 < deadline);
            let found = if strict {
                later
                    .find(|j| line[*j].1 != NOISE && line[*j].1 != line[at].1)
                    .filter(|j| line[*j].1 == *step)
            } else {
                later.find(|j| line[*j].1 == *step)
            };
            let Some(j) = found else { break };
            entered[i] += 1;
            delays[i].push(line[j].0 - line[at].0);
            at = j;
        }
    }
    (entered, delays)
}

/// New actors (first start event inside `[from, to)`; nothing loaded after `to`) and the delays
/// of those that reached the value step: its first event at or after the start, before
/// `min(start + within, to)`.
fn naive_ttv(
    data: &Data,
    per: Actor,
    start: &str,
    value: &str,
    within: Option<i64>,
    (from, to): (i64, i64),
) -> (u64, Vec<i64>) {
    let (mut new, mut delays) = (0, Vec::new());
    for line in data.timelines(per).values() {
        let Some(&(s, _)) = line.iter().find(|(t, l)| *t < to && step_matches(start, l)) else {
            continue;
        };
        if s < from {
            continue;
        }
        new += 1;
        let deadline = within.map_or(to, |w| (s + w).min(to));
        if let Some((t, _)) = line
            .iter()
            .find(|(t, l)| *t >= s && *t < deadline && step_matches(value, l))
        {
            delays.push(t - s);
        }
    }
    (new, delays)
}

/// Over all cohorts: the number of actors whose first cohort event falls in `[from, to)`, and per
/// period n ≥ 1 how many of them have a return event in `[first + nP, first + (n + 1)P)` before
/// `to` (period 0: everyone).
fn naive_retention(
    data: &Data,
    per: Actor,
    spec: (&str, &str, i64, usize),
    (from, to): (i64, i64),
) -> Vec<u64> {
    let (cohort, returning, p, n) = spec;
    let mut counts = vec![0u64; n];
    for line in data.timelines(per).values() {
        let Some(&(first, _)) = line
            .iter()
            .find(|(t, l)| *t < to && step_matches(cohort, l))
        else {
            continue;
        };
        if first < from {
            continue;
        }
        counts[0] += 1;
        for (period, count) in counts.iter_mut().enumerate().skip(1) {
            let (lo, hi) = (first + period as i64 * p, first + (period as i64 + 1) * p);
            if line
                .iter()
                .any(|(t, l)| *t >= lo && *t < hi && *t < to && step_matches(returning, l))
            {
                *count += 1;
            }
        }
    }
    counts
}

// ---------------------------------------------------------------------------------------------
// Tree helpers

fn child<'a>(node: &'a PathNode, event: &str) -> Option<&'a PathNode> {
    node.children.iter().find(|c| c.event == event)
}

/// Every node's actors are the ones whose path ends there plus its children's.
fn conserved(node: &PathNode) -> bool {
    node.actors == node.dropped + node.children.iter().map(|c| c.actors).sum::<u64>()
        && node.children.iter().all(conserved)
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// 1. Funnel counts never increase; drop-offs are the differences; breakdown groups (by the
    /// entry call's plan) sum to the totals, which the breakdown does not change; strict order
    /// never counts more than sequential; accounts never enter more often than users.
    #[test]
    fn funnel_counts_never_increase_and_groups_sum_to_totals(
        (data, steps) in any::<bool>().prop_flat_map(day_and_steps),
        window in conversion_window(),
        (from, to) in day_window(),
    ) {
        let fixture = Fixture::new(&data);
        let journeys = fixture.journeys();
        let config = AnalysisConfig::default();
        let q = ask(from, to);
        let mut first_step = BTreeMap::new();
        for per in ACTORS {
            let mut by_order = Vec::new();
            for order in [Order::Sequential, Order::Strict] {
                let spec = funnel_spec(&steps, window, order);
                let total = journeys.funnel(&q, &config, per, &spec).expect("funnel");
                let counts = entered(&total);
                let never_grow = counts.windows(2).all(|w| w[0] >= w[1]);
                prop_assert!(never_grow, "{per:?} {order:?} {counts:?}");
                prop_assert_eq!(total.steps[0].dropped, 0);
                for i in 1..counts.len() {
                    prop_assert_eq!(total.steps[i].dropped, counts[i - 1] - counts[i]);
                }
                prop_assert!(total.groups.is_empty());
                let by = journeys
                    .funnel(&with_by(q.clone(), Dim::Plan), &config, per, &spec)
                    .expect("funnel by plan");
                prop_assert_eq!(entered(&by), counts.clone(), "{:?} {:?} by plan", per, order);
                for group in &by.groups {
                    let g: Vec<u64> = group.steps.iter().map(|s| s.entered).collect();
                    let never_grow = g.windows(2).all(|w| w[0] >= w[1]);
                    prop_assert!(never_grow, "{per:?} {order:?} {}: {g:?}", group.group);
                    prop_assert!(g[0] > 0, "empty group {}", group.group);
                }
                for (i, count) in counts.iter().enumerate() {
                    let sum: u64 = by.groups.iter().map(|g| g.steps[i].entered).sum();
                    prop_assert_eq!(sum, *count, "{:?} {:?} step {}", per, order, i);
                }
                by_order.push(counts);
            }
            // A strict walk's step i + 1 is also a later step-(i + 1) event in the window.
            let (sequential, strict) = (&by_order[0], &by_order[1]);
            let fewer = strict.iter().zip(sequential).all(|(s, q)| s <= q);
            prop_assert!(fewer, "{per:?}: strict {strict:?}, sequential {sequential:?}");
            first_step.insert(format!("{per:?}"), by_order[0][0]);
        }
        // An account enters when one of its users does.
        prop_assert!(first_step["Account"] <= first_step["User"], "{first_step:?}");
    }

    /// 2. Path drop-offs equal strict-funnel drop-offs: the path tree from s1 (depth k, same
    /// window, actor kind and noise routes) has node s1→…→si with the strict funnel's `entered` at
    /// step i, node − child equals the funnel's `dropped` at step i + 1, and the funnel's "went
    /// instead" after step i is the node's other children plus `(left)` for the paths that end
    /// there.
    #[test]
    fn path_drop_offs_equal_strict_funnel_drop_offs(
        (data, steps) in day_and_steps(false),
        untie in any::<bool>(),
        window in conversion_window(),
        (from, to) in day_window(),
    ) {
        // Half the cases keep the ties (ordered by event code, the same way in both answers); the
        // other half walk the generated order, so that long paths are common.
        let data = if untie { data.untied() } else { data };
        let fixture = Fixture::new(&data);
        let journeys = fixture.journeys();
        let config = AnalysisConfig::default();
        let q = ask(from, to);
        let k = steps.len();
        let spec = funnel_spec(&steps, window, Order::Strict);
        let paths_spec = PathSpec::new(&steps[0], false, k, 100, window).expect("valid paths");
        for per in ACTORS {
            let funnel = journeys.funnel(&q, &config, per, &spec).expect("funnel");
            let paths = journeys.paths(&q, &config, per, &paths_spec).expect("paths");
            let tree = &paths.tree;
            prop_assert_eq!(tree.actors, paths.actors);
            prop_assert!(conserved(tree), "{per:?}: {tree:#?}");
            let listed: u64 = paths.top_paths.iter().map(|p| p.actors).sum();
            prop_assert_eq!(listed, paths.actors);
            // The node of each prefix s1..si (None: nobody walked it).
            let mut nodes: Vec<Option<&PathNode>> = vec![Some(tree)];
            for step in &steps[1..] {
                let next = nodes.last().copied().flatten().and_then(|n| child(n, step));
                nodes.push(next);
            }
            let count = |n: Option<&PathNode>| n.map_or(0, |n| n.actors);
            for (i, node) in nodes.iter().enumerate() {
                prop_assert_eq!(
                    count(*node), funnel.steps[i].entered,
                    "{:?} step {} of {:?}", per, i, steps
                );
            }
            for i in 0..k - 1 {
                prop_assert_eq!(
                    count(nodes[i]) - count(nodes[i + 1]), funnel.steps[i + 1].dropped,
                    "{:?} drop-off at step {} of {:?}", per, i + 1, steps
                );
                let Some(node) = nodes[i] else { continue };
                let mut expected: Vec<(String, u64)> = node
                    .children
                    .iter()
                    .filter(|c| c.event != steps[i + 1])
                    .map(|c| (c.event.clone(), c.actors))
                    .collect();
                if node.dropped > 0 {
                    expected.push(("(left)".into(), node.dropped));
                }
                expected.sort();
                let mut went: Vec<(String, u64)> = funnel.steps[i]
                    .went_instead
                    .iter()
                    .map(|n| (n.event.clone(), n.actors))
                    .collect();
                went.sort();
                prop_assert_eq!(went, expected, "{:?} after step {} of {:?}", per, i, steps);
            }
        }
    }

    /// 3. Retention over about three days (from the first day or 12 h later, until the middle of
    /// the third day or after the last event): period 0 is the cohort size, no period exceeds it,
    /// rates are in [0, 1] (the average's period 0 is exactly 1), a breakdown splits but does not
    /// change the cohorts, and the totals over cohorts equal a naive count.
    #[test]
    fn retention_period_zero_is_the_cohort_and_rates_are_shares(
        data in data(36, 2 * HOUR, 6),
        cohort_pick in option::weighted(0.7, any::<prop::sample::Index>()),
        return_pick in option::weighted(0.4, any::<prop::sample::Index>()),
        period in prop::sample::select(vec![Period::Day, Period::Day, Period::Day, Period::Week]),
        periods in 2usize..=5,
        from in prop::sample::select(vec![T0, T0, T0 + 12 * HOUR]),
        to in prop::sample::select(vec![T0 + 2 * DAY + 12 * HOUR, T0 + 5 * DAY]),
    ) {
        let fixture = Fixture::new(&data);
        let journeys = fixture.journeys();
        let config = AnalysisConfig::default();
        // A route or an outcome of the data, else `any`.
        let labels = data.labels();
        let pick =
            |at: Option<prop::sample::Index>| at.map_or("any", |at| at.get(&labels).as_str());
        let (cohort, returning) = (pick(cohort_pick), pick(return_pick));
        let spec = RetentionSpec::new(cohort, returning, period, periods).expect("valid retention");
        let q = ask(from, to);
        for per in ACTORS {
            let shape = (cohort, returning, period.ms(), periods);
            let naive = naive_retention(&data, per, shape, (from, to));
            for question in [q.clone(), with_by(q.clone(), Dim::Plan)] {
                let answer =
                    journeys.retention(&question, &config, per, &spec).expect("retention");
                for c in &answer.cohorts {
                    prop_assert!(c.size > 0);
                    prop_assert_eq!(c.periods.len(), periods);
                    prop_assert_eq!(c.periods[0].actors, c.size, "{:?} cohort {}", per, c.cohort);
                    for cell in &c.periods {
                        prop_assert!(cell.actors <= c.size, "{per:?} {c:?}");
                        prop_assert!((0.0..=1.0).contains(&cell.rate), "{per:?} {c:?}");
                        let share = cell.actors as f64 / c.size as f64;
                        prop_assert!((cell.rate - share).abs() < 1e-12);
                    }
                }
                for cell in &answer.average {
                    prop_assert_eq!(cell.rate.is_some(), cell.complete);
                    prop_assert!(cell.rate.is_none_or(|r| (0.0..=1.0).contains(&r)), "{per:?} {:?}", answer.average);
                }
                if answer.average[0].complete {
                    prop_assert_eq!(answer.average[0].rate, Some(1.0));
                }
                let totals: Vec<u64> = (0..periods)
                    .map(|n| answer.cohorts.iter().map(|c| c.periods[n].actors).sum())
                    .collect();
                prop_assert_eq!(
                    &totals, &naive,
                    "{:?} cohort `{}` return `{}` by {:?}", per, cohort, returning, question.by
                );
            }
        }
    }

    /// 4a. The production funnel equals the naive walk (counts and delay quantiles), sequential
    /// and strict, per user, session and account, on data without same-millisecond ties per actor.
    #[test]
    fn funnels_equal_a_naive_walk(
        (data, steps) in any::<bool>().prop_flat_map(day_and_steps),
        window in conversion_window(),
        (from, to) in day_window(),
    ) {
        let data = data.untied();
        let fixture = Fixture::new(&data);
        let journeys = fixture.journeys();
        let config = AnalysisConfig::default();
        let q = ask(from, to);
        for per in ACTORS {
            for (order, strict) in [(Order::Sequential, false), (Order::Strict, true)] {
                let answer = journeys
                    .funnel(&q, &config, per, &funnel_spec(&steps, window, order))
                    .expect("funnel");
                let (counts, mut delays) =
                    naive_funnel(&data, per, &steps, strict, window, (from, to));
                prop_assert_eq!(entered(&answer), counts, "{:?} {:?} {:?}", per, order, steps);
                for (i, step) in answer.steps.iter().enumerate() {
                    prop_assert_eq!(step.median_ms_from_previous, quantile_ms(&mut delays[i], 0.5));
                    prop_assert_eq!(step.p90_ms_from_previous, quantile_ms(&mut delays[i], 0.9));
                }
            }
        }
    }

    /// 4b. Time to first value equals the naive count of new actors and of those that reached the
    /// value event (and its delay quantiles), with and without `within`.
    #[test]
    fn time_to_first_value_equals_a_naive_count(
        data in day(),
        start_pick in any::<prop::sample::Index>(),
        value_pick in any::<prop::sample::Index>(),
        within in prop::sample::select(vec![None, Some(HOUR), Some(6 * HOUR)]),
        (from, to) in day_window(),
    ) {
        let data = data.untied();
        let fixture = Fixture::new(&data);
        let journeys = fixture.journeys();
        let config = AnalysisConfig::default();
        let labels = data.labels();
        let starts: Vec<String> =
            std::iter::once("any".to_string()).chain(labels.clone()).collect();
        let (start, value) = (start_pick.get(&starts), value_pick.get(&labels));
        let spec = TtvSpec::new(start, value, Period::Day, within).expect("valid ttv");
        for per in ACTORS {
            let answer = journeys.ttv(&ask(from, to), &config, per, &spec).expect("ttv");
            let (new, mut delays) = naive_ttv(&data, per, start, value, within, (from, to));
            let o = &answer.overall;
            prop_assert_eq!(
                (o.new_actors, o.reached), (new, delays.len() as u64),
                "{:?} start `{}` value `{}` within {:?}", per, start, value, within
            );
            prop_assert_eq!(o.p50_ms, quantile_ms(&mut delays, 0.5));
            prop_assert_eq!(o.p90_ms, quantile_ms(&mut delays, 0.9));
            prop_assert_eq!(answer.trend.iter().map(|c| c.stats.new_actors).sum::<u64>(), new);
            prop_assert_eq!(answer.trend.iter().map(|c| c.stats.reached).sum::<u64>(), o.reached);
        }
    }
}
