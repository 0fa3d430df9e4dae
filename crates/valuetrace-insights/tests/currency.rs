//! Issue 18, point 3: money never sums different currencies. Values are converted to the
//! reporting currency (configured, else the most frequent one) with `currency_rates`; values in a
//! currency without a rate are left out of every sum and reported apart.

mod common;

use common::*;
use valuetrace_insights::money::UnconvertedValue;
use valuetrace_insights::{AnalysisConfig, Insights};
use valuetrace_model::{ApiCall, Event, Outcome};

fn purchase(i: i64, value: f64, currency: &str) -> Vec<Event> {
    let user = format!("u{i}");
    let call = ApiCall {
        currency: Some(currency.into()),
        ..call(T0 + i * MIN, "POST /api/payments", 200, 20.0)
            .user(&user)
            .value(value)
    };
    let outcome = Outcome {
        currency: Some(currency.into()),
        ..outcome(T0 + i * MIN + 1, "purchase")
            .user(&user)
            .value(value)
    };
    vec![Event::ApiCall(call), Event::Outcome(outcome)]
}

/// Three purchases of 100 EUR, one of 100 USD, one of 1000 JPY.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..3 {
        events.extend(purchase(i, 100.0, "EUR"));
    }
    events.extend(purchase(3, 100.0, "USD"));
    events.extend(purchase(4, 1000.0, "JPY"));
    events
}

fn answers(
    config: &AnalysisConfig,
    persisted: bool,
) -> (f64, f64, valuetrace_insights::money::MoneyNote) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with(dir.path(), &events(), T0 + DAY);
    if persisted {
        persist(&store, T0 + DAY);
    }
    let insights = Insights::default();
    let q = question(T0, T0 + HOUR, T0 + DAY);
    let impact = insights.impact(&store, &q, config).expect("impact");
    let direct: f64 = impact.rows.iter().map(|row| row.direct_value).sum();
    let money = insights.money(&store, &q, config).expect("money");
    (impact.attributed_outcome_value, direct, money)
}

#[test]
fn values_are_converted_and_currencies_without_a_rate_reported_apart() {
    let config = AnalysisConfig {
        currency_rates: [("USD".to_owned(), 0.9)].into(),
        ..AnalysisConfig::default()
    };
    for persisted in [false, true] {
        let (attributed, direct, money) = answers(&config, persisted);
        // EUR is the most frequent currency: 300 EUR + 100 USD × 0.9; the JPY never joins.
        assert_close(attributed, 390.0);
        assert_close(direct, 390.0);
        assert_eq!(money.currency.as_deref(), Some("EUR"));
        assert_eq!(
            money.unconverted,
            [UnconvertedValue {
                currency: "JPY".into(),
                events: 2,
                value: 2000.0
            }]
        );
    }
}

#[test]
fn the_configured_reporting_currency_wins_and_a_second_query_reuses_no_stale_conversion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with(dir.path(), &events(), T0 + DAY);
    let insights = Insights::default();
    let q = question(T0, T0 + HOUR, T0 + DAY);
    let usd = AnalysisConfig {
        reporting_currency: Some("USD".into()),
        currency_rates: [("EUR".to_owned(), 1.25), ("JPY".to_owned(), 0.01)].into(),
        ..AnalysisConfig::default()
    };
    let impact = insights.impact(&store, &q, &usd).expect("impact");
    assert_close(impact.attributed_outcome_value, 3.0 * 125.0 + 100.0 + 10.0);
    let money = insights.money(&store, &q, &usd).expect("money");
    assert_eq!(money.currency.as_deref(), Some("USD"));
    assert!(money.unconverted.is_empty());
    // The same cache asked with other settings converts afresh.
    let impact = insights
        .impact(&store, &q, &AnalysisConfig::default())
        .expect("impact");
    assert_close(impact.attributed_outcome_value, 300.0);
}
