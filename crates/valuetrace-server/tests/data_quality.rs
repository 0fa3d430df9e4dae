//! `GET /api/v1/projects/{project}/data-quality`: the ledger counts what ingest accepted,
//! refused, deduplicated and corrected, answers only the project's read key, and survives a
//! restart (and a corrupt file).

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use valuetrace_server::Server;

const NOW: i64 = 1_795_256_130_123; // 2026-11-21T10:15:30.123Z
const HOUR: i64 = 3_600_000;
const NOW_HOUR: i64 = 1_795_255_200_000;

fn open(dir: &Path, now: i64) -> Server {
    Server::open_with_clock(two_projects(dir), Arc::new(move || now)).expect("server")
}

async fn ingest(server: &Server, events: &[Value]) -> Value {
    let key = format!("Bearer {SHOP_INGEST}");
    let (status, answer) = call(server, batch_request(Some(&key), events)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn data_quality(server: &Server, key: Option<&str>, uri: &str) -> (StatusCode, Value) {
    let authorization = key.map(|key| format!("Bearer {key}"));
    call(server, get_request(authorization.as_deref(), uri)).await
}

/// Good events of both types, a batch-local repeat, three invalid events, a skewed client clock,
/// a late event and a timestamp from the future; then a retry of one event.
async fn send_the_mix(server: &Server) {
    let mut sampled = api_call("good-1", NOW - 1_000);
    sampled["sample_rate"] = json!(0.5);
    sampled["sdk"] = json!("valuetrace-python/0.3");
    let good = api_call("good-2", NOW - 2_000);
    let outcome = json!({"type": "outcome", "schema_version": 1, "event_id": "o-1",
                         "timestamp": NOW - 500, "name": "purchase", "user_id": "u-1"});
    let mut late = api_call("late-1", NOW - 20 * 60_000);
    late["sample_rate"] = json!(0.1);
    // The client's clock is an hour behind: sent_at says 09:15:30, the server received at 10:15:30.
    let client_now = NOW - HOUR;
    let mut skewed = api_call("skew-1", client_now - 60_000);
    skewed["sent_at"] = json!(client_now);
    let future = api_call("future-1", NOW + HOUR);
    let mut negative = api_call("bad-1", NOW - 1_000);
    negative["latency_ms"] = json!(-5.0);
    let mut negative_too = api_call("bad-2", NOW - 1_000);
    negative_too["latency_ms"] = json!(-1.0);
    let mut bad_status = api_call("bad-3", NOW - 1_000);
    bad_status["status"] = json!(700);
    let batch = [
        sampled.clone(),
        good.clone(),
        outcome,
        late,
        skewed,
        future,
        sampled, // the same event_id again in the batch
        negative,
        negative_too,
        bad_status,
    ];
    let answer = ingest(server, &batch).await;
    assert_eq!(answer["accepted"], 6, "{answer}");
    assert_eq!(answer["duplicates"], 1, "{answer}");
    assert_eq!(answer["clamped"], 1, "{answer}");
    assert_eq!(answer["rejected"].as_array().map(Vec::len), Some(3));
    // A retry of an event already stored.
    let answer = ingest(server, &[good]).await;
    assert_eq!(
        (&answer["accepted"], &answer["duplicates"]),
        (&json!(0), &json!(1))
    );
}

fn expected(from: i64, to: i64) -> Value {
    json!({
        "project": "shop",
        "from": from,
        "to": to,
        "totals": {"received": 11, "accepted": 6, "duplicates": 2, "rejected": 3, "clamped": 1,
                   "skew_corrected": 1, "late": 1, "sampled": 2},
        "rejects_by_reason": [{"reason": "latency_ms", "events": 2}, {"reason": "status", "events": 1}],
        "hours": [{"hour": NOW_HOUR, "accepted": 6, "duplicates": 2, "rejected": 3, "late": 1,
                   "skew_corrected": 1, "clamped": 1,
                   "accepted_by_type": {"api_call": 5, "outcome": 1}}],
        "events_by_type": [{"type": "api_call", "events": 5}, {"type": "outcome", "events": 1}],
        "skew": {"corrected": 1, "median_abs_ms": HOUR, "max_abs_ms": HOUR},
        "sample_rates": [{"rate": 1.0, "events": 3}, {"rate": 0.5, "events": 1}, {"rate": 0.1, "events": 1}],
        "sampled_share": 0.4,
        "schema_versions": [{"version": 1, "events": 6}],
        "sdks": [{"sdk": "valuetrace-python/0.3", "events": 1}],
        "money": {"currency": null, "unconverted": []}
    })
}

#[tokio::test]
async fn the_answer_counts_accepted_duplicate_rejected_and_corrected_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = open(dir.path(), NOW);
    send_the_mix(&server).await;

    let uri = "/api/v1/projects/shop/data-quality?since=24h";
    let (status, answer) = data_quality(&server, Some(SHOP_READ), uri).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, expected(NOW - 24 * HOUR, NOW));

    // `from`/`to` as the other endpoints: an hour without events, and RFC 3339.
    let uri = format!(
        "/api/v1/projects/shop/data-quality?from={}&to={}",
        NOW_HOUR + HOUR,
        NOW_HOUR + 2 * HOUR
    );
    let (status, answer) = data_quality(&server, Some(SHOP_READ), &uri).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["totals"]["received"], 0);
    assert_eq!(answer["hours"], json!([]));
    assert_eq!(answer["sampled_share"], 0.0);
    let uri =
        "/api/v1/projects/shop/data-quality?from=2026-11-21T10:00:00Z&to=2026-11-21T11:00:00Z";
    let (status, answer) = data_quality(&server, Some(SHOP_READ), uri).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["totals"]["accepted"], 6);
}

#[tokio::test]
async fn only_the_projects_read_key_sees_its_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = open(dir.path(), NOW);
    send_the_mix(&server).await;
    let uri = "/api/v1/projects/shop/data-quality?since=24h";

    // Another project's read key: 404, as for every query endpoint (existence not revealed).
    let (status, answer) = data_quality(&server, Some(OTHER_READ), uri).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "not_found");
    // Its own project has nothing of shop's.
    let own = "/api/v1/projects/other/data-quality?since=24h";
    let (status, answer) = data_quality(&server, Some(OTHER_READ), own).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["totals"]["received"], 0);
    // An ingest key is not a read key; no key at all.
    let (status, _) = data_quality(&server, Some(SHOP_INGEST), uri).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = data_quality(&server, None, uri).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Parameters: unknown ones and bad windows answer 400 like the other endpoints.
    for bad in [
        "/api/v1/projects/shop/data-quality?since=24h&plan=pro",
        "/api/v1/projects/shop/data-quality?since=yesterday",
        "/api/v1/projects/shop/data-quality?from=10&to=5",
    ] {
        let (status, answer) = data_quality(&server, Some(SHOP_READ), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_parameter", "{bad}");
    }
}

#[tokio::test]
async fn the_ledger_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = open(dir.path(), NOW);
    send_the_mix(&server).await;
    // A clean stop persists and writes the ledger.
    LiveServer::start_opened(server).await.stop().await;
    let file: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("quality.json")).expect("quality.json written"),
    )
    .expect("quality.json is JSON");
    assert_eq!(file["version"], 1);

    // An hour later, on the same data dir.
    let later = NOW + HOUR;
    let server = open(dir.path(), later);
    let uri = format!(
        "/api/v1/projects/shop/data-quality?from={}&to={NOW}",
        NOW - 24 * HOUR
    );
    let (status, answer) = data_quality(&server, Some(SHOP_READ), &uri).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, expected(NOW - 24 * HOUR, NOW));
    // New events land in the new hour; the old hour is unchanged.
    ingest(&server, &[api_call("next-hour", later - 1_000)]).await;
    let (status, answer) = data_quality(
        &server,
        Some(SHOP_READ),
        "/api/v1/projects/shop/data-quality?since=24h",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let hours: Vec<(i64, u64)> = answer["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .map(|row| {
            (
                row["hour"].as_i64().unwrap(),
                row["accepted"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(hours, [(NOW_HOUR, 6), (NOW_HOUR + HOUR, 1)]);
    assert_eq!(answer["totals"]["accepted"], 7);
}

#[tokio::test]
async fn a_corrupt_ledger_is_set_aside_and_the_server_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("quality.json"),
        b"{\"version\": 1, \"projects\": {\"shop\"",
    )
    .expect("write");
    let server = open(dir.path(), NOW);
    let uri = "/api/v1/projects/shop/data-quality?since=24h";
    let (status, answer) = data_quality(&server, Some(SHOP_READ), uri).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["totals"]["received"], 0);
    assert!(dir.path().join("quality.json.corrupt").exists());

    ingest(&server, &[api_call("after-corruption", NOW - 1_000)]).await;
    LiveServer::start_opened(server).await.stop().await;
    let server = open(dir.path(), NOW);
    let (status, answer) = data_quality(&server, Some(SHOP_READ), uri).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["totals"]["accepted"], 1);
}
