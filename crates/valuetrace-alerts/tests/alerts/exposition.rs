//! The catalog as Prometheus text: promtool accepts it, and the cardinality guard holds with
//! 10 000 distinct route values.

use crate::{MINUTE, T0, project};
use std::io::Write;
use std::process::{Command, Stdio};
use valuetrace_alerts::collect::exposition;
use valuetrace_alerts::fake_source::FakeSource;

const CATALOG: &str = r#"
[[metrics]]
name = "api_requests_total"
description = "API calls by route"
kind = "count"
select = {}
unit = "requests"
owner = "platform"
labels = ["route", "method", "status_class"]

[[metrics]]
name = "payment_initiated_total"
kind = "count"
select = { outcome = "payment_initiated" }
unit = "events"
owner = "payments"

[[metrics]]
name = "payment_webhook_received_total"
kind = "count"
select = { outcome = "payment_webhook_received" }
unit = "events"
owner = "payments"

[[metrics]]
name = "payment_webhook_missing_percent"
description = "Payments whose provider webhook never came"
kind = "gap"
initiated = { outcome = "payment_initiated" }
confirmed = { outcome = "payment_webhook_received" }
confirm_within = "10m"
window = "1h"
scale = 100
unit = "percent"
owner = "payments"

[[metrics]]
name = "payment_conversion_rate_percent"
kind = "ratio"
numerator = { outcome = "purchase" }
denominator = { route = "/api/checkout", method = "POST" }
scale = 100
unit = "percent"
owner = "payments"

[[metrics]]
name = "api_error_ratio"
kind = "ratio"
numerator = { status = "5xx" }
denominator = {}
unit = "ratio"
owner = "platform"
labels = ["route"]

[[metrics]]
name = "api_request_duration_seconds"
kind = "latency"
select = {}
unit = "seconds"
owner = "platform"
labels = ["route"]

[[metrics]]
name = "checkout_latency_p95_seconds"
kind = "latency_quantile"
quantile = 0.95
select = { route = "/api/checkout" }
unit = "seconds"
owner = "payments"

[[metrics]]
name = "api_traffic_per_second"
kind = "rate"
select = {}
unit = "per_second"
owner = "platform"
labels = ["service"]
"#;

/// 10 000 distinct routes (one call each, an id pasted into the path by a careless client),
/// a few busy ones, checkouts and payment outcomes.
fn traffic() -> FakeSource {
    let mut source = FakeSource::default();
    let now = T0 + 60 * MINUTE;
    for i in 0..10_000 {
        let at = now - 1 - (i % 50) * 1000;
        source.add_timed_calls(
            at,
            &FakeSource::endpoint("GET", &format!("/api/orders/{i}")),
            200,
            20.0,
            1,
        );
    }
    for (i, route) in ["/api/products", "/api/cart", "/api/search", "/api/checkout"]
        .iter()
        .enumerate()
    {
        let method = if *route == "/api/checkout" {
            "POST"
        } else {
            "GET"
        };
        source.add_timed_calls(
            now - 30_000,
            &FakeSource::endpoint(method, route),
            200,
            40.0 * (i + 1) as f64,
            500,
        );
        source.add_timed_calls(
            now - 30_000,
            &FakeSource::endpoint(method, route),
            503,
            900.0,
            5,
        );
    }
    source.add_outcomes(now - 30 * MINUTE, "payment_initiated", 100);
    source.add_outcomes(now - 29 * MINUTE, "payment_webhook_received", 77);
    source.add_outcomes(now - 60_000, "purchase", 404);
    source
}

/// promtool's verdict on `text` (`None` when promtool is not installed and not required).
fn promtool(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if std::env::var_os("VALUETRACE_REQUIRE_PROMTOOL").is_none() => {
            eprintln!(
                "skipped: promtool not found ({error}); scripts/test installs it (Debian package prometheus)"
            );
            return None;
        }
        Err(error) => panic!("promtool is required: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), said))
}

#[test]
fn promtool_accepts_the_catalog_and_the_guard_holds() {
    let alerts = project(CATALOG);
    let text = exposition(&traffic(), &alerts, "shop", T0 + 60 * MINUTE);
    let family = |name: &str| -> Vec<&str> {
        text.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
            .collect()
    };
    // 10 004 routes × 1 method × 2 status classes: routes cut to 9 + other, methods 2.
    let requests = family("api_requests_total");
    let routes: std::collections::BTreeSet<&str> = requests
        .iter()
        .filter_map(|line| line.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(routes.len(), 10, "{routes:?}");
    assert!(routes.contains("other") && routes.contains("/api/checkout"));
    assert!(requests.len() <= 1000);
    let total: f64 = requests
        .iter()
        .map(|line| {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("value")
        })
        .sum();
    assert_eq!(
        total,
        10_000.0 + 4.0 * 505.0,
        "folding into `other` keeps every call"
    );
    assert!(
        text.contains(
            "api_requests_total{method=\"POST\",route=\"/api/checkout\",status_class=\"5xx\"} 5\n"
        ),
        "{}",
        &text[..2000.min(text.len())]
    );
    assert!(text.contains("# TYPE api_request_duration_seconds histogram\n"));
    assert!(text.contains("api_request_duration_seconds_bucket{route=\"other\",le=\"+Inf\"}"));
    assert!(text.contains("payment_initiated_total 100\n"));
    assert!(text.contains("payment_webhook_received_total 77\n"));
    assert!(
        text.contains("payment_webhook_missing_percent 23\n"),
        "{}",
        family("payment_webhook_missing_percent").join("\n")
    );
    assert!(text.contains("payment_conversion_rate_percent 80\n"));
    assert!(
        text.contains("checkout_latency_p95_seconds 0.16\n"),
        "{:?}",
        family("checkout_latency_p95_seconds")
    );
    assert!(!text.contains("user"), "no identities in labels");
    if let Some((ok, said)) = promtool(&text) {
        assert!(ok, "promtool refused the exposition:\n{said}");
    }
}

#[test]
fn promtool_would_refuse_a_broken_exposition() {
    // The check above can fail: promtool does refuse what breaks the format.
    if let Some((ok, said)) = promtool("# TYPE x_total counter\nx_total{a=\"b\" 1\n") {
        assert!(!ok, "{said}");
    }
}
