//! Sampling end to end, without the network: one million simulated requests go through the
//! client's business-weighted sampling (whole sessions kept or dropped together), the kept raw
//! events are stored, and the business answers' re-weighted request counts per (endpoint, plan)
//! fall within their 95% confidence intervals of the true counts — the intervals account for
//! sessions being sampled as clusters — while routes that are never sampled are exact.

use std::collections::BTreeMap;
use valuetrace_client::sampling::{CallFacts, SamplingPolicy};
use valuetrace_insights::{AnalysisConfig, Dim, Insights, Question, Slice};
use valuetrace_model::{ApiCall, Event};
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

const DAY: i64 = 86_400_000;
const NOW: i64 = 20_460 * DAY;

/// (route, share of calls)
const ROUTES: [(&str, u64); 8] = [
    ("/api/products", 30),
    ("/api/search", 20),
    ("/api/cart/items", 12),
    ("/api/recommendations", 12),
    ("/api/users/{id}", 10),
    ("/api/health", 8),
    ("/api/checkout", 5),
    ("/api/payments", 3),
];
const PLANS: [&str; 3] = ["free", "pro", "enterprise"];

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

fn route(rng: &mut Rng) -> &'static str {
    let mut pick = rng.below(100);
    for (route, share) in ROUTES {
        if pick < share {
            return route;
        }
        pick -= share;
    }
    ROUTES[0].0
}

#[test]
fn reweighted_counts_of_a_million_requests_fall_within_their_intervals() {
    let policy = SamplingPolicy::default();
    let mut rng = Rng(2026);
    let mut truth: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut kept: Vec<Event> = Vec::new();
    let (mut requests, mut session) = (0u64, 0u64);
    while requests < 1_000_000 {
        session += 1;
        let user = rng.below(40_000);
        let plan = match user % 10 {
            0..=5 => PLANS[0],
            6..=8 => PLANS[1],
            _ => PLANS[2],
        };
        let new_user = user < 4_000;
        let (session_id, user_id) = (format!("s{session}"), format!("u{user}"));
        let calls = 1 + rng.below(19);
        for _ in 0..calls {
            requests += 1;
            let route = route(&mut rng);
            let status = if rng.below(200) == 0 { 503 } else { 200 };
            let facts = CallFacts {
                method: "GET",
                route,
                status,
                latency_ms: 20.0,
                has_value: false,
                plan: Some(plan),
                session_id: Some(&session_id),
                user_id: Some(&user_id),
                event_id: "",
            };
            *truth
                .entry((route.to_owned(), plan.to_owned()))
                .or_default() += 1;
            let rate = policy.rate_of(&facts, new_user);
            if !policy.keep_of(&facts, rate) {
                continue;
            }
            kept.push(Event::ApiCall(ApiCall {
                schema_version: 1,
                event_id: format!("e{requests}"),
                timestamp: NOW - DAY + (requests as i64 * 80) % DAY,
                service: "shop".into(),
                method: "GET".into(),
                route: route.into(),
                status,
                latency_ms: 20.0,
                user_id: Some(user_id.clone()),
                session_id: Some(session_id.clone()),
                plan: Some(plan.into()),
                sample_rate: (rate < 1.0).then_some(rate),
                ..ApiCall::default()
            }));
        }
    }
    assert!(
        kept.len() < 400_000,
        "most calls are sampled away: {} kept",
        kept.len()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(StoreOptions::new(dir.path()), NOW).expect("store");
    for chunk in kept.chunks(50_000) {
        let events = chunk
            .iter()
            .map(|event| StoredEvent {
                event: event.clone(),
                received_at: NOW,
                skew_ms: 0,
            })
            .collect();
        store.append("p", events).expect("append");
    }
    let question = Question {
        project: "p".into(),
        from: NOW - DAY,
        to: NOW,
        now: NOW,
        slice: Slice::default(),
        by: Some(Dim::Plan),
    };
    let answer = Insights::new(1 << 30)
        .impact(&store, &question, &AnalysisConfig::default())
        .expect("impact");
    assert!(answer.estimate, "the answer says it is an estimate");

    let (mut keys, mut covered, mut sampled_keys) = (0, 0, 0);
    for row in &answer.rows {
        let route = row.endpoint.trim_start_matches("GET ").to_owned();
        let plan = row.group.clone().expect("by plan");
        let truth = truth[&(route.clone(), plan.clone())] as f64;
        keys += 1;
        match row.requests_ci95 {
            None => assert_eq!(
                row.requests, truth,
                "{route} {plan}: unsampled counts are exact"
            ),
            Some([low, high]) => {
                sampled_keys += 1;
                let sigma = (high - low) / (2.0 * 1.96);
                let z = (row.requests - truth) / sigma;
                eprintln!(
                    "{route:24} {plan:10} truth {truth:>7} estimate {:>9.0} [{low:.0}, {high:.0}] z {z:+.2}",
                    row.requests
                );
                assert!(z.abs() < 4.0, "{route} {plan}: {z} standard errors off");
                covered += usize::from(low <= truth && truth <= high);
            }
        }
    }
    assert_eq!(
        keys,
        ROUTES.len() * PLANS.len(),
        "a row per (endpoint, plan)"
    );
    assert!(sampled_keys >= 12, "{sampled_keys} sampled keys");
    // 95% intervals: expect ~5% misses; allow some slack for a single deterministic draw.
    assert!(
        covered as f64 >= 0.85 * sampled_keys as f64,
        "{covered} of {sampled_keys} intervals hold the truth"
    );
}
