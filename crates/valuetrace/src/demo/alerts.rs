//! The demo shop's metric catalog and alert rules: the seed's business alerts (conversion rate
//! below 94% for 15 minutes, adoption vs yesterday, traffic vs the same hour of the last 7 days,
//! payments vs their webhooks) plus an error-ratio rule and a checkout availability SLO, so the
//! live error burst the demo scripts fires and resolves within minutes.
//!
//! Notifications go to a webhook channel in dry-run mode: rendered and logged, not sent (the
//! demo has no receiver); the demo prints each alert change it sees.

use valuetrace_alerts::{AlertsConfig, MetricDef};

const CATALOG: &str = r#"
[[metrics]]
name = "payment_conversion_rate_percent"
description = "Payments that end in a purchase"
kind = "ratio"
numerator = { outcome = "purchase" }
denominator = { route = "/api/payments", method = "POST" }
scale = 100
unit = "percent"
owner = "payments"
criticality = "high"
retention = "business_critical"
channels = ["payments-alerts"]
docs = "https://wiki.example.com/metrics/conversion-rate"

[[metrics]]
name = "feature_usage_total"
description = "Calls of the recommendation features"
kind = "count"
select = { route = "/api/recommendations*" }
unit = "calls"
owner = "product"
criticality = "medium"
channels = ["product-metrics"]
labels = ["route", "method"]

[[metrics]]
name = "payment_initiated_total"
kind = "count"
select = { route = "/api/payments", method = "POST", status = "success" }
unit = "calls"
owner = "payments"
criticality = "high"
retention = "business_critical"

[[metrics]]
name = "payment_webhook_received_total"
kind = "count"
select = { route = "/api/webhooks/*", method = "POST" }
unit = "calls"
owner = "payments"
criticality = "high"
retention = "business_critical"
labels = ["route"]

[[metrics]]
name = "payment_webhook_missing_percent"
description = "Payments whose provider webhook never came (silent failures)"
kind = "gap"
initiated = { route = "/api/payments", method = "POST", status = "success" }
confirmed = { route = "/api/webhooks/*", method = "POST" }
confirm_within = "10m"
window = "1h"
scale = 100
unit = "percent"
owner = "payments"
criticality = "high"
channels = ["payments-alerts"]

[[metrics]]
name = "checkout_error_ratio"
description = "Share of checkout and payment calls answered 5xx"
kind = "ratio"
numerator = { service = "checkout", status = "5xx" }
denominator = { service = "checkout" }
unit = "ratio"
owner = "payments"
criticality = "critical"
channels = ["payments-alerts"]

[[metrics]]
name = "http_traffic_per_second"
description = "Inbound API calls per second"
kind = "rate"
select = { direction = "inbound" }
unit = "per_second"
owner = "platform"
channels = ["platform-alerts"]

[[metrics]]
name = "checkout_latency_p95_seconds"
kind = "latency_quantile"
quantile = 0.95
select = { route = "/api/checkout", method = "POST" }
unit = "seconds"
owner = "payments"
retention = "technical"

[[metrics]]
name = "api_request_duration_seconds"
kind = "latency"
select = { direction = "inbound" }
unit = "seconds"
owner = "platform"
retention = "technical"
labels = ["service"]
"#;

const ALERTS: &str = r#"
evaluation_interval = "30s"
renotify_interval = "4h"
dry_run = true

[[channels]]
name = "payments-alerts"
kind = "webhook"
url = "http://127.0.0.1:9/payments"
secret = "demo-secret"
allow_private_targets = true

[[channels]]
name = "product-metrics"
kind = "slack"
url = "http://127.0.0.1:9/slack"
allow_private_targets = true

[[channels]]
name = "platform-alerts"
kind = "alertmanager"
url = "http://127.0.0.1:9/alertmanager"
allow_private_targets = true

[[rules]]
name = "CheckoutErrorBurst"
kind = "threshold"
metric = "checkout_error_ratio"
op = ">"
threshold = 0.2
window = "10m"
for = "1m"
min_volume = 5
severity = "critical"
summary = "Checkout answers 5xx to more than 20% of calls"

[[rules]]
name = "ConversionRateDegrade"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 94
window = "15m"
for = "15m"
min_volume = 20
severity = "critical"
summary = "Payment conversion rate below SLO"
runbook = "https://wiki.example.com/runbooks/conversion-rate"

[[rules]]
name = "FeatureAdoptionAnomaly"
kind = "ratio_to_yesterday"
metric = "feature_usage_total"
below = 0.7
window = "1h"
for = "30m"
min_volume = 100
severity = "warning"
summary = "Recommendations used much less than yesterday"

[[rules]]
name = "TrafficAnomalyDetection"
kind = "seasonal"
metric = "http_traffic_per_second"
window = "10m"
band = [0.5, 2.0]
days = 7
robust = true
for = "10m"
min_volume = 200
severity = "warning"
summary = "Traffic unlike the same hour of the last 7 days"

[[rules]]
name = "SilentPaymentFailures"
kind = "threshold"
metric = "payment_webhook_missing_percent"
op = ">"
threshold = 10
window = "1h"
for = "15m"
min_volume = 20
severity = "critical"
summary = "Payments without a provider webhook"

[[rules]]
name = "CheckoutAvailability"
kind = "burn_rate"
select = { service = "checkout" }
sli = "availability"
objective = 99.0
per_route = true
min_volume = 50
channels = ["payments-alerts"]
group = "payments"
"#;

#[derive(serde::Deserialize)]
struct Catalog {
    metrics: Vec<MetricDef>,
}

/// The demo's catalog and alerts (checked by a test, and by the server at start).
pub fn demo_alerts() -> (Vec<MetricDef>, AlertsConfig) {
    let catalog: Catalog = toml::from_str(CATALOG).expect("the demo catalog is valid TOML");
    let alerts: AlertsConfig = toml::from_str(ALERTS).expect("the demo alerts are valid TOML");
    (catalog.metrics, alerts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_catalog_and_rules_pass_every_check() {
        let (metrics, alerts) = super::demo_alerts();
        let built = valuetrace_alerts::ProjectAlerts::build(&metrics, &alerts, "demo");
        assert!(built.is_ok(), "{:#?}", built.err());
        let built = built.unwrap_or_default();
        assert_eq!(built.rules.len(), 6);
        for seed in [
            "payment_conversion_rate_percent",
            "feature_usage_total",
            "payment_webhook_received_total",
            "payment_initiated_total",
        ] {
            assert!(built.catalog.get(seed).is_some(), "{seed}");
        }
    }

    use crate::demo::traffic::{Generator, TrafficConfig};
    use valuetrace_alerts::fake_source::FakeSource;
    use valuetrace_alerts::source::EndpointLabels;
    use valuetrace_alerts::state::Phase;
    use valuetrace_alerts::{Engine, ProjectAlerts};

    const MINUTE: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    /// Runs the demo's live phase the way `valuetrace demo` does (a day of history, then the
    /// live incident scheduled from the end of it, traffic pulled every 2 s) and evaluates the
    /// demo's `CheckoutErrorBurst` rule each minute over what was sent. Returns its transitions.
    fn checkout_alert_during_the_live_incident(history_end: i64) -> Vec<(i64, Phase)> {
        let mut generator = Generator::new(TrafficConfig::new(42, history_end - DAY, history_end));
        let _history = generator.next_until(history_end);
        let live_start = history_end + 20_000; // the summary printed after the backfill
        let (_, burst) = generator.schedule_live_incident(
            (live_start + 5 * MINUTE, live_start + 30 * MINUTE),
            (live_start + 7 * MINUTE, live_start + 19 * MINUTE),
        );
        assert_eq!(burst.start_ms, live_start + 7 * MINUTE);
        let mut source = FakeSource::default();
        let mut now = live_start;
        while now < live_start + 45 * MINUTE {
            now += 2_000;
            for event in generator.next_until(now) {
                if event["type"] != "api_call" {
                    continue;
                }
                let text = |field: &str| event[field].as_str().unwrap_or_default().to_owned();
                let labels = EndpointLabels {
                    route: text("route"),
                    method: text("method"),
                    service: text("service"),
                    provider: text("provider"),
                    direction: text("direction"),
                };
                let status = event["status"].as_u64().unwrap_or(0) as u16;
                let at = event["timestamp"].as_i64().unwrap_or(0);
                source.add_timed_calls(at - at.rem_euclid(MINUTE), &labels, status, 50.0, 1);
            }
        }
        let (metrics, alerts) = super::demo_alerts();
        let mut project = ProjectAlerts::build(&metrics, &alerts, "demo").expect("valid");
        project
            .rules
            .retain(|rule| rule.def.name == "CheckoutErrorBurst");
        assert_eq!(project.rules.len(), 1);
        let mut engine = Engine::in_memory();
        let mut at = live_start;
        while at <= live_start + 45 * MINUTE {
            let evaluation = engine.evaluate(&source, &project, "demo", at);
            assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
            at += MINUTE;
        }
        engine
            .state
            .history
            .iter()
            .filter(|t| matches!(t.to, Phase::Firing | Phase::Resolved))
            .map(|t| ((t.at - live_start) / MINUTE, t.to))
            .collect()
    }

    #[test]
    fn the_live_incident_fires_and_resolves_the_checkout_alert_at_a_busy_hour() {
        // Thursday 2026-12-03 18:00 UTC, near the evening peak.
        let transitions = checkout_alert_during_the_live_incident(1_796_320_800_000);
        assert_fires_then_resolves(&transitions);
    }

    #[test]
    fn the_live_incident_fires_and_resolves_the_checkout_alert_in_the_night() {
        // Tuesday 2026-12-08 03:30 UTC, the quietest hour.
        let transitions = checkout_alert_during_the_live_incident(1_796_700_600_000);
        assert_fires_then_resolves(&transitions);
    }

    /// Fires once, a few minutes into the failures (which run from minute 7 to 19), and
    /// resolves within ten minutes after they end.
    fn assert_fires_then_resolves(transitions: &[(i64, Phase)]) {
        assert_eq!(transitions.len(), 2, "{transitions:?}");
        let ((fired, first), (resolved, second)) = (transitions[0], transitions[1]);
        assert_eq!(
            (first, second),
            (Phase::Firing, Phase::Resolved),
            "{transitions:?}"
        );
        assert!((8..=14).contains(&fired), "fired at minute {fired}");
        assert!(
            (19..=29).contains(&resolved),
            "resolved at minute {resolved}"
        );
    }
}
