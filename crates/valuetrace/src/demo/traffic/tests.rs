//! Tests of the traffic generator: determinism, volume, wire format, incidents.

use super::cat::{DAY_MS, HOUR_MS};
use super::*;
use std::collections::{BTreeSet, HashSet};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn run(cfg: &TrafficConfig, step: i64) -> Vec<Vec<Value>> {
    let mut g = Generator::new(cfg.clone());
    let chunks = (cfg.end_ms - cfg.start_ms + step - 1) / step;
    (1..=chunks)
        .map(|k| g.next_until((cfg.start_ms + k * step).min(cfg.end_ms)))
        .collect()
}

fn ts(e: &Value) -> i64 {
    e["timestamp"].as_i64().expect("timestamp")
}

#[test]
fn deterministic_sorted_and_independent_of_chunking() {
    let cfg = TrafficConfig::new(7, T0, T0 + 8 * HOUR_MS);
    let a = run(&cfg, HOUR_MS);
    assert_eq!(
        serde_json::to_string(&a).ok(),
        serde_json::to_string(&run(&cfg, HOUR_MS)).ok()
    );
    assert_eq!(a.concat(), run(&cfg, 3 * HOUR_MS).concat());
    assert_ne!(
        a.concat(),
        run(&TrafficConfig { seed: 8, ..cfg }, HOUR_MS).concat()
    );
    for (w, chunk) in (0..).zip(&a) {
        assert!(
            chunk
                .iter()
                .all(|e| ts(e) < T0 + (w + 1) * HOUR_MS && ts(e) >= T0 + w * HOUR_MS - MAX_SKEW_MS)
        );
    }
    assert!(a.concat().windows(2).all(|p| ts(&p[0]) <= ts(&p[1])));
}

#[test]
fn one_day_has_volume_routes_and_wire_format() {
    let events = run(&TrafficConfig::new(42, T0, T0 + DAY_MS), HOUR_MS).concat();
    assert!(
        (40_000..=70_000).contains(&events.len()),
        "{} events/day",
        events.len()
    );
    let (mut routes, mut ids, mut purchases) = (BTreeSet::new(), HashSet::new(), 0);
    for e in &events {
        let o = e.as_object().expect("object");
        assert!(
            o.values().all(|v| !v.is_null()) && o["schema_version"] == 1,
            "{e}"
        );
        assert!(ids.insert(o["event_id"].as_str().expect("event_id").to_owned()));
        assert!(o["sent_at"].as_i64().expect("sent_at") >= ts(e));
        let has_value = e["value"].as_f64().is_some_and(|v| v > 0.0) && e["currency"] == "EUR";
        if o["type"] == "outcome" {
            assert!(
                o["user_id"].is_string()
                    && o["session_id"].is_string()
                    && o["properties"].is_object()
            );
            purchases += usize::from(o["name"] == "purchase");
            assert_eq!(o["name"] == "purchase", has_value, "{e}");
            continue;
        }
        let status = o["status"].as_u64().expect("status");
        assert!(
            o["type"] == "api_call" && (100..600).contains(&status),
            "{e}"
        );
        assert_eq!(status >= 400, o.contains_key("error_type"), "{e}");
        assert!(
            o["latency_ms"]
                .as_f64()
                .is_some_and(|l| l.is_finite() && l >= 0.0)
        );
        assert!(o["request_bytes"].is_u64() && o["response_bytes"].is_u64());
        assert!(
            ["service", "method", "sdk", "direction"]
                .iter()
                .all(|k| o[*k].is_string()),
            "{e}"
        );
        let route = o["route"].as_str().expect("route");
        let numeric = |seg: &str| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
        assert!(
            route.starts_with('/') && !route.split('/').any(numeric),
            "{route}"
        );
        assert_eq!(o["direction"] == "outbound", o.contains_key("provider"));
        let user_keys = [
            "user_id",
            "session_id",
            "plan",
            "segment",
            "experiments",
            "account_id",
        ];
        assert!(route != "/healthz" || user_keys.iter().all(|k| !o.contains_key(*k)));
        let full_user = e["experiments"]["reco_algo"].is_string()
            && user_keys.iter().all(|k| o.contains_key(*k));
        assert!(!o.contains_key("user_id") || full_user, "{e}");
        assert!(route != "/api/payments" || status != 201 || has_value);
        routes.insert((o["method"].to_string(), route.to_owned()));
    }
    assert!(
        route_count() >= 38 && routes.len() >= 38,
        "{} routes",
        routes.len()
    );
    assert!(purchases > 50, "{purchases} purchases");
}

#[test]
fn incidents_show_up_in_history() {
    let cfg = TrafficConfig {
        sessions_per_day: 2000,
        ..TrafficConfig::new(3, T0, T0 + 7 * DAY_MS + 5 * HOUR_MS)
    };
    let [burst, slow] = Generator::new(cfg.clone()).incidents()[..] else {
        panic!("expected two incidents")
    };
    let events = run(&cfg, 6 * HOUR_MS).concat();
    let during = |i: Incident, inside: bool| {
        events
            .iter()
            .filter(move |e| (i.start_ms..i.end_ms).contains(&ts(e)) == inside)
    };
    let failing = |inside: bool| {
        let svc = |e: &&Value| {
            matches!(e["service"].as_str(), Some("checkout" | "payments"))
                && e["direction"] == "inbound"
        };
        let calls: Vec<&Value> = during(burst, inside).filter(svc).collect();
        calls
            .iter()
            .filter(|e| e["status"].as_u64() >= Some(500))
            .count() as f64
            / calls.len().max(1) as f64
    };
    assert!(
        failing(true) > 0.15 && failing(false) < 0.05,
        "{} vs {}",
        failing(true),
        failing(false)
    );
    let search_median = |inside: bool| {
        let search = during(slow, inside).filter(|e| e["route"] == "/api/search");
        let mut l: Vec<f64> = search.filter_map(|e| e["latency_ms"].as_f64()).collect();
        l.sort_by(f64::total_cmp);
        l.get(l.len() / 2).copied().unwrap_or(0.0)
    };
    assert!(search_median(true) > 3.0 * search_median(false));
}

#[test]
fn the_live_burst_fails_checkout_calls_after_the_history() {
    let end = T0 + 2 * DAY_MS + 17 * HOUR_MS;
    let cfg = TrafficConfig::new(3, T0, end);
    let mut g = Generator::new(cfg.clone());
    let _history = g.next_until(end);
    let (_, burst) = g.schedule_live_incident(
        (end + 6 * 60_000, end + 40 * 60_000),
        (end + 8 * 60_000, end + 33 * 60_000),
    );
    let mut live = Vec::new();
    let mut t = end;
    while t < end + 40 * 60_000 {
        t += 2_000;
        live.extend(g.next_until(t));
    }
    let calls: Vec<&Value> = live
        .iter()
        .filter(|e| (burst.start_ms..burst.end_ms).contains(&ts(e)))
        .filter(|e| matches!(e["service"].as_str(), Some("checkout" | "payments")))
        .collect();
    let failed = calls
        .iter()
        .filter(|e| e["status"].as_u64() >= Some(500))
        .count();
    assert!(!calls.is_empty());
    assert!(
        failed as f64 > 0.3 * calls.len() as f64,
        "{failed} of {} checkout/payments calls failed during the live burst",
        calls.len()
    );
}
