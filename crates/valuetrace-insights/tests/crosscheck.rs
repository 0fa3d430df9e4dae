//! The production answers against a second, deliberately naive implementation: plain loops over
//! the stored events, strings instead of ids, no cache, no indexes. Datasets are random but seeded
//! (proptest picks the seed): a few hundred events over two days, several users, sessions, routes
//! and outcomes, appended in shuffled chunks; every answer is compared before and after persisting
//! to Parquet.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use valuetrace_insights::config::{ErrorRule, GapRule};
use valuetrace_insights::latency::LatencySpec;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_model::{ApiCall, Direction, Event, Outcome};
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

// ---------------------------------------------------------------------------------------------
// Random datasets

/// SplitMix64: small, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Data spans `[T0, T0 + 2 days)` (plus an hour of late webhooks); questions ask about the second
/// day, so the first is the previous period and the attribution look-back.
const FROM: i64 = T0 + DAY;
const TO: i64 = T0 + 2 * DAY;
const NOW: i64 = TO + 5 * MIN;

const INBOUND: [&str; 5] = [
    "GET /api/search",
    "GET /api/items/{id}",
    "POST /api/cart",
    "POST /api/checkout",
    "POST /api/login",
];
const PLANS: [&str; 3] = ["free", "pro", "team"];
/// Latencies exactly representable as f32 (the fact columns keep f32), including bucket edges.
const LATENCIES: [f64; 10] = [
    20.0, 120.5, 200.0, 350.25, 500.0, 777.0, 1000.0, 1500.0, 2000.0, 4200.5,
];

struct Generator {
    rng: Rng,
    events: Vec<Event>,
    taken: HashSet<i64>,
    orders: u32,
}

impl Generator {
    /// A timestamp no other call has (first and last touch are then unambiguous).
    fn unique(&mut self, mut ts: i64) -> i64 {
        while !self.taken.insert(ts) {
            ts += 1;
        }
        ts
    }

    fn status(&mut self) -> u16 {
        if self.rng.chance(0.8) {
            200
        } else {
            *self.rng.pick(&[201, 400, 404, 408, 429, 500, 502, 503])
        }
    }

    fn push_call(&mut self, call: ApiCall) {
        self.events.push(Event::ApiCall(call));
    }

    fn push_outcome(&mut self, outcome: Outcome) {
        self.events.push(Event::Outcome(outcome));
    }

    fn session(&mut self, index: usize) {
        let user = (!self.rng.chance(0.15)).then(|| format!("u{}", self.rng.below(8)));
        let plan = user.as_ref().and_then(|u| {
            let n: usize = u[1..].parse().unwrap();
            (n != 7).then(|| PLANS[n % 3])
        });
        let account = user
            .as_ref()
            .map(|u| format!("a{}", u[1..].parse::<u32>().unwrap() % 4));
        let session = format!("s{index}");
        let mut t = self.rng.range(T0, TO - HOUR / 2);
        let calls = 1 + self.rng.below(10);
        for _ in 0..calls {
            t += self.rng.range(SEC, 12 * MIN);
            let ts = self.unique(t);
            let endpoint = *self.rng.pick(&INBOUND);
            let status = self.status();
            let latency = *self.rng.pick(&LATENCIES);
            let mut c = call(ts, endpoint, status, latency);
            c.user_id = user.clone();
            c.account_id = account.clone();
            c.plan = plan.map(str::to_owned);
            if !self.rng.chance(0.05) {
                c.session_id = Some(session.clone());
            }
            if status >= 400 && self.rng.chance(0.5) {
                c.error_type = Some(
                    (*self
                        .rng
                        .pick(&["validation", "internal", "upstream_timeout"]))
                    .into(),
                );
            }
            if endpoint == "POST /api/checkout" {
                self.checkout(c, &user, &session);
            } else {
                if endpoint == "GET /api/items/{id}" && self.rng.chance(0.3) {
                    c.value = Some(self.rng.range(1, 50) as f64);
                }
                self.push_call(c);
            }
        }
        // Outcomes not tied to a checkout: a signup without value, a subscription without session.
        if self.rng.chance(0.2) {
            let mut o = outcome(t + self.rng.range(0, HOUR), "signup");
            o.user_id = user.clone();
            o.session_id = Some(session.clone());
            self.push_outcome(o);
        }
        if let Some(user) = &user
            && self.rng.chance(0.15)
        {
            let o = outcome(t + self.rng.range(0, 3 * HOUR), "subscription")
                .user(user)
                .value(15.0);
            self.push_outcome(o);
        }
    }

    /// A checkout, its charge, maybe a purchase and maybe Stripe's webhook.
    fn checkout(&mut self, mut c: ApiCall, user: &Option<String>, session: &str) {
        let ts = c.timestamp;
        let status = c.status;
        let value = self.rng.range(5, 300) as f64;
        if self.rng.chance(0.9) {
            c.value = Some(value);
        }
        self.orders += 1;
        let order = format!("o{}", self.orders);
        c = c.prop("order_id", &order);
        let (user_id, plan, account, session_id) = (
            c.user_id.clone(),
            c.plan.clone(),
            c.account_id.clone(),
            c.session_id.clone(),
        );
        self.push_call(c);
        let charge_ts = self.unique(ts + 500);
        let charge_status = if self.rng.chance(0.75) {
            200
        } else {
            *self.rng.pick(&[402, 408, 429, 500, 503])
        };
        let mut charge = call(
            charge_ts,
            "POST /v1/charges",
            charge_status,
            *self.rng.pick(&LATENCIES),
        )
        .service("billing")
        .outbound("stripe");
        charge.user_id = user_id;
        charge.plan = plan;
        charge.account_id = account;
        charge.session_id = session_id;
        self.push_call(charge);
        if status >= 400 {
            return;
        }
        if self.rng.chance(0.6) {
            let mut o = outcome(ts + self.rng.range(0, 40 * MIN), "purchase").value(value);
            o.user_id = user.clone();
            if self.rng.chance(0.9) {
                o.session_id = Some(session.into());
            }
            self.push_outcome(o);
        }
        if self.rng.chance(0.7) {
            let delay = self.rng.range(MIN, 90 * MIN);
            let hook_ts = self.unique(ts + delay);
            let hook_status = if self.rng.chance(0.9) { 200 } else { 500 };
            let hook = call(hook_ts, "POST /webhooks/stripe", hook_status, 15.0)
                .service("hooks")
                .prop("order_id", &order);
            self.push_call(hook);
        }
    }

    /// Messages to a second provider, outside sessions.
    fn message(&mut self) {
        let ts = self.rng.range(T0, TO);
        let ts = self.unique(ts);
        let status = if self.rng.chance(0.8) {
            202
        } else {
            *self.rng.pick(&[400, 429, 500])
        };
        let c = call(
            ts,
            "POST /2010-04-01/Messages",
            status,
            *self.rng.pick(&LATENCIES),
        )
        .service("notify")
        .outbound("twilio")
        .user(&format!("u{}", self.rng.below(8)));
        self.push_call(c);
    }

    /// Events on the edges: a touch exactly one attribution window before its outcome, a call and
    /// an outcome at `FROM`, an outcome at `TO` (outside), an outcome at the same instant as a call.
    fn edges(&mut self, window: i64) {
        let t = self.unique(FROM + 3 * HOUR);
        self.push_call(
            call(t, "GET /api/search", 200, 20.0)
                .user("u1")
                .session("edge1")
                .plan("pro"),
        );
        self.push_outcome(outcome(t + window, "purchase").user("u1").value(33.0));
        let t = self.unique(FROM);
        self.push_call(
            call(t, "POST /api/login", 200, 20.0)
                .user("u2")
                .session("edge2")
                .plan("team"),
        );
        self.push_outcome(outcome(FROM, "purchase").user("u2").value(11.0));
        self.push_outcome(outcome(TO, "purchase").user("u2").value(1000.0));
        let t = self.unique(FROM + 5 * HOUR);
        self.push_call(call(t, "POST /api/cart", 200, 20.0).session("edge3"));
        self.push_outcome(outcome(t, "purchase").session("edge3").value(7.0));
        // Most cases have data from the previous period's first instant (compared with), the
        // others start later (not compared with: the period is not covered).
        if self.rng.below(4) != 0 {
            self.push_call(call(T0, "GET /api/search", 200, 20.0));
        }
    }
}

struct Case {
    events: Vec<StoredEvent>,
    config: AnalysisConfig,
}

fn generate(seed: u64) -> Case {
    let mut rng = Rng(seed);
    let window = *rng.pick(&["30m", "2h", "24h"]);
    let attributed_outcomes = if rng.chance(0.5) {
        vec![]
    } else {
        vec!["purchase".to_owned()]
    };
    let config = AnalysisConfig {
        attribution_window: window.into(),
        attributed_outcomes,
        min_bucket_sessions: 3,
        error_rules: vec![
            ErrorRule {
                status: "503".into(),
                route: None,
                class: "overloaded".into(),
            },
            ErrorRule {
                status: "500-504".into(),
                route: Some("POST /api/cart".into()),
                class: "cart_backend".into(),
            },
            ErrorRule {
                status: "4xx".into(),
                route: Some("GET /api/items/{id}".into()),
                class: "not_found".into(),
            },
        ],
        gaps: vec![
            GapRule {
                name: "purchase".into(),
                start: "POST /api/checkout".into(),
                end: "outcome:purchase".into(),
                within: "20m".into(),
                match_by: "session".into(),
            },
            GapRule {
                name: "webhook".into(),
                start: "POST /api/checkout".into(),
                end: "POST /webhooks/stripe".into(),
                within: "1h".into(),
                match_by: "property:order_id".into(),
            },
        ],
        ..Default::default()
    };
    let mut generator = Generator {
        rng,
        events: Vec::new(),
        taken: HashSet::new(),
        orders: 0,
    };
    generator.edges(config.attribution_window_ms());
    let sessions = 30 + generator.rng.below(30) as usize;
    for index in 0..sessions {
        generator.session(index);
    }
    for _ in 0..20 {
        generator.message();
    }
    let mut events = stored(&generator.events);
    // Shuffle: the store must not depend on arrival order.
    for i in (1..events.len()).rev() {
        let j = generator.rng.below(i as u64 + 1) as usize;
        events.swap(i, j);
    }
    Case { events, config }
}

// ---------------------------------------------------------------------------------------------
// The naive implementation

fn calls(events: &[StoredEvent]) -> impl Iterator<Item = &ApiCall> {
    events.iter().filter_map(|e| match &e.event {
        Event::ApiCall(c) => Some(c),
        _ => None,
    })
}

fn outcomes(events: &[StoredEvent]) -> impl Iterator<Item = &Outcome> {
    events.iter().filter_map(|e| match &e.event {
        Event::Outcome(o) => Some(o),
        _ => None,
    })
}

fn label(c: &ApiCall) -> String {
    format!("{} {}", c.method, c.route)
}

fn inbound(c: &ApiCall) -> bool {
    c.direction == Direction::Inbound
}

fn within(ts: i64, from: i64, to: i64) -> bool {
    from <= ts && ts < to
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Credit {
    linear: f64,
    first: f64,
    last: f64,
}

#[derive(Debug, Default)]
struct NaiveAttribution {
    attributed: f64,
    unattributed: f64,
    credit: BTreeMap<String, Credit>,
}

/// Each valued outcome in the window is credited to the inbound calls (passing the plan filter)
/// of its user — or, without a user, of its session — made at most `window` before it.
fn naive_attribution(
    events: &[StoredEvent],
    config: &AnalysisConfig,
    plan: Option<&str>,
) -> NaiveAttribution {
    let window = config.attribution_window_ms();
    let mut out = NaiveAttribution::default();
    for o in outcomes(events) {
        let Some(value) = o.value else { continue };
        if !within(o.timestamp, FROM, TO) {
            continue;
        }
        if !config.attributed_outcomes.is_empty() && !config.attributed_outcomes.contains(&o.name) {
            continue;
        }
        if o.user_id.is_none() && o.session_id.is_none() {
            continue;
        }
        let mut touches: Vec<(i64, String)> = Vec::new();
        for c in calls(events) {
            let same_person = match &o.user_id {
                Some(user) => c.user_id.as_ref() == Some(user),
                None => c.session_id == o.session_id,
            };
            let before = c.timestamp <= o.timestamp && o.timestamp - c.timestamp <= window;
            let plan_ok = plan.is_none_or(|p| c.plan.as_deref() == Some(p));
            if same_person && before && inbound(c) && plan_ok {
                touches.push((c.timestamp, label(c)));
            }
        }
        if touches.is_empty() {
            out.unattributed += value;
            continue;
        }
        out.attributed += value;
        let keys: BTreeSet<&String> = touches.iter().map(|(_, k)| k).collect();
        for key in &keys {
            out.credit.entry((*key).clone()).or_default().linear += value / keys.len() as f64;
        }
        let first = touches.iter().min_by_key(|(t, _)| *t).unwrap();
        out.credit.entry(first.1.clone()).or_default().first += value;
        let last = touches.iter().max_by_key(|(t, _)| *t).unwrap();
        out.credit.entry(last.1.clone()).or_default().last += value;
    }
    out
}

#[derive(Debug, Default)]
struct NaiveUsage {
    requests: f64,
    direct: f64,
    users: BTreeSet<String>,
}

/// Per inbound endpoint: requests, direct value (successful calls carrying one) and users; and the
/// users with any call at all (the active users).
fn naive_usage(
    events: &[StoredEvent],
    from: i64,
    to: i64,
    plan: Option<&str>,
) -> (BTreeMap<String, NaiveUsage>, usize) {
    let mut endpoints: BTreeMap<String, NaiveUsage> = BTreeMap::new();
    let mut active = BTreeSet::new();
    for c in calls(events) {
        if !within(c.timestamp, from, to) || plan.is_some_and(|p| c.plan.as_deref() != Some(p)) {
            continue;
        }
        if let Some(user) = &c.user_id {
            active.insert(user.clone());
        }
        if !inbound(c) {
            continue;
        }
        let u = endpoints.entry(label(c)).or_default();
        u.requests += 1.0;
        if c.status < 400
            && let Some(value) = c.value
        {
            u.direct += value;
        }
        if let Some(user) = &c.user_id {
            u.users.insert(user.clone());
        }
    }
    (endpoints, active.len())
}

fn naive_class(c: &ApiCall, rules: &[ErrorRule]) -> String {
    for rule in rules {
        let (lo, hi) = match rule.status.as_str() {
            "503" => (503, 503),
            "500-504" => (500, 504),
            "4xx" => (400, 499),
            other => panic!("the naive rules know no `{other}`"),
        };
        let route_ok = rule.route.as_ref().is_none_or(|r| *r == label(c));
        if (lo..=hi).contains(&c.status) && route_ok {
            return rule.class.clone();
        }
    }
    c.error_type.clone().unwrap_or_else(|| "unknown".into())
}

#[derive(Debug, Default, PartialEq)]
struct ClassCount {
    calls: f64,
    users: usize,
    sessions: usize,
}

#[derive(Debug, Default)]
struct NaiveErrors {
    calls: f64,
    failed: f64,
    unknown: f64,
    value_at_risk: f64,
    classes: BTreeMap<String, ClassCount>,
}

fn naive_errors(events: &[StoredEvent], config: &AnalysisConfig) -> NaiveErrors {
    let mut out = NaiveErrors::default();
    let mut people: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for c in calls(events) {
        if !within(c.timestamp, FROM, TO) {
            continue;
        }
        out.calls += 1.0;
        if c.status < 400 {
            continue;
        }
        out.failed += 1.0;
        let class = naive_class(c, &config.error_rules);
        if class == "unknown" {
            out.unknown += 1.0;
        }
        out.value_at_risk += match c.value {
            Some(value) => value,
            None => {
                // The endpoint's average successful order value in the window.
                let values: Vec<f64> = calls(events)
                    .filter(|o| {
                        label(o) == label(c) && o.service == c.service && o.direction == c.direction
                    })
                    .filter(|o| within(o.timestamp, FROM, TO) && o.status < 400)
                    .filter_map(|o| o.value)
                    .collect();
                if values.is_empty() {
                    0.0
                } else {
                    values.iter().sum::<f64>() / values.len() as f64
                }
            }
        };
        out.classes.entry(class.clone()).or_default().calls += 1.0;
        let (users, sessions) = people.entry(class).or_default();
        users.extend(c.user_id.clone());
        sessions.extend(c.session_id.clone());
    }
    for (class, (users, sessions)) in people {
        let count = out.classes.get_mut(&class).unwrap();
        count.users = users.len();
        count.sessions = sessions.len();
    }
    out
}

/// Per provider: calls, failures (5xx, 408, 429) and error classes of calls with status >= 400.
fn naive_providers(
    events: &[StoredEvent],
    config: &AnalysisConfig,
) -> BTreeMap<String, (f64, f64, BTreeMap<String, f64>)> {
    let mut out: BTreeMap<String, (f64, f64, BTreeMap<String, f64>)> = BTreeMap::new();
    for c in calls(events) {
        let Some(provider) = &c.provider else {
            continue;
        };
        if inbound(c) || !within(c.timestamp, FROM, TO) {
            continue;
        }
        let entry = out.entry(provider.clone()).or_default();
        entry.0 += 1.0;
        if c.status >= 500 || c.status == 408 || c.status == 429 {
            entry.1 += 1.0;
        }
        if c.status >= 400 {
            *entry
                .2
                .entry(naive_class(c, &config.error_rules))
                .or_default() += 1.0;
        }
    }
    out
}

/// (started, completed, pending, gaps) of a rule: starts are successful checkouts in the window,
/// each matched to the earliest unused end at or after it, within `within`.
fn naive_gaps(
    starts: Vec<(String, i64)>,
    ends: Vec<(String, i64)>,
    within_ms: i64,
    now: i64,
) -> (u64, u64, u64, u64) {
    let mut starts = starts;
    starts.sort_by_key(|(_, t)| *t);
    let mut used = vec![false; ends.len()];
    let (mut completed, mut pending, mut gaps) = (0, 0, 0);
    for (key, t) in &starts {
        let candidate = (0..ends.len())
            .filter(|&i| !used[i] && ends[i].0 == *key && ends[i].1 >= *t)
            .min_by_key(|&i| ends[i].1);
        match candidate {
            Some(i) if ends[i].1 - t <= within_ms => {
                used[i] = true;
                completed += 1;
            }
            _ if t + within_ms > now => pending += 1,
            _ => gaps += 1,
        }
    }
    (starts.len() as u64, completed, pending, gaps)
}

/// Successful checkouts in the window (of the plan, if given: the filter selects starts only).
fn checkout_starts(
    events: &[StoredEvent],
    plan: Option<&str>,
    key: impl Fn(&ApiCall) -> Option<String>,
) -> Vec<(String, i64)> {
    calls(events)
        .filter(|c| {
            label(c) == "POST /api/checkout" && c.status < 400 && within(c.timestamp, FROM, TO)
        })
        .filter(|c| plan.is_none_or(|p| c.plan.as_deref() == Some(p)))
        .filter_map(|c| Some((key(c)?, c.timestamp)))
        .collect()
}

fn naive_session_gaps(
    events: &[StoredEvent],
    within_ms: i64,
    plan: Option<&str>,
) -> (u64, u64, u64, u64) {
    let starts = checkout_starts(events, plan, |c| c.session_id.clone());
    let ends = outcomes(events)
        .filter(|o| o.name == "purchase" && within(o.timestamp, FROM, TO + within_ms))
        .filter_map(|o| Some((o.session_id.clone()?, o.timestamp)))
        .collect();
    naive_gaps(starts, ends, within_ms, NOW)
}

fn naive_order_gaps(
    events: &[StoredEvent],
    within_ms: i64,
    plan: Option<&str>,
) -> (u64, u64, u64, u64) {
    let order = |c: &ApiCall| c.properties.get("order_id").cloned();
    let starts = checkout_starts(events, plan, order);
    let ends = calls(events)
        .filter(|c| {
            label(c) == "POST /webhooks/stripe"
                && c.status < 400
                && within(c.timestamp, FROM, TO + within_ms)
        })
        .filter_map(|c| Some((order(c)?, c.timestamp)))
        .collect();
    naive_gaps(starts, ends, within_ms, NOW)
}

/// Per bucket (sessions, conversions), then (above, above converted, below, below converted).
fn naive_latency(events: &[StoredEvent], spec: &LatencySpec) -> (Vec<(u64, u64)>, [u64; 4]) {
    let mut slowest: BTreeMap<String, f64> = BTreeMap::new();
    for c in calls(events) {
        if label(c) != spec.route || !within(c.timestamp, FROM, TO) {
            continue;
        }
        let Some(session) = &c.session_id else {
            continue;
        };
        let entry = slowest.entry(session.clone()).or_insert(0.0);
        *entry = entry.max(c.latency_ms);
    }
    let mut buckets = vec![(0, 0); spec.edges_ms.len() + 1];
    let mut threshold = [0; 4];
    for (session, latency) in slowest {
        let converted = outcomes(events).any(|o| {
            o.name == "purchase"
                && o.session_id.as_deref() == Some(&session)
                && within(o.timestamp, FROM, TO)
        });
        let bucket = spec
            .edges_ms
            .iter()
            .filter(|edge| **edge <= latency)
            .count();
        buckets[bucket].0 += 1;
        buckets[bucket].1 += u64::from(converted);
        let side = if latency > spec.threshold_ms { 0 } else { 2 };
        threshold[side] += 1;
        threshold[side + 1] += u64::from(converted);
    }
    (buckets, threshold)
}

// ---------------------------------------------------------------------------------------------
// Comparisons

fn same(a: f64, b: f64) -> bool {
    near(a, b, 1e-6)
}

fn same_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

fn check_impact(
    store: &EmbeddedStore,
    insights: &Insights,
    case: &Case,
    plan: Option<&str>,
) -> Result<(), TestCaseError> {
    let mut question = question(FROM, TO, NOW);
    question.slice.plan = plan.map(str::to_owned);
    let answer = insights.impact(store, &question, &case.config).unwrap();
    let naive = naive_attribution(&case.events, &case.config, plan);
    prop_assert!(
        same(answer.attributed_outcome_value, naive.attributed),
        "{} vs {}",
        answer.attributed_outcome_value,
        naive.attributed
    );
    prop_assert!(same(answer.unattributed_outcome_value, naive.unattributed));

    let (current, active) = naive_usage(&case.events, FROM, TO, plan);
    let (previous, active_before) = naive_usage(&case.events, T0, FROM, plan);
    // The previous period [T0, FROM) is compared with only when the data covers it from its start.
    let first_call = calls(&case.events).map(|c| c.timestamp).min();
    let previous_complete = first_call.is_some_and(|t| t <= T0);
    prop_assert_eq!(answer.active_users, active);
    // One row per inbound endpoint with calls in the window or credit (possibly earned only by
    // calls in the look-back before it).
    let rows: BTreeMap<&str, _> = answer
        .rows
        .iter()
        .map(|r| (r.endpoint.as_str(), r))
        .collect();
    let endpoints: BTreeSet<&str> = current
        .keys()
        .chain(naive.credit.keys())
        .map(String::as_str)
        .collect();
    prop_assert_eq!(&rows.keys().copied().collect::<BTreeSet<_>>(), &endpoints);
    let idle = NaiveUsage::default();
    for endpoint in endpoints {
        let u = current.get(endpoint).unwrap_or(&idle);
        let row = rows[endpoint];
        let credit = naive.credit.get(endpoint).cloned().unwrap_or_default();
        let got = &row.assisted_value;
        prop_assert!(
            same(got.linear, credit.linear),
            "{endpoint} linear {} vs {}",
            got.linear,
            credit.linear
        );
        prop_assert!(
            same(got.first_touch, credit.first),
            "{endpoint} first {} vs {}",
            got.first_touch,
            credit.first
        );
        prop_assert!(
            same(got.last_touch, credit.last),
            "{endpoint} last {} vs {}",
            got.last_touch,
            credit.last
        );
        prop_assert!(same(row.requests, u.requests));
        prop_assert!(
            same(row.direct_value, u.direct),
            "{endpoint} direct {} vs {}",
            row.direct_value,
            u.direct
        );
        prop_assert!(same(row.attributed_value, u.direct + credit.linear));
        prop_assert_eq!(row.users, u.users.len());
        let adoption = ratio(u.users.len() as f64, active as f64);
        let adoption_before = previous
            .get(endpoint)
            .filter(|_| previous_complete)
            .and_then(|p| ratio(p.users.len() as f64, active_before as f64));
        prop_assert!(same_opt(row.adoption, adoption), "{endpoint} adoption");
        prop_assert!(
            same_opt(row.adoption_previous, adoption_before),
            "{endpoint} previous adoption"
        );
        let change = adoption
            .zip(adoption_before)
            .map(|(a, b)| ((a - b) * 100.0 * 1000.0).round() / 1000.0);
        prop_assert!(
            same_opt(row.adoption_change_pp, change),
            "{endpoint} change {:?} vs {change:?}",
            row.adoption_change_pp
        );
    }
    Ok(())
}

fn check_errors(
    store: &EmbeddedStore,
    insights: &Insights,
    case: &Case,
) -> Result<(), TestCaseError> {
    let answer = insights
        .errors(store, &question(FROM, TO, NOW), &case.config)
        .unwrap();
    let naive = naive_errors(&case.events, &case.config);
    prop_assert!(same(answer.calls, naive.calls));
    prop_assert!(same(answer.failed, naive.failed));
    prop_assert!(same(answer.unknown, naive.unknown));
    prop_assert!(same_opt(
        answer.unknown_share,
        ratio(naive.unknown, naive.failed)
    ));
    prop_assert!(
        same(answer.value_at_risk, naive.value_at_risk),
        "{} vs {}",
        answer.value_at_risk,
        naive.value_at_risk
    );
    let classes: BTreeMap<String, ClassCount> = answer
        .classes
        .iter()
        .map(|c| {
            (
                c.class.clone(),
                ClassCount {
                    calls: c.calls,
                    users: c.users,
                    sessions: c.sessions,
                },
            )
        })
        .collect();
    prop_assert_eq!(classes, naive.classes);
    Ok(())
}

fn check_integrations(
    store: &EmbeddedStore,
    insights: &Insights,
    case: &Case,
) -> Result<(), TestCaseError> {
    let answer = insights
        .integrations(store, &question(FROM, TO, NOW), &case.config)
        .unwrap();
    let naive = naive_providers(&case.events, &case.config);
    let got: BTreeSet<&str> = answer
        .providers
        .iter()
        .map(|p| p.provider.as_str())
        .collect();
    prop_assert_eq!(
        got,
        naive.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for p in &answer.providers {
        let (calls, failures, classes) = &naive[&p.provider];
        prop_assert!(same(p.calls, *calls));
        prop_assert!(same(p.failures, *failures));
        prop_assert!(same_opt(
            p.success_rate.rate,
            ratio(calls - failures, *calls)
        ));
        prop_assert_eq!(&p.error_classes, classes);
    }
    Ok(())
}

fn check_gaps(
    store: &EmbeddedStore,
    insights: &Insights,
    case: &Case,
) -> Result<(), TestCaseError> {
    for plan in [None, Some("pro")] {
        let mut question = question(FROM, TO, NOW);
        question.slice.plan = plan.map(str::to_owned);
        let answer = insights.gaps(store, &question, &case.config).unwrap();
        let counts = |i: usize| {
            let c = &answer.gaps[i].counts;
            (c.started, c.completed, c.pending, c.gaps)
        };
        prop_assert_eq!(
            counts(0),
            naive_session_gaps(&case.events, 20 * MIN, plan),
            "{:?}",
            plan
        );
        prop_assert_eq!(
            counts(1),
            naive_order_gaps(&case.events, HOUR, plan),
            "{:?}",
            plan
        );
    }
    Ok(())
}

fn check_latency(
    store: &EmbeddedStore,
    insights: &Insights,
    case: &Case,
) -> Result<(), TestCaseError> {
    for threshold_ms in [500.0, 1000.0] {
        let spec = LatencySpec {
            route: "POST /api/checkout".into(),
            outcome: None,
            edges_ms: vec![200.0, 500.0, 1000.0, 2000.0],
            threshold_ms,
        };
        let answer = insights
            .latency_conversion(store, &question(FROM, TO, NOW), &case.config, &spec)
            .unwrap();
        let (buckets, [above, above_conv, below, below_conv]) = naive_latency(&case.events, &spec);
        let got: Vec<(u64, u64)> = answer
            .buckets
            .iter()
            .map(|b| (b.sessions, b.conversions))
            .collect();
        if got.is_empty() {
            prop_assert!(buckets.iter().all(|b| b.0 == 0));
        } else {
            prop_assert_eq!(got, buckets);
        }
        for b in &answer.buckets {
            prop_assert_eq!(b.low_sample, b.sessions < 3);
        }
        prop_assert_eq!(answer.sessions_above_threshold, above);
        prop_assert!(same_opt(
            answer.conversion_above_threshold.rate,
            ratio(above_conv as f64, above as f64)
        ));
        prop_assert!(same_opt(
            answer.conversion_below_threshold.rate,
            ratio(below_conv as f64, below as f64)
        ));
    }
    Ok(())
}

fn check_all(store: &EmbeddedStore, insights: &Insights, case: &Case) -> Result<(), TestCaseError> {
    check_impact(store, insights, case, None)?;
    check_impact(store, insights, case, Some("pro"))?;
    check_errors(store, insights, case)?;
    check_integrations(store, insights, case)?;
    check_gaps(store, insights, case)?;
    check_latency(store, insights, case)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn production_matches_naive(seed in any::<u64>()) {
        let case = generate(seed);
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(StoreOptions::new(dir.path()), NOW).unwrap();
        // Three appends: several buffered batches per day.
        let third = case.events.len() / 3;
        for chunk in [&case.events[..third], &case.events[third..2 * third], &case.events[2 * third..]] {
            store.append("p", chunk.to_vec()).unwrap();
        }
        let insights = Insights::default();
        check_all(&store, &insights, &case)?;
        persist(&store, NOW);
        check_all(&store, &insights, &case)?;
        check_all(&store, &Insights::default(), &case)?;
    }
}

/// The same comparison on fixed seeds, so a failure names its data. 2739132142281083287 once
/// credited an endpoint called only before the window (its row was missing).
#[test]
fn fixed_seeds_match_naive() {
    for seed in [1, 2, 3, 2_739_132_142_281_083_287] {
        let case = generate(seed);
        assert!(
            case.events.len() >= 150,
            "a few hundred events: {}",
            case.events.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(StoreOptions::new(dir.path()), NOW).unwrap();
        store.append("p", case.events.clone()).unwrap();
        check_all(&store, &Insights::default(), &case)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}
