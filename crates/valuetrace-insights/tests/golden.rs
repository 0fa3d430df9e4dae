//! Golden answers over one small hand-built day of a shop, every number worked out by hand.
//!
//! The window is `[T0, T0 + 1 day)`; the previous period (adoption change) is the day before.
//! Attribution window 2 h, costs, two error rules, two gap rules and three features are set in
//! [`config`]. Event names (calls `p1` ... `p5` before the window and `c1` ... `c33`, outcomes `o0`
//! ... `o9` (there is no `o6`: its order is bought by `o9`) and the renewal `r1`) are used in the
//! comments.
//!
//! People (user, account, plan): u1 (a1, pro), u2 (a2, free), u3 (a3, pro), u4 (a4, free, only in
//! the previous period), u5 (a5, free, new today); s8 is an anonymous session; u6 only buys.
//!
//! Endpoints: `GET /api/search`, `POST /api/cart`, `POST /api/checkout` (carries the order value
//! and `order_id`), `GET /api/recommendations` (service `shop`), `POST /webhooks/stripe` (service
//! `hooks`, no user: Stripe calls it with `order_id`), and the outbound `POST /v1/charges` to
//! provider `stripe` (service `billing`).

mod common;

use common::*;
use valuetrace_insights::config::{CostRule, ErrorRule, Feature, GapRule};
use valuetrace_insights::gaps::GapCounts;
use valuetrace_insights::impact::{ImpactAnswer, ImpactRow};
use valuetrace_insights::latency::LatencySpec;
use valuetrace_insights::scope::Dim;
use valuetrace_insights::{AnalysisConfig, Insights, Question};
use valuetrace_model::{ApiCall, Event};
use valuetrace_store::EmbeddedStore;

/// The end of the window.
const TO: i64 = T0 + DAY;
/// The server's clock: ten minutes after the window.
const NOW: i64 = TO + 10 * MIN;

/// A call by a known user in a session, with the user's account and plan.
fn by(call: ApiCall, user: &str, session: &str) -> ApiCall {
    let (account, plan) = match user {
        "u1" => ("a1", "pro"),
        "u2" => ("a2", "free"),
        "u3" => ("a3", "pro"),
        "u4" => ("a4", "free"),
        "u5" => ("a5", "free"),
        other => panic!("unknown user {other}"),
    };
    call.user(user).session(session).account(account).plan(plan)
}

fn search(ts: i64, status: u16, latency: f64) -> ApiCall {
    call(ts, "GET /api/search", status, latency)
}
fn cart(ts: i64, status: u16, latency: f64) -> ApiCall {
    call(ts, "POST /api/cart", status, latency)
}
fn checkout(ts: i64, status: u16, latency: f64) -> ApiCall {
    call(ts, "POST /api/checkout", status, latency)
}
fn recommendations(ts: i64, latency: f64) -> ApiCall {
    call(ts, "GET /api/recommendations", 200, latency)
}
fn charge(ts: i64, status: u16, latency: f64) -> ApiCall {
    call(ts, "POST /v1/charges", status, latency)
        .service("billing")
        .outbound("stripe")
}
fn webhook(ts: i64, order: &str) -> ApiCall {
    call(ts, "POST /webhooks/stripe", 200, 20.0)
        .service("hooks")
        .prop("order_id", order)
}

#[rustfmt::skip]
fn dataset() -> Vec<Event> {
    let t = |offset: i64| T0 + offset;
    let calls = vec![
        // Previous period [T0 - 1 day, T0), covered by data from its first instant.
        /* p0 */ call(t(-24 * HOUR), "GET /health", 200, 5.0),
        /* p1 */ by(search(t(-20 * HOUR), 200, 100.0), "u1", "s0a"),
        /* p2 */ by(search(t(-19 * HOUR), 200, 100.0), "u2", "s0b"),
        /* p3 */ by(cart(t(-19 * HOUR + 5 * MIN), 200, 100.0), "u2", "s0b"),
        /* p4 */ by(search(t(-18 * HOUR), 200, 100.0), "u4", "s0c"),
        // 30 min before the window: inside o1's attribution window.
        /* p5 */ by(recommendations(t(-30 * MIN), 100.0), "u1", "s1"),
        // Session s1 (u1): buys o1 for 120.
        /* c1 */ by(search(t(10 * MIN), 200, 80.0), "u1", "s1"),
        /* c2 */ by(cart(t(12 * MIN), 200, 120.0), "u1", "s1"),
        /* c3 */ by(checkout(t(20 * MIN), 200, 400.0), "u1", "s1").value(120.0).prop("order_id", "o1"),
        /* c4 */ by(charge(t(20 * MIN + SEC), 200, 300.0), "u1", "s1"),
        /* c5 */ webhook(t(40 * MIN), "o1"),
        // Session s2 (u2): a cart 500, a Stripe 503 then a retry; buys o2 for 90; no webhook.
        /* c6 */ by(search(t(HOUR), 200, 90.0), "u2", "s2"),
        /* c7 */ by(search(t(HOUR + 2 * MIN), 200, 110.0), "u2", "s2"),
        /* c8 */ by(cart(t(HOUR + 5 * MIN), 500, 2000.0), "u2", "s2").error_type("internal"),
        /* c9 */ by(cart(t(HOUR + 6 * MIN), 200, 150.0), "u2", "s2"),
        /* c10 */ by(checkout(t(HOUR + 8 * MIN), 200, 1500.0), "u2", "s2").value(90.0).prop("order_id", "o2"),
        /* c11 */
        by(charge(t(HOUR + 8 * MIN + SEC), 503, 5000.0), "u2", "s2").value(90.0).error_type("upstream_timeout"),
        /* c12 */ by(charge(t(HOUR + 9 * MIN), 200, 400.0), "u2", "s2"),
        // Session s3 (u3, new account a3): a 400 on cart; buys o3 for 210, 25 min after checkout.
        /* c13 */ by(recommendations(t(3 * HOUR), 60.0), "u3", "s3"),
        /* c14 */ by(cart(t(3 * HOUR + MIN), 400, 30.0), "u3", "s3").error_type("validation"),
        /* c15 */ by(cart(t(3 * HOUR + 2 * MIN), 200, 100.0), "u3", "s3"),
        /* c16 */ by(checkout(t(3 * HOUR + 5 * MIN), 200, 700.0), "u3", "s3").value(210.0).prop("order_id", "o3"),
        /* c17 */ by(charge(t(3 * HOUR + 5 * MIN + SEC), 200, 350.0), "u3", "s3"),
        /* c18 */ webhook(t(3 * HOUR + 20 * MIN), "o3"),
        // Session s4 (u1): a 502 on search and a 500 on checkout (no error type, no value).
        /* c19 */ by(search(t(6 * HOUR), 200, 70.0), "u1", "s4"),
        /* c20 */ by(search(t(6 * HOUR + MIN), 502, 3000.0), "u1", "s4"),
        /* c21 */ by(checkout(t(6 * HOUR + 3 * MIN), 500, 4000.0), "u1", "s4"),
        // Session s5 (u5, new): buys o5 for 40.
        /* c22 */ by(search(t(8 * HOUR), 200, 1200.0), "u5", "s5"),
        /* c23 */ by(checkout(t(8 * HOUR + MIN), 200, 2600.0), "u5", "s5").value(40.0).prop("order_id", "o5"),
        /* c24 */ by(charge(t(8 * HOUR + MIN + SEC), 200, 500.0), "u5", "s5"),
        /* c25 */ webhook(t(8 * HOUR + 30 * MIN), "o5"),
        // Anonymous session s8: a guest purchase (outcome without user) for 50.
        /* c26 */ search(t(12 * HOUR), 200, 300.0).session("s8"),
        /* c27 */ cart(t(12 * HOUR + 2 * MIN), 200, 200.0).session("s8"),
        // Session s6 (u3): buys o6 for 60; its webhook arrives after the window.
        /* c28 */ by(search(t(23 * HOUR + 30 * MIN), 200, 50.0), "u3", "s6"),
        /* c29 */ by(checkout(t(23 * HOUR + 31 * MIN), 200, 300.0), "u3", "s6").value(60.0).prop("order_id", "o6"),
        /* c30 */ by(charge(t(23 * HOUR + 31 * MIN + SEC), 200, 250.0), "u3", "s6"),
        // Session s7 (u2): checks out o7 for 30, never buys; its webhook is not due yet.
        /* c31 */ by(checkout(t(23 * HOUR + 40 * MIN), 200, 500.0), "u2", "s7").value(30.0).prop("order_id", "o7"),
        /* c32 */ by(charge(t(23 * HOUR + 40 * MIN + SEC), 200, 450.0), "u2", "s7"),
        // After the window (read only by gaps' look-ahead).
        /* c33 */ webhook(t(DAY + 5 * MIN), "o6"),
    ];
    let outcomes = vec![
        // Before the window: ignored.
        /* o0 */ outcome(t(-18 * HOUR), "purchase").user("u2").session("s0b").value(999.0),
        /* o1 */ outcome(t(25 * MIN), "purchase").user("u1").session("s1").value(120.0),
        /* o2 */ outcome(t(HOUR + 15 * MIN), "purchase").user("u2").session("s2").value(90.0),
        /* o3 */ outcome(t(3 * HOUR + 30 * MIN), "purchase").user("u3").session("s3").value(210.0),
        /* o4 */ outcome(t(8 * HOUR - MIN), "signup").user("u5").session("s5"),
        /* o5 */ outcome(t(8 * HOUR + 3 * MIN), "purchase").user("u5").session("s5").value(40.0),
        // u1's last call was at 6h03: more than 2 h before, so nothing is credited.
        /* r1 */ outcome(t(10 * HOUR), "renewal").user("u1").value(10.0),
        /* o7 */ outcome(t(12 * HOUR + 5 * MIN), "purchase").session("s8").value(50.0),
        // u6 never called the API.
        /* o8 */ outcome(t(15 * HOUR), "purchase").user("u6").session("s9").value(25.0),
        /* o9 */ outcome(t(23 * HOUR + 35 * MIN), "purchase").user("u3").session("s6").value(60.0),
    ];
    let mut events: Vec<Event> = calls.into_iter().map(Event::ApiCall).collect();
    events.extend(outcomes.into_iter().map(Event::Outcome));
    events.sort_by_key(Event::timestamp);
    events
}

fn config() -> AnalysisConfig {
    AnalysisConfig {
        attribution_window: "2h".into(),
        reliability_target: 0.85,
        min_bucket_sessions: 2,
        costs: vec![
            // Default: webhooks (3 calls) and charges (7 calls).
            CostRule {
                per_request: 0.3,
                ..Default::default()
            },
            // Route rule, more specific than the service rule below.
            CostRule {
                route: Some("POST /api/checkout".into()),
                per_request: 0.1,
                per_cpu_second: 0.01,
                ..Default::default()
            },
            // 45 a month over a 1-day window: 1.5, split by requests.
            CostRule {
                service: Some("shop".into()),
                monthly: 45.0,
                ..Default::default()
            },
        ],
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
        ],
        gaps: vec![
            GapRule {
                name: "payment_webhook".into(),
                start: "POST /api/checkout".into(),
                end: "POST /webhooks/stripe".into(),
                within: "1h".into(),
                match_by: "property:order_id".into(),
            },
            GapRule {
                name: "checkout_to_purchase".into(),
                start: "POST /api/checkout".into(),
                end: "outcome:purchase".into(),
                within: "10m".into(),
                match_by: "session".into(),
            },
        ],
        features: vec![
            Feature {
                name: "checkout_flow".into(),
                routes: vec!["POST /api/cart".into(), "POST /api/checkout".into()],
                effort_hours: 10.0,
            },
            Feature {
                name: "discovery".into(),
                routes: vec!["/api/search*".into(), "GET /api/recommendations".into()],
                effort_hours: 5.0,
            },
            Feature {
                name: "exports".into(),
                routes: vec!["/api/export*".into()],
                effort_hours: 8.0,
            },
        ],
        ..Default::default()
    }
}

fn day() -> Question {
    question(T0, TO, NOW)
}

/// The store with the dataset, once buffered and once persisted to Parquet; `check` runs on both
/// (with a fresh [`Insights`] each time and once more with the one that saw the buffers).
fn on_both_paths(check: impl Fn(&EmbeddedStore, &Insights)) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &dataset(), NOW);
    let insights = Insights::default();
    check(&store, &insights);
    persist(&store, NOW);
    check(&store, &Insights::default());
    check(&store, &insights);
}

fn row<'a>(answer: &'a ImpactAnswer, endpoint: &str) -> &'a ImpactRow {
    let rows: Vec<_> = answer
        .rows
        .iter()
        .filter(|r| r.endpoint == endpoint)
        .collect();
    assert_eq!(rows.len(), 1, "one row for {endpoint}");
    rows[0]
}

fn group_row<'a>(answer: &'a ImpactAnswer, endpoint: &str, group: &str) -> &'a ImpactRow {
    answer
        .rows
        .iter()
        .find(|r| r.endpoint == endpoint && r.group.as_deref() == Some(group))
        .unwrap_or_else(|| panic!("no row {endpoint} / {group}"))
}

#[test]
fn impact() {
    on_both_paths(|store, insights| {
        let config = config();
        let a = insights.impact(store, &day(), &config).unwrap();
        assert_eq!(a.model, "linear");
        assert_eq!(a.attribution_window_ms, 2 * HOUR);
        assert!(!a.estimate);
        // Active users: u1, u2, u3, u5 (the anonymous session and webhooks carry no user).
        assert_eq!(a.active_users, 4);
        // Purchases with a session in the window: o1, o2, o3, o5, o7 (s8), o8 (s9), o9 = 7.
        assert_close(a.conversions, 7.0);
        // Inbound calls in converting sessions (s1 s2 s3 s5 s6 s8 s9):
        // search 6 (c1 c6 c7 c22 c26 c28) + cart 6 (c2 c8 c9 c14 c15 c27)
        // + checkout 5 (c3 c10 c16 c23 c29) + recommendations 1 (c13) = 18; 18 / 7.
        assert_close_opt(a.session_quality, Some(18.0 / 7.0));
        // Attributed: o1 120 + o2 90 + o3 210 + o5 40 + o7 50 + o9 60 = 570 (o4 has no value,
        // o0 is before the window). Unattributed: r1 10 (no call in the 2 h before) + o8 25.
        assert_close(a.attributed_outcome_value, 570.0);
        assert_close(a.unattributed_outcome_value, 35.0);

        // Five inbound rows (the outbound charges only with direction=outbound), by score.
        let order: Vec<&str> = a.rows.iter().map(|r| r.endpoint.as_str()).collect();
        assert_eq!(
            order,
            [
                "GET /api/recommendations",
                "POST /api/checkout",
                "POST /api/cart",
                "GET /api/search",
                "POST /webhooks/stripe"
            ]
        );

        // Touches (inbound calls of the outcome's user, or of its session when it has no user,
        // within the 2 h before it):
        //   o1 120: p5 recs (T0-30m), c1 search, c2 cart, c3 checkout      → 4 keys, 30 each
        //   o2  90: c6 c7 search, c8 c9 cart, c10 checkout                 → 3 keys, 30 each
        //   o3 210: c13 recs, c14 c15 cart, c16 checkout                   → 3 keys, 70 each
        //   o5  40: c22 search, c23 checkout                               → 2 keys, 20 each
        //   o7  50: c26 search, c27 cart (session s8)                      → 2 keys, 25 each
        //   o9  60: c28 search, c29 checkout                               → 2 keys, 30 each
        // linear:      recs 30+70 = 100; search 30+30+20+25+30 = 135; cart 30+30+70+25 = 155;
        //              checkout 30+30+70+20+30 = 180; total 570.
        // first touch: recs o1+o3 = 330; search o2+o5+o7+o9 = 240.
        // last touch:  checkout o1+o2+o3+o5+o9 = 520; cart o7 = 50.
        let assisted = |endpoint: &str| {
            let r = row(&a, endpoint);
            [
                r.assisted_value.linear,
                r.assisted_value.first_touch,
                r.assisted_value.last_touch,
            ]
        };
        assert_eq!(assisted("GET /api/recommendations"), [100.0, 330.0, 0.0]);
        assert_eq!(assisted("GET /api/search"), [135.0, 240.0, 0.0]);
        assert_eq!(assisted("POST /api/cart"), [155.0, 0.0, 50.0]);
        assert_eq!(assisted("POST /api/checkout"), [180.0, 0.0, 520.0]);
        assert_eq!(assisted("POST /webhooks/stripe"), [0.0, 0.0, 0.0]);
        for model in 0..3 {
            let sum: f64 = a.rows.iter().map(|r| assisted(&r.endpoint)[model]).sum();
            assert_close(sum, a.attributed_outcome_value);
        }

        // Checkout: 7 calls (c3 c10 c16 c21 c23 c29 c31), 1 server error (c21) → 6/7.
        // Direct value: successful value-carrying calls 120+90+210+40+60+30 = 550.
        // Attributed (linear) = 550 + 180 = 730; contributors u1 u2 u3 u5.
        let r = row(&a, "POST /api/checkout");
        assert_close(r.requests, 7.0);
        assert_close_opt(r.success_rate, Some(6.0 / 7.0));
        assert_eq!(r.users, 4);
        assert_close(r.direct_value, 550.0);
        assert_close(r.attributed_value, 730.0);
        assert_eq!(r.contributing_users, 4);
        assert_close_opt(r.value_per_user, Some(730.0 / 4.0));
        // 4 of 4 active users; none in the previous period → no previous adoption, no change.
        assert_close_opt(r.adoption, Some(1.0));
        assert_eq!(r.adoption_previous, None);
        assert_eq!(r.adoption_change_pp, None);
        assert_close_opt(r.calls_per_user, Some(7.0 / 4.0));
        // Sessions s1 s2 s3 s4 s5 s6 s7: 7 calls / 7 sessions.
        assert_close_opt(r.calls_per_session, Some(1.0));
        // Calls in converting sessions c3 c10 c16 c23 c29 = 5; their sessions' conversions 5.
        assert_close_opt(r.session_quality, Some(1.0));
        // Cost: route rule, 7 × 0.1 + 0.01 × (400+1500+700+4000+2600+300+500 ms = 10 s) = 0.8.
        assert_close_opt(r.cost, Some(0.8));
        assert_close_opt(r.cost_efficiency, Some(730.0 / 0.8));

        // Search: 8 calls (c1 c6 c7 c19 c20 c22 c26 c28), 1 server error (c20) → 7/8.
        // Users u1 u2 u5 u3 = 4 of 4 → 1.0; previous day u1 u2 u4 of 3 active → 1.0; change 0 pp.
        let r = row(&a, "GET /api/search");
        assert_close(r.requests, 8.0);
        assert_close_opt(r.success_rate, Some(7.0 / 8.0));
        assert_close_opt(r.adoption, Some(1.0));
        assert_close_opt(r.adoption_previous, Some(1.0));
        assert_close_opt(r.adoption_change_pp, Some(0.0));
        assert_close(r.direct_value, 0.0);
        assert_close(r.attributed_value, 135.0);
        // Contributors: u1 u2 u5 u3 (o7 is anonymous).
        assert_eq!(r.contributing_users, 4);
        // Service rule: 1.5 split over 8 + 6 + 1 = 15 shop requests → 0.1 each → 0.8.
        assert_close_opt(r.cost, Some(0.8));
        // 6 sessions (s1 s2 s4 s5 s8 s6); converting ones hold 6 calls and 5 conversions.
        assert_close_opt(r.calls_per_session, Some(8.0 / 6.0));
        assert_close_opt(r.session_quality, Some(6.0 / 5.0));

        // Cart: users u1 u2 u3 = 3 of 4 = 0.75; previous day u2 of 3 → 1/3;
        // change (0.75 − 0.3333) × 100 = 41.667 pp. Success 5/6 (c8 is a 500; c14 a 400).
        let r = row(&a, "POST /api/cart");
        assert_close_opt(r.adoption, Some(0.75));
        assert_close_opt(r.adoption_previous, Some(1.0 / 3.0));
        assert_close_opt(r.adoption_change_pp, Some(41.667));
        assert_close_opt(r.success_rate, Some(5.0 / 6.0));
        assert_close_opt(r.cost, Some(0.6));

        // Recommendations: u3 of 4 = 0.25 now, u1 of 3 before → −8.333 pp.
        let r = row(&a, "GET /api/recommendations");
        assert_close_opt(r.adoption, Some(0.25));
        assert_close_opt(r.adoption_change_pp, Some(-8.333));
        assert_eq!(r.contributing_users, 2); // u1 (o1 via p5) and u3
        assert_close_opt(r.cost, Some(0.1));

        // Webhooks: 3 calls, no user: adoption 0 of 4; default rule 3 × 0.3 = 0.9.
        let r = row(&a, "POST /webhooks/stripe");
        assert_eq!(r.users, 0);
        assert_close_opt(r.adoption, Some(0.0));
        assert_eq!(r.calls_per_user, None);
        assert_close_opt(r.cost, Some(0.9));
        assert_close_opt(r.cost_efficiency, Some(0.0));

        // Score: value shares of 1120 (135+155+730+100+0), engagement shares of 12 users
        // (4+3+4+1+0), cost shares of 3.2 (0.8+0.6+0.8+0.1+0.9); weights 0.6 / 0.4.
        let expect = [
            ("GET /api/search", 135.0, 4.0, 0.8, "protect"), // success 0.875 >= 0.85
            ("POST /api/cart", 155.0, 3.0, 0.6, "invest"),   // success 0.833 < 0.85
            ("POST /api/checkout", 730.0, 4.0, 0.8, "protect"), // success 0.857
            ("GET /api/recommendations", 100.0, 1.0, 0.1, "maintain"),
            ("POST /webhooks/stripe", 0.0, 0.0, 0.9, "cut"),
        ];
        // Benefits (0.6 v + 0.4 e): search 0.2057, cart 0.1830, checkout 0.5244, recs 0.0869,
        // webhooks 0 → median 0.1830 (cart): search, cart, checkout are high value.
        // Cost shares 0.8, 0.6, 0.8, 0.1, 0.9 (/3.2) → median 0.8/3.2: webhooks high cost → cut,
        // recommendations low → maintain.
        for (endpoint, value, users, cost, quadrant) in expect {
            let r = row(&a, endpoint);
            let c = &r.components;
            assert_eq!(c.cost_basis, "cost");
            assert_close(c.value_share, value / 1120.0);
            assert_close(c.engagement_share, users / 12.0);
            assert_close(c.cost_share, cost / 3.2);
            let score = (0.6 * value / 1120.0 + 0.4 * users / 12.0) / (cost / 3.2);
            assert_close_opt(r.score, Some(score));
            assert_eq!(r.quadrant, quadrant, "{endpoint}");
        }
        // recs (0.0869 / 0.03125 = 2.781) > checkout 2.098 > cart 0.976 > search 0.823 > 0.
        assert_close_opt(
            row(&a, "GET /api/recommendations").score,
            Some(2.780_952_380_952_381),
        );

        // The other attribution models change the model value only.
        for (model, search, cart, checkout, recs) in [
            ("first_touch", 240.0, 0.0, 550.0, 330.0),
            ("last_touch", 0.0, 50.0, 550.0 + 520.0, 0.0),
            ("linear", 135.0, 155.0, 730.0, 100.0),
        ] {
            let b = insights
                .impact(store, &day(), &config_with_model(&config, model))
                .unwrap();
            assert_eq!(b.model, model);
            assert_close(b.attributed_outcome_value, 570.0);
            assert_close(row(&b, "GET /api/search").attributed_value, search);
            assert_close(row(&b, "POST /api/cart").attributed_value, cart);
            assert_close(row(&b, "POST /api/checkout").attributed_value, checkout);
            assert_close(row(&b, "GET /api/recommendations").attributed_value, recs);
        }

        // Outbound rows on request: 7 charges, 1 failure (c11 503) → 6/7.
        let mut outbound = day();
        outbound.slice.direction = Some("outbound".into());
        let b = insights.impact(store, &outbound, &config).unwrap();
        assert_eq!(b.rows.len(), 1);
        assert_eq!(b.rows[0].endpoint, "POST /v1/charges");
        assert_eq!(b.rows[0].provider.as_deref(), Some("stripe"));
        assert_close(b.rows[0].requests, 7.0);
        assert_close_opt(b.rows[0].success_rate, Some(6.0 / 7.0));
        // Outbound calls never touch: nothing is attributed.
        assert_close(b.attributed_outcome_value, 0.0);
    });
}

/// Issue 18 (7c): without p0 the data begins at T0 − 20 h, inside the previous period
/// [T0 − 1 day, T0): that period is not fully covered, so there is no previous adoption and no
/// change (before, search compared 4 of 4 with 3 of 3 users of a period a sixth missing).
#[test]
fn adoption_change_needs_a_previous_period_covered_by_data() {
    let events: Vec<Event> = dataset()
        .into_iter()
        .filter(
            |e| !matches!(e, Event::ApiCall(c) if c.route == "/health" && c.timestamp == T0 - DAY),
        )
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &events, NOW);
    let a = Insights::default()
        .impact(&store, &day(), &config())
        .unwrap();
    for endpoint in ["GET /api/search", "POST /api/cart"] {
        let r = row(&a, endpoint);
        assert_close_opt(
            r.adoption,
            if endpoint == "POST /api/cart" {
                Some(0.75)
            } else {
                Some(1.0)
            },
        );
        assert_eq!(
            (r.adoption_previous, r.adoption_change_pp),
            (None, None),
            "{endpoint}"
        );
    }
    // With the data from the previous period's first instant (p0), the change is given.
    let store = store_with(tempfile::tempdir().unwrap().path(), &dataset(), NOW);
    let a = Insights::default()
        .impact(&store, &day(), &config())
        .unwrap();
    assert_close_opt(row(&a, "POST /api/cart").adoption_change_pp, Some(41.667));
}

/// Issue 18 (7b): a tiny endpoint (5 requests, one buyer of 200) must not outrank checkout
/// (1,000 requests by 100 buyers of 10 each) on a ratio of shares it earns by its size.
#[test]
fn impact_ranks_endpoints_with_enough_volume_first() {
    let mut events = Vec::new();
    for i in 0..1000i64 {
        let user = format!("u{}", i % 100);
        let c = call(T0 + HOUR + i * SEC, "POST /api/checkout", 200, 50.0)
            .user(&user)
            .value(10.0);
        events.push(Event::ApiCall(c));
    }
    for i in 0..5i64 {
        let c = call(T0 + 2 * HOUR + i * SEC, "GET /api/tiny", 200, 50.0)
            .user("t1")
            .value(40.0);
        events.push(Event::ApiCall(c));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &events, NOW);
    let a = Insights::default()
        .impact(&store, &day(), &config())
        .unwrap();
    let order: Vec<(&str, bool)> = a
        .rows
        .iter()
        .map(|r| (r.endpoint.as_str(), r.low_volume))
        .collect();
    assert_eq!(
        order,
        [("POST /api/checkout", false), ("GET /api/tiny", true)]
    );
    // The tiny endpoint's score is still shown, and is the higher one: only its rank moved.
    let score = |e: &str| row(&a, e).score.expect("score");
    assert!(score("GET /api/tiny") > score("POST /api/checkout"));
}

#[test]
fn impact_by_plan() {
    on_both_paths(|store, insights| {
        let a = insights
            .impact(store, &with_by(day(), Dim::Plan), &config())
            .unwrap();
        // Active per plan: pro u1 u3, free u2 u5; previous day pro u1, free u2 u4.
        // Checkout / pro: c3 c16 c21 c29 = 4 calls; users u1 u3 of 2 → 1.0;
        // direct 120+210+60 = 390; linear o1 30 + o3 70 + o9 30 = 130 → 520.
        let r = group_row(&a, "POST /api/checkout", "pro");
        assert_close(r.requests, 4.0);
        assert_close_opt(r.adoption, Some(1.0));
        assert_close(r.direct_value, 390.0);
        assert_close(r.assisted_value.linear, 130.0);
        assert_close(r.attributed_value, 520.0);
        // Checkout / free: c10 c23 c31; direct 90+40+30 = 160; linear o2 30 + o5 20 = 50.
        let r = group_row(&a, "POST /api/checkout", "free");
        assert_close(r.requests, 3.0);
        assert_close(r.direct_value, 160.0);
        assert_close(r.assisted_value.linear, 50.0);
        // Cart / free: u2 of (u2, u5) = 0.5; previous day u2 of (u2, u4) = 0.5 → 0 pp.
        let r = group_row(&a, "POST /api/cart", "free");
        assert_close_opt(r.adoption, Some(0.5));
        assert_close_opt(r.adoption_change_pp, Some(0.0));
        // Search of the anonymous session: group (none), no users → adoption undefined;
        // linear o7 25, first touch o7 50.
        let r = group_row(&a, "GET /api/search", "(none)");
        assert_close(r.requests, 1.0);
        assert_eq!(r.adoption, None);
        assert_close(r.assisted_value.linear, 25.0);
        assert_close(r.assisted_value.first_touch, 50.0);
        // Search / pro (u1's o1 and u3's o9) 60, free (o2, o5) 50: with (none) 135 in all.
        assert_close(
            group_row(&a, "GET /api/search", "pro")
                .assisted_value
                .linear,
            60.0,
        );
        assert_close(
            group_row(&a, "GET /api/search", "free")
                .assisted_value
                .linear,
            50.0,
        );
        // The breakdown moves credit between rows, never loses it.
        let linear: f64 = a.rows.iter().map(|r| r.assisted_value.linear).sum();
        assert_close(linear, 570.0);
        assert_close(a.attributed_outcome_value, 570.0);
    });
}

#[test]
fn impact_filtered_to_pro() {
    on_both_paths(|store, insights| {
        let a = insights
            .impact(store, &with_plan(day(), "pro"), &config())
            .unwrap();
        // Only pro calls count: active users u1 u3; the webhooks (no plan) drop out.
        assert_eq!(a.active_users, 2);
        assert_eq!(a.rows.len(), 4);
        // Only pro calls touch: o1 120, o3 210, o9 60 = 390 attributed; the rest (o2 90, o5 40,
        // o7 50, r1 10, o8 25 = 215) is not.
        assert_close(a.attributed_outcome_value, 390.0);
        assert_close(a.unattributed_outcome_value, 215.0);
        // search c1 c19 c20 c28: o1 30 + o9 30; cart c2 c14 c15: 30 + 70;
        // recs p5 c13: 30 + 70; checkout c3 c16 c21 c29: 30 + 70 + 30.
        assert_close(row(&a, "GET /api/search").requests, 4.0);
        assert_close(row(&a, "GET /api/search").assisted_value.linear, 60.0);
        assert_close(row(&a, "POST /api/cart").assisted_value.linear, 100.0);
        assert_close(
            row(&a, "GET /api/recommendations").assisted_value.linear,
            100.0,
        );
        assert_close(row(&a, "POST /api/checkout").assisted_value.linear, 130.0);
        assert_close(row(&a, "POST /api/checkout").direct_value, 390.0);
        let linear: f64 = a.rows.iter().map(|r| r.assisted_value.linear).sum();
        assert_close(linear, a.attributed_outcome_value);
    });
}

#[test]
fn errors() {
    on_both_paths(|store, insights| {
        let a = insights.errors(store, &day(), &config()).unwrap();
        // 32 calls in the window (c1 ... c32), 5 failed: c8 cart 500, c11 charge 503, c14 cart 400,
        // c20 search 502, c21 checkout 500.
        assert_close(a.calls, 32.0);
        assert_close(a.failed, 5.0);
        assert_close_opt(a.error_rate, Some(5.0 / 32.0));
        // Classes: c11 → `overloaded` (rule 503, before its error type); c8 → `cart_backend`
        // (rule 500-504 on POST /api/cart, before `internal`); c14 → its type `validation`;
        // c20, c21 → `unknown` (no rule, no type). Unknown share 2 / 5.
        assert_close(a.unknown, 2.0);
        assert_close_opt(a.unknown_share, Some(0.4));
        // Value at risk: c11 carried 90; c21 carried none → checkout's average successful
        // value (120+90+210+40+60+30) / 6 = 91.667; the others' endpoints carry no value → 0.
        let checkout_average = 550.0 / 6.0;
        assert_close(a.value_at_risk, 90.0 + checkout_average);
        let classes: Vec<(&str, f64, usize, usize)> = a
            .classes
            .iter()
            .map(|c| (c.class.as_str(), c.calls, c.users, c.sessions))
            .collect();
        assert_eq!(
            classes,
            [
                ("unknown", 2.0, 1, 1), // u1, s4
                ("cart_backend", 1.0, 1, 1),
                ("overloaded", 1.0, 1, 1),
                ("validation", 1.0, 1, 1),
            ]
        );
        assert_close_opt(a.classes[0].share, Some(0.4));
        assert_close(a.classes[0].value_at_risk, checkout_average);
        assert_close(a.classes[2].value_at_risk, 90.0);
        // Hourly trend over the day: 24 points; hour 1: c8 c11 (none unknown); hour 3: c14;
        // hour 6: c20 c21, both unknown.
        assert_eq!(a.unknown_trend.len(), 24);
        assert_eq!(a.unknown_trend[6].start, T0 + 6 * HOUR);
        let trend: Vec<(usize, f64, f64)> = a
            .unknown_trend
            .iter()
            .enumerate()
            .filter(|(_, p)| p.failed > 0.0)
            .map(|(hour, p)| (hour, p.failed, p.unknown))
            .collect();
        assert_eq!(trend, [(1, 2.0, 0.0), (3, 1.0, 0.0), (6, 2.0, 2.0)]);
        assert_eq!(a.unknown_trend[6].unknown_share, Some(1.0));
        assert_eq!(a.unknown_trend[0].unknown_share, None);
        // Sessions with calls: s1 ... s8 = 8; with an error s2 s3 s4 = 3, converted s2 s3 → 2/3;
        // without s1 s5 s6 s7 s8 = 5, converted s1 s5 s6 s8 → 4/5 (context only).
        let s = &a.sessions;
        assert_eq!((s.sessions_with_error, s.sessions_without_error), (3, 5));
        assert_close_opt(s.conversion_with_error.rate, Some(2.0 / 3.0));
        assert_close_opt(s.conversion_without_error.rate, Some(0.8));
        // Lost conversions per endpoint, among the sessions that called it:
        //   search:   failed in s4 (0/1 bought); ok s1 s2 s5 s6 s8 (5/5) → (1 − 0) × 1 = 1
        //   checkout: failed in s4 (0/1); ok s1 s2 s3 s5 s6 s7 (5/6) → (5/6 − 0) × 1 = 0.8333
        //   cart:     failed in s2 s3 (2/2); ok s1 s8 (2/2) → 0, not listed
        //   charges:  failed in s2 (1/1); ok s1 s3 s5 s6 s7 (4/5) → below 0 → 0, not listed
        // Total 1 + 5/6; average purchase value (with a session):
        // (120+90+210+40+50+25+60) / 7 = 85 → lost value 155.833.
        assert_close(s.lost_conversions, 1.0 + 5.0 / 6.0);
        assert_close_opt(s.average_conversion_value, Some(85.0));
        assert_close(s.lost_value, (1.0 + 5.0 / 6.0) * 85.0);
        let losses: Vec<(&str, usize, usize)> = s
            .by_endpoint
            .iter()
            .map(|e| {
                (
                    e.endpoint.as_str(),
                    e.sessions_with_failure,
                    e.sessions_without_failure,
                )
            })
            .collect();
        assert_eq!(
            losses,
            [("GET /api/search", 1, 5), ("POST /api/checkout", 1, 6)]
        );
        assert_close(s.by_endpoint[0].lost_value, 85.0);
        assert_close_opt(
            s.by_endpoint[1].conversion_without_failure.rate,
            Some(5.0 / 6.0),
        );
        assert_close(s.by_endpoint[1].lost_conversions, 5.0 / 6.0);
        // Patterns by value at risk: checkout/unknown/pro 91.667, then charges/overloaded/free/stripe 90.
        let p = &a.patterns[0];
        assert_eq!(
            (p.endpoint.as_str(), p.class.as_str(), p.plan.as_deref()),
            ("POST /api/checkout", "unknown", Some("pro"))
        );
        assert_close(p.value_at_risk, checkout_average);
        let p = &a.patterns[1];
        assert_eq!(
            (
                p.endpoint.as_str(),
                p.class.as_str(),
                p.plan.as_deref(),
                p.provider.as_deref()
            ),
            (
                "POST /v1/charges",
                "overloaded",
                Some("free"),
                Some("stripe")
            )
        );
        assert_eq!(a.patterns.len(), 5);
    });
}

#[test]
fn integrations() {
    on_both_paths(|store, insights| {
        let a = insights.integrations(store, &day(), &config()).unwrap();
        assert_eq!(a.providers.len(), 1);
        let p = &a.providers[0];
        assert_eq!(p.provider, "stripe");
        assert_eq!(p.endpoints, ["POST /v1/charges"]);
        // Charges c4 c11 c12 c17 c24 c30 c32 = 7; c11 (503) failed → 6/7.
        assert_close(p.calls, 7.0);
        assert_close(p.failures, 1.0);
        assert_close_opt(p.success_rate.rate, Some(6.0 / 7.0));
        // Latencies 300 5000 400 350 500 250 450 → sorted 250 300 350 400 450 500 5000;
        // nearest rank p50: ceil(3.5) = 4th = 400; p95: ceil(6.65) = 7th = 5000.
        assert_eq!(p.p50_ms, Some(400.0));
        assert_eq!(p.p95_ms, Some(5000.0));
        assert_eq!(p.error_classes.len(), 1);
        assert_eq!(p.error_classes.get("overloaded"), Some(&1.0));
        // Hour 1 (c11 c12): 2 calls, 1 failure, p95 of (5000, 400) = 5000.
        assert_eq!(p.trend.len(), 24);
        assert_close(p.trend[1].calls, 2.0);
        assert_close(p.trend[1].failures, 1.0);
        assert_eq!(p.trend[1].success_rate, Some(0.5));
        assert_eq!(p.trend[1].p95_ms, Some(5000.0));
        assert_close(p.trend[23].calls, 2.0); // c30 c32
        assert_eq!(p.trend[2].success_rate, None);
        // Sessions with charges s1 s2 s3 s5 s6 s7; failure in s2 (converted) → 1/1;
        // without: s1 s3 s5 s6 converted, s7 not → 4/5; gap (0.8 − 1.0) × 100 = −20 pp.
        assert_eq!(
            (p.sessions_with_failure, p.sessions_without_failure),
            (1, 5)
        );
        assert_eq!(p.conversion_with_failure.rate, Some(1.0));
        assert_close_opt(p.conversion_without_failure.rate, Some(0.8));
        assert_close_opt(p.conversion_gap_pp, Some(-20.0));
    });
}

fn counts(started: u64, completed: u64, pending: u64, gaps: u64) -> (u64, u64, u64, u64) {
    (started, completed, pending, gaps)
}

fn counts_of(c: &GapCounts) -> (u64, u64, u64, u64) {
    (c.started, c.completed, c.pending, c.gaps)
}

#[test]
fn gaps() {
    on_both_paths(|store, insights| {
        let a = insights.gaps(store, &day(), &config()).unwrap();
        assert_eq!(a.now, NOW);
        assert_eq!(a.gaps.len(), 2);

        // payment_webhook (checkout → webhook by order_id, within 1 h). Successful checkouts:
        //   o1 c3 0h20 → c5 0h40: 20 min      o2 c10 1h08 → none; deadline 2h08 < now → gap
        //   o3 c16 3h05 → c18 3h20: 15 min    o5 c23 8h01 → c25 8h30: 29 min
        //   o6 c29 23h31 → c33 24h05 (after the window, read by the look-ahead): 34 min
        //   o7 c31 23h40 → none; deadline 24h40 > now (24h10) → pending
        // (c21 failed, so it starts nothing.)
        let g = &a.gaps[0];
        assert_eq!(g.name, "payment_webhook");
        assert_eq!(g.within_ms, HOUR);
        assert_eq!(counts_of(&g.counts), counts(6, 4, 1, 1));
        // Gap rate: gaps ÷ (started − pending) = 1 / 5.
        assert_eq!(g.counts.gap_rate, Some(0.2));
        assert_eq!(g.counts.oldest_unmatched, Some(T0 + HOUR + 8 * MIN));
        // Completions 15, 20, 29, 34 min: nearest rank p50 = 2nd = 20 min, p95 = 4th = 34 min.
        assert_eq!(g.counts.completion_p50_ms, Some(20 * MIN));
        assert_eq!(g.counts.completion_p95_ms, Some(34 * MIN));
        assert!(g.groups.is_empty());

        // checkout_to_purchase (by session, within 10 min):
        //   s1 0h20 → o1 0h25 (5 min); s2 1h08 → o2 1h15 (7); s3 3h05 → o3 3h30 is 25 min: gap;
        //   s5 8h01 → o5 8h03 (2); s6 23h31 → o9 23h35 (4); s7 23h40 → none, deadline 23h50 < now: gap.
        let g = &a.gaps[1];
        assert_eq!(g.name, "checkout_to_purchase");
        assert_eq!(counts_of(&g.counts), counts(6, 4, 0, 2));
        assert_close_opt(g.counts.gap_rate, Some(2.0 / 6.0));
        assert_eq!(g.counts.oldest_unmatched, Some(T0 + 3 * HOUR + 5 * MIN));
        // Completions 2, 4, 5, 7 min → p50 4 min, p95 7 min.
        assert_eq!(g.counts.completion_p50_ms, Some(4 * MIN));
        assert_eq!(g.counts.completion_p95_ms, Some(7 * MIN));

        // Asked an hour later, o7's webhook is overdue too.
        let mut later = day();
        later.now = NOW + HOUR;
        let b = insights.gaps(store, &later, &config()).unwrap();
        assert_eq!(counts_of(&b.gaps[0].counts), counts(6, 4, 0, 2));

        // By plan (of the start): pro c3 c16 c29 all complete; free c10 gap, c23 done, c31 pending.
        let b = insights
            .gaps(store, &with_by(day(), Dim::Plan), &config())
            .unwrap();
        let groups = &b.gaps[0].groups;
        assert_eq!(counts_of(&groups["pro"]), counts(3, 3, 0, 0));
        assert_eq!(counts_of(&groups["free"]), counts(3, 1, 1, 1));
        assert_eq!(counts_of(&b.gaps[0].counts), counts(6, 4, 1, 1));
    });
}

#[test]
fn gaps_filtered_to_pro() {
    on_both_paths(|store, insights| {
        // A filter selects the starts; the ends (Stripe's webhooks carry no plan) still count:
        // pro checkouts c3 c16 c29 are all followed by their webhook.
        let a = insights
            .gaps(store, &with_plan(day(), "pro"), &config())
            .unwrap();
        assert_eq!(counts_of(&a.gaps[0].counts), counts(3, 3, 0, 0));
        // By session: s1 done, s3 late (gap), s6 done.
        assert_eq!(counts_of(&a.gaps[1].counts), counts(3, 2, 0, 1));
    });
}

fn latency_spec() -> LatencySpec {
    LatencySpec {
        route: "POST /api/checkout".into(),
        outcome: None,
        edges_ms: vec![500.0, 1000.0, 2000.0],
        threshold_ms: 1000.0,
    }
}

#[test]
fn latency_conversion() {
    on_both_paths(|store, insights| {
        let a = insights
            .latency_conversion(store, &day(), &config(), &latency_spec())
            .unwrap();
        assert_eq!(a.outcome, "purchase");
        assert_eq!(a.endpoints, ["POST /api/checkout"]);
        // Slowest checkout per session, and whether the session bought:
        //   s1 400 ✓, s6 300 ✓            → [0, 500):     2 sessions, 2 conversions
        //   s3 700 ✓, s7 500 (edge: up) ✗ → [500, 1000):  2, 1
        //   s2 1500 ✓                     → [1000, 2000): 1, 1 — below min_bucket_sessions 2
        //   s4 4000 ✗, s5 2600 ✓          → [2000, ∞):    2, 1
        let buckets: Vec<(f64, Option<f64>, u64, u64, bool)> = a
            .buckets
            .iter()
            .map(|b| (b.from_ms, b.to_ms, b.sessions, b.conversions, b.low_sample))
            .collect();
        assert_eq!(
            buckets,
            [
                (0.0, Some(500.0), 2, 2, false),
                (500.0, Some(1000.0), 2, 1, false),
                (1000.0, Some(2000.0), 1, 1, true),
                (2000.0, None, 2, 1, false),
            ]
        );
        // The low-sample bucket converts at 100% too but cannot be best: best is [0, 500).
        assert_eq!(a.best_bucket_from_ms, Some(0.0));
        assert!(a.buckets.iter().all(|b| b.group.is_none()));
        // Above 1000 ms: s2 s4 s5, 2 of 3 bought; at or below: s1 s3 s6 s7, 3 of 4.
        assert_eq!(a.sessions_above_threshold, 3);
        assert_close_opt(a.conversion_above_threshold.rate, Some(2.0 / 3.0));
        assert_close_opt(a.conversion_below_threshold.rate, Some(0.75));
        // Value at risk: (0.75 − 0.6667) × 3 sessions × 85 average purchase = 21.25.
        assert_close_opt(a.average_outcome_value, Some(85.0));
        assert_close_opt(a.value_at_risk, Some(21.25));
        assert!(!a.value_at_risk_low_sample);
        // Issue 18 (7a): above 3000 ms only s4 (1 session, below min_bucket_sessions 2): no value
        // at risk from one session.
        let spec = LatencySpec {
            threshold_ms: 3000.0,
            ..latency_spec()
        };
        let a = insights
            .latency_conversion(store, &day(), &config(), &spec)
            .unwrap();
        assert_eq!(a.sessions_above_threshold, 1);
        assert_eq!((a.value_at_risk, a.value_at_risk_low_sample), (None, true));
    });
}

#[test]
fn scorecard() {
    on_both_paths(|store, insights| {
        let a = insights.scorecard(store, &day(), &config()).unwrap();
        // Pillar values:
        //                 B value  R adoption  I value/cost  D 4xx share  G change pp  E at risk
        //   search          135      1.0         168.75        0            0.0          16.875
        //   cart            155      0.75        258.33        1/6          41.667       51.667
        //   checkout        730      1.0         912.5         0            (none)       91.667
        //   recommendations 100      0.25        1000          0            −8.333       0
        //   webhooks          0      0.0         0             0            (none)       0
        // E: checkout's c21 risks the average order 550/6; search and cart carry no value, so
        // their failures risk the assisted value per call: search 1 × (135 − 0) / 8,
        // cart 2 × (155 − 0) / 6.
        // Rank = share of the other 4 rows that do no better (ties share the upper rank); no
        // value ranks 0 and counts as no better for the others:
        //   search          0.5      1.0         0.25          1.0          0.75         0.5  → 4.0
        //   cart            0.75     0.5         0.5           0            1.0          0.25 → 3.0
        //   checkout        1.0      1.0         0.75          1.0          0            0    → 3.75
        //   recommendations 0.25     0.25        1.0           1.0          0.5          1.0  → 4.0
        //   webhooks        0        0           0             1.0          0            1.0  → 2.0
        // bridge_score = 100 × mean rank: 66.7, 50.0, 62.5, 66.7, 33.3 (ties by endpoint name).
        let order: Vec<(&str, f64)> = a
            .rows
            .iter()
            .map(|r| (r.endpoint.as_str(), r.bridge_score))
            .collect();
        assert_eq!(
            order,
            [
                ("GET /api/recommendations", 66.7),
                ("GET /api/search", 66.7),
                ("POST /api/checkout", 62.5),
                ("POST /api/cart", 50.0),
                ("POST /webhooks/stripe", 33.3),
            ]
        );
        let get = |endpoint: &str| a.rows.iter().find(|r| r.endpoint == endpoint).unwrap();
        let ranks = |endpoint: &str| {
            let r = get(endpoint);
            [
                r.business_impact.rank,
                r.real_engagement.rank,
                r.infrastructure_roi.rank,
                r.developer_experience.rank,
                r.growth_signals.rank,
                r.error_impact.rank,
            ]
        };
        assert_eq!(ranks("GET /api/search"), [0.5, 1.0, 0.25, 1.0, 0.75, 0.5]);
        assert_eq!(ranks("POST /api/cart"), [0.75, 0.5, 0.5, 0.0, 1.0, 0.25]);
        assert_eq!(ranks("POST /api/checkout"), [1.0, 1.0, 0.75, 1.0, 0.0, 0.0]);
        assert_eq!(
            ranks("GET /api/recommendations"),
            [0.25, 0.25, 1.0, 1.0, 0.5, 1.0]
        );
        assert_eq!(
            ranks("POST /webhooks/stripe"),
            [0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
        );
        // Grades: A ≥ 0.75, B ≥ 0.5, C ≥ 0.25, else D.
        let grades = |endpoint: &str| {
            let r = get(endpoint);
            [
                r.business_impact.grade.clone(),
                r.real_engagement.grade.clone(),
                r.infrastructure_roi.grade.clone(),
                r.developer_experience.grade.clone(),
                r.growth_signals.grade.clone(),
                r.error_impact.grade.clone(),
            ]
        };
        assert_eq!(grades("POST /api/cart"), ["A", "B", "B", "D", "A", "C"]);
        let checkout = get("POST /api/checkout");
        assert_close_opt(checkout.infrastructure_roi.value, Some(912.5));
        assert_close(checkout.value_at_risk, 550.0 / 6.0);
        assert_close(get("GET /api/search").value_at_risk, 135.0 / 8.0);
        assert_close(get("POST /api/cart").value_at_risk, 2.0 * 155.0 / 6.0);
        assert_eq!(checkout.growth_signals.value, None);
        assert_close_opt(checkout.error_rate, Some(1.0 / 7.0));
        assert_close_opt(
            checkout.impact_score,
            row_score(store, insights, "POST /api/checkout"),
        );
        assert_close_opt(get("POST /api/cart").client_error_share, Some(1.0 / 6.0));
        assert_close_opt(get("POST /api/cart").error_rate, Some(2.0 / 6.0));
        // New accounts (first call inside the window): a3 (3h00, c13) and a5 (8h00, c22).
        // First success on checkout: a3 at 3h05 (+5 min), a5 at 8h01 (+1 min) → median (nearest
        // rank) of [1, 5] min = 1 min. On cart: a3 at 3h02 (c14 was a 400) → 2 min.
        assert_eq!(checkout.new_accounts, 2);
        assert_eq!(checkout.time_to_first_success_ms, Some(MIN));
        assert_eq!(
            get("POST /api/cart").time_to_first_success_ms,
            Some(2 * MIN)
        );
        // Search: a5 at 8h00 (+0), a3 at 23h30 (+20h30) → median 0.
        assert_eq!(get("GET /api/search").time_to_first_success_ms, Some(0));
        // New users u3, u5: checkout 2 of 4 users, cart 1 of 3, recommendations 1 of 1.
        assert_close_opt(checkout.new_user_share, Some(0.5));
        assert_close_opt(get("POST /api/cart").new_user_share, Some(1.0 / 3.0));
        assert_close_opt(get("GET /api/recommendations").new_user_share, Some(1.0));
        assert_eq!(get("POST /webhooks/stripe").new_user_share, None);
        assert_eq!(get("POST /webhooks/stripe").time_to_first_success_ms, None);
    });
}

/// The impact score of an endpoint, for the scorecard's copy of it.
fn row_score(store: &EmbeddedStore, insights: &Insights, endpoint: &str) -> Option<f64> {
    row(
        &insights.impact(store, &day(), &config()).unwrap(),
        endpoint,
    )
    .score
}

#[test]
fn priority() {
    on_both_paths(|store, insights| {
        let a = insights.priority(store, &day(), &config()).unwrap();
        assert_eq!(a.active_users, 4);
        assert_eq!(a.thresholds, [0.8, 0.4]);
        let names: Vec<&str> = a.features.iter().map(|f| f.feature.as_str()).collect();
        assert_eq!(names, ["checkout_flow", "discovery", "exports"]);

        // checkout_flow: cart + checkout. Users u1 u2 u3 u5 of 4 → 1.0. Sessions: cart s1 s2 s3 s8
        // ∪ checkout s1 ... s7 = 8; calls in sessions 6 + 7 = 13 → depth 1.625.
        // Value: cart 0 + 155, checkout 550 + 180 = 885. Cost 10 h × 100 = 1000.
        // Score 1.0 × 1.625 × 885 / 1000 = 1.438 > 0.8 → high.
        let f = &a.features[0];
        assert_eq!(f.endpoints, ["POST /api/cart", "POST /api/checkout"]);
        assert_eq!(f.users, 4);
        assert_close_opt(f.adoption, Some(1.0));
        assert_close_opt(f.engagement_depth, Some(13.0 / 8.0));
        assert_close(f.value, 885.0);
        assert_close(f.development_cost, 1000.0);
        assert_close_opt(f.score, Some(1.625 * 885.0 / 1000.0));
        assert_eq!(f.recommendation, "high");
        // Return 0.885 per day → × 365 a year.
        assert_close_opt(f.expected_return, Some(0.885));
        assert_close_opt(f.expected_return_per_year, Some(0.885 * 365.0));

        // discovery: search + recommendations. Users 4 of 4; sessions s1 s2 s4 s5 s6 s8 ∪ s3 = 7,
        // calls 8 + 1 = 9 → 9/7; value 135 + 100 = 235; cost 500.
        // Score 9/7 × 235 / 500 = 0.604 → medium.
        let f = &a.features[1];
        assert_eq!(f.endpoints, ["GET /api/recommendations", "GET /api/search"]);
        assert_close_opt(f.engagement_depth, Some(9.0 / 7.0));
        assert_close(f.value, 235.0);
        assert_close_opt(f.score, Some(9.0 / 7.0 * 235.0 / 500.0));
        assert_eq!(f.recommendation, "medium");

        // exports: no matching endpoint → adoption 0, depth undefined → no score → low.
        let f = &a.features[2];
        assert!(f.endpoints.is_empty());
        assert_close_opt(f.adoption, Some(0.0));
        assert_eq!(f.engagement_depth, None);
        assert_eq!(f.score, None);
        assert_eq!(f.recommendation, "low");
        assert_close_opt(f.expected_return, Some(0.0));
    });
}

#[test]
fn answers_survive_persist() {
    // Every answer, exactly equal (not just close) before and after the buffers go to Parquet.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &dataset(), NOW);
    let config = config();
    let all = |insights: &Insights| {
        let q = day();
        let by_plan = with_by(day(), Dim::Plan);
        serde_json::json!({
            "impact": insights.impact(&store, &q, &config).unwrap(),
            "impact_by_plan": insights.impact(&store, &by_plan, &config).unwrap(),
            "errors": insights.errors(&store, &q, &config).unwrap(),
            "errors_by_plan": insights.errors(&store, &by_plan, &config).unwrap(),
            "integrations": insights.integrations(&store, &q, &config).unwrap(),
            "gaps": insights.gaps(&store, &by_plan, &config).unwrap(),
            "latency": insights.latency_conversion(&store, &by_plan, &config, &latency_spec()).unwrap(),
            "scorecard": insights.scorecard(&store, &q, &config).unwrap(),
            "priority": insights.priority(&store, &q, &config).unwrap(),
        })
    };
    let before = all(&Insights::default());
    persist(&store, NOW);
    assert_eq!(all(&Insights::default()), before);
    // Reopening the store reads the Parquet files only.
    drop(store);
    let store = EmbeddedStore::open(valuetrace_store::StoreOptions::new(dir.path()), NOW).unwrap();
    let q = day();
    assert_eq!(
        serde_json::to_value(Insights::default().impact(&store, &q, &config).unwrap()).unwrap(),
        before["impact"]
    );
}
