//! `GET /metrics`: every metric of the catalog with help and type, WAL histograms after real
//! fsyncs, and label cardinality that hostile input cannot grow.

mod common;

use axum::http::StatusCode;
use common::*;
use std::sync::Arc;
use valuetrace_server::Server;
use valuetrace_server::metrics::CATALOG;

const NOW: i64 = 1_795_256_130_123;

/// The series of a Prometheus text page: lines that are not comments.
fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
}

#[tokio::test]
async fn metrics_cover_the_catalog_and_count_what_happened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::open_with_clock(two_projects(dir.path()), Arc::new(|| NOW)).expect("server");
    let key = format!("Bearer {SHOP_INGEST}");
    let good: Vec<_> = (0..5)
        .map(|i| api_call(&format!("m-{i}"), NOW - 1000))
        .collect();
    let mut mixed = good.clone();
    mixed.push(serde_json::json!({"type": "api_call"}));
    mixed.push(api_call("m-bad-status", NOW - 1000));
    mixed[6]["status"] = serde_json::json!(700);
    let (status, body) = call_text(&server, batch_request(Some(&key), &mixed)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call_text(&server, batch_request(Some(&key), &good)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, headers, text) = call_full(&server, get_request(None, "/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let content_type = header(&headers, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for (name, kind, _) in CATALOG {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} missing"
        );
    }
    for expected in [
        "valuetrace_ingest_requests_total{project=\"shop\",code=\"ok\"} 2",
        "valuetrace_ingest_events_total{project=\"shop\",outcome=\"accepted\"} 5",
        "valuetrace_ingest_events_total{project=\"shop\",outcome=\"duplicate\"} 5",
        "valuetrace_ingest_events_total{project=\"shop\",outcome=\"rejected\"} 2",
        "valuetrace_ingest_rejected_events_total{project=\"shop\",reason=\"status\"} 1",
        "valuetrace_wal_frames_total 1",
        "valuetrace_wal_frames_per_fsync_count 1",
        "valuetrace_wal_frames_per_fsync_bucket{le=\"1\"} 1",
        "valuetrace_wal_fsync_seconds_bucket{le=\"+Inf\"} 1",
        "valuetrace_wal_corrupt_frames_total 0",
        "valuetrace_wal_poisoned 0",
    ] {
        assert!(
            series(&text).contains(&expected),
            "`{expected}` missing from\n{text}"
        );
    }
}

#[tokio::test]
async fn hostile_input_cannot_grow_the_series_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::open_with_clock(two_projects(dir.path()), Arc::new(|| NOW)).expect("server");
    let key = format!("Bearer {SHOP_INGEST}");
    let warm = |round: usize| {
        let mut events = vec![api_call(&format!("w-{round}"), NOW - 1000)];
        events.push(serde_json::json!({"type": "api_call", format!("field_{round}"): 1}));
        events
    };
    let (_, _) = call_text(&server, batch_request(Some(&key), &warm(0))).await;
    let (_, _) = call_text(
        &server,
        batch_request(Some("Bearer vt_ingest_guess_0"), &warm(0)),
    )
    .await;
    let before = series(&server.state.render_metrics()).len();
    for round in 1..200 {
        // New event ids, routes, unknown field names, and wrong keys every time.
        let mut events = warm(round);
        events[0]["route"] = serde_json::json!(format!("/api/r{round}"));
        call_text(&server, batch_request(Some(&key), &events)).await;
        call_text(
            &server,
            batch_request(Some(&format!("Bearer vt_ingest_guess_{round}")), &events),
        )
        .await;
    }
    let after = series(&server.state.render_metrics()).len();
    assert_eq!(before, after, "series grew with hostile input");
}
