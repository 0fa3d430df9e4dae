//! Issue 18, point 3: money in alerts. A value-sum metric over the embedded store is in the
//! project's reporting currency (other currencies by their rate, a currency without a rate left
//! out, never summed as if it were the same money), and every notification names the currency.

use crate::{MINUTE, T0, project};
use std::collections::HashMap;
use std::sync::Arc;
use valuetrace_alerts::MetricSource;
use valuetrace_alerts::measure::measure;
use valuetrace_alerts::store_source::StoreSource;
use valuetrace_alerts::test_send::render_test;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_model::{Event, Outcome};
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

fn purchase(id: &str, at: i64, value: f64, currency: &str) -> StoredEvent {
    StoredEvent {
        event: Event::Outcome(Outcome {
            schema_version: 1,
            event_id: id.into(),
            timestamp: at,
            name: "purchase".into(),
            value: Some(value),
            currency: Some(currency.into()),
            ..Default::default()
        }),
        received_at: at,
        skew_ms: 0,
    }
}

const CONFIG: &str = r#"
[[metrics]]
name = "purchase_value_total"
kind = "value_sum"
select = { outcome = "purchase" }
unit = "currency"
owner = "payments"
criticality = "high"
channels = ["slack", "webhook", "pagerduty", "alertmanager"]

[alerts]
dashboard_url = "https://valuetrace.example.com/"

[[alerts.channels]]
name = "slack"
kind = "slack"
url = "https://hooks.example.com/slack"

[[alerts.channels]]
name = "webhook"
kind = "webhook"
url = "https://hooks.example.com/webhook"
secret = "s3cret"

[[alerts.channels]]
name = "pagerduty"
kind = "pagerduty"
routing_key = "R0UT1NGKEY"

[[alerts.channels]]
name = "alertmanager"
kind = "alertmanager"
url = "https://alertmanager.example.com"

[[alerts.rules]]
name = "RevenueDrop"
kind = "threshold"
metric = "purchase_value_total"
op = "<"
threshold = 1000
window = "1h"
severity = "critical"
summary = "Revenue below 1,000 in the last hour"
"#;

#[test]
fn value_sums_are_in_the_reporting_currency_and_notifications_name_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = T0 + 60 * MINUTE;
    let store = Arc::new(EmbeddedStore::open(StoreOptions::new(dir.path()), now).expect("store"));
    store
        .append(
            "shop",
            vec![
                purchase("p1", T0 + MINUTE, 300.0, "EUR"),
                purchase("p2", T0 + 2 * MINUTE, 200.0, "EUR"),
                purchase("p3", T0 + 3 * MINUTE, 100.0, "USD"),
                // No rate for GBP: left out, never added as if it were euros.
                purchase("p4", T0 + 4 * MINUTE, 5_000.0, "GBP"),
            ],
        )
        .expect("append");
    let analysis = AnalysisConfig {
        reporting_currency: Some("EUR".into()),
        currency_rates: [("USD".to_owned(), 0.9)].into_iter().collect(),
        ..AnalysisConfig::default()
    };
    let source = StoreSource {
        store,
        insights: Arc::new(Insights::new(1 << 26)),
        analysis: HashMap::from([("shop".to_owned(), Arc::new(analysis))]),
        now,
    };
    let stats = source
        .outcomes("shop", "purchase", T0, now)
        .expect("outcomes");
    assert_eq!(stats.currency.as_deref(), Some("EUR"));
    assert!(
        (stats.value_sum - 590.0).abs() < 1e-9,
        "{}",
        stats.value_sum
    );

    let alerts = project(CONFIG);
    let metric = alerts.catalog.get("purchase_value_total").expect("metric");
    let measured = measure(&source, "shop", metric, T0, now).expect("measure");
    assert_eq!(measured.currency.as_deref(), Some("EUR"));

    let payloads =
        render_test(&source, &alerts, "shop", "RevenueDrop", None, now).expect("payloads");
    let body = |kind: &str| {
        payloads
            .iter()
            .find(|p| p.channel == kind)
            .map(|p| p.rendered.body.clone())
            .unwrap_or_else(|| panic!("a {kind} payload"))
    };
    assert!(body("slack").contains("590.0 EUR"), "{}", body("slack"));
    let webhook: serde_json::Value = serde_json::from_str(&body("webhook")).unwrap();
    assert_eq!(webhook["alerts"][0]["currency"], "EUR");
    assert_eq!(webhook["alerts"][0]["value"], 590.0);
    let pagerduty: serde_json::Value = serde_json::from_str(&body("pagerduty")).unwrap();
    assert_eq!(pagerduty["payload"]["custom_details"]["currency"], "EUR");
    assert!(
        pagerduty["payload"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("590.0 EUR")),
        "{pagerduty}"
    );
    let alertmanager: serde_json::Value = serde_json::from_str(&body("alertmanager")).unwrap();
    assert_eq!(alertmanager[0]["annotations"]["currency"], "EUR");
}
