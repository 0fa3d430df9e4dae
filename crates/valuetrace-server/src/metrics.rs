//! Operator metrics, rendered at `GET /metrics` in the Prometheus text format (0.0.4).
//!
//! Counters are keyed by a metric name from [`CATALOG`] and a few labels whose values come from
//! bounded sets only: configured project ids, static reason codes, top-level event field names.
//! Nothing from a request (routes, ids, user input) ever becomes a label value, so a hostile
//! client cannot grow the series count. They are counted per request, not per event, so one
//! mutex is cheap enough.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Every metric the server exports: name, type, help.
pub const CATALOG: &[(&str, &str, &str)] = &[
    (
        "valuetrace_alert_evaluations_total",
        "counter",
        "Alert rule evaluations by project and result: ok, failed (a rule could not be computed).",
    ),
    (
        "valuetrace_alert_notifications_total",
        "counter",
        "Notification deliveries by project and result: delivered, failed (will retry), abandoned (older than max_delivery_age), rejected (a 4xx other than 408/429: refused for good, not retried), repost_failed (an Alertmanager re-post of a firing alert failed).",
    ),
    (
        "valuetrace_ingest_requests_total",
        "counter",
        "Ingest requests by project and result code (`ok` or the error code answered).",
    ),
    (
        "valuetrace_ingest_events_total",
        "counter",
        "Events by project and outcome: accepted, duplicate, rejected.",
    ),
    (
        "valuetrace_ingest_rejected_events_total",
        "counter",
        "Rejected events by project and reason (the top-level field that broke a rule, `json`, `size`).",
    ),
    (
        "valuetrace_ingest_clamped_events_total",
        "counter",
        "Events whose timestamp lay too far in the future and was clamped to the receive time.",
    ),
    (
        "valuetrace_ingest_bytes_total",
        "counter",
        "Request body bytes by project and stage: received (as sent) and decoded (after decompression).",
    ),
    (
        "valuetrace_ingest_rate_limited_requests_total",
        "counter",
        "Requests answered 429 because the project's event rate limit was exhausted.",
    ),
    (
        "valuetrace_ingest_overloaded_requests_total",
        "counter",
        "Requests answered 503 by reason: in_flight (request budget full), writer_behind (too many rows waiting for a persist), wal (the log cannot make writes durable).",
    ),
    (
        "valuetrace_ingest_in_flight_requests",
        "gauge",
        "Ingest requests admitted and not yet answered (the ingest queue depth).",
    ),
    (
        "valuetrace_ingest_in_flight_bytes",
        "gauge",
        "Bytes reserved by admitted ingest requests.",
    ),
    (
        "valuetrace_store_buffered_rows",
        "gauge",
        "Rows in memory, buffered or being persisted (the writer's queue).",
    ),
    (
        "valuetrace_persists_total",
        "counter",
        "Persists by result: ok, failed.",
    ),
    (
        "valuetrace_wal_frames_total",
        "counter",
        "Frames appended to the write-ahead log.",
    ),
    (
        "valuetrace_wal_bytes_total",
        "counter",
        "Bytes appended to the write-ahead log, frame headers included.",
    ),
    (
        "valuetrace_wal_fsync_seconds",
        "histogram",
        "Latency of each write-ahead log fsync that made frames durable.",
    ),
    (
        "valuetrace_wal_frames_per_fsync",
        "histogram",
        "Group-commit batch size: frames made durable by one fsync.",
    ),
    (
        "valuetrace_wal_corrupt_frames_total",
        "counter",
        "Corrupt write-ahead log frames detected and skipped at start-up.",
    ),
    (
        "valuetrace_wal_unreadable_segments_total",
        "counter",
        "Write-ahead log segments skipped at start-up (unknown version, bad magic); left on disk.",
    ),
    (
        "valuetrace_wal_failures_total",
        "counter",
        "Failed write-ahead log operations by kind: write, sync.",
    ),
    (
        "valuetrace_wal_recoveries_total",
        "counter",
        "Times the write-ahead log became writable again after a failure.",
    ),
    (
        "valuetrace_wal_poisoned",
        "gauge",
        "1 while the write-ahead log refuses writes after a failure, else 0.",
    ),
    (
        "valuetrace_http_connections",
        "gauge",
        "Open HTTP connections.",
    ),
    (
        "valuetrace_http_connections_refused_total",
        "counter",
        "Connections closed at once because max_connections were open.",
    ),
    (
        "valuetrace_http_body_timeouts_total",
        "counter",
        "Requests answered 408 because the body did not arrive within body_read_timeout.",
    ),
    (
        "valuetrace_config_reloads_total",
        "counter",
        "Configuration reloads by result: ok, failed.",
    ),
];

/// Label pairs of one series, in a fixed order.
pub type Labels = Vec<(&'static str, String)>;

/// Counters and gauges updated by the request path.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, Labels), f64>>,
}

impl Metrics {
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        debug_assert!(
            CATALOG.iter().any(|(known, _, _)| *known == name),
            "{name} is not in the catalog"
        );
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *values.entry((name, owned(labels))).or_default() += value;
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// A snapshot of every series.
    pub fn snapshot(&self) -> Vec<Sample> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values
            .iter()
            .map(|((name, labels), value)| Sample {
                name,
                labels: labels.clone(),
                value: *value,
            })
            .collect()
    }
}

/// One series' value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: &'static str,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn new(name: &'static str, labels: &[(&'static str, &str)], value: f64) -> Sample {
        Sample {
            name,
            labels: owned(labels),
            value,
        }
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(key, value)| (*key, (*value).to_owned()))
        .collect()
}

/// A histogram as Prometheus wants it: cumulative counts per upper bound (the last is +Inf).
#[derive(Debug, Clone)]
pub struct HistogramSample {
    pub name: &'static str,
    pub bounds: Vec<f64>,
    pub cumulative: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

/// Renders samples and histograms with `# HELP`/`# TYPE` from the catalog, in catalog order,
/// through the one Prometheus text writer ([`valuetrace_alerts::exposition::text`]).
pub fn render(samples: &[Sample], histograms: &[HistogramSample]) -> String {
    use valuetrace_alerts::exposition::text;
    let mut out = String::with_capacity(8 << 10);
    for (name, kind, help) in CATALOG {
        text::header(&mut out, name, help, kind);
        for sample in samples.iter().filter(|s| s.name == *name) {
            let labels = sample
                .labels
                .iter()
                .map(|(key, value)| (*key, value.as_str()));
            text::sample(&mut out, name, labels, sample.value);
        }
        if let Some(histogram) = histograms.iter().find(|h| h.name == *name) {
            let bucket = format!("{name}_bucket");
            for (index, count) in histogram.cumulative.iter().enumerate() {
                let bound = histogram.bounds.get(index).map_or(f64::INFINITY, |b| *b);
                let bound = text::format_float(bound);
                text::sample(&mut out, &bucket, [("le", bound.as_str())], *count as f64);
            }
            text::sample(&mut out, &format!("{name}_sum"), [], histogram.sum);
            text::sample(
                &mut out,
                &format!("{name}_count"),
                [],
                histogram.count as f64,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels_and_histograms() {
        let metrics = Metrics::default();
        metrics.add(
            "valuetrace_ingest_events_total",
            &[("project", "sh\"op"), ("outcome", "accepted")],
            3.0,
        );
        let histogram = HistogramSample {
            name: "valuetrace_wal_frames_per_fsync",
            bounds: vec![1.0, 2.0],
            cumulative: vec![4, 6, 7],
            sum: 12.0,
            count: 7,
        };
        let text = render(&metrics.snapshot(), &[histogram]);
        assert!(text.contains(
            "valuetrace_ingest_events_total{project=\"sh\\\"op\",outcome=\"accepted\"} 3\n"
        ));
        assert!(text.contains("valuetrace_wal_frames_per_fsync_bucket{le=\"+Inf\"} 7\n"));
        assert!(text.contains("valuetrace_wal_frames_per_fsync_bucket{le=\"2\"} 6\n"));
        assert!(text.contains("# TYPE valuetrace_wal_fsync_seconds histogram\n"));
    }
}
