//! Each rule type with an injected clock: fires only after `for`, resolves, stays quiet under
//! normal seasonality and fires on an injected dip; burn rates match the workbook.

use crate::{DAY, HOUR, MINUTE, T0, project};
use valuetrace_alerts::Engine;
use valuetrace_alerts::config::ProjectAlerts;
use valuetrace_alerts::fake_source::FakeSource;
use valuetrace_alerts::state::{Change, Phase};

/// Evaluates every minute in `[from, to)`; returns (minute, rule, change) of every notice.
fn run(
    engine: &mut Engine,
    source: &FakeSource,
    alerts: &ProjectAlerts,
    from: i64,
    to: i64,
    step: i64,
) -> Vec<(i64, String, Change)> {
    let mut changes = Vec::new();
    let mut now = from;
    while now < to {
        let report = engine.evaluate(source, alerts, "shop", now);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        changes.extend(report.notices.into_iter().map(|n| (now, n.rule, n.change)));
        now += step;
    }
    changes
}

const CONVERSION: &str = r#"
[[metrics]]
name = "payment_conversion_rate_percent"
description = "Checkouts that end in a purchase"
kind = "ratio"
numerator = { outcome = "purchase" }
denominator = { route = "/api/checkout", method = "POST" }
scale = 100
unit = "percent"
owner = "payments"
criticality = "high"

[[alerts.rules]]
name = "ConversionRateDegrade"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 94
window = "5m"
for = "15m"
min_volume = 20
severity = "critical"
"#;

#[test]
fn threshold_fires_after_for_and_resolves() {
    let alerts = project(CONVERSION);
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    let dip = T0 + 2 * HOUR;
    for minute in 0..240 {
        let at = T0 + minute * MINUTE;
        let in_dip = (dip..dip + 30 * MINUTE).contains(&at);
        source.add_calls(at, &checkout, 200, 100);
        source.add_outcomes(at, "purchase", if in_dip { 90 } else { 97 });
    }
    let mut engine = Engine::in_memory();
    let changes = run(
        &mut engine,
        &source,
        &alerts,
        T0 + 10 * MINUTE,
        T0 + 4 * HOUR,
        MINUTE,
    );
    // The 5-minute window drops below 94% at dip + 3 min (92.8%); 15 minutes later it fires.
    // The window climbs back to 94.2% at the dip's end + 3 min: resolved.
    assert_eq!(
        changes,
        vec![
            (
                dip + 18 * MINUTE,
                "ConversionRateDegrade".into(),
                Change::Fired
            ),
            (
                dip + 33 * MINUTE,
                "ConversionRateDegrade".into(),
                Change::Resolved
            ),
        ]
    );
    let history: Vec<(Phase, Phase)> = engine
        .state
        .history
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(
        history,
        vec![
            (Phase::Inactive, Phase::Pending),
            (Phase::Pending, Phase::Firing),
            (Phase::Firing, Phase::Resolved)
        ]
    );
}

#[test]
fn threshold_needs_min_volume() {
    let alerts = project(CONVERSION);
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    // A quiet night: 2 checkouts a minute and no purchase at all — 0%, but on 10 checkouts.
    for minute in 0..120 {
        source.add_calls(T0 + minute * MINUTE, &checkout, 200, 2);
    }
    let mut engine = Engine::in_memory();
    assert!(
        run(
            &mut engine,
            &source,
            &alerts,
            T0 + 5 * MINUTE,
            T0 + 2 * HOUR,
            MINUTE
        )
        .is_empty()
    );
    let state = engine.state.states.values().next().expect("one series");
    assert!(
        state
            .skipped
            .as_deref()
            .unwrap_or_default()
            .contains("min_volume"),
        "{state:?}"
    );
}

const ADOPTION: &str = r#"
[[metrics]]
name = "feature_usage_total"
kind = "count"
select = { route = "/api/recommendations*" }
unit = "calls"
owner = "product"

[[alerts.rules]]
name = "FeatureAdoptionAnomaly"
kind = "ratio_to_yesterday"
metric = "feature_usage_total"
below = 0.7
window = "1h"
for = "30m"
min_volume = 100
"#;

#[test]
fn ratio_to_yesterday_fires_after_for_and_resolves() {
    let alerts = project(ADOPTION);
    let reco = FakeSource::endpoint("GET", "/api/recommendations/{id}");
    let mut source = FakeSource::default();
    let drop = T0 + DAY + 10 * HOUR;
    for minute in 0..(2 * 24 * 60) {
        let at = T0 + minute * MINUTE;
        let dropped = (drop..drop + 2 * HOUR).contains(&at);
        source.add_calls(at, &reco, 200, if dropped { 50 } else { 100 });
    }
    let mut engine = Engine::in_memory();
    let changes = run(
        &mut engine,
        &source,
        &alerts,
        T0 + DAY + 8 * HOUR,
        T0 + DAY + 16 * HOUR,
        MINUTE,
    );
    // Today ÷ yesterday over 1 h goes below 0.7 once 37 minutes of the hour are halved
    // (23×100 + 37×50 = 4150 < 4200); it fires 30 minutes later. After the 2-hour drop the
    // ratio is above 0.7 again 24 minutes in (36×50 + 24×100 = 4200, not below).
    assert_eq!(
        changes.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
        vec![
            (drop + 67 * MINUTE, Change::Fired),
            (drop + 2 * HOUR + 24 * MINUTE, Change::Resolved)
        ]
    );
}

const TRAFFIC: &str = r#"
[[metrics]]
name = "http_traffic_per_second"
kind = "rate"
select = {}
window = "5m"
unit = "per_second"
owner = "platform"

[[alerts.rules]]
name = "TrafficAnomaly"
kind = "seasonal"
metric = "http_traffic_per_second"
window = "5m"
band = [0.5, 2.0]
days = 7
for = "10m"
min_volume = 100
"#;

/// Diurnal traffic with a day-to-day wobble: quiet nights (a few calls a minute, sometimes
/// none), busy afternoons, and a Saturday twice as busy.
fn seasonal_traffic(days: i64, dip: Option<(i64, i64)>) -> FakeSource {
    let mut source = FakeSource::default();
    let home = FakeSource::endpoint("GET", "/");
    for minute in 0..days * 24 * 60 {
        let at = T0 + minute * MINUTE;
        let hour = (minute / 60) % 24;
        let day = minute / (24 * 60);
        let base = if (1..6).contains(&hour) {
            (minute * 7 % 5) as f64
        } else {
            40.0 + 60.0
                * ((hour as f64 - 6.0) / 18.0 * std::f64::consts::PI)
                    .sin()
                    .abs()
        };
        let wobble = 1.0 + 0.15 * (((day * 31 + minute * 17) % 13) as f64 / 13.0 - 0.5);
        let weekend = if day == 5 { 2.0 } else { 1.0 };
        let mut count = (base * wobble * weekend).round() as u64;
        if dip.is_some_and(|(from, to)| (from..to).contains(&at)) {
            count /= 5;
        }
        source.add_calls(at, &home, 200, count);
    }
    source
}

#[test]
fn seasonal_is_quiet_under_normal_seasonality_and_fires_on_a_dip() {
    for robust in [false, true] {
        let text = if robust {
            format!("{TRAFFIC}robust = true\n")
        } else {
            TRAFFIC.to_owned()
        };
        let alerts = project(&text);
        let day8 = T0 + 8 * DAY;
        // Day 8 (a Tuesday after a busy Saturday) with nothing unusual: silent all day, nights
        // included (their volume is below min_volume, so wild ratios are not judged).
        let normal = seasonal_traffic(9, None);
        let mut engine = Engine::in_memory();
        let changes = run(&mut engine, &normal, &alerts, day8, day8 + DAY, 5 * MINUTE);
        assert!(changes.is_empty(), "robust={robust}: {changes:?}");
        // The same day with traffic down to a fifth from 14:00 to 14:40.
        let dip = (day8 + 14 * HOUR, day8 + 14 * HOUR + 40 * MINUTE);
        let dipped = seasonal_traffic(9, Some(dip));
        let mut engine = Engine::in_memory();
        let changes = run(
            &mut engine,
            &dipped,
            &alerts,
            day8 + 13 * HOUR,
            day8 + 16 * HOUR,
            MINUTE,
        );
        let kinds: Vec<Change> = changes.iter().map(|c| c.2).collect();
        assert_eq!(
            kinds,
            vec![Change::Fired, Change::Resolved],
            "robust={robust}"
        );
        // Below half of the baseline once 3 or 4 of the 5 minutes are dipped (depending on the
        // baseline); 10 minutes later it fires.
        let after = changes[0].0 - dip.0;
        assert!(
            (13 * MINUTE..=14 * MINUTE).contains(&after),
            "robust={robust}: {changes:?}"
        );
        assert!(
            changes[1].0 > dip.1 && changes[1].0 <= dip.1 + 5 * MINUTE,
            "robust={robust}: {changes:?}"
        );
    }
}

const SLO: &str = r#"
[[alerts.rules]]
name = "CheckoutAvailability"
kind = "burn_rate"
select = { route = "/api/checkout" }
sli = "availability"
objective = 99.9
per_route = true
"#;

#[test]
fn burn_rate_follows_the_workbook() {
    let alerts = project(SLO);
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    // 1000 calls a minute for three days; from `start`, 2% errors (burn rate 20) for an hour.
    let start = T0 + 3 * DAY;
    for minute in 0..(3 * 24 * 60 + 180) {
        let at = T0 + minute * MINUTE;
        let bad = if (start..start + HOUR).contains(&at) {
            20
        } else {
            0
        };
        source.add_calls(at, &checkout, 200, 1000 - bad);
        source.add_calls(at, &checkout, 503, bad);
    }
    let mut engine = Engine::in_memory();
    let changes = run(
        &mut engine,
        &source,
        &alerts,
        start - 10 * MINUTE,
        start + 3 * HOUR,
        MINUTE,
    );
    // 1 h / 5 m at 14.4: the hour's error share reaches 1.44% after 43.2 minutes of 2% errors,
    // so at the 44th minute; the 5-minute window drops below 1.44% two minutes after the
    // errors stop (3 of 5 minutes at 2% = 1.2%). The 6 h / 30 m pair (0.6%) would need 108
    // minutes of 2%: it never fires.
    assert_eq!(
        changes.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
        vec![
            (start + 44 * MINUTE, Change::Fired),
            (start + HOUR + 2 * MINUTE, Change::Resolved)
        ]
    );
    let fired = engine
        .state
        .history
        .iter()
        .find(|t| t.to == Phase::Firing)
        .expect("fired");
    assert_eq!(
        fired.labels.get("burn_window").map(String::as_str),
        Some("1h/5m")
    );
    assert_eq!(
        fired.labels.get("route").map(String::as_str),
        Some("/api/checkout")
    );
}

#[test]
fn latency_burn_rate_counts_slow_calls() {
    let alerts = project(
        r#"
[[alerts.rules]]
name = "SearchLatency"
kind = "burn_rate"
select = { route = "/api/search" }
sli = "latency"
latency_threshold = "300ms"
objective = 99.0
"#,
    );
    let search = FakeSource::endpoint("GET", "/api/search");
    let mut source = FakeSource::default();
    // Three days of fast searches, then 30% of them take 900 ms.
    let start = T0 + 3 * DAY;
    for minute in 0..(3 * 24 * 60 + 60) {
        let at = T0 + minute * MINUTE;
        let slow = if at >= start { 30 } else { 0 };
        source.add_timed_calls(at, &search, 200, 80.0, 100 - slow);
        source.add_timed_calls(at, &search, 200, 900.0, slow);
    }
    let mut engine = Engine::in_memory();
    let changes = run(
        &mut engine,
        &source,
        &alerts,
        start - 10 * MINUTE,
        start + HOUR,
        MINUTE,
    );
    // 30% slow against a 1% budget is burn 30: the hour reaches 14.4 after 28.8 minutes; the
    // 6 h pair (6%) would need 72 minutes.
    assert_eq!(
        changes.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
        vec![(start + 29 * MINUTE, Change::Fired)]
    );
}

#[test]
fn reminders_and_silences() {
    let mut alerts = project(CONVERSION);
    alerts.renotify_ms = HOUR;
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    for minute in 0..600 {
        source.add_calls(T0 + minute * MINUTE, &checkout, 200, 100);
        source.add_outcomes(T0 + minute * MINUTE, "purchase", 80);
    }
    let mut engine = Engine::in_memory();
    let changes = run(
        &mut engine,
        &source,
        &alerts,
        T0 + 5 * MINUTE,
        T0 + 3 * HOUR,
        MINUTE,
    );
    let kinds: Vec<(i64, Change)> = changes.iter().map(|c| (c.0, c.2)).collect();
    let fired = T0 + 20 * MINUTE;
    assert_eq!(
        kinds,
        vec![
            (fired, Change::Fired),
            (fired + HOUR, Change::Reminder),
            (fired + 2 * HOUR, Change::Reminder)
        ]
    );
    engine.silence(
        valuetrace_alerts::state::Silence {
            id: String::new(),
            rule: Some("ConversionRateDegrade".into()),
            matchers: Default::default(),
            starts_at: 0,
            ends_at: T0 + 5 * HOUR,
            created_by: "test".into(),
            comment: "known: provider maintenance".into(),
        },
        T0 + 3 * HOUR,
    );
    let silenced = run(
        &mut engine,
        &source,
        &alerts,
        T0 + 3 * HOUR,
        T0 + 5 * HOUR,
        MINUTE,
    );
    assert!(silenced.is_empty(), "{silenced:?}");
    let after = run(
        &mut engine,
        &source,
        &alerts,
        T0 + 5 * HOUR,
        T0 + 5 * HOUR + MINUTE,
        MINUTE,
    );
    assert_eq!(
        after.iter().map(|c| c.2).collect::<Vec<_>>(),
        vec![Change::Reminder],
        "notified once the silence ends"
    );
}

#[test]
fn bad_rules_name_the_field() {
    let found = crate::problems(
        r#"
[[metrics]]
name = "checkout_requests_total"
kind = "count"
select = { route = "/api/checkout" }
unit = "requests"
owner = "payments"
channels = ["nowhere"]

[[alerts.rules]]
name = "A"
kind = "threshold"
metric = "checkout_requests_total"
op = "<"
window = "five minutes"

[[alerts.rules]]
name = "B"
kind = "seasonal"
metric = "missing_metric_total"
band = [2.0, 0.5]

[[alerts.rules]]
name = "C"
kind = "burn_rate"
sli = "latency"
objective = 100
"#,
    )
    .join("\n");
    for expected in [
        "metrics (checkout_requests_total).channels: `nowhere`",
        "rules[0] (A).window: `five minutes` is not a duration",
        "rules[0] (A).threshold: required",
        "rules[1] (B).metric: `missing_metric_total` is not in",
        "rules[1] (B).band:",
        "rules[2] (C).select: required",
        "rules[2] (C).objective:",
        "rules[2] (C).latency_threshold: required",
    ] {
        assert!(
            found.contains(expected),
            "missing `{expected}` in:\n{found}"
        );
    }
}
