//! Regression: a crash between writing Parquet and deleting the WAL segments, then a restart
//! after the dedup window has passed, must not count the replayed events twice.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::call;
use serde_json::{Value, json};
use std::path::Path;
use valuetrace_server::Server;

const T0: i64 = 1_795_256_130_123;
const HOUR: i64 = 3_600_000;
const INGEST: &str = "vt_ingest_restart";
const READ: &str = "vt_read_restart";

fn open(dir: &Path, now: i64) -> Server {
    common::open_shop(dir, now, INGEST, READ)
}

async fn requests_in(server: &Server, from: i64, to: i64) -> u64 {
    let uri = format!("/api/v1/projects/shop/endpoints?from={from}&to={to}");
    let request = Request::get(uri)
        .header("authorization", format!("Bearer {READ}"))
        .body(Body::empty())
        .expect("request");
    let (status, answer) = call(server, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["endpoints"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["requests"].as_u64().unwrap_or(0))
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[tokio::test]
async fn wal_replayed_after_the_dedup_window_does_not_double_count_persisted_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let saved_wal = tempfile::tempdir().expect("tempdir");
    let server = open(dir.path(), T0);
    let events: Vec<Value> = (0..50)
        .map(|i| {
            json!({"type": "api_call", "schema_version": 1, "event_id": format!("r-{i}"), "timestamp": T0 - 60_000 + i,
                   "service": "shop", "method": "GET", "route": "/api/items", "status": 200, "latency_ms": 5.0})
        })
        .collect();
    let body = serde_json::to_vec(&events).expect("serialize");
    let request = Request::post("/v1/batch")
        .header("authorization", format!("Bearer {INGEST}"))
        .body(Body::from(body))
        .expect("request");
    let (status, answer) = call(&server, request).await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (StatusCode::OK, Some(50)),
        "{answer}"
    );

    // The crash window: Parquet written, WAL segments not yet deleted.
    copy_dir(&dir.path().join("wal"), saved_wal.path());
    server.state.pipeline.persist(T0).expect("persist");
    drop(server);
    copy_dir(saved_wal.path(), &dir.path().join("wal"));

    // Restart three days later: the events' ids are outside the 48 h window, yet replaying the
    // WAL must still recognise them as stored.
    let later = T0 + 72 * HOUR;
    let server = open(dir.path(), later);
    assert_eq!(requests_in(&server, T0 - HOUR, T0 + HOUR).await, 50);
}
