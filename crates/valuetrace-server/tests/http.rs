//! The HTTP surface end to end: ingest (formats, limits, validation, dedup, pseudonymization,
//! clock skew), the query API (auth, parameters) and health, driven through the real router with
//! an injected clock. Each test owns a temporary data directory.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;
use valuetrace_model::time::{HOUR_MS, MINUTE_MS};
use valuetrace_server::Server;
use valuetrace_server::config::{Config, IngestLimits, ProjectConfig};

/// 2026-11-21T10:15:30.123Z: deliberately not aligned to a minute, so windows have raw edges.
const NOW: i64 = 1_795_256_130_123;

const SHOP_INGEST: &str = "vt_ingest_shop_test_key";
const SHOP_READ: &str = "vt_read_shop_test_key";
const OTHER_INGEST: &str = "vt_ingest_other_test_key";
const OTHER_READ: &str = "vt_read_other_test_key";

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Harness

fn project(id: &str, ingest: &str, read: &str) -> ProjectConfig {
    ProjectConfig::new(
        id,
        vec![valuetrace_server::auth::key_hash_string(ingest)],
        vec![valuetrace_server::auth::key_hash_string(read)],
    )
}

fn config_with_limits(dir: &Path, limits: IngestLimits) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        limits,
        projects: vec![
            project("shop", SHOP_INGEST, SHOP_READ),
            project("other", OTHER_INGEST, OTHER_READ),
        ],
        ..Config::default()
    }
}

fn open_with(dir: &Path, limits: IngestLimits) -> Server {
    Server::open_with_clock(config_with_limits(dir, limits), Arc::new(|| NOW))
        .expect("server opens")
}

fn open(dir: &Path) -> Server {
    open_with(dir, IngestLimits::default())
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Sends one request through a fresh router (so no router outlives a `Server` that is dropped).
async fn send(server: &Server, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = server
        .router()
        .oneshot(request)
        .await
        .expect("router is infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes()
        .to_vec();
    (status, bytes)
}

async fn send_json(server: &Server, request: Request<Body>) -> (StatusCode, Value) {
    let (status, bytes) = send(server, request).await;
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|error| {
        panic!(
            "{status}: body is not JSON ({error}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

fn batch_request(
    key: Option<&str>,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::post("/v1/batch");
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    builder.body(body.into()).expect("request")
}

/// POSTs a JSON array of `events` with `key`.
async fn post_events(server: &Server, key: &str, events: &[Value]) -> (StatusCode, Value) {
    let body = serde_json::to_vec(events).expect("serialize");
    send_json(
        server,
        batch_request(Some(key), Some("application/json"), None, body),
    )
    .await
}

/// POSTs to the shop project and expects 200.
async fn ingest_ok(server: &Server, events: &[Value]) -> Value {
    let (status, answer) = post_events(server, SHOP_INGEST, events).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

fn get_request(key: Option<&str>, uri: &str) -> Request<Body> {
    let mut builder = Request::get(uri);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    builder.body(Body::empty()).expect("request")
}

async fn get_json(server: &Server, key: Option<&str>, uri: &str) -> (StatusCode, Value) {
    send_json(server, get_request(key, uri)).await
}

/// `(route, method) → requests` of shop's endpoints in `[from, to)`, and the sum of requests.
async fn endpoint_counts(
    server: &Server,
    from: i64,
    to: i64,
) -> (BTreeMap<(String, String), u64>, u64) {
    let (status, answer) = get_json(
        server,
        Some(SHOP_READ),
        &format!("/api/v1/projects/shop/endpoints?from={from}&to={to}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let rows = answer["endpoints"].as_array().expect("endpoints array");
    assert_eq!(
        answer["total_endpoints"].as_u64(),
        Some(rows.len() as u64),
        "{answer}"
    );
    let mut counts = BTreeMap::new();
    for row in rows {
        let key = (
            row["route"].as_str().expect("route").to_owned(),
            row["method"].as_str().expect("method").to_owned(),
        );
        let requests = row["requests"].as_u64().expect("requests");
        assert!(
            counts.insert(key, requests).is_none(),
            "endpoint listed twice: {answer}"
        );
    }
    let total = counts.values().sum();
    (counts, total)
}

/// Total requests of shop in the hour around NOW, which holds every event the tests send unless
/// they say otherwise.
async fn total_requests_around_now(server: &Server) -> u64 {
    endpoint_counts(server, NOW - HOUR_MS, NOW + HOUR_MS)
        .await
        .1
}

fn key(route: &str, method: &str) -> (String, String) {
    (route.to_owned(), method.to_owned())
}

/// A valid inbound API call.
fn call(id: &str, timestamp: i64, method: &str, route: &str) -> Value {
    json!({
        "type": "api_call",
        "schema_version": 1,
        "event_id": id,
        "timestamp": timestamp,
        "service": "shop-api",
        "method": method,
        "route": route,
        "status": 200,
        "latency_ms": 12.5,
    })
}

/// `n` valid GET /api/orders calls a few minutes before NOW, ids `<prefix>-<i>`.
fn calls(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            call(
                &format!("{prefix}-{i}"),
                NOW - 10 * MINUTE_MS + i as i64 * 1000,
                "GET",
                "/api/orders",
            )
        })
        .collect()
}

fn with(mut event: Value, field: &str, value: Value) -> Value {
    event[field] = value;
    event
}

fn without(mut event: Value, field: &str) -> Value {
    event.as_object_mut().expect("object").remove(field);
    event
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .collect()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Tests that measure this process's peak RSS run one at a time, so that they do not see each
/// other's allocations.
static MEMORY_MEASUREMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Peak resident set size of this process in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM line");
    line.split_whitespace()
        .nth(1)
        .expect("VmHWM value")
        .parse()
        .expect("VmHWM number")
}

// ---------------------------------------------------------------------------------------------
// 1. Partial accept

#[tokio::test]
async fn batch_with_invalid_events_accepts_the_valid_ones_and_reports_each_rejection_exactly() {
    let dir = tempdir();
    let server = open(dir.path());
    let events = vec![
        call("ok-0", NOW - 10 * MINUTE_MS, "GET", "/api/orders"),
        with(
            call("bad-status", NOW - 9 * MINUTE_MS, "GET", "/api/orders"),
            "status",
            json!(700),
        ),
        call("ok-1", NOW - 5 * MINUTE_MS, "GET", "/api/orders/{id}"),
        without(call("no-service", NOW, "GET", "/api/orders"), "service"),
        call("raw-route", NOW, "GET", "/api/orders/12345"),
        with(
            call("typo", NOW, "GET", "/api/orders"),
            "stauts",
            json!(200),
        ),
        json!(42),
        call("ok-2", NOW - MINUTE_MS, "post", "/api/orders"),
        call("bad-method", NOW, "FETCH", "/api/orders"),
        with(
            call("seconds", NOW, "GET", "/api/orders"),
            "timestamp",
            json!(NOW / 1000),
        ),
        json!({"type": "outcome", "schema_version": 1, "event_id": "ok-outcome", "timestamp": NOW - MINUTE_MS, "name": "signup"}),
        with(
            call("bad-currency", NOW, "GET", "/api/orders"),
            "currency",
            json!("eur"),
        ),
        with(
            call("v2", NOW, "GET", "/api/orders"),
            "schema_version",
            json!(2),
        ),
    ];
    let answer = ingest_ok(&server, &events).await;
    let expected = json!({
        "accepted": 4,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "event_id": "bad-status", "error": "status: must be an HTTP status between 100 and 599, got 700"},
            {"index": 3, "event_id": "no-service", "error": "service: is required"},
            {"index": 4, "event_id": "raw-route", "error": "route: segment `12345` looks like a raw id; send the route template (e.g. `/api/orders/{id}`) so that endpoints stay countable"},
            {"index": 5, "event_id": "typo", "error": "stauts: unknown field `stauts` for a api_call event; custom data belongs in `properties`"},
            {"index": 6, "error": "an event must be a JSON object, got a number"},
            {"index": 8, "event_id": "bad-method", "error": "method: `FETCH` is not an HTTP method; expected one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, CONNECT, TRACE"},
            {"index": 9, "event_id": "seconds", "error": format!("timestamp: {} is before 2000-01-01; timestamps are epoch milliseconds, not seconds", NOW / 1000)},
            {"index": 11, "event_id": "bad-currency", "error": "currency: must be an ISO 4217 code such as `EUR`, got `eur`"},
            {"index": 12, "event_id": "v2", "error": "schema_version: unsupported schema_version 2; this server understands 1"},
        ],
    });
    assert_eq!(answer, expected);

    // Only the three valid calls are counted (the valid outcome is not an endpoint request); the
    // lower-case method was normalised.
    let (counts, total) = endpoint_counts(&server, NOW - HOUR_MS, NOW + HOUR_MS).await;
    let expected_counts = BTreeMap::from([
        (key("/api/orders", "GET"), 1),
        (key("/api/orders", "POST"), 1),
        (key("/api/orders/{id}", "GET"), 1),
    ]);
    assert_eq!(counts, expected_counts);
    assert_eq!(total, 3);
}

/// Issue 18 point 16: a batch none of whose events is stored (none accepted, none a duplicate)
/// answers 400 with the same per-event body, so a client that only checks the status does not
/// take it for stored data. Duplicates count as stored; an empty batch loses nothing (200).
#[tokio::test]
async fn batch_with_nothing_stored_answers_400_with_the_per_event_body() {
    let dir = tempdir();
    let server = open(dir.path());
    let events = vec![
        with(
            call("bad-0", NOW, "GET", "/api/orders"),
            "status",
            json!(700),
        ),
        json!(42),
    ];
    let (status, answer) = post_events(&server, SHOP_INGEST, &events).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 0, "duplicates": 0, "rejected": [
            {"index": 0, "event_id": "bad-0", "error": "status: must be an HTTP status between 100 and 599, got 700"},
            {"index": 1, "error": "an event must be a JSON object, got a number"},
        ]})
    );
    assert_eq!(total_requests_around_now(&server).await, 0);

    // One stored event (or one already stored) next to the rejected ones: 200.
    let mut mixed = events.clone();
    mixed.push(call("good-0", NOW, "GET", "/api/orders"));
    let (status, answer) = post_events(&server, SHOP_INGEST, &mixed).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], json!(1), "{answer}");
    let (status, answer) = post_events(&server, SHOP_INGEST, &mixed).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (&answer["accepted"], &answer["duplicates"]),
        (&json!(0), &json!(1)),
        "{answer}"
    );

    // NDJSON of unparseable lines only: 400 too.
    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/x-ndjson"),
            None,
            "x\ny\n",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["rejected"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );

    // An empty batch stores nothing and loses nothing.
    let (status, answer) = post_events(&server, SHOP_INGEST, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 0, "duplicates": 0, "rejected": []})
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Body formats

#[tokio::test]
async fn json_array_body_is_accepted() {
    let dir = tempdir();
    let server = open(dir.path());
    let body = serde_json::to_vec(&calls("arr", 3)).expect("json");
    let (status, answer) = send_json(
        &server,
        batch_request(Some(SHOP_INGEST), Some("application/json"), None, body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 3, "duplicates": 0, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 3);
}

#[tokio::test]
async fn batch_envelope_body_is_accepted_with_and_without_content_type() {
    let dir = tempdir();
    let server = open(dir.path());
    let body = serde_json::to_vec(&json!({"batch": calls("env", 2)})).expect("json");
    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json; charset=utf-8"),
            None,
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": []})
    );
    // No content type at all defaults to JSON.
    let body = serde_json::to_vec(&json!({"batch": calls("env-bare", 3)})).expect("json");
    let (status, answer) =
        send_json(&server, batch_request(Some(SHOP_INGEST), None, None, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 3, "duplicates": 0, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 5);
}

#[tokio::test]
async fn ndjson_body_rejects_only_the_malformed_line() {
    let dir = tempdir();
    let server = open(dir.path());
    let events = calls("nd", 3);
    let body = format!(
        "{}\n{{\"type\": \"api_call\", \"event_id\": \"broken\"\n{}\r\n{}\n",
        serde_json::to_string(&events[0]).expect("json"),
        serde_json::to_string(&events[1]).expect("json"),
        serde_json::to_string(&events[2]).expect("json"),
    );
    let (status, answer) = send_json(
        &server,
        batch_request(Some(SHOP_INGEST), Some("application/x-ndjson"), None, body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], json!(3));
    assert_eq!(answer["duplicates"], json!(0));
    let rejected = answer["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{answer}");
    assert_eq!(rejected[0]["index"], json!(1));
    assert!(
        rejected[0].get("event_id").is_none(),
        "unparseable line has no event_id: {answer}"
    );
    let error = rejected[0]["error"].as_str().expect("error");
    assert!(error.starts_with("invalid JSON: "), "{error}");
    assert_eq!(total_requests_around_now(&server).await, 3);
}

#[tokio::test]
async fn gzip_encoded_body_is_accepted() {
    let dir = tempdir();
    let server = open(dir.path());
    let body = gzip(&serde_json::to_vec(&calls("gz", 4)).expect("json"));
    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            Some("gzip"),
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 4, "duplicates": 0, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 4);
}

#[tokio::test]
async fn zstd_encoded_ndjson_body_is_accepted() {
    let dir = tempdir();
    let server = open(dir.path());
    let ndjson: String = calls("zs", 5)
        .iter()
        .map(|event| format!("{event}\n"))
        .collect();
    let body = zstd::encode_all(ndjson.as_bytes(), 3).expect("zstd");
    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/x-ndjson"),
            Some("zstd"),
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 5, "duplicates": 0, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 5);
}

// ---------------------------------------------------------------------------------------------
// 3. Limits

#[tokio::test]
async fn body_over_max_body_bytes_is_413_naming_the_setting() {
    let dir = tempdir();
    let limits = IngestLimits {
        max_body_bytes: 1024,
        max_decompressed_bytes: 4096,
        ..IngestLimits::default()
    };
    let server = open_with(dir.path(), limits);
    let body = serde_json::to_vec(&calls("big", 20)).expect("json");
    assert!(body.len() > 1024);
    let length = body.len();

    // Without Content-Length: stopped while reading.
    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            None,
            body.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer,
        error_body(
            "body_too_large",
            "body is more than 1024 bytes; the limit is 1024 bytes (max_body_bytes): send smaller batches"
        )
    );

    // With Content-Length: refused before reading (the message does not repeat the declared size).
    let mut request = batch_request(Some(SHOP_INGEST), Some("application/json"), None, body);
    request
        .headers_mut()
        .insert("content-length", length.into());
    let (status, answer) = send_json(&server, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer,
        error_body(
            "body_too_large",
            "body is more than 1024 bytes; the limit is 1024 bytes (max_body_bytes): send smaller batches"
        )
    );

    // A body of exactly the limit passes the size check.
    let mut exact = serde_json::to_vec(&calls("edge", 1)).expect("json");
    exact.resize(1024, b' ');
    let (status, answer) = send_json(
        &server,
        batch_request(Some(SHOP_INGEST), Some("application/json"), None, exact),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], json!(1));
    assert_eq!(total_requests_around_now(&server).await, 1);
}

/// Gzip of `prefix`, `unit` repeated `n` times, and `suffix`, built without holding the plain text.
fn gzip_repeated(prefix: &str, unit: &str, n: usize, suffix: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(prefix.as_bytes()).expect("gzip");
    let chunk = unit.repeat(4096);
    let mut left = n;
    while left > 0 {
        let units = left.min(4096);
        encoder
            .write_all(&chunk.as_bytes()[..units * unit.len()])
            .expect("gzip");
        left -= units;
    }
    encoder.write_all(suffix.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Streams `total` zero bytes through `encoder` in small chunks, so the test never holds them.
fn stream_zeros(mut writer: impl Write, total: usize) {
    let chunk = vec![0u8; 64 << 10];
    let mut written = 0;
    while written < total {
        let n = chunk.len().min(total - written);
        writer.write_all(&chunk[..n]).expect("compress");
        written += n;
    }
}

#[tokio::test]
async fn gzip_and_zstd_bombs_stop_at_max_decompressed_bytes_with_bounded_memory() {
    const BOMB: usize = 200 * MIB;
    let _alone = MEMORY_MEASUREMENT.lock().await;
    let dir = tempdir();
    let limits = IngestLimits {
        max_decompressed_bytes: 20 * MIB,
        ..IngestLimits::default()
    };
    let server = open_with(dir.path(), limits);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    stream_zeros(&mut gz, BOMB);
    let gzip_bomb = gz.finish().expect("gzip");
    let mut zs = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
    stream_zeros(&mut zs, BOMB);
    let zstd_bomb = zs.finish().expect("zstd");
    assert!(
        gzip_bomb.len() < 5 * MIB && zstd_bomb.len() < 5 * MIB,
        "bombs fit max_body_bytes"
    );

    let expected = error_body(
        "decompressed_body_too_large",
        &format!(
            "decompressed body is more than {} bytes; the limit is {} bytes (max_decompressed_bytes): send smaller batches",
            20 * MIB,
            20 * MIB
        ),
    );
    for (encoding, bomb) in [("gzip", gzip_bomb), ("zstd", zstd_bomb)] {
        let before = peak_rss_kib();
        let started = std::time::Instant::now();
        let (status, answer) = send_json(
            &server,
            batch_request(
                Some(SHOP_INGEST),
                Some("application/json"),
                Some(encoding),
                bomb,
            ),
        )
        .await;
        let elapsed = started.elapsed();
        let growth_mib = (peak_rss_kib() - before) / 1024;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{encoding}");
        assert_eq!(answer, expected, "{encoding}");
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "{encoding} bomb took {elapsed:?}"
        );
        assert!(
            growth_mib < 100,
            "{encoding} bomb grew peak RSS by {growth_mib} MiB"
        );
    }
}

#[tokio::test]
async fn millions_of_tiny_events_in_a_small_body_are_refused_with_bounded_memory() {
    let _alone = MEMORY_MEASUREMENT.lock().await;
    let dir = tempdir();
    let limits = IngestLimits {
        max_decompressed_bytes: 8 * MIB,
        ..IngestLimits::default()
    };
    let server = open_with(dir.path(), limits);
    // 8 MiB (= max_decompressed_bytes) of two-byte events compress to ~40 KB. Cutting them into
    // 4 million items before checking max_batch_events would cost 64-96 MiB; counting first costs
    // no more than the decompressed body.
    let units = 4 * MIB;
    let cases = [
        (
            "application/x-ndjson",
            gzip_repeated("", "1\n", units, ""),
            units,
        ),
        (
            "application/json",
            gzip_repeated("[", "1,", units - 2, "1]"),
            units - 1,
        ),
        (
            "application/json",
            gzip_repeated("{\"batch\": [", "1,", units - 7, "1]}"),
            units - 6,
        ),
    ];
    for (content_type, body, events) in cases {
        assert!(body.len() < MIB);
        let before = peak_rss_kib();
        let started = std::time::Instant::now();
        let (status, answer) = send_json(
            &server,
            batch_request(Some(SHOP_INGEST), Some(content_type), Some("gzip"), body),
        )
        .await;
        let elapsed = started.elapsed();
        let growth_mib = (peak_rss_kib() - before) / 1024;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{content_type}");
        assert_eq!(
            answer,
            error_body(
                "too_many_events",
                &format!(
                    "batch holds {events} events; the limit is 10000 (max_batch_events): split it"
                )
            ),
            "{content_type}"
        );
        assert!(
            growth_mib < 48,
            "{content_type}: peak RSS grew by {growth_mib} MiB"
        );
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "{content_type}: took {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn batch_over_max_batch_events_is_413_and_the_limit_itself_is_accepted() {
    let dir = tempdir();
    let limits = IngestLimits {
        max_batch_events: 3,
        ..IngestLimits::default()
    };
    let server = open_with(dir.path(), limits);
    let (status, answer) = post_events(&server, SHOP_INGEST, &calls("many", 4)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer,
        error_body(
            "too_many_events",
            "batch holds 4 events; the limit is 3 (max_batch_events): split it"
        )
    );
    assert_eq!(
        total_requests_around_now(&server).await,
        0,
        "nothing of a refused batch is stored"
    );

    let (status, answer) = post_events(&server, SHOP_INGEST, &calls("three", 3)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 3, "duplicates": 0, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 3);
}

#[tokio::test]
async fn event_over_max_event_bytes_is_rejected_alone() {
    let dir = tempdir();
    let limits = IngestLimits {
        max_event_bytes: 400,
        ..IngestLimits::default()
    };
    let server = open_with(dir.path(), limits);
    let mut events = calls("size", 3);
    events[1]["properties"] = json!({"note": "x".repeat(500)});
    let big = serde_json::to_string(&events[1]).expect("json").len();
    assert!(serde_json::to_string(&events[0]).expect("json").len() <= 400);
    let answer = ingest_ok(&server, &events).await;
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": [{"index": 1, "error": format!("event is {big} bytes; the limit is 400 (max_event_bytes)")}]})
    );
    assert_eq!(total_requests_around_now(&server).await, 2);
}

// ---------------------------------------------------------------------------------------------
// 4. Content type, encoding, malformed bodies

#[tokio::test]
async fn unsupported_content_type_and_encoding_are_415() {
    let dir = tempdir();
    let server = open(dir.path());
    let body = serde_json::to_vec(&calls("ct", 1)).expect("json");
    let (status, answer) = send_json(
        &server,
        batch_request(Some(SHOP_INGEST), Some("text/plain"), None, body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer,
        error_body(
            "unsupported_content_type",
            "content type `text/plain` is not supported; send application/json or application/x-ndjson"
        )
    );

    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            Some("br"),
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer,
        error_body(
            "unsupported_content_encoding",
            "content encoding `br` is not supported; use gzip, zstd or none"
        )
    );
    assert_eq!(total_requests_around_now(&server).await, 0);
}

#[tokio::test]
async fn bodies_that_are_not_json_or_not_the_claimed_encoding_are_400() {
    let dir = tempdir();
    let server = open(dir.path());
    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            None,
            "hello, world",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        error_body(
            "invalid_json",
            "body must be a JSON array of events, an object `{\"batch\": [...]}`, or NDJSON with content type application/x-ndjson"
        )
    );

    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            None,
            "[{\"type\": \"api_call\"",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], json!("invalid_json"));
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("body is not a JSON array of events: "),
        "{answer}"
    );

    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            None,
            "{\"events\": []}",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], json!("invalid_json"));
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("body must be `{\"batch\": [...]}`: "),
        "{answer}"
    );

    let (status, answer) = send_json(
        &server,
        batch_request(
            Some(SHOP_INGEST),
            Some("application/json"),
            Some("gzip"),
            "[]",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], json!("bad_compression"));
    assert_eq!(total_requests_around_now(&server).await, 0);
}

// ---------------------------------------------------------------------------------------------
// 5. Auth

#[tokio::test]
async fn ingest_without_a_valid_ingest_key_is_401() {
    let dir = tempdir();
    let server = open(dir.path());
    let unauthorized = error_body(
        "unauthorized",
        "missing or invalid API key; send `Authorization: Bearer <key>`",
    );
    let body = || serde_json::to_vec(&calls("auth", 1)).expect("json");
    for key in [None, Some("vt_ingest_wrong"), Some(SHOP_READ)] {
        let (status, answer) = send_json(
            &server,
            batch_request(key, Some("application/json"), None, body()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(answer, unauthorized, "{key:?}");
    }
    // A valid key under another scheme is not a bearer token.
    let request = Request::post("/v1/batch")
        .header("authorization", format!("Basic {SHOP_INGEST}"))
        .body(Body::from(body()))
        .expect("request");
    let (status, answer) = send_json(&server, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer, unauthorized);
    assert_eq!(total_requests_around_now(&server).await, 0);
}

#[tokio::test]
async fn query_api_needs_a_read_key_of_the_same_project_and_hides_which_projects_exist() {
    let dir = tempdir();
    let server = open(dir.path());
    let unauthorized = error_body(
        "unauthorized",
        "missing or invalid API key; send `Authorization: Bearer <key>`",
    );
    for path in ["endpoints", "timeseries"] {
        let uri = format!("/api/v1/projects/shop/{path}");
        for key in [None, Some("vt_read_wrong"), Some(SHOP_INGEST)] {
            let (status, answer) = get_json(&server, key, &uri).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {key:?}");
            assert_eq!(answer, unauthorized, "{uri} {key:?}");
        }
        let (status, _) = get_json(&server, Some(SHOP_READ), &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");

        // Without a valid key, an existing and a missing project look the same.
        let (status_other, other) =
            get_json(&server, None, &format!("/api/v1/projects/other/{path}")).await;
        let (status_nope, nope) =
            get_json(&server, None, &format!("/api/v1/projects/nope/{path}")).await;
        assert_eq!(
            (status_other, status_nope),
            (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
        );
        assert_eq!(other, nope);

        // With shop's read key, an existing other project and a missing one are both 404, and the
        // bodies differ only in echoing the requested id back.
        let (status_other, other) = get_json(
            &server,
            Some(SHOP_READ),
            &format!("/api/v1/projects/other/{path}"),
        )
        .await;
        let (status_nope, nope) = get_json(
            &server,
            Some(SHOP_READ),
            &format!("/api/v1/projects/nope/{path}"),
        )
        .await;
        assert_eq!(
            (status_other, status_nope),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
            "{uri}"
        );
        assert_eq!(other, error_body("not_found", "project `other` not found"));
        assert_eq!(nope, error_body("not_found", "project `nope` not found"));
        assert_eq!(
            other.to_string().replace("other", "ID"),
            nope.to_string().replace("nope", "ID")
        );
    }
    // The other project's own read key does work for it.
    let (status, _) = get_json(
        &server,
        Some(OTHER_READ),
        "/api/v1/projects/other/endpoints",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_ingest_key_writes_only_to_its_own_project() {
    let dir = tempdir();
    let server = open(dir.path());
    let (status, answer) = post_events(&server, OTHER_INGEST, &calls("elsewhere", 2)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["accepted"], json!(2));
    assert_eq!(
        total_requests_around_now(&server).await,
        0,
        "shop sees nothing of other's events"
    );
    let (status, answer) = get_json(
        &server,
        Some(OTHER_READ),
        &format!(
            "/api/v1/projects/other/endpoints?from={}&to={}",
            NOW - HOUR_MS,
            NOW + HOUR_MS
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["endpoints"][0]["requests"], json!(2));
    // The same event ids are new in another project.
    let answer = ingest_ok(&server, &calls("elsewhere", 2)).await;
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": []})
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Dedup

#[tokio::test]
async fn resent_batch_is_all_duplicates() {
    let dir = tempdir();
    let server = open(dir.path());
    let events = calls("again", 4);
    assert_eq!(
        ingest_ok(&server, &events).await,
        json!({"accepted": 4, "duplicates": 0, "rejected": []})
    );
    assert_eq!(
        ingest_ok(&server, &events).await,
        json!({"accepted": 0, "duplicates": 4, "rejected": []})
    );
    // A mix of known and new ids: only the new ones are stored.
    let mut mixed = calls("again", 2);
    mixed.extend(calls("fresh", 1));
    assert_eq!(
        ingest_ok(&server, &mixed).await,
        json!({"accepted": 1, "duplicates": 2, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 5);
}

#[tokio::test]
async fn duplicates_inside_one_batch_are_stored_once() {
    let dir = tempdir();
    let server = open(dir.path());
    let a = call("dup-a", NOW - MINUTE_MS, "GET", "/api/orders");
    let b = call("dup-b", NOW - MINUTE_MS, "GET", "/api/orders");
    let events = vec![a.clone(), b, a.clone(), a];
    assert_eq!(
        ingest_ok(&server, &events).await,
        json!({"accepted": 2, "duplicates": 2, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 2);
}

#[tokio::test]
async fn duplicates_are_recognised_after_a_restart_that_replays_the_wal() {
    let dir = tempdir();
    let events = calls("wal", 3);
    {
        let server = open(dir.path());
        assert_eq!(ingest_ok(&server, &events).await["accepted"], json!(3));
    }
    let server = open(dir.path());
    assert_eq!(
        server
            .state
            .pipeline
            .counters
            .replayed_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        ingest_ok(&server, &events).await,
        json!({"accepted": 0, "duplicates": 3, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 3);
    drop(server);
    // A second restart (the resend wrote no frame: nothing in it was fresh) still counts once.
    let server = open(dir.path());
    assert_eq!(
        ingest_ok(&server, &events).await,
        json!({"accepted": 0, "duplicates": 3, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 3);
}

#[tokio::test]
async fn duplicates_are_recognised_after_a_restart_from_parquet_and_wal() {
    let dir = tempdir();
    let persisted = calls("pq", 3);
    let in_wal = calls("tail", 2);
    {
        let server = open(dir.path());
        assert_eq!(ingest_ok(&server, &persisted).await["accepted"], json!(3));
        let stats = server.state.pipeline.persist(NOW).expect("persist");
        assert_eq!(stats.rows_written, 3);
        assert_eq!(ingest_ok(&server, &in_wal).await["accepted"], json!(2));
    }
    assert_eq!(parquet_files(&dir.path().join("store")).len(), 1);
    let server = open(dir.path());
    assert_eq!(
        server
            .state
            .pipeline
            .counters
            .replayed_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "persisted frames were trimmed"
    );
    assert_eq!(
        ingest_ok(&server, &persisted).await,
        json!({"accepted": 0, "duplicates": 3, "rejected": []})
    );
    assert_eq!(
        ingest_ok(&server, &in_wal).await,
        json!({"accepted": 0, "duplicates": 2, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 5);

    // Persist everything, restart once more: still each event once.
    server.state.pipeline.persist(NOW).expect("persist");
    drop(server);
    let server = open(dir.path());
    let mut all = persisted.clone();
    all.extend(in_wal);
    assert_eq!(
        ingest_ok(&server, &all).await,
        json!({"accepted": 0, "duplicates": 5, "rejected": []})
    );
    assert_eq!(total_requests_around_now(&server).await, 5);
}

// ---------------------------------------------------------------------------------------------
// 7. Pseudonymization

const RAW_USER: &str = "alice@example.com";
const RAW_ACCOUNT: &str = "acct-raw-42";
const RAW_SESSION: &str = "sess-raw-7";

fn identified(id: &str) -> Value {
    let event = call(id, NOW - 2 * MINUTE_MS, "GET", "/api/profile");
    let event = with(event, "user_id", json!(RAW_USER));
    let event = with(event, "account_id", json!(RAW_ACCOUNT));
    with(event, "session_id", json!(RAW_SESSION))
}

fn identified_outcome(id: &str) -> Value {
    json!({
        "type": "outcome", "schema_version": 1, "event_id": id, "timestamp": NOW - MINUTE_MS, "name": "purchase",
        "user_id": RAW_USER, "account_id": RAW_ACCOUNT, "session_id": RAW_SESSION, "value": 12.0, "currency": "EUR",
    })
}

fn assert_no_raw_ids_on_disk(dir: &Path) {
    let files = files_under(dir);
    assert!(!files.is_empty());
    for path in files {
        let bytes = std::fs::read(&path).expect("read");
        for raw in [RAW_USER, RAW_ACCOUNT, RAW_SESSION] {
            assert!(
                !contains_bytes(&bytes, raw.as_bytes()),
                "{} holds the raw id {raw}",
                path.display()
            );
        }
    }
}

/// `(user_id, account_id, session_id)` of every row of one project's table in its Parquet files.
fn stored_ids(dir: &Path, project: &str, table: &str) -> Vec<(String, String, String)> {
    let mut ids = Vec::new();
    for path in parquet_files(&dir.join("store").join("projects").join(project).join(table)) {
        let info = valuetrace_store::parquet_io::read_info(&path).expect("parquet info");
        valuetrace_store::parquet_io::read_range(
            &info,
            i64::MIN,
            i64::MAX,
            &["user_id", "account_id", "session_id"],
            |batch| {
                let columns = valuetrace_store::schema::Columns::new(batch);
                let (users, accounts, sessions) = (
                    columns.text("user_id")?,
                    columns.text("account_id")?,
                    columns.text("session_id")?,
                );
                for ((user, account), session) in
                    users.iter().zip(accounts.iter()).zip(sessions.iter())
                {
                    ids.push((
                        user.expect("user").to_owned(),
                        account.expect("account").to_owned(),
                        session.expect("session").to_owned(),
                    ));
                }
                Ok(())
            },
        )
        .expect("read parquet");
    }
    ids
}

fn is_pseudonym(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn raw_user_account_and_session_ids_never_reach_disk() {
    let dir = tempdir();
    let server = open(dir.path());
    assert_eq!(
        ingest_ok(
            &server,
            &[
                identified("who-1"),
                identified("who-2"),
                identified_outcome("who-3")
            ]
        )
        .await["accepted"],
        json!(3)
    );
    let (status, answer) = post_events(&server, OTHER_INGEST, &[identified("who-1")]).await;
    assert_eq!((status, &answer["accepted"]), (StatusCode::OK, &json!(1)));

    // (a) Before persisting, the events live only in the (uncompressed JSON) WAL: the scan is
    // meaningful because the event ids are visible there.
    let wal_files = files_under(&dir.path().join("wal"));
    assert!(
        wal_files
            .iter()
            .any(|path| contains_bytes(&std::fs::read(path).expect("read"), b"who-3")),
        "the WAL holds the events as text"
    );
    assert_no_raw_ids_on_disk(dir.path());

    // (b) After persisting, the Parquet columns hold 32-hex pseudonyms, exactly the project's HMAC.
    server.state.pipeline.persist(NOW).expect("persist");
    assert_no_raw_ids_on_disk(dir.path());
    let secret = std::fs::read(dir.path().join("secrets").join("shop.key")).expect("secret");
    assert_eq!(secret.len(), 32);
    let shop = valuetrace_server::pseudonym::Pseudonymizer::new(secret, 1);
    let expected = (
        shop.pseudonym("user_id", RAW_USER),
        shop.pseudonym("account_id", RAW_ACCOUNT),
        shop.pseudonym("session_id", RAW_SESSION),
    );
    for value in [&expected.0, &expected.1, &expected.2] {
        assert!(is_pseudonym(value), "{value}");
    }
    assert_ne!(
        expected.0, expected.1,
        "fields are separated in the HMAC input"
    );
    let calls = stored_ids(dir.path(), "shop", "api_calls");
    let outcomes = stored_ids(dir.path(), "shop", "outcomes");
    assert_eq!(calls, vec![expected.clone(), expected.clone()]);
    assert_eq!(outcomes, vec![expected.clone()]);

    // (c) The generated secrets are private to the owner.
    use std::os::unix::fs::PermissionsExt;
    for project in ["shop", "other"] {
        let mode = std::fs::metadata(dir.path().join("secrets").join(format!("{project}.key")))
            .expect("secret file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{project}.key mode {:o}", mode & 0o777);
    }

    // (d) The same raw id gets a different pseudonym in another project.
    let other = stored_ids(dir.path(), "other", "api_calls");
    assert_eq!(other.len(), 1);
    assert!(is_pseudonym(&other[0].0));
    assert_ne!(other[0].0, expected.0);
    assert_ne!(other[0].1, expected.1);
    assert_ne!(other[0].2, expected.2);

    // The pseudonyms are stable across a restart (the secret is reused, not regenerated).
    drop(server);
    let server = open(dir.path());
    assert_eq!(
        ingest_ok(&server, &[identified("who-4")]).await["accepted"],
        json!(1)
    );
    server.state.pipeline.persist(NOW).expect("persist");
    let calls = stored_ids(dir.path(), "shop", "api_calls");
    assert_eq!(calls, vec![expected.clone(); 3]);
    assert_no_raw_ids_on_disk(dir.path());
}

// ---------------------------------------------------------------------------------------------
// 8. Timestamps

#[tokio::test]
async fn far_future_timestamps_are_clamped_and_counted_and_ancient_ones_refused() {
    let dir = tempdir();
    let server = open(dir.path());
    let events = vec![
        call("future", NOW + 25 * HOUR_MS, "GET", "/api/orders"),
        call("almost", NOW + 5 * MINUTE_MS, "GET", "/api/orders"),
        with(
            call("rfc3339", 0, "GET", "/api/orders"),
            "timestamp",
            json!("2026-11-23T10:15:30.123Z"),
        ),
        call("ancient", NOW - 401 * 24 * HOUR_MS, "GET", "/api/orders"),
    ];
    let answer = ingest_ok(&server, &events).await;
    assert_eq!(
        answer,
        json!({"accepted": 3, "duplicates": 0, "clamped": 2, "rejected": [
            {"index": 3, "event_id": "ancient", "error": "timestamp: is 401.0 days old after clock-skew correction; events older than 400 days are not kept (limits.max_event_age)"},
        ]})
    );
    // The two far-future events are stored at the receive time, the near one as sent.
    let (counts, _) = endpoint_counts(&server, NOW - MINUTE_MS, NOW + MINUTE_MS).await;
    assert_eq!(counts, BTreeMap::from([(key("/api/orders", "GET"), 2)]));
    let (counts, _) = endpoint_counts(&server, NOW + 4 * MINUTE_MS, NOW + 6 * MINUTE_MS).await;
    assert_eq!(counts, BTreeMap::from([(key("/api/orders", "GET"), 1)]));
    let metrics = server.state.render_metrics();
    assert!(
        metrics.contains("valuetrace_ingest_clamped_events_total{project=\"shop\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "valuetrace_ingest_rejected_events_total{project=\"shop\",reason=\"timestamp\"} 1\n"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn client_clock_30h_ahead_is_corrected_with_sent_at() {
    let dir = tempdir();
    let server = open(dir.path());
    let client_now = NOW + 30 * HOUR_MS;
    // The client saw the call 10 minutes before it sent the batch, by its own (wrong) clock.
    let skewed = with(
        call("skewed", client_now - 10 * MINUTE_MS, "GET", "/api/skew"),
        "sent_at",
        json!(client_now),
    );
    let uncorrected = call(
        "no-sent-at",
        client_now - 10 * MINUTE_MS,
        "GET",
        "/api/skew",
    );
    let answer = ingest_ok(&server, &[skewed, uncorrected]).await;
    // Without sent_at the event cannot be corrected: it is clamped to the receive time.
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "clamped": 1, "rejected": []})
    );
    // Stored at NOW - 10 min (server time): inside [NOW-11m, NOW-9m), not at the client's time.
    let (counts, _) = endpoint_counts(&server, NOW - 11 * MINUTE_MS, NOW - 9 * MINUTE_MS).await;
    assert_eq!(counts, BTreeMap::from([(key("/api/skew", "GET"), 1)]));
    let (_, total) = endpoint_counts(&server, NOW - 10 * MINUTE_MS + 1, NOW + 2 * HOUR_MS).await;
    assert_eq!(
        total, 1,
        "the corrected one exactly at NOW - 10 min, the clamped one at NOW"
    );
    let (_, total) = endpoint_counts(&server, NOW + 29 * HOUR_MS, NOW + 31 * HOUR_MS).await;
    assert_eq!(total, 0, "nothing at the client's clock");

    // The correction survives persisting and restarting.
    server.state.pipeline.persist(NOW).expect("persist");
    drop(server);
    let server = open(dir.path());
    let (counts, _) =
        endpoint_counts(&server, NOW - 10 * MINUTE_MS, NOW - 10 * MINUTE_MS + 1).await;
    assert_eq!(counts, BTreeMap::from([(key("/api/skew", "GET"), 1)]));
}

#[tokio::test]
async fn overflowing_timestamp_is_rejected_alone() {
    let dir = tempdir();
    let server = open(dir.path());
    let overflowing = with(
        call("overflow", i64::MAX - 10, "GET", "/api/orders"),
        "sent_at",
        json!(946_684_800_000_i64),
    );
    let (status, answer) = post_events(
        &server,
        SHOP_INGEST,
        &[overflowing, call("fine", NOW, "GET", "/api/orders")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], json!(1), "{answer}");
    assert_eq!(answer["rejected"][0]["index"], json!(0), "{answer}");
    assert_eq!(
        answer["rejected"][0]["event_id"],
        json!("overflow"),
        "{answer}"
    );
    assert_eq!(total_requests_around_now(&server).await, 1);
}

// ---------------------------------------------------------------------------------------------
// 9. Query API

#[tokio::test]
async fn query_parameter_errors_are_400_naming_the_parameter() {
    let dir = tempdir();
    let server = open(dir.path());
    let cases = [
        ("/api/v1/projects/shop/endpoints?from=yesterday", "invalid_parameter", "`from=yesterday` is not an RFC 3339 time or epoch milliseconds".to_owned()),
        ("/api/v1/projects/shop/endpoints?to=2026-13-01T00:00:00Z", "invalid_parameter", "`to=2026-13-01T00:00:00Z` is not an RFC 3339 time or epoch milliseconds".to_owned()),
        (
            "/api/v1/projects/shop/endpoints?frm=1",
            "invalid_parameter",
            "unknown parameter `frm`; known: from, to, since, plan, segment, variant, service, route, method, direction, sort, limit".to_owned(),
        ),
        (
            "/api/v1/projects/shop/timeseries?sort=requests",
            "invalid_parameter",
            "unknown parameter `sort`; known: from, to, since, plan, segment, variant, service, route, method, direction, metric, interval".to_owned(),
        ),
        (&*format!("/api/v1/projects/shop/endpoints?from={NOW}&to={NOW}"), "invalid_parameter", format!("`from` ({NOW}) must be before `to` ({NOW})")),
        (
            &*format!("/api/v1/projects/shop/endpoints?from={}&to={NOW}", NOW + 1),
            "invalid_parameter",
            format!("`from` ({}) must be before `to` ({NOW})", NOW + 1),
        ),
        ("/api/v1/projects/shop/endpoints?since=yesterday", "invalid_parameter", "`since=yesterday` is not a duration such as 15m, 24h or 30d".to_owned()),
        ("/api/v1/projects/shop/endpoints?limit=0", "invalid_parameter", "`limit=0` must be an integer from 1 to 1000".to_owned()),
        ("/api/v1/projects/shop/endpoints?sort=size", "invalid_query", "unknown sort `size`; use requests, users, error_rate, p95, value or route".to_owned()),
        ("/api/v1/projects/shop/timeseries?metric=bogus", "invalid_query", "unknown metric `bogus`; use requests, error_rate, p95, users or value".to_owned()),
        ("/api/v1/projects/shop/timeseries?interval=2h", "invalid_query", "unknown interval `2h`; use 1m, 1h or 1d".to_owned()),
    ];
    for (uri, code, message) in cases {
        let (status, answer) = get_json(&server, Some(SHOP_READ), uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
        assert_eq!(answer, error_body(code, &message), "{uri}");
    }
}

#[tokio::test]
async fn hourly_timeseries_tiles_the_window_and_sums_to_the_endpoints_total() {
    let dir = tempdir();
    let server = open(dir.path());
    // Calls spread over seven hours, on and off hour boundaries, two routes.
    let offsets_min: [i64; 10] = [-359, -300, -241, -180, -75, -60, -31, -15, -1, 0];
    let mut events: Vec<Value> = offsets_min
        .iter()
        .enumerate()
        .map(|(i, minutes)| {
            let route = if i % 2 == 0 {
                "/api/orders"
            } else {
                "/api/cart"
            };
            call(&format!("ts-{i}"), NOW + minutes * MINUTE_MS, "GET", route)
        })
        .collect();
    // One exactly on an hour boundary and one just before the window (excluded).
    let boundary = NOW.div_euclid(HOUR_MS) * HOUR_MS - 2 * HOUR_MS;
    events.push(call("ts-boundary", boundary, "GET", "/api/orders"));
    events.push(call(
        "ts-before",
        NOW - 6 * HOUR_MS - 1,
        "GET",
        "/api/orders",
    ));
    assert_eq!(ingest_ok(&server, &events).await["accepted"], json!(12));

    let (from, to) = (NOW - 6 * HOUR_MS, NOW + 1);
    let in_window: Vec<i64> = events
        .iter()
        .map(|e| e["timestamp"].as_i64().expect("ts"))
        .filter(|ts| (from..to).contains(ts))
        .collect();
    assert_eq!(in_window.len(), 11);

    let (counts, total) = endpoint_counts(&server, from, to).await;
    assert_eq!(total, 11);
    assert_eq!(
        counts,
        BTreeMap::from([(key("/api/cart", "GET"), 5), (key("/api/orders", "GET"), 6)])
    );

    let (status, answer) = get_json(
        &server,
        Some(SHOP_READ),
        &format!(
            "/api/v1/projects/shop/timeseries?from={from}&to={to}&interval=1h&metric=requests"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["metric"].as_str(), answer["interval"].as_str()),
        (Some("requests"), Some("1h"))
    );
    let points = answer["points"].as_array().expect("points");
    assert_eq!(
        points.len(),
        7,
        "partial first hour, five whole hours, partial last hour: {answer}"
    );
    let mut expected_start = from;
    let mut sum = 0;
    for point in points {
        let (start, end) = (
            point["start"].as_i64().expect("start"),
            point["end"].as_i64().expect("end"),
        );
        assert_eq!(start, expected_start, "points tile the window");
        assert!(
            end == to || end % HOUR_MS == 0,
            "points end on hour boundaries"
        );
        let requests = point["requests"].as_u64().expect("requests");
        let expected = in_window
            .iter()
            .filter(|ts| (start..end).contains(*ts))
            .count() as u64;
        assert_eq!(requests, expected, "point {point}");
        assert_eq!(point["value"].as_f64(), Some(requests as f64));
        sum += requests;
        expected_start = end;
    }
    assert_eq!(expected_start, to);
    assert_eq!(sum, total);
}

// ---------------------------------------------------------------------------------------------
// 10. Health

#[tokio::test]
async fn health_and_readiness_answer_200() {
    let dir = tempdir();
    let server = open(dir.path());
    let (status, body) = send(&server, get_request(None, "/healthz")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ok\n".as_slice())
    );
    let (status, body) = send(&server, get_request(None, "/readyz")).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ready\n".as_slice())
    );
    let (status, answer) = get_json(&server, None, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer, error_body("not_found", "route not found"));
}
